// SPDX-License-Identifier: GPL-2.0
//! The page pool: the pure buddy allocator ([`crate::rkcore::buddy`]) over
//! chunks of `__get_free_pages(MAX_PAGE_ORDER)` memory, with per-CPU page
//! lists for orders 0 to [`PCP_MAX_ORDER`] in front ([`pcp`]), as the
//! kernel's pcp lists, and a chunk table ([`chunks`]) from addresses back
//! to pages.
//!
//! # Locking and invariants
//!
//! - `inner` (a spinlock) guards the buddy and the chunk table's writers.
//! - `marks[pfn].owner` is `order + 1` when `pfn` heads a block handed out
//!   to a user, else 0. Alloc sets it, free clears it with a
//!   compare-and-swap, so a double free or a free with the wrong order is
//!   refused in O(1) even on the per-CPU fast path, where the buddy never
//!   sees the block.
//! - Pages on a per-CPU list count as allocated for the buddy and as free
//!   for users: `buddy free + per-CPU cached + owned by users == total`.
//! - Every operation moves a block between those three states in ONE
//!   section that cannot be interrupted by a checker: with preemption
//!   disabled (a per-CPU list and the owner mark change together) or under
//!   `inner` (the buddy and the owner mark change together). So when every
//!   CPU is stopped ([`Pool::check`] runs under `stop_machine`), no block is
//!   in flight, and the equation above holds exactly even while other CPUs
//!   were busy allocating and freeing.

mod chunks;
mod pcp;
#[cfg(rkalloc_kunit)]
mod tests;

pub(crate) use pcp::PCP_MAX_ORDER;

use crate::{
    rkcore::{
        buddy::{Buddy, BuddyError, BuddyStats, CheckReport, PageMeta, PageState, CHUNK_PAGES, MAX_ORDER, NR_ORDERS},
        frag::FragReport,
    },
    sys::{self, fault, PerCpuShared},
};
use chunks::{Chunks, CHUNK_SHIFT};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed},
};
use kernel::{
    bindings, new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};
use pcp::{bump, Limits, Pcp, PCP_ORDERS};

pub(crate) use crate::rkcore::page::{PAGE_SHIFT, PAGE_SIZE};

/// Who took a block from the pool, as `rkctl map` shows it (the owner
/// class of `/sys/kernel/debug/rkalloc/map`, see `iface::map`).
pub(crate) mod tag {
    /// Unknown (the benchmark, tests).
    pub(crate) const OTHER: u8 = 0;
    /// A user's `RKALLOC_IOC_POOL_ALLOC` block.
    pub(crate) const USER: u8 = 1;
    /// A slab of a slab cache.
    pub(crate) const SLAB: u8 = 2;
    /// An `rk_malloc` allocation above the largest size class.
    pub(crate) const MALLOC_LARGE: u8 = 3;
    /// A region of a fit-policy heap.
    pub(crate) const HEAP: u8 = 4;
    /// A region of an arena.
    pub(crate) const ARENA: u8 = 5;
}

/// Occupancy map byte of a page of an offline chunk slot.
pub(crate) const MAP_OFFLINE: u8 = 0xff;
/// Occupancy map byte of a page free in the buddy.
pub(crate) const MAP_FREE: u8 = 0xfe;
/// Occupancy map byte of a page cached on a per-CPU list.
pub(crate) const MAP_CACHED: u8 = 0xfd;

/// A block handed out by the pool: 2^`order` pages at `addr`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    /// Index of the first page in the pool's page space.
    pub(crate) pfn: u32,
    /// Order of the block.
    pub(crate) order: u32,
    /// Kernel address of the first byte; page-aligned, and aligned to the
    /// block's size.
    pub(crate) addr: NonNull<u8>,
}

// SAFETY: a `Block` names memory owned by whoever holds it; it carries no
// thread affinity.
unsafe impl Send for Block {}
// SAFETY: as above; `&Block` only reads its fields.
unsafe impl Sync for Block {}

impl Block {
    /// Size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }
}

/// Memory parameters of a pool.
#[derive(Clone, Copy)]
pub(crate) struct PoolConfig {
    /// Chunks taken at creation.
    pub(crate) initial_chunks: u32,
    /// Most chunks the pool may hold.
    pub(crate) max_chunks: u32,
    /// Register a shrinker (the module's pool does; test pools do not).
    pub(crate) shrinker: bool,
}

