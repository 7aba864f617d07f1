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
//! The [`Catalog`] lists every live heap and arena of every open file, for
//! the debugfs views and the invariant check.
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

use crate::{
    arena::ArenaObj,
    pool::{Block, Pool, PAGE_SIZE},
    registry::Allocator,
    rkcore::{
        buddy::MAX_ORDER,
        frag::FragReport,
        heap::{max_alloc_in, Heap, HeapError, HeapFlags, HeapStats, Policy, Ptr},
    },
    sys::euclean,
    uapi,
};
use core::{
    fmt,
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering::Relaxed},
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex, MutexGuard},
};

/// Largest heap (and arena) allocation: `RKALLOC_MAX_HEAP_ALLOC`.
pub(crate) const MAX_ALLOC: usize = uapi::RKALLOC_MAX_HEAP_ALLOC as usize;

/// Smallest region a heap or arena grows by: 64 KiB.
pub(crate) const MIN_GROW_ORDER: u32 = 4;

/// Bytes of the largest region: one top-order pool block.
const MAX_REGION: usize = PAGE_SIZE << MAX_ORDER;

/// Region slots of a heap or arena.
const REGIONS: usize = crate::rkcore::heap::MAX_REGIONS;

/// Most bytes a heap may be created with: every region slot a top-order
/// block.
const MAX_INITIAL: u64 = (REGIONS * MAX_REGION) as u64;

/// A pool block lent to a heap or an arena as one region.
///
/// # Invariants
///
/// `block` was allocated from `pool` and belongs to this value alone: no one
/// else reads or writes its `block.bytes()` bytes, which stay allocated
/// until `drop` gives them back to `pool`, exactly once.
pub(crate) struct PoolRegion {
    pool: Arc<Pool>,
    block: Block,
}

impl PoolRegion {
    /// Takes a block of 2^`order` pages from `pool` for a heap.
    pub(crate) fn new(pool: &Arc<Pool>, order: u32) -> Result<Self> {
        Self::tagged(pool, order, crate::pool::tag::HEAP)
    }

    /// Takes a block of 2^`order` pages from `pool` for the owner class
    /// `tag` (a [`crate::pool::tag`] constant).
    pub(crate) fn tagged(pool: &Arc<Pool>, order: u32, tag: u8) -> Result<Self> {
        let block = pool.alloc_tagged(order, tag)?;
        // INVARIANT: the pool hands a block to one caller only.
        Ok(Self {
            pool: pool.clone(),
            block,
        })
    }

    /// Size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.block.bytes()
    }

    /// Kernel address of the first byte.
    fn base(&self) -> NonNull<u8> {
        self.block.addr
    }
}

impl AsRef<[u8]> for PoolRegion {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the block is `bytes()` bytes of pool memory in the kernel's
        // linear map, owned by `self` alone and allocated while `self` lives
        // (type invariant); `&self` excludes writers for the borrow.
        unsafe { core::slice::from_raw_parts(self.block.addr.as_ptr(), self.block.bytes()) }
    }
}

impl AsMut<[u8]> for PoolRegion {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.block.addr.as_ptr(), self.block.bytes()) }
    }
}

impl Drop for PoolRegion {
    fn drop(&mut self) {
        // The pool refuses only a block it did not hand out, which the type
        // invariant rules out; should it happen, leaking is the safe answer.
        if self.pool.free(self.block.pfn, self.block.order).is_err() {
            pr_err!(
                "heap region of order {} refused by the pool\n",
                self.block.order
            );
        }
    }
}

/// The smallest order whose block holds at least `bytes` bytes, if any.
pub(crate) fn order_for(bytes: usize) -> Option<u32> {
    let pages = bytes.div_ceil(PAGE_SIZE).max(1);
    let order = pages.checked_next_power_of_two()?.trailing_zeros();
    (order <= MAX_ORDER).then_some(order)
}

