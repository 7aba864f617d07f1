// SPDX-License-Identifier: GPL-2.0
//! The pure allocator algorithms, compiled from the very files the host crate
//! `rkalloc-core` (rust/core) tests with cargo.
//!
//! The module uses a subset of the host crate's API (the rest serves host
//! tests and tools), so unused items here are expected; its items are `pub` for the host
//! crate and reachable only inside the module here.
#![allow(dead_code, unreachable_pub)]

#[path = "../core/src/buddy.rs"]
pub(crate) mod buddy;
#[path = "../core/src/frag.rs"]
pub(crate) mod frag;
#[path = "../core/src/slab.rs"]
pub(crate) mod slab;
#[path = "../core/src/sizeclass.rs"]
pub(crate) mod sizeclass;
#[path = "../core/src/heap.rs"]
pub(crate) mod heap;
#[path = "../core/src/arena.rs"]
pub(crate) mod arena;
#[path = "../core/src/pattern.rs"]
pub(crate) mod pattern;
#[path = "../core/src/sort.rs"]
pub(crate) mod sort;
