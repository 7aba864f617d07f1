// SPDX-License-Identifier: GPL-2.0
//! The kernel's slab allocator: a `kmem_cache` of one object size, the
//! benchmark's SLUB peer.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

// `kmem_cache` only ever crosses by pointer.
extern "C" {
    fn rk_kmem_cache_create(name: *const c_char, size: c_uint, align: c_uint) -> *mut bindings::kmem_cache;
    fn rk_kmem_cache_destroy(s: *mut bindings::kmem_cache);
}

/// A kernel slab cache (`kmem_cache`, SLUB), created with `SLAB_NO_MERGE`
/// so that it is not silently merged with another cache of the same size.
///
/// # Invariants
///
/// `ptr` is a live cache from `kmem_cache_create`, destroyed only in drop.
pub(crate) struct KmemCache {
    ptr: NonNull<bindings::kmem_cache>,
}

// SAFETY: kmem_cache functions are thread-safe.
unsafe impl Send for KmemCache {}
// SAFETY: as above.
unsafe impl Sync for KmemCache {}

impl KmemCache {
    /// Creates a cache of `size`-byte objects. The kernel copies `name`.
    pub(crate) fn new(name: &CStr, size: u32, align: u32) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string, which slab duplicates
        // (kstrdup_const); size and align are checked by kmem_cache_create
        // (NULL on error).
        let ptr = unsafe { rk_kmem_cache_create(name.as_char_ptr(), size, align) };
        // INVARIANT: non-null means a live cache.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// `kmem_cache_alloc(GFP_KERNEL)`.
    #[inline]
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
        // SAFETY: `ptr` is a live cache (type invariant).
        NonNull::new(unsafe { bindings::kmem_cache_alloc_noprof(self.ptr.as_ptr(), bindings::GFP_KERNEL) }.cast())
    }

    /// `kmem_cache_free`.
    ///
    /// # Safety
    ///
    /// `p` came from [`KmemCache::alloc`] on this cache and is not used again.
    #[inline]
    pub(crate) unsafe fn free(&self, p: NonNull<u8>) {
        // SAFETY: by the contract and the type invariant.
        unsafe { bindings::kmem_cache_free(self.ptr.as_ptr(), p.as_ptr().cast()) }
    }
}

impl Drop for KmemCache {
    fn drop(&mut self) {
        // SAFETY: the cache is live (type invariant) and its users are gone
        // (`&mut self`).
        unsafe { rk_kmem_cache_destroy(self.ptr.as_ptr()) }
    }
}

