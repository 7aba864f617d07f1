// SPDX-License-Identifier: GPL-2.0
//! Fit-policy heaps on pool pages: the kernel glue around the pure
//! [`crate::rkcore::heap`].
//!
//! A [`HeapObj`] is one `Heap<PoolRegion>` behind a mutex. Its regions are
//! pool blocks ([`PoolRegion`]), which go back to the pool when the heap
//! lets them go. The heap grows by one region when no free block fits
//! (geometrically: a new region is as large as all it holds, from 64 KiB up
//! to one 4 MiB top-order block), and gives a region back as soon as it is
//! wholly free again, except its last one.
//!
//! # Locking
//!
//! Each heap has its own mutex (growing takes pool memory, which may sleep).
//! The catalog's mutexes nest outside a heap's; the device's per-file mutex
//! nests outside both. No code holds two heaps' mutexes at once.
//!
//! # Corruption
//!
//! The core validates every tag it reads, and latches the first damaged one
//! it finds: the heap then refuses allocations and frees (EUCLEAN) until a
//! reset rebuilds it. The glue reports each corruption once in the kernel
//! log, with the heap's id and the damaged offset, never an address.

use super::{
    pool::{Pool, PAGE_SIZE},
    region::{grow_order, order_for, PoolRegion, MAX_INITIAL, MAX_REGION, MAX_REQUEST, MIN_GROW_ORDER, REGIONS},
};
use crate::{
    rkcore::{
        buddy::MAX_ORDER,
        frag::FragReport,
        heap::{max_alloc_in, Heap, HeapError, HeapFlags, HeapStats, Policy, Ptr},
    },
    sys::{self, euclean, fault},
};
use core::{fmt, ptr::NonNull};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex, MutexGuard},
};

/// Operation counts carried over when a reset rebuilds a damaged heap, so
/// that the figures only ever grow.
#[derive(Clone, Copy, Default)]
struct Carried {
    allocs: u64,
    frees: u64,
    failures: u64,
    search_steps: u64,
    insert_steps: u64,
}

/// What a heap's mutex guards.
struct HeapInner {
    heap: Heap<PoolRegion>,
    /// Bytes of the pool blocks the heap holds: what its file is charged.
    held: u64,
    regions_grown: u64,
    regions_released: u64,
    /// Allocations that the core refused for want of memory and that then
    /// succeeded in a new region: not failures from the caller's view.
    retried: u64,
    resets: u64,
    /// Corruptions reported in the kernel log.
    corruptions: u64,
    /// Whether the current corruption was reported; cleared by a rebuild.
    reported: bool,
    carried: Carried,
}

impl HeapInner {
    fn new(policy: Policy, flags: HeapFlags) -> Self {
        Self {
            heap: Heap::new(policy, flags),
            held: 0,
            regions_grown: 0,
            regions_released: 0,
            retried: 0,
            resets: 0,
            corruptions: 0,
            reported: false,
            carried: Carried::default(),
        }
    }

    /// The errno of a core error, reporting a corruption once.
    fn errno(&mut self, id: u32, e: HeapError) -> Error {
        match e {
            HeapError::Invalid => EINVAL,
            HeapError::NoMemory | HeapError::RegionsFull => ENOMEM,
            HeapError::CorruptTag { region, offset } => {
                if !self.reported {
                    self.reported = true;
                    self.corruptions += 1;
                    pr_err!(
                        "heap {}: corrupted boundary tag in region {} at offset {}; the heap refuses allocations and frees until it is reset\n",
                        id,
                        region,
                        offset
                    );
                }
                euclean()
            }
            HeapError::Poisoned => euclean(),
            HeapError::Inconsistent {
                region,
                offset,
                what,
            } => {
                pr_err!(
                    "heap {}: check failed: {} (region {}, offset {})\n",
                    id,
                    what.as_str(),
                    region,
                    offset
                );
                euclean()
            }
        }
    }

