// SPDX-License-Identifier: GPL-2.0
//! The pure allocator algorithms, compiled from the very files the host crate
//! `rkalloc-core` (rust/core) tests with cargo, and the one piece of glue
//! they need: [`store::Store`] for the kernel's `KVVec`, so that the handle
//! table and the trace checks grow in kernel memory.
//!
//! The module uses a subset of the host crate's API (the rest serves host
//! tests and tools), so unused items here are expected; its items are `pub`
//! for the host crate and reachable only inside the module here.
#![allow(dead_code, unreachable_pub)]

use kernel::prelude::*;

#[path = "../core/src/arena.rs"]
pub(crate) mod arena;
#[path = "../core/src/buddy.rs"]
pub(crate) mod buddy;
#[path = "../core/src/frag.rs"]
pub(crate) mod frag;
#[path = "../core/src/handles.rs"]
pub(crate) mod handles;
#[path = "../core/src/heap/mod.rs"]
pub(crate) mod heap;
#[path = "../core/src/page.rs"]
pub(crate) mod page;
#[path = "../core/src/pattern.rs"]
pub(crate) mod pattern;
#[path = "../core/src/replay.rs"]
pub(crate) mod replay;
#[path = "../core/src/rng.rs"]
pub(crate) mod rng;
#[path = "../core/src/sizeclass.rs"]
pub(crate) mod sizeclass;
#[path = "../core/src/slab.rs"]
pub(crate) mod slab;
#[path = "../core/src/sort.rs"]
pub(crate) mod sort;
#[path = "../core/src/store.rs"]
pub(crate) mod store;

impl<T> store::Store<T> for KVVec<T> {
    fn as_slice(&self) -> &[T] {
        self
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        self
    }

    fn spare(&self) -> usize {
        self.capacity() - self.len()
    }

    fn reserve(&mut self, additional: usize) -> core::result::Result<(), store::NoMemory> {
        KVVec::reserve(self, additional, GFP_KERNEL).map_err(|_| store::NoMemory)
    }

    fn push_within_capacity(&mut self, v: T) -> core::result::Result<(), T> {
        KVVec::push_within_capacity(self, v).map_err(|e| e.0)
    }

    fn pop(&mut self) -> Option<T> {
        KVVec::pop(self)
    }

    fn clear(&mut self) {
        KVVec::clear(self)
    }
}