impl PoolConfig {
    #[cfg(rkalloc_kunit)]
    /// A private pool without a shrinker (KUnit suites use these).
    pub(crate) const fn private(initial_chunks: u32, max_chunks: u32) -> Self {
        Self {
            initial_chunks,
            max_chunks,
            shrinker: false,
        }
    }
}

/// The buddy's page metadata, in vmalloc'd memory when large.
struct MetaVec(KVVec<PageMeta>);

impl AsRef<[PageMeta]> for MetaVec {
    fn as_ref(&self) -> &[PageMeta] {
        &self.0
    }
}

impl AsMut<[PageMeta]> for MetaVec {
    fn as_mut(&mut self) -> &mut [PageMeta] {
        &mut self.0
    }
}

struct Inner {
    buddy: Buddy<MetaVec>,
    high_water_pages: u64,
}

/// Pool-wide counters.
#[derive(Default)]
struct Counters {
    chunks_grown: AtomicU64,
    chunks_shrunk: AtomicU64,
    grow_failures: AtomicU64,
    bad_frees: AtomicU64,
}

/// What the pool knows about a block it handed out, one per page (read on
/// its head page).
///
/// Eight bytes, so that the marks of blocks of order 3 and up have a cache
/// line each and order-0 pages share one only in groups of eight: with a
/// byte per page, the blocks two CPUs cycle through their per-CPU lists
/// sat on one line, and every alloc and free bounced it between them (the
/// kernel avoids this with a 64-byte `struct page`). 8 bytes per 4 KiB
/// page is 0.2% of the pool.
#[repr(C, align(8))]
struct PageMark {
    /// `order + 1` while a user holds the block headed by this page, else 0.
    owner: AtomicU8,
    /// The [`tag`] of the user-held block; meaningful only while `owner` is
    /// non-zero (alloc writes it, free leaves it).
    tag: AtomicU8,
}

impl PageMark {
    fn new() -> Self {
        Self {
            owner: AtomicU8::new(0),
            tag: AtomicU8::new(tag::OTHER),
        }
    }
}

/// A buddy page pool.
#[pin_data(PinnedDrop)]
pub(crate) struct Pool {
    #[pin]
    inner: SpinLock<Inner>,
    chunks: Chunks,
    /// `marks[pfn]`: who holds the block headed by `pfn` (see [`PageMark`]).
    marks: KVVec<PageMark>,
    pcp: PerCpuShared<Pcp>,
    /// How much the per-CPU lists hold, for this pool's size.
    limits: Limits,
    counters: Counters,
    max_chunks: u32,
    #[pin]
    shrinker: Mutex<Option<sys::Shrinker>>,
}

/// A snapshot of the pool's counters.
pub(crate) struct PoolStats {
    pub(crate) total_pages: u64,
    pub(crate) free_pages: u64,
    pub(crate) pcp_pages: u64,
    pub(crate) high_water_pages: u64,
    pub(crate) chunks_grown: u64,
    pub(crate) chunks_shrunk: u64,
    pub(crate) grow_failures: u64,
    pub(crate) bad_frees: u64,
    pub(crate) nr_free: [u32; NR_ORDERS],
    pub(crate) buddy: BuddyStats,
    pub(crate) pcp_allocs: [u64; PCP_ORDERS],
    pub(crate) pcp_frees: [u64; PCP_ORDERS],
}

/// Maps a buddy refusal to an errno.
pub(crate) fn errno(e: BuddyError) -> Error {
    match e {
        BuddyError::NoMemory => ENOMEM,
        BuddyError::Busy => EBUSY,
        _ => EINVAL,
    }
}

impl Pool {
    /// Creates a pool and fills it with `cfg.initial_chunks` chunks.
    pub(crate) fn new(cfg: PoolConfig) -> Result<Arc<Self>> {
        if cfg.max_chunks == 0 || cfg.initial_chunks > cfg.max_chunks {
            return Err(EINVAL);
        }
        let meta_len = crate::rkcore::buddy::meta_len(cfg.max_chunks).ok_or(EINVAL)?;
        let meta = KVVec::from_elem(PageMeta::EMPTY, meta_len, GFP_KERNEL)?;
        let mut marks = KVVec::with_capacity(meta_len, GFP_KERNEL)?;
        for _ in 0..meta_len {
            marks.push(PageMark::new(), GFP_KERNEL)?;
        }
        let pool = Arc::pin_init(
            try_pin_init!(Pool {
                inner <- new_spinlock!(Inner { buddy: Buddy::new(MetaVec(meta)), high_water_pages: 0 }, "rkalloc_pool"),
                chunks: Chunks::new(cfg.max_chunks)?,
                marks,
                pcp: PerCpuShared::new(Pcp::new)?,
                limits: Limits::new(u64::from(cfg.max_chunks) * u64::from(CHUNK_PAGES), sys::nr_cpu_ids()),
                counters: Counters::default(),
                max_chunks: cfg.max_chunks,
                shrinker <- new_mutex!(None, "rkalloc_pool_shrinker"),
            }),
            GFP_KERNEL,
        )?;
        for _ in 0..cfg.initial_chunks {
            if !pool.grow()? {
                return Err(ENOMEM);
            }
        }
        if cfg.shrinker {
            pool.register_shrinker()?;
        }
        Ok(pool.into())
    }

