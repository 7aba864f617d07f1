// SPDX-License-Identifier: GPL-2.0
//! The pool's chunk table: where each chunk slot lives in the linear map,
//! and back from an address to its page in O(1).

use crate::rkcore::buddy::{CHUNK_PAGES, MAX_ORDER};
use core::{
    ptr::NonNull,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
};
use kernel::prelude::*;

use super::PAGE_SHIFT;

/// A removed entry of the address table.
const TOMBSTONE: u64 = u64::MAX;
/// log2 of a chunk's size in bytes.
pub(super) const CHUNK_SHIFT: u32 = MAX_ORDER + PAGE_SHIFT;
/// Bits of an address-table entry that hold the slot + 1: the chunk number
/// (`addr >> CHUNK_SHIFT`, 64 - CHUNK_SHIFT bits) fills the rest.
const SLOT_BITS: u32 = CHUNK_SHIFT;

/// Chunk slots and their addresses.
///
/// # Invariants
///
/// - `base[c]` is the kernel address of chunk slot `c` while it is online,
///   else 0. It is written under the pool's lock, and read without it only
///   for pages the reader owns (allocated or cached), whose chunk cannot go
///   offline meanwhile: a chunk goes offline only when the buddy holds all
///   of it.
/// - `by_addr` is an open-addressing table from chunk number (`address >>
///   CHUNK_SHIFT`: chunks are naturally aligned in the linear map) to slot.
///   Entry: `vchunk << SLOT_BITS | slot + 1`, 0 empty, [`TOMBSTONE`]
///   removed. Written under the pool's lock, read lock-free (an entry
///   changes only for a chunk going online or offline, which no reader can
///   own pages of). At most half full, so probes stay short.
pub(super) struct Chunks {
    base: KVVec<AtomicUsize>,
    by_addr: KVVec<AtomicU64>,
}

impl Chunks {
    /// A table for `max_chunks` slots, all offline.
    pub(super) fn new(max_chunks: u32) -> Result<Self> {
        let mut base = KVVec::with_capacity(max_chunks as usize, GFP_KERNEL)?;
        for _ in 0..max_chunks {
            base.push(AtomicUsize::new(0), GFP_KERNEL)?;
        }
        let table = (max_chunks as usize * 2).next_power_of_two();
        let mut by_addr = KVVec::with_capacity(table, GFP_KERNEL)?;
        for _ in 0..table {
            by_addr.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        Ok(Self { base, by_addr })
    }

    /// The kernel address of page `pfn`, if its chunk is online.
    #[inline]
    pub(super) fn addr_of(&self, pfn: u32) -> Option<NonNull<u8>> {
        let base = self.base.get((pfn >> MAX_ORDER) as usize)?.load(Relaxed);
        let off = ((pfn & (CHUNK_PAGES - 1)) as usize) << PAGE_SHIFT;
        NonNull::new(base.wrapping_add(off) as *mut u8).filter(|_| base != 0)
    }

    /// The pfn of the pool page at `addr`, if `addr` lies in an online
    /// chunk. O(1), and pure arithmetic: a chunk is a naturally aligned
    /// block of the linear map, so `addr >> CHUNK_SHIFT` names it.
    #[inline]
    pub(super) fn pfn_of(&self, addr: *const u8) -> Option<u32> {
        let vchunk = addr as u64 >> CHUNK_SHIFT;
        let mask = self.by_addr.len() - 1;
        let mut i = (vchunk as usize).wrapping_mul(0x9e37_79b9) & mask;
        for _ in 0..self.by_addr.len() {
            let e = self.by_addr[i].load(Relaxed);
            if e == 0 {
                return None;
            }
            if e != TOMBSTONE && e >> SLOT_BITS == vchunk {
                let c = ((e & ((1 << SLOT_BITS) - 1)) as u32).checked_sub(1)?;
                let off = (addr as usize) & ((1 << CHUNK_SHIFT) - 1);
                return Some((c << MAX_ORDER) | (off >> PAGE_SHIFT) as u32);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Brings slot `c` online at `addr`. Under the pool's lock.
    pub(super) fn publish(&self, c: u32, addr: usize) {
        if let Some(b) = self.base.get(c as usize) {
            b.store(addr, Relaxed);
        }
        self.map(addr, Some(c));
    }

    /// Takes slot `c` offline and returns its address (0 if it was not
    /// online). Under the pool's lock.
    pub(super) fn withdraw(&self, c: u32) -> usize {
        let addr = self.base.get(c as usize).map_or(0, |b| b.swap(0, Relaxed));
        if addr != 0 {
            self.map(addr, None);
        }
        addr
    }

    /// Takes every online slot offline and returns their addresses to `f`:
    /// teardown, when no one else can reach the pool.
    pub(super) fn drain(&self, mut f: impl FnMut(usize)) {
        for c in 0..self.base.len() as u32 {
            let addr = self.withdraw(c);
            if addr != 0 {
                f(addr);
            }
        }
    }

    /// Publishes (`Some(slot)`) or withdraws the chunk at `addr` in the
    /// address table.
    fn map(&self, addr: usize, c: Option<u32>) {
        let vchunk = addr as u64 >> CHUNK_SHIFT;
        let mask = self.by_addr.len() - 1;
        let mut i = (vchunk as usize).wrapping_mul(0x9e37_79b9) & mask;
        for _ in 0..self.by_addr.len() {
            let e = self.by_addr[i].load(Relaxed);
            match c {
                Some(slot) if e == 0 || e == TOMBSTONE => {
                    self.by_addr[i].store(vchunk << SLOT_BITS | u64::from(slot + 1), Relaxed);
                    return;
                }
                None if e == 0 => return,
                None if e != TOMBSTONE && e >> SLOT_BITS == vchunk => {
                    self.by_addr[i].store(TOMBSTONE, Relaxed);
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }
}
