// SPDX-License-Identifier: GPL-2.0
//! `rk_arena`: rkalloc's arena (`mm::arena`), a private one per run. It
//! frees only all at once: the benchmark times an allocation plus a reset
//! as its pair, and batches with one reset.

use super::api::{granted_exact, Allocator, Class, Descriptor};
use crate::mm::{arena::ArenaObj, region::MAX_REQUEST};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString, sync::Arc};

/// Most pool memory a run's arena may hold.
const BUDGET: u64 = 256 << 20;

/// Registers `rk_arena`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"rk_arena")?,
        class: Class::Arena,
        kernel: false,
        peer: Some(c"kmalloc"),
        min_bytes: 1,
        max_bytes: MAX_REQUEST,
        frees_all: true,
        own_frag: false,
        checked: false,
        policy: None,
        granted: granted_exact,
        make: |env, _, _| Ok(KBox::new(RkArena(ArenaObj::new(env.pool, u32::MAX)?), GFP_KERNEL)?),
    })
}

struct RkArena(Arc<ArenaObj>);

impl Allocator for RkArena {
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.alloc_addr(size, 0, BUDGET).ok()
    }

    #[inline]
    unsafe fn free(&self, _p: NonNull<u8>, _size: usize) {
        // An arena frees only all at once: see `reset`.
    }

    fn reset(&self) {
        self.0.reset();
    }

    fn live(&self) -> Option<u64> {
        Some(self.0.live())
    }
}
