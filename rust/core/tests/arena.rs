// SPDX-License-Identifier: GPL-2.0
//! Property tests of the arena: alignment holds, allocations never overlap,
//! and a reset reclaims exactly what the statistics said was in use.

use proptest::prelude::*;
use rkalloc_core::arena::{Arena, ArenaError, ArenaStats, Ptr, MAX_ALIGN};

type A = Arena<Vec<u8>, 4>;

#[derive(Debug, Clone)]
enum Op {
    /// Size and log2 of the alignment.
    Alloc(usize, u32),
    Reset,
    AddRegion(usize),
    RemoveRegion(u32),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        20 => (prop_oneof![3 => 1usize..64, 2 => 64usize..2048, 1 => 2048usize..20_000], 0u32..=12)
            .prop_map(|(s, a)| Op::Alloc(s, a)),
        1 => Just(Op::Reset),
        2 => (1usize..40_000).prop_map(Op::AddRegion),
        2 => (0u32..5).prop_map(Op::RemoveRegion),
    ];
    prop::collection::vec(op, 1..300)
}

fn identity(s: &ArenaStats) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        s.used_bytes + s.padding_bytes + s.tail_bytes + s.free_bytes,
        s.capacity_bytes
    );
    prop_assert!(s.largest_free_bytes <= s.free_bytes);
    Ok(())
}

/// A live allocation and the byte pattern it was filled with.
struct Live {
    ptr: Ptr,
    size: usize,
    fill: u8,
}

fn verify(a: &A, live: &[Live]) -> Result<(), TestCaseError> {
    for l in live {
        let mem = a.region(l.ptr.region).unwrap();
        let start = l.ptr.offset as usize;
        prop_assert!(mem[start..start + l.size].iter().all(|&b| b == l.fill));
    }
    Ok(())
}

proptest! {
    #[test]
    fn bump_allocation(lens in prop::collection::vec(1usize..40_000, 1..=3), ops in ops()) {
        let mut a = A::new();
        for &len in &lens {
            a.add_region(vec![0; len]).unwrap();
        }
        let mut live: Vec<Live> = Vec::new();
        let mut fill = 0u8;
        for op in ops {
            let before = a.stats();
            match op {
                Op::Alloc(size, align_log2) => {
                    let align = 1usize << align_log2;
                    match a.alloc(size, align) {
                        Ok(ptr) => {
                            prop_assert_eq!(ptr.offset as usize % align, 0);
                            prop_assert!(a.owns(ptr));
                            let s = a.stats();
                            prop_assert_eq!(s.used_bytes, before.used_bytes + size as u64);
                            prop_assert_eq!(s.live_allocs, before.live_allocs + 1);
                            // No overlap: the new range is disjoint from
                            // every live one, and the bytes prove it later.
                            for l in &live {
                                let disjoint = l.ptr.region != ptr.region
                                    || l.ptr.offset as usize + l.size <= ptr.offset as usize
                                    || ptr.offset as usize + size <= l.ptr.offset as usize;
                                prop_assert!(disjoint, "{:?}+{} overlaps {:?}+{}", ptr, size, l.ptr, l.size);
                            }
                            fill = fill.wrapping_add(1);
                            let start = ptr.offset as usize;
                            let mem = a.region_mut(ptr.region).unwrap();
                            prop_assert!(start + size <= mem.len());
                            mem[start..start + size].fill(fill);
                            live.push(Live { ptr, size, fill });
                        }
                        Err(ArenaError::NoMemory) => {
                            // Only a request that fits nowhere fails, and it
                            // changes nothing but the failure count.
                            prop_assert!(size as u64 > before.largest_free_bytes || align > 1);
                            let mut s = a.stats();
                            prop_assert_eq!(s.failures, before.failures + 1);
                            s.failures = before.failures;
                            prop_assert_eq!(s, before);
                        }
                        Err(e) => prop_assert!(false, "alloc({}, {}): {:?}", size, align, e),
                    }
                }
                Op::Reset => {
                    verify(&a, &live)?;
                    let r = a.reset();
                    prop_assert_eq!(
                        r.bytes_reclaimed,
                        before.used_bytes + before.padding_bytes + before.tail_bytes
                    );
                    prop_assert_eq!(r.allocations_reclaimed, before.live_allocs);
                    prop_assert_eq!(r.allocations_reclaimed, live.len() as u64);
                    let s = a.stats();
                    prop_assert_eq!(s.free_bytes, s.capacity_bytes);
                    prop_assert_eq!(s.free_bytes, before.free_bytes + r.bytes_reclaimed);
                    prop_assert_eq!((s.used_bytes, s.padding_bytes, s.tail_bytes), (0, 0, 0));
                    prop_assert_eq!(s.resets, before.resets + 1);
                    for l in &live {
                        prop_assert!(!a.owns(l.ptr));
                    }
                    live.clear();
                }
                Op::AddRegion(len) => match a.add_region(vec![0; len]) {
                    Ok(_) => prop_assert_eq!(a.stats().capacity_bytes, before.capacity_bytes + len as u64),
                    Err(e) => {
                        prop_assert_eq!(e, ArenaError::RegionsFull);
                        prop_assert_eq!(a.stats(), before);
                    }
                },
                Op::RemoveRegion(i) => {
                    let used = live.iter().any(|l| l.ptr.region == i);
                    match a.remove_region(i) {
                        Some(m) => {
                            prop_assert!(!used);
                            prop_assert_eq!(a.stats().capacity_bytes, before.capacity_bytes - m.len() as u64);
                        }
                        None => prop_assert_eq!(a.stats(), before),
                    }
                }
            }
            identity(&a.stats())?;
            let f = a.frag();
            prop_assert_eq!(f.requested_bytes, a.stats().used_bytes);
            prop_assert_eq!(f.handed_out_bytes + f.free_bytes, a.stats().capacity_bytes);
        }
        verify(&a, &live)?;
        a.reset();
        for i in 0..4 {
            a.remove_region(i);
        }
        prop_assert_eq!(a.stats().capacity_bytes, 0);
    }
}

