// SPDX-License-Identifier: GPL-2.0
//! One interface for every allocator, rkalloc's own and the kernel's: the
//! benchmark and the trace replay use nothing else, so adding an allocator
//! is one `impl` here plus one line in [`make`].

use crate::{
    pool::{Pool, PAGE_SIZE},
    rkcore::{buddy::MAX_ORDER, frag::FragReport},
    sys::{self, KmemCache},
    uapi, Shared,
};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString, sync::Arc};

/// An allocator as the benchmark and the replay see it.
///
/// `alloc(size)` returns at least `size` usable bytes or `None`;
/// `free(p, size)` takes the same `size` back. Fixed-size allocators refuse
/// sizes above their object size.
pub(crate) trait Allocator: Send + Sync {
    /// Short name for reports and logs.
    fn name(&self) -> &'static str;
    /// Allocates `size` bytes.
    fn alloc(&self, size: usize) -> Option<NonNull<u8>>;
    /// Frees what `alloc(size)` returned.
    ///
    /// # Safety
    ///
    /// `p` came from `self.alloc(size)` and is not used afterwards.
    unsafe fn free(&self, p: NonNull<u8>, size: usize);
    /// Fragmentation figures where the allocator can tell.
    fn frag(&self) -> Option<FragReport> {
        None
    }
    /// Whether the allocator frees only all at once (an arena): its `free`
    /// does nothing and [`Allocator::reset`] frees everything. Such an
    /// allocator serves no pattern with per-object lifetimes.
    fn frees_all_at_once(&self) -> bool {
        false
    }
    /// Frees every allocation at once, where [`Self::frees_all_at_once`].
    fn reset(&self) {}
}

/// Most pool memory the benchmark's arena may hold.
const BENCH_ARENA_BUDGET: u64 = 256 << 20;

/// rkalloc's arena: an allocation bumps a pointer, a free does nothing and
/// [`Allocator::reset`] frees everything at once.
pub(crate) struct RkArena(Arc<crate::arena::ArenaObj>);

impl Allocator for RkArena {
    fn name(&self) -> &'static str {
        "rk_arena"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.alloc_addr(size, 0, BENCH_ARENA_BUDGET).ok()
    }
    #[inline]
    unsafe fn free(&self, _p: NonNull<u8>, _size: usize) {
        // An arena frees only all at once: see `reset`.
    }
    fn frees_all_at_once(&self) -> bool {
        true
    }
    fn reset(&self) {
        self.0.reset();
    }
}

/// The order of the smallest block holding `size` bytes.
#[inline]
pub(crate) fn order_for(size: usize) -> Option<u32> {
    // Bits needed for `size - 1`, less the page shift: a handful of
    // instructions, as the benchmark's harness should cost little.
    let bits = usize::BITS - size.saturating_sub(1).leading_zeros();
    let order = bits.saturating_sub(PAGE_SIZE.trailing_zeros());
    (order <= MAX_ORDER).then_some(order)
}

/// rkalloc's page pool.
pub(crate) struct RkPool(pub(crate) Arc<Pool>);

impl Allocator for RkPool {
    fn name(&self) -> &'static str {
        "rk_pool"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.alloc(order_for(size)?).ok().map(|b| b.addr)
    }
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, size: usize) {
        if let Some(order) = order_for(size) {
            let _ = self.0.free_addr(p.as_ptr(), order);
        }
    }
    fn frag(&self) -> Option<FragReport> {
        Some(self.0.frag())
    }
}

/// The kernel's page allocator.
pub(crate) struct KernelPages;

impl Allocator for KernelPages {
    fn name(&self) -> &'static str {
        "alloc_pages"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        let gfp = kernel::bindings::GFP_KERNEL | kernel::bindings::__GFP_NOWARN;
        NonNull::new(sys::alloc_pages(order_for(size)?, gfp)?)
    }
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, size: usize) {
        if let Some(order) = order_for(size) {
            // SAFETY: `p` came from `alloc(size)`, i.e. `alloc_pages(order)`.
            unsafe { sys::free_pages(p.as_ptr(), order) }
        }
    }
}

/// A SLUB cache of one object size: made for the run, or the module's
/// long-lived 64-byte peer.
pub(crate) struct Slub<'a> {
    cache: Peer<'a>,
    size: usize,
}

enum Peer<'a> {
    Own(KmemCache),
    Shared(&'a KmemCache),
}

impl Peer<'_> {
    #[inline]
    fn get(&self) -> &KmemCache {
        match self {
            Peer::Own(c) => c,
            Peer::Shared(c) => c,
        }
    }
}

impl Allocator for Slub<'_> {
    fn name(&self) -> &'static str {
        "kmem_cache"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        if size > self.size {
            return None;
        }
        self.cache.get().alloc()
    }
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from this cache (the trait's contract).
        unsafe { self.cache.get().free(p) }
    }
}

/// `kmalloc`/`kfree`.
pub(crate) struct Kmalloc;

