// SPDX-License-Identifier: GPL-2.0
//! KUnit suite `rkalloc_replay`: a replay on kmalloc, and the errnos of
//! refused traces (the checks themselves are the core's, host-tested).

use super::*;

#[kunit_tests(rkalloc_replay)]
mod suite {
    use super::*;

    /// The header's trace format (`include/uapi/rkalloc.h`, REPLAY).
    const FORMAT: Format = Format { alloc: 0, free: 1, max_ops: 1 << 20, max_size: 64 << 20 };
    const A: u32 = FORMAT.alloc;
    const F: u32 = FORMAT.free;

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

    fn plan(ops: &[(u32, u32, u64)], max_id: usize, cap: u64) -> Result<Plan> {
        Plan::new(&encode(ops)?, max_id, cap, &FORMAT, KVVec::new(), KVVec::new()).map_err(errno)
    }

    /// A refused trace gets the header's errno.
    #[test]
    fn refusals_are_the_headers_errnos() -> Result {
        let e = |r: Result<Plan>| r.err().map(|e| e.to_errno());
        assert_eq!(e(plan(&[(F, 0, 0)], 4, u64::MAX)), Some(EINVAL.to_errno()));
        assert_eq!(e(plan(&[(A, 0, 8)], 0, u64::MAX)), Some(EINVAL.to_errno()));
        assert_eq!(e(plan(&[(A, 0, 8), (A, 1, 8)], 4, 15)), Some(ENOMEM.to_errno()));
        assert!(Plan::new(&[0u8; 15], 4, u64::MAX, &FORMAT, KVVec::new(), KVVec::new()).is_err());
        assert_eq!(e(plan(&[(A, 0, 8), (A, 1, 8)], 4, 16)), None);
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
        let p = plan(&ops, 100, u64::MAX)?;
        let out = execute(&crate::alloc::Kmalloc, &p, false, sys::mem::kmalloc_size_roundup)?;
        assert_eq!(out.failures, 0);
        assert!(!out.own_frag);
        assert!(out.footprint >= p.peak_live());
        assert_eq!(out.footprint - out.internal, p.peak_live());
        Ok(())
    }
}
