// SPDX-License-Identifier: GPL-2.0
//! The kmalloc-style size classes (`rk_malloc`/`rk_free`), the registry
//! of every cache, and what an open file owns of them.

use super::*;

/// A raw pointer to a registered cache.
pub(super) struct CachePtr(*const Cache);

// SAFETY: the pointer names a `Sync` cache; it is only dereferenced under
// the registry mutex, while the cache is alive (it unregisters itself in
// its destructor before it goes away).
unsafe impl Send for CachePtr {}

/// The caches debugfs lists: size classes and those made through the
/// device.
///
/// # Invariants
///
/// Every pointer in `caches` names a live cache: a cache removes itself
/// (under the mutex) in its destructor before it is freed.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    pub(super) caches: Mutex<KVec<CachePtr>>,
}

impl Registry {
    pub(super) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Registry { caches <- new_mutex!(KVec::new(), "rkalloc_slab_registry") }),
            GFP_KERNEL,
        )
    }

    pub(super) fn add(&self, c: &Arc<Cache>) -> Result {
        self.caches
            .lock()
            .push(CachePtr(Arc::as_ptr(c)), GFP_KERNEL)?;
        Ok(())
    }

    pub(super) fn remove(&self, c: &Cache) {
        let me = ptr::from_ref(c);
        self.caches.lock().retain(|p| p.0 != me);
    }

    /// Calls `f` on every registered cache, in creation order.
    pub(crate) fn for_each<E>(
        &self,
        mut f: impl FnMut(&Cache) -> core::result::Result<(), E>,
    ) -> core::result::Result<(), E> {
        let caches = self.caches.lock();
        for p in caches.iter() {
            // SAFETY: registered caches are alive while the mutex is held
            // (type invariant).
            f(unsafe { &*p.0 })?;
        }
        Ok(())
    }

    /// Number of registered caches.
    pub(crate) fn len(&self) -> usize {
        self.caches.lock().len()
    }
}

/// kmalloc-style size classes, `rk_malloc`/`rk_free`, and the registry of
/// every cache for debugfs.
pub(crate) struct SizeClasses {
    pub(super) pool: Arc<Pool>,
    pub(super) registry: Arc<Registry>,
    pub(super) classes: KVec<Arc<Cache>>,
}

/// kmalloc's cache names (`kmalloc_info` in mm/slab_common.c), with our
/// prefix: `rkmalloc-8` .. `rkmalloc-512`, `rkmalloc-1k` .. `rkmalloc-8k`.
pub(super) fn class_name(size: usize, buf: &mut [u8; NAME_MAX]) -> usize {
    let mut w = kernel::str::Formatter::new(buf);
    let _ = if size >= 1024 {
        fmt::Write::write_fmt(&mut w, format_args!("rkmalloc-{}k", size / 1024))
    } else {
        fmt::Write::write_fmt(&mut w, format_args!("rkmalloc-{}", size))
    };
    w.bytes_written()
}

impl SizeClasses {
    /// Creates the 13 class caches on `pool`.
    pub(crate) fn new(pool: &Arc<Pool>) -> Result<Self> {
        let registry = Registry::new()?;
        let id = Arc::as_ptr(&registry) as usize;
        let mut classes = KVec::with_capacity(NR_CLASSES, GFP_KERNEL)?;
        for &size in CLASSES.iter() {
            let mut name = [0u8; NAME_MAX];
            let n = class_name(size, &mut name);
            classes.push(
                Cache::build(
                    pool,
                    &name[..n],
                    size,
                    8,
                    Flags::empty(),
                    Some(&registry),
                    id,
                )?,
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            pool: pool.clone(),
            registry,
            classes,
        })
    }

    /// Creates a cache listed in this registry (and so in slabinfo).
    pub(crate) fn create_cache(
        &self,
        name: &[u8],
        size: usize,
        align: usize,
        flags: Flags,
    ) -> Result<Arc<Cache>> {
        Cache::build(
            &self.pool,
            name,
            size,
            align,
            flags,
            Some(&self.registry),
            0,
        )
    }

    /// The registry of caches (size classes and created ones).
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// `rk_malloc(size)`: from the smallest class that fits, or straight
    /// from the pool above 8192 bytes (up to the pool's top order). EINVAL
    /// for 0 and for sizes beyond that. May sleep.
    #[inline]
    pub(crate) fn malloc(&self, size: usize) -> Result<NonNull<u8>> {
        match sizeclass::class_index(size).and_then(|i| self.classes.get(i)) {
            Some(c) => c.alloc(),
            None => self.malloc_large(size),
        }
    }

    #[cold]
    pub(super) fn malloc_large(&self, size: usize) -> Result<NonNull<u8>> {
        if size <= MAX_OBJECT_SIZE || size > PAGE_SIZE << LARGE_MAX_ORDER {
            return Err(EINVAL);
        }
        let pages = size.div_ceil(PAGE_SIZE);
        let order = usize::BITS - (pages - 1).leading_zeros();
        let b = self
            .pool
            .alloc_tagged(order, tag::MALLOC_LARGE)?;
        let tag = ((b.pfn as usize) << 8) | ((order as usize) << 3) | TAG_LARGE;
        // SAFETY: the block's head page is pool memory we own.
        unsafe { sys::mem::set_page_private(b.addr.as_ptr(), tag) };
        Ok(b.addr)
    }

