// SPDX-License-Identifier: GPL-2.0
//! rkalloc: allocators built on a buddy page pool, compared side by side with
//! the kernel's own.
//!
//! The crate root only declares the layers and wires them at load (see
//! `../../README.md`, "Layout"); arrows point down, and nothing below
//! imports anything above:
//!
//! ```text
//! iface    (uapi, /dev/rkalloc and what an fd owns, debugfs, map)
//!   |  \
//!   |   measure  (bench, replay)
//!   |  /
//! alloc    (the Allocator trait, one file per allocator, the table, conformance)
//!   |
//! mm       (pool, region, slab, heap, arena, catalog)
//!   |
//! sys + rkcore   (all FFI and the C shim; the pure algorithms)
//! ```
//!
//! [`state::Shared`] is what every layer above `mm` shares.

use kernel::{miscdevice::MiscDeviceRegistration, prelude::*, sync::Arc};

mod alloc;
mod iface;
mod measure;
mod mm;
// Public, so that the parts of the shared host crate this module does not
// use are not dead code here (nor `unreachable_pub`).
pub mod rkcore;
mod state;
mod sys;

use iface::dev::{Owner, RkDevice};
use mm::{
    catalog::Catalog,
    pool::{Pool, PoolConfig, PAGE_SIZE},
    slab::SizeClasses,
};
use state::Shared;

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

/// The loaded module.
///
/// Fields drop in declaration order: the device goes first, so no new file
/// can be opened while the rest is torn down; debugfs goes before the state
/// its files show.
#[pin_data]
struct RkallocModule {
    #[pin]
    miscdev: MiscDeviceRegistration<RkDevice<RkallocModule>>,
    _debugfs: iface::debugfs::Files,
    /// Dropped before `shared`, whose size classes it reclaims from.
    _slab_shrinker: sys::Shrinker,
    shared: Arc<Shared>,
    /// The workqueue that drains per-CPU lists: made first, gone last.
    _wq: sys::cpu::WorkQueue,
}

impl Owner for RkallocModule {
    fn shared(misc: &MiscDeviceRegistration<RkDevice<Self>>) -> Arc<Shared> {
        let field = core::ptr::from_ref(misc).cast_mut();
        // The only `MiscDeviceRegistration<RkDevice<RkallocModule>>` is the
        // `miscdev` field of the pinned module, which outlives its
        // registration's callbacks (the registration is dropped first).
        // SAFETY: `field` is that field, so this yields the live module.
        unsafe { &*kernel::container_of!(field, RkallocModule, miscdev) }
            .shared
            .clone()
    }
}

/// The module's pool, from the module parameters.
fn pool_config() -> PoolConfig {
    let chunk_mb = (PAGE_SIZE << rkcore::buddy::MAX_ORDER) as u32 >> 20;
    let max_chunks = (*module_parameters::pool_max_mb.value()).div_ceil(chunk_mb).max(1);
    let initial_chunks = (*module_parameters::pool_mb.value()).div_ceil(chunk_mb).min(max_chunks);
    PoolConfig {
        initial_chunks,
        max_chunks,
        shrinker: true,
    }
}

/// The core's page size and top order are the kernel's: the pool takes its
/// chunks with `__get_free_pages(MAX_PAGE_ORDER)` and indexes pages with
/// them.
fn check_kernel_facts() -> Result {
    if 1usize << sys::mem::page_shift() != PAGE_SIZE || sys::mem::max_page_order() != rkcore::buddy::MAX_ORDER {
        pr_err!(
            "built for PAGE_SIZE {} and MAX_PAGE_ORDER {}, but this kernel has {} and {}\n",
            PAGE_SIZE,
            rkcore::buddy::MAX_ORDER,
            1usize << sys::mem::page_shift(),
            sys::mem::max_page_order()
        );
        return Err(EINVAL);
    }
    Ok(())
}

impl kernel::InPlaceModule for RkallocModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            _wq: sys::cpu::WorkQueue::new()?,
            shared: Arc::new(
                {
                    check_kernel_facts()?;
                    sys::trace::init();
                    let pool = Pool::new(pool_config())?;
                    Shared {
                        module,
                        kmalloc: SizeClasses::new(&pool)?,
                        pool,
                        catalog: Catalog::new()?,
                        allocators: alloc::Registry::new()?,
                        fd_cap_bytes: (*module_parameters::fd_cap_kib.value()).saturating_mul(1024),
                        open_fds: core::sync::atomic::AtomicU32::new(0),
                        next_fd_id: core::sync::atomic::AtomicU32::new(1),
                        peer64: sys::KmemCache::new(c"rkalloc_peer_64", 64, 8)?,
                    }
                },
                GFP_KERNEL,
            )?,
            _debugfs: iface::debugfs::Files::new(
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
