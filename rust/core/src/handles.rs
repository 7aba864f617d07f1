// SPDX-License-Identifier: GPL-2.0
//! Per-fd handle tables: what an open `/dev/rkalloc` owns, named by opaque
//! handles instead of kernel addresses.
//!
//! A handle is `fd_id << 40 | index << 16 | generation`. The fd id tells
//! another fd's handle ([`HandleError::Invalid`], EINVAL) from ours; the
//! generation, bumped on every removal, tells a stale or double-freed
//! handle ([`HandleError::Invalid`]) from one this fd never had
//! ([`HandleError::Unknown`], ENOENT). No address is ever part of a handle.
//!
//! The table never allocates by itself: its slots and its list of free
//! slots live in caller-provided [`Store`]s (`KVVec` in the kernel, `Vec` on
//! the host), which grow only in the `reserve*` methods. An operation that
//! must not fail half-way reserves first ([`Table::reserve`],
//! [`Table::reserve_inserts`], [`Table::reserve_removals`]) and then inserts
//! or removes, which cannot fail for lack of memory.

use super::store::{NoMemory, Store};

/// Bits of a handle's slot index: at most 2^24 slots.
const INDEX_BITS: u32 = 24;
/// Bits of a handle's generation.
const GEN_BITS: u32 = 16;
/// Where the fd id starts in a handle.
const FD_SHIFT: u32 = INDEX_BITS + GEN_BITS;
/// Most slots of a table.
pub const MAX_SLOTS: usize = 1 << INDEX_BITS;
/// Bits of the fd id a handle keeps.
const FD_MASK: u32 = (1 << (64 - FD_SHIFT)) - 1;

/// Why a handle operation failed. The glue's errnos are in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// Another fd's handle, or one whose item was removed: a stale handle
    /// or a double free (EINVAL).
    Invalid,
    /// A handle this fd never had (ENOENT).
    Unknown,
    /// Every one of the [`MAX_SLOTS`] slots is taken (ENOMEM).
    Full,
    /// The storage could not grow (ENOMEM).
    NoMemory,
}

impl From<NoMemory> for HandleError {
    fn from(_: NoMemory) -> Self {
        HandleError::NoMemory
    }
}

/// One slot: its item, if any, and the generation of the handle that
/// names it now (or named it last).
#[derive(Debug)]
pub struct Slot<T> {
    generation: u16,
    item: Option<T>,
}

/// A table of owned items of type `T`, its slots in `S` and its free slot
/// indexes in `F`.
///
/// # Invariants
///
/// `free` holds, without repeats, the index of every slot whose item is
/// `None`; `live` is the number of slots whose item is `Some`. Every
/// generation is at least 1, so a handle with generation 0 was never made.
pub struct Table<T, S: Store<Slot<T>>, F: Store<u32>> {
    fd_id: u32,
    slots: S,
    free: F,
    live: usize,
    _items: core::marker::PhantomData<T>,
}

