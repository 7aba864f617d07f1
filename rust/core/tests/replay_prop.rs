// SPDX-License-Identifier: GPL-2.0
//! Property tests of the trace checks: random traces, mostly well formed,
//! against a model written from the header's description of
//! RKALLOC_IOC_REPLAY.

use std::collections::HashMap;

use proptest::prelude::*;
use rkalloc_core::replay::{Format, Op, Plan, PlanError, OP_BYTES};

/// Small limits, so that every limit is hit often.
const FORMAT: Format = Format {
    alloc: 0,
    free: 1,
    max_ops: 64,
    max_size: 1000,
};

fn encode(ops: &[(u32, u32, u64)]) -> Vec<u8> {
    let mut v = Vec::new();
    for &(op, id, size) in ops {
        v.extend_from_slice(&op.to_ne_bytes());
        v.extend_from_slice(&id.to_ne_bytes());
        v.extend_from_slice(&size.to_ne_bytes());
    }
    v
}

/// What the header says: errors in its order (length, max_id, then the
/// first bad op, then the cap), else the ops, the peak and where it is
/// first reached, and the largest size.
fn model(
    ops: &[(u32, u32, u64)],
    max_id: usize,
    cap: u64,
) -> Result<(Vec<Op>, u64, usize, usize), PlanError> {
    if ops.is_empty() {
        return Err(PlanError::Torn);
    }
    if ops.len() > FORMAT.max_ops {
        return Err(PlanError::TooLong);
    }
    if max_id == 0 || max_id > FORMAT.max_ops {
        return Err(PlanError::BadMaxId);
    }
    let mut live: HashMap<u32, u64> = HashMap::new();
    let (mut cur, mut peak, mut peak_at, mut largest) = (0u64, 0u64, 0usize, 0u64);
    let mut out = Vec::new();
    for (index, &(op, id, size)) in ops.iter().enumerate() {
        let bad = Err(PlanError::BadOp { index });
        if id as usize >= max_id {
            return bad;
        }
        if op == FORMAT.alloc {
            if live.contains_key(&id) || size == 0 || size > FORMAT.max_size {
                return bad;
            }
            live.insert(id, size);
            cur += size;
            if cur > peak {
                (peak, peak_at) = (cur, index);
            }
            largest = largest.max(size);
            out.push(Op {
                id,
                size: size as usize,
            });
        } else if op == FORMAT.free {
            match live.remove(&id) {
                Some(s) if size == 0 => cur -= s,
                _ => return bad,
            }
            out.push(Op { id, size: 0 });
        } else {
            return bad;
        }
    }
    if peak > cap {
        return Err(PlanError::OverCap);
    }
    Ok((out, peak, peak_at, largest as usize))
}

/// Traces that are mostly well formed: allocations and frees of a few ids,
/// now and then a malformed op.
fn trace() -> impl Strategy<Value = Vec<(u32, u32, u64)>> {
    let op = prop_oneof![
        8 => (0u32..10, 1u64..=FORMAT.max_size).prop_map(|(id, s)| (FORMAT.alloc, id, s)),
        6 => (0u32..10).prop_map(|id| (FORMAT.free, id, 0)),
        1 => (any::<u32>(), 0u32..12, prop_oneof![Just(0u64), any::<u64>(), Just(FORMAT.max_size + 1)]),
    ];
    prop::collection::vec(op, 0..80)
}

proptest! {
    #[test]
    fn plan_matches_the_model(ops in trace(), max_id in 0usize..14, cap in prop_oneof![Just(u64::MAX), 0u64..5000]) {
        let raw = encode(&ops);
        let got = Plan::new(&raw, max_id, cap, &FORMAT, Vec::new(), Vec::new());
        let want = model(&ops, max_id, cap);
        match (got, want) {
            (Ok(p), Ok((ops, peak, peak_at, largest))) => {
                prop_assert_eq!(p.ops(), &ops[..]);
                prop_assert_eq!(p.peak_live(), peak);
                prop_assert_eq!(p.peak_at(), peak_at);
                prop_assert_eq!(p.max_size(), largest);
                prop_assert_eq!(p.max_id(), max_id);
            }
            (Err(e), Err(w)) => prop_assert_eq!(e, w),
            (g, w) => prop_assert!(false, "plan {:?}, model {:?}", g.map(|p| p.peak_live()), w),
        }
    }

    /// A trace cut in the middle of an op is refused whole.
    #[test]
    fn torn_traces_are_refused(ops in trace(), cut in 1usize..OP_BYTES) {
        let mut raw = encode(&ops);
        raw.extend_from_slice(&[0u8; OP_BYTES][..cut]);
        let p = Plan::new(&raw, 10, u64::MAX, &FORMAT, Vec::<Op>::new(), Vec::<u64>::new());
        prop_assert_eq!(p.err(), Some(PlanError::Torn));
    }
}
