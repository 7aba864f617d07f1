// SPDX-License-Identifier: GPL-2.0
//! A bump (arena) allocator: allocation moves a pointer forward, nothing is
//! freed alone, and [`Arena::reset`] frees everything at once.
//!
//! The arena owns up to `R` caller-provided regions (`M: AsRef<[u8]>`; the
//! bytes are never read or written, only their length matters). Every
//! region is in one of three states:
//!
//! - *current*: allocations bump its top;
//! - *retired*: it was current when a request did not fit, so the arena
//!   moved on; its tail is lost until the next reset (counted as
//!   [`ArenaStats::tail_bytes`]);
//! - *fresh*: untouched since it was added or since the last reset.
//!
//! A request that does not fit in the current region goes to the lowest
//! fresh region large enough, which becomes current. If there is none the
//! arena returns [`ArenaError::NoMemory`] and changes nothing, so the glue
//! can add a region and retry. Never going back to a retired region is what
//! keeps allocation O(1) in the common case; the cost is the tails, which
//! the statistics report.
//!
//! Alignment is relative to the region start: the kernel's regions are page
//! aligned, so any alignment up to [`MAX_ALIGN`] holds for addresses too.

use super::frag::FragReport;
pub use super::heap::Ptr;

/// Default number of region slots of an [`Arena`].
pub const MAX_REGIONS: usize = 32;

/// Largest region an arena accepts, so offsets fit a [`Ptr`] with headroom.
pub const MAX_REGION_BYTES: usize = super::heap::MAX_REGION_BYTES;

/// Largest alignment: a page, the alignment the kernel's regions have.
pub const MAX_ALIGN: usize = 4096;

/// Why an arena operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaError {
    /// Bad input: size 0 or above [`MAX_REGION_BYTES`], an alignment that is
    /// not a power of two or above [`MAX_ALIGN`], or a region buffer that is
    /// empty or too large. Nothing was changed.
    Invalid,
    /// Neither the current region nor a fresh one fits the request; add a
    /// region and retry. Only the failure counter changed.
    NoMemory,
    /// Every region slot is in use.
    RegionsFull,
}

/// What [`Arena::reset`] gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResetReport {
    /// Bytes that became free again: allocations, alignment padding and
    /// retired tails (`used + padding + tail` before the reset).
    pub bytes_reclaimed: u64,
    /// Allocations that ended.
    pub allocations_reclaimed: u64,
}

/// A snapshot of an arena's figures. `used + padding + tail + free ==
/// capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArenaStats {
    /// Regions in use.
    pub regions: u32,
    /// Bytes of all regions.
    pub capacity_bytes: u64,
    /// Bytes asked for by the allocations since the last reset.
    pub used_bytes: u64,
    /// Bytes skipped to align allocations.
    pub padding_bytes: u64,
    /// Bytes left at the end of retired regions.
    pub tail_bytes: u64,
    /// Bytes still available: the rest of the current region and every
    /// fresh region.
    pub free_bytes: u64,
    /// The largest request (alignment 1) that can succeed now.
    pub largest_free_bytes: u64,
    /// Allocations since the last reset.
    pub live_allocs: u64,
    /// Successful allocations since creation.
    pub allocs: u64,
    /// Allocations that failed with [`ArenaError::NoMemory`].
    pub failures: u64,
    /// Resets since creation.
    pub resets: u64,
}

/// A bump allocator over at most `R` caller-provided regions.
pub struct Arena<M, const R: usize = MAX_REGIONS> {
    regions: [Option<M>; R],
    /// First unused byte of each region; 0 for fresh regions.
    top: [usize; R],
    retired: [bool; R],
    current: Option<usize>,
    s: ArenaStats,
}

/// A point to rewind an arena to ([`Arena::mark`], [`Arena::rewind`]).
#[derive(Clone, Copy, Debug)]
pub struct ArenaMark<const R: usize = MAX_REGIONS> {
    top: [usize; R],
    retired: [bool; R],
    current: Option<usize>,
    s: ArenaStats,
}

