// SPDX-License-Identifier: GPL-2.0
//! The arena on pool pages: the kernel glue around the pure
//! [`crate::rkcore::arena`].
//!
//! Each open file of `/dev/rkalloc` has at most one arena, made on its first
//! `RKALLOC_IOC_ARENA_ALLOC`. An allocation bumps a pointer; a reset frees
//! every allocation at once, keeps the largest region for the next round
//! and gives the other regions back to the pool. The arena grows like a
//! heap (see [`crate::heap::grow_order`]): a fresh region as large as all it
//! holds, between 64 KiB and 4 MiB.

use crate::{
    heap::{grow_order, order_for, PoolRegion, MAX_ALLOC},
    pool::Pool,
    rkcore::{
        arena::{Arena, ArenaError, ArenaStats, Ptr, ResetReport, MAX_ALIGN},
        frag::FragReport,
    },
};
use core::{fmt, ptr::NonNull};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Region slots of an arena.
const REGIONS: usize = crate::rkcore::arena::MAX_REGIONS;

/// Alignment of an allocation that asks for none (`align` 0).
const DEFAULT_ALIGN: usize = 8;

/// Whether a request of `size` bytes aligned to `align` (0 means 8) is one
/// an arena serves: 1 to [`MAX_ALLOC`] bytes, a power of two up to 4096.
pub(crate) fn request_ok(size: usize, align: usize) -> bool {
    let align = if align == 0 { DEFAULT_ALIGN } else { align };
    size != 0 && size <= MAX_ALLOC && align.is_power_of_two() && align <= MAX_ALIGN
}

/// What an arena's mutex guards.
struct ArenaInner {
    arena: Arena<PoolRegion>,
    /// Bytes of the pool blocks the arena holds: what its file is charged.
    held: u64,
    regions_grown: u64,
    regions_released: u64,
    /// What the last reset gave back.
    last_reset: ResetReport,
    /// What every reset together gave back.
    reclaimed: ResetReport,
}

/// An arena, as a file of `/dev/rkalloc` owns it.
#[pin_data]
pub(crate) struct ArenaObj {
    id: u32,
    pool: Arc<Pool>,
    #[pin]
    inner: Mutex<ArenaInner>,
}