    /// Most chunks this pool may hold.
    pub(crate) fn max_chunks(&self) -> u32 {
        self.max_chunks
    }

    /// The high mark and batch of this pool's per-CPU lists of `order`
    /// (both 0 above [`PCP_MAX_ORDER`]).
    pub(crate) fn pcp_limits(&self, order: usize) -> (u32, u32) {
        match (self.limits.high.get(order), self.limits.batch.get(order)) {
            (Some(&h), Some(&b)) => (h, b),
            _ => (0, 0),
        }
    }

    /// Writes the occupancy map of chunk slot `chunk` into `out`, one byte
    /// per page in the encoding of `iface::map` ([`MAP_OFFLINE`],
    /// [`MAP_FREE`], [`MAP_CACHED`], or `tag << 4 | order` for a page of a
    /// user-held block). `out` holds [`CHUNK_PAGES`] bytes; a shorter one is
    /// filled as far as it goes. Returns whether the chunk is online.
    ///
    /// A block the buddy counts as allocated but no user holds sits on a
    /// per-CPU list. O(blocks of the chunk), under the pool lock.
    pub(crate) fn map_chunk_into(&self, chunk: u32, out: &mut [u8]) -> bool {
        let inner = self.inner.lock();
        if chunk >= self.max_chunks || !inner.buddy.chunk_online(chunk) {
            out.fill(MAP_OFFLINE);
            return false;
        }
        // `chunk < max_chunks <= MAX_CHUNKS_LIMIT`: no overflow.
        let base = chunk << MAX_ORDER;
        let len = out.len().min(CHUNK_PAGES as usize);
        let out = &mut out[..len];
        let mut i = 0usize;
        while i < len {
            // `i < CHUNK_PAGES`, so this is a page of the chunk.
            let pfn = base | i as u32;
            // Blocks tile the chunk from its first page, so `pfn` is a head.
            let (byte, order) = match inner.buddy.page_state(pfn) {
                PageState::Free { order } => (MAP_FREE, order),
                PageState::Allocated { order } => match self.marks.get(pfn as usize).map(|m| (m.owner.load(Relaxed), m)) {
                    Some((0, _)) | None => (MAP_CACHED, order),
                    Some((_, m)) => {
                        let t = m.tag.load(Relaxed);
                        ((t & 0xf) << 4 | (order as u8 & 0xf), order)
                    }
                },
                // Not a head: the metadata is damaged (`check` says where).
                PageState::Tail | PageState::Offline => (MAP_OFFLINE, 0),
            };
            let end = i.saturating_add(1 << order.min(MAX_ORDER)).min(out.len());
            if let Some(s) = out.get_mut(i..end) {
                s.fill(byte);
            }
            i = end;
        }
        true
    }

    /// The pfn of the pool page at `addr`, if `addr` lies in an online
    /// chunk (O(1), see [`chunks`]).
    #[inline(always)]
    pub(crate) fn pfn_of(&self, addr: *const u8) -> Option<u32> {
        self.chunks.pfn_of(addr)
    }