/// The order of the region to grow by, for a request that needs a region of
/// order `need` at least, when the allocator holds `held` bytes and may take
/// `budget` more.
///
/// Growth is geometric (the new region is as large as all that is held,
/// within 64 KiB and 4 MiB), so that the 32 region slots last; when the
/// budget is tight, the smallest region that serves the request is taken.
pub(crate) fn grow_order(need: u32, held: u64, budget: u64) -> Option<u32> {
    let want = usize::try_from(held)
        .unwrap_or(MAX_REGION)
        .clamp(PAGE_SIZE << MIN_GROW_ORDER, MAX_REGION);
    let order = order_for(want)?.max(need);
    if (PAGE_SIZE as u64) << order <= budget {
        Some(order)
    } else if (PAGE_SIZE as u64) << need <= budget {
        Some(need)
    } else {
        None
    }
}

/// The fit policy named by a `RKALLOC_POLICY_*` value.
pub(crate) fn policy_from_uapi(policy: u32) -> Option<Policy> {
    match policy {
        uapi::RKALLOC_POLICY_FIRST_FIT => Some(Policy::FirstFit),
        uapi::RKALLOC_POLICY_NEXT_FIT => Some(Policy::NextFit),
        uapi::RKALLOC_POLICY_BEST_FIT => Some(Policy::BestFit),
        uapi::RKALLOC_POLICY_SEGREGATED_FIT => Some(Policy::SegregatedFit),
        _ => None,
    }
}

