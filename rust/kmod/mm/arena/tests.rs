// SPDX-License-Identifier: GPL-2.0
//! KUnit suite `rkalloc_arena`: the arena glue on pool regions.

use super::*;

#[kunit_tests(rkalloc_arena)]
mod suite {
    use super::*;
    use crate::mm::pool::PoolConfig;

    fn test_pool() -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(1, 4))
    }

    /// The address of an allocation, to check its alignment.
    fn addr(a: &ArenaObj, p: Ptr) -> Result<usize> {
        a.with_bytes(p, 1, |m| m.as_ptr() as usize)
    }

    /// Every alignment from 1 to 4096 holds for the address, not just the
    /// offset; each allocation keeps its own bytes; a reset reclaims exactly
    /// what was handed out, invalidates every allocation and gives all but
    /// the largest region back.
    #[test]
    fn alignment_and_reset() -> Result {
        let pool = test_pool()?;
        let a = ArenaObj::new(&pool, 1)?;
        assert_eq!(a.held(), 0);
        let mut live = KVec::new();
        let mut used = 0u64;
        for round in 0..3u8 {
            for shift in 0..=12 {
                let align = 1usize << shift;
                let size = 1 + (shift * 37) % 300;
                let (p, _) = a.alloc(size, align, u64::MAX)?;
                assert_eq!(addr(&a, p)? & (align - 1), 0);
                let tag = round.wrapping_mul(16).wrapping_add(shift as u8);
                a.with_bytes(p, size, |m| m.fill(tag))?;
                live.push((p, size, tag), GFP_KERNEL)?;
                used += size as u64;
            }
        }
        // A large request retires the first region and takes a fresh one.
        let (big, grown) = a.alloc(MAX_REQUEST, 0, u64::MAX)?;
        assert!(grown >= MAX_REQUEST as u64);
        used += MAX_REQUEST as u64;
        for &(p, size, tag) in live.iter() {
            assert!(a.with_bytes(p, size, |m| m.iter().all(|b| *b == tag))?);
        }
        let v = a.view();
        assert_eq!(v.stats.used_bytes, used);
        assert_eq!(v.stats.regions, 2);
        let capacity = v.stats.capacity_bytes;
        assert_eq!(
            v.stats.used_bytes + v.stats.padding_bytes + v.stats.tail_bytes + v.stats.free_bytes,
            capacity
        );
        let handed_out = v.stats.used_bytes + v.stats.padding_bytes + v.stats.tail_bytes;
        let held = a.held();
        let (report, released) = a.reset();
        assert_eq!(report.allocations_reclaimed, 40);
        assert_eq!(report.bytes_reclaimed, handed_out);
        // The 64 KiB first region goes back; the larger one stays.
        assert_eq!(released, 64 << 10);
        assert_eq!(a.held(), held - released);
        assert_eq!(a.with_bytes(big, 1, |_| ()).err(), Some(EINVAL));
        assert_eq!(a.with_bytes(live[0].0, 1, |_| ()).err(), Some(EINVAL));
        let v = a.view();
        assert_eq!(
            (v.stats.live_allocs, v.stats.used_bytes, v.stats.resets),
            (0, 0, 1)
        );
        assert_eq!(v.reclaimed.allocations_reclaimed, 40);
        // The kept region serves the next round without growing.
        assert_eq!(a.alloc(100, 64, u64::MAX)?.1, 0);
        Ok(())
    }

    /// Bad sizes and alignments are EINVAL and change nothing; growth
    /// beyond the budget is ENOMEM.
    #[test]
    fn bad_input_and_budget() -> Result {
        let pool = test_pool()?;
        let a = ArenaObj::new(&pool, 1)?;
        a.alloc(10, 0, u64::MAX)?;
        let before = a.view().stats;
        for (size, align) in [
            (0, 8),
            (MAX_REQUEST + 1, 8),
            (8, 3),
            (8, 8192),
            (8, usize::MAX),
        ] {
            assert_eq!(a.alloc(size, align, u64::MAX).err(), Some(EINVAL));
        }
        assert!(a.view().stats == before);
        // The 64 KiB region cannot hold 100 KiB, and no budget is left.
        assert_eq!(a.alloc(100 << 10, 8, 0).err(), Some(ENOMEM));
        let after = a.view().stats;
        assert_eq!(after.failures, before.failures + 1);
        assert_eq!(
            (after.regions, after.used_bytes),
            (before.regions, before.used_bytes)
        );
        // A tight budget takes the smallest region that serves the request.
        assert_eq!(a.alloc(100 << 10, 8, 200 << 10)?.1, 128 << 10);
        Ok(())
    }
}