impl ArenaObj {
    /// An empty arena; it takes pool memory on its first allocation.
    pub(crate) fn new(pool: &Arc<Pool>, id: u32) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(ArenaObj {
                id,
                pool: pool.clone(),
                inner <- new_mutex!(
                    ArenaInner {
                        arena: Arena::new(),
                        held: 0,
                        regions_grown: 0,
                        regions_released: 0,
                        last_reset: ResetReport::default(),
                        reclaimed: ResetReport::default(),
                    },
                    "rkalloc_arena"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// Bytes of pool memory the arena holds.
    pub(crate) fn held(&self) -> u64 {
        self.inner.lock().held
    }

    /// Allocates `size` bytes (1 to [`MAX_ALLOC`]) aligned to `align` (a
    /// power of two up to 4096; 0 means 8). When neither the current region
    /// nor a fresh one fits, the arena grows by one region if `budget`
    /// bytes allow it. Returns the allocation and the bytes taken from the
    /// pool for it.
    pub(crate) fn alloc(&self, size: usize, align: usize, budget: u64) -> Result<(Ptr, u64)> {
        self.alloc_in(&mut self.inner.lock(), size, align, budget)
    }

    /// [`Self::alloc`], returning the allocation's address: valid until the
    /// next [`Self::reset`] or until the arena is dropped.
    pub(crate) fn alloc_addr(&self, size: usize, align: usize, budget: u64) -> Result<NonNull<u8>> {
        let mut g = self.inner.lock();
        let (p, _) = self.alloc_in(&mut g, size, align, budget)?;
        let mem = g.arena.region_mut(p.region).ok_or(EINVAL)?.as_mut();
        let start = mem.get_mut(p.offset as usize..).ok_or(EINVAL)?;
        NonNull::new(start.as_mut_ptr()).ok_or(EINVAL)
    }

    fn alloc_in(&self, g: &mut ArenaInner, size: usize, align: usize, budget: u64) -> Result<(Ptr, u64)> {
        if !request_ok(size, align) {
            return Err(EINVAL);
        }
        let align = if align == 0 { DEFAULT_ALIGN } else { align };
        match g.arena.alloc(size, align) {
            Ok(p) => return Ok((p, 0)),
            Err(ArenaError::NoMemory) => {}
            Err(ArenaError::Invalid) => return Err(EINVAL),
            Err(ArenaError::RegionsFull) => return Err(ENOMEM),
        }
        // A fresh region serves any alignment at offset 0.
        let need = order_for(size).ok_or(EINVAL)?;
        let order = grow_order(need, g.held, budget).ok_or(ENOMEM)?;
        let region = PoolRegion::tagged(&self.pool, order, crate::pool::tag::ARENA)?;
        let bytes = region.bytes() as u64;
        // On error the core drops the region, which goes back to the pool.
        g.arena.add_region(region).map_err(|e| match e {
            ArenaError::Invalid => EINVAL,
            _ => ENOMEM,
        })?;
        g.held += bytes;
        g.regions_grown += 1;
        // The fresh region is at least `size` bytes, so this cannot fail.
        let p = g.arena.alloc(size, align).map_err(|_| ENOMEM)?;
        Ok((p, bytes))
    }

    /// Frees every allocation at once; keeps the largest region and gives
    /// the others back to the pool. Returns what the reset reclaimed and
    /// the bytes given back.
    pub(crate) fn reset(&self) -> (ResetReport, u64) {
        let mut g = self.inner.lock();
        let report = g.arena.reset();
        g.last_reset = report;
        g.reclaimed.bytes_reclaimed += report.bytes_reclaimed;
        g.reclaimed.allocations_reclaimed += report.allocations_reclaimed;
        if g.regions_grown - g.regions_released <= 1 {
            // One region or none: it stays, nothing to give back.
            return (report, 0);
        }
        let keep = (0..REGIONS as u32).max_by_key(|&r| g.arena.region(r).map_or(0, |m| m.bytes()));
        let mut released = 0;
        for r in 0..REGIONS as u32 {
            if Some(r) == keep {
                continue;
            }
            // After a reset every region is fresh, so each comes back.
            if let Some(m) = g.arena.remove_region(r) {
                released += m.bytes() as u64;
                g.regions_released += 1;
            }
        }
        g.held -= released;
        (report, released)
    }

    /// Runs `f` on the `len` bytes at `ptr`, an allocation made since the
    /// last reset.
    pub(crate) fn with_bytes<R>(
        &self,
        ptr: Ptr,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R> {
        let mut g = self.inner.lock();
        if !g.arena.owns(ptr) {
            return Err(EINVAL);
        }
        let start = ptr.offset as usize;
        let end = start.checked_add(len).ok_or(EINVAL)?;
        let mem = g
            .arena
            .region_mut(ptr.region)
            .and_then(|m| m.as_mut().get_mut(start..end))
            .ok_or(EINVAL)?;
        Ok(f(mem))
    }

    /// A snapshot of the figures.
    pub(crate) fn view(&self) -> ArenaView {
        let g = self.inner.lock();
        ArenaView {
            id: self.id,
            stats: g.arena.stats(),
            frag: g.arena.frag(),
            held: g.held,
            regions_grown: g.regions_grown,
            regions_released: g.regions_released,
            last_reset: g.last_reset,
            reclaimed: g.reclaimed,
        }
    }
}

/// An arena allocation as a file owns it.
pub(crate) struct ArenaAlloc {
    /// The arena it came from.
    pub(crate) arena: Arc<ArenaObj>,
    /// Where it is in the arena.
    pub(crate) ptr: Ptr,
    /// Bytes asked for.
    pub(crate) len: usize,
}

/// A snapshot of an arena for debugfs and tests.
pub(crate) struct ArenaView {
    id: u32,
    stats: ArenaStats,
    frag: FragReport,
    held: u64,
    regions_grown: u64,
    regions_released: u64,
    last_reset: ResetReport,
    reclaimed: ResetReport,
}

/// The header of the `arenas` file: one column per figure of a line.
pub(crate) const ARENAS_HEADER: &str = "# id regions size used padding tail free largest_free live allocs failures internal_permille external_permille resets last_reset_bytes last_reset_allocs reclaimed_bytes reclaimed_allocs grown released";

impl fmt::Display for ArenaView {
    /// One line of the `arenas` file, in the columns of [`ARENAS_HEADER`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.id,
            s.regions,
            self.held,
            s.used_bytes,
            s.padding_bytes,
            s.tail_bytes,
            s.free_bytes,
            s.largest_free_bytes,
            s.live_allocs,
            s.allocs,
            // Every region was grown for a request the arena had refused
            // and then served: not a failure from the caller's view.
            s.failures.saturating_sub(self.regions_grown),
            self.frag.internal_permille(),
            self.frag.external_permille(),
            s.resets,
            self.last_reset.bytes_reclaimed,
            self.last_reset.allocations_reclaimed,
            self.reclaimed.bytes_reclaimed,
            self.reclaimed.allocations_reclaimed,
            self.regions_grown,
            self.regions_released
        )
    }
}

#[kunit_tests(rkalloc_arena)]
mod tests {
    use super::*;
    use crate::pool::PoolConfig;

    fn test_pool() -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(1, 4))
    }

