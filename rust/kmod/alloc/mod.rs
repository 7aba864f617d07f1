// SPDX-License-Identifier: GPL-2.0
//! One interface for every allocator, rkalloc's and the kernel's
//! ([`Allocator`], `api.rs`), one file per allocator, and the table that
//! lists them ([`Registry`], `registry.rs`). The benchmark, the replay, the
//! conformance suite (`conform.rs`, in KUnit and `RKALLOC_IOC_CONFORM`),
//! debugfs and rkctl all read the table, so an allocator added to it is
//! measured, replayed, checked and shown without another edit (see
//! `docs/extending.md`).

mod api;
pub(crate) mod conform;
mod registry;
#[cfg(rkalloc_kunit)]
mod tests;

pub(crate) use api::{Allocator, Class, Descriptor, Env};
#[cfg(rkalloc_kunit)]
pub(crate) use kmalloc::Kmalloc;
pub(crate) use registry::Registry;

/// Declares each allocator's file (`alloc/NAME.rs`) and lists its
/// `register` in [`TABLE`], in table order (an allocator's id is its
/// position, rkalloc's and the kernel's alike).
macro_rules! allocators {
    ($($name:ident),* $(,)?) => {
        $(pub(crate) mod $name;)*
        /// The allocator table's entries, in order.
        pub(crate) const TABLE: &[api::Register] = &[$($name::register),*];
    };
}

// The allocator table: one name per allocator file.
allocators!(rk_pool, pages, kmem_cache, kmalloc, vmalloc, kvmalloc, rk_slab, rk_malloc, rk_heap, rk_arena, rk_bitmap);
