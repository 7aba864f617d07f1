// SPDX-License-Identifier: GPL-2.0
//! The arena on pool pages: the kernel glue around the pure
//! [`crate::rkcore::arena`].
//!
//! Each open file of `/dev/rkalloc` has at most one arena, made on its first
//! `RKALLOC_IOC_ARENA_ALLOC`. An allocation bumps a pointer; a reset frees
//! every allocation at once, keeps the largest region for the next round
//! and gives the other regions back to the pool. The arena grows like a
//! heap (see [`super::region::grow_order`]): a fresh region as large as all it
//! holds, between 64 KiB and 4 MiB.

use super::{
    pool::{tag, Pool, PAGE_SIZE},
    region::{grow_order, order_for, PoolRegion, MAX_REQUEST},
};
use crate::{
    rkcore::{
        arena::{Arena, ArenaError, ArenaMark, ArenaStats, Ptr, ResetReport, MAX_ALIGN},
        frag::FragReport,
    },
    sys::{self, fault},
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
/// an arena serves: 1 to [`MAX_REQUEST`] bytes, a power of two up to 4096.
pub(crate) fn request_ok(size: usize, align: usize) -> bool {
    let align = if align == 0 { DEFAULT_ALIGN } else { align };
    size != 0 && size <= MAX_REQUEST && align.is_power_of_two() && align <= MAX_ALIGN
}

/// How to take back one allocation ([`ArenaObj::undo`]).
pub(crate) struct ArenaUndo {
    mark: ArenaMark,
    /// The region the allocation grew the arena by, if it did.
    region: Option<u32>,
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

    /// Allocates `size` bytes (1 to [`MAX_REQUEST`]) aligned to `align` (a
    /// power of two up to 4096; 0 means 8). When neither the current region
    /// nor a fresh one fits, the arena grows by one region if `budget`
    /// bytes allow it. Returns the allocation and the bytes taken from the
    /// pool for it.
    pub(crate) fn alloc(&self, size: usize, align: usize, budget: u64) -> Result<(Ptr, u64)> {
        self.alloc_in(&mut self.inner.lock(), size, align, budget)
    }

    /// [`Self::alloc`], which [`Self::undo`] can take back as long as the
    /// caller holds off every other use of the arena (the fd's lock): for a
    /// call whose result may fail to reach userspace.
    pub(crate) fn alloc_undoable(&self, size: usize, align: usize, budget: u64) -> Result<(Ptr, u64, ArenaUndo)> {
        let mut g = self.inner.lock();
        let mark = g.arena.mark();
        let regions = g.regions_grown;
        let (p, grown) = self.alloc_in(&mut g, size, align, budget)?;
        let region = (g.regions_grown != regions).then_some(p.region);
        Ok((p, grown, ArenaUndo { mark, region }))
    }

    /// Takes back the allocation [`Self::alloc_undoable`] made (and the
    /// region it grew by); returns the bytes given back to the pool.
    pub(crate) fn undo(&self, u: ArenaUndo) -> u64 {
        let mut g = self.inner.lock();
        g.arena.rewind(u.mark);
        let Some(r) = u.region else {
            return 0;
        };
        match g.arena.remove_region(r) {
            Some(m) => {
                let bytes = m.bytes() as u64;
                g.held -= bytes;
                g.regions_released += 1;
                bytes
            }
            None => 0,
        }
    }

    /// [`Self::alloc`], returning the allocation's address: valid until the
    /// next [`Self::reset`] or until the arena is dropped.
    pub(crate) fn alloc_addr(&self, size: usize, align: usize, budget: u64) -> Result<NonNull<u8>> {
        let mut g = self.inner.lock();
        let (p, _) = self.alloc_in(&mut g, size, align, budget)?;
        let mem = g.arena.region_mut(p.region).ok_or(EINVAL)?.as_mut();
        let start = mem.get_mut(p.offset as usize..).ok_or(EINVAL)?;
        let addr = NonNull::new(start.as_mut_ptr()).ok_or(EINVAL)?;
        sys::trace::alloc(c"rk_arena", addr.as_ptr(), size, -1);
        Ok(addr)
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
        if fault::Point::ArenaGrow.should_fail(PAGE_SIZE << order) {
            return Err(ENOMEM);
        }
        let region = PoolRegion::tagged(&self.pool, order, tag::ARENA)?;
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

    /// What a reset would reclaim now (the report [`Self::reset`] gives, as
    /// long as nothing is allocated meanwhile).
    pub(crate) fn reset_report(&self) -> ResetReport {
        let s = self.inner.lock().arena.stats();
        ResetReport {
            bytes_reclaimed: s.used_bytes.saturating_add(s.padding_bytes).saturating_add(s.tail_bytes),
            allocations_reclaimed: s.live_allocs,
        }
    }

    /// Live allocations (since the last reset).
    pub(crate) fn live(&self) -> u64 {
        self.inner.lock().arena.stats().live_allocs
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

#[cfg(rkalloc_kunit)]
mod tests;
