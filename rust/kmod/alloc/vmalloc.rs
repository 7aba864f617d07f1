// SPDX-License-Identifier: GPL-2.0
//! `vmalloc`: virtually contiguous memory, up to the UAPI's largest
//! request (64 MiB).

use super::api::{Allocator, Class, Descriptor};
use crate::{mm::pool::PAGE_SIZE, sys::mem};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString};

/// Largest request of the big-buffer allocators: `RKALLOC_MAX_REPLAY_SIZE`.
pub(super) const MAX_BIG: usize = 64 << 20;

/// Registers `vmalloc`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"vmalloc")?,
        class: Class::Malloc,
        kernel: true,
        peer: None,
        min_bytes: 1,
        max_bytes: MAX_BIG,
        frees_all: false,
        own_frag: false,
        checked: false,
        policy: None,
        granted: |size, _| size.next_multiple_of(PAGE_SIZE),
        make: |_, _, _| Ok(KBox::new(Vmalloc, GFP_KERNEL)?),
    })
}

struct Vmalloc;

impl Allocator for Vmalloc {
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(mem::vmalloc(size))
    }

    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from `vmalloc` (the trait's contract).
        unsafe { mem::vfree_ptr(p.as_ptr()) }
    }
}
