// SPDX-License-Identifier: GPL-2.0
//! `rk_bitmap`: a bitmap page allocator, the example of `docs/extending.md`.
//!
//! It takes one 4 MiB pool block when it is made and hands out runs of
//! whole pages from it, first fit: one bit per page, set while the page is
//! in use. A request of `n` pages scans the bitmap for `n` clear bits in a
//! row. Simple and slow on purpose (O(pages) per allocation): it shows how
//! a new allocator plugs into the table, and the table's benchmark puts its
//! cost next to the buddy pool's and `alloc_pages`'.
//!
//! Everything an allocator needs to appear in `rkctl bench`, `rkctl
//! replay`, `rkctl stress` (the conformance run), KUnit and
//! `/sys/kernel/debug/rkalloc/allocators` is in this file: the
//! [`Allocator`] impl and the [`Descriptor`] that [`register`] adds. The
//! table (`allocators!` in `mod.rs`) has one line for it.

use super::api::{Allocator, Class, Descriptor};
use crate::{
    mm::pool::{Block, Pool, PAGE_SIZE},
    rkcore::buddy::MAX_ORDER,
    sys::euclean,
};
use core::ptr::NonNull;
use kernel::{new_spinlock, prelude::*, str::CString, sync::{Arc, SpinLock}};

/// Pages of the one pool block it manages.
const PAGES: usize = 1 << MAX_ORDER;
/// Words of the bitmap.
const WORDS: usize = PAGES / 64;
/// Largest request: 4 pages (16 KiB). With 1024 pages in all, a batch of
/// 1024 single pages fits; bigger runs would not fill the benchmark's
/// batches.
const MAX_PAGES: usize = 4;

/// Registers `rk_bitmap`.
pub(super) fn register(add: &mut dyn FnMut(Descriptor) -> Result) -> Result {
    add(Descriptor {
        name: CString::try_from(c"rk_bitmap")?,
        class: Class::Pages,
        kernel: false,
        peer: Some(c"alloc_pages"),
        min_bytes: 1,
        max_bytes: MAX_PAGES * PAGE_SIZE,
        frees_all: false,
        own_frag: false,
        checked: true,
        policy: None,
        // Whole pages, exactly as many as asked for.
        granted: |size, _| size.next_multiple_of(PAGE_SIZE),
        make: |env, _, _| Ok(KBox::new(RkBitmap(Bitmap::new(env.pool)?), GFP_KERNEL)?),
    })
}

/// What the lock guards.
///
/// # Invariants
///
/// Bit `i` of `used` is set while page `i` of the block belongs to a live
/// allocation; `pages` is the number of set bits and `allocs` the number of
/// live allocations.
struct State {
    used: [u64; WORDS],
    pages: usize,
    allocs: u64,
}

impl State {
    /// The first run of `n` clear bits, if any.
    fn find(&self, n: usize) -> Option<usize> {
        let mut run = 0;
        for i in 0..PAGES {
            if self.used[i / 64] & (1 << (i % 64)) != 0 {
                run = 0;
                continue;
            }
            run += 1;
            if run == n {
                return Some(i + 1 - n);
            }
        }
        None
    }

    /// Sets (or clears) bits `start..start + n`.
    fn mark(&mut self, start: usize, n: usize, on: bool) {
        for i in start..start + n {
            if on {
                self.used[i / 64] |= 1 << (i % 64);
            } else {
                self.used[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    /// Whether every bit of `start..start + n` is set.
    fn all_set(&self, start: usize, n: usize) -> bool {
        (start..start + n).all(|i| self.used[i / 64] & (1 << (i % 64)) != 0)
    }
}

/// A bitmap allocator over one top-order pool block.
///
/// # Invariants
///
/// `block` is a 2^`MAX_ORDER`-page block of `pool` that this value alone
/// owns until drop gives it back.
#[pin_data(PinnedDrop)]
struct Bitmap {
    pool: Arc<Pool>,
    block: Block,
    #[pin]
    state: SpinLock<State>,
}

/// The allocator the table makes: the bitmap stays in place behind an
/// `Arc` (its lock must not move).
struct RkBitmap(Arc<Bitmap>);

impl Bitmap {
    /// A bitmap over a fresh top-order block of `pool`.
    fn new(pool: &Arc<Pool>) -> Result<Arc<Self>> {
        let block = pool.alloc(MAX_ORDER)?;
        let init = try_pin_init!(Bitmap {
            pool: pool.clone(),
            block,
            state <- new_spinlock!(State { used: [0; WORDS], pages: 0, allocs: 0 }, "rk_bitmap"),
        });
        Arc::pin_init(init, GFP_KERNEL).inspect_err(|_| {
            // Never handed to the bitmap: give it back here.
            let _ = pool.free(block.pfn, block.order);
        })
    }

    /// The page index of `p`, if `p` is a page of the block.
    fn page_of(&self, p: NonNull<u8>) -> Option<usize> {
        let off = (p.as_ptr() as usize).checked_sub(self.block.addr.as_ptr() as usize)?;
        (off % PAGE_SIZE == 0 && off < PAGES * PAGE_SIZE).then_some(off / PAGE_SIZE)
    }
}

impl Allocator for RkBitmap {
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        let n = size.div_ceil(PAGE_SIZE);
        if n == 0 || n > MAX_PAGES {
            return None;
        }
        let b = &*self.0;
        let mut st = b.state.lock();
        let start = st.find(n)?;
        st.mark(start, n, true);
        st.pages += n;
        st.allocs += 1;
        drop(st);
        // In the block: `start + n <= PAGES`.
        NonNull::new(b.block.addr.as_ptr().wrapping_add(start * PAGE_SIZE))
    }

    unsafe fn free(&self, p: NonNull<u8>, size: usize) {
        let n = size.div_ceil(PAGE_SIZE);
        let Some(start) = self.0.page_of(p) else { return };
        let mut st = self.0.state.lock();
        // A free of pages not in use is ignored, not trusted.
        if n == 0 || start + n > PAGES || !st.all_set(start, n) {
            return;
        }
        st.mark(start, n, false);
        st.pages -= n;
        st.allocs -= 1;
    }

    fn check(&self) -> Result {
        let st = self.0.state.lock();
        let set: u32 = st.used.iter().map(|w| w.count_ones()).sum();
        if set as usize != st.pages {
            pr_err!("rk_bitmap: {} pages marked, {} counted\n", set, st.pages);
            return Err(euclean());
        }
        Ok(())
    }

    fn live(&self) -> Option<u64> {
        Some(self.0.state.lock().allocs)
    }
}

#[pinned_drop]
impl PinnedDrop for Bitmap {
    fn drop(self: Pin<&mut Self>) {
        // The block goes back whole; allocations still live die with it.
        let _ = self.pool.free(self.block.pfn, self.block.order);
    }
}
