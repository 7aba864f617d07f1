// SPDX-License-Identifier: GPL-2.0
//! The pure allocator algorithms, compiled from the very files the host crate
//! `rkalloc-core` (rust/core) tests with cargo.

#[path = "../core/src/buddy.rs"]
pub mod buddy;
#[path = "../core/src/frag.rs"]
pub mod frag;
#[path = "../core/src/heap.rs"]
pub mod heap;
#[path = "../core/src/arena.rs"]
pub mod arena;
