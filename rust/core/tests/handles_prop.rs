// SPDX-License-Identifier: GPL-2.0
//! Property tests of the per-fd handle table against a model: handles of
//! live items find them, removed ones are stale (Invalid), ones never made
//! are Unknown, another fd's are Invalid; reservations make inserts and
//! removals infallible, and a refused removal changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rkalloc_core::handles::{HandleError, Slot, Table, MAX_SLOTS};

type T = Table<u64, Vec<Slot<u64>>, Vec<u32>>;

#[derive(Debug, Clone)]
enum Op {
    /// Reserve, then insert this value.
    Insert(u64),
    /// Remove the live handle picked by the index (modulo their number).
    Remove(usize),
    /// Try to remove it with a check that refuses.
    Refuse(usize),
    /// Use a stale (removed) handle, picked by the index.
    Stale(usize),
    /// Use a handle of another fd.
    OtherFd(usize),
    /// Use a handle made up from raw bits.
    Raw(u64),
    /// Remove every item whose value is even.
    RemoveEven,
    /// Reserve and insert several values.
    Batch(Vec<u64>),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => any::<u64>().prop_map(Op::Insert),
        4 => any::<usize>().prop_map(Op::Remove),
        1 => any::<usize>().prop_map(Op::Refuse),
        2 => any::<usize>().prop_map(Op::Stale),
        1 => any::<usize>().prop_map(Op::OtherFd),
        1 => any::<u64>().prop_map(Op::Raw),
        1 => Just(Op::RemoveEven),
        1 => prop::collection::vec(any::<u64>(), 0..6).prop_map(Op::Batch),
    ];
    prop::collection::vec(op, 1..200)
}

const FD: u32 = 0x1234;

fn pick<K: Copy, V>(m: &BTreeMap<K, V>, i: usize) -> Option<K> {
    (!m.is_empty()).then(|| *m.keys().nth(i % m.len()).unwrap())
}

fn check(t: &T, live: &BTreeMap<u64, u64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(t.len(), live.len());
    for (&h, &v) in live {
        prop_assert_eq!(t.get(h), Ok(&v));
        prop_assert_eq!(h >> 40, u64::from(FD));
    }
    prop_assert_eq!(t.count(|_| true), live.len());
    Ok(())
}

