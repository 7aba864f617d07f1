// SPDX-License-Identifier: GPL-2.0
//! Property tests of the slab bookkeeping against a simple model.
//!
//! Random caches (size, alignment, debug flags, shuffled or not) run random
//! alloc/free sequences on a `Vec<u8>` slab. Every live object carries its
//! own byte pattern, checked when it is freed, so any overlap between
//! objects, or between an object and the bookkeeping, shows up as a
//! corrupted pattern or a spurious red zone / poison report.

use proptest::prelude::*;
use rkalloc_core::slab::{Flags, Layout, SlabError, SlabState, MAX_OBJECT_SIZE};
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
struct Cache {
    size: usize,
    align: usize,
    flags: Flags,
    secret: u32,
    shuffle: Option<u64>,
}

fn cache() -> impl Strategy<Value = Cache> {
    // Mostly small objects (many per slab), sometimes anything up to the max.
    let size = prop_oneof![3 => 1usize..=256, 1 => 1usize..=MAX_OBJECT_SIZE];
    (
        size,
        0u32..=12,
        0u32..=7,
        any::<u32>(),
        any::<Option<u64>>(),
    )
        .prop_map(|(size, align_log, bits, secret, shuffle)| Cache {
            size,
            align: 1 << align_log,
            flags: Flags::from_bits(bits).unwrap(),
            secret,
            shuffle,
        })
}

fn setup(c: &Cache) -> (Layout, Vec<u8>, SlabState) {
    let l = Layout::new(c.size, c.align, c.flags).unwrap();
    let mut mem = vec![0u8; l.slab_bytes()];
    let st = match c.shuffle {
        None => SlabState::init(&l, &mut mem, c.secret),
        Some(seed) => SlabState::init_shuffled(&l, &mut mem, c.secret, seed),
    }
    .unwrap();
    (l, mem, st)
}

/// Byte `j` of the pattern of the `k`-th allocation: differs between any two
/// allocations at every position that matters for a short object.
fn pattern(k: u32, j: usize) -> u8 {
    let b = k.to_le_bytes();
    b[j % 4] ^ (j as u8).wrapping_mul(31) ^ 0x5a
}

fn write_pattern(mem: &mut [u8], off: usize, size: usize, k: u32) {
    for (j, byte) in mem[off..off + size].iter_mut().enumerate() {
        *byte = pattern(k, j);
    }
}

fn pattern_intact(mem: &[u8], off: usize, size: usize, k: u32) -> bool {
    mem[off..off + size]
        .iter()
        .enumerate()
        .all(|(j, &b)| b == pattern(k, j))
}

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    /// Free the live object at this (wrapped) position of the model.
    Free(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => Just(Op::Alloc),
        2 => any::<usize>().prop_map(Op::Free),
    ];
    prop::collection::vec(op, 0..400)
}

/// Live objects must be aligned, in the object area and pairwise disjoint.
fn assert_disjoint(l: &Layout, live: &[(usize, u32)]) {
    let mut sorted: Vec<usize> = live.iter().map(|&(o, _)| o).collect();
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        assert!(w[0] + l.obj_size() <= w[1], "objects overlap: {w:?}");
    }
    for &o in &sorted {
        assert!(l.object_index(o).is_ok());
        assert_eq!(o % l.align(), 0);
        assert!(o + l.obj_size() <= l.objects_per_slab() * l.stride());
    }
}

/// Runs `ops` against the model; returns the live objects at the end.
fn run(c: &Cache, ops: &[Op], l: &Layout, mem: &mut [u8], st: &mut SlabState) -> Vec<(usize, u32)> {
    let mut live: Vec<(usize, u32)> = Vec::new();
    let mut next_k = 0u32;
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Alloc => match st.alloc(l, mem) {
                Ok(off) => {
                    assert!(live.len() < l.objects_per_slab());
                    assert!(
                        live.iter().all(|&(o, _)| o != off),
                        "{off} handed out twice"
                    );
                    write_pattern(mem, off, c.size, next_k);
                    live.push((off, next_k));
                    next_k += 1;
                }
                Err(e) => {
                    assert_eq!(e, SlabError::Exhausted);
                    assert_eq!(live.len(), l.objects_per_slab());
                }
            },
            Op::Free(pick) => {
                if live.is_empty() {
                    continue;
                }
                let (off, k) = live.swap_remove(pick % live.len());
                assert!(
                    pattern_intact(mem, off, c.size, k),
                    "object {off} was overwritten"
                );
                st.free(l, mem, off).unwrap();
            }
        }
        assert_eq!(st.inuse(), live.len());
        assert_eq!(st.free_objects() + st.inuse(), l.objects_per_slab());
        assert_eq!(st.leaked(), 0);
        assert_eq!(st.is_full(), live.len() == l.objects_per_slab());
        assert_eq!(st.is_empty(), live.is_empty());
        if step % 32 == 0 {
            assert_disjoint(l, &live);
            st.validate(l, mem).unwrap();
        }
    }
    assert_disjoint(l, &live);
    st.validate(l, mem).unwrap();
    live
}

