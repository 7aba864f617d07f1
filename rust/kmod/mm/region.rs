// SPDX-License-Identifier: GPL-2.0
//! A region: a pool block lent whole to a heap or an arena, and the rules
//! by which heaps and arenas grow (shared by both, so that neither imports
//! the other).

use super::pool::{tag, Block, Pool, PAGE_SIZE};
pub(crate) use crate::rkcore::page::order_for;
use crate::rkcore::buddy::MAX_ORDER;
use core::ptr::NonNull;
use kernel::{prelude::*, sync::Arc};

/// Largest request a heap or an arena serves: 1 MiB (the header's
/// `RKALLOC_MAX_HEAP_ALLOC`, asserted equal in `iface::uapi`). Not the
/// core heap's `max_alloc_in` limit, which is what one region could hold.
pub(crate) const MAX_REQUEST: usize = 1 << 20;

/// Smallest region a heap or arena grows by: 64 KiB.
pub(crate) const MIN_GROW_ORDER: u32 = 4;

/// Bytes of the largest region: one top-order pool block.
pub(crate) const MAX_REGION: usize = PAGE_SIZE << MAX_ORDER;

/// Region slots of a heap or arena.
pub(crate) const REGIONS: usize = crate::rkcore::heap::MAX_REGIONS;

/// Most bytes a heap may be created with: every region slot a top-order
/// block.
pub(crate) const MAX_INITIAL: u64 = (REGIONS * MAX_REGION) as u64;

/// A pool block lent to a heap or an arena as one region.
///
/// # Invariants
///
/// `block` was allocated from `pool` and belongs to this value alone: no one
/// else reads or writes its `block.bytes()` bytes, which stay allocated
/// until `drop` gives them back to `pool`, exactly once.
pub(crate) struct PoolRegion {
    pool: Arc<Pool>,
    block: Block,
}

impl PoolRegion {
    /// Takes a block of 2^`order` pages from `pool` for a heap.
    pub(crate) fn new(pool: &Arc<Pool>, order: u32) -> Result<Self> {
        Self::tagged(pool, order, tag::HEAP)
    }

    /// Takes a block of 2^`order` pages from `pool` for the owner class
    /// `tag` (a [`tag`] constant).
    pub(crate) fn tagged(pool: &Arc<Pool>, order: u32, tag: u8) -> Result<Self> {
        let block = pool.alloc_tagged(order, tag)?;
        // INVARIANT: the pool hands a block to one caller only.
        Ok(Self {
            pool: pool.clone(),
            block,
        })
    }

    /// Size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.block.bytes()
    }

    /// Kernel address of the first byte.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.block.addr
    }
}

impl AsRef<[u8]> for PoolRegion {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the block is `bytes()` bytes of pool memory in the kernel's
        // linear map, owned by `self` alone and allocated while `self` lives
        // (type invariant); `&self` excludes writers for the borrow.
        unsafe { core::slice::from_raw_parts(self.block.addr.as_ptr(), self.block.bytes()) }
    }
}

impl AsMut<[u8]> for PoolRegion {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.block.addr.as_ptr(), self.block.bytes()) }
    }
}

impl Drop for PoolRegion {
    fn drop(&mut self) {
        // The pool refuses only a block it did not hand out, which the type
        // invariant rules out; should it happen, leaking is the safe answer.
        if self.pool.free(self.block.pfn, self.block.order).is_err() {
            pr_err!(
                "region of order {} refused by the pool\n",
                self.block.order
            );
        }
    }
}

/// The order of the region to grow by, for a request that needs a region of
/// order `need` at least, when the allocator holds `held` bytes and may take
/// `budget` more.
///
/// Growth is geometric (the new region is as large as all that is held,
/// within 64 KiB and 4 MiB), so that the 32 region slots last; when the
/// budget is tight, the smallest region that serves the request is taken.
pub(crate) fn grow_order(need: u32, held: u64, budget: u64) -> Option<u32> {
    let want = usize::try_from(held)
        .unwrap_or(MAX_REGION)
        .clamp(PAGE_SIZE << MIN_GROW_ORDER, MAX_REGION);
    let order = order_for(want)?.max(need);
    if (PAGE_SIZE as u64) << order <= budget {
        Some(order)
    } else if (PAGE_SIZE as u64) << need <= budget {
        Some(need)
    } else {
        None
    }
}

