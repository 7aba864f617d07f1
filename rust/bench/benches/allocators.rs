// SPDX-License-Identifier: GPL-2.0
//! rkalloc's pure core against crates.io `no_std` allocators, natively.
//!
//! One element is one step of the workload, so criterion's time per
//! iteration is the time per step:
//!
//! - `buddy`: free a random live block and allocate a new one of a random
//!   order in 0..=4, 1000 live blocks in a pool of 16 x 1024 pages;
//! - `heap`: the same with sizes 16..4096 (log-uniform, so mostly small),
//!   1000 live blocks in 2 MiB;
//! - `hot64`: allocate 64 bytes and free them at once, on a heap holding
//!   the `heap` workload's working set after 4000 of its steps (slabs: on a
//!   fresh 64-byte slab).
//!
//! rkalloc's heaps free by address, as the peers do. `rkalloc_*@8` is the
//! same heap over the same 2 MiB in 8 regions, as a kernel heap that grew:
//! free lists then link blocks of different regions.
//!
//! `buddy/harness_floor` is a trivial slot stack: its time is the driver's
//! own cost per step, which every `buddy` row includes.
//!
//! All traces come from one fixed seed (`rkalloc_bench::SEED`). State
//! carries over from sample to sample; the trace just cycles.
//!
//! slabmalloc builds on stable only without its default `unstable`
//! feature; it serves the hot pair only (see `rkalloc_bench::bytes`).
//!
//! `cargo bench -p rkalloc-bench -- --noplot`

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

use rkalloc_bench::bytes::{BsaHeap, LlaHeap, RkHeap, RkSlab, RlsfHeap, SlabmallocZone, TalcHeap};
use rkalloc_bench::pages::{BsaFrame, BsaHeapPages, Floor, RkBuddy};
use rkalloc_bench::{
    ByteAllocator, ByteChurn, ByteTrace, NoHook, PageAllocator, PageChurn, PageTrace, BYTE_LIVE,
    PAGE_LIVE, SEED,
};
use rkalloc_core::heap::{HeapFlags, Policy};

fn pages<A: PageAllocator>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut a: A) {
    let trace = PageTrace::new(PAGE_LIVE, SEED);
    let mut w = PageChurn::new(&mut a, &trace, &mut NoHook);
    g.bench_function(name, |b| b.iter(|| w.step(&mut a, &mut NoHook)));
}

fn buddy(c: &mut Criterion) {
    let mut g = c.benchmark_group("buddy");
    g.throughput(Throughput::Elements(1));
    pages(&mut g, "rkalloc_buddy", RkBuddy::new());
    pages(&mut g, "bsa_frame", BsaFrame::new());
    pages(&mut g, "bsa_heap", BsaHeapPages::new());
    // The driver's own cost per step, included in every row above.
    pages(&mut g, "harness_floor", Floor::new());
    g.finish();
}

fn heap_churn<A: ByteAllocator>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, mut a: A) {
    let trace = ByteTrace::new(BYTE_LIVE, SEED);
    let mut w = ByteChurn::new(&mut a, &trace, &mut NoHook);
    g.bench_function(name, |b| b.iter(|| w.step(&mut a, &mut NoHook)));
}

fn hot_pair<A: ByteAllocator>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, a: A) {
    hot_pair_after(g, name, a, &ByteTrace::new(BYTE_LIVE, SEED));
}

/// The hot pair after allocating `fill`'s initial working set and running
/// up to 4000 of its steps.
fn hot_pair_after<A: ByteAllocator>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut a: A,
    fill: &ByteTrace,
) {
    let mut w = ByteChurn::new(&mut a, fill, &mut NoHook);
    for _ in 0..fill.steps.len().min(4 * BYTE_LIVE) {
        w.step(&mut a, &mut NoHook);
    }
    g.bench_function(name, |b| b.iter(|| w.hot_pair(&mut a, &mut NoHook)));
}

/// rkalloc's heaps: every policy, address-ordered (the default) and LIFO,
/// and segregated fit in 8 regions.
fn rk_heaps() -> impl Iterator<Item = (String, RkHeap)> {
    [HeapFlags::NONE, HeapFlags::LIFO]
        .into_iter()
        .flat_map(|flags| Policy::ALL.into_iter().map(move |p| (p, flags)))
        .map(|(p, flags)| {
            let suffix = if flags.contains(HeapFlags::LIFO) {
                "_lifo"
            } else {
                ""
            };
            (
                format!("rkalloc_{}{suffix}", p.name()),
                RkHeap::new(p, flags),
            )
        })
        .chain(std::iter::once((
            format!("rkalloc_{}@8", Policy::SegregatedFit.name()),
            RkHeap::with_regions(Policy::SegregatedFit, HeapFlags::NONE, 8),
        )))
}

fn heap(c: &mut Criterion) {
    let mut g = c.benchmark_group("heap");
    g.throughput(Throughput::Elements(1));
    for (name, a) in rk_heaps() {
        heap_churn(&mut g, &name, a);
    }
    heap_churn(&mut g, "talc", TalcHeap::new());
    heap_churn(&mut g, "rlsf", RlsfHeap::new());
    heap_churn(&mut g, "linked_list_allocator", LlaHeap::new());
    heap_churn(&mut g, "bsa_heap", BsaHeap::new());
    g.finish();
}

fn hot64(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot64");
    g.throughput(Throughput::Elements(1));
    for (name, a) in rk_heaps() {
        hot_pair(&mut g, &name, a);
    }
    hot_pair(&mut g, "talc", TalcHeap::new());
    hot_pair(&mut g, "rlsf", RlsfHeap::new());
    hot_pair(&mut g, "linked_list_allocator", LlaHeap::new());
    hot_pair(&mut g, "bsa_heap", BsaHeap::new());
    // Slabs serve one size: a fresh 64-byte cache, no working set.
    let none = ByteTrace {
        initial: vec![],
        steps: vec![],
    };
    hot_pair_after(&mut g, "rkalloc_slab", RkSlab::new(), &none);
    hot_pair_after(&mut g, "slabmalloc", SlabmallocZone::new(), &none);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = buddy, heap, hot64
}
criterion_main!(benches);
