// SPDX-License-Identifier: GPL-2.0
//! The in-kernel benchmark: times alloc+free pairs of any allocator behind
//! [`registry::Allocator`], rkalloc's and the kernel's alike, in the same
//! guest run, and reports per-pair times as mean, p50 and p99 over samples.
//!
//! Time comes from `ktime_get_ns`. Under QEMU's `-icount shift=0` one guest
//! nanosecond is one guest instruction, which makes runs repeatable; under
//! multi-threaded TCG the figures are wall clock and noisy, so userspace
//! repeats runs and reports the spread.

use crate::{
    registry::{self, Allocator},
    sys, uapi, Shared,
};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Warm-up pairs before timing, to fill per-CPU caches and grow pools.
const WARMUP: u64 = 1024;

/// A small xorshift generator: the benchmark needs cheap, repeatable
/// randomness, not quality.
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    #[inline]
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Validates the request, runs it and fills the outputs.
pub(crate) fn run(shared: &Shared, a: &mut uapi::rkalloc_bench) -> Result {
    let samples = a.samples as usize;
    let batch = a.batch as usize;
    if samples == 0
        || samples > uapi::RKALLOC_MAX_SAMPLES as usize
        || a.ops == 0
        || a.ops > 1 << 24
        || a.bytes == 0
        || a.bytes > 64 << 20
        || a.pattern > uapi::RKALLOC_BENCH_CROSS_CPU
        || (a.pattern != uapi::RKALLOC_BENCH_PAIR && (batch == 0 || batch > uapi::RKALLOC_MAX_BATCH as usize))
    {
        return Err(EINVAL);
    }
    let other_cpu = if a.pattern == uapi::RKALLOC_BENCH_CROSS_CPU {
        Some(pick_other_cpu().ok_or(EINVAL)?)
    } else {
        None
    };
    let alloc = registry::make(a.allocator, a.bytes as usize, shared)?;
    let bulk = alloc.frees_all_at_once();
    if bulk && matches!(a.pattern, uapi::RKALLOC_BENCH_RANDOM_LIFE | uapi::RKALLOC_BENCH_CROSS_CPU) {
        // No per-object lifetimes for an allocator that frees all at once.
        return Err(EINVAL);
    }
    let size = a.bytes as usize;
    let mut slots: KVec<Option<NonNull<u8>>> = KVec::with_capacity(batch.max(1), GFP_KERNEL)?;
    for _ in 0..batch.max(1) {
        slots.push(None, GFP_KERNEL)?;
    }
    let mut order: KVec<usize> = KVec::with_capacity(batch.max(1), GFP_KERNEL)?;
    for i in 0..batch.max(1) {
        order.push(i, GFP_KERNEL)?;
    }
    let mut times: KVec<u64> = KVec::with_capacity(samples, GFP_KERNEL)?;
    let mut st = State {
        alloc: &*alloc,
        size,
        slots,
        order,
        rng: Rng(0x2545_f491_4f6c_dd1d),
        failures: 0,
        bulk,
    };
    a.cpu = sys::CpuGuard::new().cpu();

    // Warm-up, untimed.
    st.sample(a.pattern, WARMUP.min(a.ops), other_cpu);
    let start = sys::ktime_ns();
    for _ in 0..samples {
        let t0 = sys::ktime_ns();
        st.sample(a.pattern, a.ops, other_cpu);
        let dt = sys::ktime_ns() - t0;
        times.push(dt.saturating_mul(1000) / a.ops, GFP_KERNEL)?;
        sys::cond_resched();
    }
    a.total_ns = sys::ktime_ns() - start;
    pr_debug!(
        "bench: {} pattern {} size {}: {} samples of {} pairs in {} ns\n",
        st.alloc.name(),
        a.pattern,
        size,
        samples,
        a.ops,
        a.total_ns
    );
    st.release();
    a.failures = st.failures;
    crate::sort::sort_u64(&mut times);
    let n = times.len();
    a.mean_ps = times.iter().sum::<u64>() / n as u64;
    a.min_ps = times[0];
    a.max_ps = times[n - 1];
    a.p50_ps = times[n / 2];
    a.p99_ps = times[(n * 99 / 100).min(n - 1)];
    if st.failures != 0 {
        return Err(ENOMEM);
    }
    Ok(())
}

/// Another online CPU than the current one.
fn pick_other_cpu() -> Option<u32> {
    let me = sys::CpuGuard::new().cpu();
    (0..sys::nr_cpu_ids()).find(|&c| c != me && sys::cpu_online(c))
}

