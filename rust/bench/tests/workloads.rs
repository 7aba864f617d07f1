// SPDX-License-Identifier: GPL-2.0
//! Runs every benchmark workload briefly, with checking hooks, on every
//! allocator the bench measures: live blocks must be disjoint, aligned,
//! inside the pool and left untouched by the allocator. A last test feeds
//! the checker a broken allocator, to show the harness can fail.

use std::ptr::NonNull;

use rkalloc_bench::bytes::{
    BsaHeap, Buf, LlaHeap, RkHeap, RkSlab, RlsfHeap, SlabmallocZone, TalcHeap,
};
use rkalloc_bench::pages::{BsaFrame, BsaHeapPages, Floor, RkBuddy};
use rkalloc_bench::{
    ByteAllocator, ByteChecker, ByteChurn, ByteTrace, PageAllocator, PageChecker, PageChurn,
    PageTrace, BYTE_LIVE, PAGE_LIVE, PAGE_POOL_PAGES, SEED,
};
use rkalloc_core::heap::{HeapFlags, Policy};

/// Churn steps per allocator: several times the working set, so freed
/// blocks are reused and merged many times over.
const STEPS: usize = 5000;

fn churn_pages<A: PageAllocator>(a: &mut A, base: usize) {
    let trace = PageTrace::new(PAGE_LIVE, SEED);
    let mut c = PageChecker::new(base, PAGE_POOL_PAGES);
    let mut w = PageChurn::new(a, &trace, &mut c);
    for _ in 0..STEPS {
        w.step(a, &mut c);
    }
    assert_eq!(c.live(), PAGE_LIVE);
    w.drain(a, &mut c);
    assert_eq!(c.live(), 0);
    assert_eq!(c.allocs, (PAGE_LIVE + STEPS) as u64);
}

#[test]
fn page_workload_rkalloc_buddy() {
    let mut a = RkBuddy::new();
    churn_pages(&mut a, 0);
    let report = a.buddy().check().expect("buddy invariants hold");
    assert_eq!(report.allocated_blocks, 0);
    assert_eq!(a.buddy().free_pages(), PAGE_POOL_PAGES as u64);
}

#[test]
fn page_workload_bsa_frame() {
    churn_pages(&mut BsaFrame::new(), 0);
}

#[test]
fn page_workload_harness_floor() {
    churn_pages(&mut Floor::new(), 0);
}

#[test]
fn page_workload_bsa_heap() {
    let mut a = BsaHeapPages::new();
    let base = a.base_pfn();
    churn_pages(&mut a, base);
}

fn churn_bytes<A: ByteAllocator>(a: &mut A) {
    let trace = ByteTrace::new(BYTE_LIVE, SEED);
    let mut c = ByteChecker::new(a.span());
    let mut w = ByteChurn::new(a, &trace, &mut c);
    for i in 0..STEPS {
        w.step(a, &mut c);
        // The hot pair runs on the churned heap, as in the bench.
        if i % 8 == 0 {
            w.hot_pair(a, &mut c);
        }
    }
    assert_eq!(c.live(), BYTE_LIVE);
    w.drain(a, &mut c);
    assert_eq!(c.live(), 0);
}

#[test]
fn byte_workload_rkalloc_heap_every_policy() {
    for flags in [HeapFlags::NONE, HeapFlags::LIFO] {
        for policy in Policy::ALL {
            let mut a = RkHeap::new(policy, flags);
            churn_bytes(&mut a);
            a.heap().check().expect("heap invariants hold");
            let s = a.heap().stats();
            assert_eq!((s.live_allocs, s.free_blocks), (0, 1), "{}", policy.name());
        }
    }
}

/// The same memory in 8 regions: lists link blocks of different regions.
#[test]
fn byte_workload_rkalloc_heap_in_regions() {
    for policy in Policy::ALL {
        let mut a = RkHeap::with_regions(policy, HeapFlags::NONE, 8);
        churn_bytes(&mut a);
        a.heap().check().expect("heap invariants hold");
        let s = a.heap().stats();
        assert_eq!(
            (s.regions, s.live_allocs, s.free_blocks),
            (8, 0, 8),
            "{}",
            policy.name()
        );
    }
}

#[test]
fn byte_workload_talc() {
    churn_bytes(&mut TalcHeap::new());
}

#[test]
fn byte_workload_rlsf() {
    churn_bytes(&mut RlsfHeap::new());
}

#[test]
fn byte_workload_linked_list_allocator() {
    churn_bytes(&mut LlaHeap::new());
}

#[test]
fn byte_workload_bsa_heap() {
    churn_bytes(&mut BsaHeap::new());
}

/// The slabs serve the hot pair only: hold a few objects live, then pair.
fn hot_pairs<A: ByteAllocator>(a: &mut A) {
    let trace = ByteTrace {
        initial: vec![rkalloc_bench::HOT_SIZE; 8],
        steps: vec![],
    };
    let mut c = ByteChecker::new(a.span());
    let w = ByteChurn::new(a, &trace, &mut c);
    let mut w = w;
    for _ in 0..1000 {
        w.hot_pair(a, &mut c);
    }
    w.drain(a, &mut c);
    assert_eq!((c.live(), c.allocs), (0, 1008));
}

#[test]
fn hot_pair_rkalloc_slab() {
    hot_pairs(&mut RkSlab::new());
}

#[test]
fn hot_pair_slabmalloc() {
    hot_pairs(&mut SlabmallocZone::new());
}

/// Hands out overlapping blocks: every block starts 16 bytes after the
/// previous one, whatever its size.
struct Overlapping {
    buf: Buf,
    next: usize,
}

impl ByteAllocator for Overlapping {
    type Handle = NonNull<u8>;
    fn alloc(&mut self, _size: usize) -> Option<NonNull<u8>> {
        self.next += 16;
        NonNull::new((self.buf.start() + self.next) as *mut u8)
    }
    fn free(&mut self, _h: NonNull<u8>, _size: usize) {}
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }
    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}

#[test]
#[should_panic(expected = "overlap")]
fn checker_catches_overlapping_blocks() {
    let mut a = Overlapping {
        buf: Buf::new(1 << 20, 4096),
        next: 0,
    };
    churn_bytes(&mut a);
}

/// A page allocator that forgets frees and reuses pfn 0 forever.
struct Sticky;

impl PageAllocator for Sticky {
    fn alloc(&mut self, _order: u32) -> Option<usize> {
        Some(0)
    }
    fn free(&mut self, _pfn: usize, _order: u32) {}
}

#[test]
#[should_panic(expected = "overlap")]
fn checker_catches_reused_pages() {
    churn_pages(&mut Sticky, 0);
}
