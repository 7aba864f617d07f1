// SPDX-License-Identifier: GPL-2.0
//! `alloc_pages`: the kernel's page allocator, through
//! `__get_free_pages`/`free_pages` (one exported call each, as a C caller
//! that wants an address makes).

use super::api::{Allocator, Class, Descriptor};
use crate::{mm::region::order_for, sys::mem};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString};

/// Registers `alloc_pages`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    let max_order = mem::max_page_order();
    r.add(Descriptor {
        name: CString::try_from(c"alloc_pages")?,
        class: Class::Pages,
        kernel: true,
        peer: None,
        min_bytes: 1,
        // Above MAX_PAGE_ORDER the page allocator warns: never ask.
        max_bytes: (1usize << mem::page_shift()) << max_order,
        frees_all: false,
        own_frag: false,
        checked: false,
        policy: None,
        granted: super::rk_pool::granted_pages,
        make: |_, _, _| Ok(KBox::new(KernelPages, GFP_KERNEL)?),
    })
}

struct KernelPages;

impl Allocator for KernelPages {
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        NonNull::new(mem::peer_pages(order_for(size)?)?)
    }

    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, size: usize) {
        if let Some(order) = order_for(size) {
            // SAFETY: `p` came from `alloc(size)`, i.e. pages of this order.
            unsafe { mem::free_pages(p.as_ptr(), order) }
        }
    }
}
