// SPDX-License-Identifier: GPL-2.0
//! Unit tests of the heap: each policy's choices on crafted layouts, bad
//! input, accounting, corruption.

use super::super::rng::Rng;
use super::*;
use std::vec;
use std::vec::Vec;

pub(super) type H = Heap<Vec<u8>, 4>;

fn heap(policy: Policy, flags: HeapFlags, lens: &[usize]) -> H {
    let mut h = H::new(policy, flags);
    for &len in lens {
        h.add_region(vec![0xa5; len]).unwrap();
    }
    h.check().unwrap();
    h
}

/// Everything observable: figures, the check verdict and every byte.
pub(super) fn snapshot(h: &H) -> (HeapStats, Result<(), HeapError>, Vec<Vec<u8>>) {
    let bytes = (0..4)
        .map(|i| h.region(i).cloned().unwrap_or_default())
        .collect();
    (h.stats(), h.check(), bytes)
}

/// A heap whose only free blocks have the given payload sizes (multiples
/// of 16), in ascending address order, each between allocated spacers.
/// Returns the free blocks' spans `[header, end)`, freed in that order.
fn craft(policy: Policy, flags: HeapFlags, payloads: &[usize]) -> (H, Vec<(u32, u32)>) {
    let mut h = heap(policy, flags, &[1 << 16]);
    let mut blocks = Vec::new();
    // Requests are carved from the tail of the free space, so the
    // blocks come out in descending address order.
    for &p in payloads.iter().rev() {
        blocks.push(h.alloc(p).unwrap());
        h.alloc(16).unwrap();
    }
    blocks.reverse();
    let rest = h.stats().largest_free_bytes as usize;
    h.alloc(rest).unwrap();
    assert_eq!(h.stats().free_blocks, 0);
    assert!(blocks.windows(2).all(|w| w[0].offset < w[1].offset));
    let mut spans = Vec::new();
    for (&b, &p) in blocks.iter().zip(payloads) {
        let info = h.locate(b).unwrap();
        assert_eq!(info.payload_bytes() as usize, p);
        spans.push((info.offset, info.offset + info.size));
        h.free(b).unwrap();
    }
    assert_eq!(h.stats().free_blocks, payloads.len() as u64);
    h.check().unwrap();
    (h, spans)
}

/// Index of the crafted free block that allocation `p` was carved from.
fn from_block(h: &H, spans: &[(u32, u32)], p: Ptr) -> usize {
    let info = h.locate(p).unwrap();
    spans
        .iter()
        .position(|&(lo, hi)| info.offset >= lo && info.offset + info.size <= hi)
        .expect("allocation outside the crafted blocks")
}

const PAYLOADS: [usize; 4] = [64, 512, 128, 256];

fn pick(policy: Policy, flags: HeapFlags, payloads: &[usize], reqs: &[usize]) -> Vec<usize> {
    let (mut h, spans) = craft(policy, flags, payloads);
    reqs.iter()
        .map(|&r| {
            let p = h.alloc(r).unwrap();
            h.check().unwrap();
            from_block(&h, &spans, p)
        })
        .collect()
}

#[test]
fn first_fit_takes_first_large_enough_in_address_order() {
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::NONE, &PAYLOADS, &[100]),
        [1]
    );
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::NONE, &PAYLOADS, &[140]),
        [1]
    );
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::NONE, &PAYLOADS, &[16]),
        [0]
    );
    // The remainder of block 1 stays first in line.
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::NONE, &PAYLOADS, &[100, 100]),
        [1, 1]
    );
}

#[test]
fn lifo_lists_take_the_last_freed() {
    // Freed in address order, so under LIFO block 1 is the head.
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::LIFO, &[128, 128], &[100]),
        [1]
    );
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::NONE, &[128, 128], &[100]),
        [0]
    );
}

