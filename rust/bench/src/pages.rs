// SPDX-License-Identifier: GPL-2.0
//! Page allocators behind [`PageAllocator`]: rkalloc's buddy and its peers.

use core::alloc::Layout;
use core::ptr::NonNull;

use rkalloc_core::buddy::{meta_len, Buddy, PageMeta, MAX_ORDER};

use crate::bytes::Buf;
use crate::{PageAllocator, PAGE_MAX_ORDER, PAGE_POOL_CHUNKS, PAGE_POOL_PAGES};

/// Page size of the byte-addressed buddy heap.
const PAGE: usize = 4096;

/// rkalloc's buddy over `PAGE_POOL_CHUNKS` chunks, all online.
pub struct RkBuddy(Buddy<Vec<PageMeta>>);

impl RkBuddy {
    /// The pool of the page workload.
    pub fn new() -> RkBuddy {
        let len = meta_len(PAGE_POOL_CHUNKS).expect("pool size fits a buddy");
        let mut b = Buddy::new(vec![PageMeta::EMPTY; len]);
        for c in 0..PAGE_POOL_CHUNKS {
            b.add_chunk(c).expect("fresh chunk slot");
        }
        RkBuddy(b)
    }

    /// The allocator, for its own consistency check.
    pub fn buddy(&self) -> &Buddy<Vec<PageMeta>> {
        &self.0
    }
}

impl Default for RkBuddy {
    fn default() -> Self {
        Self::new()
    }
}

impl PageAllocator for RkBuddy {
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        self.0.alloc(order).ok().map(|pfn| pfn as usize)
    }

    #[inline]
    fn free(&mut self, pfn: usize, order: u32) {
        if let Err(e) = self.0.free(pfn as u32, order) {
            panic!("rkalloc buddy refused free({pfn:#x}, {order}): {e}");
        }
    }
}

/// `buddy_system_allocator::FrameAllocator` with the same largest order as
/// rkalloc (`ORDER` is the number of orders), over the same frames. Its free
/// lists are `BTreeSet`s, so every split, merge and pop is an O(log n) tree
/// operation that may allocate or free a tree node.
pub struct BsaFrame(buddy_system_allocator::FrameAllocator<{ MAX_ORDER as usize + 1 }>);

impl BsaFrame {
    /// The pool of the page workload.
    pub fn new() -> BsaFrame {
        let mut f = buddy_system_allocator::FrameAllocator::new();
        f.add_frame(0, PAGE_POOL_PAGES);
        BsaFrame(f)
    }
}

impl Default for BsaFrame {
    fn default() -> Self {
        Self::new()
    }
}

impl PageAllocator for BsaFrame {
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        self.0.alloc(1 << order)
    }

    #[inline]
    fn free(&mut self, pfn: usize, order: u32) {
        self.0.dealloc(pfn, 1 << order);
    }
}

/// `buddy_system_allocator::Heap`, the byte buddy with intrusive singly
/// linked free lists, over the same number of real 4 KiB pages; blocks are
/// named by address / 4096. Its merge removes the buddy from a singly linked
/// list by walking it: O(free blocks of that order).
pub struct BsaHeapPages {
    // Declared before `buf`, so it is dropped first.
    heap: buddy_system_allocator::Heap<23>,
    buf: Buf,
}

impl BsaHeapPages {
    /// The pool of the page workload, as real memory aligned like a chunk.
    pub fn new() -> BsaHeapPages {
        let buf = Buf::new(PAGE_POOL_PAGES * PAGE, PAGE << MAX_ORDER);
        let mut heap = buddy_system_allocator::Heap::new();
        // SAFETY: `buf` is memory nobody else uses, and it outlives `heap`
        // (field order).
        unsafe { heap.init(buf.start(), buf.len()) };
        BsaHeapPages { heap, buf }
    }

    /// The first pfn of the pool.
    pub fn base_pfn(&self) -> usize {
        self.buf.start() / PAGE
    }
}

impl Default for BsaHeapPages {
    fn default() -> Self {
        Self::new()
    }
}

fn page_layout(order: u32) -> Layout {
    // Page sizes up to 64 KiB with page alignment are always valid.
    Layout::from_size_align(PAGE << order, PAGE).unwrap_or(Layout::new::<u8>())
}

impl PageAllocator for BsaHeapPages {
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        let p = self.heap.alloc(page_layout(order)).ok()?;
        Some(p.as_ptr() as usize / PAGE)
    }

    #[inline]
    fn free(&mut self, pfn: usize, order: u32) {
        let p = NonNull::new((pfn * PAGE) as *mut u8).expect("pfn 0 is never handed out");
        // SAFETY: `p` was returned by `alloc(order)` with this same layout
        // and is freed once (the churn driver owns it).
        unsafe { self.heap.dealloc(p, page_layout(order)) };
    }
}

/// Not a buddy: a stack of fixed 16-page slots, so alloc and free are a pop
/// and a push. It gives the cost of the churn driver itself (trace, working
/// set, criterion's loop), which every row of the page workload includes.
pub struct Floor(Vec<usize>);

impl Floor {
    /// Slots over the pool of the page workload.
    pub fn new() -> Floor {
        let slot = 1 << PAGE_MAX_ORDER;
        Floor(
            (0..PAGE_POOL_PAGES / slot)
                .rev()
                .map(|s| s * slot)
                .collect(),
        )
    }
}

impl Default for Floor {
    fn default() -> Self {
        Self::new()
    }
}

impl PageAllocator for Floor {
    #[inline]
    fn alloc(&mut self, order: u32) -> Option<usize> {
        assert!(order <= PAGE_MAX_ORDER);
        self.0.pop()
    }

    #[inline]
    fn free(&mut self, pfn: usize, _order: u32) {
        self.0.push(pfn);
    }
}
