// SPDX-License-Identifier: GPL-2.0
//! rkalloc: allocators built on a buddy page pool, compared side by side with
//! the kernel's own.
//!
//! The crate root wires the layers together (see `../../README.md`):
//!
//! ```text
//! dev (misc device, per-fd handles)    debugfs (read-only views)
//!                  \                     /
//!                   registry of allocators
//!                            |
//!                      pool (buddy) <- alloc_pages(MAX_PAGE_ORDER)
//! ```
//!
//! Data flows down only: nothing below imports anything above. All FFI lives
//! in [`sys`]; the algorithms live in the environment-free [`rkcore`], the
//! same files the host crate `rkalloc-core` tests.

use kernel::{miscdevice::MiscDeviceRegistration, prelude::*, sync::Arc};

mod arena;
mod bench;
mod debugfs;
mod dev;
mod handles;
mod heap;
mod map;
mod pool;
mod registry;
mod replay;
// Public, so that the parts of the shared host crate this module does not
// use are not dead code here (nor `unreachable_pub`).
pub mod rkcore;
mod slab;
mod sort;
mod sys;
mod uapi;

module! {
    type: RkallocModule,
    name: "rkalloc",
    authors: ["rkalloc developers"],
    description: "Buddy page pool, slab caches, fit-policy heaps and an arena, compared with the kernel's allocators",
    license: "GPL",
    params: {
        pool_mb: u32 {
            default: 64,
            description: "Initial pool size in MiB (rounded up to whole 4 MiB chunks)",
        },
        pool_max_mb: u32 {
            default: 1024,
            description: "Most memory the pool may take from the kernel, in MiB",
        },
        fd_cap_kib: u64 {
            default: 262144,
            description: "Most memory one open /dev/rkalloc may hold, in KiB",
        },
    },
}

/// State shared by the device, debugfs and every open file.
pub(crate) struct Shared {
    /// This module, for `try_module_get` in `open`.
    pub(crate) module: &'static ThisModule,
    /// Per-fd cap on memory held, in bytes.
    pub(crate) fd_cap_bytes: u64,
    /// The page pool every rkalloc allocator takes its pages from.
    pub(crate) pool: Arc<pool::Pool>,
    /// The kmalloc-style size classes (`rk_malloc`/`rk_free`) and the
    /// registry of every slab cache.
    pub(crate) kmalloc: slab::SizeClasses,
    /// Every live heap and arena, for debugfs and the invariant check.
    pub(crate) catalog: Arc<heap::Catalog>,
    /// Numbers the open files, for their handles.
    pub(crate) next_fd_id: core::sync::atomic::AtomicU32,
    /// Files of `/dev/rkalloc` open now.
    pub(crate) open_fds: core::sync::atomic::AtomicU32,
    /// The benchmark's 64-byte SLUB peer, `rkalloc_peer_64`. It lives as
    /// long as the module, so that `/sys/kernel/slab/rkalloc_peer_64/`
    /// (`sheaf_capacity`...) shows how the peer ran after the run; peers of
    /// other sizes are made for each run.
    pub(crate) peer64: sys::KmemCache,
}

/// The loaded module.
///
/// Fields drop in declaration order: the device goes first, so no new file
/// can be opened while the rest is torn down; debugfs goes before the state
/// its files show.
#[pin_data]
struct RkallocModule {
    #[pin]
    miscdev: MiscDeviceRegistration<dev::RkDevice>,
    _debugfs: debugfs::Files,
    /// Dropped before `shared`, whose size classes it reclaims from.
    _slab_shrinker: sys::Shrinker,
    shared: Arc<Shared>,
}

impl RkallocModule {
    /// The module that owns `misc`.
    fn from_misc(misc: &MiscDeviceRegistration<dev::RkDevice>) -> &Self {
        let field = core::ptr::from_ref(misc).cast_mut();
        // The only `MiscDeviceRegistration<RkDevice>` is the `miscdev` field of
        // the pinned module, which outlives its registration's callbacks (the
        // registration is dropped first).
        // SAFETY: `field` is that field, so this yields the live module.
        unsafe { &*kernel::container_of!(field, RkallocModule, miscdev) }
    }
}

/// The module's pool, from the module parameters.
fn pool_config() -> pool::PoolConfig {
    let chunk_mb = (pool::PAGE_SIZE << rkcore::buddy::MAX_ORDER) as u32 >> 20;
    let max_chunks = (*module_parameters::pool_max_mb.value()).div_ceil(chunk_mb).max(1);
    let initial_chunks = (*module_parameters::pool_mb.value()).div_ceil(chunk_mb).min(max_chunks);
    pool::PoolConfig {
        initial_chunks,
        max_chunks,
        shrinker: true,
    }
}

impl kernel::InPlaceModule for RkallocModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            shared: Arc::new(
                {
                    let pool = pool::Pool::new(pool_config())?;
                    Shared {
                        module,
                        kmalloc: slab::SizeClasses::new(&pool)?,
                        pool,
                        catalog: heap::Catalog::new()?,
                        fd_cap_bytes: (*module_parameters::fd_cap_kib.value()).saturating_mul(1024),
                        open_fds: core::sync::atomic::AtomicU32::new(0),
                        next_fd_id: core::sync::atomic::AtomicU32::new(1),
                        peer64: sys::KmemCache::new(c"rkalloc_peer_64", 64, 8)?,
                    }
                },
                GFP_KERNEL,
            )?,
            _debugfs: debugfs::Files::new(
                // SAFETY: `shared` is initialised before `_debugfs` (the order
                // of this initialiser), and `this` points at the module being
                // initialised.
                unsafe { &(*this.as_ptr()).shared },
            )?,
            _slab_shrinker: {
                // SAFETY: `shared` is initialised before this field (the
                // order of this initialiser).
                let shared: &Arc<Shared> = unsafe { &(*this.as_ptr()).shared };
                // SAFETY: `shared`, declared after this field, is dropped
                // after it, and its `kmalloc` lives as long as it does.
                unsafe { sys::Shrinker::register(c"rkalloc-slab", core::ptr::from_ref(&shared.kmalloc))? }
            },
            miscdev <- MiscDeviceRegistration::register(kernel::miscdevice::MiscDeviceOptions {
                name: c"rkalloc",
            }),
        })
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
