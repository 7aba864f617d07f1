// SPDX-License-Identifier: GPL-2.0
//! The pool's per-CPU page lists for orders 0 to [`PCP_MAX_ORDER`], like the
//! kernel's pcp lists: a hit takes no lock and no atomic read-modify-write.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Highest order with per-CPU lists.
pub(crate) const PCP_MAX_ORDER: u32 = 3;
pub(super) const PCP_ORDERS: usize = PCP_MAX_ORDER as usize + 1;
/// Per-CPU list capacity per order, in blocks: the most a list may ever
/// hold ([`Limits::high`] stays at or below it). 2048 order-0 pages (8 MiB)
/// absorb a batch of 1024 frees with room to spare, as the kernel's pcp
/// lists do on a machine of this size; the higher orders hold 2 MiB each.
const PCP_CAP: [usize; PCP_ORDERS] = [2048, 256, 128, 64];
/// Where each order's slots start in [`Pcp::pfns`]: after the lower
/// orders' capacities.
const PCP_BASE: [usize; PCP_ORDERS] = {
    let mut base = [0; PCP_ORDERS];
    let mut o = 1;
    while o < PCP_ORDERS {
        base[o] = base[o - 1] + PCP_CAP[o - 1];
        o += 1;
    }
    base
};
const PCP_SLOTS: usize = PCP_BASE[PCP_ORDERS - 1] + PCP_CAP[PCP_ORDERS - 1];
/// The smallest limits, those of a small pool: each list holds at most 64
/// pages' worth and moves 32 at a time.
const MIN_HIGH: [u32; PCP_ORDERS] = [64, 32, 16, 8];
const MIN_BATCH: [u32; PCP_ORDERS] = [32, 16, 8, 4];

/// How many blocks a pool's per-CPU lists hold and move at a time, per
/// order, sized to the pool as the kernel sizes its pcp lists to the zone:
/// the lists of one order on every CPU together hold at most a 32nd of the
/// pool's largest size, so all of them at most an eighth (pages parked on
/// other CPUs, which an allocation does not drain, cannot starve one), but
/// never fewer than [`MIN_HIGH`] (today's small pools keep those) nor more
/// than [`PCP_CAP`] blocks. A batch is a quarter of the high mark, at least
/// [`MIN_BATCH`] and at most 64 blocks. The default pool (1 GiB) on 2 CPUs
/// gets 2048, 256, 128 and 64 blocks for orders 0 to 3, in batches of 64,
/// 64, 32 and 16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// A free that finds this many blocks on its list first gives a batch
    /// back to the buddy.
    pub(super) high: [u32; PCP_ORDERS],
    /// Blocks moved between a list and the buddy at a time.
    pub(super) batch: [u32; PCP_ORDERS],
}

impl Limits {
    /// The limits of a pool of at most `max_pages` pages on `cpus` CPUs.
    pub(super) fn new(max_pages: u64, cpus: u32) -> Self {
        let share = max_pages / 32 / u64::from(cpus.max(1));
        let mut high = MIN_HIGH;
        let mut batch = MIN_BATCH;
        for o in 0..PCP_ORDERS {
            // Capacities and minimums are far below u32::MAX.
            let blocks = (share >> o).min(PCP_CAP[o] as u64) as u32;
            high[o] = blocks.max(MIN_HIGH[o]).min(PCP_CAP[o] as u32);
            batch[o] = (high[o] / 4).clamp(MIN_BATCH[o], 64);
        }
        Self { high, batch }
    }
}

/// One CPU's page lists and fast-path counters.
///
/// Every field is an atomic used with relaxed loads and stores (plain moves
/// on x86, no read-modify-write): the owning CPU changes its lists with
/// preemption disabled, and other CPUs read the counts for statistics
/// through shared references, which atomics make sound. Only code running
/// on the owning CPU (or any CPU while it is offline, or at teardown)
/// changes `count` and `pfns`. The list of order `o` is
/// `pfns[PCP_BASE[o]..][..count[o]]`, and `count[o] <= PCP_CAP[o]`.
pub(super) struct Pcp {
    pub(super) count: [AtomicU32; PCP_ORDERS],
    pfns: [AtomicU32; PCP_SLOTS],
    pub(super) allocs: [AtomicU64; PCP_ORDERS],
    pub(super) frees: [AtomicU64; PCP_ORDERS],
}

impl Pcp {
    pub(super) fn new() -> Self {
        Self {
            count: Default::default(),
            pfns: core::array::from_fn(|_| AtomicU32::new(0)),
            allocs: Default::default(),
            frees: Default::default(),
        }
    }

    #[inline]
    pub(super) fn len(&self, o: usize) -> u32 {
        self.count[o].load(Relaxed)
    }

    /// Pops a pfn; the caller checked that the list is not empty.
    #[inline]
    pub(super) fn pop(&self, o: usize) -> u32 {
        let n = self.len(o) - 1;
        self.count[o].store(n, Relaxed);
        self.at(o, n as usize)
    }

    /// Slot `i` of the list of order `o`; `None` past its capacity, which
    /// no list reaches, so that a damaged count cannot reach another
    /// order's slots.
    #[inline]
    fn slot(&self, o: usize, i: usize) -> Option<&AtomicU32> {
        if i < PCP_CAP[o] {
            self.pfns.get(PCP_BASE[o] + i)
        } else {
            None
        }
    }

    /// The `i`th pfn of the list of order `o` (0 past the capacity).
    #[inline]
    pub(super) fn at(&self, o: usize, i: usize) -> u32 {
        self.slot(o, i).map_or(0, |x| x.load(Relaxed))
    }

    /// Pushes a pfn; the caller checked that the list is below its high
    /// mark, so below its capacity.
    #[inline]
    pub(super) fn push(&self, o: usize, pfn: u32) {
        let n = self.len(o);
        if let Some(x) = self.slot(o, n as usize) {
            x.store(pfn, Relaxed);
        }
        self.count[o].store(n + 1, Relaxed);
    }
}

#[inline]
pub(super) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

