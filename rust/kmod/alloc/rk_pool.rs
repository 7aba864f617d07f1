// SPDX-License-Identifier: GPL-2.0
//! `rk_pool`: rkalloc's buddy page pool (`mm::pool`), compared with
//! `alloc_pages`.

use super::api::{Allocator, Class, Descriptor};
use crate::{
    mm::{
        pool::{Pool, PAGE_SIZE},
        region::order_for,
    },
    rkcore::{buddy::MAX_ORDER, frag::FragReport},
};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString, sync::Arc};

/// Registers `rk_pool`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"rk_pool")?,
        class: Class::Pages,
        kernel: false,
        peer: Some(c"alloc_pages"),
        min_bytes: 1,
        max_bytes: PAGE_SIZE << MAX_ORDER,
        frees_all: false,
        own_frag: false,
        checked: true,
        policy: None,
        granted: granted_pages,
        make: |env, _, _| Ok(KBox::new(RkPool(env.pool.clone()), GFP_KERNEL)?),
    })
}

/// Whole pages of the smallest order holding `size`.
pub(super) fn granted_pages(size: usize, _max: usize) -> usize {
    order_for(size).map_or(size, |o| PAGE_SIZE << o)
}

/// The module's pool, shared with every other user.
struct RkPool(Arc<Pool>);

impl Allocator for RkPool {
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

    fn check(&self) -> Result {
        self.0.check().map(|_| ())
    }
}
