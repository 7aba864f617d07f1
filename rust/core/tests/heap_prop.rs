// SPDX-License-Identifier: GPL-2.0
//! Property tests of the heap: for every fit policy and option set, random
//! allocations and frees over one to three regions keep every invariant.

use proptest::prelude::*;
use rkalloc_core::heap::{
    BlockInfo, Heap, HeapError, HeapFlags, Policy, Ptr, ALIGN, MAX_REGION_ALLOC,
};

type H = Heap<Vec<u8>, 4>;

#[derive(Debug, Clone)]
enum Op {
    Alloc(usize),
    /// Frees the live allocation picked by the index (modulo their number).
    Free(usize),
    /// Frees an arbitrary pointer: Invalid unless it happens to be live.
    FreeAt(u32, u32),
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 1usize..64,
        3 => 64usize..1024,
        1 => 1024usize..16384,
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => sizes().prop_map(Op::Alloc),
        5 => any::<usize>().prop_map(Op::Free),
        1 => (0u32..4, 0u32..70_000).prop_map(|(r, o)| Op::FreeAt(r, o)),
    ];
    prop::collection::vec(op, 1..300)
}

fn regions() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(64usize..70_000, 1..=3)
}

fn flags() -> impl Strategy<Value = HeapFlags> {
    (0u32..4).prop_map(|b| HeapFlags::from_bits(b).unwrap())
}