    /// Indexes of the regions in use.
    fn regions(&self) -> impl Iterator<Item = u32> + '_ {
        (0..REGIONS as u32).filter(|&r| self.heap.region(r).is_some())
    }

    /// Regions the heap holds now: every grown one less every released one.
    fn live_regions(&self) -> u64 {
        self.regions_grown - self.regions_released
    }

    /// The kernel address of the payload at `ptr`, if its region exists.
    fn addr_of(&self, ptr: Ptr) -> Option<NonNull<u8>> {
        let region = self.heap.region(ptr.region)?;
        if ptr.offset as usize >= region.bytes() {
            return None;
        }
        // In bounds of the region's block, checked just above.
        NonNull::new(region.base().as_ptr().wrapping_add(ptr.offset as usize))
    }

    /// Where in the heap the address `addr` is, if in one of its regions
    /// (the core's lookup, O(log regions)).
    #[inline(always)]
    fn ptr_of(&self, addr: NonNull<u8>) -> Option<Ptr> {
        self.heap.ptr_of(addr.as_ptr())
    }

    /// Gives region `r` back to the pool if it is wholly free; returns the
    /// bytes released.
    fn release(&mut self, r: u32) -> u64 {
        match self.heap.remove_region(r) {
            Some(mem) => {
                let bytes = mem.bytes() as u64;
                drop(mem);
                self.held = self.held.saturating_sub(bytes);
                self.regions_released += 1;
                bytes
            }
            None => 0,
        }
    }

    /// Adds a region of 2^`order` pages; returns its index and bytes.
    fn grow(&mut self, id: u32, pool: &Arc<Pool>, order: u32) -> Result<(u32, u64)> {
        if fault::Point::HeapGrow.should_fail(PAGE_SIZE << order) {
            return Err(ENOMEM);
        }
        let region = PoolRegion::new(pool, order)?;
        let bytes = region.bytes() as u64;
        // On error the core drops the region, which goes back to the pool.
        let r = self
            .heap
            .add_region(region)
            .map_err(|e| self.errno(id, e))?;
        self.held += bytes;
        self.regions_grown += 1;
        Ok((r, bytes))
    }
}

/// A heap with a fit policy, as a file of `/dev/rkalloc` owns it.
#[pin_data]
pub(crate) struct HeapObj {
    id: u32,
    pool: Arc<Pool>,
    #[pin]
    inner: Mutex<HeapInner>,
}

impl HeapObj {
    /// A heap of `policy` over `initial_bytes` of pool memory (0: 64 KiB),
    /// taken as power-of-two blocks of up to 4 MiB. EINVAL for more than
    /// every region slot can hold, ENOMEM beyond `budget` or when the pool
    /// is exhausted.
    pub(crate) fn new(
        pool: &Arc<Pool>,
        id: u32,
        policy: Policy,
        flags: HeapFlags,
        initial_bytes: u64,
        budget: u64,
    ) -> Result<Arc<Self>> {
        let initial = match initial_bytes {
            0 => (PAGE_SIZE << MIN_GROW_ORDER) as u64,
            n if n > MAX_INITIAL => return Err(EINVAL),
            n => n,
        };
        let heap = Arc::pin_init(
            pin_init!(HeapObj {
                id,
                pool: pool.clone(),
                inner <- new_mutex!(HeapInner::new(policy, flags), "rkalloc_heap"),
            }),
            GFP_KERNEL,
        )?;
        {
            let mut g = heap.inner.lock();
            let mut left = initial;
            while left > 0 {
                // `left` is at most MAX_INITIAL, so the conversion holds.
                let chunk = usize::try_from(left.min(MAX_REGION as u64)).map_err(|_| EINVAL)?;
                let order = order_for(chunk).ok_or(EINVAL)?;
                if g.held + ((PAGE_SIZE as u64) << order) > budget {
                    return Err(ENOMEM);
                }
                g.grow(id, pool, order)?;
                left = left.saturating_sub((PAGE_SIZE as u64) << order);
            }
        }
        Ok(heap)
    }

