// SPDX-License-Identifier: GPL-2.0
//! Fit policies: how a heap chooses the free block a request is carved
//! from, and how it keeps its free blocks to choose from.
//!
//! A policy is one type implementing [`FitPolicy`], in one file of this
//! folder, registered with one line in the `policies!` table below. The
//! table makes [`Policy`] (the policies' ids, names and count, for the
//! kernel glue and reports) and the heap's dispatch: a heap matches on its
//! policy once per operation and runs code compiled for that policy alone
//! (no dynamic call, no policy test inside an operation).
//!
//! Everything else is shared ([`super::blocks`], and `ops.rs`): the block
//! layout, splitting, coalescing, regions, validation, statistics and the
//! check values. A policy owns its list heads and whatever else it keeps
//! (next fit's roving pointer, segregated fit's bitmap), and changes its
//! lists only through [`BlocksMut::push`], [`BlocksMut::link_after`] and
//! [`BlocksMut::unlink`]. Policies that keep all free blocks on one list use
//! [`OneList`] and differ only in [`FitPolicy::find`].

use super::blocks::{
    corrupt, largest_on, Blocks, BlocksMut, FreeBlock, Links, ListCheck, RegionMem, Regions,
};
use super::layout::{ALIGN32, NIL};
use super::stats::{inconsistent, Invariant};
use super::{fast, ops};
use super::{HeapError, HeapFlags, Ptr};

/// One way of choosing free blocks, with the state it keeps.
///
/// The heap calls `find` for every allocation, then either [`shrink`]
/// (the block is split: the request is carved from its tail, the remainder
/// keeps its offset) or [`remove`] (the block is handed out whole). A free
/// takes the freed block's free neighbours off the lists with `remove` and
/// [`insert`]s the merged block. Every method may fail only with
/// [`HeapError::CorruptTag`], for metadata it found damaged.
///
/// [`shrink`]: FitPolicy::shrink
/// [`remove`]: FitPolicy::remove
/// [`insert`]: FitPolicy::insert
pub trait FitPolicy: Sized {
    /// The name in reports and debugfs, such as `"first-fit"`.
    const NAME: &'static str;
    /// The short name for command lines, such as `"first"`.
    const SHORT: &'static str;

    /// The state of an empty heap with options `flags`.
    fn new(flags: HeapFlags) -> Self;

    /// The free block to carve a block of `n` bytes from (at least `n`
    /// bytes large), or `None` if no free block fits. Counts the blocks it
    /// examines with [`BlocksMut::searched`].
    fn find(&mut self, h: &mut impl BlocksMut, n: u32) -> Result<Option<FreeBlock>, HeapError>;

    /// Puts free block `f` on the lists (its tags are written). `near`: the
    /// links of the free block `f` replaces, if any (a free neighbour that
    /// `f` absorbed, just removed; or `f` itself before it shrank), which
    /// is `f`'s place in address order.
    fn insert(
        &mut self,
        h: &mut impl BlocksMut,
        f: FreeBlock,
        near: Option<Links>,
    ) -> Result<(), HeapError>;

    /// Takes free block `f` off the lists; returns the links it had.
    fn remove(&mut self, h: &mut impl BlocksMut, f: FreeBlock) -> Result<Links, HeapError>;

    /// Free block `f` shrinks in place to `size` bytes (its tags are
    /// rewritten afterwards). By default it is removed and inserted again
    /// at its place; a policy whose lists do not depend on sizes keeps it
    /// where it is.
    #[inline(always)]
    fn shrink(&mut self, h: &mut impl BlocksMut, f: FreeBlock, size: u32) -> Result<(), HeapError> {
        let near = self.remove(h, f)?;
        self.insert(h, FreeBlock { size, ..f }, Some(near))
    }

    /// Checks the policy's lists for the heap's check, with
    /// [`ListCheck::list`] on each, and its own state.
    fn check(&self, h: &impl Blocks, lists: &mut ListCheck) -> Result<(), HeapError>;

    /// Payload bytes of the largest free block (a damaged list ends the
    /// search early).
    fn largest_free(&self, h: &impl Blocks) -> usize;
}

