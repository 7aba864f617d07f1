// SPDX-License-Identifier: GPL-2.0
//! Kernel memory: the page allocator, kmalloc, vmalloc and kvmalloc (the
//! pool's source and the benchmark's peers), `struct page`'s private field,
//! and the GFP flags rkalloc uses.
//!
//! The peers are called the way a C caller with a run-time size reaches
//! them: one call into the exported function (`get_free_pages_noprof`,
//! `free_pages`, `__kmalloc_noprof`, `kfree`, `vmalloc_noprof`, `vfree`,
//! `__kvmalloc_node_noprof`, `kvfree`), no shim in between, so that each
//! side of a comparison pays one call per operation.

use kernel::{bindings, prelude::*};

extern "C" {
    fn rk_set_page_private(addr: *const c_void, v: c_ulong);
    fn rk_page_private(addr: *const c_void) -> c_ulong;
    static rk_kmalloc_max_size: usize;
    static rk_page_shift: c_uint;
    static rk_max_page_order: c_uint;
    // include/linux/vmalloc.h (7.2): the functions behind the `vmalloc`
    // macro and `vfree`, exported to modules; bindgen's view of the
    // kernel crate does not include that header.
    fn vmalloc_noprof(size: c_ulong) -> *mut c_void;
    fn vfree(addr: *const c_void);
}

/// `__GFP_NORETRY`, which bindgen does not carry over (it is built from an
/// enum of bit numbers).
pub(crate) const GFP_NORETRY: bindings::gfp_t = 1 << bindings::___GFP_NORETRY_BIT;

/// What the benchmark's peers allocate with: `GFP_KERNEL`, quiet on
/// failure (an allocation the run cannot get is counted, not logged).
const PEER_GFP: bindings::gfp_t = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;

/// `kmalloc_size_roundup`: the bytes `kmalloc(size)` really hands out.
#[inline]
pub(crate) fn kmalloc_size_roundup(size: usize) -> usize {
    // SAFETY: a pure function of its argument, with no preconditions.
    unsafe { bindings::kmalloc_size_roundup(size) }
}

/// `KMALLOC_MAX_SIZE`: the largest size kmalloc serves (above it warns).
pub(crate) fn kmalloc_max_size() -> usize {
    // SAFETY: a constant defined in the shim, never written.
    unsafe { rk_kmalloc_max_size }
}

/// The kernel's `PAGE_SHIFT`, to assert the core's against.
pub(crate) fn page_shift() -> u32 {
    // SAFETY: a constant defined in the shim, never written.
    unsafe { rk_page_shift }
}

/// The kernel's `MAX_PAGE_ORDER`, to assert the core's against.
pub(crate) fn max_page_order() -> u32 {
    // SAFETY: a constant defined in the shim, never written.
    unsafe { rk_max_page_order }
}

/// `__get_free_pages(gfp, order)`: 2^`order` contiguous pages of the linear
/// map, or `None`. Orders above `MAX_PAGE_ORDER` must not be asked for
/// (the page allocator warns); callers check.
#[inline]
pub(crate) fn get_free_pages(order: u32, gfp: bindings::gfp_t) -> Option<*mut u8> {
    // SAFETY: accepts any gfp and order and returns 0 on failure; without
    // __GFP_HIGHMEM the pages have a permanent kernel address.
    let addr = unsafe { bindings::get_free_pages_noprof(gfp, order) };
    (addr != 0).then_some(addr as *mut u8)
}

/// [`get_free_pages`] with the peers' flags.
#[inline]
pub(crate) fn peer_pages(order: u32) -> Option<*mut u8> {
    get_free_pages(order, PEER_GFP)
}

/// Returns pages from [`get_free_pages`] to the kernel (`free_pages`).
///
/// # Safety
///
/// `addr` came from `get_free_pages(order, _)` with this `order` and is not
/// used after this call.
#[inline]
pub(crate) unsafe fn free_pages(addr: *mut u8, order: u32) {
    // SAFETY: by the contract, `addr` heads a live 2^order block.
    unsafe { bindings::free_pages(addr as c_ulong, order) }
}

/// `kmalloc(size, GFP_KERNEL | __GFP_NOWARN)` for a run-time size.
#[inline]
pub(crate) fn kmalloc(size: usize) -> *mut u8 {
    // SAFETY: accepts any size and returns NULL on failure.
    unsafe { bindings::__kmalloc_noprof(size, PEER_GFP) }.cast()
}

/// `kfree`.
///
/// # Safety
///
/// `p` came from [`kmalloc`] (or is null) and is not used again.
#[inline]
pub(crate) unsafe fn kfree(p: *mut u8) {
    // SAFETY: by the contract.
    unsafe { bindings::kfree(p.cast()) }
}

/// `vmalloc(size)`.
#[inline]
pub(crate) fn vmalloc(size: usize) -> *mut u8 {
    // SAFETY: accepts any size and returns NULL on failure.
    unsafe { vmalloc_noprof(size as c_ulong) }.cast()
}

/// `vfree`.
///
/// # Safety
///
/// `p` came from [`vmalloc`] (or is null) and is not used again.
#[inline]
pub(crate) unsafe fn vfree_ptr(p: *mut u8) {
    // SAFETY: by the contract.
    unsafe { vfree(p.cast()) }
}

/// `kvmalloc(size, GFP_KERNEL | __GFP_NOWARN)`.
#[inline]
pub(crate) fn kvmalloc(size: usize) -> *mut u8 {
    // SAFETY: accepts any size and returns NULL on failure; the arguments
    // are what `kvmalloc()` passes (no buckets, byte alignment, any node).
    unsafe { bindings::__kvmalloc_node_noprof(size, core::ptr::null_mut(), 1, PEER_GFP, bindings::NUMA_NO_NODE) }
        .cast()
}

/// `kvfree`.
///
/// # Safety
///
/// `p` came from [`kvmalloc`] (or is null) and is not used again.
#[inline]
pub(crate) unsafe fn kvfree(p: *mut u8) {
    // SAFETY: by the contract.
    unsafe { bindings::kvfree(p.cast()) }
}

/// Sets `page->private` of the page holding `addr` (the slab layer's owner
/// tag; see `mm/slab`).
///
/// # Safety
///
/// `addr` lies in the kernel's linear map (pool memory does), and the caller
/// owns the page's `private` field: it holds the page from the pool.
#[inline]
pub(crate) unsafe fn set_page_private(addr: *const u8, v: usize) {
    // SAFETY: a linear-map address has a `struct page` (caller's contract).
    unsafe { rk_set_page_private(addr.cast(), v as c_ulong) }
}

/// `page->private` of the page holding `addr`.
///
/// # Safety
///
/// `addr` lies in the kernel's linear map (pool memory does), so that its
/// `struct page` exists.
#[inline]
pub(crate) unsafe fn page_private(addr: *const u8) -> usize {
    // SAFETY: a linear-map address has a `struct page` (caller's contract).
    unsafe { rk_page_private(addr.cast()) as usize }
}