impl Allocator for Kmalloc {
    fn name(&self) -> &'static str {
        "kmalloc"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(sys::kmalloc(size))
    }
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from `kmalloc` (the trait's contract).
        unsafe { sys::kfree(p.as_ptr()) }
    }
}

/// `vmalloc`/`vfree`.
pub(crate) struct Vmalloc;

impl Allocator for Vmalloc {
    fn name(&self) -> &'static str {
        "vmalloc"
    }
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(sys::vmalloc(size))
    }
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from `vmalloc` (the trait's contract).
        unsafe { sys::vfree(p.as_ptr()) }
    }
}

/// `kvmalloc`/`kvfree`.
pub(crate) struct Kvmalloc;

impl Allocator for Kvmalloc {
    fn name(&self) -> &'static str {
        "kvmalloc"
    }
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(sys::kvmalloc(size))
    }
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from `kvmalloc` (the trait's contract).
        unsafe { sys::kvfree(p.as_ptr()) }
    }
}

/// An rkalloc slab cache of one object size.
pub(crate) struct RkSlab(pub(crate) Arc<crate::slab::Cache>);

impl Allocator for RkSlab {
    fn name(&self) -> &'static str {
        "rk_slab"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        if size > self.0.obj_size() {
            return None;
        }
        self.0.alloc().ok()
    }
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        let _ = self.0.free(p);
    }
}

/// rkalloc's size classes: `rk_malloc`/`rk_free`.
pub(crate) struct RkMalloc<'a>(pub(crate) &'a crate::slab::SizeClasses);

impl Allocator for RkMalloc<'_> {
    fn name(&self) -> &'static str {
        "rk_malloc"
    }
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.malloc(size).ok()
    }
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        let _ = self.0.free(p);
    }
}

/// Creates the allocator `id` (a UAPI `RKALLOC_ALLOC_*` value) for
/// allocations of up to `size` bytes. EINVAL for an unknown id or a size the
/// allocator cannot serve.
pub(crate) fn make(id: u32, size: usize, shared: &Shared) -> Result<KBox<dyn Allocator + '_>> {
    if size == 0 {
        return Err(EINVAL);
    }
    Ok(match id {
        uapi::RKALLOC_ALLOC_RK_POOL => {
            order_for(size).ok_or(EINVAL)?;
            KBox::new(RkPool(shared.pool.clone()), GFP_KERNEL)? as KBox<dyn Allocator>
        }
        uapi::RKALLOC_ALLOC_PAGES => {
            order_for(size).ok_or(EINVAL)?;
            KBox::new(KernelPages, GFP_KERNEL)?
        }
        uapi::RKALLOC_ALLOC_KMEM_CACHE => {
            if size > 8192 {
                return Err(EINVAL);
            }
            let cache = if size == 64 {
                Peer::Shared(&shared.peer64)
            } else {
                let name = CString::try_from_fmt(fmt!("rkalloc_peer_{}", size))?;
                Peer::Own(KmemCache::new(&name, size as u32, 8)?)
            };
            KBox::new(Slub { cache, size }, GFP_KERNEL)?
        }
        uapi::RKALLOC_ALLOC_KMALLOC => KBox::new(Kmalloc, GFP_KERNEL)?,
        uapi::RKALLOC_ALLOC_RK_SLAB => {
            let flags = crate::rkcore::slab::Flags::empty();
            let cache = crate::slab::Cache::new(&shared.pool, b"rk_bench", size, 8, flags)?;
            KBox::new(RkSlab(cache), GFP_KERNEL)?
        }
        uapi::RKALLOC_ALLOC_RK_MALLOC => {
            crate::slab::SizeClasses::footprint(size)?;
            KBox::new(RkMalloc(&shared.kmalloc), GFP_KERNEL)?
        }
        uapi::RKALLOC_ALLOC_VMALLOC => KBox::new(Vmalloc, GFP_KERNEL)?,
        uapi::RKALLOC_ALLOC_RK_HEAP_FIRST..=uapi::RKALLOC_ALLOC_RK_HEAP_SEGREGATED => {
            if size > crate::heap::MAX_ALLOC {
                return Err(EINVAL);
            }
            // The heap ids follow the policies' order (first, next, best,
            // segregated), as in the header.
            let policy = crate::heap::policy_from_uapi(id - uapi::RKALLOC_ALLOC_RK_HEAP_FIRST)
                .ok_or(EINVAL)?;
            KBox::new(crate::heap::HeapAllocator::new(&shared.pool, policy)?, GFP_KERNEL)?
        }
        uapi::RKALLOC_ALLOC_KVMALLOC => KBox::new(Kvmalloc, GFP_KERNEL)?,
        uapi::RKALLOC_ALLOC_RK_ARENA => {
            if !crate::arena::request_ok(size, 0) {
                return Err(EINVAL);
            }
            KBox::new(RkArena(crate::arena::ArenaObj::new(&shared.pool, u32::MAX)?), GFP_KERNEL)?
        }
        _ => return Err(EINVAL),
    })
}
