// SPDX-License-Identifier: GPL-2.0
//! Byte heaps behind [`ByteAllocator`]: rkalloc's heap (every policy), its
//! slab, and the crates.io peers. Each owns one [`Buf`] of the same size.
//!
//! slabmalloc 0.11 builds on stable only without its default `unstable`
//! feature. It is a slab allocator whose objects above 256 bytes come from
//! 2 MiB `LargeObjectPage`s, one or more per size class, so it cannot serve
//! the mixed-size workload from the same 2 MiB; it takes part in the hot
//! 64-byte pair only, next to rkalloc's own slab.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::rc::Rc;

use rkalloc_core::heap::{Heap, HeapFlags, Policy, MAX_REGIONS};
use rkalloc_core::slab::{self, SlabState};
use slabmalloc::{AllocablePage, Allocator as _, ObjectPage, ZoneAllocator};
use talc::base::Talc;
use talc::source::Manual;
use talc::DefaultBinning;

use crate::{ByteAllocator, ALIGN, BYTE_POOL, HOT_SIZE};

/// Memory from the system allocator, aligned, pre-faulted and freed on drop.
pub struct Buf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Buf {
    /// `len` bytes aligned to `align`, all written once so that no page
    /// fault lands inside a measurement.
    pub fn new(len: usize, align: usize) -> Buf {
        let layout = Layout::from_size_align(len, align).expect("valid buffer layout");
        assert!(len > 0);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: `ptr` is valid for `len` bytes of writes.
        unsafe { ptr.as_ptr().write_bytes(0, len) };
        Buf { ptr, layout }
    }

