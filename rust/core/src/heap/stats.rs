// SPDX-License-Identifier: GPL-2.0
//! The heap's figures: running counters kept exact on every operation,
//! the snapshot [`HeapStats`], and the full invariant check.

use core::fmt;

use super::blocks::{Blocks, ListCheck, RegionMem, Regions};
use super::layout::{map_bytes, TAG};
use super::{HeapError, HeapFlags, Policy};

/// Running totals, kept so that [`super::Heap::stats`] is O(1) apart from
/// the largest free block, and cross-checked by [`super::Heap::check`].
///
/// Updates wrap instead of overflowing: the values are bounded by the
/// regions' sizes as long as the tags are intact, and a forged tag must not
/// turn into an overflow panic; the check reports any drift. Live
/// allocations are `allocs - frees` (nothing else makes or ends one), and
/// the free payload is what the rest leaves (`Counters::free_payload`), so
/// neither is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub(super) regions: u64,
    pub(super) total: u64,
    /// Start maps, padding and tails of the regions.
    pub(super) region_overhead: u64,
    /// Payload bytes of allocated blocks.
    pub(super) alloc_payload: u64,
    pub(super) requested: u64,
    pub(super) free_blocks: u64,
    pub(super) allocs: u64,
    pub(super) frees: u64,
    pub(super) failures: u64,
    pub(super) search_steps: u64,
    pub(super) insert_steps: u64,
}

impl Counters {
    pub(super) const ZERO: Counters = Counters {
        regions: 0,
        total: 0,
        region_overhead: 0,
        alloc_payload: 0,
        requested: 0,
        free_blocks: 0,
        allocs: 0,
        frees: 0,
        failures: 0,
        search_steps: 0,
        insert_steps: 0,
    };

    /// Live allocations.
    pub(super) fn live(&self) -> u64 {
        self.allocs.wrapping_sub(self.frees)
    }

    /// Payload bytes of free blocks: everything that is neither handed out
    /// nor overhead.
    pub(super) fn free_payload(&self) -> u64 {
        self.total
            .wrapping_sub(self.alloc_payload)
            .wrapping_sub(self.overhead())
    }

    /// Tags of every block plus the regions' start maps, padding and tails.
    pub(super) fn overhead(&self) -> u64 {
        let blocks = self.live().wrapping_add(self.free_blocks);
        let tags = blocks.wrapping_mul(2 * TAG as u64);
        self.region_overhead.wrapping_add(tags)
    }
}

/// A snapshot of a heap's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// The fit policy.
    pub policy: Policy,
    /// The options.
    pub flags: HeapFlags,
    /// Regions in use.
    pub regions: u32,
    /// Bytes of all regions.
    pub total_bytes: u64,
    /// Payload bytes of allocated blocks (handed out).
    pub used_bytes: u64,
    /// Bytes asked for by live allocations; `used - requested` is internal
    /// fragmentation.
    pub requested_bytes: u64,
    /// Tags of every block plus each region's start map, padding and tail.
    pub overhead_bytes: u64,
    /// Payload bytes of free blocks: what could be handed out without a new
    /// region. `used + overhead + free == total`.
    pub free_bytes: u64,
    /// Payload bytes of the largest free block: the largest request that
    /// can succeed now.
    pub largest_free_bytes: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Live allocations.
    pub live_allocs: u64,
    /// Successful allocations since creation.
    pub allocs: u64,
    /// Successful frees since creation.
    pub frees: u64,
    /// Allocations that failed with [`HeapError::NoMemory`].
    pub failures: u64,
    /// Free blocks examined by allocation searches.
    pub search_steps: u64,
    /// Free blocks walked to find address-ordered insertion points.
    pub insert_steps: u64,
}

/// An invariant [`super::Heap::check`] found broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invariant {
    /// Two free blocks are neighbours: a free missed a merge.
    AdjacentFree,
    /// The start map marks a granule where no block starts.
    StrayStartBit,
    /// Segregated fit's bitmap disagrees with its class lists.
    ClassMask,
    /// The free lists hold more blocks than there are free blocks.
    ListsTooLong,
    /// A free block is on a list its size does not belong to.
    WrongClass,
    /// A list member's back link does not name its predecessor.
    BackLink,
    /// An address-ordered list is out of order.
    NotOrdered,
    /// A free block is on no list.
    MissingFromLists,
    /// The running counters disagree with the blocks.
    Counters,
}