    /// The address of an allocation, to check its alignment.
    fn addr(a: &ArenaObj, p: Ptr) -> Result<usize> {
        a.with_bytes(p, 1, |m| m.as_ptr() as usize)
    }

    /// Every alignment from 1 to 4096 holds for the address, not just the
    /// offset; each allocation keeps its own bytes; a reset reclaims exactly
    /// what was handed out, invalidates every allocation and gives all but
    /// the largest region back.
    #[test]
    fn alignment_and_reset() -> Result {
        let pool = test_pool()?;
        let a = ArenaObj::new(&pool, 1)?;
        assert_eq!(a.held(), 0);
        let mut live = KVec::new();
        let mut used = 0u64;
        for round in 0..3u8 {
            for shift in 0..=12 {
                let align = 1usize << shift;
                let size = 1 + (shift * 37) % 300;
                let (p, _) = a.alloc(size, align, u64::MAX)?;
                assert_eq!(addr(&a, p)? & (align - 1), 0);
                let tag = round.wrapping_mul(16).wrapping_add(shift as u8);
                a.with_bytes(p, size, |m| m.fill(tag))?;
                live.push((p, size, tag), GFP_KERNEL)?;
                used += size as u64;
            }
        }
        // A large request retires the first region and takes a fresh one.
        let (big, grown) = a.alloc(MAX_ALLOC, 0, u64::MAX)?;
        assert!(grown >= MAX_ALLOC as u64);
        used += MAX_ALLOC as u64;
        for &(p, size, tag) in live.iter() {
            assert!(a.with_bytes(p, size, |m| m.iter().all(|b| *b == tag))?);
        }
        let v = a.view();
        assert_eq!(v.stats.used_bytes, used);
        assert_eq!(v.stats.regions, 2);
        let capacity = v.stats.capacity_bytes;
        assert_eq!(
            v.stats.used_bytes + v.stats.padding_bytes + v.stats.tail_bytes + v.stats.free_bytes,
            capacity
        );
        let handed_out = v.stats.used_bytes + v.stats.padding_bytes + v.stats.tail_bytes;
        let held = a.held();
        let (report, released) = a.reset();
        assert_eq!(report.allocations_reclaimed, 40);
        assert_eq!(report.bytes_reclaimed, handed_out);
        // The 64 KiB first region goes back; the larger one stays.
        assert_eq!(released, 64 << 10);
        assert_eq!(a.held(), held - released);
        assert_eq!(a.with_bytes(big, 1, |_| ()).err(), Some(EINVAL));
        assert_eq!(a.with_bytes(live[0].0, 1, |_| ()).err(), Some(EINVAL));
        let v = a.view();
        assert_eq!(
            (v.stats.live_allocs, v.stats.used_bytes, v.stats.resets),
            (0, 0, 1)
        );
        assert_eq!(v.reclaimed.allocations_reclaimed, 40);
        // The kept region serves the next round without growing.
        assert_eq!(a.alloc(100, 64, u64::MAX)?.1, 0);
        Ok(())
    }

    /// Bad sizes and alignments are EINVAL and change nothing; growth
    /// beyond the budget is ENOMEM.
    #[test]
    fn bad_input_and_budget() -> Result {
        let pool = test_pool()?;
        let a = ArenaObj::new(&pool, 1)?;
        a.alloc(10, 0, u64::MAX)?;
        let before = a.view().stats;
        for (size, align) in [
            (0, 8),
            (MAX_ALLOC + 1, 8),
            (8, 3),
            (8, 8192),
            (8, usize::MAX),
        ] {
            assert_eq!(a.alloc(size, align, u64::MAX).err(), Some(EINVAL));
        }
        assert!(a.view().stats == before);
        // The 64 KiB region cannot hold 100 KiB, and no budget is left.
        assert_eq!(a.alloc(100 << 10, 8, 0).err(), Some(ENOMEM));
        let after = a.view().stats;
        assert_eq!(after.failures, before.failures + 1);
        assert_eq!(
            (after.regions, after.used_bytes),
            (before.regions, before.used_bytes)
        );
        // A tight budget takes the smallest region that serves the request.
        assert_eq!(a.alloc(100 << 10, 8, 200 << 10)?.1, 128 << 10);
        Ok(())
    }
}
