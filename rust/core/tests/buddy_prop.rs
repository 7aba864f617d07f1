// SPDX-License-Identifier: GPL-2.0
//! Property tests: random operation sequences over several chunks, run
//! against a model that only remembers which `(pfn, order)` blocks are
//! allocated and which chunks are online. Every step must return exactly the
//! model's verdict, a refused step must change nothing, and `check()` must
//! pass after every step.

use proptest::prelude::*;
use rkalloc_core::buddy::{Buddy, BuddyError, PageMeta, PageState, MAX_ORDER, NR_ORDERS};

/// Chunk slots; operations also aim one slot past the end.
const SLOTS: u32 = 4;
const PAGES: u32 = SLOTS << MAX_ORDER;

type Pool = Buddy<Vec<PageMeta>>;

#[derive(Debug, Clone)]
enum Op {
    /// Allocate a block of this order (may be invalid).
    Alloc(u32),
    /// Free the live block picked by this index.
    Free(usize),
    /// Free a live block, giving the wrong order.
    FreeWrongOrder(usize, u32),
    /// Free a block that was freed before: a double free, unless the same
    /// block has been handed out again meanwhile.
    FreeAgain(usize),
    /// Free whatever this is.
    FreeAny(u32, u32),
    AddChunk(u32),
    RemoveChunk(u32),
}

fn order() -> impl Strategy<Value = u32> {
    // Mostly small orders, as real workloads, so that chunks fill up and
    // fragment; sometimes large or invalid ones.
    prop_oneof![6 => 0u32..=2, 3 => 0u32..=MAX_ORDER, 1 => MAX_ORDER + 1..=MAX_ORDER + 3]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => order().prop_map(Op::Alloc),
        8 => any::<usize>().prop_map(Op::Free),
        1 => (any::<usize>(), order()).prop_map(|(i, o)| Op::FreeWrongOrder(i, o)),
        1 => any::<usize>().prop_map(Op::FreeAgain),
        1 => (prop_oneof![9 => 0..PAGES + 64, 1 => any::<u32>()], order())
            .prop_map(|(p, o)| Op::FreeAny(p, o)),
        1 => (0..=SLOTS).prop_map(Op::AddChunk),
        1 => (0..=SLOTS).prop_map(Op::RemoveChunk),
    ]
}

/// What the allocator must agree with.
struct Model {
    live: Vec<(u32, u32)>,
    freed: Vec<(u32, u32)>,
    online: [bool; SLOTS as usize],
}

impl Model {
    /// The verdict on `free(pfn, order)` that the model expects.
    fn free_verdict(&self, pfn: u32, order: u32) -> Result<(), BuddyError> {
        let chunk = pfn >> MAX_ORDER;
        if order > MAX_ORDER {
            Err(BuddyError::InvalidOrder)
        } else if chunk >= SLOTS {
            Err(BuddyError::OutOfRange)
        } else if !self.online[chunk as usize] {
            Err(BuddyError::ChunkOffline)
        } else if self.live.contains(&(pfn, order)) {
            Ok(())
        } else if self.live.iter().any(|&(p, _)| p == pfn) {
            Err(BuddyError::WrongOrder)
        } else {
            Err(BuddyError::NotAllocated)
        }
    }

    fn chunk_busy(&self, chunk: u32) -> bool {
        self.live.iter().any(|&(p, _)| p >> MAX_ORDER == chunk)
    }
}

/// Runs `free(pfn, order)` and holds it to the model's verdict; a refusal
/// must leave the allocator exactly as it was.
fn free_checked(b: &mut Pool, m: &mut Model, pfn: u32, order: u32) -> Result<(), TestCaseError> {
    let want = m.free_verdict(pfn, order);
    let before = (b.free_counts(), b.free_pages(), b.stats().clone());
    let got = b.free(pfn, order);
    prop_assert_eq!(got, want, "free({}, {})", pfn, order);
    if got.is_ok() {
        let i = m.live.iter().position(|&x| x == (pfn, order)).unwrap();
        m.live.swap_remove(i);
        m.freed.push((pfn, order));
    } else {
        prop_assert_eq!((b.free_counts(), b.free_pages(), b.stats().clone()), before);
    }
    Ok(())
}