proptest! {
    #[test]
    fn table_matches_the_model(ops in ops()) {
        let mut t = T::new(FD, Vec::new(), Vec::new());
        let mut other = T::new(FD + 1, Vec::new(), Vec::new());
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        let mut dead: BTreeSet<u64> = BTreeSet::new();
        for op in ops {
            match op {
                Op::Insert(v) => {
                    t.reserve().unwrap();
                    let h = t.insert(v).unwrap();
                    prop_assert!(!live.contains_key(&h) && !dead.contains(&h), "handle {:#x} reused", h);
                    live.insert(h, v);
                }
                Op::Batch(vs) => {
                    t.reserve_inserts(vs.len()).unwrap();
                    for v in vs {
                        let h = t.insert(v).map_err(|_| TestCaseError::fail("reserved insert failed"))?;
                        prop_assert!(!live.contains_key(&h) && !dead.contains(&h));
                        live.insert(h, v);
                    }
                }
                Op::Remove(i) => {
                    if let Some(h) = pick(&live, i) {
                        let v = live.remove(&h).unwrap();
                        prop_assert_eq!(t.remove(h), Ok(v));
                        dead.insert(h);
                        // A second removal is a double free.
                        prop_assert_eq!(t.remove(h), Err(HandleError::Invalid));
                    }
                }
                Op::Refuse(i) => {
                    if let Some(h) = pick(&live, i) {
                        let r = t.remove_with(h, |v: &mut u64| {
                            *v = v.wrapping_add(0);
                            Err(HandleError::Unknown)
                        });
                        prop_assert_eq!(r, Err(HandleError::Unknown));
                        prop_assert_eq!(t.get(h), Ok(&live[&h]));
                    }
                }
                Op::Stale(i) => {
                    if !dead.is_empty() {
                        let h = *dead.iter().nth(i % dead.len()).unwrap();
                        prop_assert_eq!(t.get(h), Err(HandleError::Invalid));
                        prop_assert_eq!(t.remove(h), Err(HandleError::Invalid));
                    }
                }
                Op::OtherFd(i) => {
                    if let Some(h) = pick(&live, i) {
                        prop_assert_eq!(other.get(h), Err(HandleError::Invalid));
                        prop_assert_eq!(other.remove(h), Err(HandleError::Invalid));
                    }
                }
                Op::Raw(h) => {
                    let want = if let Some(v) = live.get(&h) {
                        Ok(v)
                    } else if dead.contains(&h) || h >> 40 != u64::from(FD) {
                        Err(HandleError::Invalid)
                    } else {
                        // Ours, never made: Unknown, unless it names a slot
                        // that had a later generation (then it is stale).
                        match t.get(h) {
                            Err(HandleError::Invalid) => {
                                let slot = (h >> 16) & (MAX_SLOTS as u64 - 1);
                                let stale = live.keys().chain(dead.iter()).any(|&k| {
                                    (k >> 16) & (MAX_SLOTS as u64 - 1) == slot
                                        && (h as u16) != 0 && (h as u16) < (k as u16)
                                });
                                prop_assert!(stale, "{:#x} called stale", h);
                                Err(HandleError::Invalid)
                            }
                            _ => Err(HandleError::Unknown),
                        }
                    };
                    prop_assert_eq!(t.get(h), want);
                }
                Op::RemoveEven => {
                    let n = t.count(|v| v % 2 == 0);
                    t.reserve_removals(n).unwrap();
                    let mut got = Vec::new();
                    prop_assert_eq!(t.remove_all(|v| v % 2 == 0, |v| got.push(v)), n);
                    let even: Vec<u64> = live.iter().filter(|(_, v)| *v % 2 == 0).map(|(&h, _)| h).collect();
                    let mut want: Vec<u64> = even.iter().map(|h| live[h]).collect();
                    for h in even {
                        live.remove(&h);
                        dead.insert(h);
                    }
                    got.sort_unstable();
                    want.sort_unstable();
                    prop_assert_eq!(got, want);
                }
            }
            check(&t, &live)?;
        }
        let mut drained = 0;
        t.drain(|_| drained += 1);
        prop_assert_eq!(drained, live.len());
        prop_assert_eq!(t.len(), 0);
        for h in live.keys() {
            prop_assert_eq!(t.get(*h), Err(HandleError::Unknown));
        }
    }
}

/// Without a reservation a removal-all skips what it has no room for, and
/// an insert gives its item back; a table of MAX_SLOTS slots is full.
#[test]
fn reservations_are_what_makes_it_infallible() {
    let mut t = T::new(7, Vec::new(), Vec::new());
    // Nothing reserved: the item comes back.
    assert_eq!(t.insert(5), Err(5));
    t.reserve().unwrap();
    let h = t.insert(5).unwrap();
    assert_eq!(t.get(h), Ok(&5));
    // The handle names fd 7, slot 0, generation 1.
    assert_eq!(h, (7 << 40) | 1);
    assert_eq!(t.get(h & !0xffff), Err(HandleError::Unknown));
    assert_eq!(t.get(h + (1 << 16)), Err(HandleError::Unknown));
    assert_eq!(t.remove(h), Ok(5));
    assert_eq!(t.get(h), Err(HandleError::Invalid));
    // The slot is reused with the next generation.
    t.reserve().unwrap();
    assert_eq!(t.insert(6), Ok(h + 1));
    assert_eq!(t.find(|&v| v == 6), Some(h + 1));
    assert_eq!(t.find(|&v| v == 5), None);
}

#[test]
fn a_full_table_says_full() {
    // Too many for one batch.
    let mut t = T::new(1, Vec::new(), Vec::new());
    assert_eq!(t.reserve_inserts(MAX_SLOTS + 1), Err(HandleError::Full));
    assert_eq!(t.len(), 0);
}