    /// Bytes of pool memory the heap holds.
    pub(crate) fn held(&self) -> u64 {
        self.inner.lock().held
    }

    /// For `RKALLOC_IOC_LIST`: the heap's number, its policy, its flags
    /// and the bytes it holds.
    pub(crate) fn describe(&self) -> (u32, Policy, HeapFlags, u64) {
        let g = self.inner.lock();
        (self.id, g.heap.policy(), g.heap.flags(), g.held)
    }

    /// Allocates `size` bytes (1 to [`MAX_REQUEST`]). When no free block fits,
    /// the heap grows by one region if `budget` bytes allow it. Returns the
    /// allocation and the bytes taken from the pool for it.
    pub(crate) fn alloc(&self, size: usize, budget: u64) -> Result<(Ptr, u64)> {
        let mut g = self.inner.lock();
        let (p, grown) = self.alloc_in(&mut g, size, budget)?;
        trace_alloc(&g, p, size);
        Ok((p, grown))
    }

    /// [`Self::alloc`], returning the allocation's kernel address, under one
    /// lock round trip.
    #[inline(always)]
    pub(crate) fn alloc_addr(&self, size: usize, budget: u64) -> Result<NonNull<u8>> {
        let mut g = self.inner.lock();
        let (p, _) = self.alloc_in(&mut g, size, budget)?;
        trace_alloc(&g, p, size);
        g.addr_of(p).ok_or(EINVAL)
    }

    fn alloc_in(&self, g: &mut HeapInner, size: usize, budget: u64) -> Result<(Ptr, u64)> {
        if size == 0 || size > MAX_REQUEST {
            return Err(EINVAL);
        }
        match g.heap.alloc(size) {
            Ok(p) => return Ok((p, 0)),
            Err(HeapError::NoMemory) => {}
            Err(e) => return Err(g.errno(self.id, e)),
        }
        // The smallest region that serves `size`: MAX_REQUEST is far below
        // what a top-order region serves, so the loop ends in range.
        let mut need = order_for(size).ok_or(EINVAL)?;
        while max_alloc_in(PAGE_SIZE << need) < size {
            need += 1;
            if need > MAX_ORDER {
                return Err(EINVAL);
            }
        }
        let order = grow_order(need, g.held, budget).ok_or(ENOMEM)?;
        let (r, grown) = g.grow(self.id, &self.pool, order)?;
        match g.heap.alloc(size) {
            Ok(p) => {
                g.retried += 1;
                Ok((p, grown))
            }
            Err(e) => {
                // The fresh region serves `size`, so only corruption gets
                // here. Give the region back if the heap still can.
                let err = g.errno(self.id, e);
                g.release(r);
                Err(err)
            }
        }
    }

    /// Frees the allocation at `ptr`; EINVAL if it is not a live allocation
    /// of this heap. Gives its region back when that is wholly free and not
    /// the heap's last. Returns the bytes given back.
    pub(crate) fn free(&self, ptr: Ptr) -> Result<u64> {
        self.free_in(&mut self.inner.lock(), ptr)
    }

    /// Frees the allocation at kernel address `addr`, under one lock round
    /// trip; EINVAL if it is not a live allocation of this heap.
    #[inline(always)]
    pub(crate) fn free_addr(&self, addr: NonNull<u8>) -> Result<u64> {
        let mut g = self.inner.lock();
        let ptr = g.ptr_of(addr).ok_or(EINVAL)?;
        self.free_in(&mut g, ptr)
    }