impl Invariant {
    /// What is broken, in a few words.
    pub const fn as_str(self) -> &'static str {
        match self {
            Invariant::AdjacentFree => "adjacent free blocks",
            Invariant::StrayStartBit => "start map bit without a block",
            Invariant::ClassMask => "non-empty class mask",
            Invariant::ListsTooLong => "free lists longer than free blocks",
            Invariant::WrongClass => "free block in the wrong class",
            Invariant::BackLink => "broken back link",
            Invariant::NotOrdered => "free list not address ordered",
            Invariant::MissingFromLists => "free block missing from the lists",
            Invariant::Counters => "counters disagree with the blocks",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for invariant `what`, broken near `off` of region `r`.
pub(super) fn inconsistent(r: u32, off: u32, what: Invariant) -> HeapError {
    HeapError::Inconsistent {
        region: r,
        offset: off,
        what,
    }
}

impl<M: RegionMem> Regions<M> {
    /// The counters' snapshot; `largest` is the policy's answer.
    pub(super) fn stats(&self, policy: Policy, flags: HeapFlags, largest: usize) -> HeapStats {
        let c = &self.c;
        HeapStats {
            policy,
            flags,
            regions: c.regions as u32,
            total_bytes: c.total,
            used_bytes: c.alloc_payload,
            requested_bytes: c.requested,
            overhead_bytes: c.overhead(),
            free_bytes: c.free_payload(),
            largest_free_bytes: largest as u64,
            free_blocks: c.free_blocks,
            live_allocs: c.live(),
            allocs: c.allocs,
            frees: c.frees,
            failures: c.failures,
            search_steps: c.search_steps,
            insert_steps: c.insert_steps,
        }
    }

    /// The block-level half of the heap's check: tags valid and headers
    /// equal to footers, blocks tiling each block area exactly, start map
    /// bits exactly at block starts, no two adjacent free blocks. Returns
    /// the counters the blocks imply and the check for the lists.
    pub(super) fn check_blocks(&self) -> Result<(Counters, ListCheck), HeapError> {
        let h = self.view();
        let mut n = Counters::ZERO;
        let (mut live, mut free_payload) = (0u64, 0u64);
        for (r, slot) in (0u32..).zip(self.regions.iter()) {
            let Some(reg) = slot else { continue };
            let len = reg.mem.as_ref().len();
            n.regions += 1;
            n.total += len as u64;
            n.region_overhead += len.saturating_sub((reg.end - reg.start) as usize) as u64;
            let (mut b, mut prev_free, mut blocks) = (reg.start, false, 0u64);
            while b < reg.end {
                let t = h.block(r, b)?;
                let payload = u64::from(t.size) - 2 * TAG as u64;
                if t.allocated {
                    live += 1;
                    n.alloc_payload += payload;
                    n.requested += payload - u64::from(t.slack);
                } else {
                    if prev_free {
                        return Err(inconsistent(r, b, Invariant::AdjacentFree));
                    }
                    n.free_blocks += 1;
                    free_payload += payload;
                }
                prev_free = !t.allocated;
                blocks += 1;
                // block() guarantees b + size <= end.
                b += t.size;
            }
            let map = reg.mem.as_ref().get(..map_bytes(len)).unwrap_or(&[]);
            let bits: u64 = map.iter().map(|x| u64::from(x.count_ones())).sum();
            if bits != blocks {
                return Err(inconsistent(r, 0, Invariant::StrayStartBit));
            }
        }
        // The operation counts are history, not state: take them as they
        // are, and compare what the blocks imply.
        n.allocs = self.c.allocs;
        n.frees = self.c.allocs.wrapping_sub(live);
        n.failures = self.c.failures;
        n.search_steps = self.c.search_steps;
        n.insert_steps = self.c.insert_steps;
        if n.free_payload() != free_payload {
            return Err(inconsistent(0, 0, Invariant::Counters));
        }
        let lists = ListCheck {
            limit: n.free_blocks,
            listed: 0,
        };
        Ok((n, lists))
    }

    /// The rest of the heap's check, after the policy checked its lists:
    /// every free block listed, counters equal to what the blocks imply.
    pub(super) fn check_totals(&self, n: Counters, lists: ListCheck) -> Result<(), HeapError> {
        if lists.listed != n.free_blocks {
            return Err(inconsistent(0, 0, Invariant::MissingFromLists));
        }
        if n != self.c {
            return Err(inconsistent(0, 0, Invariant::Counters));
        }
        Ok(())
    }
}
