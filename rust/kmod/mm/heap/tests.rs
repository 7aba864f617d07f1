// SPDX-License-Identifier: GPL-2.0
//! KUnit suite `rkalloc_heap`: the heap glue on pool regions.

use super::*;

#[kunit_tests(rkalloc_heap)]
mod suite {
    use super::*;
    use crate::mm::pool::PoolConfig;
    use crate::rkcore::heap::BlockInfo;

    /// A private pool: one 4 MiB chunk, growing to four.
    fn test_pool() -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(1, 4))
    }

    use crate::rkcore::rng::Rng;

    /// The byte pattern `pat` at offset `i`.
    fn pat_byte(pat: u64, i: usize) -> u8 {
        (pat.wrapping_mul(i as u64 + 1) >> 24) as u8 ^ i as u8
    }

    fn fill(mem: &mut [u8], pat: u64) {
        for (i, b) in mem.iter_mut().enumerate() {
            *b = pat_byte(pat, i);
        }
    }

    fn intact(mem: &[u8], pat: u64) -> bool {
        mem.iter().enumerate().all(|(i, b)| *b == pat_byte(pat, i))
    }

    /// Mostly small requests, some up to 16 KiB, a few up to 200 KiB (which
    /// make a 64 KiB heap grow).
    fn mixed_size(rng: &mut Rng) -> usize {
        let r = rng.below(100);
        let max = if r < 70 {
            256
        } else if r < 95 {
            16 << 10
        } else {
            200 << 10
        };
        1 + rng.below(max) as usize
    }

    /// Every block of the heap, in address order.
    fn blocks(h: &HeapObj) -> Result<KVec<BlockInfo>> {
        let mut v = KVec::new();
        let mut err = Ok(());
        h.with_core(|heap| {
            heap.for_each_block(|b| {
                if err.is_ok() {
                    err = v.push(b, GFP_KERNEL).map_err(Error::from);
                }
            })
        })
        .map_err(|_| euclean())?;
        err?;
        Ok(v)
    }

    /// No two free blocks are neighbours in a region.
    fn assert_coalesced(h: &HeapObj) -> Result {
        let v = blocks(h)?;
        for w in v.windows(2) {
            if w[0].region == w[1].region {
                assert_eq!(w[0].offset + w[0].size, w[1].offset);
                assert!(w[0].allocated || w[1].allocated);
            }
        }
        Ok(())
    }

    /// Every policy, with and without check values: random allocations and
    /// frees of mixed sizes on real pool pages. Each allocation is filled
    /// with its own pattern and verified before its free, live payloads
    /// never overlap, and every invariant holds after every step.
    #[test]
    fn random_ops_every_policy() -> Result {
        let pool = test_pool()?;
        let mut rng = Rng::new(0x5eed_1234_abcd_0001);
        for policy in Policy::ALL {
            for flags in [HeapFlags::NONE, HeapFlags::DEBUG] {
                let h = HeapObj::new(&pool, 1, policy, flags, 0, u64::MAX)?;
                let mut live: KVec<(Ptr, usize, u64)> = KVec::new();
                for _ in 0..300 {
                    if live.is_empty() || (live.len() < 48 && rng.below(100) < 60) {
                        let size = mixed_size(&mut rng);
                        let (p, _) = h.alloc(size, u64::MAX)?;
                        assert_eq!(p.offset % 16, 0);
                        let pat = rng.next_u64();
                        assert_eq!(
                            h.with_payload(p, |m| {
                                fill(m, pat);
                                m.len()
                            })?,
                            size
                        );
                        live.push((p, size, pat), GFP_KERNEL)?;
                    } else {
                        let i = rng.below(live.len() as u64) as usize;
                        let last = live.len() - 1;
                        live.swap(i, last);
                        let (p, _, pat) = live.pop().ok_or(EINVAL)?;
                        assert!(h.with_payload(p, |m| intact(m, pat))?);
                        h.free(p)?;
                    }
                    h.check()?;
                    assert_coalesced(&h)?;
                }
                // Live payloads are pairwise disjoint.
                for (i, a) in live.iter().enumerate() {
                    for b in &live[i + 1..] {
                        if a.0.region == b.0.region {
                            let (a0, b0) = (a.0.offset as usize, b.0.offset as usize);
                            assert!(a0 + a.1 <= b0 || b0 + b.1 <= a0);
                        }
                    }
                }
                for (p, _, pat) in live.iter() {
                    assert!(h.with_payload(*p, |m| intact(m, *pat))?);
                }
                while let Some((p, _, _)) = live.pop() {
                    h.free(p)?;
                    h.check()?;
                }
                // All free: one free block per region.
                let v = blocks(&h)?;
                let regions = h.view().stats.regions;
                assert_eq!(v.len(), regions as usize);
                assert!(v.iter().all(|b| !b.allocated));
                let s = h.view().stats;
                assert_eq!((s.used_bytes, s.requested_bytes, s.live_allocs), (0, 0, 0));
            }
        }
        assert_eq!(pool.stats().total_pages - pool.stats().free_pages, 0);
        Ok(())
    }

    /// Payloads of the given sizes (multiples of 16) as the only free blocks
    /// of a 64 KiB heap, in ascending address order between allocated
    /// spacers; returns the heap and the blocks' spans.
    fn craft(
        pool: &Arc<Pool>,
        policy: Policy,
        payloads: &[usize],
    ) -> Result<(Arc<HeapObj>, KVec<(u32, u32)>)> {
        let h = HeapObj::new(pool, 1, policy, HeapFlags::DEBUG, 64 << 10, u64::MAX)?;
        let mut blocks = KVec::new();
        // The core carves requests from the top of the free space, so the
        // blocks come out in descending address order.
        for &p in payloads.iter().rev() {
            blocks.push(h.alloc(p, 0)?.0, GFP_KERNEL)?;
            h.alloc(16, 0)?;
        }
        let rest = h.view().stats.largest_free_bytes as usize;
        h.alloc(rest, 0)?;
        assert_eq!(h.view().stats.free_blocks, 0);
        let mut spans = KVec::new();
        for &b in blocks.iter().rev() {
            let info = h.with_core(|c| c.locate(b)).map_err(|_| EINVAL)?;
            spans.push((info.offset, info.offset + info.size), GFP_KERNEL)?;
            h.free(b)?;
        }
        h.check()?;
        Ok((h, spans))
    }

    /// Which crafted block each request was carved from.
    fn pick(
        pool: &Arc<Pool>,
        policy: Policy,
        payloads: &[usize],
        reqs: &[usize],
    ) -> Result<KVec<usize>> {
        let (h, spans) = craft(pool, policy, payloads)?;
        let mut out = KVec::new();
        for &r in reqs {
            // Budget 0: a request no crafted block fits fails rather than
            // growing the heap.
            let (p, grown) = h.alloc(r, 0)?;
            assert_eq!(grown, 0);
            let info = h.with_core(|c| c.locate(p)).map_err(|_| EINVAL)?;
            let i = spans
                .iter()
                .position(|&(lo, hi)| info.offset >= lo && info.offset + info.size <= hi)
                .ok_or(EINVAL)?;
            out.push(i, GFP_KERNEL)?;
            h.check()?;
        }
        Ok(out)
    }

    /// Each policy takes the block it should on the same crafted layout of
    /// free blocks with payloads 64, 512, 128 and 256 bytes.
    #[test]
    fn each_policy_picks_its_block() -> Result {
        let pool = test_pool()?;
        let layout = [64, 512, 128, 256];
        // A request of 100 bytes needs a 128-byte block (payload 112).
        assert_eq!(&pick(&pool, Policy::FirstFit, &layout, &[100])?[..], &[1]);
        assert_eq!(&pick(&pool, Policy::BestFit, &layout, &[100])?[..], &[2]);
        assert_eq!(
            &pick(&pool, Policy::SegregatedFit, &layout, &[100])?[..],
            &[2]
        );
        // 140 needs 160: best fit takes the 256-byte payload; segregated fit
        // the head of the next non-empty class, the same block.
        assert_eq!(&pick(&pool, Policy::BestFit, &layout, &[140])?[..], &[3]);
        assert_eq!(
            &pick(&pool, Policy::SegregatedFit, &layout, &[140])?[..],
            &[3]
        );
        assert_eq!(&pick(&pool, Policy::FirstFit, &layout, &[16])?[..], &[0]);
        // Next fit resumes after block 1, which the first request used up;
        // first fit goes back to block 0.
        let nf = [64, 256, 64, 64];
        assert_eq!(
            &pick(&pool, Policy::NextFit, &nf, &[256, 48, 48, 48])?[..],
            &[1, 2, 3, 0]
        );
        assert_eq!(
            &pick(&pool, Policy::FirstFit, &nf, &[256, 48])?[..],
            &[1, 0]
        );
        Ok(())
    }

    /// A request no free block fits adds a region: geometric growth when
    /// the budget allows, the smallest sufficient region when it is tight,
    /// ENOMEM (and nothing changed) when it does not allow any.
    #[test]
    fn growth_adds_a_region() -> Result {
        let pool = test_pool()?;
        let h = HeapObj::new(&pool, 1, Policy::BestFit, HeapFlags::NONE, 0, u64::MAX)?;
        assert_eq!(h.held(), 64 << 10);
        let (a, grown) = h.alloc(100 << 10, u64::MAX)?;
        // 64 KiB held: a 100 KiB request needs a 128 KiB region.
        assert_eq!(grown, 128 << 10);
        assert_eq!(h.view().stats.regions, 2);
        let (b, grown) = h.alloc(MAX_REQUEST, u64::MAX)?;
        assert_eq!(grown, 2 << 20);
        assert_eq!(h.held(), (64 << 10) + (128 << 10) + (2 << 20));
        h.check()?;
        // No free block fits another 1 MiB, and a budget of 1 MiB allows
        // no region that serves it (2 MiB): ENOMEM, only the failure counted.
        let before = h.view();
        assert_eq!(h.alloc(MAX_REQUEST, 1 << 20).err(), Some(ENOMEM));
        let after = h.view();
        assert_eq!(after.stats.failures, before.stats.failures + 1);
        assert_eq!(
            (after.held, after.stats.regions),
            (before.held, before.stats.regions)
        );
        // Freeing the only block of a region gives the region back.
        assert_eq!(h.free(b)?, 2 << 20);
        assert_eq!(h.free(a)?, 128 << 10);
        assert_eq!(h.view().stats.regions, 1);
        // The last region stays.
        let (c, _) = h.alloc(10, u64::MAX)?;
        assert_eq!(h.free(c)?, 0);
        assert_eq!(h.held(), 64 << 10);
        h.check()
    }

    /// Bad input returns EINVAL and changes nothing: sizes 0 and above the
    /// limit, pointers that are not live allocations of this heap (another
    /// heap's, a payload's middle, a missing region), and a double free.
    #[test]
    fn bad_input_changes_nothing() -> Result {
        let pool = test_pool()?;
        for policy in Policy::ALL {
            let h = HeapObj::new(&pool, 1, policy, HeapFlags::DEBUG, 0, u64::MAX)?;
            let other = HeapObj::new(&pool, 2, policy, HeapFlags::DEBUG, 0, u64::MAX)?;
            let (a, _) = h.alloc(100, u64::MAX)?;
            let (b, _) = h.alloc(1000, u64::MAX)?;
            // Different sizes, so `o` is no block start of `h`.
            other.alloc(48, u64::MAX)?;
            let (o, _) = other.alloc(200, u64::MAX)?;
            h.free(a)?;
            let snap = |h: &HeapObj| {
                let v = h.view();
                (v.stats, v.held, v.frag)
            };
            let before = snap(&h);
            for size in [0, MAX_REQUEST + 1, usize::MAX] {
                assert_eq!(h.alloc(size, u64::MAX).err(), Some(EINVAL));
            }
            let bad = [
                a, // double free
                o, // another heap's block
                Ptr {
                    region: b.region,
                    offset: b.offset + 16,
                },
                Ptr {
                    region: b.region,
                    offset: b.offset + 1,
                },
                Ptr {
                    region: 5,
                    offset: b.offset,
                },
                Ptr {
                    region: u32::MAX,
                    offset: u32::MAX,
                },
            ];
            for p in bad {
                assert_eq!(h.free(p).err(), Some(EINVAL));
                assert_eq!(h.with_payload(p, |_| ()).err(), Some(EINVAL));
            }
            assert!(before == snap(&h));
            h.check()?;
            h.free(b)?;
        }
        Ok(())
    }

    /// A damaged boundary tag in a debug heap is found, reported once, and
    /// the heap refuses to go on (EUCLEAN) without crashing; a reset
    /// rebuilds it and gives all its memory back.
    #[test]
    fn corrupt_tag_reported_once() -> Result {
        let pool = test_pool()?;
        let h = HeapObj::new(&pool, 7, Policy::FirstFit, HeapFlags::DEBUG, 0, u64::MAX)?;
        let (a, _) = h.alloc(100, u64::MAX)?;
        let (b, _) = h.alloc(100, u64::MAX)?;
        // One more byte of slack in both tags of `a`: a plausible tag that
        // only the check value can tell from a real one.
        h.with_core(|c| {
            let size = c.locate(a).map(|i| i.size as usize).unwrap_or(0);
            let hdr = a.offset as usize - 8;
            if let Some(m) = c.region_mut(a.region) {
                let m = m.as_mut();
                m[hdr + 4] = m[hdr + 4].wrapping_add(1);
                m[hdr + size - 8 + 4] = m[hdr + size - 8 + 4].wrapping_add(1);
            }
        });
        assert_eq!(h.free(a).err(), Some(euclean()));
        assert_eq!(h.free(b).err(), Some(euclean()));
        assert_eq!(h.alloc(8, u64::MAX).err(), Some(euclean()));
        assert_eq!(h.check().err(), Some(euclean()));
        let v = h.view();
        assert_eq!((v.corruptions, v.poisoned), (1, true));
        let held = h.held();
        let mut r = h.begin_reset();
        r.free(a);
        r.free(b);
        assert_eq!(r.finish(), held);
        let v = h.view();
        assert_eq!((v.held, v.poisoned, v.stats.regions), (0, false, 0));
        // The rebuilt heap works again and grows from nothing.
        let (c, grown) = h.alloc(100, u64::MAX)?;
        assert_eq!(grown, 64 << 10);
        h.free(c)?;
        h.check()
    }

    /// A reset frees every block, keeps the largest region and gives the
    /// others back; the heap is one free block afterwards.
    #[test]
    fn reset_frees_everything() -> Result {
        let pool = test_pool()?;
        for policy in Policy::ALL {
            let h = HeapObj::new(&pool, 1, policy, HeapFlags::NONE, 0, u64::MAX)?;
            let mut ptrs = KVec::new();
            let mut rng = Rng::new(99);
            for _ in 0..100 {
                ptrs.push(h.alloc(mixed_size(&mut rng), u64::MAX)?.0, GFP_KERNEL)?;
            }
            let v = h.view();
            assert!(v.stats.regions > 1);
            let largest = h.with_core(|c| {
                (0..REGIONS as u32)
                    .filter_map(|r| c.region(r))
                    .map(|m| m.bytes())
                    .max()
            });
            let mut r = h.begin_reset();
            for p in ptrs.iter() {
                r.free(*p);
            }
            assert_eq!(r.finish(), v.held - largest.unwrap_or(0) as u64);
            let v = h.view();
            assert_eq!(
                (v.stats.regions, v.stats.live_allocs, v.stats.free_blocks),
                (1, 0, 1)
            );
            assert_eq!(v.stats.frees, 100);
            h.check()?;
            // Pointers from before the reset are stale.
            assert_eq!(h.free(ptrs[0]).err(), Some(EINVAL));
        }
        Ok(())
    }

    /// Through the allocator interface of the benchmark and the replay:
    /// addresses are 16-byte aligned and map back to their blocks, frees
    /// by address restore an empty heap, and an address from elsewhere is
    /// ignored.
    #[test]
    fn allocator_by_address() -> Result {
        let pool = test_pool()?;
        for policy in Policy::ALL {
            let h = HeapObj::new(&pool, 0, policy, HeapFlags::NONE, 0, u64::MAX)?;
            let mut live = KVec::new();
            let mut requested = 0;
            for i in 1..60 {
                let size = i * 37;
                let p = h.alloc_addr(size, u64::MAX)?;
                assert_eq!(p.as_ptr() as usize % 16, 0);
                let ptr = h.ptr_of(p).ok_or(EINVAL)?;
                assert_eq!(h.addr_of(ptr), Some(p));
                live.push(p, GFP_KERNEL)?;
                requested += size as u64;
            }
            assert_eq!(h.view().frag.requested_bytes, requested);
            let outside = 0u64;
            assert_eq!(h.free_addr(NonNull::from(&outside).cast()).err(), Some(EINVAL));
            assert_eq!(h.view().stats.live_allocs, live.len() as u64);
            for &p in live.iter() {
                h.free_addr(p)?;
            }
            assert_eq!(h.view().frag.requested_bytes, 0);
            h.check()?;
        }
        Ok(())
    }

    /// The common fragmentation figures: internal is handed out minus
    /// requested, metadata counts the tags, and external fragmentation
    /// appears once free memory is split.
    #[test]
    fn frag_figures() -> Result {
        let pool = test_pool()?;
        let h = HeapObj::new(&pool, 1, Policy::FirstFit, HeapFlags::NONE, 0, u64::MAX)?;
        let mut ptrs = KVec::new();
        // 17 bytes take a 48-byte block: 32 payload bytes, 15 of them slack.
        for _ in 0..10 {
            ptrs.push(h.alloc(17, u64::MAX)?.0, GFP_KERNEL)?;
        }
        let v = h.view();
        assert_eq!(v.frag.requested_bytes, 170);
        assert_eq!(v.frag.handed_out_bytes, 320);
        assert_eq!(v.frag.internal_bytes(), 150);
        assert_eq!(v.frag.external_permille(), 0);
        // Every block's two 8-byte tags are metadata.
        assert!(v.frag.metadata_bytes >= 11 * 16);
        // Free every other block: five one-block holes apart from the rest.
        for p in ptrs.iter().step_by(2) {
            h.free(*p)?;
        }
        let v = h.view();
        assert!(v.frag.external_permille() > 0);
        assert_eq!(v.stats.free_blocks, 6);
        Ok(())
    }
}