#[test]
fn page_alignment_within_a_region() {
    let mut a = A::new();
    a.add_region(vec![0; 3 * MAX_ALIGN]).unwrap();
    assert_eq!(
        a.alloc(1, 1),
        Ok(Ptr {
            region: 0,
            offset: 0
        })
    );
    assert_eq!(
        a.alloc(1, MAX_ALIGN),
        Ok(Ptr {
            region: 0,
            offset: 4096
        })
    );
    assert_eq!(
        a.alloc(8, 8),
        Ok(Ptr {
            region: 0,
            offset: 4104
        })
    );
    assert_eq!(
        a.alloc(1, MAX_ALIGN),
        Ok(Ptr {
            region: 0,
            offset: 8192
        })
    );
    let s = a.stats();
    assert_eq!(s.padding_bytes, 4095 + 7 + (8192 - 4112));
    assert_eq!(a.alloc(MAX_ALIGN, MAX_ALIGN), Err(ArenaError::NoMemory));
}

proptest! {
    /// Rewinding to a mark undoes exactly the allocations made since: the
    /// figures are the marked ones (regions added meanwhile apart), those
    /// regions are fresh again and can be taken back, and the next
    /// allocation lands where the first undone one did.
    #[test]
    fn rewind_undoes_allocations(before in prop::collection::vec(1usize..3000, 0..20),
                                 after in prop::collection::vec(1usize..3000, 1..20),
                                 align_log2 in 0u32..=6) {
        let mut a: Arena<Vec<u8>, 32> = Arena::new();
        a.add_region(vec![0u8; 16384]).unwrap();
        let align = 1usize << align_log2;
        for &s in &before {
            if a.alloc(s, align) == Err(ArenaError::NoMemory) {
                a.add_region(vec![0u8; 16384]).unwrap();
                a.alloc(s, align).unwrap();
            }
        }
        let marked = a.stats();
        let mark = a.mark();
        let mut first = None;
        let mut added = Vec::new();
        for &s in &after {
            let p = match a.alloc(s, align) {
                Ok(p) => p,
                Err(ArenaError::NoMemory) => {
                    added.push(a.add_region(vec![0u8; 16384]).unwrap());
                    a.alloc(s, align).unwrap()
                }
                Err(e) => panic!("{e:?}"),
            };
            first.get_or_insert(p);
        }
        a.rewind(mark);
        // The first undone allocation lands where it did before.
        let m2 = a.mark();
        let again = a.alloc(after[0], align).unwrap();
        prop_assert_eq!(Some(again), first);
        a.rewind(m2);
        for r in added.iter().rev() {
            prop_assert!(a.remove_region(*r).is_some(), "a region added after the mark is fresh again");
        }
        prop_assert_eq!(a.stats(), marked);
    }
}
