// SPDX-License-Identifier: GPL-2.0
//! Trace replay (`RKALLOC_IOC_REPLAY`): runs an allocation trace, a list of
//! "allocate `size` bytes as `id`" and "free `id`" ops, against one
//! allocator behind [`registry::Allocator`], and reports the time of the ops
//! and the footprint and fragmentation at the peak of live bytes.
//!
//! The trace is copied in and checked as a whole first ([`Plan::new`]), so a
//! bad trace is refused before any allocator is made, and the run itself
//! cannot meet an unknown id or a double free. Time is taken around chunks
//! of ops only: the reschedule points between chunks, the one sample of the
//! fragmentation figures at the peak and the final frees are not timed.

use crate::{
    pool::PAGE_SIZE,
    registry::{self, order_for, Allocator},
    sys, uapi, Shared,
};
use core::ptr::NonNull;
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// Bytes of one `struct rkalloc_trace_op` in the user array.
const OP_BYTES: usize = core::mem::size_of::<uapi::rkalloc_trace_op>();

/// Most ops (and most ids) of a trace.
const MAX_OPS: usize = uapi::RKALLOC_MAX_REPLAY_OPS as usize;

/// Largest allocation of a trace.
const MAX_SIZE: usize = uapi::RKALLOC_MAX_REPLAY_SIZE as usize;

/// Ops timed between two reschedule points: long enough that the clock
/// reads are negligible, short enough not to hog the CPU.
const CHUNK: usize = 4096;

/// One checked op.
#[derive(Clone, Copy)]
struct Op {
    /// The allocation's name.
    id: u32,
    /// Bytes to allocate; 0 for a free.
    size: usize,
}

/// A checked trace.
///
/// # Invariants
///
/// Every op's id is below `max_id`. Replayed in order from nothing live,
/// every allocation (size 1..=[`MAX_SIZE`]) names an id that is not live
/// and every free names one that is. `peak_at < ops.len()`.
struct Plan {
    ops: KVVec<Op>,
    max_id: usize,
    /// Largest allocation.
    max_size: usize,
    /// Most requested bytes live at once.
    peak_live: u64,
    /// The op after which the live bytes first reach `peak_live`.
    peak_at: usize,
}

/// Reads the native-endian `u32` at `at` of `c`.
fn u32_at(c: &[u8], at: usize) -> Result<u32> {
    let b = c.get(at..at + 4).ok_or(EINVAL)?;
    Ok(u32::from_ne_bytes(b.try_into().map_err(|_| EINVAL)?))
}

/// Reads the native-endian `u64` at `at` of `c`.
fn u64_at(c: &[u8], at: usize) -> Result<u64> {
    let b = c.get(at..at + 8).ok_or(EINVAL)?;
    Ok(u64::from_ne_bytes(b.try_into().map_err(|_| EINVAL)?))
}

impl Plan {
    /// Decodes and checks `raw`, an array of `struct rkalloc_trace_op`, for
    /// ids below `max_id` and a peak of live bytes within `cap`. The errnos
    /// are the header's.
    fn new(raw: &[u8], max_id: usize, cap: u64) -> Result<Plan> {
        if raw.is_empty() || raw.len() % OP_BYTES != 0 {
            return Err(EINVAL);
        }
        let count = raw.len() / OP_BYTES;
        if count > MAX_OPS {
            return Err(E2BIG);
        }
        if max_id == 0 || max_id > MAX_OPS {
            return Err(EINVAL);
        }
        // Requested bytes of each live id; 0 when not live (sizes are >= 1).
        let mut live = KVVec::from_elem(0usize, max_id, GFP_KERNEL)?;
        let mut ops = KVVec::with_capacity(count, GFP_KERNEL)?;
        // At most MAX_OPS * MAX_SIZE = 2^46 bytes: the sums cannot overflow.
        let (mut cur, mut peak, mut peak_at, mut max_size) = (0u64, 0u64, 0usize, 0usize);
        for (i, c) in raw.chunks_exact(OP_BYTES).enumerate() {
            let (op, id, size) = (u32_at(c, 0)?, u32_at(c, 4)?, u64_at(c, 8)?);
            let slot = live.get_mut(id as usize).ok_or(EINVAL)?;
            let size = match op {
                uapi::RKALLOC_TRACE_ALLOC => {
                    if *slot != 0 || size == 0 || size > MAX_SIZE as u64 {
                        return Err(EINVAL);
                    }
                    // At most MAX_SIZE, checked just above.
                    let size = size as usize;
                    *slot = size;
                    cur += size as u64;
                    if cur > peak {
                        peak = cur;
                        peak_at = i;
                    }
                    max_size = max_size.max(size);
                    size
                }
                uapi::RKALLOC_TRACE_FREE => {
                    if *slot == 0 || size != 0 {
                        return Err(EINVAL);
                    }
                    cur -= *slot as u64;
                    *slot = 0;
                    0
                }
                _ => return Err(EINVAL),
            };
            ops.push(Op { id, size }, GFP_KERNEL)?;
        }
        if peak > cap {
            return Err(ENOMEM);
        }
        // INVARIANT: every op passed the checks above, in order; `peak_at`
        // is the index of one of them.
        Ok(Plan {
            ops,
            max_id,
            max_size,
            peak_live: peak,
            peak_at,
        })
    }
}

