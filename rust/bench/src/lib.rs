// SPDX-License-Identifier: GPL-2.0
//! Host benchmarks of rkalloc's pure core against the `no_std` allocators a
//! Rust kernel developer would pick instead, all from crates.io.
//!
//! This library holds what the criterion bench (`benches/allocators.rs`) and
//! the harness test (`tests/workloads.rs`) share, so that the test runs the
//! very code that is measured:
//!
//! - deterministic traces ([`PageTrace`], [`ByteTrace`]) made from a fixed
//!   seed, so every allocator sees the same requests in the same order;
//! - two small traits, [`PageAllocator`] and [`ByteAllocator`], with one
//!   adapter per allocator ([`pages`], [`bytes`]);
//! - the churn drivers ([`PageChurn`], [`ByteChurn`]): a working set of live
//!   blocks where each step frees a random live block and allocates a new
//!   one;
//! - a [`Hook`] that is free in the benches ([`NoHook`]) and, in the tests,
//!   checks that live blocks are disjoint, aligned, inside the pool and
//!   not overwritten by the allocator ([`PageChecker`], [`ByteChecker`]).
//!
//! Pool sizes are the same for every allocator of a workload. Every byte
//! heap is asked for [`ALIGN`]-aligned memory, the alignment rkalloc's heap
//! always gives.

use std::collections::BTreeMap;

pub mod bytes;
pub mod pages;

/// The seed of every trace.
pub const SEED: u64 = 0x5eed_a110_c0de_0007;

/// Live blocks in the page workload.
pub const PAGE_LIVE: usize = 1000;
/// Highest order the page workload asks for (orders are uniform in `0..=4`).
pub const PAGE_MAX_ORDER: u32 = 4;
/// Pool of the page workload: 16 chunks of 1024 pages (64 MiB of 4 KiB
/// pages). The working set averages about 6200 pages, 38% of it.
pub const PAGE_POOL_CHUNKS: u32 = 16;
/// Pages in the page pool.
pub const PAGE_POOL_PAGES: usize = PAGE_POOL_CHUNKS as usize * 1024;

/// Live blocks in the byte workload.
pub const BYTE_LIVE: usize = 1000;
/// Smallest request of the byte workload.
pub const BYTE_MIN: usize = 16;
/// Largest request of the byte workload, exclusive.
pub const BYTE_MAX: usize = 4096;
/// Memory of every byte heap: 2 MiB. The working set averages about 750 KiB.
pub const BYTE_POOL: usize = 2 << 20;
/// Alignment asked of every byte heap.
pub const ALIGN: usize = 16;
/// Size of the hot alloc+free pair.
pub const HOT_SIZE: usize = 64;

/// Steps in a trace; the drivers cycle through it.
pub const TRACE_STEPS: usize = 1 << 16;

/// The generator of every trace: the core's SplitMix64, so a seed names
/// the same trace everywhere.
pub use rkalloc_core::rng::Rng;

/// The page workload: the orders of the initial working set, then one
/// (victim slot, new order) pair per step.
#[derive(Debug, Clone)]
pub struct PageTrace {
    /// Order of each initial block.
    pub initial: Vec<u32>,
    /// Slot to free and order to allocate into it, per step.
    pub steps: Vec<(u32, u32)>,
}

impl PageTrace {
    /// The trace for `live` live blocks, from `seed`.
    pub fn new(live: usize, seed: u64) -> PageTrace {
        let mut rng = Rng::new(seed);
        let initial = (0..live)
            .map(|_| below(&mut rng, PAGE_MAX_ORDER + 1))
            .collect();
        let steps = (0..TRACE_STEPS)
            .map(|_| {
                (
                    below(&mut rng, live as u32),
                    below(&mut rng, PAGE_MAX_ORDER + 1),
                )
            })
            .collect();
        PageTrace { initial, steps }
    }
}

/// A number uniform in `0..n`.
fn below(rng: &mut Rng, n: u32) -> u32 {
    // Below n, so within u32.
    rng.below(u64::from(n)) as u32
}