    /// The class cache `p` belongs to, or the order of its large block.
    pub(super) fn owner(&self, p: NonNull<u8>) -> Result<core::result::Result<&Cache, (u32, u32)>> {
        // SAFETY: `p` came from `malloc` (the caller's contract, as for
        // `kfree`), so it is pool memory in the linear map.
        let tag = unsafe { sys::mem::page_private(p.as_ptr()) };
        match tag & TAG_MASK {
            TAG_SLAB => {
                let s = (tag & !TAG_MASK) as *const Slab;
                // SAFETY: a `TAG_SLAB` tag names a live descriptor whose cache
                // outlives it (invariant of `Lists`).
                let c = unsafe { &*(*s).cache };
                if c.class_of == Arc::as_ptr(&self.registry) as usize {
                    Ok(Ok(c))
                } else {
                    Err(EINVAL)
                }
            }
            TAG_LARGE if p.as_ptr() as usize % PAGE_SIZE == 0 => {
                Ok(Err(((tag >> 8) as u32, ((tag >> 3) & 31) as u32)))
            }
            _ => Err(EINVAL),
        }
    }

    /// `rk_free(p)`: no size needed; `p` must come from [`Self::malloc`]
    /// (like `kfree`, the pointer is trusted). Never sleeps.
    #[inline]
    pub(crate) fn free(&self, p: NonNull<u8>) -> Result {
        match self.owner(p)? {
            Ok(c) => c.free(p),
            Err((pfn, order)) => {
                // SAFETY: the head page of our own large block.
                unsafe { sys::mem::set_page_private(p.as_ptr(), 0) };
                self.pool.free(pfn, order)
            }
        }
    }

    /// Usable bytes at `p` (kmalloc's `ksize`).
    pub(crate) fn usable_size(&self, p: NonNull<u8>) -> Result<usize> {
        Ok(match self.owner(p)? {
            Ok(c) => c.obj_size(),
            Err((_, order)) => PAGE_SIZE << order,
        })
    }

    /// The size a request of `size` bytes really takes (class size or
    /// whole pages); EINVAL where `malloc` would refuse.
    pub(crate) fn footprint(size: usize) -> Result<usize> {
        if let Some(c) = sizeclass::round_up(size) {
            return Ok(c);
        }
        if size == 0 || size > PAGE_SIZE << LARGE_MAX_ORDER {
            return Err(EINVAL);
        }
        Ok(PAGE_SIZE << (usize::BITS - (size.div_ceil(PAGE_SIZE) - 1).leading_zeros()))
    }

    /// Shrinks every registered cache; returns the pages released.
    pub(crate) fn shrink(&self) -> usize {
        let mut pages = 0;
        let _ = self.registry.for_each(|c| {
            pages += c.shrink();
            Ok::<(), ()>(())
        });
        pages
    }

    /// For a shrinker's scan: empties every registered cache's barn and
    /// gives its empty slabs back, without sleeping (the CPUs' magazines
    /// stay). Skips the round when the registry is busy: its holder may be
    /// allocating, i.e. the very reclaim that called us. Returns pages.
    pub(crate) fn release_empty(&self) -> usize {
        let Some(caches) = self.registry.caches.try_lock() else {
            return 0;
        };
        let mut pages = 0;
        for c in caches.iter() {
            // SAFETY: registered caches are alive while the mutex is held
            // (invariant of `Registry`).
            pages += unsafe { &*c.0 }.release_empty();
        }
        pages
    }

    /// Pages held by empty slabs of every registered cache, and by slabs
    /// that only the depot's magazines pin: about what
    /// [`SizeClasses::release_empty`] could give back. Like it, it skips the
    /// round when the registry is busy.
    pub(crate) fn reclaimable_pages(&self) -> usize {
        let Some(caches) = self.registry.caches.try_lock() else {
            return 0;
        };
        let mut pages = 0;
        for c in caches.iter() {
            // SAFETY: registered caches are alive while the mutex is held
            // (invariant of `Registry`).
            let st = unsafe { &*c.0 }.stats();
            // Empty slabs, and at most the slabs the depot's objects pin
            // (release_empty flushes the depot first).
            let pinned = st.barn_cached.div_ceil(st.objects_per_slab.max(1));
            pages += (st.empty_slabs + pinned) << st.order;
        }
        pages
    }

    /// Checks every registered cache; returns the problems found.
    pub(crate) fn check(&self) -> usize {
        let mut bad = 0;
        let _ = self.registry.for_each(|c| {
            bad += c.check();
            Ok::<(), ()>(())
        });
        bad
    }
}

/// An object of a cache, owned by an open file of the device.
pub(crate) struct Object {
    /// Its cache, kept alive while the object is.
    pub(crate) cache: Arc<Cache>,
    /// The object.
    pub(crate) ptr: NonNull<u8>,
}

// SAFETY: the object is plain memory owned by whoever holds this; the cache
// is `Sync`.
unsafe impl Send for Object {}

impl Object {
    /// The object's bytes.
    pub(crate) fn memory(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is a live object of `cache`, `obj_size()` bytes,
        // owned by the holder of `&mut self` alone.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cache.obj_size()) }
    }
}

/// `rk_malloc` memory owned by an open file of the device.
pub(crate) struct Malloced {
    /// The memory.
    pub(crate) ptr: NonNull<u8>,
    /// Bytes requested.
    pub(crate) bytes: usize,
}

// SAFETY: plain memory owned by whoever holds this.
unsafe impl Send for Malloced {}

impl Malloced {
    /// The requested bytes.
    pub(crate) fn memory(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is live `rk_malloc` memory of at least `bytes`
        // bytes, owned by the holder of `&mut self` alone.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.bytes) }
    }
}

/// The slab caches' shrinker: under memory pressure, empty slabs go back to
/// the pool (whose own shrinker then gives wholly free chunks back).
impl crate::sys::Reclaim for SizeClasses {
    fn count(&self) -> u64 {
        self.reclaimable_pages() as u64
    }

    fn scan(&self, _nr: u64) -> u64 {
        self.release_empty() as u64
    }
}

