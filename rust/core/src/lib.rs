// SPDX-License-Identifier: GPL-2.0
//! rkalloc's pure allocator algorithms.
//!
//! Every module here is environment-free: no kernel types, no locks, no
//! allocation, no floating point. The kernel module includes the very same
//! files with `#[path]` (see `rust/kmod/rkalloc.rs`), so modules refer to
//! each other through `super::`, never `crate::`.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod arena;
pub mod buddy;
pub mod frag;
pub mod heap;
pub mod rng;
pub mod sizeclass;
pub mod slab;
