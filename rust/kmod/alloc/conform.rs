// SPDX-License-Identifier: GPL-2.0
//! The conformance run every allocator of the table gets, in KUnit
//! (`tests.rs`) and through `RKALLOC_IOC_CONFORM` (so `rkctl stress` runs it
//! while other work goes on):
//!
//! - random allocations and frees, every live block filled with a pattern
//!   of its own and verified before it is freed (and at the end), so that
//!   overlapping blocks or stray writes show up;
//! - sizes at the boundaries the descriptor declares (its smallest and
//!   largest size of the run, and page boundaries for page allocators);
//! - rkalloc's own allocators must refuse a request of 0 bytes and one
//!   above their range (the kernel's are never asked: callers check the
//!   range, since kmalloc(0) is legal and a too large kmalloc warns);
//! - the allocator's own checker, if it has one, now and then;
//! - its count of live blocks, where it keeps one, against the run's own;
//! - everything freed at the end (an allocator that frees all at once is
//!   reset instead).
//!
//! A fatal signal stops the run (EINTR) after everything is freed.

use super::api::{Allocator, Class, Descriptor, Env};
use crate::{
    mm::pool::PAGE_SIZE,
    rkcore::{pattern, rng::Rng},
    sys,
};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Largest size a run uses when the caller names none.
const DEFAULT_HI: usize = 64 << 10;
/// Most steps of one run.
pub(crate) const MAX_OPS: u64 = 1 << 24;
/// Steps between two fatal-signal checks.
const SIGNAL_EVERY: u64 = 256;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// Random steps, 1..=[`MAX_OPS`].
    pub(crate) ops: u64,
    /// Seed of the run's generator.
    pub(crate) seed: u64,
    /// Smallest size, or 0 for the descriptor's.
    pub(crate) lo: usize,
    /// Largest size, or 0 for the descriptor's (at most [`DEFAULT_HI`]).
    pub(crate) hi: usize,
    /// Most blocks live at once, at least 1.
    pub(crate) max_live: usize,
}

/// What a run found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// Allocations served.
    pub(crate) allocs: u64,
    /// Blocks freed (or reset away).
    pub(crate) frees: u64,
    /// Allocations refused in range (no memory).
    pub(crate) failures: u64,
    /// Blocks whose pattern changed while they were live.
    pub(crate) corrupt_blocks: u64,
    /// Out-of-range requests that were served.
    pub(crate) bad_sizes: u64,
    /// Checker failures and live counts that did not add up.
    pub(crate) check_failures: u64,
}

impl Report {
    /// Whether the allocator broke its contract.
    pub(crate) fn failed(&self) -> bool {
        self.corrupt_blocks != 0 || self.bad_sizes != 0 || self.check_failures != 0
    }
}

/// A live block of the run.
struct Live {
    p: NonNull<u8>,
    size: usize,
    pattern: u32,
}

/// The run's state: its allocator, its live blocks and its findings.
struct Run<'a> {
    d: &'a Descriptor,
    a: &'a dyn Allocator,
    live: KVec<Live>,
    rng: Rng,
    next_pattern: u32,
    r: Report,
}

