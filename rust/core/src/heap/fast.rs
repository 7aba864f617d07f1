// SPDX-License-Identifier: GPL-2.0
//! The fast path: the heap's operations on one region borrowed once.
//!
//! Without DEBUG, an allocation is carved and a free is merged through a
//! [`Local`] view: the bytes and block area of the region the operation
//! works in are looked up once, and every access to that region uses them;
//! an access to another region (a list link may name any region) goes
//! through the slots before and after it, borrowed apart. The operations
//! themselves are the very code of the general path ([`super::ops`]), so
//! the fast path differs from it only in how it reaches the regions: the
//! differential test below checks that it reads and writes the same bytes
//! and reports the same results, damaged regions included.
//!
//! An allocation's search runs on the general view (it may walk any
//! region); the block found decides the region of the [`Local`] view that
//! carves it. A free works in the region of the freed pointer.

use super::blocks::{area_of, corrupt, Blocks, BlocksMut, Region, RegionMem, Regions};
use super::ops;
use super::policy::FitPolicy;
use super::stats::Counters;
use super::{HeapError, Ptr};

/// [`super::Heap::alloc`] without DEBUG: [`ops::alloc`], with the block
/// carved on the [`Local`] view of its region.
#[inline(always)]
pub(super) fn alloc<M: RegionMem, P: FitPolicy>(
    regions: &mut Regions<M>,
    p: &mut P,
    n: u32,
    size: usize,
) -> Result<Ptr, HeapError> {
    #[cfg(test)]
    if regions.general {
        return ops::alloc(&mut regions.op::<false>(), p, n, size);
    }
    let f = ops::find(&mut regions.op::<false>(), p, n)?;
    // The search found the block in a region that exists.
    let mut h = regions
        .local::<false>(f.region)
        .ok_or(corrupt(f.region, f.offset))?;
    ops::take(&mut h, p, f, n, size)
}

/// [`super::Heap::free`] without DEBUG: [`ops::free`] on the [`Local`] view
/// of the freed pointer's region.
#[inline(always)]
pub(super) fn free<M: RegionMem, P: FitPolicy>(
    regions: &mut Regions<M>,
    p: &mut P,
    ptr: Ptr,
) -> Result<bool, HeapError> {
    #[cfg(test)]
    if regions.general {
        return ops::free(&mut regions.op::<false>(), p, ptr);
    }
    let mut h = regions
        .local::<false>(ptr.region)
        .ok_or(HeapError::Invalid)?;
    ops::free(&mut h, p, ptr)
}

/// The heap seen from region `r`, with DEBUG fixed at `D`.
///
/// # Invariants
///
/// `mem`, `start` and `end` are region `r`'s bytes and block area, and
/// `end <= mem.len()`; `lo` holds slots `0..r` and `hi` slots `r + 1..`.
pub struct Local<'a, M, const D: bool> {
    r: u32,
    mem: &'a mut [u8],
    start: u32,
    end: u32,
    lo: &'a mut [Option<Region<M>>],
    hi: &'a mut [Option<Region<M>>],
    c: &'a mut Counters,
}

impl<M: RegionMem> Regions<M> {
    /// The view from region `r`, if there is one.
    #[inline(always)]
    pub(super) fn local<const D: bool>(&mut self, r: u32) -> Option<Local<'_, M, D>> {
        let at = r as usize;
        if at >= self.regions.len() {
            return None;
        }
        let (lo, rest) = self.regions.split_at_mut(at);
        let (cur, hi) = rest.split_first_mut()?;
        let reg = cur.as_mut()?;
        let (start, end) = (reg.start, reg.end);
        let mem = reg.mem.as_mut();
        // Always true (the region's invariant); it lets the compiler drop
        // the bounds checks of offsets already checked against `end`.
        if end as usize > mem.len() {
            return None;
        }
        // INVARIANT: as the fields say, by the split above.
        Some(Local {
            r,
            mem,
            start,
            end,
            lo,
            hi,
            c: &mut self.c,
        })
    }
}

impl<M: RegionMem, const D: bool> Local<'_, M, D> {
    /// The slot of region `r`, which is not the view's own.
    #[inline(always)]
    fn other(&self, r: u32) -> Option<&Option<Region<M>>> {
        if r < self.r {
            self.lo.get(r as usize)
        } else {
            // r > self.r here, so this does not wrap.
            self.hi.get((r - self.r - 1) as usize)
        }
    }

    /// [`Local::other`], to write.
    #[inline(always)]
    fn other_mut(&mut self, r: u32) -> Option<&mut Option<Region<M>>> {
        if r < self.r {
            self.lo.get_mut(r as usize)
        } else {
            self.hi.get_mut((r - self.r - 1) as usize)
        }
    }
}

impl<M: RegionMem, const D: bool> Blocks for Local<'_, M, D> {
    #[inline(always)]
    fn debug(&self) -> bool {
        D
    }

    #[inline(always)]
    fn area(&self, r: u32) -> Option<(&[u8], u32, u32)> {
        if r == self.r {
            return Some((&*self.mem, self.start, self.end));
        }
        area_of(self.other(r)?)
    }

    #[inline(always)]
    fn counters(&self) -> &Counters {
        self.c
    }
}

