// SPDX-License-Identifier: GPL-2.0
//! Trace replay (`RKALLOC_IOC_REPLAY`): runs an allocation trace, a list of
//! "allocate `size` bytes as `id`" and "free `id`" ops, against one
//! allocator of the table ([`Allocator`]), and reports the time of the ops
//! and the footprint and fragmentation at the peak of live bytes.
//!
//! The trace is copied in and checked as a whole first ([`Plan::new`]), so a
//! bad trace is refused before any allocator is made, and the run itself
//! cannot meet an unknown id or a double free. Time is taken around chunks
//! of ops only: the reschedule points between chunks, the one sample of the
//! fragmentation figures at the peak and the final frees are not timed.
//! A fatal signal stops the replay (EINTR) after what it holds is freed.

use crate::{
    alloc::Allocator,
    rkcore::replay::{self, Format, PlanError},
    state::Shared,
    sys,
};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Ops timed between two reschedule points: long enough that the clock
/// reads are negligible, short enough not to hog the CPU.
const CHUNK: usize = 4096;

/// Requested bytes of one chunk at most: a trace of big allocations (up to
/// 64 MiB each) reaches a reschedule point and a signal check often.
const CHUNK_BYTES: usize = 64 << 20;

/// A checked trace (the core's checks), in kernel memory.
type Plan = replay::Plan<KVVec<replay::Op>>;

/// The errno of a refused trace: the header's.
fn errno(e: PlanError) -> Error {
    match e {
        PlanError::Torn | PlanError::BadMaxId | PlanError::BadOp { .. } => EINVAL,
        PlanError::TooLong => E2BIG,
        PlanError::OverCap | PlanError::NoMemory => ENOMEM,
    }
}

/// What a run measured.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Time of the ops.
    pub(crate) total_ns: u64,
    /// Most requested bytes live at once.
    pub(crate) peak_live: u64,
    /// What the allocator held at the peak.
    pub(crate) footprint: u64,
    /// Handed out - requested, at the peak.
    pub(crate) internal: u64,
    /// The allocator's metadata at the peak (own figures only).
    pub(crate) metadata: u64,
    /// External fragmentation at the peak (own figures only).
    pub(crate) external_permille: u32,
    /// Allocations the allocator refused.
    pub(crate) failures: u32,
    /// Whether the figures are the allocator's own report.
    pub(crate) own_frag: bool,
}

/// Replays `plan` on `alloc`. With `own_frag`, the figures at the peak are
/// the allocator's own [`Allocator::frag`] (it must be private to the run);
/// otherwise they add up `granted` over the live allocations.
fn execute(
    alloc: &dyn Allocator,
    plan: &Plan,
    own_frag: bool,
    granted: impl Fn(usize) -> usize,
) -> Result<Outcome> {
    let mut slots: KVVec<Option<(NonNull<u8>, usize)>> =
        KVVec::from_elem(None, plan.max_id(), GFP_KERNEL)?;
    let mut out = Outcome::default();
    let n = plan.ops().len();
    let mut i = 0;
    while i < n {
        // Chunks of CHUNK ops, fewer when ops are large (a fatal signal is
        // seen between chunks): at most CHUNK_BYTES requested per chunk.
        let mut end = i;
        let mut bytes = 0usize;
        while end < n && end - i < CHUNK && bytes < CHUNK_BYTES {
            bytes = bytes.saturating_add(plan.ops().get(end).map_or(0, |o| o.size));
            end += 1;
        }
        // Stop right after the peak, so that its sample is not timed.
        if (i..end).contains(&plan.peak_at()) {
            end = plan.peak_at() + 1;
        }
        if let Err(e) = sys::interrupted() {
            release(alloc, &mut slots);
            return Err(e);
        }
        let t0 = sys::ktime_ns();
        for op in plan.ops().get(i..end).unwrap_or(&[]) {
            // The plan's invariant: every id is below `max_id`.
            let Some(slot) = slots.get_mut(op.id as usize) else {
                continue;
            };
            if op.size != 0 {
                // The plan's invariant: the id is not live, so nothing leaks.
                match alloc.alloc(op.size) {
                    Some(p) => *slot = Some((p, op.size)),
                    None => out.failures += 1,
                }
            } else if let Some((p, size)) = slot.take() {
                // SAFETY: `p` came from `alloc.alloc(size)` and leaves its
                // slot, so it is freed once and not used afterwards.
                unsafe { alloc.free(p, size) };
            }
        }
        out.total_ns += sys::ktime_ns().saturating_sub(t0);
        if end == plan.peak_at() + 1 {
            sample(alloc, &slots, own_frag, &granted, &mut out);
        }
        i = end;
        sys::cond_resched();
    }
    release(alloc, &mut slots);
    Ok(out)
}

/// Frees what the replay still holds.
fn release(alloc: &dyn Allocator, slots: &mut [Option<(NonNull<u8>, usize)>]) {
    for slot in slots.iter_mut() {
        if let Some((p, size)) = slot.take() {
            // SAFETY: from `alloc.alloc(size)` and out of its slot: freed once.
            unsafe { alloc.free(p, size) };
        }
    }
}

/// Takes the figures at the peak.
fn sample(
    alloc: &dyn Allocator,
    slots: &[Option<(NonNull<u8>, usize)>],
    own_frag: bool,
    granted: &impl Fn(usize) -> usize,
    out: &mut Outcome,
) {
    if own_frag {
        if let Some(f) = alloc.frag() {
            out.footprint = f
                .handed_out_bytes
                .saturating_add(f.metadata_bytes)
                .saturating_add(f.free_bytes);
            out.internal = f.internal_bytes();
            out.metadata = f.metadata_bytes;
            out.external_permille = f.external_permille();
            out.own_frag = true;
            return;
        }
    }
    // Live allocations only: one refused earlier has no memory.
    let (mut requested, mut handed) = (0u64, 0u64);
    for (_, size) in slots.iter().flatten() {
        requested += *size as u64;
        handed += granted(*size) as u64;
    }
    out.footprint = handed;
    out.internal = handed.saturating_sub(requested);
}

/// Checks the trace `raw` (an array of ops, ids below `max_id`), makes
/// allocator `allocator` and runs the trace on it. The errnos are the
/// header's `RKALLOC_IOC_REPLAY` ones.
pub(crate) fn run(shared: &Shared, allocator: u32, raw: &[u8], max_id: usize, format: &Format) -> Result<Outcome> {
    let plan = Plan::new(raw, max_id, shared.fd_cap_bytes, format, KVVec::new(), KVVec::new()).map_err(errno)?;
    let d = shared.allocators.get(allocator).ok_or(EINVAL)?;
    // A trace's frees mean nothing to an arena; sizes outside the range
    // never reach the allocator.
    if d.frees_all || !d.serves(plan.max_size()) || !d.serves(plan.min_size()) {
        return Err(EINVAL);
    }
    let alloc = d.make(shared.env(), plan.max_size())?;
    // Only an allocator made for this run reports figures of this run
    // alone (a heap); the pool's report covers every user of the pool.
    let own_frag = d.own_frag;
    let max = plan.max_size();
    let granted = d.granted;
    let mut out = execute(&*alloc, &plan, own_frag, |size| granted(size, max))?;
    out.peak_live = plan.peak_live();
    pr_debug!(
        "replay: {} ops on {} in {} ns, {} failures\n",
        plan.ops().len(),
        d.name(),
        out.total_ns,
        out.failures
    );
    Ok(out)
}

#[cfg(rkalloc_kunit)]
mod tests;
