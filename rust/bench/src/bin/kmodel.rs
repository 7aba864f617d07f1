// SPDX-License-Identifier: GPL-2.0
//! The kernel bench's `heaps` rows (`rkctl bench`, group "heaps N B,
//! random_life") modelled on the host, to count instructions under
//! valgrind where a guest run takes minutes:
//!
//! ```sh
//! cargo build --release -p rkalloc-bench --bin kmodel
//! valgrind --tool=callgrind --toggle-collect='*kmodel*measure*' \
//!     target/release/kmodel segregated 256 100000 kernel
//! ```
//!
//! 512 live blocks of one size; each step frees a random one and allocates
//! it again, as `measure/bench.rs` does. The heap grows as the kernel glue
//! (`mm/heap`) grows it: a 64 KiB region first, then regions as large as
//! all it holds, up to 4 MiB. Modes: `kernel` (a region wholly free after
//! a free goes back, as the glue does), `eager` (the glue before
//! `free_emptied`: `remove_region` tried after every free), `norel` (no
//! region goes back), `one` (a single 4 MiB region, so no growth). Divide
//! callgrind's total by STEPS; stderr has the time per pair and the
//! heap's shape.

use std::process::exit;

use rkalloc_core::heap::{max_alloc_in, Heap, HeapError, HeapFlags, Policy};
use rkalloc_core::rng::Rng;

/// Live blocks, as `rkctl bench` asks of the heaps.
const LIVE: usize = 512;

struct Model {
    heap: Heap<Box<[u8]>>,
    held: usize,
    regions: u32,
    release: bool,
    eager: bool,
}

impl Model {
    fn grow(&mut self, bytes: usize) {
        let mem = vec![0u8; bytes].into_boxed_slice();
        self.heap.add_region(mem).expect("a fresh region is valid");
        self.held += bytes;
        self.regions += 1;
    }

    #[inline(always)]
    fn alloc(&mut self, size: usize) -> *const u8 {
        let p = match self.heap.alloc(size) {
            Ok(p) => p,
            Err(HeapError::NoMemory) => {
                let mut bytes = self.held.clamp(64 << 10, 4 << 20);
                while max_alloc_in(bytes) < size {
                    bytes *= 2;
                }
                self.grow(bytes);
                self.heap.alloc(size).expect("a fresh region serves it")
            }
            Err(e) => panic!("alloc({size}): {e:?}"),
        };
        let base = self.heap.region(p.region).expect("a live region");
        base.as_ptr().wrapping_add(p.offset as usize)
    }

    #[inline(always)]
    fn free(&mut self, a: *const u8) {
        let p = self.heap.ptr_of(a).expect("a live block");
        let emptied = self.heap.free_emptied(p).expect("a live block");
        if self.release && (emptied || self.eager) && self.regions > 1 {
            if let Some(m) = self.heap.remove_region(p.region) {
                self.held -= m.len();
                self.regions -= 1;
            }
        }
    }
}

/// The steps that are counted.
#[inline(never)]
fn measure(m: &mut Model, slots: &mut [*const u8], rng: &mut Rng, size: usize, steps: u64) {
    for _ in 0..steps {
        let i = rng.index(slots.len());
        m.free(slots[i]);
        slots[i] = m.alloc(size);
    }
}

fn usage() -> ! {
    eprintln!("usage: kmodel POLICY BYTES STEPS [kernel|eager|norel|one]");
    exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(policy), Some(size), Some(steps)) = (
        args.get(1).and_then(|p| Policy::from_name(p)),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
        args.get(3).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        usage()
    };
    let mode = args.get(4).map_or("kernel", String::as_str);
    if !["kernel", "eager", "norel", "one"].contains(&mode) {
        usage()
    }
    let mut m = Model {
        heap: Heap::new(policy, HeapFlags::NONE),
        held: 0,
        regions: 0,
        release: mode == "kernel" || mode == "eager",
        eager: mode == "eager",
    };
    m.grow(if mode == "one" { 4 << 20 } else { 64 << 10 });
    // The kernel bench's seed.
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut slots: Vec<*const u8> = (0..LIVE).map(|_| m.alloc(size)).collect();
    // Warm-up, as the kernel bench's.
    measure(&mut m, &mut slots, &mut rng, size, 4096);
    let t = std::time::Instant::now();
    measure(&mut m, &mut slots, &mut rng, size, steps);
    let ns = t.elapsed().as_nanos() as f64 / steps.max(1) as f64;
    let s = m.heap.stats();
    eprintln!(
        "{} {size} B {mode}: {ns:.1} ns/pair, {} regions, {:.2} search steps per allocation, {} free blocks",
        policy.name(),
        s.regions,
        s.search_steps as f64 / s.allocs.max(1) as f64,
        s.free_blocks
    );
    m.heap.check().expect("the heap is consistent");
    for p in slots {
        m.free(p);
    }
}