    /// Takes one more chunk from the kernel. `Ok(false)` when at the cap;
    /// ENOMEM when the kernel has none (or the `pool_grow` fail point says so).
    fn grow(&self) -> Result<bool> {
        if self.inner.lock().buddy.online_chunks() >= self.max_chunks {
            return Ok(false);
        }
        if fault::Point::PoolGrow.should_fail(PAGE_SIZE << MAX_ORDER) {
            self.counters.grow_failures.fetch_add(1, Relaxed);
            return Err(ENOMEM);
        }
        let gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN | sys::mem::GFP_NORETRY;
        let Some(addr) = sys::mem::get_free_pages(MAX_ORDER, gfp) else {
            self.counters.grow_failures.fetch_add(1, Relaxed);
            return Err(ENOMEM);
        };
        if addr as usize & ((1 << CHUNK_SHIFT) - 1) != 0 {
            // The linear map keeps physical alignment modulo 1 GiB on x86-64,
            // so this cannot happen; refuse rather than mis-index.
            pr_err!("pool: a MAX_ORDER block is not {}-byte aligned; not using it\n", 1u64 << CHUNK_SHIFT);
            // SAFETY: `addr` came from `get_free_pages(MAX_ORDER)` just above.
            unsafe { sys::mem::free_pages(addr, MAX_ORDER) };
            return Err(ENOMEM);
        }
        let mut inner = self.inner.lock();
        let slot = (0..self.max_chunks).find(|&c| !inner.buddy.chunk_online(c));
        if let Some(slot) = slot {
            self.chunks.publish(slot, addr as usize);
            if inner.buddy.add_chunk(slot).is_ok() {
                drop(inner);
                self.counters.chunks_grown.fetch_add(1, Relaxed);
                return Ok(true);
            }
            self.chunks.withdraw(slot);
        }
        // Another CPU filled the last slot meanwhile.
        drop(inner);
        // SAFETY: `addr` came from `get_free_pages(MAX_ORDER)` above and was
        // never published.
        unsafe { sys::mem::free_pages(addr, MAX_ORDER) };
        Ok(false)
    }

    /// Takes a block from the buddy under the lock, tracking the high water.
    fn buddy_alloc(inner: &mut Inner, order: u32) -> core::result::Result<u32, BuddyError> {
        let pfn = inner.buddy.alloc(order)?;
        let used = inner.buddy.allocated_pages();
        if used > inner.high_water_pages {
            inner.high_water_pages = used;
        }
        Ok(pfn)
    }

    /// Allocates a block of 2^`order` pages.
    #[inline(always)]
    pub(crate) fn alloc(&self, order: u32) -> Result<Block> {
        self.alloc_tagged(order, tag::OTHER)
    }

    /// Allocates a block of 2^`order` pages for the owner class `tag` (a
    /// [`tag`] constant, which the occupancy map shows).
    ///
    /// The fast paths are a hit on this CPU's list and, above the listed
    /// orders, a block from the buddy; everything else (refill, drain,
    /// growth, errors) is out of line in [`Self::alloc_slow`], so the hit
    /// costs no register spills. The owner mark is set in the same section
    /// that takes the block (see the module's invariants).
    #[inline(always)]
    pub(crate) fn alloc_tagged(&self, order: u32, tag: u8) -> Result<Block> {
        let hit = if order <= PCP_MAX_ORDER {
            let o = order as usize;
            let p = self.pcp.local();
            if p.len(o) == 0 {
                None
            } else {
                bump(&p.allocs[o]);
                let pfn = p.pop(o);
                self.hand_out(pfn, order, tag)
            }
        } else if order <= MAX_ORDER {
            // Above the lists: straight to the buddy, one lock round trip.
            let mut inner = self.inner.lock();
            Self::buddy_alloc(&mut inner, order).ok().and_then(|pfn| self.hand_out(pfn, order, tag))
        } else {
            None
        };
        match hit {
            Some(b) => {
                if sys::trace::alloc_on() {
                    sys::trace::alloc(c"rk_pool", b.addr.as_ptr(), b.bytes(), order as i32);
                }
                Ok(b)
            }
            None => self.alloc_slow(order, tag),
        }
    }

    /// Marks `pfn` as held by a user of `tag` and makes its [`Block`].
    /// Called in the section that took the block off a list or the buddy.
    /// `None` only if the metadata were damaged (the buddy hands out pfns of
    /// online chunks, which have marks and an address): the block is then
    /// not handed out, and the checker reports it.
    #[inline(always)]
    fn hand_out(&self, pfn: u32, order: u32, tag: u8) -> Option<Block> {
        let m = self.marks.get(pfn as usize)?;
        let addr = self.chunks.addr_of(pfn)?;
        m.tag.store(tag, Relaxed);
        m.owner.store(order as u8 + 1, Relaxed);
        Some(Block { pfn, order, addr })
    }