#[test]
fn best_fit_takes_the_smallest_sufficient() {
    assert_eq!(
        pick(Policy::BestFit, HeapFlags::NONE, &PAYLOADS, &[100]),
        [2]
    );
    assert_eq!(
        pick(Policy::BestFit, HeapFlags::NONE, &PAYLOADS, &[140]),
        [3]
    );
    assert_eq!(
        pick(Policy::BestFit, HeapFlags::NONE, &PAYLOADS, &[300]),
        [1]
    );
    // Ties go to the lowest address.
    assert_eq!(
        pick(Policy::BestFit, HeapFlags::NONE, &[256, 128, 128], &[100]),
        [1]
    );
}

#[test]
fn next_fit_resumes_after_the_last_position() {
    // Block 1 is used whole, so the search resumes at block 2 where
    // first fit would go back to block 0.
    assert_eq!(
        pick(
            Policy::NextFit,
            HeapFlags::NONE,
            &[64, 256, 64, 64],
            &[256, 48, 48, 48]
        ),
        [1, 2, 3, 0]
    );
    assert_eq!(
        pick(
            Policy::FirstFit,
            HeapFlags::NONE,
            &[64, 256, 64, 64],
            &[256, 48]
        ),
        [1, 0]
    );
    // From block 3 (too small) the search wraps around to block 0.
    assert_eq!(
        pick(
            Policy::NextFit,
            HeapFlags::NONE,
            &[64, 16, 256, 16],
            &[256, 48]
        ),
        [2, 0]
    );
    // A split block keeps the rover: the next search starts there.
    assert_eq!(
        pick(Policy::NextFit, HeapFlags::NONE, &[512, 512], &[16, 16]),
        [0, 0]
    );
}

#[test]
fn worst_fit_takes_the_largest() {
    let worst = Policy::WorstFit;
    assert_eq!(pick(worst, HeapFlags::NONE, &PAYLOADS, &[100]), [1]);
    assert_eq!(pick(worst, HeapFlags::NONE, &PAYLOADS, &[16]), [1]);
    // Ties go to the first in list order; the first carve leaves block 0
    // smaller than block 2, which serves the next request.
    assert_eq!(
        pick(worst, HeapFlags::NONE, &[256, 128, 256], &[16, 16]),
        [0, 2]
    );
    // Under LIFO the list starts with the last freed, block 2.
    assert_eq!(pick(worst, HeapFlags::LIFO, &[256, 128, 256], &[16]), [2]);
    // Best fit on the same layout takes the smallest that fits.
    assert_eq!(
        pick(Policy::BestFit, HeapFlags::NONE, &[256, 128, 256], &[16]),
        [1]
    );
    // Nothing larger than the largest block: NoMemory, only counted.
    let (mut h, _) = craft(worst, HeapFlags::NONE, &[256, 128]);
    let before = h.stats();
    assert_eq!(h.alloc(257), Err(HeapError::NoMemory));
    assert_eq!(h.stats().failures, before.failures + 1);
    h.check().unwrap();
}

#[test]
fn policies_are_named_by_the_table() {
    assert_eq!(Policy::COUNT, Policy::ALL.len());
    for (i, p) in Policy::ALL.into_iter().enumerate() {
        assert_eq!(p.index(), i);
        assert_eq!(Policy::from_index(i), Some(p));
        assert_eq!(Policy::from_name(p.name()), Some(p));
        assert_eq!(Policy::from_name(p.short_name()), Some(p));
        assert!(p.name().starts_with(p.short_name()));
        assert_eq!(H::new(p, HeapFlags::NONE).policy(), p);
    }
    assert_eq!(Policy::from_index(Policy::COUNT), None);
    assert_eq!(Policy::from_name("fastest-fit"), None);
    let names: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "first-fit",
            "next-fit",
            "best-fit",
            "segregated-fit",
            "worst-fit"
        ]
    );
}