impl Run<'_> {
    fn rand(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A size in `lo..=hi`: an eighth of the time a boundary (the ends of
    /// the range, and page sizes +-1 for page allocators), else uniform.
    fn size(&mut self, lo: usize, hi: usize) -> usize {
        let r = self.rand();
        if r % 8 == 0 {
            let pick = (r >> 3) % 4;
            let s = match pick {
                0 => lo,
                1 => hi,
                _ if self.d.class == Class::Pages => {
                    let order = ((r >> 5) % 11) as u32;
                    let b = PAGE_SIZE << order;
                    if pick == 2 { b } else { b + 1 }
                }
                _ => lo + (hi - lo) / 2,
            };
            return s.clamp(lo, hi);
        }
        lo + (r >> 8) as usize % (hi - lo + 1)
    }

    fn memory(l: &Live) -> &mut [u8] {
        // SAFETY: `l.p` is a live block of at least `l.size` bytes that this
        // run alone owns (the allocator's contract), until it is freed.
        unsafe { core::slice::from_raw_parts_mut(l.p.as_ptr(), l.size) }
    }

    fn alloc(&mut self, size: usize) {
        match self.a.alloc(size) {
            Some(p) => {
                self.next_pattern = self.next_pattern.wrapping_add(0x9e37_79b9);
                let l = Live { p, size, pattern: self.next_pattern };
                pattern::fill(Self::memory(&l), l.pattern);
                // Room for max_live was reserved; the caller keeps below it.
                if self.live.push_within_capacity(l).is_err() {
                    // Cannot happen: give it back rather than lose it.
                    // SAFETY: just allocated with this size, freed once.
                    unsafe { self.a.free(p, size) };
                    return;
                }
                self.r.allocs += 1;
            }
            None => self.r.failures += 1,
        }
    }

    /// Verifies block `i` and frees it (or, for an allocator that frees all
    /// at once, just forgets it).
    fn free(&mut self, i: usize) {
        let last = self.live.len() - 1;
        self.live.swap(i, last);
        let Some(l) = self.live.pop() else { return };
        let (bad, first) = pattern::verify(Self::memory(&l), l.pattern);
        if bad != 0 {
            self.r.corrupt_blocks += 1;
        }
        // The first few in the log; the count says how many.
        if bad != 0 && self.r.corrupt_blocks <= 3 {
            pr_err!(
                "conform: {}: a block of {} bytes changed while live ({} bytes, first at offset {})\n",
                self.d.name(),
                l.size,
                bad,
                first
            );
        }
        if !self.d.frees_all {
            // SAFETY: allocated by `self.a` with this size; leaves the list.
            unsafe { self.a.free(l.p, l.size) };
        }
        self.r.frees += 1;
    }

    /// Frees everything live (verifying it), then resets an allocator that
    /// frees all at once.
    fn free_all(&mut self) {
        while !self.live.is_empty() {
            self.free(self.live.len() - 1);
        }
        if self.d.frees_all {
            self.a.reset();
        }
    }

    /// The allocator's checker and its count of live blocks.
    fn check(&mut self) {
        if self.d.checked && self.a.check().is_err() {
            self.r.check_failures += 1;
            pr_err!("conform: {}: the checker failed (details above)\n", self.d.name());
        }
        if let Some(n) = self.a.live() {
            if n != self.live.len() as u64 {
                self.r.check_failures += 1;
                pr_err!("conform: {}: counts {} live blocks, the run holds {}\n", self.d.name(), n, self.live.len());
            }
        }
    }

    /// Asks for `size`, which the allocator must refuse.
    fn must_refuse(&mut self, size: usize) {
        if let Some(p) = self.a.alloc(size) {
            self.r.bad_sizes += 1;
            pr_err!("conform: {}: served {} bytes, outside its range\n", self.d.name(), size);
            if !self.d.frees_all {
                // SAFETY: it came from `alloc(size)`; freed once, not used.
                unsafe { self.a.free(p, size) };
            }
        }
    }
}

/// The size range of a run: `p.lo..=p.hi`, or the descriptor's (capped at
/// [`DEFAULT_HI`]). EINVAL for a range the allocator does not serve.
pub(crate) fn range(d: &Descriptor, p: &Params) -> Result<(usize, usize)> {
    let lo = if p.lo == 0 { d.min_bytes } else { p.lo };
    let hi = if p.hi == 0 { d.max_bytes.min(DEFAULT_HI).max(lo) } else { p.hi };
    if lo > hi || !d.serves(lo) || !d.serves(hi) {
        return Err(EINVAL);
    }
    Ok((lo, hi))
}

/// Runs the conformance workload `p` on a fresh instance of `d`.
pub(crate) fn run(env: Env<'_>, d: &Descriptor, p: &Params) -> Result<Report> {
    if p.ops == 0 || p.ops > MAX_OPS || p.max_live == 0 {
        return Err(EINVAL);
    }
    let (lo, hi) = range(d, p)?;
    let a = d.make(env, hi)?;
    let mut run = Run {
        d,
        a: &*a,
        live: KVec::with_capacity(p.max_live, GFP_KERNEL)?,
        rng: Rng::new(p.seed),
        next_pattern: p.seed as u32,
        r: Report::default(),
    };
    if !d.kernel {
        run.must_refuse(0);
        // The instance serves up to `hi` (an object cache) or its whole
        // range (everyone else).
        let top = if d.class == Class::Objects { hi } else { d.max_bytes };
        if let Some(over) = top.checked_add(1) {
            run.must_refuse(over);
        }
    }
    let check_every = (p.ops / 8).max(1);
    let mut step = 0;
    let mut outcome = Ok(());
    while step < p.ops {
        if step % SIGNAL_EVERY == 0 {
            if let Err(e) = sys::interrupted() {
                outcome = Err(e);
                break;
            }
        }
        let r = run.rand();
        let full = run.live.len() >= p.max_live;
        if run.live.is_empty() || (!full && r & 1 == 0) {
            let size = run.size(lo, hi);
            run.alloc(size);
        } else if d.frees_all && (full || r % 64 == 1) {
            // All at once: verify every block, then reset.
            run.free_all();
        } else if !d.frees_all {
            let i = (r >> 1) as usize % run.live.len();
            run.free(i);
        }
        step += 1;
        if step % check_every == 0 {
            run.check();
        }
    }
    run.free_all();
    run.check();
    let r = run.r;
    outcome.map(|()| r)
}