    /// Everything but a per-CPU list hit: first the lists (refilled) and the
    /// buddy; then blocks cached on this CPU's lists, which may merge into
    /// what is missing; then one more chunk from the kernel. (Other CPUs'
    /// lists are drained only by `drain`, which sleeps: the kernel's
    /// drain_all_pages does the same.)
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, order: u32, tag: u8) -> Result<Block> {
        if order > MAX_ORDER {
            return Err(EINVAL);
        }
        let mut attempt = 0;
        loop {
            match self.try_alloc(order, tag) {
                Ok(b) => {
                    if sys::trace::alloc_on() {
                        sys::trace::alloc(c"rk_pool", b.addr.as_ptr(), b.bytes(), order as i32);
                    }
                    return Ok(b);
                }
                Err(BuddyError::NoMemory) if attempt == 0 => {
                    attempt = 1;
                    self.drain_local();
                }
                Err(BuddyError::NoMemory) if attempt == 1 => {
                    attempt = 2;
                    if !self.grow()? {
                        return Err(ENOMEM);
                    }
                }
                Err(e) => return Err(errno(e)),
            }
        }
    }

    /// Takes a block from this CPU's list, refilling it from the buddy in a
    /// batch when empty, or from the buddy directly above the listed orders,
    /// and hands it out in the same section.
    fn try_alloc(&self, order: u32, tag: u8) -> core::result::Result<Block, BuddyError> {
        if order > PCP_MAX_ORDER {
            let mut inner = self.inner.lock();
            let pfn = Self::buddy_alloc(&mut inner, order)?;
            return self.hand_out(pfn, order, tag).ok_or(BuddyError::OutOfRange);
        }
        let o = order as usize;
        self.pcp.with_local(|p| {
            if p.len(o) == 0 {
                if fault::Point::PcpRefill.should_fail(PAGE_SIZE << order) {
                    return Err(BuddyError::NoMemory);
                }
                // Refill a batch; the lock nests inside the preempt-off
                // section like the kernel's zone lock inside pcp.
                let mut inner = self.inner.lock();
                while p.len(o) < self.limits.batch[o] {
                    match Self::buddy_alloc(&mut inner, order) {
                        Ok(pfn) => p.push(o, pfn),
                        Err(e) if p.len(o) == 0 => return Err(e),
                        Err(_) => break,
                    }
                }
            }
            bump(&p.allocs[o]);
            let pfn = p.pop(o);
            self.hand_out(pfn, order, tag).ok_or(BuddyError::OutOfRange)
        })
    }

    /// Returns a block. Refuses (EINVAL, nothing changed) a block that is not
    /// allocated from this pool with this order.
    ///
    /// The fast path clears the owner mark and pushes onto this CPU's list
    /// in one preempt-off section (or, above the listed orders, clears it
    /// and frees to the buddy under the lock); a full list (drain a batch)
    /// and refusals are out of line.
    #[inline(always)]
    pub(crate) fn free(&self, pfn: u32, order: u32) -> Result {
        let Some(m) = self.marks.get(pfn as usize) else {
            return self.bad_free();
        };
        if order > PCP_MAX_ORDER {
            return self.free_buddy(m, pfn, order);
        }
        let o = order as usize;
        let p = self.pcp.local();
        if m.owner.compare_exchange(order as u8 + 1, 0, Relaxed, Relaxed).is_err() {
            drop(p);
            return self.bad_free();
        }
        if p.len(o) >= self.limits.high[o] {
            self.drain_batch(&p, o);
        }
        p.push(o, pfn);
        bump(&p.frees[o]);
        // Before preemption comes back: until then no other CPU can take
        // the block (it is on this CPU's list), so its rk_free precedes
        // the rk_alloc of whoever gets it next.
        self.trace_free(pfn, order);
        drop(p);
        Ok(())
    }

    /// Frees a block above the listed orders: mark and buddy under the lock.
    #[inline(never)]
    fn free_buddy(&self, m: &PageMark, pfn: u32, order: u32) -> Result {
        if order > MAX_ORDER {
            return self.bad_free();
        }
        let mut inner = self.inner.lock();
        if m.owner.compare_exchange(order as u8 + 1, 0, Relaxed, Relaxed).is_err() {
            drop(inner);
            return self.bad_free();
        }
        // The owner mark said allocated, so the buddy agrees.
        let r = inner.buddy.free(pfn, order).map_err(errno);
        // Under the lock, for the order of events as in `free`.
        if r.is_ok() {
            self.trace_free(pfn, order);
        }
        drop(inner);
        r
    }

    #[inline(always)]
    fn trace_free(&self, pfn: u32, order: u32) {
        if sys::trace::free_on() {
            // The address only names the block in the event (hashed); a
            // free block's address is still its address.
            let addr = self.chunks.addr_of(pfn).map_or(core::ptr::null(), |a| a.as_ptr().cast_const());
            sys::trace::free(c"rk_pool", addr, PAGE_SIZE << order, order as i32);
        }
    }

    /// Counts and refuses a bad free.
    #[cold]
    #[inline(never)]
    fn bad_free(&self) -> Result {
        self.counters.bad_frees.fetch_add(1, Relaxed);
        Err(EINVAL)
    }

    /// Gives a batch of this CPU's list of order `o` back to the buddy: the
    /// list is full. Runs in the caller's preempt-off section.
    #[cold]
    #[inline(never)]
    fn drain_batch(&self, p: &Pcp, o: usize) {
        let mut inner = self.inner.lock();
        for _ in 0..self.limits.batch[o] {
            // Cached pages are allocated in the buddy's eyes.
            let _ = inner.buddy.free(p.pop(o), o as u32);
        }
    }

    /// Frees the block at `addr`; EINVAL if `addr` is not a block of this
    /// pool allocated with `order`.
    #[inline(always)]
    pub(crate) fn free_addr(&self, addr: *const u8, order: u32) -> Result {
        // A block starts on a page boundary; the owner mark checked by
        // `free` then proves it is the head of a block of this order.
        let pfn = self.pfn_of(addr).filter(|_| addr as usize & (PAGE_SIZE - 1) == 0);
        let Some(pfn) = pfn else {
            return self.bad_free();
        };
        self.free(pfn, order)
    }

    /// Empties this CPU's lists into the buddy. Any context.
    fn drain_local(&self) {
        self.pcp.with_local(|p| self.drain_one(p));
    }

    /// Empties every CPU's lists into the buddy. Process context.
    pub(crate) fn drain(&self) {
        self.pcp.for_each_cpu(|p| self.drain_one(p));
    }

    /// [`Self::drain`] from a shrinker: CPUs that a running hotplug
    /// operation keeps out of reach are skipped (see
    /// `PerCpuShared::for_each_cpu_in_reclaim`); their lists wait for the
    /// next scan or drain.
    fn drain_in_reclaim(&self) {
        self.pcp.for_each_cpu_in_reclaim(|p| self.drain_one(p));
    }

    /// Empties one CPU's lists; runs on that CPU (or with it quiescent).
    fn drain_one(&self, p: &Pcp) {
        let mut inner = self.inner.lock();
        for o in 0..PCP_ORDERS {
            while p.len(o) > 0 {
                let _ = inner.buddy.free(p.pop(o), o as u32);
            }
        }
    }

    /// Gives wholly free chunks back to the kernel, at most `max` of them.
    /// Returns the number of pages released.
    fn release_free_chunks(&self, max: u64) -> u64 {
        let mut released = 0;
        while released < max {
            let mut inner = self.inner.lock();
            let Some(c) = (0..self.max_chunks).find(|&c| inner.buddy.chunk_is_free(c)) else {
                break;
            };
            if inner.buddy.remove_chunk(c).is_err() {
                break;
            }
            let addr = self.chunks.withdraw(c);
            drop(inner);
            // SAFETY: chunk `c` was online, so `addr` is the address of its
            // `get_free_pages(MAX_ORDER)` block; the buddy held all of it and
            // now has forgotten it, so nothing references it any more.
            unsafe { sys::mem::free_pages(addr as *mut u8, MAX_ORDER) };
            self.counters.chunks_shrunk.fetch_add(1, Relaxed);
            released += 1;
        }
        released * CHUNK_PAGES as u64
    }

    /// Drains the per-CPU lists and gives every wholly free chunk back to
    /// the kernel. Returns the pages released.
    pub(crate) fn shrink(&self) -> u64 {
        self.drain();
        self.release_free_chunks(u64::MAX)
    }

    /// Pages cached on the per-CPU lists. Exact only when the pool is
    /// quiescent; reads other CPUs' counts racily otherwise.
    fn pcp_pages(&self) -> u64 {
        let mut n = 0u64;
        for p in (0..sys::nr_cpu_ids()).filter_map(|c| self.pcp.get(c)) {
            for o in 0..PCP_ORDERS {
                n += u64::from(p.len(o)) << o;
            }
        }
        n
    }

    /// Snapshot of the counters.
    pub(crate) fn stats(&self) -> PoolStats {
        let mut pcp_allocs = [0u64; PCP_ORDERS];
        let mut pcp_frees = [0u64; PCP_ORDERS];
        for p in (0..sys::nr_cpu_ids()).filter_map(|c| self.pcp.get(c)) {
            for o in 0..PCP_ORDERS {
                pcp_allocs[o] += p.allocs[o].load(Relaxed);
                pcp_frees[o] += p.frees[o].load(Relaxed);
            }
        }
        let pcp_pages = self.pcp_pages();
        let inner = self.inner.lock();
        let c = &self.counters;
        PoolStats {
            total_pages: inner.buddy.total_pages(),
            free_pages: inner.buddy.free_pages() + pcp_pages,
            pcp_pages,
            high_water_pages: inner.high_water_pages,
            chunks_grown: c.chunks_grown.load(Relaxed),
            chunks_shrunk: c.chunks_shrunk.load(Relaxed),
            grow_failures: c.grow_failures.load(Relaxed),
            bad_frees: c.bad_frees.load(Relaxed),
            nr_free: inner.buddy.free_counts(),
            buddy: inner.buddy.stats().clone(),
            pcp_allocs,
            pcp_frees,
        }
    }

    /// Zeroes the operation counters (allocs, frees, splits, merges,
    /// failures, per-CPU counts, grown/shrunk, bad frees) and restarts the
    /// high-water mark from the pages in use now. A per-CPU count that its
    /// CPU bumps at the same moment may survive the reset: these are
    /// statistics, and the fast path stays free of atomic read-modify-writes.
    pub(crate) fn reset_stats(&self) {
        {
            let mut inner = self.inner.lock();
            inner.buddy.reset_stats();
            inner.high_water_pages = inner.buddy.allocated_pages();
        }
        let c = &self.counters;
        for x in [&c.chunks_grown, &c.chunks_shrunk, &c.grow_failures, &c.bad_frees] {
            x.store(0, Relaxed);
        }
        for p in (0..sys::nr_cpu_ids()).filter_map(|c| self.pcp.get(c)) {
            for o in 0..PCP_ORDERS {
                p.allocs[o].store(0, Relaxed);
                p.frees[o].store(0, Relaxed);
            }
        }
    }

    /// Per-order free block counts of the buddy (for buddyinfo).
    pub(crate) fn free_counts(&self) -> [u32; NR_ORDERS] {
        self.inner.lock().buddy.free_counts()
    }

    /// Fragmentation figures in rkalloc's common form.
    pub(crate) fn frag(&self) -> FragReport {
        let inner = self.inner.lock();
        let b = &inner.buddy;
        let used = b.allocated_pages() << PAGE_SHIFT;
        FragReport {
            requested_bytes: used,
            handed_out_bytes: used,
            metadata_bytes: (self.marks.len() * (core::mem::size_of::<PageMeta>() + core::mem::size_of::<PageMark>())) as u64,
            free_bytes: b.free_pages() << PAGE_SHIFT,
            largest_free_bytes: b.largest_free_order().map_or(0, |o| 1u64 << (o + PAGE_SHIFT)),
        }
    }

    /// Full invariant check, exact while other CPUs allocate and free: it
    /// runs under `stop_machine`, when no block is in flight (see the
    /// module's invariants), and changes nothing. It runs the buddy's
    /// checker, checks that every page a per-CPU list caches heads a block
    /// the buddy counts as allocated at that order and no user holds, that
    /// every block users hold is allocated in the buddy at its order, and
    /// that `owned + cached == allocated`. Process context; O(pages), with
    /// every CPU stopped meanwhile (a debugging tool, like the kernel's own
    /// `check_*` debug options).
    pub(crate) fn check(&self) -> Result<CheckReport> {
        let mut out = Err(EINVAL);
        sys::stop_machine(|| {
            out = self.check_stopped();
            0
        });
        out
    }

    /// [`Self::check`]'s work, with every other CPU stopped.
    fn check_stopped(&self) -> Result<CheckReport> {
        let inner = self.inner.lock();
        let report = inner.buddy.check().map_err(|e| {
            pr_err!("pool check failed: {:?}\n", e);
            sys::euclean()
        })?;
        let mut cached = 0u64;
        for p in (0..sys::nr_cpu_ids()).filter_map(|c| self.pcp.get(c)) {
            for o in 0..PCP_ORDERS {
                let n = p.len(o);
                if n > self.limits.high[o] {
                    pr_err!("pool check: a per-CPU list of order {} holds {} blocks (at most {})\n", o, n, self.limits.high[o]);
                    return Err(sys::euclean());
                }
                for i in 0..n as usize {
                    let pfn = p.at(o, i);
                    let state = inner.buddy.page_state(pfn);
                    let owner = self.marks.get(pfn as usize).map_or(1, |m| m.owner.load(Relaxed));
                    if state != (PageState::Allocated { order: o as u32 }) || owner != 0 {
                        pr_err!("pool check: pfn {} cached at order {} is {:?}, owner mark {}\n", pfn, o, state, owner);
                        return Err(sys::euclean());
                    }
                }
                cached += u64::from(n) << o;
            }
        }
        let mut owned = 0u64;
        for (pfn, m) in self.marks.iter().enumerate() {
            let v = m.owner.load(Relaxed);
            if v == 0 {
                continue;
            }
            let order = u32::from(v - 1);
            if inner.buddy.page_state(pfn as u32) != (PageState::Allocated { order }) {
                pr_err!("pool check: pfn {} owned at order {} but the buddy disagrees\n", pfn, order);
                return Err(sys::euclean());
            }
            owned += 1u64 << order;
        }
        if owned + cached != report.allocated_pages {
            pr_err!(
                "pool check: users own {} pages, per-CPU lists cache {}, buddy has {} allocated\n",
                owned,
                cached,
                report.allocated_pages
            );
            return Err(sys::euclean());
        }
        Ok(report)
    }

    /// Drops the owner mark of a block without freeing it: a planted
    /// corruption (a leaked block), which [`Self::check`] must find.
    #[cfg(rkalloc_kunit)]
    pub(crate) fn plant_leak(&self, b: &Block) {
        if let Some(m) = self.marks.get(b.pfn as usize) {
            m.owner.store(0, Relaxed);
        }
    }

    /// Undoes [`Self::plant_leak`].
    #[cfg(rkalloc_kunit)]
    pub(crate) fn unplant_leak(&self, b: &Block) {
        if let Some(m) = self.marks.get(b.pfn as usize) {
            m.owner.store(b.order as u8 + 1, Relaxed);
        }
    }

    fn register_shrinker(self: &Arc<Self>) -> Result {
        // SAFETY: the pool outlives its shrinker: `PinnedDrop` drops the
        // shrinker (which waits for running callbacks) before anything else.
        let sh = unsafe { sys::Shrinker::register(c"rkalloc-pool", core::ptr::from_ref(&**self))? };
        // The pool is shared already; the slot is set once, here.
        *self.shrinker.lock() = Some(sh);
        Ok(())
    }

    /// Pages in chunks that are wholly free (what the shrinker can give).
    fn free_chunk_pages(&self) -> u64 {
        let inner = self.inner.lock();
        (0..self.max_chunks).filter(|&c| inner.buddy.chunk_is_free(c)).count() as u64 * CHUNK_PAGES as u64
    }
}