#[test]
fn segregated_fit_takes_from_the_right_class() {
    let seg = Policy::SegregatedFit;
    // Block sizes 80, 528, 144, 272: classes [80, 96), [512, 640),
    // [128, 160), [256, 320). A request of 100 needs 128 bytes, the
    // floor of block 2's class, so every block there fits.
    assert_eq!(pick(seg, HeapFlags::NONE, &PAYLOADS, &[100]), [2]);
    // 140 needs 160, inside no non-empty class, so the head of the next
    // non-empty class up (block 3's) serves it, not the larger block 1.
    assert_eq!(pick(seg, HeapFlags::NONE, &PAYLOADS, &[140]), [3]);
    // First fit would take block 0; the 80-byte block's class is the
    // first non-empty one at or above the request's 64 bytes.
    assert_eq!(pick(seg, HeapFlags::NONE, &[512, 64], &[48]), [1]);
    assert_eq!(
        pick(Policy::FirstFit, HeapFlags::NONE, &[512, 64], &[48]),
        [0]
    );
    // Splitting moves the remainder to its new, smaller class: 900
    // leaves 96 bytes of block 0, so 100 goes to block 1 and 48 back to
    // block 0.
    assert_eq!(
        pick(seg, HeapFlags::NONE, &[1008, 128], &[900, 100, 48]),
        [0, 1, 0]
    );
}

#[test]
fn segregated_fit_tries_its_own_class_head_first() {
    let seg = Policy::SegregatedFit;
    // A request of 256 needs a 272-byte block, above the floor of its
    // class [256, 320): the head of that class, the 272-byte block freed
    // last, serves it whole before any larger class (the 1024-byte block
    // of [1024, 1280)) is split.
    assert_eq!(pick(seg, HeapFlags::NONE, &[256, 1008], &[256]), [0]);
    assert_eq!(
        pick(seg, HeapFlags::NONE, &[256, 256, 1008], &[256, 256, 256]),
        [1, 0, 2]
    );
    // A head too small (256 bytes) costs one step; the larger class
    // serves the request.
    assert_eq!(pick(seg, HeapFlags::NONE, &[240, 1008], &[256]), [1]);
    // Exact classes (below 128 bytes, and requests at a class floor) go
    // to the bitmap at once: 100 needs 128, the floor of [128, 160).
    assert_eq!(pick(seg, HeapFlags::NONE, &[112, 1008], &[100]), [0]);
}

#[test]
fn segregated_fit_searches_its_own_class_last() {
    let seg = Policy::SegregatedFit;
    // Blocks of 304 and 272 bytes share the class [256, 320); a request
    // of 272 needs 288 bytes, above the floor, and no larger class is
    // non-empty: the class is searched (its head first, then the rest),
    // skipping the too-small head.
    assert_eq!(pick(seg, HeapFlags::NONE, &[288, 256], &[272]), [0]);
    assert_eq!(pick(seg, HeapFlags::NONE, &[256, 288], &[272]), [1]);
    let (mut h, _) = craft(seg, HeapFlags::NONE, &[256, 256]);
    assert_eq!(h.alloc(272), Err(HeapError::NoMemory));
    h.check().unwrap();
}

#[test]
fn merged_block_heads_its_class() {
    // Address order, low to high: spacer, `o`, spacer, `l`, `y`, `r`,
    // spacer; requests are carved from the top, so they are made in
    // reverse. `l` and `o` are 528-byte blocks, class [512, 640); `y`
    // is freed last and merges with whichever neighbours are free. A
    // request whose block size is its class's floor takes the head of
    // the first non-empty class at or above it, so it shows which
    // block heads the merged block's class.
    // (payload of `r`, blocks freed before `y` in this order so that
    // the last one heads its class, request probing the merged class)
    let cases: [(usize, &[char], usize); 6] = [
        // `l` heads the class and the merge keeps it there: in place.
        (16, &['o', 'l'], 496),
        // `l` is in the class behind `o`: unlinked, merged block pushed.
        (16, &['l', 'o'], 496),
        // `r` heads the class: the merged block takes its place.
        (512, &['o', 'r'], 496),
        // Both neighbours, `l` heading the class, `r` in a small class.
        (32, &['o', 'r', 'l'], 496),
        // Both neighbours, `r` heading the class, `l` behind it.
        (16, &['l', 'o', 'r'], 496),
        // Both neighbours merge into the next class up, [1024, 1280).
        (512, &['o', 'r', 'l'], 1008),
    ];
    for flags in [HeapFlags::NONE, HeapFlags::DEBUG] {
        for (i, &(r_payload, first, probe)) in cases.iter().enumerate() {
            let mut h = heap(Policy::SegregatedFit, flags, &[1 << 16]);
            h.alloc(16).unwrap();
            let r = h.alloc(r_payload).unwrap();
            let y = h.alloc(16).unwrap();
            let l = h.alloc(512).unwrap();
            h.alloc(16).unwrap();
            let o = h.alloc(512).unwrap();
            h.alloc(16).unwrap();
            let span = |p: Ptr| {
                let info = h.locate(p).unwrap();
                (info.offset, info.offset + info.size)
            };
            let (sl, sy, sr) = (span(l), span(y), span(r));
            let (mut lo, mut hi) = sy;
            for &c in first {
                let p = match c {
                    'o' => o,
                    'l' => {
                        lo = sl.0;
                        l
                    }
                    _ => {
                        hi = sr.1;
                        r
                    }
                };
                h.free(p).unwrap();
            }
            h.free(y).unwrap();
            h.check().unwrap();
            let p = h.alloc(probe).unwrap();
            let info = h.locate(p).unwrap();
            assert!(
                lo <= info.offset && info.offset + info.size <= hi,
                "case {i} {flags:?}: {info:?} outside [{lo}, {hi})"
            );
            h.check().unwrap();
        }
    }
}