impl<M: AsRef<[u8]>, const R: usize> Arena<M, R> {
    /// An empty arena; add memory with [`Arena::add_region`].
    pub const fn new() -> Self {
        Self {
            regions: [const { None }; R],
            top: [0; R],
            retired: [false; R],
            current: None,
            s: ArenaStats {
                regions: 0,
                capacity_bytes: 0,
                used_bytes: 0,
                padding_bytes: 0,
                tail_bytes: 0,
                free_bytes: 0,
                largest_free_bytes: 0,
                live_allocs: 0,
                allocs: 0,
                failures: 0,
                resets: 0,
            },
        }
    }

    /// Adds `mem` as a fresh region and returns its index (the lowest free
    /// slot). On error `mem` is dropped and nothing changes.
    pub fn add_region(&mut self, mem: M) -> Result<u32, ArenaError> {
        let len = mem.as_ref().len();
        if len == 0 || len > MAX_REGION_BYTES {
            return Err(ArenaError::Invalid);
        }
        let r = self
            .regions
            .iter()
            .position(Option::is_none)
            .ok_or(ArenaError::RegionsFull)?;
        let index = u32::try_from(r).map_err(|_| ArenaError::RegionsFull)?;
        let (Some(slot), Some(top), Some(retired)) = (
            self.regions.get_mut(r),
            self.top.get_mut(r),
            self.retired.get_mut(r),
        ) else {
            return Err(ArenaError::RegionsFull);
        };
        *slot = Some(mem);
        *top = 0;
        *retired = false;
        self.s.regions = self.s.regions.saturating_add(1);
        self.s.capacity_bytes = self.s.capacity_bytes.saturating_add(len as u64);
        Ok(index)
    }

    /// Takes region `index` back if nothing was allocated from it since the
    /// last reset (a fresh region); otherwise returns `None` and changes
    /// nothing. After [`Arena::reset`] every region can be removed.
    pub fn remove_region(&mut self, index: u32) -> Option<M> {
        let r = index as usize;
        if *self.top.get(r)? != 0 || *self.retired.get(r)? {
            return None;
        }
        let mem = self.regions.get_mut(r)?.take()?;
        if self.current == Some(r) {
            self.current = None;
        }
        self.s.regions = self.s.regions.saturating_sub(1);
        let len = mem.as_ref().len() as u64;
        self.s.capacity_bytes = self.s.capacity_bytes.saturating_sub(len);
        Some(mem)
    }

    /// The buffer of region `index`, to turn a [`Ptr`] into an address.
    pub fn region(&self, index: u32) -> Option<&M> {
        self.regions.get(index as usize)?.as_ref()
    }

    /// The buffer of region `index`, to reach the allocations' bytes.
    pub fn region_mut(&mut self, index: u32) -> Option<&mut M> {
        self.regions.get_mut(index as usize)?.as_mut()
    }

