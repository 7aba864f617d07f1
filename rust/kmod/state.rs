// SPDX-License-Identifier: GPL-2.0
//! What every layer above the allocators shares: the module's pool, its
//! size classes and catalog, the allocator table, and the per-fd limits.
//! The crate root makes it; the device, debugfs and the measurements hold
//! it, so that none of them imports the crate root.

use crate::{
    alloc::{Env, Registry},
    mm::{catalog::Catalog, pool::Pool, slab::SizeClasses},
    sys::KmemCache,
};
use core::sync::atomic::AtomicU32;
use kernel::{prelude::*, sync::Arc};

/// State shared by the device, debugfs and every open file.
pub(crate) struct Shared {
    /// This module, for `try_module_get` in `open`.
    pub(crate) module: &'static ThisModule,
    /// Per-fd cap on memory held, in bytes.
    pub(crate) fd_cap_bytes: u64,
    /// The page pool every rkalloc allocator takes its pages from.
    pub(crate) pool: Arc<Pool>,
    /// The kmalloc-style size classes (`rk_malloc`/`rk_free`) and the
    /// registry of every slab cache.
    pub(crate) kmalloc: SizeClasses,
    /// Every live heap and arena, for debugfs and the invariant check.
    pub(crate) catalog: Arc<Catalog>,
    /// Every allocator the benchmark, the replay and the conformance runs
    /// can make, rkalloc's and the kernel's.
    pub(crate) allocators: Registry,
    /// Numbers the open files, for their handles.
    pub(crate) next_fd_id: AtomicU32,
    /// Files of `/dev/rkalloc` open now.
    pub(crate) open_fds: AtomicU32,
    /// The benchmark's 64-byte SLUB peer, `rkalloc_peer_64`. It lives as
    /// long as the module, so that `/sys/kernel/slab/rkalloc_peer_64/`
    /// (`sheaf_capacity`...) shows how the peer ran after the run; peers of
    /// other sizes are made for each run.
    pub(crate) peer64: KmemCache,
}

impl Shared {
    /// What the allocator table's constructors need.
    pub(crate) fn env(&self) -> Env<'_> {
        Env {
            pool: &self.pool,
            classes: &self.kmalloc,
            peer64: &self.peer64,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