impl<M: RegionMem, const D: bool> BlocksMut for Local<'_, M, D> {
    #[inline(always)]
    fn bytes_mut(&mut self, r: u32) -> Option<&mut [u8]> {
        if r == self.r {
            return Some(&mut *self.mem);
        }
        Some(self.other_mut(r)?.as_mut()?.mem.as_mut())
    }

    #[inline(always)]
    fn counters_mut(&mut self) -> &mut Counters {
        self.c
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::rng::Rng;
    use super::super::tests::{snapshot, H};
    use super::super::*;
    use std::vec;
    use std::vec::Vec;

    /// The fast path against the general path: the same random operations
    /// (with several regions, so that links cross regions, invalid frees
    /// and damaged bytes) on a heap that takes the fast path and on one
    /// that never does must give the same results, figures, check verdicts,
    /// corruption reports and region bytes after every operation.
    #[test]
    fn fast_path_matches_the_general_path() {
        for seed in 1..=64u64 {
            for policy in Policy::ALL {
                for flags in [HeapFlags::NONE, HeapFlags::LIFO] {
                    differential(policy, flags, seed);
                }
            }
        }
    }

    /// Whether region `r` of `h` is one free block: what
    /// [`Heap::free_emptied`] reports.
    fn wholly_free(h: &H, r: u32) -> bool {
        let mut blocks = Vec::new();
        h.for_each_block(|b| {
            if b.region == r {
                blocks.push(b.allocated);
            }
        })
        .unwrap();
        blocks == [false]
    }

    fn differential(policy: Policy, flags: HeapFlags, seed: u64) {
        let mut fast = H::new(policy, flags);
        let mut slow = H::new(policy, flags);
        slow.blocks.general = true;
        let mut rng = Rng::new(seed);
        // Damage is rare and only in some runs, so most runs stay long.
        let damage = seed.is_multiple_of(4);
        let mut live: Vec<Ptr> = Vec::new();
        let what = |i: usize| std::format!("{policy:?} {flags:?} seed {seed} op {i}");
        for i in 0..400 {
            let op = rng.index(100);
            if op < 4 || fast.stats().regions == 0 {
                let len = [2048, 4096, 8192][rng.index(3)];
                let a = fast.add_region(vec![0x5a; len]);
                assert_eq!(a, slow.add_region(vec![0x5a; len]), "{}", what(i));
            } else if op < 6 {
                let r = rng.index(4) as u32;
                let a = fast.remove_region(r).map(|m| m.len());
                assert_eq!(a, slow.remove_region(r).map(|m| m.len()), "{}", what(i));
            } else if op < 52 {
                let size = match rng.index(8) {
                    0 => 1 + rng.index(2000),
                    1..=3 => 1 + rng.index(300),
                    _ => 1 + rng.index(100),
                };
                let a = fast.alloc(size);
                assert_eq!(a, slow.alloc(size), "{}", what(i));
                if let Ok(p) = a {
                    live.push(p);
                }
            } else if op < 96 && !live.is_empty() {
                let p = live.swap_remove(rng.index(live.len()));
                let a = fast.free_emptied(p);
                assert_eq!(a, slow.free_emptied(p), "{}", what(i));
                if let (Ok(emptied), false) = (a, damage) {
                    assert_eq!(emptied, wholly_free(&fast, p.region), "{}", what(i));
                }
            } else if op < 98 {
                // Mostly invalid: a random offset, or a double free.
                let p = if op == 96 || live.is_empty() {
                    Ptr {
                        region: rng.index(5) as u32,
                        offset: rng.index(9000) as u32,
                    }
                } else {
                    live[rng.index(live.len())]
                };
                let a = fast.free_emptied(p);
                assert_eq!(a, slow.free_emptied(p), "{}", what(i));
                if a.is_ok() {
                    live.retain(|&q| q != p);
                }
            } else if damage && op == 98 {
                // The same damage to both: a random word or byte of a region.
                let r = rng.index(4) as u32;
                let (off, v, word) = (rng.index(9000), rng.next_u64(), rng.index(2) == 0);
                for h in [&mut fast, &mut slow] {
                    if let Some(mem) = h.region_mut(r) {
                        let n = if word { 8 } else { 1 };
                        if let Some(dst) = mem.get_mut(off..off + n) {
                            dst.copy_from_slice(&v.to_le_bytes()[..n]);
                        }
                    }
                }
            }
            assert_eq!(fast.corruption(), slow.corruption(), "{}", what(i));
            let (fs, fc, fb) = snapshot(&fast);
            let (ss, sc, sb) = snapshot(&slow);
            assert_eq!((fs, fc), (ss, sc), "{}", what(i));
            assert!(fb == sb, "region bytes differ: {}", what(i));
            if !damage {
                fast.check().unwrap();
            }
        }
    }
}
