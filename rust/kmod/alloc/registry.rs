// SPDX-License-Identifier: GPL-2.0
//! The allocator table: every allocator of the module, rkalloc's and the
//! kernel's, in one list whose index is the allocator's id in the UAPI
//! (`RKALLOC_IOC_ALLOCATORS`, `/sys/kernel/debug/rkalloc/allocators`).
//!
//! Adding an allocator is one file in this folder, with a `register`
//! function, and one line in [`TABLE`]: it then appears in the benchmark,
//! the replay, the conformance suite (KUnit and `rkctl stress`), debugfs
//! and rkctl, with no other edit. A new fit policy needs not even that: the
//! heap entry registers one allocator per policy of the core's table.

use super::{
    api::Descriptor, kmalloc, kmem_cache, kvmalloc, pages, rk_arena, rk_bitmap, rk_heap, rk_malloc, rk_pool, rk_slab,
    vmalloc,
};
use kernel::prelude::*;

/// The allocators, in table order; each adds its entries.
const TABLE: &[fn(&mut Registry) -> Result] = &[
    rk_pool::register,
    pages::register,
    kmem_cache::register,
    kmalloc::register,
    vmalloc::register,
    kvmalloc::register,
    rk_slab::register,
    rk_malloc::register,
    rk_heap::register,
    rk_arena::register,
    rk_bitmap::register,
];

/// The table, built once at load.
pub(crate) struct Registry {
    list: KVec<Descriptor>,
}

impl Registry {
    /// Builds the table.
    pub(crate) fn new() -> Result<Self> {
        let mut r = Self { list: KVec::new() };
        for register in TABLE {
            register(&mut r)?;
        }
        Ok(r)
    }

    /// Adds one allocator (from a `register` function).
    pub(crate) fn add(&mut self, d: Descriptor) -> Result {
        self.list.push(d, GFP_KERNEL)?;
        Ok(())
    }

    /// The allocator with id `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&Descriptor> {
        self.list.get(id as usize)
    }

    /// Every allocator, with its id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Descriptor)> {
        self.list.iter().enumerate().map(|(i, d)| (i as u32, d))
    }

    /// Number of allocators.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
}
