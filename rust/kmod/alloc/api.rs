// SPDX-License-Identifier: GPL-2.0
//! The one interface every allocator implements, rkalloc's and the
//! kernel's, and the descriptor that publishes it in the table
//! (`super::registry`).

use crate::{
    mm::{pool::Pool, slab::SizeClasses},
    rkcore::frag::FragReport,
    sys::KmemCache,
};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString, sync::Arc};

/// An allocator as the benchmark, the replay and the conformance runs see
/// it.
///
/// `alloc(size)` returns at least `size` usable bytes or `None`;
/// `free(p, size)` takes the same `size` back. An allocator refuses (with
/// `None`) a size outside its descriptor's range; callers check the range
/// first, so that no request reaches a kernel allocator that would warn.
pub(crate) trait Allocator: Send + Sync {
    /// Allocates `size` bytes.
    fn alloc(&self, size: usize) -> Option<NonNull<u8>>;
    /// Frees what `alloc(size)` returned.
    ///
    /// # Safety
    ///
    /// `p` came from `self.alloc(size)` and is not used afterwards.
    unsafe fn free(&self, p: NonNull<u8>, size: usize);
    /// Fragmentation figures, where the allocator can tell (and the
    /// instance is private to the run, so they are the run's own).
    fn frag(&self) -> Option<FragReport> {
        None
    }
    /// Frees every allocation at once: for an allocator that frees only all
    /// at once ([`Descriptor::frees_all`]), whose `free` does nothing.
    fn reset(&self) {}
    /// Runs the allocator's invariant checker, if it has one
    /// ([`Descriptor::checked`]); EUCLEAN on a violation.
    fn check(&self) -> Result {
        Ok(())
    }
    /// Live allocations as the allocator counts them, where the instance is
    /// private to the run (so the count is exact): the conformance run
    /// checks that its own count and the allocator's add up.
    fn live(&self) -> Option<u64> {
        None
    }
}

/// What an allocator serves, as the UAPI's `RKALLOC_CLASS_*` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Blocks of 2^order pages; a size rounds up to an order.
    Pages,
    /// A cache of one object size: an instance is made for the largest size
    /// of a run and serves up to it.
    Objects,
    /// Any size in its range, kmalloc-style.
    Malloc,
    /// Variable blocks in regions, found by a fit policy.
    Heap,
    /// Bump allocation, freed all at once.
    Arena,
}

/// What an allocator's constructor may use: the module's pool, size
/// classes and long-lived SLUB peer (or a KUnit suite's private ones).
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    /// The page pool.
    pub(crate) pool: &'a Arc<Pool>,
    /// `rk_malloc`'s size classes.
    pub(crate) classes: &'a SizeClasses,
    /// The 64-byte SLUB cache that lives as long as the module.
    pub(crate) peer64: &'a KmemCache,
}

/// Makes an allocator of descriptor `d` for requests of up to `max` bytes
/// (`d.min_bytes <= max <= d.max_bytes`, checked by the caller).
/// An instance that holds kernel locks (which must stay in place) keeps
/// them behind an `Arc` or a pinned box of its own (see `rk_bitmap.rs`).
pub(crate) type Make = for<'a> fn(env: Env<'a>, d: &Descriptor, max: usize) -> Result<KBox<dyn Allocator + 'a>>;

/// One entry of the allocator table.
pub(crate) struct Descriptor {
    /// The allocator's name in reports, debugfs, rkctl and its trace
    /// events ("rk_pool").
    pub(crate) name: CString,
    /// What it serves.
    pub(crate) class: Class,
    /// The kernel's own allocator (a peer), not rkalloc's.
    pub(crate) kernel: bool,
    /// The kernel allocator rkalloc's is compared with, if any.
    pub(crate) peer: Option<&'static CStr>,
    /// Smallest request it serves.
    pub(crate) min_bytes: usize,
    /// Largest request it serves.
    pub(crate) max_bytes: usize,
    /// Frees only all at once ([`Allocator::reset`]).
    pub(crate) frees_all: bool,
    /// Reports its own fragmentation ([`Allocator::frag`]).
    pub(crate) own_frag: bool,
    /// Has an invariant checker ([`Allocator::check`]).
    pub(crate) checked: bool,
    /// For heaps: the fit policy's index and name.
    pub(crate) policy: Option<(u32, CString)>,
    /// Bytes it hands out for a request of `size` in a run whose largest
    /// request is `max`: what a replay counts as its footprint when the
    /// allocator cannot report one.
    pub(crate) granted: fn(size: usize, max: usize) -> usize,
    /// Its constructor.
    pub(crate) make: Make,
}

impl Descriptor {
    /// The name as text (for the kernel log and debugfs).
    pub(crate) fn name(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }

    /// Whether it serves a request of `size` bytes.
    pub(crate) fn serves(&self, size: usize) -> bool {
        (self.min_bytes..=self.max_bytes).contains(&size)
    }

    /// Makes an instance for requests of up to `max` bytes; EINVAL for a
    /// size outside the range (nothing is made).
    pub(crate) fn make<'a>(&self, env: Env<'a>, max: usize) -> Result<KBox<dyn Allocator + 'a>> {
        if !self.serves(max) {
            return Err(EINVAL);
        }
        (self.make)(env, self, max)
    }
}

/// `granted` for allocators that hand out exactly what is asked.
pub(crate) fn granted_exact(size: usize, _max: usize) -> usize {
    size
}