    /// The first byte's address.
    pub fn start(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Whether the buffer is empty (never: `new` refuses that).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[start, end)`.
    pub fn span(&self) -> (usize, usize) {
        (self.start(), self.start() + self.len())
    }

    /// The whole buffer as a raw slice pointer.
    pub fn as_nonnull_slice(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len())
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `alloc` with this very layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised bytes (written in
        // `new`) for as long as `self` lives, and `&self` excludes writers.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }
}

impl AsMut<[u8]> for Buf {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }
}

// SAFETY: `Buf` owns its memory exclusively, like a `Box<[u8]>`.
unsafe impl Send for Buf {}

/// `len` bytes at offset `off` of a shared [`Buf`], as one region of an
/// rkalloc heap.
///
/// # Invariants
///
/// `[ptr, ptr + len)` lies inside the buffer `_whole` keeps alive, and no
/// other `Part` of it overlaps this one, so a `Part` is the only way to its
/// bytes, like a `Box<[u8]>`.
pub struct Part {
    ptr: NonNull<u8>,
    len: usize,
    _whole: Rc<Buf>,
}

impl Part {
    /// Cuts `[BYTE_POOL / n * i, BYTE_POOL / n * (i + 1))` for `i < n` out
    /// of `whole`.
    fn cut(whole: &Rc<Buf>, n: usize) -> impl Iterator<Item = Part> + '_ {
        let len = whole.len() / n;
        (0..n).map(move |i| Part {
            // In bounds: (i + 1) * len <= whole.len().
            ptr: NonNull::new(whole.ptr.as_ptr().wrapping_add(i * len)).expect("non-null part"),
            len,
            // INVARIANT: the parts are disjoint slices of `whole`.
            _whole: whole.clone(),
        })
    }

    /// The first byte's address.
    pub fn start(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` initialised bytes of the buffer
        // `_whole` keeps alive, which only this part reaches (type
        // invariant); `&self` excludes writers for the borrow.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl AsMut<[u8]> for Part {
    fn as_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_ref`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

fn layout(size: usize) -> Layout {
    // Sizes are below 4096 and ALIGN is a power of two: always valid.
    Layout::from_size_align(size, ALIGN).unwrap_or(Layout::new::<u128>())
}

/// rkalloc's heap over [`BYTE_POOL`] bytes in one region (or several),
/// used by address as the peers are: an allocation's address is its
/// region's plus the offset (as the kernel glue makes it), and a free goes
/// by address through the heap's region lookup ([`Heap::free_addr`]).
pub struct RkHeap {
    heap: Heap<Part>,
    /// The first byte of each region, by region index.
    bases: [usize; MAX_REGIONS],
    span: (usize, usize),
}

impl RkHeap {
    /// A heap with `policy` and `flags` over one region of [`BYTE_POOL`]
    /// bytes.
    pub fn new(policy: Policy, flags: HeapFlags) -> RkHeap {
        Self::with_regions(policy, flags, 1)
    }

    /// A heap with `policy` and `flags` over `n` regions of
    /// [`BYTE_POOL`] / `n` bytes each (as a kernel heap that grew), so free
    /// lists link blocks of different regions.
    pub fn with_regions(policy: Policy, flags: HeapFlags, n: usize) -> RkHeap {
        assert!((1..=MAX_REGIONS).contains(&n), "1 to {MAX_REGIONS} regions");
        // One buffer for all, cut into regions, so the span is one range.
        let whole = Rc::new(Buf::new(BYTE_POOL, 4096));
        let span = whole.span();
        let mut heap = Heap::new(policy, flags);
        let mut bases = [0; MAX_REGIONS];
        for (i, part) in Part::cut(&whole, n).enumerate() {
            bases[i] = part.start();
            let r = heap
                .add_region(part)
                .expect("a region of the pool is valid");
            assert_eq!(r as usize, i);
        }
        RkHeap { heap, bases, span }
    }

    /// The heap, for its own consistency check.
    pub fn heap(&self) -> &Heap<Part> {
        &self.heap
    }
}

impl ByteAllocator for RkHeap {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        let p = self.heap.alloc(size).ok()?;
        let base = *self.bases.get(p.region as usize)?;
        NonNull::new((base + p.offset as usize) as *mut u8)
    }

    #[inline]
    fn free(&mut self, h: NonNull<u8>, _size: usize) {
        if let Err(e) = self.heap.free_addr(h.as_ptr()) {
            panic!("rkalloc heap refused free({h:?}): {e:?}");
        }
    }

    #[inline]
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }

    fn span(&self) -> (usize, usize) {
        self.span
    }
}

/// talc 5 with the `Manual` source over one claimed 2 MiB heap.
pub struct TalcHeap {
    // Declared before `buf`, so it is dropped first.
    talc: Talc<Manual, DefaultBinning>,
    buf: Buf,
}

impl TalcHeap {
    /// A heap over [`BYTE_POOL`] bytes.
    pub fn new() -> TalcHeap {
        let buf = Buf::new(BYTE_POOL, 4096);
        let mut talc = Talc::new(Manual);
        // SAFETY: `buf` is used by nobody else and outlives `talc`.
        let claimed = unsafe { talc.claim(buf.start() as *mut u8, buf.len()) };
        assert!(claimed.is_some(), "talc refused a 2 MiB heap");
        TalcHeap { talc, buf }
    }
}

impl Default for TalcHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteAllocator for TalcHeap {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        // SAFETY: sizes are non-zero.
        unsafe { self.talc.allocate(layout(size)) }
    }

    #[inline]
    fn free(&mut self, h: NonNull<u8>, size: usize) {
        // SAFETY: `h` came from `alloc(size)`, with the same layout, and is
        // freed once.
        unsafe { self.talc.deallocate(h.as_ptr(), layout(size)) }
    }

    #[inline]
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }

    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}

/// rlsf's TLSF. With 32-byte granules, `FLLEN = 20` covers blocks up to
/// 32 MiB, more than the pool; `SLLEN = 16` is the crate's usual choice.
pub type RlsfTlsf = rlsf::Tlsf<'static, u32, u32, 20, 16>;

/// rlsf's TLSF over one 2 MiB free block.
pub struct RlsfHeap {
    // Declared before `buf`, so it is dropped first. The `'static` is a lie
    // kept private: the pool lives exactly as long as `tlsf`.
    tlsf: RlsfTlsf,
    buf: Buf,
}

impl RlsfHeap {
    /// A heap over [`BYTE_POOL`] bytes.
    pub fn new() -> RlsfHeap {
        let buf = Buf::new(BYTE_POOL, 4096);
        let mut tlsf = RlsfTlsf::new();
        // SAFETY: `buf` is used by nobody else and outlives `tlsf`.
        let added = unsafe { tlsf.insert_free_block_ptr(buf.as_nonnull_slice()) };
        assert!(added.is_some(), "rlsf refused a 2 MiB pool");
        RlsfHeap { tlsf, buf }
    }
}

impl Default for RlsfHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteAllocator for RlsfHeap {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        self.tlsf.allocate(layout(size))
    }

    #[inline]
    fn free(&mut self, h: NonNull<u8>, _size: usize) {
        // SAFETY: `h` came from `alloc` with alignment ALIGN and is freed
        // once.
        unsafe { self.tlsf.deallocate(h, ALIGN) }
    }

    #[inline]
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }

    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}

/// linked_list_allocator's first-fit hole list over 2 MiB.
pub struct LlaHeap {
    // Declared before `buf`, so it is dropped first.
    heap: linked_list_allocator::Heap,
    buf: Buf,
}

impl LlaHeap {
    /// A heap over [`BYTE_POOL`] bytes.
    pub fn new() -> LlaHeap {
        let buf = Buf::new(BYTE_POOL, 4096);
        let mut heap = linked_list_allocator::Heap::empty();
        // SAFETY: `buf` is used by nobody else and outlives `heap`.
        unsafe { heap.init(buf.start() as *mut u8, buf.len()) };
        LlaHeap { heap, buf }
    }
}