impl sys::Reclaim for Pool {
    /// Pages in wholly free chunks, and pages the per-CPU lists cache
    /// (which may pin chunks that are otherwise free): what a scan may give
    /// back.
    fn count(&self) -> u64 {
        self.free_chunk_pages() + self.pcp_pages()
    }

    /// Drains every online CPU's lists, as the kernel's reclaim drains its
    /// pcp lists (`drain_all_pages`), then releases wholly free chunks. The
    /// drain waits for the module's workqueue, which has a rescuer
    /// (`WQ_MEM_RECLAIM`), so reclaim cannot deadlock on it; it only tries
    /// the CPU hotplug lock (a hotplug operation allocates under it, and
    /// its reclaim may come here: lockdep saw fs_reclaim -> cpu_hotplug_lock
    /// when this took it).
    fn scan(&self, nr: u64) -> u64 {
        self.drain_in_reclaim();
        self.release_free_chunks(nr.div_ceil(CHUNK_PAGES as u64).max(1))
    }
}

#[pinned_drop]
impl PinnedDrop for Pool {
    fn drop(self: Pin<&mut Self>) {
        // First: no shrinker callback may run once teardown starts.
        drop(self.shrinker.lock().take());
        // No one else can reach the pool any more (`&mut self`), so every
        // CPU's list can be drained from here.
        for p in (0..sys::nr_cpu_ids()).filter_map(|c| self.pcp.get(c)) {
            self.drain_one(p);
        }
        let (leaked, online) = {
            let inner = self.inner.lock();
            (inner.buddy.allocated_pages(), inner.buddy.online_chunks())
        };
        if leaked != 0 {
            pr_warn!(
                "pool teardown: {} pages still in use; giving all {} chunks back\n",
                leaked,
                online
            );
        }
        self.chunks.drain(|addr| {
            // The pool is being destroyed: none of its pages is used again
            // (users gave up their blocks, or lost them, before the drop).
            // SAFETY: `addr` is an online chunk's MAX_ORDER block, unused.
            unsafe { sys::mem::free_pages(addr as *mut u8, MAX_ORDER) };
        });
    }
}

