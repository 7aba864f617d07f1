// SPDX-License-Identifier: GPL-2.0
//! The page pool: the pure buddy allocator ([`crate::rkcore::buddy`]) over
//! chunks of `alloc_pages(MAX_PAGE_ORDER)` memory, with per-CPU page lists
//! for orders 0 to [`PCP_MAX_ORDER`] in front, as the kernel's pcp lists.
//!
//! # Locking and invariants
//!
//! - `inner` (a spinlock) guards the buddy and the chunk table's writers.
//! - `chunk_base[c]` is the kernel address of chunk slot `c` while it is
//!   online, else 0. It is written under `inner`, and read without the lock
//!   only for pages the reader owns (allocated or cached), whose chunk cannot
//!   go offline meanwhile: a chunk goes offline only when the buddy holds all
//!   of it.
//! - `marks[pfn].owner` is `order + 1` when `pfn` heads a block handed out to a
//!   user, else 0. Alloc sets it, free clears it with a compare-and-swap, so
//!   a double free or a free with the wrong order is refused in O(1) even on
//!   the per-CPU fast path, where the buddy never sees the block.
//! - Pages on a per-CPU list count as allocated for the buddy and as free for
//!   users: `buddy free + per-CPU cached + owned by users == total`.

use crate::{
    rkcore::{
        buddy::{Buddy, BuddyError, BuddyStats, CheckReport, PageMeta, PageState, CHUNK_PAGES, MAX_ORDER, NR_ORDERS},
        frag::FragReport,
    },
    sys::{self, PerCpuShared},
};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed},
};
use kernel::{
    bindings, new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// A removed entry of the chunk table.
const TOMBSTONE: u64 = u64::MAX;
/// log2 of a chunk's size in bytes.
const CHUNK_SHIFT: u32 = MAX_ORDER + PAGE_SHIFT;
/// Bits of a chunk table entry that hold the slot + 1: the chunk number
/// (`addr >> CHUNK_SHIFT`, 64 - CHUNK_SHIFT bits) fills the rest.
const SLOT_BITS: u32 = CHUNK_SHIFT;

/// Highest order with per-CPU lists.
pub(crate) const PCP_MAX_ORDER: u32 = 3;
const PCP_ORDERS: usize = PCP_MAX_ORDER as usize + 1;
/// Per-CPU list capacity per order; above it, `PCP_BATCH` blocks go back.
const PCP_HIGH: [u32; PCP_ORDERS] = [64, 32, 16, 8];
/// Blocks moved between a per-CPU list and the buddy at a time.
const PCP_BATCH: [u32; PCP_ORDERS] = [32, 16, 8, 4];
const PCP_CAP: usize = 64;
/// Bytes per pool page.
pub(crate) const PAGE_SIZE: usize = 4096;
const PAGE_SHIFT: u32 = 12;


/// Who took a block from the pool, as `rkctl map` shows it (the owner
/// class of `/sys/kernel/debug/rkalloc/map`, see [`crate::map`]).
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

/// One CPU's page lists and fast-path counters.
///
/// Every field is an atomic used with relaxed loads and stores (plain moves
/// on x86, no read-modify-write): the owning CPU changes its lists with
/// preemption disabled, and other CPUs read the counts for statistics
/// through shared references, which atomics make sound. Only code running
/// on the owning CPU (or any CPU while it is offline, or at teardown)
/// changes `count` and `pfns`.
struct Pcp {
    count: [AtomicU32; PCP_ORDERS],
    pfns: [[AtomicU32; PCP_CAP]; PCP_ORDERS],
    allocs: [AtomicU64; PCP_ORDERS],
    frees: [AtomicU64; PCP_ORDERS],
}

impl Pcp {
    fn new() -> Self {
        Self {
            count: Default::default(),
            pfns: core::array::from_fn(|_| core::array::from_fn(|_| AtomicU32::new(0))),
            allocs: Default::default(),
            frees: Default::default(),
        }
    }

    #[inline]
    fn len(&self, o: usize) -> u32 {
        self.count[o].load(Relaxed)
    }

    /// Pops a pfn; the caller checked that the list is not empty.
    #[inline]
    fn pop(&self, o: usize) -> u32 {
        let n = self.len(o) - 1;
        self.count[o].store(n, Relaxed);
        self.pfns[o][n as usize].load(Relaxed)
    }

    /// Pushes a pfn; the caller checked that the list has room.
    #[inline]
    fn push(&self, o: usize, pfn: u32) {
        let n = self.len(o);
        self.pfns[o][n as usize].store(pfn, Relaxed);
        self.count[o].store(n + 1, Relaxed);
    }
}

#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
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
    chunk_base: KVVec<AtomicUsize>,
    /// Open-addressing table from chunk number (`address >> CHUNK_SHIFT`:
    /// chunks are naturally aligned in the linear map) to chunk slot: finds
    /// a pool page from its address in O(1). Entry: `vchunk << SLOT_BITS |
    /// slot + 1`, 0 empty, [`TOMBSTONE`] removed. Written under `inner`, read lock-free (an entry changes only
    /// for a chunk going online or offline, which no reader can own pages of).
    phys_slot: KVVec<AtomicU64>,
    /// `marks[pfn]`: who holds the block headed by `pfn` (see [`PageMark`]).
    marks: KVVec<PageMark>,
    pcp: PerCpuShared<Pcp>,
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
        let mut chunk_base = KVVec::with_capacity(cfg.max_chunks as usize, GFP_KERNEL)?;
        for _ in 0..cfg.max_chunks {
            chunk_base.push(AtomicUsize::new(0), GFP_KERNEL)?;
        }
        // At most half full, so probes stay short.
        let table = (cfg.max_chunks as usize * 2).next_power_of_two();
        let mut phys_slot = KVVec::with_capacity(table, GFP_KERNEL)?;
        for _ in 0..table {
            phys_slot.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        let mut marks = KVVec::with_capacity(meta_len, GFP_KERNEL)?;
        for _ in 0..meta_len {
            marks.push(PageMark::new(), GFP_KERNEL)?;
        }
        let pool = Arc::pin_init(
            try_pin_init!(Pool {
                inner <- new_spinlock!(Inner { buddy: Buddy::new(MetaVec(meta)), high_water_pages: 0 }, "rkalloc_pool"),
                chunk_base,
                phys_slot,
                marks,
                pcp: PerCpuShared::new(Pcp::new)?,
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

    /// Writes the occupancy map of chunk slot `chunk` into `out`, one byte
    /// per page in the encoding of [`crate::map`] ([`MAP_OFFLINE`],
    /// [`MAP_FREE`], [`MAP_CACHED`], or `tag << 4 | order` for a page of a
    /// user-held block). `out` holds [`CHUNK_PAGES`] bytes; a shorter one is
    /// filled as far as it goes. Returns whether the chunk is online.
    ///
    /// A block the buddy counts as allocated but no user holds sits on a
    /// per-CPU list (or is between the buddy and its user, a moment in
    /// `alloc`). O(blocks of the chunk), under the pool lock.
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

    #[inline]
    fn addr_of(&self, pfn: u32) -> Option<NonNull<u8>> {
        let base = self.chunk_base.get((pfn >> MAX_ORDER) as usize)?.load(Relaxed);
        let off = ((pfn & (CHUNK_PAGES - 1)) as usize) << PAGE_SHIFT;
        NonNull::new(base.wrapping_add(off) as *mut u8).filter(|_| base != 0)
    }

    /// The pfn of the pool page at `addr`, if `addr` lies in an online
    /// chunk. O(1), and pure arithmetic: a chunk is a naturally aligned
    /// block of the linear map, so `addr >> CHUNK_SHIFT` names it.
    #[inline]
    pub(crate) fn pfn_of(&self, addr: *const u8) -> Option<u32> {
        let vchunk = addr as u64 >> CHUNK_SHIFT;
        let mask = self.phys_slot.len() - 1;
        let mut i = (vchunk as usize).wrapping_mul(0x9e37_79b9) & mask;
        for _ in 0..self.phys_slot.len() {
            let e = self.phys_slot[i].load(Relaxed);
            if e == 0 {
                return None;
            }
            if e != TOMBSTONE && e >> SLOT_BITS == vchunk {
                let c = ((e & ((1 << SLOT_BITS) - 1)) as u32).checked_sub(1)?;
                let off = (addr as usize) & ((1 << CHUNK_SHIFT) - 1);
                return Some((c << MAX_ORDER) | (off >> PAGE_SHIFT) as u32);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Publishes (`Some(slot)`) or withdraws the chunk at `addr` in the
    /// chunk table. Called under `inner`.
    fn map_chunk(&self, addr: usize, c: Option<u32>) {
        let vchunk = addr as u64 >> CHUNK_SHIFT;
        let mask = self.phys_slot.len() - 1;
        let mut i = (vchunk as usize).wrapping_mul(0x9e37_79b9) & mask;
        for _ in 0..self.phys_slot.len() {
            let e = self.phys_slot[i].load(Relaxed);
            match c {
                Some(slot) if e == 0 || e == TOMBSTONE => {
                    self.phys_slot[i].store(vchunk << SLOT_BITS | u64::from(slot + 1), Relaxed);
                    return;
                }
                None if e == 0 => return,
                None if e != TOMBSTONE && e >> SLOT_BITS == vchunk => {
                    self.phys_slot[i].store(TOMBSTONE, Relaxed);
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Takes one more chunk from the kernel. `Ok(false)` when at the cap.
    fn grow(&self) -> Result<bool> {
        if self.inner.lock().buddy.online_chunks() >= self.max_chunks {
            return Ok(false);
        }
        let gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN | sys::GFP_NORETRY;
        let Some(addr) = sys::alloc_pages(MAX_ORDER, gfp) else {
            self.counters.grow_failures.fetch_add(1, Relaxed);
            return Err(ENOMEM);
        };
        if addr as usize & ((1 << CHUNK_SHIFT) - 1) != 0 {
            // The linear map keeps physical alignment modulo 1 GiB on x86-64,
            // so this cannot happen; refuse rather than mis-index.
            pr_err!("pool: a MAX_ORDER block is not {}-byte aligned; not using it\n", 1u64 << CHUNK_SHIFT);
            // SAFETY: `addr` came from `alloc_pages(MAX_ORDER)` just above.
            unsafe { sys::free_pages(addr, MAX_ORDER) };
            return Err(ENOMEM);
        }
        let mut inner = self.inner.lock();
        let slot = (0..self.max_chunks).find(|&c| !inner.buddy.chunk_online(c));
        if let Some(slot) = slot {
            self.chunk_base[slot as usize].store(addr as usize, Relaxed);
            self.map_chunk(addr as usize, Some(slot));
            if inner.buddy.add_chunk(slot).is_ok() {
                drop(inner);
                self.counters.chunks_grown.fetch_add(1, Relaxed);
                return Ok(true);
            }
            self.chunk_base[slot as usize].store(0, Relaxed);
            self.map_chunk(addr as usize, None);
        }
        // Another CPU filled the last slot meanwhile.
        drop(inner);
        // SAFETY: `addr` came from `alloc_pages(MAX_ORDER)` above and was
        // never published.
        unsafe { sys::free_pages(addr, MAX_ORDER) };
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
    #[inline]
    pub(crate) fn alloc(&self, order: u32) -> Result<Block> {
        self.alloc_tagged(order, tag::OTHER)
    }

    /// Allocates a block of 2^`order` pages for the owner class `tag` (a
    /// [`tag`] constant, which the occupancy map shows).
    ///
    /// The fast paths are a hit on this CPU's list and, above the listed
    /// orders, a block from the buddy; everything else (refill, drain,
    /// growth, errors) is out of line in [`Self::alloc_slow`], so the hit
    /// costs no register spills.
    #[inline]
    pub(crate) fn alloc_tagged(&self, order: u32, tag: u8) -> Result<Block> {
        if order <= PCP_MAX_ORDER {
            let o = order as usize;
            let hit = self.pcp.with_local(|p| {
                if p.len(o) == 0 {
                    return None;
                }
                bump(&p.allocs[o]);
                Some(p.pop(o))
            });
            if let Some(pfn) = hit {
                return self.hand_out(pfn, order, tag);
            }
        } else if order <= MAX_ORDER {
            // Above the lists: straight to the buddy, one lock round trip.
            if let Ok(pfn) = Self::buddy_alloc(&mut self.inner.lock(), order) {
                return self.hand_out(pfn, order, tag);
            }
        }
        self.alloc_slow(order, tag)
    }

    /// Marks `pfn` as held by a user of `tag` and makes its [`Block`].
    #[inline]
    fn hand_out(&self, pfn: u32, order: u32, tag: u8) -> Result<Block> {
        let Some(m) = self.marks.get(pfn as usize) else {
            return Err(EINVAL);
        };
        m.tag.store(tag, Relaxed);
        m.owner.store(order as u8 + 1, Relaxed);
        let addr = self.addr_of(pfn).ok_or(EINVAL)?;
        Ok(Block { pfn, order, addr })
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
            match self.try_alloc(order) {
                Ok(pfn) => return self.hand_out(pfn, order, tag),
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
    /// batch when empty, or from the buddy directly above the listed orders.
    fn try_alloc(&self, order: u32) -> core::result::Result<u32, BuddyError> {
        if order > PCP_MAX_ORDER {
            return Self::buddy_alloc(&mut self.inner.lock(), order);
        }
        let o = order as usize;
        self.pcp.with_local(|p| {
            if p.len(o) == 0 {
                // Refill a batch; the lock nests inside the preempt-off
                // section like the kernel's zone lock inside pcp.
                let mut inner = self.inner.lock();
                while p.len(o) < PCP_BATCH[o] {
                    match Self::buddy_alloc(&mut inner, order) {
                        Ok(pfn) => p.push(o, pfn),
                        Err(e) if p.len(o) == 0 => return Err(e),
                        Err(_) => break,
                    }
                }
            }
            bump(&p.allocs[o]);
            Ok(p.pop(o))
        })
    }

    /// Returns a block. Refuses (EINVAL, nothing changed) a block that is not
    /// allocated from this pool with this order.
    ///
    /// The fast path pushes onto this CPU's list (or, above the listed
    /// orders, frees to the buddy); a full list (drain a batch) and
    /// refusals are out of line.
    #[inline]
    pub(crate) fn free(&self, pfn: u32, order: u32) -> Result {
        let Some(m) = self.marks.get(pfn as usize) else {
            return self.bad_free();
        };
        if order > MAX_ORDER || m.owner.compare_exchange(order as u8 + 1, 0, Relaxed, Relaxed).is_err() {
            return self.bad_free();
        }
        if order > PCP_MAX_ORDER {
            let r = self.inner.lock().buddy.free(pfn, order);
            // The owner mark said allocated, so the buddy agrees.
            return r.map_err(errno);
        }
        let o = order as usize;
        let pushed = self.pcp.with_local(|p| {
            if p.len(o) >= PCP_HIGH[o] {
                return false;
            }
            p.push(o, pfn);
            bump(&p.frees[o]);
            true
        });
        if pushed {
            return Ok(());
        }
        self.free_slow(pfn, order)
    }

    /// Counts and refuses a bad free.
    #[cold]
    #[inline(never)]
    fn bad_free(&self) -> Result {
        self.counters.bad_frees.fetch_add(1, Relaxed);
        Err(EINVAL)
    }

    /// Frees a listed-order block whose owner mark was just cleared onto
    /// this CPU's list, draining a batch first if the list is full.
    #[cold]
    #[inline(never)]
    fn free_slow(&self, pfn: u32, order: u32) -> Result {
        let o = order as usize;
        self.pcp.with_local(|p| {
            if p.len(o) >= PCP_HIGH[o] {
                let mut inner = self.inner.lock();
                for _ in 0..PCP_BATCH[o] {
                    // Cached pages are allocated in the buddy's eyes.
                    let _ = inner.buddy.free(p.pop(o), order);
                }
            }
            p.push(o, pfn);
            bump(&p.frees[o]);
        });
        Ok(())
    }

    /// Frees the block at `addr`; EINVAL if `addr` is not a block of this
    /// pool allocated with `order`.
    #[inline]
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
            let addr = self.chunk_base[c as usize].swap(0, Relaxed);
            self.map_chunk(addr, None);
            drop(inner);
            // SAFETY: chunk `c` was online, so `addr` is the address of its
            // `alloc_pages(MAX_ORDER)` block; the buddy held all of it and
            // now has forgotten it, so nothing references it any more.
            unsafe { sys::free_pages(addr as *mut u8, MAX_ORDER) };
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

    /// Full invariant check: drains the per-CPU lists, runs the buddy's
    /// checker, and checks that the blocks users own are exactly the buddy's
    /// allocated blocks. Process context; O(pages).
    pub(crate) fn check(&self) -> Result<CheckReport> {
        self.drain();
        let inner = self.inner.lock();
        let report = inner.buddy.check().map_err(|e| {
            pr_err!("pool check failed: {:?}\n", e);
            sys::euclean()
        })?;
        let mut owned_pages = 0u64;
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
            owned_pages += 1u64 << order;
        }
        // Other CPUs may have refilled meanwhile; what they cached is
        // allocated in the buddy but owned by no user.
        let cached = self.pcp_pages();
        if owned_pages + cached != report.allocated_pages {
            pr_err!(
                "pool check: users own {} pages, per-CPU lists cache {}, buddy has {} allocated\n",
                owned_pages,
                cached,
                report.allocated_pages
            );
            return Err(sys::euclean());
        }
        Ok(report)
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
    /// Pages in wholly free chunks: what a scan can give back now.
    fn count(&self) -> u64 {
        self.free_chunk_pages()
    }

    /// Releases wholly free chunks. It does not drain the per-CPU lists:
    /// that sleeps on other CPUs' workers, which reclaim should not wait for.
    fn scan(&self, nr: u64) -> u64 {
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
        for b in self.chunk_base.iter() {
            let addr = b.swap(0, Relaxed);
            if addr != 0 {
                // The pool is being destroyed: none of its pages is used again
                // (users gave up their blocks, or lost them, before the drop).
                // SAFETY: `addr` is an online chunk's MAX_ORDER block, unused.
                unsafe { sys::free_pages(addr as *mut u8, MAX_ORDER) };
            }
        }
    }
}

#[kunit_tests(rkalloc_pool)]
mod tests {
    use super::*;

    fn pool(initial: u32, max: u32) -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(initial, max))
    }

    /// Takes order-0 pages until the pool says ENOMEM, all on CPU 0: on one
    /// CPU, what a refill cached on that CPU's list is reachable by the next
    /// allocation (a test thread that migrated would strand it on another
    /// CPU's list, which only a sleeping drain empties).
    fn take_every_page(p: &Pool) -> Result<KVec<Block>> {
        let mut pages = KVec::new();
        let mut err = 0;
        sys::run_on_cpu(0, || {
            loop {
                match p.alloc(0) {
                    Ok(b) => {
                        if pages.push(b, GFP_KERNEL).is_err() {
                            err = ENOMEM.to_errno();
                            let _ = p.free(b.pfn, 0);
                            break;
                        }
                    }
                    Err(e) if e == ENOMEM => break,
                    Err(e) => {
                        err = e.to_errno();
                        break;
                    }
                }
            }
            0
        })?;
        if err != 0 {
            return Err(Error::from_errno(err));
        }
        Ok(pages)
    }

    fn free_all(p: &Pool, blocks: &mut KVec<Block>) -> Result {
        while let Some(b) = blocks.pop() {
            p.free(b.pfn, b.order)?;
        }
        Ok(())
    }

    /// After `drain`, every online chunk is one free top-order block.
    fn assert_all_merged(p: &Pool) -> Result {
        p.drain();
        let r = p.check()?;
        assert_eq!(r.allocated_pages, 0);
        let counts = p.free_counts();
        assert_eq!(counts[MAX_ORDER as usize], r.online_chunks);
        for c in &counts[..MAX_ORDER as usize] {
            assert_eq!(*c, 0);
        }
        Ok(())
    }

    /// gpu_buddy's pessimistic case: take every page, free every other one;
    /// no order-1 block can exist until the rest comes back.
    #[test]
    fn pessimistic() -> Result {
        let p = pool(1, 1)?;
        let mut pages = take_every_page(&p)?;
        assert_eq!(pages.len(), CHUNK_PAGES as usize);
        p.check()?;
        let mut kept = KVec::new();
        for b in pages.drain_all() {
            if b.pfn % 2 == 0 {
                p.free(b.pfn, 0)?;
            } else {
                kept.push(b, GFP_KERNEL)?;
            }
        }
        p.drain();
        assert_eq!(p.alloc(1).err(), Some(ENOMEM));
        let counts = p.free_counts();
        assert_eq!(counts[0], CHUNK_PAGES / 2);
        for c in &counts[1..] {
            assert_eq!(*c, 0);
        }
        p.check()?;
        free_all(&p, &mut kept)?;
        assert_all_merged(&p)?;
        let top = p.alloc(MAX_ORDER)?;
        p.free(top.pfn, top.order)?;
        Ok(())
    }

    /// Fill the pool with blocks of every order, prove they are real,
    /// disjoint memory, and that everything merges back.
    #[test]
    fn optimistic() -> Result {
        let p = pool(1, 1)?;
        let mut blocks = KVec::new();
        // On one CPU, so that what one order's per-CPU refill cached can be
        // drained back for the next order (see `Pool::alloc`).
        let mut fill = || -> Result {
            for order in (0..MAX_ORDER).rev() {
                blocks.push(p.alloc(order)?, GFP_KERNEL)?;
            }
            blocks.push(p.alloc(0)?, GFP_KERNEL)?;
            assert_eq!(p.alloc(0).err(), Some(ENOMEM));
            Ok(())
        };
        let rc = sys::run_on_cpu(0, || match fill() {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        })?;
        assert_eq!(rc, 0);
        assert_eq!(blocks.len(), MAX_ORDER as usize + 1);
        p.check()?;
        for (i, b) in blocks.iter().enumerate() {
            // SAFETY: the test owns each block; it is `bytes()` of pool memory.
            unsafe { core::ptr::write_bytes(b.addr.as_ptr(), i as u8, b.bytes()) };
        }
        for (i, b) in blocks.iter().enumerate() {
            // SAFETY: as above; nothing else writes the blocks.
            let mem = unsafe { core::slice::from_raw_parts(b.addr.as_ptr(), b.bytes()) };
            assert!(mem.iter().all(|x| *x == i as u8));
            assert_eq!(b.addr.as_ptr() as usize % b.bytes(), 0);
        }
        free_all(&p, &mut blocks)?;
        assert_all_merged(&p)
    }

    /// Keep one page of every 64: no free block above order 5 remains, and
    /// the indexes say so; freeing the rest merges everything again.
    #[test]
    fn pathological() -> Result {
        let p = pool(1, 1)?;
        let mut pages = take_every_page(&p)?;
        assert_eq!(pages.len(), CHUNK_PAGES as usize);
        let mut kept = KVec::new();
        for b in pages.drain_all() {
            if b.pfn % 64 == 0 {
                kept.push(b, GFP_KERNEL)?;
            } else {
                p.free(b.pfn, 0)?;
            }
        }
        p.drain();
        let counts = p.free_counts();
        for o in 0..=5 {
            assert_eq!(counts[o], CHUNK_PAGES / 64);
        }
        for o in 6..NR_ORDERS {
            assert_eq!(counts[o], 0);
        }
        assert_eq!(p.alloc(6).err(), Some(ENOMEM));
        assert_eq!(crate::rkcore::frag::unusable_index(&counts, 6), 1000);
        // vmstat.c: 1000 - (1000 + 1008 * 1000 / 64) / 96 = 826.
        assert_eq!(crate::rkcore::frag::extfrag_index(&counts, 6), 826);
        assert_eq!(crate::rkcore::frag::extfrag_index(&counts, 5), -1000);
        p.check()?;
        free_all(&p, &mut kept)?;
        assert_all_merged(&p)
    }

    /// The pool grows one chunk at a time up to its cap, and shrinking
    /// gives every wholly free chunk back.
    #[test]
    fn grow_and_shrink() -> Result {
        let p = pool(1, 3)?;
        let mut blocks = KVec::new();
        for _ in 0..3 {
            blocks.push(p.alloc(MAX_ORDER)?, GFP_KERNEL)?;
        }
        assert_eq!(p.alloc(MAX_ORDER).err(), Some(ENOMEM));
        assert_eq!(p.alloc(0).err(), Some(ENOMEM));
        let st = p.stats();
        assert_eq!(st.total_pages, 3 * CHUNK_PAGES as u64);
        assert_eq!(st.chunks_grown, 3);
        assert_eq!(p.shrink(), 0);
        free_all(&p, &mut blocks)?;
        assert_eq!(p.shrink(), 3 * CHUNK_PAGES as u64);
        let st = p.stats();
        assert_eq!(st.total_pages, 0);
        assert_eq!(st.chunks_shrunk, 3);
        let b = p.alloc(2)?;
        assert_eq!(p.stats().total_pages, CHUNK_PAGES as u64);
        p.free(b.pfn, b.order)?;
        Ok(())
    }

    /// Pages cached on per-CPU lists go back on shrink.
    #[test]
    fn pcp_drained_on_shrink() -> Result {
        let p = pool(1, 1)?;
        let mut blocks = KVec::new();
        for _ in 0..10 {
            blocks.push(p.alloc(0)?, GFP_KERNEL)?;
        }
        free_all(&p, &mut blocks)?;
        assert!(p.stats().pcp_pages > 0);
        assert_eq!(p.shrink(), CHUNK_PAGES as u64);
        let st = p.stats();
        assert_eq!(st.pcp_pages, 0);
        assert_eq!(st.total_pages, 0);
        Ok(())
    }

    /// Bad frees and orders are refused with EINVAL and change nothing.
    #[test]
    fn bad_input_changes_nothing() -> Result {
        let p = pool(1, 1)?;
        let a = p.alloc(2)?;
        let b = p.alloc(5)?;
        let before = p.check()?;
        let counts = p.free_counts();
        assert_eq!(p.alloc(MAX_ORDER + 1).err(), Some(EINVAL));
        assert_eq!(p.free(a.pfn, 3).err(), Some(EINVAL)); // wrong order
        assert_eq!(p.free(a.pfn + 1, 0).err(), Some(EINVAL)); // tail page
        assert_eq!(p.free(u32::MAX, 0).err(), Some(EINVAL)); // not from this pool
        assert_eq!(p.free(b.pfn, MAX_ORDER + 1).err(), Some(EINVAL));
        let foreign = [0u8; 64];
        assert_eq!(p.free_addr(foreign.as_ptr(), 0).err(), Some(EINVAL));
        let after = p.check()?;
        assert_eq!(before.allocated_pages, after.allocated_pages);
        assert_eq!(counts, p.free_counts());
        p.free(a.pfn, a.order)?;
        assert_eq!(p.free(a.pfn, a.order).err(), Some(EINVAL)); // double free
        p.free_addr(b.addr.as_ptr(), b.order)?;
        assert_eq!(p.free_addr(b.addr.as_ptr(), b.order).err(), Some(EINVAL));
        assert!(p.stats().bad_frees >= 7);
        assert_all_merged(&p)
    }

    /// Dropping a pool with blocks still allocated gives every chunk back
    /// (it says how much was in use); nothing may touch those blocks after.
    /// kmemleak and KASAN on the debug kernel check that nothing leaks.
    #[test]
    fn teardown_with_blocks_allocated() -> Result {
        let p = pool(2, 2)?;
        for order in [0, 3, 5, MAX_ORDER] {
            let _leaked = p.alloc(order)?;
        }
        assert_eq!(p.stats().total_pages, 2 * CHUNK_PAGES as u64);
        // The last reference: PinnedDrop drains, reports and frees.
        drop(p);
        Ok(())
    }

    /// A block freed on another CPU than the one that allocated it goes back
    /// correctly (onto that CPU's list).
    #[test]
    fn free_on_other_cpu() -> Result {
        if sys::num_online_cpus() < 2 {
            pr_info!("free_on_other_cpu: one CPU online; freeing from a CPU worker instead\n");
        }
        let p = pool(1, 1)?;
        let b = p.alloc(0)?;
        let target = (0..sys::nr_cpu_ids()).rev().find(|&c| sys::cpu_online(c)).unwrap_or(0);
        let pp = p.clone();
        let rc = sys::run_on_cpu(target, move || match pp.free(b.pfn, b.order) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        })?;
        assert_eq!(rc, 0);
        assert_all_merged(&p)
    }
}
