// SPDX-License-Identifier: GPL-2.0
//! `rk_slab`: an rkalloc slab cache (`mm::slab`) of the run's object size,
//! compared with a SLUB `kmem_cache` of the same size.

use super::api::{Allocator, Class, Descriptor};
use crate::{
    mm::slab::Cache,
    rkcore::slab::{Flags, MAX_OBJECT_SIZE},
    sys::euclean,
};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString, sync::Arc};

/// Registers `rk_slab`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"rk_slab")?,
        class: Class::Objects,
        kernel: false,
        peer: Some(c"kmem_cache"),
        min_bytes: 1,
        max_bytes: MAX_OBJECT_SIZE,
        frees_all: false,
        own_frag: false,
        checked: true,
        policy: None,
        granted: |_, max| max.next_multiple_of(8),
        make: |env, _, max| {
            let cache = Cache::new(env.pool, b"rk_bench", max, 8, Flags::empty())?;
            Ok(KBox::new(RkSlab(cache), GFP_KERNEL)?)
        },
    })
}

/// A cache private to the run.
struct RkSlab(Arc<Cache>);

impl Allocator for RkSlab {
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        // A cache serves 1 to its object size; 0 is not a request.
        if size.wrapping_sub(1) >= self.0.obj_size() {
            return None;
        }
        self.0.alloc().ok()
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

    fn live(&self) -> Option<u64> {
        let s = self.0.stats();
        Some(s.active_objs.saturating_sub(s.cpu_cached + s.barn_cached) as u64)
    }
}