/// The heap options named by `RKALLOC_HEAP_*` bits, if all are known.
pub(crate) fn flags_from_uapi(flags: u32) -> Option<HeapFlags> {
    if flags & !uapi::RKALLOC_HEAP_DEBUG != 0 {
        return None;
    }
    Some(if flags & uapi::RKALLOC_HEAP_DEBUG != 0 {
        HeapFlags::DEBUG
    } else {
        HeapFlags::NONE
    })
}

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
                    what,
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

    /// Where in the heap the address `addr` is, if in one of its regions.
    fn ptr_of(&self, addr: NonNull<u8>) -> Option<Ptr> {
        let a = addr.as_ptr() as usize;
        self.regions().find_map(|r| {
            let m = self.heap.region(r)?;
            let base = m.base().as_ptr() as usize;
            let offset = a.checked_sub(base).filter(|&o| o < m.bytes())?;
            Some(Ptr {
                region: r,
                offset: offset as u32,
            })
        })
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

    /// For `RKALLOC_IOC_LIST`: the heap's number, its `RKALLOC_POLICY_*`,
    /// its `RKALLOC_HEAP_*` flags and the bytes it holds.
    pub(crate) fn describe(&self) -> (u32, u32, u32, u64) {
        let g = self.inner.lock();
        let policy = match g.heap.policy() {
            Policy::FirstFit => uapi::RKALLOC_POLICY_FIRST_FIT,
            Policy::NextFit => uapi::RKALLOC_POLICY_NEXT_FIT,
            Policy::BestFit => uapi::RKALLOC_POLICY_BEST_FIT,
            Policy::SegregatedFit => uapi::RKALLOC_POLICY_SEGREGATED_FIT,
        };
        (self.id, policy, g.heap.flags().bits() & uapi::RKALLOC_HEAP_DEBUG, g.held)
    }

    /// Allocates `size` bytes (1 to [`MAX_ALLOC`]). When no free block fits,
    /// the heap grows by one region if `budget` bytes allow it. Returns the
    /// allocation and the bytes taken from the pool for it.
    pub(crate) fn alloc(&self, size: usize, budget: u64) -> Result<(Ptr, u64)> {
        self.alloc_in(&mut self.inner.lock(), size, budget)
    }

    /// [`Self::alloc`], returning the allocation's kernel address, under one
    /// lock round trip.
    pub(crate) fn alloc_addr(&self, size: usize, budget: u64) -> Result<NonNull<u8>> {
        let mut g = self.inner.lock();
        let (p, _) = self.alloc_in(&mut g, size, budget)?;
        g.addr_of(p).ok_or(EINVAL)
    }

    fn alloc_in(&self, g: &mut HeapInner, size: usize, budget: u64) -> Result<(Ptr, u64)> {
        if size == 0 || size > MAX_ALLOC {
            return Err(EINVAL);
        }
        match g.heap.alloc(size) {
            Ok(p) => return Ok((p, 0)),
            Err(HeapError::NoMemory) => {}
            Err(e) => return Err(g.errno(self.id, e)),
        }
        // The smallest region that serves `size`: MAX_ALLOC is far below
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
    pub(crate) fn free_addr(&self, addr: NonNull<u8>) -> Result<u64> {
        let mut g = self.inner.lock();
        let ptr = g.ptr_of(addr).ok_or(EINVAL)?;
        self.free_in(&mut g, ptr)
    }

    fn free_in(&self, g: &mut HeapInner, ptr: Ptr) -> Result<u64> {
        g.heap.free(ptr).map_err(|e| g.errno(self.id, e))?;
        if g.live_regions() <= 1 {
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

    /// The kernel address of the payload at `ptr`, if its region exists.
    pub(crate) fn addr_of(&self, ptr: Ptr) -> Option<NonNull<u8>> {
        self.inner.lock().addr_of(ptr)
    }

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
    #[cfg(CONFIG_KUNIT = "y")]
    fn with_core<R>(&self, f: impl FnOnce(&mut Heap<PoolRegion>) -> R) -> R {
        f(&mut self.inner.lock().heap)
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
            let old = core::mem::replace(&mut g.heap, Heap::new(s.policy, s.flags));
            // Dropping the old heap gives every region back to the pool.
            drop(old);
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

/// The header of the `heaps` file: one column per figure of a line.
const HEAPS_HEADER: &str = "# id policy flags regions size used free largest_free requested internal internal_permille external_permille metadata live allocs frees failures search_steps insert_steps grown released resets corruptions state";

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

/// A heap as the benchmark and the replay see it: addresses in, addresses
/// out, through [`HeapObj::addr_of`] and [`HeapObj::ptr_of`].
pub(crate) struct HeapAllocator(Arc<HeapObj>);

impl HeapAllocator {
    /// A private heap of `policy` on `pool`, growing without a budget (up
    /// to its 32 regions), listed nowhere.
    pub(crate) fn new(pool: &Arc<Pool>, policy: Policy) -> Result<Self> {
        Ok(Self(HeapObj::new(
            pool,
            0,
            policy,
            HeapFlags::NONE,
            0,
            u64::MAX,
        )?))
    }
}

impl Allocator for HeapAllocator {
    fn name(&self) -> &'static str {
        match self.0.inner.lock().heap.policy() {
            Policy::FirstFit => "rk_heap_first",
            Policy::NextFit => "rk_heap_next",
            Policy::BestFit => "rk_heap_best",
            Policy::SegregatedFit => "rk_heap_segregated",
        }
    }

    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.alloc_addr(size, u64::MAX).ok()
    }

    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        let _ = self.0.free_addr(p);
    }

    fn frag(&self) -> Option<FragReport> {
        Some(self.0.view().frag)
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

/// Every live heap and arena, of every open file.
#[pin_data]
pub(crate) struct Catalog {
    next_id: AtomicU32,
    #[pin]
    heaps: Mutex<KVec<Arc<HeapObj>>>,
    #[pin]
    arenas: Mutex<KVec<Arc<ArenaObj>>>,
}

impl Catalog {
    /// An empty catalog.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Catalog {
                next_id: AtomicU32::new(1),
                heaps <- new_mutex!(KVec::new(), "rkalloc_heaps"),
                arenas <- new_mutex!(KVec::new(), "rkalloc_arenas"),
            }),
            GFP_KERNEL,
        )
    }

    /// A fresh number for a heap or an arena.
    pub(crate) fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Lists `heap`.
    pub(crate) fn add_heap(&self, heap: &Arc<HeapObj>) -> Result {
        self.heaps.lock().push(heap.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets `heap`.
    pub(crate) fn remove_heap(&self, heap: &Arc<HeapObj>) {
        self.heaps.lock().retain(|h| !Arc::ptr_eq(h, heap));
    }

    /// Lists `arena`.
    pub(crate) fn add_arena(&self, arena: &Arc<ArenaObj>) -> Result {
        self.arenas.lock().push(arena.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets `arena`.
    pub(crate) fn remove_arena(&self, arena: &Arc<ArenaObj>) {
        self.arenas.lock().retain(|a| !Arc::ptr_eq(a, arena));
    }

    /// Calls `f` on every live heap of every fd, in creation order.
    pub(crate) fn for_each_heap(&self, mut f: impl FnMut(&Arc<HeapObj>) -> Result) -> Result {
        self.heaps.lock().iter().try_for_each(|h| f(h))
    }

    /// Checks every heap; returns (heaps checked, heaps failing).
    pub(crate) fn check(&self) -> (u64, u64) {
        let heaps = self.heaps.lock();
        let bad = heaps.iter().filter(|h| h.check().is_err()).count();
        (heaps.len() as u64, bad as u64)
    }

    /// The `heaps` file: a header, then one line per heap.
    pub(crate) fn show_heaps(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", HEAPS_HEADER)?;
        for h in self.heaps.lock().iter() {
            writeln!(f, "{}", h.view())?;
        }
        Ok(())
    }

    /// The `arenas` file: a header, then one line per arena.
    pub(crate) fn show_arenas(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", crate::arena::ARENAS_HEADER)?;
        for a in self.arenas.lock().iter() {
            writeln!(f, "{}", a.view())?;
        }
        Ok(())
    }
}

#[kunit_tests(rkalloc_heap)]
mod tests {
    use super::*;
    use crate::pool::PoolConfig;
    use crate::rkcore::heap::BlockInfo;

    /// A private pool: one 4 MiB chunk, growing to four.
    fn test_pool() -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(1, 4))
    }

    /// xorshift64*: a deterministic mix of sizes and orders.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// A value in `0..n`, `n > 0`.
        fn below(&mut self, n: u64) -> u64 {
            self.next().checked_rem(n).unwrap_or(0)
        }
    }

    /// The byte pattern `pat` at offset `i`.
    fn pat_byte(pat: u64, i: usize) -> u8 {
        (pat.wrapping_mul(i as u64 + 1) >> 24) as u8 ^ i as u8
    }

    fn fill(mem: &mut [u8], pat: u64) {
        for (i, b) in mem.iter_mut().enumerate() {
            *b = pat_byte(pat, i);
        }
    }

    fn intact(mem: &[u8], pat: u64) -> bool {
        mem.iter().enumerate().all(|(i, b)| *b == pat_byte(pat, i))
    }

    /// Mostly small requests, some up to 16 KiB, a few up to 200 KiB (which
    /// make a 64 KiB heap grow).
    fn mixed_size(rng: &mut Rng) -> usize {
        let r = rng.below(100);
        let max = if r < 70 {
            256
        } else if r < 95 {
            16 << 10
        } else {
            200 << 10
        };
        1 + rng.below(max) as usize
    }

    /// Every block of the heap, in address order.
    fn blocks(h: &HeapObj) -> Result<KVec<BlockInfo>> {
        let mut v = KVec::new();
        let mut err = Ok(());
        h.with_core(|heap| {
            heap.for_each_block(|b| {
                if err.is_ok() {
                    err = v.push(b, GFP_KERNEL).map_err(Error::from);
                }
            })
        })
        .map_err(|_| euclean())?;
        err?;
        Ok(v)
    }

    /// No two free blocks are neighbours in a region.
    fn assert_coalesced(h: &HeapObj) -> Result {
        let v = blocks(h)?;
        for w in v.windows(2) {
            if w[0].region == w[1].region {
                assert_eq!(w[0].offset + w[0].size, w[1].offset);
                assert!(w[0].allocated || w[1].allocated);
            }
        }
        Ok(())
    }

    /// Every policy, with and without check values: random allocations and
    /// frees of mixed sizes on real pool pages. Each allocation is filled
    /// with its own pattern and verified before its free, live payloads
    /// never overlap, and every invariant holds after every step.
    #[test]
    fn random_ops_every_policy() -> Result {
        let pool = test_pool()?;
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for policy in Policy::ALL {
            for flags in [HeapFlags::NONE, HeapFlags::DEBUG] {
                let h = HeapObj::new(&pool, 1, policy, flags, 0, u64::MAX)?;
                let mut live: KVec<(Ptr, usize, u64)> = KVec::new();
                for _ in 0..300 {
                    if live.is_empty() || (live.len() < 48 && rng.below(100) < 60) {
                        let size = mixed_size(&mut rng);
                        let (p, _) = h.alloc(size, u64::MAX)?;
                        assert_eq!(p.offset % 16, 0);
                        let pat = rng.next();
                        assert_eq!(
                            h.with_payload(p, |m| {
                                fill(m, pat);
                                m.len()
                            })?,
                            size
                        );
                        live.push((p, size, pat), GFP_KERNEL)?;
                    } else {
                        let i = rng.below(live.len() as u64) as usize;
                        let last = live.len() - 1;
                        live.swap(i, last);
                        let (p, _, pat) = live.pop().ok_or(EINVAL)?;
                        assert!(h.with_payload(p, |m| intact(m, pat))?);
                        h.free(p)?;
                    }
                    h.check()?;
                    assert_coalesced(&h)?;
                }
                // Live payloads are pairwise disjoint.
                for (i, a) in live.iter().enumerate() {
                    for b in &live[i + 1..] {
                        if a.0.region == b.0.region {
                            let (a0, b0) = (a.0.offset as usize, b.0.offset as usize);
                            assert!(a0 + a.1 <= b0 || b0 + b.1 <= a0);
                        }
                    }
                }
                for (p, _, pat) in live.iter() {
                    assert!(h.with_payload(*p, |m| intact(m, *pat))?);
                }
                while let Some((p, _, _)) = live.pop() {
                    h.free(p)?;
                    h.check()?;
                }
                // All free: one free block per region.
                let v = blocks(&h)?;
                let regions = h.view().stats.regions;
                assert_eq!(v.len(), regions as usize);
                assert!(v.iter().all(|b| !b.allocated));
                let s = h.view().stats;
                assert_eq!((s.used_bytes, s.requested_bytes, s.live_allocs), (0, 0, 0));
            }
        }
        assert_eq!(pool.stats().total_pages - pool.stats().free_pages, 0);
        Ok(())
    }

    /// Payloads of the given sizes (multiples of 16) as the only free blocks
    /// of a 64 KiB heap, in ascending address order between allocated
    /// spacers; returns the heap and the blocks' spans.
    fn craft(
        pool: &Arc<Pool>,
        policy: Policy,
        payloads: &[usize],
    ) -> Result<(Arc<HeapObj>, KVec<(u32, u32)>)> {
        let h = HeapObj::new(pool, 1, policy, HeapFlags::DEBUG, 64 << 10, u64::MAX)?;
        let mut blocks = KVec::new();
        // The core carves requests from the top of the free space, so the
        // blocks come out in descending address order.
        for &p in payloads.iter().rev() {
            blocks.push(h.alloc(p, 0)?.0, GFP_KERNEL)?;
            h.alloc(16, 0)?;
        }
        let rest = h.view().stats.largest_free_bytes as usize;
        h.alloc(rest, 0)?;
        assert_eq!(h.view().stats.free_blocks, 0);
        let mut spans = KVec::new();
        for &b in blocks.iter().rev() {
            let info = h.with_core(|c| c.locate(b)).map_err(|_| EINVAL)?;
            spans.push((info.offset, info.offset + info.size), GFP_KERNEL)?;
            h.free(b)?;
        }
        h.check()?;
        Ok((h, spans))
    }

    /// Which crafted block each request was carved from.
    fn pick(
        pool: &Arc<Pool>,
        policy: Policy,
        payloads: &[usize],
        reqs: &[usize],
    ) -> Result<KVec<usize>> {
        let (h, spans) = craft(pool, policy, payloads)?;
        let mut out = KVec::new();
        for &r in reqs {
            // Budget 0: a request no crafted block fits fails rather than
            // growing the heap.
            let (p, grown) = h.alloc(r, 0)?;
            assert_eq!(grown, 0);
            let info = h.with_core(|c| c.locate(p)).map_err(|_| EINVAL)?;
            let i = spans
                .iter()
                .position(|&(lo, hi)| info.offset >= lo && info.offset + info.size <= hi)
                .ok_or(EINVAL)?;
            out.push(i, GFP_KERNEL)?;
            h.check()?;
        }
        Ok(out)
    }

    /// Each policy takes the block it should on the same crafted layout of
    /// free blocks with payloads 64, 512, 128 and 256 bytes.
    #[test]
    fn each_policy_picks_its_block() -> Result {
        let pool = test_pool()?;
        let layout = [64, 512, 128, 256];
        // A request of 100 bytes needs a 128-byte block (payload 112).
        assert_eq!(&pick(&pool, Policy::FirstFit, &layout, &[100])?[..], &[1]);
        assert_eq!(&pick(&pool, Policy::BestFit, &layout, &[100])?[..], &[2]);
        assert_eq!(
            &pick(&pool, Policy::SegregatedFit, &layout, &[100])?[..],
            &[2]
        );
        // 140 needs 160: best fit takes the 256-byte payload; segregated fit
        // the head of the next non-empty class, the same block.
        assert_eq!(&pick(&pool, Policy::BestFit, &layout, &[140])?[..], &[3]);
        assert_eq!(
            &pick(&pool, Policy::SegregatedFit, &layout, &[140])?[..],
            &[3]
        );
        assert_eq!(&pick(&pool, Policy::FirstFit, &layout, &[16])?[..], &[0]);
        // Next fit resumes after block 1, which the first request used up;
        // first fit goes back to block 0.
        let nf = [64, 256, 64, 64];
        assert_eq!(
            &pick(&pool, Policy::NextFit, &nf, &[256, 48, 48, 48])?[..],
            &[1, 2, 3, 0]
        );
        assert_eq!(
            &pick(&pool, Policy::FirstFit, &nf, &[256, 48])?[..],
            &[1, 0]
        );
        Ok(())
    }

    /// A request no free block fits adds a region: geometric growth when
    /// the budget allows, the smallest sufficient region when it is tight,
    /// ENOMEM (and nothing changed) when it does not allow any.
    #[test]
    fn growth_adds_a_region() -> Result {
        let pool = test_pool()?;
        let h = HeapObj::new(&pool, 1, Policy::BestFit, HeapFlags::NONE, 0, u64::MAX)?;
        assert_eq!(h.held(), 64 << 10);
        let (a, grown) = h.alloc(100 << 10, u64::MAX)?;
        // 64 KiB held: a 100 KiB request needs a 128 KiB region.
        assert_eq!(grown, 128 << 10);
        assert_eq!(h.view().stats.regions, 2);
        let (b, grown) = h.alloc(MAX_ALLOC, u64::MAX)?;
        assert_eq!(grown, 2 << 20);
        assert_eq!(h.held(), (64 << 10) + (128 << 10) + (2 << 20));
        h.check()?;
        // No free block fits another 1 MiB, and a budget of 1 MiB allows
        // no region that serves it (2 MiB): ENOMEM, only the failure counted.
        let before = h.view();
        assert_eq!(h.alloc(MAX_ALLOC, 1 << 20).err(), Some(ENOMEM));
        let after = h.view();
        assert_eq!(after.stats.failures, before.stats.failures + 1);
        assert_eq!(
            (after.held, after.stats.regions),
            (before.held, before.stats.regions)
        );
        // Freeing the only block of a region gives the region back.
        assert_eq!(h.free(b)?, 2 << 20);
        assert_eq!(h.free(a)?, 128 << 10);
        assert_eq!(h.view().stats.regions, 1);
        // The last region stays.
        let (c, _) = h.alloc(10, u64::MAX)?;
        assert_eq!(h.free(c)?, 0);
        assert_eq!(h.held(), 64 << 10);
        h.check()
    }

    /// Bad input returns EINVAL and changes nothing: sizes 0 and above the
    /// limit, pointers that are not live allocations of this heap (another
    /// heap's, a payload's middle, a missing region), and a double free.
    #[test]
    fn bad_input_changes_nothing() -> Result {
        let pool = test_pool()?;
        for policy in Policy::ALL {
            let h = HeapObj::new(&pool, 1, policy, HeapFlags::DEBUG, 0, u64::MAX)?;
            let other = HeapObj::new(&pool, 2, policy, HeapFlags::DEBUG, 0, u64::MAX)?;
            let (a, _) = h.alloc(100, u64::MAX)?;
            let (b, _) = h.alloc(1000, u64::MAX)?;
            // Different sizes, so `o` is no block start of `h`.
            other.alloc(48, u64::MAX)?;
            let (o, _) = other.alloc(200, u64::MAX)?;
            h.free(a)?;
            let snap = |h: &HeapObj| {
                let v = h.view();
                (v.stats, v.held, v.frag)
            };
            let before = snap(&h);
            for size in [0, MAX_ALLOC + 1, usize::MAX] {
                assert_eq!(h.alloc(size, u64::MAX).err(), Some(EINVAL));
            }
            let bad = [
                a, // double free
                o, // another heap's block
                Ptr {
                    region: b.region,
                    offset: b.offset + 16,
                },
                Ptr {
                    region: b.region,
                    offset: b.offset + 1,
                },
                Ptr {
                    region: 5,
                    offset: b.offset,
                },
                Ptr {
                    region: u32::MAX,
                    offset: u32::MAX,
                },
            ];
            for p in bad {
                assert_eq!(h.free(p).err(), Some(EINVAL));
                assert_eq!(h.with_payload(p, |_| ()).err(), Some(EINVAL));
            }
            assert!(before == snap(&h));
            h.check()?;
            h.free(b)?;
        }
        Ok(())
    }

    /// A damaged boundary tag in a debug heap is found, reported once, and
    /// the heap refuses to go on (EUCLEAN) without crashing; a reset
    /// rebuilds it and gives all its memory back.
    #[test]
    fn corrupt_tag_reported_once() -> Result {
        let pool = test_pool()?;
        let h = HeapObj::new(&pool, 7, Policy::FirstFit, HeapFlags::DEBUG, 0, u64::MAX)?;
        let (a, _) = h.alloc(100, u64::MAX)?;
        let (b, _) = h.alloc(100, u64::MAX)?;
        // One more byte of slack in both tags of `a`: a plausible tag that
        // only the check value can tell from a real one.
        h.with_core(|c| {
            let size = c.locate(a).map(|i| i.size as usize).unwrap_or(0);
            let hdr = a.offset as usize - 8;
            if let Some(m) = c.region_mut(a.region) {
                let m = m.as_mut();
                m[hdr + 4] = m[hdr + 4].wrapping_add(1);
                m[hdr + size - 8 + 4] = m[hdr + size - 8 + 4].wrapping_add(1);
            }
        });
        assert_eq!(h.free(a).err(), Some(euclean()));
        assert_eq!(h.free(b).err(), Some(euclean()));
        assert_eq!(h.alloc(8, u64::MAX).err(), Some(euclean()));
        assert_eq!(h.check().err(), Some(euclean()));
        let v = h.view();
        assert_eq!((v.corruptions, v.poisoned), (1, true));
        let held = h.held();
        let mut r = h.begin_reset();
        r.free(a);
        r.free(b);
        assert_eq!(r.finish(), held);
        let v = h.view();
        assert_eq!((v.held, v.poisoned, v.stats.regions), (0, false, 0));
        // The rebuilt heap works again and grows from nothing.
        let (c, grown) = h.alloc(100, u64::MAX)?;
        assert_eq!(grown, 64 << 10);
        h.free(c)?;
        h.check()
    }

    /// A reset frees every block, keeps the largest region and gives the
    /// others back; the heap is one free block afterwards.
    #[test]
    fn reset_frees_everything() -> Result {
        let pool = test_pool()?;
        for policy in Policy::ALL {
            let h = HeapObj::new(&pool, 1, policy, HeapFlags::NONE, 0, u64::MAX)?;
            let mut ptrs = KVec::new();
            let mut rng = Rng(99);
            for _ in 0..100 {
                ptrs.push(h.alloc(mixed_size(&mut rng), u64::MAX)?.0, GFP_KERNEL)?;
            }
            let v = h.view();
            assert!(v.stats.regions > 1);
            let largest = h.with_core(|c| {
                (0..REGIONS as u32)
                    .filter_map(|r| c.region(r))
                    .map(|m| m.bytes())
                    .max()
            });
            let mut r = h.begin_reset();
            for p in ptrs.iter() {
                r.free(*p);
            }
            assert_eq!(r.finish(), v.held - largest.unwrap_or(0) as u64);
            let v = h.view();
            assert_eq!(
                (v.stats.regions, v.stats.live_allocs, v.stats.free_blocks),
                (1, 0, 1)
            );
            assert_eq!(v.stats.frees, 100);
            h.check()?;
            // Pointers from before the reset are stale.
            assert_eq!(h.free(ptrs[0]).err(), Some(EINVAL));
        }
        Ok(())
    }

    /// Through the allocator interface of the benchmark and the replay:
    /// addresses are 16-byte aligned and map back to their blocks, frees
    /// by address restore an empty heap, and an address from elsewhere is
    /// ignored.
    #[test]
    fn allocator_by_address() -> Result {
        let pool = test_pool()?;
        for policy in Policy::ALL {
            let a = HeapAllocator::new(&pool, policy)?;
            let mut live = KVec::new();
            let mut requested = 0;
            for i in 1..60 {
                let size = i * 37;
                let p = a.alloc(size).ok_or(ENOMEM)?;
                assert_eq!(p.as_ptr() as usize % 16, 0);
                let ptr = a.0.ptr_of(p).ok_or(EINVAL)?;
                assert_eq!(a.0.addr_of(ptr), Some(p));
                live.push((p, size), GFP_KERNEL)?;
                requested += size as u64;
            }
            assert_eq!(a.frag().map(|f| f.requested_bytes), Some(requested));
            let outside = 0u64;
            // SAFETY: not an allocation of the heap, which must ignore it.
            unsafe { a.free(NonNull::from(&outside).cast(), 8) };
            assert_eq!(a.0.view().stats.live_allocs, live.len() as u64);
            for &(p, size) in live.iter() {
                // SAFETY: `p` came from `a.alloc(size)` and is freed once.
                unsafe { a.free(p, size) };
            }
            assert_eq!(a.frag().map(|f| f.requested_bytes), Some(0));
            a.0.check()?;
        }
        Ok(())
    }

    /// The common fragmentation figures: internal is handed out minus
    /// requested, metadata counts the tags, and external fragmentation
    /// appears once free memory is split.
    #[test]
    fn frag_figures() -> Result {
        let pool = test_pool()?;
        let h = HeapObj::new(&pool, 1, Policy::FirstFit, HeapFlags::NONE, 0, u64::MAX)?;
        let mut ptrs = KVec::new();
        // 17 bytes take a 48-byte block: 32 payload bytes, 15 of them slack.
        for _ in 0..10 {
            ptrs.push(h.alloc(17, u64::MAX)?.0, GFP_KERNEL)?;
        }
        let v = h.view();
        assert_eq!(v.frag.requested_bytes, 170);
        assert_eq!(v.frag.handed_out_bytes, 320);
        assert_eq!(v.frag.internal_bytes(), 150);
        assert_eq!(v.frag.external_permille(), 0);
        // Every block's two 8-byte tags are metadata.
        assert!(v.frag.metadata_bytes >= 11 * 16);
        // Free every other block: five one-block holes apart from the rest.
        for p in ptrs.iter().step_by(2) {
            h.free(*p)?;
        }
        let v = h.view();
        assert!(v.frag.external_permille() > 0);
        assert_eq!(v.stats.free_blocks, 6);
        Ok(())
    }
}