/// A request size of the byte workload: an octave `[16 << k, 32 << k)`
/// picked uniformly (k in 0..8), then a size uniform in it, so sizes are
/// log-uniform over 16..4096 (median about 256, mean about 750) and most
/// requests are small.
pub fn byte_size(rng: &mut Rng) -> usize {
    let k = below(rng, 8);
    let lo = BYTE_MIN << k;
    (lo + below(rng, lo as u32) as usize).min(BYTE_MAX - 1)
}

/// The byte workload: sizes of the initial working set, then one (victim
/// slot, new size) pair per step.
#[derive(Debug, Clone)]
pub struct ByteTrace {
    /// Size of each initial block.
    pub initial: Vec<usize>,
    /// Slot to free and size to allocate into it, per step.
    pub steps: Vec<(u32, usize)>,
}

impl ByteTrace {
    /// The trace for `live` live blocks, from `seed`.
    pub fn new(live: usize, seed: u64) -> ByteTrace {
        let mut rng = Rng::new(seed);
        let initial = (0..live).map(|_| byte_size(&mut rng)).collect();
        let steps = (0..TRACE_STEPS)
            .map(|_| (below(&mut rng, live as u32), byte_size(&mut rng)))
            .collect();
        ByteTrace { initial, steps }
    }
}

/// A page-frame allocator: blocks of `1 << order` pages named by pfn.
pub trait PageAllocator {
    /// Allocates `1 << order` pages; `None` when out of memory.
    fn alloc(&mut self, order: u32) -> Option<usize>;
    /// Frees a block that `alloc(order)` returned.
    fn free(&mut self, pfn: usize, order: u32);
}

/// A byte heap handing out [`ALIGN`]-aligned blocks.
pub trait ByteAllocator {
    /// What names a live block: its address, or the slab's offset.
    type Handle: Copy;
    /// Allocates `size` bytes; `None` when out of memory.
    fn alloc(&mut self, size: usize) -> Option<Self::Handle>;
    /// Frees a block that `alloc(size)` returned.
    fn free(&mut self, h: Self::Handle, size: usize);
    /// The address of the first byte of a live block.
    fn addr(&self, h: Self::Handle) -> *mut u8;
    /// The memory the heap owns, `[start, end)`.
    fn span(&self) -> (usize, usize);
}

/// Observes every allocation and free of a driver.
pub trait Hook {
    /// A block `[start, start + len)` was just allocated.
    fn on_alloc(&mut self, start: usize, len: usize);
    /// The block at `start` of `len` units is about to be freed.
    fn on_free(&mut self, start: usize, len: usize);
}

/// The hook of the benches: does nothing and costs nothing.
pub struct NoHook;

impl Hook for NoHook {
    #[inline(always)]
    fn on_alloc(&mut self, _: usize, _: usize) {}
    #[inline(always)]
    fn on_free(&mut self, _: usize, _: usize) {}
}

/// The page churn: a working set of live blocks driven by a [`PageTrace`].
pub struct PageChurn<'t> {
    trace: &'t PageTrace,
    live: Vec<(usize, u32)>,
    pos: usize,
}

impl<'t> PageChurn<'t> {
    /// Allocates the initial working set. Panics if the pool is too small.
    pub fn new<A: PageAllocator, H: Hook>(a: &mut A, trace: &'t PageTrace, h: &mut H) -> Self {
        let live = trace
            .initial
            .iter()
            .map(|&order| (alloc_page(a, order, h), order))
            .collect();
        PageChurn {
            trace,
            live,
            pos: 0,
        }
    }

    /// Frees a random live block and allocates a new one in its slot.
    #[inline]
    pub fn step<A: PageAllocator, H: Hook>(&mut self, a: &mut A, h: &mut H) {
        let (slot, order) = self.trace.steps[self.pos];
        self.pos = (self.pos + 1) % TRACE_STEPS;
        let (pfn, old) = self.live[slot as usize];
        h.on_free(pfn, 1 << old);
        a.free(pfn, old);
        self.live[slot as usize] = (alloc_page(a, order, h), order);
    }