#[test]
fn invalid_requests_change_nothing() {
    for policy in Policy::ALL {
        let mut h = heap(policy, HeapFlags::DEBUG, &[4096, 8192]);
        let a = h.alloc(100).unwrap();
        let b = h.alloc(1000).unwrap();
        h.free(a).unwrap();
        let before = snapshot(&h);
        for size in [0, MAX_REGION_ALLOC + 1, usize::MAX] {
            assert_eq!(h.alloc(size), Err(HeapError::Invalid));
        }
        let bad = [
            Ptr {
                region: 3,
                offset: b.offset,
            },
            Ptr {
                region: 99,
                offset: b.offset,
            },
            Ptr {
                region: b.region,
                offset: b.offset + 1,
            },
            Ptr {
                region: b.region,
                offset: b.offset + 16,
            },
            Ptr {
                region: b.region,
                offset: b.offset - 16,
            },
            Ptr {
                region: b.region,
                offset: 0,
            },
            Ptr {
                region: b.region,
                offset: 8,
            },
            Ptr {
                region: b.region,
                offset: 1 << 20,
            },
            Ptr {
                region: b.region,
                offset: u32::MAX,
            },
            Ptr {
                region: u32::MAX,
                offset: 0,
            },
            // Double free.
            a,
        ];
        for p in bad {
            assert_eq!(h.free(p), Err(HeapError::Invalid), "{p:?}");
            assert_eq!(h.locate(p), Err(HeapError::Invalid), "{p:?}");
        }
        assert_eq!(h.add_region(vec![0; 40]), Err(HeapError::Invalid));
        assert_eq!(h.add_region(vec![]), Err(HeapError::Invalid));
        assert!(h.remove_region(b.region).is_none());
        assert!(h.remove_region(7).is_none());
        assert_eq!(snapshot(&h), before);
        assert!(h.corruption().is_none());
    }
}

#[test]
fn oversized_region_and_full_slots_change_nothing() {
    let mut h = heap(Policy::FirstFit, HeapFlags::NONE, &[4096, 4096, 4096, 4096]);
    let before = snapshot(&h);
    assert_eq!(h.add_region(vec![0; 4096]), Err(HeapError::RegionsFull));
    // Zeroed allocations are lazily mapped, so this costs no real memory.
    assert_eq!(
        h.add_region(vec![0; MAX_REGION_BYTES + 1]),
        Err(HeapError::Invalid)
    );
    assert_eq!(snapshot(&h), before);
}

#[test]
fn no_memory_only_counts_the_failure() {
    for policy in Policy::ALL {
        let mut h = heap(policy, HeapFlags::NONE, &[4096]);
        let _a = h.alloc(1000).unwrap();
        let before = snapshot(&h);
        let too_big = h.stats().largest_free_bytes as usize + 1;
        assert_eq!(h.alloc(too_big), Err(HeapError::NoMemory));
        let mut after = snapshot(&h);
        assert_eq!(after.0.failures, before.0.failures + 1);
        after.0.failures = before.0.failures;
        after.0.search_steps = before.0.search_steps;
        assert_eq!(after, before);
        // The glue's answer: another region, then the retry works.
        assert!(max_alloc_in(8192) >= too_big);
        h.add_region(vec![0; 8192]).unwrap();
        h.alloc(too_big).unwrap();
        h.check().unwrap();
    }
}

