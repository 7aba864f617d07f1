// SPDX-License-Identifier: GPL-2.0
//! `rk_malloc`: rkalloc's kmalloc-style size classes (`mm::slab`'s
//! `SizeClasses`: 13 caches of 8 B to 8 KiB, whole pool blocks above),
//! compared with `kmalloc`.

use super::api::{Allocator, Class, Descriptor};
use crate::{
    mm::{pool::PAGE_SIZE, slab::SizeClasses},
    rkcore::buddy::MAX_ORDER,
    sys::euclean,
};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString};

/// Registers `rk_malloc`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"rk_malloc")?,
        class: Class::Malloc,
        kernel: false,
        peer: Some(c"kmalloc"),
        min_bytes: 1,
        max_bytes: PAGE_SIZE << MAX_ORDER,
        frees_all: false,
        own_frag: false,
        checked: true,
        policy: None,
        granted: |size, _| SizeClasses::footprint(size).unwrap_or(size),
        make: |env, _, _| Ok(KBox::new(RkMalloc(env.classes), GFP_KERNEL)?),
    })
}

/// The module's size classes, shared with every other user.
struct RkMalloc<'a>(&'a SizeClasses);

impl Allocator for RkMalloc<'_> {
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.malloc(size).ok()
    }

    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        let _ = self.0.free(p);
    }

    fn check(&self) -> Result {
        if self.0.check() != 0 {
            return Err(euclean());
        }
        Ok(())
    }
}