    /// Frees every live block.
    pub fn drain<A: PageAllocator, H: Hook>(self, a: &mut A, h: &mut H) {
        for (pfn, order) in self.live {
            h.on_free(pfn, 1 << order);
            a.free(pfn, order);
        }
    }
}

#[inline]
fn alloc_page<A: PageAllocator, H: Hook>(a: &mut A, order: u32, h: &mut H) -> usize {
    match a.alloc(order) {
        Some(pfn) => {
            h.on_alloc(pfn, 1 << order);
            pfn
        }
        None => out_of_memory("pages", 1 << order),
    }
}

#[cold]
#[inline(never)]
fn out_of_memory(what: &str, n: usize) -> ! {
    panic!("out of memory allocating {n} {what}: the pool is too small for the workload")
}

/// The byte churn: a working set of live blocks driven by a [`ByteTrace`].
pub struct ByteChurn<'t, T> {
    trace: &'t ByteTrace,
    live: Vec<(T, usize)>,
    pos: usize,
}

impl<'t, T: Copy> ByteChurn<'t, T> {
    /// Allocates the initial working set. Panics if the heap is too small.
    pub fn new<A, H>(a: &mut A, trace: &'t ByteTrace, h: &mut H) -> Self
    where
        A: ByteAllocator<Handle = T>,
        H: Hook,
    {
        let live = trace
            .initial
            .iter()
            .map(|&size| (alloc_bytes(a, size, h), size))
            .collect();
        ByteChurn {
            trace,
            live,
            pos: 0,
        }
    }

    /// Frees a random live block and allocates a new one in its slot.
    #[inline]
    pub fn step<A, H>(&mut self, a: &mut A, h: &mut H)
    where
        A: ByteAllocator<Handle = T>,
        H: Hook,
    {
        let (slot, size) = self.trace.steps[self.pos];
        self.pos = (self.pos + 1) % TRACE_STEPS;
        let (old, old_size) = self.live[slot as usize];
        h.on_free(a.addr(old) as usize, old_size);
        a.free(old, old_size);
        self.live[slot as usize] = (alloc_bytes(a, size, h), size);
    }

    /// One hot pair: allocates [`HOT_SIZE`] bytes and frees them at once.
    #[inline]
    pub fn hot_pair<A, H>(&mut self, a: &mut A, h: &mut H)
    where
        A: ByteAllocator<Handle = T>,
        H: Hook,
    {
        let p = alloc_bytes(a, HOT_SIZE, h);
        h.on_free(a.addr(p) as usize, HOT_SIZE);
        a.free(std::hint::black_box(p), HOT_SIZE);
    }

    /// Frees every live block.
    pub fn drain<A, H>(self, a: &mut A, h: &mut H)
    where
        A: ByteAllocator<Handle = T>,
        H: Hook,
    {
        for (p, size) in self.live {
            h.on_free(a.addr(p) as usize, size);
            a.free(p, size);
        }
    }
}

#[inline]
fn alloc_bytes<A: ByteAllocator, H: Hook>(a: &mut A, size: usize, h: &mut H) -> A::Handle {
    match a.alloc(size) {
        Some(p) => {
            h.on_alloc(a.addr(p) as usize, size);
            p
        }
        None => out_of_memory("bytes", size),
    }
}

/// Checks a page allocator: live blocks are naturally aligned (a buddy
/// property), inside `[0, pages)`, pairwise disjoint, and every free names
/// a live block.
pub struct PageChecker {
    base: usize,
    pages: usize,
    live: BTreeMap<usize, usize>,
    /// Allocations seen.
    pub allocs: u64,
}

impl PageChecker {
    /// A checker for a pool of `pages` pages starting at pfn `base`.
    pub fn new(base: usize, pages: usize) -> PageChecker {
        PageChecker {
            base,
            pages,
            live: BTreeMap::new(),
            allocs: 0,
        }
    }

