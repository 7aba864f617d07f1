// SPDX-License-Identifier: GPL-2.0
//! Slab caches and kmalloc-style size classes on the page pool.
//!
//! The bookkeeping inside a slab (free list in the free objects, red zones,
//! poison, allocation bitmap) is the pure [`crate::rkcore::slab`]; this file
//! is its kernel glue, modelled on SLUB:
//!
//! - A **cache** ([`Cache`], `cache.rs`; slow paths in `refill.rs`,
//!   reclaim and the checker in `reclaim.rs`, figures in `stats.rs`) hands out objects of one size. Its slabs are
//!   `2^order` pool pages ([`Layout::order`] keeps the waste at or below 1/8,
//!   like SLUB's `calculate_order`), each with a small descriptor
//!   ([`lists::Slab`], `lists.rs`). Slabs sit on a partial, a full and an empty list under the
//!   cache's spinlock; up to [`Cache::keep_empty`] empty slabs stay, the rest
//!   go back to the pool at once, and [`Cache::shrink`] releases them all.
//! - **The fast path** is Bonwick's magazine layer (`magazine.rs`) (SLUB's sheaves and
//!   barn in 7.x): each CPU has a loaded and a spare magazine, a stack of
//!   object pointers. An alloc pops, a free pushes, with preemption
//!   disabled and no shared lock or atomic RMW. When both magazines are
//!   empty (or full) the CPU trades one, under the cache's lock, for a full
//!   (or empty) one of the cache's depot, the barn; only when the barn has
//!   none does it refill a magazine from the slabs (or flush one to them).
//!   So a working set of up to `BARN_MAX` magazines moves between CPUs and
//!   the barn a magazine at a time, without touching the slabs. Objects are
//!   not tied to a CPU: a free on another CPU lands in that CPU's magazine.
//! - **Owner lookup in O(1)**: every page of a slab carries
//!   `descriptor | TAG_SLAB` in its `struct page`'s `private` field, which
//!   belongs to whoever allocated the page (the pool takes its chunks from
//!   `alloc_pages` and never uses it). A large [`SizeClasses::malloc`]
//!   block carries its pool pfn and order instead ([`TAG_LARGE`]), so
//!   [`SizeClasses::free`] needs no size. There is no per-object header.
//! - **Debug caches** (any of [`Flags`]) bypass the per-CPU arrays, like
//!   SLUB debug, so that every free is checked against the slab at once:
//!   double and invalid frees, red zones, poison and corrupted free pointers
//!   are reported once with `pr_err` (cache name and object offset, never an
//!   address), counted, and the object is never handed out again.
//! - **Size classes** ([`SizeClasses`], `classes.rs`): 13 caches of 8 to 8192 bytes behind
//!   `rk_malloc`/`rk_free`; larger requests go to the pool directly.
//!
//! Lock order: registry mutex, then a cache's lock, then the pool's lock.
//! Everything here runs in process context; allocations may sleep (the pool
//! may grow), frees never do.

mod cache;
mod classes;
mod lists;
mod magazine;
mod reclaim;
mod refill;
mod stats;
#[cfg(rkalloc_kunit)]
mod tests;

pub(crate) use cache::Cache;
pub(crate) use classes::{Malloced, Object, Registry, SizeClasses};

use super::pool::{tag, Pool, PAGE_SIZE};
use crate::{
    rkcore::{
        sizeclass::{self, CLASSES, NR_CLASSES},
        slab::{Flags, Layout, SlabError, SlabState, MAX_OBJECT_SIZE},
    },
    sys::{self, fault, CpuGuard, PerCpuShared},
};
use core::{
    fmt,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
};
use kernel::{
    alloc::flags::{__GFP_NOWARN, GFP_NOWAIT},
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// Longest cache name, NUL excluded (the UAPI's `RKALLOC_NAME_LEN` - 1).
pub(crate) const NAME_MAX: usize = 31;

/// Capacity of a magazine; a power of two so that indexing is a mask (no
/// bounds check on the fast path). The sizes in use stay below it.
const MAG_CAP: usize = 128;
const MAG_MASK: usize = MAG_CAP - 1;

/// Full and empty magazines the barn holds at most, each (SLUB's
/// `MAX_FULL_SHEAVES`/`MAX_EMPTY_SHEAVES`).
const BARN_MAX: usize = 10;

/// Tag bits in `page->private` (descriptors are at least 8-byte aligned).
const TAG_MASK: usize = 0b111;
/// `private` = slab descriptor address | `TAG_SLAB`.
const TAG_SLAB: usize = 1;
/// `private` = `pfn << 8 | order << 3 | TAG_LARGE`: a large malloc block.
const TAG_LARGE: usize = 2;

/// Pages of the largest [`SizeClasses::malloc`] block (the pool's top order).
const LARGE_MAX_ORDER: u32 = crate::rkcore::buddy::MAX_ORDER;

/// Bumps a counter written by one CPU only: a plain load and store, no
/// locked RMW, while readers on other CPUs still see a whole value.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

/// A magazine: a stack of free objects of one cache.
///
/// # Invariants
///

use lists::{Lists, Slab, SlabList, Which};
use magazine::{magazine_size, no_magazine, Barn, CpuCache, Magazine};
use stats::Counters;
