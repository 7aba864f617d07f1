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
mod kmalloc;
mod kmem_cache;
mod kvmalloc;
mod pages;
mod registry;
mod rk_arena;
mod rk_bitmap;
pub(crate) mod rk_heap;
mod rk_malloc;
mod rk_pool;
mod rk_slab;
#[cfg(rkalloc_kunit)]
mod tests;
mod vmalloc;

pub(crate) use api::{Allocator, Class, Descriptor, Env};
pub(crate) use kmalloc::Kmalloc;
pub(crate) use registry::Registry;