impl<T, S: Store<Slot<T>>, F: Store<u32>> Table<T, S, F> {
    /// An empty table for the fd numbered `fd_id` (its low 24 bits are
    /// used), in empty stores `slots` and `free`.
    pub fn new(fd_id: u32, mut slots: S, mut free: F) -> Self {
        slots.clear();
        free.clear();
        // INVARIANT: no slots, nothing free, nothing live.
        Self {
            fd_id: fd_id & FD_MASK,
            slots,
            free,
            live: 0,
            _items: core::marker::PhantomData,
        }
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The handle of slot `index` at generation `generation`.
    fn handle(&self, index: usize, generation: u16) -> u64 {
        (u64::from(self.fd_id) << FD_SHIFT) | ((index as u64) << GEN_BITS) | u64::from(generation)
    }

    /// Makes room for one more insertion, so that [`Table::insert`] cannot
    /// fail after the caller has made the item. [`HandleError::Full`] when
    /// every slot is taken.
    pub fn reserve(&mut self) -> Result<(), HandleError> {
        if self.free.is_empty() {
            if self.slots.len() >= MAX_SLOTS {
                return Err(HandleError::Full);
            }
            self.slots.reserve(1)?;
            // The slot's index goes to the free list when it is removed.
            self.free.reserve(1)?;
        }
        Ok(())
    }

    /// Makes room for `n` insertions, so that a batch of [`Table::insert`]s
    /// cannot fail half-way.
    pub fn reserve_inserts(&mut self, n: usize) -> Result<(), HandleError> {
        let new_slots = n.saturating_sub(self.free.len());
        if self.slots.len().saturating_add(new_slots) > MAX_SLOTS {
            return Err(HandleError::Full);
        }
        self.slots.reserve(new_slots)?;
        Ok(())
    }

    /// Stores `item` and returns its handle. Without room reserved first
    /// ([`Table::reserve`]), the item may come back in the error.
    pub fn insert(&mut self, item: T) -> Result<u64, T> {
        let index = match self.free.pop() {
            Some(i) => {
                match self.slots.as_mut_slice().get_mut(i as usize) {
                    Some(slot) => slot.item = Some(item),
                    // The free list names only existing slots (invariant).
                    None => return Err(item),
                }
                i as usize
            }
            None => {
                let index = self.slots.len();
                let slot = Slot {
                    generation: 1,
                    item: None,
                };
                if index >= MAX_SLOTS || self.slots.push_within_capacity(slot).is_err() {
                    // Not reserved: give the item back.
                    return Err(item);
                }
                match self.slots.as_mut_slice().get_mut(index) {
                    Some(slot) => slot.item = Some(item),
                    // The slot was just pushed.
                    None => return Err(item),
                }
                index
            }
        };
        self.live += 1;
        let generation = self.slots.as_slice().get(index).map_or(1, |s| s.generation);
        Ok(self.handle(index, generation))
    }

    /// The slot index `handle` names, if it names a live item of ours.
    fn decode(&self, handle: u64) -> Result<usize, HandleError> {
        if (handle >> FD_SHIFT) as u32 != self.fd_id {
            return Err(HandleError::Invalid);
        }
        let index = ((handle >> GEN_BITS) & (MAX_SLOTS as u64 - 1)) as usize;
        let generation = handle as u16;
        let slot = self
            .slots
            .as_slice()
            .get(index)
            .ok_or(HandleError::Unknown)?;
        if generation == slot.generation && slot.item.is_some() {
            return Ok(index);
        }
        // An older generation of this slot existed: stale or double free.
        if generation != 0 && generation < slot.generation {
            return Err(HandleError::Invalid);
        }
        Err(HandleError::Unknown)
    }

    /// The item named by `handle`.
    pub fn get(&self, handle: u64) -> Result<&T, HandleError> {
        let i = self.decode(handle)?;
        let slot = self.slots.as_slice().get(i);
        slot.and_then(|s| s.item.as_ref())
            .ok_or(HandleError::Unknown)
    }

    /// The item named by `handle`, to change.
    pub fn get_mut(&mut self, handle: u64) -> Result<&mut T, HandleError> {
        let i = self.decode(handle)?;
        let slot = self.slots.as_mut_slice().get_mut(i);
        slot.and_then(|s| s.item.as_mut())
            .ok_or(HandleError::Unknown)
    }

    /// Removes the item named by `handle`, if `check` does not object:
    /// `check` sees the item first and may refuse with an error, which
    /// leaves everything as it was. Afterwards the handle is stale.
    pub fn remove_with<E: From<HandleError>>(
        &mut self,
        handle: u64,
        check: impl FnOnce(&mut T) -> Result<(), E>,
    ) -> Result<T, E> {
        let i = self.decode(handle)?;
        self.free.reserve(1).map_err(HandleError::from)?;
        let slot = self
            .slots
            .as_mut_slice()
            .get_mut(i)
            .ok_or(HandleError::Unknown)?;
        check(slot.item.as_mut().ok_or(HandleError::Unknown)?)?;
        let item = slot.item.take().ok_or(HandleError::Unknown)?;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.live -= 1;
        // `i` is below MAX_SLOTS, so a u32, and room was made above (were
        // it not, the slot would merely never be reused).
        let _ = self.free.push_within_capacity(i as u32);
        Ok(item)
    }

    /// [`Table::remove_with`] without a check.
    pub fn remove(&mut self, handle: u64) -> Result<T, HandleError> {
        self.remove_with(handle, |_| Ok::<(), HandleError>(()))
    }

    /// The handle of the first item for which `pred` holds.
    pub fn find(&self, mut pred: impl FnMut(&T) -> bool) -> Option<u64> {
        let slots = self.slots.as_slice();
        let i = slots
            .iter()
            .position(|s| s.item.as_ref().is_some_and(&mut pred))?;
        Some(self.handle(i, slots.get(i)?.generation))
    }

    /// Items for which `pred` holds.
    pub fn count(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        self.slots
            .as_slice()
            .iter()
            .filter(|s| s.item.as_ref().is_some_and(&mut pred))
            .count()
    }

    /// Calls `f` on every item.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        for s in self.slots.as_slice() {
            if let Some(item) = &s.item {
                f(item);
            }
        }
    }

    /// Makes sure the next `n` removals cannot fail for lack of memory, so
    /// that an operation removing many handles is all or nothing.
    pub fn reserve_removals(&mut self, n: usize) -> Result<(), HandleError> {
        self.free.reserve(n)?;
        Ok(())
    }

    /// Removes every item for which `pred` holds and passes it to `f`;
    /// their handles become stale. Call [`Table::reserve_removals`] with
    /// [`Table::count`] first: removals beyond the reserve are skipped.
    /// Returns the number removed.
    pub fn remove_all(&mut self, mut pred: impl FnMut(&T) -> bool, mut f: impl FnMut(T)) -> usize {
        let mut n = 0;
        for (i, slot) in self.slots.as_mut_slice().iter_mut().enumerate() {
            if !slot.item.as_ref().is_some_and(&mut pred) {
                continue;
            }
            // Below MAX_SLOTS, so a u32.
            if self.free.push_within_capacity(i as u32).is_err() {
                continue;
            }
            if let Some(item) = slot.item.take() {
                slot.generation = slot.generation.wrapping_add(1).max(1);
                self.live -= 1;
                n += 1;
                f(item);
            }
        }
        n
    }

    /// Takes every item out, for teardown; the table is empty afterwards
    /// and every handle it made is unknown.
    pub fn drain(&mut self, mut f: impl FnMut(T)) {
        for s in self.slots.as_mut_slice() {
            if let Some(item) = s.item.take() {
                f(item);
            }
        }
        self.slots.clear();
        self.free.clear();
        self.live = 0;
    }
}
