// SPDX-License-Identifier: GPL-2.0
//! The pool's per-CPU page lists for orders 0 to [`PCP_MAX_ORDER`], like the
//! kernel's pcp lists: a hit takes no lock and no atomic read-modify-write.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Highest order with per-CPU lists.
pub(crate) const PCP_MAX_ORDER: u32 = 3;
pub(super) const PCP_ORDERS: usize = PCP_MAX_ORDER as usize + 1;
/// Per-CPU list capacity per order; above it, `PCP_BATCH` blocks go back.
pub(super) const PCP_HIGH: [u32; PCP_ORDERS] = [64, 32, 16, 8];
/// Blocks moved between a per-CPU list and the buddy at a time.
pub(super) const PCP_BATCH: [u32; PCP_ORDERS] = [32, 16, 8, 4];
const PCP_CAP: usize = 64;

/// One CPU's page lists and fast-path counters.
///
/// Every field is an atomic used with relaxed loads and stores (plain moves
/// on x86, no read-modify-write): the owning CPU changes its lists with
/// preemption disabled, and other CPUs read the counts for statistics
/// through shared references, which atomics make sound. Only code running
/// on the owning CPU (or any CPU while it is offline, or at teardown)
/// changes `count` and `pfns`.
pub(super) struct Pcp {
    pub(super) count: [AtomicU32; PCP_ORDERS],
    pub(super) pfns: [[AtomicU32; PCP_CAP]; PCP_ORDERS],
    pub(super) allocs: [AtomicU64; PCP_ORDERS],
    pub(super) frees: [AtomicU64; PCP_ORDERS],
}

impl Pcp {
    pub(super) fn new() -> Self {
        Self {
            count: Default::default(),
            pfns: core::array::from_fn(|_| core::array::from_fn(|_| AtomicU32::new(0))),
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
        self.pfns[o][n as usize].load(Relaxed)
    }

    /// Pushes a pfn; the caller checked that the list has room.
    #[inline]
    pub(super) fn push(&self, o: usize, pfn: u32) {
        let n = self.len(o);
        self.pfns[o][n as usize].store(pfn, Relaxed);
        self.count[o].store(n + 1, Relaxed);
    }
}

#[inline]
pub(super) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