    #[inline(always)]
    fn free_in(&self, g: &mut HeapInner, ptr: Ptr) -> Result<u64> {
        // The address only names the block in the event (hashed).
        let addr = if sys::trace::free_on() {
            g.addr_of(ptr).map_or(core::ptr::null(), |a| a.as_ptr().cast_const())
        } else {
            core::ptr::null()
        };
        let emptied = g.heap.free_emptied(ptr).map_err(|e| g.errno(self.id, e))?;
        if sys::trace::free_on() {
            sys::trace::free(c"rk_heap", addr, 0, -1);
        }
        // The core says when the region became wholly free, so the region
        // is tried (and validated in full by `remove_region`) only then,
        // not at every free.
        if !emptied || g.live_regions() <= 1 {
            return Ok(0);
        }
        Ok(g.release(ptr.region))
    }

    /// Runs `f` on the payload of the live allocation at `ptr`: the bytes
    /// that were asked for.
    pub(crate) fn with_payload<R>(&self, ptr: Ptr, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let mut g = self.inner.lock();
        let info = g.heap.locate(ptr).map_err(|e| g.errno(self.id, e))?;
        let start = ptr.offset as usize;
        let end = start + info.requested as usize;
        let mem = g
            .heap
            .region_mut(ptr.region)
            .and_then(|m| m.as_mut().get_mut(start..end))
            .ok_or(EINVAL)?;
        Ok(f(mem))
    }

    #[cfg(rkalloc_kunit)]
    /// The kernel address of the payload at `ptr`, if its region exists.
    pub(crate) fn addr_of(&self, ptr: Ptr) -> Option<NonNull<u8>> {
        self.inner.lock().addr_of(ptr)
    }

    #[cfg(rkalloc_kunit)]
    /// Where in the heap the address `addr` is, if in one of its regions.
    /// Whether it is a live allocation is for [`HeapObj::free`] to decide.
    pub(crate) fn ptr_of(&self, addr: NonNull<u8>) -> Option<Ptr> {
        self.inner.lock().ptr_of(addr)
    }

    /// Starts a reset: the heap stays locked until [`HeapReset::finish`].
    pub(crate) fn begin_reset(&self) -> HeapReset<'_> {
        HeapReset {
            id: self.id,
            g: self.inner.lock(),
            failed: false,
        }
    }

    /// Runs the core's invariant check; reports a failure in the kernel log.
    pub(crate) fn check(&self) -> Result {
        let mut g = self.inner.lock();
        match g.heap.check() {
            Ok(()) => Ok(()),
            Err(e) => Err(g.errno(self.id, e)),
        }
    }

    /// A snapshot of the figures.
    pub(crate) fn view(&self) -> HeapView {
        let g = self.inner.lock();
        HeapView {
            id: self.id,
            stats: g.heap.stats(),
            frag: g.heap.frag(),
            held: g.held,
            regions_grown: g.regions_grown,
            regions_released: g.regions_released,
            retried: g.retried,
            resets: g.resets,
            corruptions: g.corruptions,
            poisoned: g.heap.corruption().is_some(),
            carried: g.carried,
        }
    }

    /// Runs `f` on the core heap, for tests that inspect or damage it.
    #[cfg(rkalloc_kunit)]
    fn with_core<R>(&self, f: impl FnOnce(&mut Heap<PoolRegion>) -> R) -> R {
        f(&mut self.inner.lock().heap)
    }
}

/// Fires `rkalloc:rk_alloc` for the allocation at `p`.
#[inline]
fn trace_alloc(g: &HeapInner, p: Ptr, size: usize) {
    if sys::trace::alloc_on() {
        let addr = g.addr_of(p).map_or(core::ptr::null(), |a| a.as_ptr().cast_const());
        sys::trace::alloc(c"rk_heap", addr, size, -1);
    }
}

/// A heap reset in progress: the caller frees every live allocation it
/// knows of, then [`HeapReset::finish`] settles the heap.
pub(crate) struct HeapReset<'a> {
    id: u32,
    g: MutexGuard<'a, HeapInner>,
    failed: bool,
}