/// The [`FitPolicy`] methods of a policy that keeps every free block on
/// one [`OneList`] (its field `.0`) and differs only in `find`: insert,
/// remove and the checks delegate to the list, and a shrunk block keeps
/// its offset, hence its place in address order.
macro_rules! one_list_rest {
    () => {
        #[inline(always)]
        fn insert(
            &mut self,
            h: &mut impl BlocksMut,
            f: FreeBlock,
            near: Option<Links>,
        ) -> Result<(), HeapError> {
            self.0.insert(h, f, near)
        }

        #[inline(always)]
        fn remove(&mut self, h: &mut impl BlocksMut, f: FreeBlock) -> Result<Links, HeapError> {
            self.0.remove(h, f)
        }

        /// A shrunk block keeps its offset, so its place in address order.
        #[inline(always)]
        fn shrink(&mut self, _: &mut impl BlocksMut, _: FreeBlock, _: u32) -> Result<(), HeapError> {
            Ok(())
        }

        fn check(&self, h: &impl Blocks, lists: &mut ListCheck) -> Result<(), HeapError> {
            self.0.check(h, lists)
        }

        fn largest_free(&self, h: &impl Blocks) -> usize {
            self.0.largest_free(h)
        }
    };
}
pub(super) use one_list_rest;

/// The table of policies: one line per policy, `file::Type`, in the order
/// of their ids. It declares the files, and makes [`Policy`] and the
/// heap's dispatch ([`Fit`]).
macro_rules! policies {
    ($($file:ident :: $ty:ident),+ $(,)?) => {
        $(
            mod $file;
            pub use $file::$ty;
        )+

        /// A fit policy, by id: the index in the table (the kernel's
        /// policy table and `RKALLOC_IOC_ALLOCATORS` use it).
        // The variants are the policies' type names. `allow`, not `expect`:
        // clippy spares the enum where it is public API (the host crate)
        // and not in the module.
        #[allow(clippy::enum_variant_names)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Policy {
            $(
                #[doc = concat!("[`", stringify!($ty), "`]")]
                $ty,
            )+
        }

        impl Policy {
            /// Every policy, in id order.
            pub const ALL: [Policy; Policy::COUNT] = [$(Policy::$ty),+];

            /// How many policies there are.
            pub const COUNT: usize = [$(stringify!($ty)),+].len();

            /// The policy with id `index`, if there is one.
            pub const fn from_index(index: usize) -> Option<Policy> {
                if index < Self::COUNT {
                    Some(Self::ALL[index])
                } else {
                    None
                }
            }

            /// The policy's id: its index in the table.
            pub const fn index(self) -> usize {
                self as usize
            }

            /// The name in reports and debugfs, such as `"first-fit"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Policy::$ty => <$ty as FitPolicy>::NAME,)+
                }
            }

            /// The short name for command lines, such as `"first"`.
            pub const fn short_name(self) -> &'static str {
                match self {
                    $(Policy::$ty => <$ty as FitPolicy>::SHORT,)+
                }
            }

            /// The policy whose name or short name is `name`.
            pub fn from_name(name: &str) -> Option<Policy> {
                Self::ALL
                    .into_iter()
                    .find(|p| p.name() == name || p.short_name() == name)
            }
        }

        /// A heap's policy state: one variant per policy. It lives inline in
        /// the heap, which cannot allocate, so the largest variant sets its
        /// size (segregated fit's class heads, under 1 KiB); the variants
        /// are named after the policies' types.
        #[expect(clippy::large_enum_variant, clippy::enum_variant_names)]
        pub(super) enum Fit {
            $($ty($ty),)+
        }

        impl Fit {
            /// The state of an empty heap of `policy` with `flags`.
            pub(super) fn new(policy: Policy, flags: HeapFlags) -> Fit {
                match policy {
                    $(Policy::$ty => Fit::$ty(<$ty as FitPolicy>::new(flags)),)+
                }
            }

            /// Which policy this is.
            pub(super) fn policy(&self) -> Policy {
                match self {
                    $(Fit::$ty(_) => Policy::$ty,)+
                }
            }

            /// [`ops::alloc`] under this policy.
            #[inline(always)]
            pub(super) fn alloc<M: RegionMem>(
                &mut self,
                regions: &mut Regions<M>,
                n: u32,
                size: usize,
            ) -> Result<Ptr, HeapError> {
                let debug = regions.debug;
                match self {
                    $(Fit::$ty(p) => if debug {
                        ops::alloc(&mut regions.op::<true>(), p, n, size)
                    } else {
                        fast::alloc(regions, p, n, size)
                    },)+
                }
            }

            /// [`ops::free`] under this policy: whether the region is now
            /// wholly free.
            #[inline(always)]
            pub(super) fn free<M: RegionMem>(
                &mut self,
                regions: &mut Regions<M>,
                ptr: Ptr,
            ) -> Result<bool, HeapError> {
                let debug = regions.debug;
                match self {
                    $(Fit::$ty(p) => if debug {
                        ops::free(&mut regions.op::<true>(), p, ptr)
                    } else {
                        fast::free(regions, p, ptr)
                    },)+
                }
            }

            /// [`ops::add_region`] under this policy, in free slot `r`.
            pub(super) fn add_region<M: RegionMem>(
                &mut self,
                regions: &mut Regions<M>,
                r: u32,
                mem: M,
            ) -> Result<(), HeapError> {
                let debug = regions.debug;
                match self {
                    $(Fit::$ty(p) => if debug {
                        ops::add_region::<M, $ty, true>(regions, p, r, mem)
                    } else {
                        ops::add_region::<M, $ty, false>(regions, p, r, mem)
                    },)+
                }
            }

            /// [`ops::remove_region`] under this policy.
            pub(super) fn remove_region<M: RegionMem>(
                &mut self,
                regions: &mut Regions<M>,
                r: u32,
            ) -> Result<Option<M>, HeapError> {
                let debug = regions.debug;
                match self {
                    $(Fit::$ty(p) => if debug {
                        ops::remove_region::<M, $ty, true>(regions, p, r)
                    } else {
                        ops::remove_region::<M, $ty, false>(regions, p, r)
                    },)+
                }
            }

            /// [`FitPolicy::check`] of this policy.
            pub(super) fn check<M: RegionMem>(
                &self,
                h: &Regions<M>,
                lists: &mut ListCheck,
            ) -> Result<(), HeapError> {
                let h = &h.view();
                match self {
                    $(Fit::$ty(p) => p.check(h, lists),)+
                }
            }

            /// [`FitPolicy::largest_free`] of this policy.
            pub(super) fn largest_free<M: RegionMem>(&self, h: &Regions<M>) -> usize {
                let h = &h.view();
                match self {
                    $(Fit::$ty(p) => p.largest_free(h),)+
                }
            }
        }
    };
}

