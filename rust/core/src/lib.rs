// SPDX-License-Identifier: GPL-2.0
//! rkalloc's pure allocator algorithms.
//!
//! Every module here is environment-free: no kernel types, no locks, no
//! allocation, no floating point. What must grow (the handle table, a
//! checked trace) grows in storage the caller provides ([`store::Store`]);
//! the `alloc` feature (on by default; the kernel does not build with
//! Cargo and never sees it) implements that for `Vec`. The kernel module
//! includes the very same files with `#[path]` (see `rust/kmod/rkcore.rs`),
//! so modules refer to each other through `super::`, never `crate::`.
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod arena;
pub mod buddy;
pub mod frag;
pub mod handles;
pub mod heap;
pub mod page;
pub mod pattern;
pub mod replay;
pub mod rng;
pub mod sizeclass;
pub mod slab;
pub mod sort;
pub mod store;
