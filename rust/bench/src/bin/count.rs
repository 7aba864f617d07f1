// SPDX-License-Identifier: GPL-2.0
//! Runs one workload of the host bench for a fixed number of steps, for
//! instruction and cache-miss counts under valgrind, which are repeatable
//! where wall-clock times on a shared machine are not:
//!
//! ```sh
//! cargo build --release -p rkalloc-bench --bin count
//! valgrind --tool=callgrind --toggle-collect='*count::measure*' \
//!     target/release/count heap segregated-fit 100000
//! ```
//!
//! Only `measure` (the steps themselves, not the set-up) is counted with
//! `--toggle-collect`; divide callgrind's total by the steps. Workloads as in
//! `benches/allocators.rs`: `heap` (free a random block, allocate 16-4096
//! bytes, 1000 live) and `hot64` (a 64-byte pair on that working set after
//! 4000 of its steps). Allocators: `first-fit`, `next-fit`, `best-fit`,
//! `segregated-fit`, `worst-fit`... (rkalloc's policies, `_lifo` appended
//! for LIFO lists, `@N` for the same memory in N regions), `talc`, `rlsf`,
//! `bsa_heap`, `linked_list_allocator`.

use std::process::exit;

use rkalloc_bench::bytes::{BsaHeap, LlaHeap, RkHeap, RlsfHeap, TalcHeap};
use rkalloc_bench::{ByteAllocator, ByteChurn, ByteTrace, NoHook, BYTE_LIVE, SEED};
use rkalloc_core::heap::{HeapFlags, Policy};

/// The steps that are counted.
#[inline(never)]
fn measure<A: ByteAllocator>(w: &mut ByteChurn<'_, A::Handle>, a: &mut A, hot: bool, steps: u64) {
    for _ in 0..steps {
        if hot {
            w.hot_pair(a, &mut NoHook);
        } else {
            w.step(a, &mut NoHook);
        }
    }
}

fn run<A: ByteAllocator>(mut a: A, workload: &str, steps: u64) {
    let trace = ByteTrace::new(BYTE_LIVE, SEED);
    let mut w = ByteChurn::new(&mut a, &trace, &mut NoHook);
    let hot = match workload {
        "heap" => false,
        "hot64" => {
            for _ in 0..4 * BYTE_LIVE {
                w.step(&mut a, &mut NoHook);
            }
            true
        }
        _ => usage(),
    };
    measure(&mut w, &mut a, hot, steps);
    w.drain(&mut a, &mut NoHook);
}

fn usage() -> ! {
    eprintln!("usage: count heap|hot64 ALLOCATOR STEPS (see the source for the names)");
    exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, workload, name, steps] = &args[..] else {
        usage()
    };
    let steps: u64 = steps.parse().unwrap_or_else(|_| usage());
    let w = workload.as_str();
    match name.as_str() {
        "talc" => run(TalcHeap::new(), w, steps),
        "rlsf" => run(RlsfHeap::new(), w, steps),
        "bsa_heap" => run(BsaHeap::new(), w, steps),
        "linked_list_allocator" => run(LlaHeap::new(), w, steps),
        rk => {
            // `segregated-fit_lifo@8`: 8 regions instead of one.
            let (rk, regions) = match rk.split_once('@') {
                Some((rk, n)) => (rk, n.parse().unwrap_or_else(|_| usage())),
                None => (rk, 1),
            };
            let (policy, flags) = match rk.strip_suffix("_lifo") {
                Some(p) => (p, HeapFlags::LIFO),
                None => (rk, HeapFlags::NONE),
            };
            let Some(policy) = Policy::from_name(policy) else {
                usage()
            };
            run(RkHeap::with_regions(policy, flags, regions), w, steps)
        }
    }
}
