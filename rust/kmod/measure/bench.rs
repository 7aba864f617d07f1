// SPDX-License-Identifier: GPL-2.0
//! The in-kernel benchmark (`RKALLOC_IOC_BENCH`): times alloc+free pairs of
//! any allocator of the table, rkalloc's and the kernel's alike, in the
//! same boot, and reports per-pair times over samples; with
//! `RKALLOC_BENCH_LATENCY`, also percentiles of single operations.
//!
//! Time comes from `ktime_get_ns`: wall clock on a real CPU (natively under
//! User-Mode Linux, or KVM), guest instructions under QEMU's
//! `-icount shift=0`. The sample loop is the same code for every allocator:
//! one dynamic call per operation through [`Allocator`].
//!
//! A sample never runs unchecked for long: the loop polls for a fatal
//! signal every [`SIGNAL_EVERY`] pairs (a shim call per 1024 pairs, far
//! below the noise) and stops with EINTR after freeing what it holds.

use crate::{
    alloc::{Allocator, Descriptor},
    rkcore::{rng::Rng, sort::sort_u64},
    state::Shared,
    sys,
};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Warm-up pairs before timing, to fill per-CPU caches and grow pools.
const WARMUP: u64 = 1024;
/// Pairs between two fatal-signal checks inside a sample.
const SIGNAL_EVERY: u64 = 1024;
/// Most single operations of each kind the latency pass times.
const LATENCY_OPS: usize = 1 << 16;
/// Most pairs per sample.
pub(crate) const MAX_OPS: u64 = 1 << 24;
/// Most samples of a run.
pub(crate) const MAX_SAMPLES: u32 = 1024;
/// Most objects held at once.
pub(crate) const MAX_BATCH: usize = 4096;

/// What a run does with its allocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// A hot alloc+free pair.
    Pair,
    /// A batch allocated, then freed in order.
    Batch,
    /// A batch allocated, then freed in random order.
    BatchRandom,
    /// `batch` live objects; each step replaces a random one.
    RandomLife,
    /// A batch allocated here, freed on another CPU.
    CrossCpu,
}

/// One benchmark run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    /// Allocator id in the table.
    pub(crate) allocator: u32,
    /// What it does.
    pub(crate) pattern: Pattern,
    /// Objects held at once (patterns other than [`Pattern::Pair`]).
    pub(crate) batch: usize,
    /// Bytes per allocation.
    pub(crate) bytes: u64,
    /// Pairs per sample.
    pub(crate) ops: u64,
    /// Samples.
    pub(crate) samples: u32,
    /// Also time single operations.
    pub(crate) latency: bool,
}

/// What a run measured; times in picoseconds per pair (or operation).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) cpu: u32,
    pub(crate) total_ns: u64,
    pub(crate) mean_ps: u64,
    pub(crate) median_ps: u64,
    pub(crate) min_ps: u64,
    pub(crate) max_ps: u64,
    pub(crate) failures: u64,
    pub(crate) alloc_p50_ps: u64,
    pub(crate) alloc_p99_ps: u64,
    pub(crate) free_p50_ps: u64,
    pub(crate) free_p99_ps: u64,
    pub(crate) lat_overhead_ps: u64,
}

/// How single operations are timed: not at all in the timed samples, one
/// by one in the latency pass. Generic, so the samples' loop has no
/// timing code in it at all.
trait Timer: Send {
    /// Runs `f`, an allocation, and returns its result.
    fn alloc<R>(&mut self, f: impl FnOnce() -> R) -> R;
    /// Runs `f`, a free.
    fn free(&mut self, f: impl FnOnce());
}

/// No timing of single operations.
struct Untimed;

impl Timer for Untimed {
    #[inline(always)]
    fn alloc<R>(&mut self, f: impl FnOnce() -> R) -> R {
        f()
    }
    #[inline(always)]
    fn free(&mut self, f: impl FnOnce()) {
        f()
    }
}

