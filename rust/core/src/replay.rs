// SPDX-License-Identifier: GPL-2.0
//! The checks of an allocation trace before it is replayed
//! (`RKALLOC_IOC_REPLAY`): decoding the user's array of
//! `struct rkalloc_trace_op`, and everything that makes a trace
//! replayable, so the replay itself cannot meet an unknown id or a double
//! free.
//!
//! The trace format's numbers (op codes, limits) are the header's
//! (`include/uapi/rkalloc.h`); the kernel glue passes them in a [`Format`]
//! made from its generated bindings, so they are written down once.

use super::store::{NoMemory, Store};

/// Bytes of one `struct rkalloc_trace_op`: `__u32 op, __u32 id, __u64 size`,
/// native endian.
pub const OP_BYTES: usize = 16;

/// The header's numbers for a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// `RKALLOC_TRACE_ALLOC`.
    pub alloc: u32,
    /// `RKALLOC_TRACE_FREE`.
    pub free: u32,
    /// `RKALLOC_MAX_REPLAY_OPS`: most ops, and most ids.
    pub max_ops: usize,
    /// `RKALLOC_MAX_REPLAY_SIZE`: the largest allocation.
    pub max_size: u64,
}

/// Why a trace was refused; the glue's errnos (the header's) are in
/// brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanError {
    /// Empty, or not a whole number of ops (EINVAL).
    Torn,
    /// More than `max_ops` ops (E2BIG).
    TooLong,
    /// `max_id` is 0 or above `max_ops` (EINVAL).
    BadMaxId,
    /// Op number `index` is malformed: an unknown op code, an id at or
    /// above `max_id`, an allocation of a live id or of 0 or more than
    /// `max_size` bytes, a free of an id that is not live or with a size
    /// (EINVAL).
    BadOp {
        /// The op's position in the trace.
        index: usize,
    },
    /// The most requested bytes live at once exceed the cap (ENOMEM).
    OverCap,
    /// No memory for the plan (ENOMEM).
    NoMemory,
}

impl From<NoMemory> for PlanError {
    fn from(_: NoMemory) -> Self {
        PlanError::NoMemory
    }
}

/// One checked op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The allocation's name, below the plan's `max_id`.
    pub id: u32,
    /// Bytes to allocate (1 to `max_size`); 0 for a free.
    pub size: usize,
}

/// A checked trace.
///
/// # Invariants
///
/// Every op's id is below `max_id`. Replayed in order from nothing live,
/// every allocation (1 to `max_size` bytes) names an id that is not live
/// and every free names one that is. `peak_at < ops.len()`, and the live
/// bytes first reach `peak_live` just after op `peak_at`.
#[derive(Debug)]
pub struct Plan<S> {
    ops: S,
    max_id: usize,
    max_size: usize,
    min_size: usize,
    peak_live: u64,
    peak_at: usize,
}

/// The native-endian `u32` at `at` of `c`.
fn u32_at(c: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(c.get(at..at + 4)?.try_into().ok()?))
}

/// The native-endian `u64` at `at` of `c`.
fn u64_at(c: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(c.get(at..at + 8)?.try_into().ok()?))
}

impl<S: Store<Op>> Plan<S> {
    /// Decodes and checks `raw`, an array of `struct rkalloc_trace_op`, for
    /// ids below `max_id` and a peak of live requested bytes within `cap`,
    /// keeping the ops in `ops` and using `live` (one entry per id) for the
    /// check. Both stores are cleared first.
    pub fn new<L: Store<u64>>(
        raw: &[u8],
        max_id: usize,
        cap: u64,
        format: &Format,
        mut ops: S,
        mut live: L,
    ) -> Result<Self, PlanError> {
        if raw.is_empty() || !raw.len().is_multiple_of(OP_BYTES) {
            return Err(PlanError::Torn);
        }
        let count = raw.len() / OP_BYTES;
        if count > format.max_ops {
            return Err(PlanError::TooLong);
        }
        if max_id == 0 || max_id > format.max_ops {
            return Err(PlanError::BadMaxId);
        }
        // Requested bytes of each live id; 0 when not live (sizes are >= 1).
        live.clear();
        live.reserve(max_id)?;
        for _ in 0..max_id {
            live.push_within_capacity(0)
                .map_err(|_| PlanError::NoMemory)?;
        }
        ops.clear();
        ops.reserve(count)?;
        // At most max_ops * max_size bytes: 2^46 with the header's limits.
        let (mut cur, mut peak, mut peak_at, mut max_size) = (0u64, 0u64, 0usize, 0u64);
        let mut min_size = u64::MAX;
        for (index, c) in raw.chunks_exact(OP_BYTES).enumerate() {
            let bad = PlanError::BadOp { index };
            let (Some(op), Some(id), Some(size)) = (u32_at(c, 0), u32_at(c, 4), u64_at(c, 8))
            else {
                return Err(bad);
            };
            let slot = live.as_mut_slice().get_mut(id as usize).ok_or(bad)?;
            let size = if op == format.alloc {
                if *slot != 0 || size == 0 || size > format.max_size {
                    return Err(bad);
                }
                *slot = size;
                cur = cur.saturating_add(size);
                if cur > peak {
                    peak = cur;
                    peak_at = index;
                }
                max_size = max_size.max(size);
                min_size = min_size.min(size);
                size
            } else if op == format.free {
                if *slot == 0 || size != 0 {
                    return Err(bad);
                }
                // `cur` includes the live `*slot`.
                cur -= *slot;
                *slot = 0;
                0
            } else {
                return Err(bad);
            };
            let size = usize::try_from(size).map_err(|_| bad)?;
            ops.push_within_capacity(Op { id, size })
                .map_err(|_| PlanError::NoMemory)?;
        }
        if peak > cap {
            return Err(PlanError::OverCap);
        }
        // INVARIANT: every op passed the checks above, in order; `peak_at`
        // is the index of one of them (the first op is an allocation, so
        // the peak is positive).
        Ok(Plan {
            ops,
            max_id,
            max_size: usize::try_from(max_size).map_err(|_| PlanError::NoMemory)?,
            min_size: usize::try_from(min_size).unwrap_or(usize::MAX),
            peak_live: peak,
            peak_at,
        })
    }