#[test]
fn forged_header_in_a_payload_is_not_a_block() {
    let mut h = heap(Policy::BestFit, HeapFlags::NONE, &[4096]);
    let p = h.alloc(256).unwrap();
    let q = h.alloc(32).unwrap();
    let mem = h.region_mut(0).unwrap();
    let (ph, qh) = (p.offset as usize - 8, q.offset as usize - 8);
    // Copy q's whole block (tags and payload) into the middle of p.
    let copy: Vec<u8> = mem[qh..qh + 48].to_vec();
    mem[ph + 64..ph + 112].copy_from_slice(&copy);
    let before = snapshot(&h);
    let fake = Ptr {
        region: 0,
        offset: p.offset + 64,
    };
    assert_eq!(h.free(fake), Err(HeapError::Invalid));
    assert_eq!(snapshot(&h), before);
    h.free(p).unwrap();
    h.free(q).unwrap();
    h.check().unwrap();
}

#[test]
fn accounting_adds_up_and_coalescing_restores_one_block() {
    for policy in Policy::ALL {
        for flags in [HeapFlags::NONE, HeapFlags::LIFO, HeapFlags::ALL] {
            let mut h = heap(policy, flags, &[4096, 10000]);
            let sizes = [1, 15, 16, 17, 100, 1000, 33, 2000, 7];
            let ptrs: Vec<Ptr> = sizes.iter().map(|&s| h.alloc(s).unwrap()).collect();
            let s = h.stats();
            assert_eq!(s.requested_bytes, sizes.iter().sum::<usize>() as u64);
            assert_eq!(
                s.used_bytes + s.overhead_bytes + s.free_bytes,
                s.total_bytes
            );
            assert_eq!(s.live_allocs, sizes.len() as u64);
            let f = h.frag();
            assert_eq!(f.handed_out_bytes, s.used_bytes);
            assert_eq!(f.requested_bytes, s.requested_bytes);
            for (&p, &size) in ptrs.iter().zip(&sizes) {
                assert_eq!(p.offset as usize % ALIGN, 0);
                assert_eq!(h.locate(p).unwrap().requested as usize, size);
            }
            // Free in an order that exercises left, right and both-side
            // merges.
            for i in [1, 3, 2, 0, 8, 6, 7, 4, 5] {
                h.free(ptrs[i]).unwrap();
                h.check().unwrap();
            }
            let s = h.stats();
            assert_eq!((s.used_bytes, s.requested_bytes, s.live_allocs), (0, 0, 0));
            assert_eq!(s.free_blocks, 2);
            assert_eq!(s.largest_free_bytes as usize, max_alloc_in(10000));
            let mut blocks = 0;
            h.for_each_block(|b| {
                assert!(!b.allocated);
                blocks += 1;
            })
            .unwrap();
            assert_eq!(blocks, 2);
            assert_eq!(h.remove_region(0).unwrap().len(), 4096);
            assert_eq!(h.remove_region(1).unwrap().len(), 10000);
            h.check().unwrap();
            assert_eq!(h.stats().total_bytes, 0);
            assert_eq!(h.alloc(1), Err(HeapError::NoMemory));
        }
    }
}

#[test]
fn whole_region_can_be_allocated_exactly() {
    for len in [64, 100, 4096, 65536 + 8] {
        let mut h = heap(Policy::FirstFit, HeapFlags::DEBUG, &[len]);
        let max = max_alloc_in(len);
        assert_eq!(h.stats().largest_free_bytes as usize, max);
        assert_eq!(h.alloc(max + 1), Err(HeapError::NoMemory));
        let p = h.alloc(max).unwrap();
        assert_eq!(h.stats().free_blocks, 0);
        h.check().unwrap();
        h.free(p).unwrap();
        h.check().unwrap();
    }
}