struct State<'a> {
    alloc: &'a dyn Allocator,
    size: usize,
    slots: KVec<Option<NonNull<u8>>>,
    order: KVec<usize>,
    rng: Rng,
    failures: u64,
    /// The allocator frees only all at once (an arena): a reset stands for
    /// the frees of each pair or batch.
    bulk: bool,
}

// SAFETY: the raw pointers in `slots` are allocations owned by this run;
// moving them to another CPU's worker (cross-CPU frees) is what the
// allocators under test must support.
unsafe impl Send for State<'_> {}

impl State<'_> {
    #[inline]
    fn alloc_into(&mut self, i: usize) {
        match self.alloc.alloc(self.size) {
            Some(p) => self.slots[i] = Some(p),
            None => self.failures += 1,
        }
    }

    #[inline]
    fn free_slot(&mut self, i: usize) {
        if let Some(p) = self.slots[i].take() {
            // SAFETY: `p` came from `alloc(self.size)` of this allocator and
            // leaves the slot, so it is freed once.
            unsafe { self.alloc.free(p, self.size) };
        }
    }

    /// Runs `ops` alloc+free pairs in `pattern`.
    fn sample(&mut self, pattern: u32, ops: u64, other_cpu: Option<u32>) {
        if self.bulk {
            return self.sample_bulk(pattern, ops);
        }
        let batch = self.slots.len() as u64;
        match pattern {
            uapi::RKALLOC_BENCH_PAIR => {
                for _ in 0..ops {
                    match self.alloc.alloc(self.size) {
                        // SAFETY: just allocated with this size, freed once.
                        Some(p) => unsafe { self.alloc.free(p, self.size) },
                        None => self.failures += 1,
                    }
                }
            }
            uapi::RKALLOC_BENCH_BATCH | uapi::RKALLOC_BENCH_BATCH_RANDOM => {
                let mut done = 0;
                while done < ops {
                    let n = batch.min(ops - done) as usize;
                    for i in 0..n {
                        self.alloc_into(i);
                    }
                    if pattern == uapi::RKALLOC_BENCH_BATCH_RANDOM {
                        // Fisher-Yates over the first n slots.
                        for i in (1..n).rev() {
                            let j = self.rng.below(i + 1);
                            self.order.swap(i, j);
                        }
                        for k in 0..n {
                            let i = self.order[k];
                            if i < n {
                                self.free_slot(i);
                            }
                        }
                        // Slots past n in `order` were skipped above.
                        for i in 0..n {
                            self.free_slot(i);
                        }
                    } else {
                        for i in 0..n {
                            self.free_slot(i);
                        }
                    }
                    done += n as u64;
                }
            }
            uapi::RKALLOC_BENCH_RANDOM_LIFE => {
                for i in 0..self.slots.len() {
                    if self.slots[i].is_none() {
                        self.alloc_into(i);
                    }
                }
                for _ in 0..ops {
                    let i = self.rng.below(self.slots.len());
                    self.free_slot(i);
                    self.alloc_into(i);
                }
            }
            uapi::RKALLOC_BENCH_CROSS_CPU => {
                let mut done = 0;
                while done < ops {
                    let n = batch.min(ops - done) as usize;
                    for i in 0..n {
                        self.alloc_into(i);
                    }
                    let cpu = other_cpu.unwrap_or(0);
                    let me = &mut *self;
                    let ran = sys::run_on_cpu(cpu, || {
                        for i in 0..n {
                            me.free_slot(i);
                        }
                        0
                    });
                    if ran.is_err() {
                        // The CPU went away: free here rather than leak.
                        for i in 0..n {
                            self.free_slot(i);
                        }
                    }
                    done += n as u64;
                }
            }
            _ => {}
        }
    }

    /// [`Self::sample`] for an allocator that frees all at once: a pair is
    /// an allocation and a reset; a batch is `batch` allocations and one
    /// reset (the order of frees means nothing to it). `run` refused the
    /// other patterns.
    fn sample_bulk(&mut self, pattern: u32, ops: u64) {
        let batch = if pattern == uapi::RKALLOC_BENCH_PAIR {
            1
        } else {
            self.slots.len() as u64
        };
        let mut done = 0;
        while done < ops {
            let n = batch.min(ops - done);
            for _ in 0..n {
                if self.alloc.alloc(self.size).is_none() {
                    self.failures += 1;
                }
            }
            self.alloc.reset();
            done += n;
        }
    }

    /// Frees whatever is still held.
    fn release(&mut self) {
        if self.bulk {
            return self.alloc.reset();
        }
        for i in 0..self.slots.len() {
            self.free_slot(i);
        }
    }
}