impl Default for LlaHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteAllocator for LlaHeap {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        self.heap.allocate_first_fit(layout(size)).ok()
    }

    #[inline]
    fn free(&mut self, h: NonNull<u8>, size: usize) {
        // SAFETY: `h` came from `alloc(size)`, same layout, freed once.
        unsafe { self.heap.deallocate(h, layout(size)) }
    }

    #[inline]
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }

    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}

/// buddy_system_allocator's byte heap over 2 MiB: power-of-two blocks,
/// intrusive singly linked free lists.
pub struct BsaHeap {
    // Declared before `buf`, so it is dropped first.
    heap: buddy_system_allocator::Heap<22>,
    buf: Buf,
}

impl BsaHeap {
    /// A heap over [`BYTE_POOL`] bytes.
    pub fn new() -> BsaHeap {
        let buf = Buf::new(BYTE_POOL, BYTE_POOL);
        let mut heap = buddy_system_allocator::Heap::new();
        // SAFETY: `buf` is used by nobody else and outlives `heap`.
        unsafe { heap.init(buf.start(), buf.len()) };
        BsaHeap { heap, buf }
    }
}

impl Default for BsaHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteAllocator for BsaHeap {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        self.heap.alloc(layout(size)).ok()
    }

    #[inline]
    fn free(&mut self, h: NonNull<u8>, size: usize) {
        // SAFETY: `h` came from `alloc(size)`, same layout, freed once.
        unsafe { self.heap.dealloc(h, layout(size)) }
    }

    #[inline]
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }

    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}

/// rkalloc's slab bookkeeping: one slab of [`HOT_SIZE`]-byte objects, no
/// debug flags. Serves [`HOT_SIZE`] only.
pub struct RkSlab {
    layout: slab::Layout,
    state: SlabState,
    buf: Buf,
}

impl RkSlab {
    /// One slab of [`HOT_SIZE`]-byte, [`ALIGN`]-aligned objects.
    pub fn new() -> RkSlab {
        let layout =
            slab::Layout::new(HOT_SIZE, ALIGN, slab::Flags::empty()).expect("valid slab layout");
        let mut buf = Buf::new(layout.slab_bytes(), 4096);
        let state = SlabState::init(&layout, buf.as_mut(), 0x5eed).expect("slab init");
        RkSlab { layout, state, buf }
    }
}

impl Default for RkSlab {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteAllocator for RkSlab {
    type Handle = usize;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<usize> {
        assert_eq!(
            size, HOT_SIZE,
            "the slab serves {HOT_SIZE}-byte objects only"
        );
        self.state.alloc(&self.layout, self.buf.as_mut()).ok()
    }

    #[inline]
    fn free(&mut self, h: usize, _size: usize) {
        if let Err(e) = self.state.free(&self.layout, self.buf.as_mut(), h) {
            panic!("rkalloc slab refused free({h:#x}): {e:?}");
        }
    }

    #[inline]
    fn addr(&self, h: usize) -> *mut u8 {
        (self.buf.start() + h) as *mut u8
    }

    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}

/// slabmalloc's `ZoneAllocator` with one 4 KiB `ObjectPage` for the
/// [`HOT_SIZE`] class. Serves [`HOT_SIZE`] only.
pub struct SlabmallocZone {
    // Declared before `buf`, so it is dropped first. The `'static` is a lie
    // kept private: the page lives exactly as long as `zone`.
    zone: ZoneAllocator<'static>,
    buf: Buf,
}

impl SlabmallocZone {
    /// A zone refilled with one page for [`HOT_SIZE`]-byte objects.
    pub fn new() -> SlabmallocZone {
        let size = ObjectPage::SIZE;
        assert_eq!(size, core::mem::size_of::<ObjectPage<'static>>());
        // Zeroed: an all-zero ObjectPage is an empty one (its `Default`).
        let buf = Buf::new(size, size);
        let mut zone = ZoneAllocator::new();
        // SAFETY: `buf` is a zeroed, page-aligned, page-sized block that
        // nobody else uses and that outlives `zone`, so it is a valid empty
        // `ObjectPage`, which slabmalloc finds again by masking addresses.
        unsafe {
            let page = &mut *(buf.start() as *mut ObjectPage<'static>);
            zone.refill(layout(HOT_SIZE), page).expect("refill");
        }
        SlabmallocZone { zone, buf }
    }
}

impl Default for SlabmallocZone {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteAllocator for SlabmallocZone {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        self.zone.allocate(layout(size)).ok()
    }

    #[inline]
    fn free(&mut self, h: NonNull<u8>, size: usize) {
        if let Err(e) = self.zone.deallocate(h, layout(size)) {
            panic!("slabmalloc refused free({h:?}): {e:?}");
        }
    }

    #[inline]
    fn addr(&self, h: NonNull<u8>) -> *mut u8 {
        h.as_ptr()
    }

    fn span(&self) -> (usize, usize) {
        self.buf.span()
    }
}