policies! {
    first_fit::FirstFit,
    next_fit::NextFit,
    best_fit::BestFit,
    segregated_fit::SegregatedFit,
    worst_fit::WorstFit,
}

/// All free blocks on one doubly linked list, in address order (region
/// index, then offset) unless the heap has [`HeapFlags::LIFO`], which
/// pushes freed blocks at the head instead.
///
/// Address order is the classic form of first fit and is known to fragment
/// little (Johnstone and Wilson, 1998); it gives next fit's roving pointer
/// and best fit's ties a meaning. A block merged with a free neighbour
/// takes that neighbour's place, which is already its place in address
/// order, so only a free without a free neighbour walks the list to its
/// insertion point (counted in the insertion steps).
#[derive(Debug)]
pub struct OneList {
    /// The first free block, or `NIL`.
    pub head: u64,
    /// Whether the list is kept in address order.
    pub ordered: bool,
}

impl OneList {
    /// An empty list for a heap with `flags`.
    pub const fn new(flags: HeapFlags) -> OneList {
        OneList {
            head: NIL,
            ordered: !flags.contains(HeapFlags::LIFO),
        }
    }

    /// [`FitPolicy::insert`]: at `near`'s place, or at the insertion point
    /// in address order found by a walk, or at the head if unordered.
    #[inline(always)]
    pub fn insert(
        &mut self,
        h: &mut impl BlocksMut,
        f: FreeBlock,
        near: Option<Links>,
    ) -> Result<(), HeapError> {
        if !self.ordered {
            return h.push(&mut self.head, f);
        }
        let pred = match near {
            Some(links) => links.prev,
            None => h.pred_in_order(self.head, f.key())?,
        };
        h.link_after(&mut self.head, pred, f)
    }

    /// [`FitPolicy::remove`].
    #[inline(always)]
    pub fn remove(&mut self, h: &mut impl BlocksMut, f: FreeBlock) -> Result<Links, HeapError> {
        h.unlink(&mut self.head, f)
    }

    /// [`FitPolicy::check`]: one list, in address order unless LIFO.
    pub fn check(&self, h: &impl Blocks, lists: &mut ListCheck) -> Result<(), HeapError> {
        lists.list(h, self.head, self.ordered, |_| true)
    }

    /// [`FitPolicy::largest_free`]: a walk of the whole list.
    pub fn largest_free(&self, h: &impl Blocks) -> usize {
        largest_on(h, self.head)
    }
}