proptest! {
    #[test]
    fn random_alloc_free_matches_model(c in cache(), ops in ops(), order in any::<u64>()) {
        let (l, mut mem, mut st) = setup(&c);
        let mut live = run(&c, &ops, &l, &mut mem, &mut st);

        if c.flags.contains(Flags::DEBUG_CHECKS) {
            let mut want: Vec<usize> = live.iter().map(|&(o, _)| o).collect();
            want.sort_unstable();
            let got: Vec<usize> = st.live_objects(&l, &mem).unwrap().collect();
            prop_assert_eq!(got, want);
        }

        // Free the rest in a random order: the slab ends up empty.
        let mut rng = order;
        while !live.is_empty() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (off, k) = live.swap_remove((rng >> 33) as usize % live.len());
            prop_assert!(pattern_intact(&mem, off, c.size, k));
            st.free(&l, &mut mem, off).unwrap();
        }
        prop_assert!(st.is_empty());
        prop_assert_eq!(st.free_objects(), l.objects_per_slab());
        st.validate(&l, &mem).unwrap();

        // And every object is still reachable exactly once.
        let mut seen = BTreeSet::new();
        while let Ok(off) = st.alloc(&l, &mut mem) {
            prop_assert!(seen.insert(off));
        }
        prop_assert_eq!(seen.len(), l.objects_per_slab());
    }

    #[test]
    fn bad_frees_are_refused_without_side_effects(
        c in cache(),
        ops in ops(),
        probes in prop::collection::vec(any::<usize>(), 1..40),
    ) {
        let c = Cache { flags: c.flags | Flags::DEBUG_CHECKS, ..c };
        let (l, mut mem, mut st) = setup(&c);
        let live = run(&c, &ops, &l, &mut mem, &mut st);
        let live: BTreeSet<usize> = live.iter().map(|&(o, _)| o).collect();
        let span = l.slab_bytes() + 64;
        for p in probes {
            // Half of the probes hit object starts, the rest anywhere.
            let off = if p % 2 == 0 {
                l.object_offset((p / 2) % l.objects_per_slab()).unwrap()
            } else {
                (p / 2) % span
            };
            if live.contains(&off) {
                continue;
            }
            let (mem_before, st_before) = (mem.clone(), st);
            let r = st.free(&l, &mut mem, off);
            prop_assert!(
                matches!(
                    r,
                    Err(SlabError::DoubleFree { .. }
                        | SlabError::Misaligned { .. }
                        | SlabError::OutOfRange { .. })
                ),
                "free({}) gave {:?}",
                off,
                r
            );
            prop_assert_eq!(st, st_before);
            prop_assert!(mem == mem_before);
        }
    }

    #[test]
    fn scribbles_never_panic(
        c in cache(),
        steps in prop::collection::vec((0u8..4, any::<u64>()), 0..300),
    ) {
        let (l, mut mem, mut st) = setup(&c);
        let mut live = Vec::new();
        for (kind, r) in steps {
            match kind {
                // A wild write anywhere in the slab, bookkeeping included.
                0 => {
                    let at = r as usize % mem.len();
                    mem[at] = (r >> 56) as u8;
                }
                // A free of an arbitrary offset.
                1 => {
                    let _ = st.free(&l, &mut mem, (r >> 8) as usize % (l.slab_bytes() + 64));
                }
                2 if !live.is_empty() => {
                    let off = live.swap_remove((r >> 8) as usize % live.len());
                    let _ = st.free(&l, &mut mem, off);
                }
                _ => {
                    if let Ok(off) = st.alloc(&l, &mut mem) {
                        live.push(off);
                    }
                }
            }
            prop_assert_eq!(
                st.inuse() + st.free_objects() + st.leaked(),
                l.objects_per_slab()
            );
            let _ = st.validate(&l, &mem);
            if let Some(it) = st.live_objects(&l, &mem) {
                prop_assert!(it.count() <= l.objects_per_slab());
            }
        }
    }
}