    /// Allocates `size` bytes at an offset that is a multiple of `align`.
    pub fn alloc(&mut self, size: usize, align: usize) -> Result<Ptr, ArenaError> {
        if size == 0 || size > MAX_REGION_BYTES || !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(ArenaError::Invalid);
        }
        if let Some(c) = self.current {
            let len = self.len(c);
            let top = self.top.get(c).copied().unwrap_or(len);
            // Checked although tops stay below MAX_REGION_BYTES: the
            // buffer's length is the caller's word, not the arena's.
            let off = top.checked_next_multiple_of(align);
            if let Some(off) = off.filter(|&o| o.checked_add(size).is_some_and(|e| e <= len)) {
                return Ok(self.bump(c, top, off, size));
            }
        }
        // Offset 0 satisfies every alignment.
        let fresh = (0..R).find(|&r| {
            Some(r) != self.current
                && self.retired.get(r) == Some(&false)
                && self.top.get(r) == Some(&0)
                && self.len(r) >= size
        });
        let Some(f) = fresh else {
            self.s.failures = self.s.failures.saturating_add(1);
            return Err(ArenaError::NoMemory);
        };
        if let Some(c) = self.current {
            let tail = self
                .len(c)
                .saturating_sub(self.top.get(c).copied().unwrap_or(0));
            self.s.tail_bytes = self.s.tail_bytes.saturating_add(tail as u64);
            if let Some(retired) = self.retired.get_mut(c) {
                *retired = true;
            }
        }
        self.current = Some(f);
        Ok(self.bump(f, 0, 0, size))
    }

    /// Where the arena stands now: [`Arena::rewind`] goes back to it.
    pub fn mark(&self) -> ArenaMark<R> {
        ArenaMark {
            top: self.top,
            retired: self.retired,
            current: self.current,
            s: self.s,
        }
    }

    /// Undoes every allocation made since `m` was taken (and nothing else:
    /// regions added meanwhile stay, fresh again, so that the caller can
    /// take them back with [`Arena::remove_region`]). For a caller whose
    /// allocation must not survive a later failure, e.g. the copy of its
    /// result to userspace. `m` must come from this arena, with no reset
    /// and no region removed since.
    pub fn rewind(&mut self, m: ArenaMark<R>) {
        let (regions, capacity_bytes) = (self.s.regions, self.s.capacity_bytes);
        for r in 0..R {
            let (Some(top), Some(retired), Some(old_top), Some(old_retired)) = (
                self.top.get_mut(r),
                self.retired.get_mut(r),
                m.top.get(r),
                m.retired.get(r),
            ) else {
                continue;
            };
            *top = *old_top;
            *retired = *old_retired;
        }
        self.current = m.current;
        self.s = m.s;
        self.s.regions = regions;
        self.s.capacity_bytes = capacity_bytes;
    }

    /// Frees every allocation at once; every region becomes fresh.
    pub fn reset(&mut self) -> ResetReport {
        let report = ResetReport {
            bytes_reclaimed: self
                .s
                .used_bytes
                .saturating_add(self.s.padding_bytes)
                .saturating_add(self.s.tail_bytes),
            allocations_reclaimed: self.s.live_allocs,
        };
        self.top = [0; R];
        self.retired = [false; R];
        self.current = None;
        self.s.used_bytes = 0;
        self.s.padding_bytes = 0;
        self.s.tail_bytes = 0;
        self.s.live_allocs = 0;
        self.s.resets = self.s.resets.saturating_add(1);
        report
    }

    /// Whether `ptr` points into memory handed out since the last reset.
    pub fn owns(&self, ptr: Ptr) -> bool {
        let r = ptr.region as usize;
        self.region(ptr.region).is_some()
            && self
                .top
                .get(r)
                .is_some_and(|&top| (ptr.offset as usize) < top)
    }

    /// The current figures, O(regions).
    pub fn stats(&self) -> ArenaStats {
        let mut s = self.s;
        let (mut free, mut largest) = (0u64, 0u64);
        for r in 0..R {
            if self.retired.get(r) != Some(&false) {
                continue;
            }
            let avail =
                self.len(r)
                    .saturating_sub(self.top.get(r).copied().unwrap_or(0)) as u64;
            free = free.saturating_add(avail);
            largest = largest.max(avail);
        }
        s.free_bytes = free;
        s.largest_free_bytes = largest;
        s
    }

    /// The byte-level summary shared by every rkalloc allocator. Padding
    /// and retired tails count as handed out (internal fragmentation): they
    /// are spent on the live allocations until the reset. The arena keeps
    /// no metadata in its regions.
    pub fn frag(&self) -> FragReport {
        let s = self.stats();
        FragReport {
            requested_bytes: s.used_bytes,
            handed_out_bytes: s
                .used_bytes
                .saturating_add(s.padding_bytes)
                .saturating_add(s.tail_bytes),
            metadata_bytes: 0,
            free_bytes: s.free_bytes,
            largest_free_bytes: s.largest_free_bytes,
        }
    }

    // ---- internals -------------------------------------------------------

    /// Length of region `r`, 0 if absent.
    fn len(&self, r: usize) -> usize {
        match self.regions.get(r) {
            Some(Some(m)) => m.as_ref().len(),
            _ => 0,
        }
    }

    /// Hands out `[off, off + size)` of region `r`, whose top was `top`.
    fn bump(&mut self, r: usize, top: usize, off: usize, size: usize) -> Ptr {
        // The caller checked that off + size fits the region, and off >= top.
        if let Some(t) = self.top.get_mut(r) {
            *t = off.saturating_add(size);
        }
        let s = &mut self.s;
        s.padding_bytes = s
            .padding_bytes
            .saturating_add(off.saturating_sub(top) as u64);
        s.used_bytes = s.used_bytes.saturating_add(size as u64);
        s.live_allocs = s.live_allocs.saturating_add(1);
        s.allocs = s.allocs.saturating_add(1);
        Ptr {
            region: r as u32,
            offset: off as u32,
        }
    }
}