    /// The checked ops, in trace order.
    pub fn ops(&self) -> &[Op] {
        self.ops.as_slice()
    }

    /// Ids are below this.
    pub fn max_id(&self) -> usize {
        self.max_id
    }

    /// The largest allocation.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The smallest allocation (`usize::MAX` for a trace without one).
    pub fn min_size(&self) -> usize {
        self.min_size
    }

    /// The most requested bytes live at once.
    pub fn peak_live(&self) -> u64 {
        self.peak_live
    }

    /// The op just after which the live bytes first reach
    /// [`Plan::peak_live`].
    pub fn peak_at(&self) -> usize {
        self.peak_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// The header's numbers (include/uapi/rkalloc.h, REPLAY).
    const FORMAT: Format = Format {
        alloc: 0,
        free: 1,
        max_ops: 1 << 20,
        max_size: 64 << 20,
    };
    const A: u32 = FORMAT.alloc;
    const F: u32 = FORMAT.free;

    /// The user array of `ops`, as rkctl lays it out.
    fn encode(ops: &[(u32, u32, u64)]) -> Vec<u8> {
        let mut v = Vec::new();
        for &(op, id, size) in ops {
            v.extend_from_slice(&op.to_ne_bytes());
            v.extend_from_slice(&id.to_ne_bytes());
            v.extend_from_slice(&size.to_ne_bytes());
        }
        v
    }

    fn plan(raw: &[u8], max_id: usize, cap: u64) -> Result<Plan<Vec<Op>>, PlanError> {
        Plan::new(raw, max_id, cap, &FORMAT, Vec::new(), Vec::<u64>::new())
    }

    fn err(ops: &[(u32, u32, u64)], max_id: usize, cap: u64) -> Option<PlanError> {
        plan(&encode(ops), max_id, cap).err()
    }

    /// The peak is where the live bytes first reach their maximum.
    #[test]
    fn plan_peak() {
        let raw = encode(&[
            (A, 0, 100),
            (A, 1, 50),
            (F, 0, 0),
            (A, 0, 200),
            (F, 1, 0),
            (A, 1, 50),
        ]);
        let p = plan(&raw, 2, u64::MAX).unwrap();
        assert_eq!(p.ops().len(), 6);
        assert_eq!(p.ops()[2], Op { id: 0, size: 0 });
        assert_eq!(p.peak_live(), 250);
        assert_eq!(p.peak_at(), 3);
        assert_eq!(p.max_size(), 200);
        assert_eq!(p.min_size(), 50);
        assert_eq!(p.max_id(), 2);
    }

    /// Every malformed trace is refused, naming the bad op.
    #[test]
    fn plan_rejects_bad_traces() {
        let bad = |index| Some(PlanError::BadOp { index });
        // A free of an id never allocated, a double free, a double alloc.
        assert_eq!(err(&[(F, 0, 0)], 4, u64::MAX), bad(0));
        assert_eq!(err(&[(A, 0, 8), (F, 0, 0), (F, 0, 0)], 4, u64::MAX), bad(2));
        assert_eq!(err(&[(A, 0, 8), (A, 0, 8)], 4, u64::MAX), bad(1));
        // An id at max_id, a size of 0 or too big, a free with a size, an
        // unknown op.
        assert_eq!(err(&[(A, 4, 8)], 4, u64::MAX), bad(0));
        assert_eq!(err(&[(A, 0, 0)], 4, u64::MAX), bad(0));
        assert_eq!(err(&[(A, 0, FORMAT.max_size + 1)], 4, u64::MAX), bad(0));
        assert_eq!(err(&[(A, 0, FORMAT.max_size)], 4, u64::MAX), None);
        assert_eq!(err(&[(A, 0, 8), (F, 0, 8)], 4, u64::MAX), bad(1));
        assert_eq!(err(&[(2, 0, 8)], 4, u64::MAX), bad(0));
        // max_id 0 or too large, and a peak above the cap.
        assert_eq!(err(&[(A, 0, 8)], 0, u64::MAX), Some(PlanError::BadMaxId));
        assert_eq!(
            err(&[(A, 0, 8)], FORMAT.max_ops + 1, u64::MAX),
            Some(PlanError::BadMaxId)
        );
        assert_eq!(
            err(&[(A, 0, 8), (A, 1, 8)], 4, 15),
            Some(PlanError::OverCap)
        );
        assert_eq!(err(&[(A, 0, 8), (A, 1, 8)], 4, 16), None);
        // A torn op, an empty trace.
        assert_eq!(plan(&[0u8; 15], 4, u64::MAX).err(), Some(PlanError::Torn));
        assert_eq!(plan(&[], 4, u64::MAX).err(), Some(PlanError::Torn));
    }

    /// More ops than the format allows: E2BIG, checked before any op.
    #[test]
    fn plan_rejects_long_traces() {
        let small = Format {
            max_ops: 3,
            ..FORMAT
        };
        let raw = encode(&[(A, 0, 8), (F, 0, 0), (A, 0, 8), (F, 0, 0)]);
        let p = Plan::new(
            &raw,
            2,
            u64::MAX,
            &small,
            Vec::<Op>::new(),
            Vec::<u64>::new(),
        );
        assert_eq!(p.err(), Some(PlanError::TooLong));
    }
}