#[test]
fn changed_tag_is_found_by_the_check_value() {
    let mut h = heap(Policy::FirstFit, HeapFlags::DEBUG, &[4096]);
    let a = h.alloc(100).unwrap();
    let _b = h.alloc(100).unwrap();
    let hdr = a.offset as usize - 8;
    let size = h.locate(a).unwrap().size as usize;
    // A plausible change made to both tags: one more byte of slack.
    // Only the check value can tell.
    let mem = h.region_mut(0).unwrap();
    mem[hdr + 4] += 1;
    mem[hdr + size - 8 + 4] += 1;
    let expect = HeapError::CorruptTag {
        region: 0,
        offset: hdr as u32,
    };
    assert_eq!(h.check(), Err(expect));
    assert_eq!(h.free(a), Err(expect));
    assert_eq!(
        h.corruption(),
        Some(Ptr {
            region: 0,
            offset: hdr as u32
        })
    );
    // Reported once; afterwards the heap refuses to go on.
    assert_eq!(h.free(a), Err(HeapError::Poisoned));
    assert_eq!(h.alloc(8), Err(HeapError::Poisoned));
    assert!(h.remove_region(0).is_none());
    assert_eq!(h.add_region(vec![0; 4096]), Err(HeapError::Poisoned));
}

#[test]
fn damaged_footer_and_link_are_found_without_debug() {
    let mut h = heap(Policy::FirstFit, HeapFlags::NONE, &[4096]);
    let a = h.alloc(100).unwrap();
    let info = h.locate(a).unwrap();
    let ftr = (info.offset + info.size - 8) as usize;
    h.region_mut(0).unwrap()[ftr] ^= 0x40;
    assert_eq!(
        h.free(a),
        Err(HeapError::CorruptTag {
            region: 0,
            offset: ftr as u32
        })
    );
    assert_eq!(h.alloc(1), Err(HeapError::Poisoned));

    // A free block's next link pointing into nowhere.
    let mut h = heap(Policy::BestFit, HeapFlags::NONE, &[4096]);
    let a = h.alloc(100).unwrap();
    let _b = h.alloc(100).unwrap();
    h.free(a).unwrap();
    let link = a.offset as usize;
    h.region_mut(0).unwrap()[link..link + 8].copy_from_slice(&0x1234u64.to_le_bytes());
    assert!(matches!(h.check(), Err(HeapError::CorruptTag { .. })));
    assert!(matches!(h.alloc(16), Err(HeapError::CorruptTag { .. })));
    assert_eq!(h.alloc(16), Err(HeapError::Poisoned));
}

#[test]
fn check_catches_a_stray_start_bit() {
    let mut h = heap(Policy::FirstFit, HeapFlags::NONE, &[4096]);
    h.region_mut(0).unwrap()[30] |= 1;
    assert!(matches!(h.check(), Err(HeapError::Inconsistent { .. })));
}

#[test]
fn flags_reject_unknown_bits() {
    assert_eq!(HeapFlags::from_bits(3), Some(HeapFlags::ALL));
    assert_eq!(HeapFlags::from_bits(4), None);
    assert!(HeapFlags::ALL.contains(HeapFlags::DEBUG.union(HeapFlags::LIFO)));
}