impl<M: AsRef<[u8]>, const R: usize> Default for Arena<M, R> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    type A = Arena<Vec<u8>, 3>;

    fn arena(lens: &[usize]) -> A {
        let mut a = A::new();
        for &len in lens {
            a.add_region(vec![0; len]).unwrap();
        }
        a
    }

    fn identity(a: &A) {
        let s = a.stats();
        assert_eq!(
            s.used_bytes + s.padding_bytes + s.tail_bytes + s.free_bytes,
            s.capacity_bytes
        );
    }

    #[test]
    fn invalid_requests_change_nothing() {
        let mut a = arena(&[1000]);
        a.alloc(10, 1).unwrap();
        let before = a.stats();
        for (size, align) in [
            (0, 1),
            (MAX_REGION_BYTES + 1, 1),
            (usize::MAX, 8),
            (8, 0),
            (8, 3),
            (8, 2 * MAX_ALIGN),
            (8, usize::MAX),
        ] {
            assert_eq!(
                a.alloc(size, align),
                Err(ArenaError::Invalid),
                "{size} {align}"
            );
        }
        assert_eq!(a.add_region(vec![]), Err(ArenaError::Invalid));
        assert!(a.remove_region(0).is_none());
        assert!(a.remove_region(9).is_none());
        assert_eq!(a.stats(), before);
        a.add_region(vec![0; 10]).unwrap();
        a.add_region(vec![0; 10]).unwrap();
        let before = a.stats();
        assert_eq!(a.add_region(vec![0; 10]), Err(ArenaError::RegionsFull));
        assert_eq!(a.stats(), before);
    }

    #[test]
    fn no_memory_only_counts_the_failure_and_keeps_the_current_region() {
        let mut a = arena(&[100, 50]);
        let p = a.alloc(60, 1).unwrap();
        assert_eq!(
            p,
            Ptr {
                region: 0,
                offset: 0
            }
        );
        let mut before = a.stats();
        // Fits neither the current region's rest nor the fresh one.
        assert_eq!(a.alloc(70, 1), Err(ArenaError::NoMemory));
        before.failures += 1;
        assert_eq!(a.stats(), before);
        // Still bumping region 0.
        assert_eq!(
            a.alloc(40, 1).unwrap(),
            Ptr {
                region: 0,
                offset: 60
            }
        );
        identity(&a);
    }

    #[test]
    fn moving_on_retires_the_tail() {
        let mut a = arena(&[100, 200]);
        a.alloc(1, 1).unwrap();
        let p = a.alloc(30, 64).unwrap();
        assert_eq!(
            p,
            Ptr {
                region: 0,
                offset: 64
            }
        );
        assert_eq!(a.stats().padding_bytes, 63);
        let q = a.alloc(150, 8).unwrap();
        assert_eq!(
            q,
            Ptr {
                region: 1,
                offset: 0
            }
        );
        let s = a.stats();
        assert_eq!((s.tail_bytes, s.used_bytes, s.free_bytes), (6, 181, 50));
        assert_eq!(s.largest_free_bytes, 50);
        identity(&a);
        // The retired region is not reused before a reset.
        assert_eq!(
            a.alloc(5, 1),
            Ok(Ptr {
                region: 1,
                offset: 150
            })
        );
        assert!(a.owns(p) && a.owns(q));
        assert!(a.remove_region(0).is_none());

        let r = a.reset();
        assert_eq!(r.allocations_reclaimed, 4);
        assert_eq!(r.bytes_reclaimed, 186 + 63 + 6);
        let s = a.stats();
        assert_eq!((s.free_bytes, s.used_bytes, s.resets), (300, 0, 1));
        assert!(!a.owns(p));
        assert_eq!(a.remove_region(0).map(|m| m.len()), Some(100));
        assert_eq!(
            a.alloc(10, 1),
            Ok(Ptr {
                region: 1,
                offset: 0
            })
        );
        assert_eq!(a.frag().requested_bytes, 10);
    }
}
