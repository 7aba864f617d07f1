// SPDX-License-Identifier: GPL-2.0
//! Per-fd handle tables: what an open `/dev/rkalloc` owns, named by opaque
//! handles instead of kernel addresses.
//!
//! A handle is `fd_id << 40 | index << 16 | generation`. The fd id tells
//! another fd's handle (EINVAL) from ours; the generation, bumped on every
//! free, tells a stale or double-freed handle (EINVAL) from one this fd
//! never had (ENOENT). No address is ever part of a handle.

use kernel::prelude::*;

const INDEX_BITS: u32 = 24;
const GEN_BITS: u32 = 16;
const FD_SHIFT: u32 = INDEX_BITS + GEN_BITS;
const MAX_SLOTS: usize = 1 << INDEX_BITS;

struct Slot<T> {
    gen: u16,
    item: Option<T>,
}

/// A table of owned items of type `T`.
pub(crate) struct Table<T> {
    fd_id: u32,
    slots: KVVec<Slot<T>>,
    free: KVVec<u32>,
    live: usize,
}

impl<T> Table<T> {
    /// An empty table for the fd numbered `fd_id` (24 bits used).
    pub(crate) fn new(fd_id: u32) -> Self {
        Self {
            fd_id: fd_id & 0xff_ffff,
            slots: KVVec::new(),
            free: KVVec::new(),
            live: 0,
        }
    }

    /// Items held.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Makes room for one more insertion, so that `insert` cannot fail after
    /// the caller has allocated the item.
    pub(crate) fn reserve(&mut self) -> Result {
        if self.free.is_empty() {
            if self.slots.len() >= MAX_SLOTS {
                return Err(ENOMEM);
            }
            self.slots.reserve(1, GFP_KERNEL)?;
            self.free.reserve(1, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Makes room for `n` insertions, so that a batch of `insert`s cannot
    /// fail half-way for lack of memory.
    pub(crate) fn reserve_inserts(&mut self, n: usize) -> Result {
        let new_slots = n.saturating_sub(self.free.len());
        if self.slots.len().saturating_add(new_slots) > MAX_SLOTS {
            return Err(ENOMEM);
        }
        self.slots.reserve(new_slots, GFP_KERNEL)?;
        Ok(())
    }

    /// Stores `item` and returns its handle. Call [`Table::reserve`] first.
    pub(crate) fn insert(&mut self, item: T) -> Result<u64> {
        let index = if let Some(i) = self.free.pop() {
            self.slots[i as usize].item = Some(item);
            i
        } else {
            let i = self.slots.len() as u32;
            self.slots.push(Slot { gen: 1, item: Some(item) }, GFP_KERNEL)?;
            i
        };
        self.live += 1;
        let gen = self.slots[index as usize].gen;
        Ok((u64::from(self.fd_id) << FD_SHIFT) | (u64::from(index) << GEN_BITS) | u64::from(gen))
    }

    fn decode(&self, handle: u64) -> Result<usize> {
        if (handle >> FD_SHIFT) as u32 != self.fd_id {
            return Err(EINVAL);
        }
        let index = ((handle >> GEN_BITS) & (MAX_SLOTS as u64 - 1)) as usize;
        let gen = handle as u16;
        let slot = self.slots.get(index).ok_or(ENOENT)?;
        if gen == slot.gen && slot.item.is_some() {
            return Ok(index);
        }
        // An older generation of this slot existed: stale or double free.
        if gen != 0 && gen < slot.gen {
            return Err(EINVAL);
        }
        Err(ENOENT)
    }

    /// The item named by `handle`.
    pub(crate) fn get_mut(&mut self, handle: u64) -> Result<&mut T> {
        let i = self.decode(handle)?;
        self.slots[i].item.as_mut().ok_or(ENOENT)
    }

    /// Removes the item named by `handle` if `keep` does not object; `keep`
    /// sees the item first (and may refuse with an error, leaving it).
    pub(crate) fn remove_with(&mut self, handle: u64, f: impl FnOnce(&mut T) -> Result) -> Result<T> {
        let i = self.decode(handle)?;
        self.free.reserve(1, GFP_KERNEL)?;
        let slot = &mut self.slots[i];
        f(slot.item.as_mut().ok_or(ENOENT)?)?;
        let item = slot.item.take().ok_or(ENOENT)?;
        slot.gen = slot.gen.wrapping_add(1).max(1);
        self.live -= 1;
        self.free.push(i as u32, GFP_KERNEL)?;
        Ok(item)
    }

    /// The handle of the first item for which `pred` holds.
    pub(crate) fn find(&self, mut pred: impl FnMut(&T) -> bool) -> Option<u64> {
        let i = self.slots.iter().position(|s| s.item.as_ref().is_some_and(&mut pred))?;
        let gen = self.slots[i].gen;
        Some((u64::from(self.fd_id) << FD_SHIFT) | ((i as u64) << GEN_BITS) | u64::from(gen))
    }

    /// Items for which `pred` holds.
    pub(crate) fn count(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        self.slots.iter().filter(|s| s.item.as_ref().is_some_and(&mut pred)).count()
    }

    /// Makes sure the next `n` removals cannot fail for lack of memory, so
    /// that an operation removing many handles is all or nothing.
    pub(crate) fn reserve_removals(&mut self, n: usize) -> Result {
        self.free.reserve(n, GFP_KERNEL)?;
        Ok(())
    }

    /// Removes every item for which `pred` holds and passes it to `f`;
    /// their handles become stale (EINVAL). Call
    /// [`Table::reserve_removals`] with [`Table::count`] first: removals
    /// beyond the reserve are skipped. Returns the number removed.
    pub(crate) fn remove_all(&mut self, mut pred: impl FnMut(&T) -> bool, mut f: impl FnMut(T)) -> usize {
        let mut n = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if !slot.item.as_ref().is_some_and(&mut pred) || self.free.push_within_capacity(i as u32).is_err() {
                continue;
            }
            if let Some(item) = slot.item.take() {
                slot.gen = slot.gen.wrapping_add(1).max(1);
                self.live -= 1;
                n += 1;
                f(item);
            }
        }
        n
    }

    /// Takes every item out, for teardown.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(T)) {
        for s in self.slots.iter_mut() {
            if let Some(item) = s.item.take() {
                f(item);
            }
        }
        self.slots.clear();
        self.free.clear();
        self.live = 0;
    }
}
