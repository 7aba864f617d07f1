// SPDX-License-Identifier: GPL-2.0
//! KUnit suite `rkalloc_replay`: trace checks and a replay on kmalloc.

use super::*;

#[kunit_tests(rkalloc_replay)]
mod suite {
    use super::*;

    const A: u32 = OP_ALLOC;
    const F: u32 = OP_FREE;

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
        let out = execute(&crate::alloc::Kmalloc, &p, false, sys::mem::kmalloc_size_roundup)?;
        assert_eq!(out.failures, 0);
        assert!(!out.own_frag);
        assert!(out.footprint >= p.peak_live);
        assert_eq!(out.footprint - out.internal, p.peak_live);
        Ok(())
    }
}
