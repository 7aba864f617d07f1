// SPDX-License-Identifier: GPL-2.0
//! `kmalloc`: the kernel's kmalloc/kfree, for sizes up to
//! `KMALLOC_MAX_SIZE` (above it the page allocator warns).

use super::api::{Allocator, Class, Descriptor};
use crate::sys::mem;
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString};

/// Registers `kmalloc`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"kmalloc")?,
        class: Class::Malloc,
        kernel: true,
        peer: None,
        min_bytes: 1,
        max_bytes: mem::kmalloc_max_size(),
        frees_all: false,
        own_frag: false,
        checked: false,
        policy: None,
        granted: |size, _| mem::kmalloc_size_roundup(size),
        make: |_, _, _| Ok(KBox::new(Kmalloc, GFP_KERNEL)?),
    })
}

/// `kmalloc`/`kfree`.
pub(crate) struct Kmalloc;

impl Allocator for Kmalloc {
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(mem::kmalloc(size))
    }

    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from `kmalloc` (the trait's contract).
        unsafe { mem::kfree(p.as_ptr()) }
    }
}