/// Frees by address find their region by a binary search over the
/// regions' addresses: every live allocation of every region is found,
/// addresses outside every region are Invalid and change nothing, and a
/// removed region is forgotten.
#[test]
fn frees_by_address_find_their_region() {
    let mut h = H::new(Policy::SegregatedFit, HeapFlags::NONE);
    for len in [4096, 8192, 2048, 4096] {
        h.add_region(vec![0; len]).unwrap();
    }
    let mut rng = Rng::new(3);
    let mut live = Vec::new();
    while let Ok(p) = h.alloc(1 + rng.index(200)) {
        let base = h.region(p.region).unwrap().as_ptr();
        live.push(base.wrapping_add(p.offset as usize));
    }
    assert!(live.len() > 50);
    let before = snapshot(&h);
    let outside = [
        core::ptr::null(),
        usize::MAX as *const u8,
        h.region(0).unwrap().as_ptr().wrapping_sub(1),
        h.region(3).unwrap().as_ptr().wrapping_add(4096),
    ];
    for a in outside {
        assert_eq!(h.ptr_of(a), None);
        assert_eq!(h.free_addr(a), Err(HeapError::Invalid));
    }
    assert_eq!(snapshot(&h), before);
    // A byte inside a payload is in a region, but is no allocation.
    let inside = live[0].wrapping_add(1);
    assert!(h.ptr_of(inside).is_some());
    assert_eq!(h.free_addr(inside), Err(HeapError::Invalid));
    for (i, a) in live.iter().enumerate() {
        let p = h.ptr_of(*a).unwrap();
        assert_eq!(h.locate(p).map(|b| b.payload()), Ok(p), "{i}");
        h.free_addr(*a).unwrap();
    }
    h.check().unwrap();
    // Region 2 goes; its addresses are in no region any more.
    let gone = h.region(2).unwrap().as_ptr();
    let mem = h.remove_region(2).unwrap();
    assert_eq!(h.ptr_of(gone.wrapping_add(100)), None);
    drop(mem);
    // A new region takes the free slot and is found.
    h.add_region(vec![0; 4096]).unwrap();
    let p = h.alloc(10).unwrap();
    let a = h
        .region(p.region)
        .unwrap()
        .as_ptr()
        .wrapping_add(p.offset as usize);
    assert_eq!(h.ptr_of(a), Some(p));
}

/// A region that moves with the heap (an inline array) leaves stale
/// addresses behind: the lookup notices and scans, so it still answers
/// right.
#[test]
fn moved_regions_are_still_found() {
    let mut h: Heap<[u8; 4096], 2> = Heap::new(Policy::FirstFit, HeapFlags::NONE);
    h.add_region([0; 4096]).unwrap();
    let p = h.alloc(100).unwrap();
    let moved = std::boxed::Box::new(h);
    let a = moved
        .region(0)
        .unwrap()
        .as_ptr()
        .wrapping_add(p.offset as usize);
    assert_eq!(moved.ptr_of(a), Some(p));
    let mut moved = moved;
    moved.free_addr(a).unwrap();
    moved.check().unwrap();
}

/// `clear` leaves a heap that cannot be told from a fresh one of the same
/// policy and flags (figures, check, regions, addresses, corruption), even
/// from a poisoned heap, and the heap works again after new regions.
#[test]
fn clear_is_a_fresh_heap() {
    for policy in Policy::ALL {
        for flags in [HeapFlags::NONE, HeapFlags::LIFO, HeapFlags::DEBUG] {
            let mut h = heap(policy, flags, &[1 << 14, 1 << 15, 1 << 14]);
            let mut rng = Rng::new(7);
            let mut live = Vec::new();
            for _ in 0..300 {
                if live.is_empty() || rng.below(3) != 0 {
                    if let Ok(p) = h.alloc(1 + rng.below(700) as usize) {
                        live.push(p);
                    }
                } else {
                    let p = live.swap_remove(rng.below(live.len() as u64) as usize);
                    h.free(p).unwrap();
                }
            }
            let addr = h.region(1).unwrap().as_ptr().wrapping_add(64);
            assert!(h.ptr_of(addr).is_some());
            // Damage a live block's header, so the heap is poisoned too.
            let p = live[0];
            h.region_mut(p.region).unwrap()[p.offset as usize - 8] ^= 0x10;
            assert!(h.free(p).is_err());
            h.clear();
            let fresh = H::new(policy, flags);
            assert_eq!(snapshot(&h), snapshot(&fresh));
            assert_eq!(h.corruption(), None);
            assert_eq!((h.policy(), h.flags()), (policy, flags));
            assert_eq!(h.ptr_of(addr), None);
            for r in 0..4 {
                assert!(h.region(r).is_none());
            }
            let r = h.add_region(vec![0; 1 << 14]).unwrap();
            assert_eq!(r, 0);
            let p = h.alloc(100).unwrap();
            h.free(p).unwrap();
            h.check().unwrap();
            assert_eq!(h.stats().allocs, 1);
        }
    }
}