/// Times each operation, until `LATENCY_OPS` of each kind are recorded.
struct PerOp {
    allocs: KVVec<u64>,
    frees: KVVec<u64>,
}

impl Timer for PerOp {
    #[inline(always)]
    fn alloc<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t0 = sys::ktime_ns();
        let r = f();
        let dt = sys::ktime_ns() - t0;
        let _ = self.allocs.push_within_capacity(dt);
        r
    }
    #[inline(always)]
    fn free(&mut self, f: impl FnOnce()) {
        let t0 = sys::ktime_ns();
        f();
        let dt = sys::ktime_ns() - t0;
        let _ = self.frees.push_within_capacity(dt);
    }
}

/// Validates the request and runs it. EINVAL for a bad request (a size
/// outside the allocator's range among them), ENOMEM when the allocator
/// failed during the run (the outcome says how often), EINTR at a fatal
/// signal; whatever the run holds is freed in every case.
pub(crate) fn run(shared: &Shared, q: &Request, out: &mut Outcome) -> Result {
    let samples = q.samples as usize;
    // A pair holds one object; its `batch` is ignored (and must not size
    // anything: the fuzzer sent u32::MAX).
    let batch = if q.pattern == Pattern::Pair { 1 } else { q.batch };
    let d = shared.allocators.get(q.allocator).ok_or(EINVAL)?;
    if samples == 0
        || q.samples > MAX_SAMPLES
        || q.ops == 0
        || q.ops > MAX_OPS
        || (q.pattern != Pattern::Pair && (batch == 0 || batch > MAX_BATCH))
    {
        return Err(EINVAL);
    }
    // Sizes outside the allocator's range never reach it (kmalloc above
    // KMALLOC_MAX_SIZE would warn).
    let size = usize::try_from(q.bytes).map_err(|_| EINVAL)?;
    if !d.serves(size) {
        return Err(EINVAL);
    }
    if d.frees_all && matches!(q.pattern, Pattern::RandomLife | Pattern::CrossCpu) {
        // No per-object lifetimes for an allocator that frees all at once.
        return Err(EINVAL);
    }
    let other_cpu = if q.pattern == Pattern::CrossCpu {
        Some(pick_other_cpu().ok_or(EINVAL)?)
    } else {
        None
    };
    let alloc = d.make(shared.env(), size)?;
    let slots = KVec::from_elem(None, batch.max(1), GFP_KERNEL)?;
    let mut order = KVec::with_capacity(batch.max(1), GFP_KERNEL)?;
    for i in 0..batch.max(1) {
        order.push(i, GFP_KERNEL)?;
    }
    let mut times: KVec<u64> = KVec::with_capacity(samples, GFP_KERNEL)?;
    let mut st = State {
        d,
        alloc: &*alloc,
        size,
        slots,
        order,
        rng: Rng::new(0x2545_f491_4f6c_dd1d),
        failures: 0,
    };
    out.cpu = sys::CpuGuard::new().cpu();

    let outcome = (|| -> Result {
        // Warm-up, untimed.
        st.sample(q.pattern, WARMUP.min(q.ops), other_cpu, &mut Untimed)?;
        let start = sys::ktime_ns();
        for _ in 0..samples {
            let t0 = sys::ktime_ns();
            st.sample(q.pattern, q.ops, other_cpu, &mut Untimed)?;
            let dt = sys::ktime_ns() - t0;
            times.push(dt.saturating_mul(1000) / q.ops, GFP_KERNEL)?;
            sys::interrupted()?;
        }
        out.total_ns = sys::ktime_ns() - start;
        if q.latency {
            latency(&mut st, q, out, other_cpu)?;
        }
        Ok(())
    })();
    st.release();
    outcome?;
    pr_debug!(
        "bench: {} {:?} size {}: {} samples of {} pairs in {} ns\n",
        d.name(),
        q.pattern,
        size,
        samples,
        q.ops,
        out.total_ns
    );
    out.failures = st.failures;
    sort_u64(&mut times);
    let n = times.len();
    out.mean_ps = times.iter().sum::<u64>() / n as u64;
    out.min_ps = times[0];
    out.max_ps = times[n - 1];
    out.median_ps = times[n / 2];
    if st.failures != 0 {
        return Err(ENOMEM);
    }
    Ok(())
}

