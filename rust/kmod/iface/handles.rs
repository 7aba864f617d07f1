// SPDX-License-Identifier: GPL-2.0
//! Per-fd handle tables: the core's [`handles::Table`] in `KVVec`s, with
//! its errors as the header's errnos. A handle names its fd and a
//! generation, never an address (see the core for the layout).

use crate::rkcore::handles::{self, HandleError, Slot};
use kernel::prelude::*;

/// The errno of a handle error: another fd's or a stale handle EINVAL, one
/// this fd never had ENOENT, a full table or no memory ENOMEM.
pub(crate) fn errno(e: HandleError) -> Error {
    match e {
        HandleError::Invalid => EINVAL,
        HandleError::Unknown => ENOENT,
        HandleError::Full | HandleError::NoMemory => ENOMEM,
    }
}

/// An error that is an errno, for [`handles::Table::remove_with`].
pub(crate) struct Errno(pub(crate) Error);

impl From<HandleError> for Errno {
    fn from(e: HandleError) -> Self {
        Errno(errno(e))
    }
}

/// A table of owned items of type `T`, in kernel memory.
pub(crate) struct Table<T>(handles::Table<T, KVVec<Slot<T>>, KVVec<u32>>);

impl<T> Table<T> {
    /// An empty table for the fd numbered `fd_id`.
    pub(crate) fn new(fd_id: u32) -> Self {
        Self(handles::Table::new(fd_id, KVVec::new(), KVVec::new()))
    }

    /// Items held.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Makes room for one more insertion (see the core).
    pub(crate) fn reserve(&mut self) -> Result {
        self.0.reserve().map_err(errno)
    }

    /// Makes room for `n` insertions.
    pub(crate) fn reserve_inserts(&mut self, n: usize) -> Result {
        self.0.reserve_inserts(n).map_err(errno)
    }

    /// Makes sure the next `n` removals cannot fail.
    pub(crate) fn reserve_removals(&mut self, n: usize) -> Result {
        self.0.reserve_removals(n).map_err(errno)
    }

    /// Stores `item` and returns its handle; without room reserved first,
    /// the item comes back in the error (the caller gives it back).
    pub(crate) fn insert(&mut self, item: T) -> core::result::Result<u64, T> {
        self.0.insert(item)
    }

    /// The item named by `handle`.
    pub(crate) fn get_mut(&mut self, handle: u64) -> Result<&mut T> {
        self.0.get_mut(handle).map_err(errno)
    }

    /// Removes the item named by `handle` if `check` does not refuse (it
    /// sees the item first and may fail, leaving it).
    pub(crate) fn remove_with(&mut self, handle: u64, check: impl FnOnce(&mut T) -> Result) -> Result<T> {
        self.0
            .remove_with(handle, |item| check(item).map_err(Errno))
            .map_err(|Errno(e)| e)
    }

    /// The handle of the first item for which `pred` holds.
    pub(crate) fn find(&self, pred: impl FnMut(&T) -> bool) -> Option<u64> {
        self.0.find(pred)
    }

    /// Items for which `pred` holds.
    pub(crate) fn count(&self, pred: impl FnMut(&T) -> bool) -> usize {
        self.0.count(pred)
    }

    /// Removes every item for which `pred` holds (room reserved with
    /// [`Self::reserve_removals`]) and passes it to `f`.
    pub(crate) fn remove_all(&mut self, pred: impl FnMut(&T) -> bool, f: impl FnMut(T)) -> usize {
        self.0.remove_all(pred, f)
    }

    /// Takes every item out, for teardown.
    pub(crate) fn drain(&mut self, f: impl FnMut(T)) {
        self.0.drain(f)
    }
}