fn step(b: &mut Pool, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match *op {
        Op::Alloc(order) => {
            let before = b.free_counts();
            let got = b.alloc(order);
            if order > MAX_ORDER {
                prop_assert_eq!(got, Err(BuddyError::InvalidOrder));
                prop_assert_eq!(b.free_counts(), before);
                return Ok(());
            }
            // The smallest free block that fits, split down.
            let source = (order..=MAX_ORDER).find(|&o| before[o as usize] > 0);
            match source {
                None => {
                    prop_assert_eq!(got, Err(BuddyError::NoMemory));
                    prop_assert_eq!(b.free_counts(), before);
                }
                Some(src) => {
                    let pfn = got.unwrap();
                    prop_assert_eq!(pfn % (1 << order), 0);
                    prop_assert!(m.online[(pfn >> MAX_ORDER) as usize]);
                    prop_assert_eq!(b.page_state(pfn), PageState::Allocated { order });
                    let mut want = before;
                    want[src as usize] -= 1;
                    for o in order..src {
                        want[o as usize] += 1;
                    }
                    prop_assert_eq!(b.free_counts(), want);
                    m.live.push((pfn, order));
                }
            }
        }
        Op::Free(i) => {
            if !m.live.is_empty() {
                let (pfn, order) = m.live[i % m.live.len()];
                free_checked(b, m, pfn, order)?;
            }
        }
        Op::FreeWrongOrder(i, order) => {
            if !m.live.is_empty() {
                let (pfn, _) = m.live[i % m.live.len()];
                free_checked(b, m, pfn, order)?;
            }
        }
        Op::FreeAgain(i) => {
            if !m.freed.is_empty() {
                let (pfn, order) = m.freed[i % m.freed.len()];
                free_checked(b, m, pfn, order)?;
            }
        }
        Op::FreeAny(pfn, order) => free_checked(b, m, pfn, order)?,
        Op::AddChunk(c) => {
            let want = if c >= SLOTS {
                Err(BuddyError::OutOfRange)
            } else if m.online[c as usize] {
                Err(BuddyError::ChunkOnline)
            } else {
                Ok(())
            };
            prop_assert_eq!(b.add_chunk(c), want);
            if want.is_ok() {
                m.online[c as usize] = true;
                prop_assert!(b.chunk_is_free(c));
            }
        }
        Op::RemoveChunk(c) => {
            let want = if c >= SLOTS {
                Err(BuddyError::OutOfRange)
            } else if !m.online[c as usize] {
                Err(BuddyError::ChunkOffline)
            } else if m.chunk_busy(c) {
                Err(BuddyError::Busy)
            } else {
                Ok(())
            };
            prop_assert_eq!(
                b.chunk_is_free(c),
                c < SLOTS && m.online[c as usize] && !m.chunk_busy(c)
            );
            prop_assert_eq!(b.remove_chunk(c), want);
            if want.is_ok() {
                m.online[c as usize] = false;
                // Its blocks can no longer be freed: any pfn there is offline.
                prop_assert_eq!(b.page_state(c << MAX_ORDER), PageState::Offline);
            }
        }
    }
    Ok(())
}

/// The allocator agrees with the model as a whole.
fn agree(b: &Pool, m: &Model) -> Result<(), TestCaseError> {
    let report = b.check().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let online = m.online.iter().filter(|&&o| o).count() as u64;
    prop_assert_eq!(u64::from(report.online_chunks), online);
    prop_assert_eq!(b.total_pages(), online << MAX_ORDER);
    prop_assert_eq!(report.allocated_blocks, m.live.len() as u64);
    let live_pages: u64 = m.live.iter().map(|&(_, o)| 1u64 << o).sum();
    prop_assert_eq!(report.allocated_pages, live_pages);
    prop_assert_eq!(b.allocated_pages(), live_pages);
    prop_assert_eq!(b.free_pages() + live_pages, b.total_pages());

    let mut ranges: Vec<(u32, u32)> = m.live.iter().map(|&(p, o)| (p, p + (1 << o))).collect();
    ranges.sort_unstable();
    for w in ranges.windows(2) {
        prop_assert!(w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
    }
    for &(pfn, order) in &m.live {
        prop_assert_eq!(b.page_state(pfn), PageState::Allocated { order });
        prop_assert_eq!(
            b.block_of(pfn + (1 << order) - 1),
            Some((pfn, PageState::Allocated { order }))
        );
    }
    Ok(())
}

proptest! {
    // Each case runs a full O(pages) check() after every step; 128 cases
    // keep the run to seconds. PROPTEST_CASES=2000 for a soak.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn random_sequences_match_the_model(
        initially in proptest::array::uniform4(any::<bool>()),
        ops in proptest::collection::vec(op(), 1..400),
    ) {
        let mut b = Buddy::new(vec![PageMeta::EMPTY; PAGES as usize]);
        let mut m = Model { live: Vec::new(), freed: Vec::new(), online: initially };
        for (c, &on) in (0..).zip(initially.iter()) {
            if on {
                b.add_chunk(c).unwrap();
            }
        }
        agree(&b, &m)?;
        for op in &ops {
            step(&mut b, &mut m, op)?;
            agree(&b, &m)?;
        }

        // Free everything: each online chunk must fold back into one block.
        while let Some(&(pfn, order)) = m.live.last() {
            free_checked(&mut b, &mut m, pfn, order)?;
        }
        agree(&b, &m)?;
        let online = m.online.iter().filter(|&&o| o).count() as u32;
        let mut want = [0u32; NR_ORDERS];
        want[MAX_ORDER as usize] = online;
        prop_assert_eq!(b.free_counts(), want);
        for c in 0..SLOTS {
            prop_assert_eq!(b.chunk_is_free(c), m.online[c as usize]);
        }
    }
}