/// The byte at `i` of live allocation number `id`: distinct per allocation,
/// so an overlap shows up as a changed byte.
fn pattern(id: u64, i: usize) -> u8 {
    let x = (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
    (x >> 56) as u8
}

struct Live {
    ptr: Ptr,
    size: usize,
    id: u64,
}

fn payload(h: &H, l: &Live) -> Vec<u8> {
    let start = l.ptr.offset as usize;
    h.region(l.ptr.region).unwrap()[start..start + l.size].to_vec()
}

fn verify(h: &H, l: &Live) -> Result<(), TestCaseError> {
    let bytes = payload(h, l);
    for (i, &b) in bytes.iter().enumerate() {
        prop_assert_eq!(
            b,
            pattern(l.id, i),
            "allocation {} overwritten at {}",
            l.id,
            i
        );
    }
    Ok(())
}

fn invariants(h: &H, live: &[Live]) -> Result<(), TestCaseError> {
    prop_assert_eq!(h.check(), Ok(()));
    let s = h.stats();
    prop_assert_eq!(
        s.used_bytes + s.overhead_bytes + s.free_bytes,
        s.total_bytes
    );
    prop_assert_eq!(s.live_allocs, live.len() as u64);
    prop_assert_eq!(
        s.requested_bytes,
        live.iter().map(|l| l.size as u64).sum::<u64>()
    );
    let f = h.frag();
    prop_assert_eq!(f.handed_out_bytes, s.used_bytes);
    prop_assert_eq!(f.largest_free_bytes, s.largest_free_bytes);
    prop_assert!(s.largest_free_bytes <= s.free_bytes);
    Ok(())
}

fn run(
    policy: Policy,
    flags: HeapFlags,
    lens: Vec<usize>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut h = H::new(policy, flags);
    for &len in &lens {
        h.add_region(vec![0x5a; len]).unwrap();
    }
    invariants(&h, &[])?;
    let mut live: Vec<Live> = Vec::new();
    let mut next_id = 0u64;

    for op in ops {
        match op {
            Op::Alloc(size) => {
                let largest = h.stats().largest_free_bytes as usize;
                match h.alloc(size) {
                    Ok(ptr) => {
                        // Every policy searches exhaustively: it fails only
                        // when no free block is large enough.
                        prop_assert!(size <= largest);
                        prop_assert_eq!(ptr.offset as usize % ALIGN, 0);
                        let info = h.locate(ptr).unwrap();
                        prop_assert_eq!(info.requested as usize, size);
                        prop_assert!(info.payload_bytes() as usize >= size);
                        let start = ptr.offset as usize;
                        let mem = h.region_mut(ptr.region).unwrap();
                        for (i, b) in mem[start..start + size].iter_mut().enumerate() {
                            *b = pattern(next_id, i);
                        }
                        live.push(Live {
                            ptr,
                            size,
                            id: next_id,
                        });
                        next_id += 1;
                    }
                    Err(HeapError::NoMemory) => prop_assert!(size > largest),
                    Err(e) => prop_assert!(false, "alloc({}) failed: {:?}", size, e),
                }
            }
            Op::Free(i) => {
                if live.is_empty() {
                    continue;
                }
                let l = live.swap_remove(i % live.len());
                verify(&h, &l)?;
                prop_assert_eq!(h.free(l.ptr), Ok(()));
                // A second free of the same pointer is refused.
                prop_assert_eq!(h.free(l.ptr), Err(HeapError::Invalid));
            }
            Op::FreeAt(region, offset) => {
                let ptr = Ptr { region, offset };
                if let Some(i) = live.iter().position(|l| l.ptr == ptr) {
                    let l = live.swap_remove(i);
                    verify(&h, &l)?;
                    prop_assert_eq!(h.free(ptr), Ok(()));
                } else {
                    let before = h.stats();
                    prop_assert_eq!(h.free(ptr), Err(HeapError::Invalid));
                    prop_assert_eq!(h.stats(), before);
                }
            }
        }
        invariants(&h, &live)?;
    }

    for l in live.drain(..) {
        verify(&h, &l)?;
        prop_assert_eq!(h.free(l.ptr), Ok(()));
    }
    invariants(&h, &[])?;
    // All freed: each region is exactly one free block.
    let mut blocks: Vec<BlockInfo> = Vec::new();
    h.for_each_block(|b| blocks.push(b)).unwrap();
    prop_assert_eq!(blocks.len(), lens.len());
    prop_assert!(blocks.iter().all(|b| !b.allocated));
    for (i, &len) in lens.iter().enumerate() {
        prop_assert_eq!(h.remove_region(i as u32).map(|m| m.len()), Some(len));
    }
    prop_assert_eq!(h.stats().total_bytes, 0);
    prop_assert_eq!(h.check(), Ok(()));
    Ok(())
}

proptest! {
    #[test]
    fn first_fit(flags in flags(), lens in regions(), ops in ops()) {
        run(Policy::FirstFit, flags, lens, ops)?;
    }

    #[test]
    fn next_fit(flags in flags(), lens in regions(), ops in ops()) {
        run(Policy::NextFit, flags, lens, ops)?;
    }

    #[test]
    fn best_fit(flags in flags(), lens in regions(), ops in ops()) {
        run(Policy::BestFit, flags, lens, ops)?;
    }

    #[test]
    fn segregated_fit(flags in flags(), lens in regions(), ops in ops()) {
        run(Policy::SegregatedFit, flags, lens, ops)?;
    }

    #[test]
    fn worst_fit(flags in flags(), lens in regions(), ops in ops()) {
        run(Policy::WorstFit, flags, lens, ops)?;
    }

    /// Whatever the region bytes are overwritten with, the heap never
    /// panics or hangs; it reports corruption once and is poisoned after.
    #[test]
    fn damaged_bytes_never_panic(
        policy in prop::sample::select(Policy::ALL.to_vec()),
        flags in flags(),
        lens in regions(),
        setup in ops(),
        damage in prop::collection::vec((0u32..3, any::<u32>(), any::<u8>()), 1..40),
        after in ops(),
    ) {
        let mut h = H::new(policy, flags);
        for &len in &lens {
            h.add_region(vec![0; len]).unwrap();
        }
        let mut live = Vec::new();
        for op in setup {
            match op {
                Op::Alloc(size) => live.extend(h.alloc(size).ok()),
                Op::Free(i) if !live.is_empty() => {
                    let p = live.swap_remove(i % live.len());
                    h.free(p).unwrap();
                }
                _ => {}
            }
        }
        for (r, off, byte) in damage {
            if let Some(mem) = h.region_mut(r) {
                let len = mem.len();
                mem[off as usize % len] = byte;
            }
        }
        let _ = h.check();
        let _ = h.stats();
        let _ = h.for_each_block(|_| ());
        let mut poisoned = false;
        for op in after {
            let res = match op {
                Op::Alloc(size) => h.alloc(size).map(|p| live.push(p)),
                Op::Free(i) if !live.is_empty() => h.free(live[i % live.len()]),
                Op::FreeAt(r, o) => h.free(Ptr { region: r, offset: o }),
                _ => Ok(()),
            };
            match res {
                Err(HeapError::CorruptTag { .. }) => {
                    prop_assert!(!poisoned);
                    poisoned = true;
                }
                Err(HeapError::Poisoned) => prop_assert!(poisoned),
                _ => {}
            }
            let _ = h.check();
        }
        for r in 0..4 {
            let _ = h.remove_region(r);
        }
        let _ = h.frag();
    }
}

#[test]
fn sizes_beyond_any_region_are_invalid_not_no_memory() {
    let mut h = H::new(Policy::FirstFit, HeapFlags::NONE);
    assert_eq!(h.alloc(MAX_REGION_ALLOC + 1), Err(HeapError::Invalid));
    assert_eq!(h.alloc(MAX_REGION_ALLOC), Err(HeapError::NoMemory));
}
