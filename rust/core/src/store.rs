// SPDX-License-Identifier: GPL-2.0
//! Growable storage for the parts of the core that keep a variable number
//! of things (the handle table, a checked trace) without allocating
//! themselves.
//!
//! The caller provides the storage: the kernel glue implements [`Store`]
//! for `KVVec`, with `GFP_KERNEL` in [`Store::reserve`]; the host crate
//! implements it for `Vec` (with the `alloc` feature, on by default). Every
//! allocation happens in `reserve`, so code can make room first and then
//! fill it with operations that cannot fail.

/// The storage could not grow: no memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoMemory;

/// A growable array of `T` that allocates only in [`Store::reserve`].
pub trait Store<T> {
    /// The elements.
    fn as_slice(&self) -> &[T];

    /// The elements, to change.
    fn as_mut_slice(&mut self) -> &mut [T];

    /// How many more elements fit without allocating.
    fn spare(&self) -> usize;

    /// Makes room for at least `additional` elements beyond the current
    /// ones (as `Vec::reserve`): a no-op when they already fit.
    fn reserve(&mut self, additional: usize) -> Result<(), NoMemory>;

    /// Appends `v` if it fits without allocating; gives it back otherwise.
    fn push_within_capacity(&mut self, v: T) -> Result<(), T>;

    /// Removes and returns the last element.
    fn pop(&mut self) -> Option<T>;

    /// Removes every element (the capacity stays).
    fn clear(&mut self);

    /// Number of elements.
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are no elements.
    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

#[cfg(feature = "alloc")]
impl<T> Store<T> for alloc::vec::Vec<T> {
    fn as_slice(&self) -> &[T] {
        self
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        self
    }

    fn spare(&self) -> usize {
        self.capacity() - self.len()
    }

    fn reserve(&mut self, additional: usize) -> Result<(), NoMemory> {
        self.try_reserve(additional).map_err(|_| NoMemory)
    }

    fn push_within_capacity(&mut self, v: T) -> Result<(), T> {
        if self.len() < self.capacity() {
            // Within the capacity: `push` does not allocate.
            self.push(v);
            Ok(())
        } else {
            Err(v)
        }
    }

    fn pop(&mut self) -> Option<T> {
        alloc::vec::Vec::pop(self)
    }

    fn clear(&mut self) {
        alloc::vec::Vec::clear(self)
    }
}
