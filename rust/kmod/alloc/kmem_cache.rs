// SPDX-License-Identifier: GPL-2.0
//! `kmem_cache`: a SLUB cache of the run's object size (`SLAB_NO_MERGE`,
//! so it is really its own), or the module's long-lived 64-byte peer.

use super::api::{Allocator, Class, Descriptor};
use crate::sys::KmemCache;
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString};

/// Largest object size the comparisons use.
const MAX_OBJECT: usize = 8192;

/// Registers `kmem_cache`.
pub(super) fn register(r: &mut super::Registry) -> Result {
    r.add(Descriptor {
        name: CString::try_from(c"kmem_cache")?,
        class: Class::Objects,
        kernel: true,
        peer: None,
        min_bytes: 1,
        max_bytes: MAX_OBJECT,
        frees_all: false,
        own_frag: false,
        checked: false,
        policy: None,
        granted: |_, max| max.next_multiple_of(8),
        make: |env, _, max| {
            let cache = if max == 64 {
                Peer::Shared(env.peer64)
            } else {
                let name = CString::try_from_fmt(fmt!("rkalloc_peer_{}", max))?;
                Peer::Own(KmemCache::new(&name, max as u32, 8)?)
            };
            Ok(KBox::new(Slub { cache, size: max }, GFP_KERNEL)?)
        },
    })
}

/// A SLUB cache made for the run, or the module's 64-byte peer.
enum Peer<'a> {
    Own(KmemCache),
    Shared(&'a KmemCache),
}

struct Slub<'a> {
    cache: Peer<'a>,
    size: usize,
}

impl Slub<'_> {
    #[inline]
    fn cache(&self) -> &KmemCache {
        match &self.cache {
            Peer::Own(c) => c,
            Peer::Shared(c) => c,
        }
    }
}

impl Allocator for Slub<'_> {
    #[inline]
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        if size > self.size {
            return None;
        }
        self.cache().alloc()
    }

    #[inline]
    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        // SAFETY: `p` came from this cache (the trait's contract).
        unsafe { self.cache().free(p) }
    }
}
