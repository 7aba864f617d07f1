// SPDX-License-Identifier: GPL-2.0
//! The regions by address, for a free by address ([`super::Heap::free_addr`]):
//! the start address of every region in use, sorted, so that the region
//! holding an address is found by a binary search, O(log R), instead of a
//! scan of the slots.
//!
//! The addresses are taken when a region is added. Buffers whose bytes stay
//! put (pool pages, `Vec`, `Box`) keep them right; the heap still checks the
//! region found against its bytes' current address and falls back to a
//! scan, so a buffer that moved costs time, never a wrong answer.

use core::hint::select_unpredictable;

/// Start addresses of the regions in use, ascending, with their indexes.
///
/// # Invariants
///
/// `starts[..n]` is sorted ascending and `regions[..n]` holds the index of
/// the region that starts at the same position; `n <= R`.
pub(super) struct Addrs<const R: usize> {
    starts: [usize; R],
    regions: [u32; R],
    n: usize,
}

impl<const R: usize> Addrs<R> {
    /// No regions.
    pub(super) const EMPTY: Self = Addrs {
        starts: [0; R],
        regions: [0; R],
        n: 0,
    };

    /// Records that region `r` starts at address `start`.
    pub(super) fn insert(&mut self, start: usize, r: u32) {
        if self.n >= R {
            // More regions than slots cannot be: a heap has R slots.
            return;
        }
        let at = self.starts[..self.n].partition_point(|&s| s <= start);
        self.starts.copy_within(at..self.n, at + 1);
        self.regions.copy_within(at..self.n, at + 1);
        // INVARIANT: inserted at its place in the order.
        self.starts[at] = start;
        self.regions[at] = r;
        self.n += 1;
    }

    /// Forgets region `r`.
    pub(super) fn remove(&mut self, r: u32) {
        let n = self.n.min(R);
        if let Some(at) = self.regions[..n].iter().position(|&x| x == r) {
            self.starts.copy_within(at + 1..n, at);
            self.regions.copy_within(at + 1..n, at);
            self.n = n - 1;
        }
    }

    /// The region with the highest start at or below `addr`: the only one
    /// that can hold it.
    #[inline]
    pub(super) fn find(&self, addr: usize) -> Option<u32> {
        let starts = self.starts.get(..self.n)?;
        if starts.first().is_none_or(|&s| addr < s) {
            return None;
        }
        // Branchless: the addresses of random frees go either way.
        let (mut base, mut len) = (0usize, starts.len());
        while len > 1 {
            let half = len / 2;
            let mid = base + half;
            let go = starts.get(mid).is_some_and(|&s| s <= addr);
            base = select_unpredictable(go, mid, base);
            len -= half;
        }
        self.regions.get(base).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_region_below_an_address() {
        let mut a = Addrs::<4>::EMPTY;
        assert_eq!(a.find(100), None);
        a.insert(1000, 2);
        a.insert(100, 0);
        a.insert(5000, 1);
        assert_eq!(a.find(99), None);
        assert_eq!(a.find(100), Some(0));
        assert_eq!(a.find(999), Some(0));
        assert_eq!(a.find(1000), Some(2));
        assert_eq!(a.find(4999), Some(2));
        assert_eq!(a.find(usize::MAX), Some(1));
        a.remove(2);
        assert_eq!(a.find(1000), Some(0));
        a.insert(3000, 3);
        a.insert(2000, 2);
        assert_eq!(a.find(2500), Some(2));
        assert_eq!(a.find(3500), Some(3));
        // Full: a fifth insert is ignored; an unknown removal too.
        a.insert(9000, 9);
        a.remove(7);
        assert_eq!(a.find(9500), Some(1));
        for r in 0..4 {
            a.remove(r);
        }
        assert_eq!(a.find(9500), None);
    }
}