/// The latency pass: the same pattern again, every operation timed alone,
/// less the clock's own cost; fills the `*_p50_ps`/`*_p99_ps` outputs.
fn latency(st: &mut State<'_>, q: &Request, a: &mut Outcome, other_cpu: Option<u32>) -> Result {
    let n = LATENCY_OPS.min(q.ops.saturating_mul(u64::from(q.samples)) as usize);
    let mut t = PerOp {
        allocs: KVVec::with_capacity(n, GFP_KERNEL)?,
        frees: KVVec::with_capacity(n, GFP_KERNEL)?,
    };
    // The clock's cost: the median of back-to-back readings.
    let mut clock = KVVec::with_capacity(1024, GFP_KERNEL)?;
    for _ in 0..1024 {
        let t0 = sys::ktime_ns();
        let _ = clock.push_within_capacity(sys::ktime_ns() - t0);
    }
    sort_u64(&mut clock);
    let overhead = clock[clock.len() / 2];
    st.sample(q.pattern, n as u64, other_cpu, &mut t)?;
    let pct = |v: &mut KVVec<u64>, p: usize| -> u64 {
        if v.is_empty() {
            return 0;
        }
        sort_u64(v);
        v[(v.len() * p / 100).min(v.len() - 1)].saturating_sub(overhead) * 1000
    };
    a.alloc_p50_ps = pct(&mut t.allocs, 50);
    a.alloc_p99_ps = pct(&mut t.allocs, 99);
    a.free_p50_ps = pct(&mut t.frees, 50);
    a.free_p99_ps = pct(&mut t.frees, 99);
    a.lat_overhead_ps = overhead * 1000;
    Ok(())
}

/// Another online CPU than the current one.
fn pick_other_cpu() -> Option<u32> {
    let me = sys::CpuGuard::new().cpu();
    (0..sys::nr_cpu_ids()).find(|&c| c != me && sys::cpu_online(c))
}

struct State<'a> {
    d: &'a Descriptor,
    alloc: &'a dyn Allocator,
    size: usize,
    slots: KVec<Option<NonNull<u8>>>,
    order: KVec<usize>,
    rng: Rng,
    failures: u64,
}

// SAFETY: the raw pointers in `slots` are allocations owned by this run;
// moving them to another CPU's worker (cross-CPU frees) is what the
// allocators under test must support.
unsafe impl Send for State<'_> {}