impl HeapReset<'_> {
    /// Frees one live allocation; a failure makes `finish` rebuild the heap.
    pub(crate) fn free(&mut self, ptr: Ptr) {
        if let Err(e) = self.g.heap.free(ptr) {
            let _ = self.g.errno(self.id, e);
            self.failed = true;
        }
    }

    /// Ends the reset and returns the bytes given back to the pool.
    ///
    /// A healthy heap is now wholly free: it keeps its largest region and
    /// gives the others back. A damaged one (or one that still had blocks
    /// the caller did not name) is rebuilt empty: all its regions go back.
    pub(crate) fn finish(mut self) -> u64 {
        let g = &mut *self.g;
        g.resets += 1;
        if self.failed || g.heap.corruption().is_some() || g.heap.stats().live_allocs != 0 {
            let s = g.heap.stats();
            let c = &mut g.carried;
            c.allocs += s.allocs;
            c.frees += s.frees;
            c.failures += s.failures;
            c.search_steps += s.search_steps;
            c.insert_steps += s.insert_steps;
            // In place (a heap is a few KiB; this runs on an ioctl's
            // stack): dropping the regions gives them back to the pool.
            g.heap.clear();
            g.regions_released += u64::from(s.regions);
            g.reported = false;
            return core::mem::take(&mut g.held);
        }
        let keep = g
            .regions()
            .max_by_key(|&r| g.heap.region(r).map_or(0, |m| m.bytes()));
        let mut released = 0;
        for r in 0..REGIONS as u32 {
            if Some(r) != keep {
                released += g.release(r);
            }
        }
        released
    }
}

/// A snapshot of a heap for debugfs and tests.
pub(crate) struct HeapView {
    id: u32,
    stats: HeapStats,
    frag: FragReport,
    held: u64,
    regions_grown: u64,
    regions_released: u64,
    retried: u64,
    resets: u64,
    corruptions: u64,
    poisoned: bool,
    carried: Carried,
}

impl HeapView {
    /// The heap's fragmentation figures.
    pub(crate) fn frag(&self) -> FragReport {
        self.frag
    }

    /// Live allocations.
    pub(crate) fn live(&self) -> u64 {
        self.stats.live_allocs
    }
}

/// The header of the `heaps` file: one column per figure of a line.
pub(crate) const HEAPS_HEADER: &str = "# id policy flags regions size used free largest_free requested internal internal_permille external_permille metadata live allocs frees failures search_steps insert_steps grown released resets corruptions state";

impl fmt::Display for HeapView {
    /// One line of the `heaps` file, in the columns of [`HEAPS_HEADER`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let c = &self.carried;
        let flags = if s.flags.contains(HeapFlags::DEBUG) {
            "debug"
        } else {
            "-"
        };
        write!(
            f,
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.id,
            s.policy.name(),
            flags,
            s.regions,
            self.held,
            s.used_bytes,
            s.free_bytes,
            s.largest_free_bytes,
            s.requested_bytes,
            self.frag.internal_bytes(),
            self.frag.internal_permille(),
            self.frag.external_permille(),
            self.frag.metadata_bytes,
            s.live_allocs,
            s.allocs + c.allocs,
            s.frees + c.frees,
            // Requests served after growing are not failures.
            (s.failures + c.failures).saturating_sub(self.retried),
            s.search_steps + c.search_steps,
            s.insert_steps + c.insert_steps,
            self.regions_grown,
            self.regions_released,
            self.resets,
            self.corruptions,
            if self.poisoned { "corrupt" } else { "ok" }
        )
    }
}

/// A heap allocation as a file owns it: the heap and where in it.
pub(crate) struct HeapBlock {
    /// The heap it came from.
    pub(crate) heap: Arc<HeapObj>,
    /// Where it is in the heap.
    pub(crate) ptr: Ptr,
}

impl HeapBlock {
    /// Whether the block belongs to `heap`.
    pub(crate) fn is_of(&self, heap: &Arc<HeapObj>) -> bool {
        Arc::ptr_eq(&self.heap, heap)
    }
}

#[cfg(rkalloc_kunit)]
mod tests;