    /// Live blocks now.
    pub fn live(&self) -> usize {
        self.live.len()
    }
}

/// Panics unless `[start, end)` overlaps no block of `live`.
fn assert_disjoint(live: &BTreeMap<usize, usize>, start: usize, end: usize, unit: &str) {
    if let Some((&s, &e)) = live.range(..=start).next_back() {
        assert!(
            e <= start,
            "overlap: new block [{start:#x}, {end:#x}) and live [{s:#x}, {e:#x}) ({unit})"
        );
    }
    if let Some((&s, &e)) = live.range(start..).next() {
        assert!(
            end <= s,
            "overlap: new block [{start:#x}, {end:#x}) and live [{s:#x}, {e:#x}) ({unit})"
        );
    }
}

impl Hook for PageChecker {
    fn on_alloc(&mut self, pfn: usize, len: usize) {
        let rel = pfn.wrapping_sub(self.base);
        assert!(
            rel < self.pages && len <= self.pages - rel,
            "block {pfn:#x}+{len} outside the pool"
        );
        assert_eq!(rel % len, 0, "block {pfn:#x} of {len} pages is misaligned");
        assert_disjoint(&self.live, pfn, pfn + len, "pages");
        self.live.insert(pfn, pfn + len);
        self.allocs += 1;
    }

    fn on_free(&mut self, pfn: usize, len: usize) {
        assert_eq!(
            self.live.remove(&pfn),
            Some(pfn + len),
            "free of {pfn:#x}: not a live block of {len} pages"
        );
    }
}

/// Checks a byte heap: live blocks are [`ALIGN`]-aligned, inside the heap's
/// memory and pairwise disjoint; every free names a live block; and a
/// pattern written over each whole block on allocation is intact when it
/// is freed, so a heap that puts its metadata in a live payload is caught.
pub struct ByteChecker {
    span: (usize, usize),
    live: BTreeMap<usize, usize>,
    /// Allocations seen.
    pub allocs: u64,
}

impl ByteChecker {
    /// A checker for a heap owning `span`.
    pub fn new(span: (usize, usize)) -> ByteChecker {
        ByteChecker {
            span,
            live: BTreeMap::new(),
            allocs: 0,
        }
    }

    /// Live blocks now.
    pub fn live(&self) -> usize {
        self.live.len()
    }
}

fn pattern(start: usize, i: usize) -> u8 {
    ((start >> 4) ^ (i * 7) ^ 0xa5) as u8
}

impl Hook for ByteChecker {
    fn on_alloc(&mut self, start: usize, len: usize) {
        let end = start + len;
        assert_eq!(start % ALIGN, 0, "block {start:#x} is misaligned");
        assert!(
            self.span.0 <= start && end <= self.span.1,
            "block [{start:#x}, {end:#x}) outside the heap [{:#x}, {:#x})",
            self.span.0,
            self.span.1
        );
        assert_disjoint(&self.live, start, end, "bytes");
        self.live.insert(start, end);
        self.allocs += 1;
        // SAFETY: the allocator just handed out `[start, end)`, which lies
        // inside memory it owns (checked above) and overlaps no other live
        // block, so the test may write all of it.
        let block = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
        for (i, b) in block.iter_mut().enumerate() {
            *b = pattern(start, i);
        }
    }

    fn on_free(&mut self, start: usize, len: usize) {
        assert_eq!(
            self.live.remove(&start),
            Some(start + len),
            "free of {start:#x}: not a live block of {len} bytes"
        );
        // SAFETY: `[start, start + len)` is a live block (checked above),
        // written by `on_alloc` and not yet freed.
        let block = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
        for (i, b) in block.iter().enumerate() {
            assert_eq!(
                *b,
                pattern(start, i),
                "live block {start:#x}+{len} was overwritten at byte {i}"
            );
        }
    }
}