impl State<'_> {
    #[inline]
    fn alloc_into<T: Timer>(&mut self, i: usize, t: &mut T) {
        match t.alloc(|| self.alloc.alloc(self.size)) {
            Some(p) => self.slots[i] = Some(p),
            None => self.failures += 1,
        }
    }

    #[inline]
    fn free_slot<T: Timer>(&mut self, i: usize, t: &mut T) {
        if let Some(p) = self.slots[i].take() {
            // SAFETY: `p` came from `alloc(self.size)` of this allocator and
            // leaves the slot, so it is freed once.
            t.free(|| unsafe { self.alloc.free(p, self.size) });
        }
    }

    /// Runs `ops` alloc+free pairs in `pattern`; EINTR at a fatal signal
    /// (what it holds stays in `slots` for [`Self::release`]).
    fn sample<T: Timer>(&mut self, pattern: Pattern, ops: u64, other_cpu: Option<u32>, t: &mut T) -> Result {
        if self.d.frees_all {
            return self.sample_bulk(pattern, ops, t);
        }
        let batch = self.slots.len() as u64;
        match pattern {
            Pattern::Pair => {
                let mut done = 0;
                while done < ops {
                    let n = SIGNAL_EVERY.min(ops - done);
                    for _ in 0..n {
                        match t.alloc(|| self.alloc.alloc(self.size)) {
                            // SAFETY: just allocated with this size, freed once.
                            Some(p) => t.free(|| unsafe { self.alloc.free(p, self.size) }),
                            None => self.failures += 1,
                        }
                    }
                    done += n;
                    if sys::cpu::fatal_signal_pending() {
                        return Err(EINTR);
                    }
                }
            }
            Pattern::Batch | Pattern::BatchRandom => {
                let mut done = 0;
                while done < ops {
                    let n = batch.min(ops - done) as usize;
                    for i in 0..n {
                        self.alloc_into(i, t);
                    }
                    if pattern == Pattern::BatchRandom {
                        // Fisher-Yates over the whole order; slots past n
                        // are empty and skipped.
                        for i in (1..self.order.len()).rev() {
                            let j = self.rng.index(i + 1);
                            self.order.swap(i, j);
                        }
                        for k in 0..self.order.len() {
                            let i = self.order[k];
                            if i < n {
                                self.free_slot(i, t);
                            }
                        }
                    } else {
                        for i in 0..n {
                            self.free_slot(i, t);
                        }
                    }
                    done += n as u64;
                    if sys::cpu::fatal_signal_pending() {
                        return Err(EINTR);
                    }
                }
            }
            Pattern::RandomLife => {
                for i in 0..self.slots.len() {
                    if self.slots[i].is_none() {
                        self.alloc_into(i, t);
                    }
                }
                let mut done = 0;
                while done < ops {
                    let n = SIGNAL_EVERY.min(ops - done);
                    for _ in 0..n {
                        let i = self.rng.index(self.slots.len());
                        self.free_slot(i, t);
                        self.alloc_into(i, t);
                    }
                    done += n;
                    if sys::cpu::fatal_signal_pending() {
                        return Err(EINTR);
                    }
                }
            }
            Pattern::CrossCpu => {
                let mut done = 0;
                while done < ops {
                    let n = batch.min(ops - done) as usize;
                    for i in 0..n {
                        self.alloc_into(i, t);
                    }
                    let cpu = other_cpu.unwrap_or(0);
                    let me = &mut *self;
                    let tt = &mut *t;
                    let ran = sys::run_on_cpu(cpu, || {
                        for i in 0..n {
                            me.free_slot(i, tt);
                        }
                        0
                    });
                    if ran.is_err() {
                        // The CPU went away: free here rather than leak.
                        for i in 0..n {
                            self.free_slot(i, t);
                        }
                    }
                    done += n as u64;
                    if sys::cpu::fatal_signal_pending() {
                        return Err(EINTR);
                    }
                }
            }
        }
        Ok(())
    }

    /// [`Self::sample`] for an allocator that frees all at once: a pair is
    /// an allocation and a reset; a batch is `batch` allocations and one
    /// reset (the order of frees means nothing to it). `run` refused the
    /// other patterns.
    fn sample_bulk<T: Timer>(&mut self, pattern: Pattern, ops: u64, t: &mut T) -> Result {
        let batch = if pattern == Pattern::Pair {
            1
        } else {
            self.slots.len() as u64
        };
        let mut done = 0;
        let mut since_check = 0;
        while done < ops {
            let n = batch.min(ops - done);
            for _ in 0..n {
                if t.alloc(|| self.alloc.alloc(self.size)).is_none() {
                    self.failures += 1;
                }
            }
            t.free(|| self.alloc.reset());
            done += n;
            since_check += n;
            if since_check >= SIGNAL_EVERY {
                since_check = 0;
                if sys::cpu::fatal_signal_pending() {
                    return Err(EINTR);
                }
            }
        }
        Ok(())
    }

    /// Frees whatever is still held.
    fn release(&mut self) {
        if self.d.frees_all {
            return self.alloc.reset();
        }
        for i in 0..self.slots.len() {
            self.free_slot(i, &mut Untimed);
        }
    }
}
