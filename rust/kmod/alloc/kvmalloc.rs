// SPDX-License-Identifier: GPL-2.0
//! `kvmalloc`: kmalloc, falling back to vmalloc, up to 64 MiB.

use super::api::{Allocator, Class, Descriptor};
use crate::sys::mem;
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString};

/// Registers `kvmalloc`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"kvmalloc")?,
        class: Class::Malloc,
        kernel: true,
        peer: None,
        min_bytes: 1,
        max_bytes: super::vmalloc::MAX_BIG,
        frees_all: false,
        own_frag: false,
        checked: false,
        policy: None,
        granted: |size, _| mem::kmalloc_size_roundup(size),
        make: |_, _, _| Ok(KBox::new(Kvmalloc, GFP_KERNEL)?),
    })
}

struct Kvmalloc;

impl Allocator for Kvmalloc {
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(mem::kvmalloc(size))
    }

    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from `kvmalloc` (the trait's contract).
        unsafe { mem::kvfree(p.as_ptr()) }
    }
}
