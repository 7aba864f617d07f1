// SPDX-License-Identifier: GPL-2.0
//! The allocator table: every allocator of the module, rkalloc's and the
//! kernel's, in one list whose index is the allocator's id in the UAPI
//! (`RKALLOC_IOC_ALLOCATORS`, `/sys/kernel/debug/rkalloc/allocators`).
//!
//! The list itself is the `allocators!` line in `mod.rs`: adding an
//! allocator is one file in this folder, with a `register` function, and
//! its name on that line. It then appears in the benchmark, the replay, the
//! conformance suite (KUnit and `rkctl stress`), debugfs and rkctl, with no
//! other edit. A new fit policy needs not even that: the heap entry
//! registers one allocator per policy of the core's table.

use super::api::{Descriptor, Register};
use kernel::prelude::*;

/// The table, built once at load.
pub(crate) struct Registry {
    list: KVec<Descriptor>,
}

impl Registry {
    /// Builds the table from the allocators' `register` functions, in
    /// order: each adds its entries.
    pub(crate) fn new(table: &[Register]) -> Result<Self> {
        let mut list = KVec::new();
        for register in table {
            register(&mut |d| {
                list.push(d, GFP_KERNEL)?;
                Ok(())
            })?;
        }
        Ok(Self { list })
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