/// What a run measured.
#[derive(Default)]
struct Outcome {
    total_ns: u64,
    footprint: u64,
    internal: u64,
    metadata: u64,
    external_permille: u32,
    failures: u32,
    own_frag: bool,
}

/// Bytes allocator `id` hands out for a request of `size`, where it cannot
/// tell itself: page orders, the object size (every object is of the
/// trace's largest size `max`), the size class, `kmalloc`'s bucket.
fn granted(id: u32, size: usize, max: usize) -> usize {
    match id {
        uapi::RKALLOC_ALLOC_RK_POOL | uapi::RKALLOC_ALLOC_PAGES => {
            order_for(size).map_or(size, |o| PAGE_SIZE << o)
        }
        uapi::RKALLOC_ALLOC_KMEM_CACHE | uapi::RKALLOC_ALLOC_RK_SLAB => max.next_multiple_of(8),
        uapi::RKALLOC_ALLOC_RK_MALLOC => crate::slab::SizeClasses::footprint(size).unwrap_or(size),
        uapi::RKALLOC_ALLOC_KMALLOC | uapi::RKALLOC_ALLOC_KVMALLOC => {
            sys::kmalloc_size_roundup(size)
        }
        uapi::RKALLOC_ALLOC_VMALLOC => size.next_multiple_of(PAGE_SIZE),
        _ => size,
    }
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
        KVVec::from_elem(None, plan.max_id, GFP_KERNEL)?;
    let mut out = Outcome::default();
    let n = plan.ops.len();
    let mut i = 0;
    while i < n {
        let mut end = (i + CHUNK).min(n);
        // Stop right after the peak, so that its sample is not timed.
        if (i..end).contains(&plan.peak_at) {
            end = plan.peak_at + 1;
        }
        let t0 = sys::ktime_ns();
        for op in plan.ops.get(i..end).unwrap_or(&[]) {
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
        if end == plan.peak_at + 1 {
            sample(alloc, &slots, own_frag, &granted, &mut out);
        }
        i = end;
        sys::cond_resched();
    }
    for slot in slots.iter_mut() {
        if let Some((p, size)) = slot.take() {
            // SAFETY: as above: from `alloc.alloc(size)`, freed once.
            unsafe { alloc.free(p, size) };
        }
    }
    Ok(out)
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

/// `RKALLOC_IOC_REPLAY`: checks the request and the trace, makes the
/// allocator, runs the trace and fills the outputs.
pub(crate) fn run(shared: &Shared, a: &mut uapi::rkalloc_replay) -> Result {
    if a.reserved != 0 || a.count == 0 || a.max_id == 0 {
        return Err(EINVAL);
    }
    if a.count as usize > MAX_OPS {
        return Err(E2BIG);
    }
    // At most 2^20 ops of 16 bytes: no overflow.
    let len = a.count as usize * OP_BYTES;
    let mut raw = KVVec::new();
    UserSlice::new(UserPtr::from_addr(a.ops as usize), len).read_all(&mut raw, GFP_KERNEL)?;
    let plan = Plan::new(&raw, a.max_id as usize, shared.fd_cap_bytes)?;
    drop(raw);
    let alloc = registry::make(a.allocator, plan.max_size, shared)?;
    if alloc.frees_all_at_once() {
        // A trace's frees mean nothing to an arena.
        return Err(EINVAL);
    }
    // Only a heap made for this run reports figures of this run alone; the
    // pool's report covers every user of the pool.
    let own_frag = (uapi::RKALLOC_ALLOC_RK_HEAP_FIRST..=uapi::RKALLOC_ALLOC_RK_HEAP_SEGREGATED)
        .contains(&a.allocator);
    let id = a.allocator;
    let max = plan.max_size;
    let out = execute(&*alloc, &plan, own_frag, |size| granted(id, size, max))?;
    pr_debug!(
        "replay: {} ops on {} in {} ns, {} failures\n",
        plan.ops.len(),
        alloc.name(),
        out.total_ns,
        out.failures
    );
    a.total_ns = out.total_ns;
    a.peak_live_bytes = plan.peak_live;
    a.peak_footprint_bytes = out.footprint;
    a.internal_bytes_at_peak = out.internal;
    a.metadata_bytes_at_peak = out.metadata;
    a.external_permille_at_peak = out.external_permille;
    a.failures = out.failures;
    a.flags = if out.own_frag {
        uapi::RKALLOC_REPLAY_OWN_FRAG
    } else {
        0
    };
    Ok(())
}

#[kunit_tests(rkalloc_replay)]
mod tests {
    use super::*;

    const A: u32 = uapi::RKALLOC_TRACE_ALLOC;
    const F: u32 = uapi::RKALLOC_TRACE_FREE;

    /// The user array of `ops`, as rkctl lays it out.
    fn encode(ops: &[(u32, u32, u64)]) -> Result<KVVec<u8>> {
        let mut v = KVVec::new();
        for &(op, id, size) in ops {
            v.extend_from_slice(&op.to_ne_bytes(), GFP_KERNEL)?;
            v.extend_from_slice(&id.to_ne_bytes(), GFP_KERNEL)?;
            v.extend_from_slice(&size.to_ne_bytes(), GFP_KERNEL)?;
        }
        Ok(v)
    }

    /// The error `Plan::new` gives for `ops`, if any.
    fn plan_err(ops: &[(u32, u32, u64)], max_id: usize, cap: u64) -> Result<Option<Error>> {
        Ok(Plan::new(&encode(ops)?, max_id, cap).err())
    }

    /// The peak is where the live bytes first reach their maximum.
    #[test]
    fn plan_peak() -> Result {
        let raw = encode(&[
            (A, 0, 100),
            (A, 1, 50),
            (F, 0, 0),
            (A, 0, 200),
            (F, 1, 0),
            (A, 1, 50),
        ])?;
        let p = Plan::new(&raw, 2, u64::MAX)?;
        assert_eq!(p.ops.len(), 6);
        assert_eq!(p.peak_live, 250);
        assert_eq!(p.peak_at, 3);
        assert_eq!(p.max_size, 200);
        Ok(())
    }

    /// Every malformed trace is refused with the header's errno.
    #[test]
    fn plan_rejects_bad_traces() -> Result {
        let e = |r: Option<Error>| r.map(|e| e.to_errno());
        // A free of an id never allocated, a double free, a double alloc.
        assert_eq!(
            e(plan_err(&[(F, 0, 0)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        assert_eq!(
            e(plan_err(&[(A, 0, 8), (F, 0, 0), (F, 0, 0)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        assert_eq!(
            e(plan_err(&[(A, 0, 8), (A, 0, 8)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        // An id at max_id, a size of 0 or too big, a free with a size, an
        // unknown op.
        assert_eq!(
            e(plan_err(&[(A, 4, 8)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        assert_eq!(
            e(plan_err(&[(A, 0, 0)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        let big = MAX_SIZE as u64 + 1;
        assert_eq!(
            e(plan_err(&[(A, 0, big)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        assert_eq!(
            e(plan_err(&[(A, 0, 8), (F, 0, 8)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        assert_eq!(
            e(plan_err(&[(2, 0, 8)], 4, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        // max_id 0, and a peak above the cap.
        assert_eq!(
            e(plan_err(&[(A, 0, 8)], 0, u64::MAX)?),
            Some(EINVAL.to_errno())
        );
        assert_eq!(
            e(plan_err(&[(A, 0, 8), (A, 1, 8)], 4, 15)?),
            Some(ENOMEM.to_errno())
        );
        assert_eq!(e(plan_err(&[(A, 0, 8), (A, 1, 8)], 4, 16)?), None);
        // A torn op.
        assert!(Plan::new(&[0u8; 15], 4, u64::MAX).is_err());
        Ok(())
    }

    /// A run on `kmalloc` serves every op, and the footprint at the peak
    /// covers the live bytes.
    #[test]
    fn execute_on_kmalloc() -> Result {
        let mut ops = KVec::new();
        for i in 0..100u32 {
            ops.push((A, i, u64::from(i) * 13 + 1), GFP_KERNEL)?;
        }
        for i in (0..100u32).step_by(2) {
            ops.push((F, i, 0), GFP_KERNEL)?;
        }
        let p = Plan::new(&encode(&ops)?, 100, u64::MAX)?;
        let out = execute(&registry::Kmalloc, &p, false, sys::kmalloc_size_roundup)?;
        assert_eq!(out.failures, 0);
        assert!(!out.own_frag);
        assert!(out.footprint >= p.peak_live);
        assert_eq!(out.footprint - out.internal, p.peak_live);
        Ok(())
    }
}
