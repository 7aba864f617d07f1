// SPDX-License-Identifier: GPL-2.0
//! A slab cache: its construction, its fast paths (magazine pop and push)
//! and its teardown.

use super::*;


/// A slab cache: objects of one size, from slabs of pool pages.
#[pin_data(PinnedDrop)]
pub(crate) struct Cache {
    /// The name, NUL-terminated (for trace events).
    pub(super) name: [u8; NAME_MAX + 1],
    pub(super) name_len: usize,
    pub(super) layout: Layout,
    /// Any debug flag: every alloc and free goes to the slabs.
    pub(super) debug: bool,
    /// Hardens the in-object free pointers (`SLAB_FREELIST_HARDENED`).
    pub(super) secret: u32,
    /// Empty slabs kept on the empty list.
    pub(super) keep_empty: usize,
    pub(super) pool: Arc<Pool>,
    #[pin]
    pub(super) lists: SpinLock<Lists>,
    pub(super) pcpu: PerCpuShared<CpuCache>,
    /// Objects per magazine.
    pub(super) mag_size: u32,
    /// Most magazines the cache may hold: two per CPU and a full barn.
    pub(super) max_magazines: usize,
    pub(super) counters: Counters,
    /// The registry listing this cache, if any.
    pub(super) registry: Option<Arc<Registry>>,
    /// Identifies the [`SizeClasses`] this cache is a class of (0: none).
    pub(super) class_of: usize,
}

/// Checks a cache name: 1 to [`NAME_MAX`] printable ASCII bytes without
/// spaces, so that slabinfo's columns stay columns.
pub(super) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && name.iter().all(|b| b.is_ascii_graphic())
}

impl Cache {
    /// Creates a cache of `size`-byte objects aligned to `align` on `pool`.
    ///
    /// EINVAL for a size of 0 or above 8192, an alignment that is not a
    /// power of two up to a page, or a name that is empty, longer than
    /// [`NAME_MAX`] or not printable ASCII without spaces.
    pub(crate) fn new(
        pool: &Arc<Pool>,
        name: &[u8],
        size: usize,
        align: usize,
        flags: Flags,
    ) -> Result<Arc<Self>> {
        Self::build(pool, name, size, align, flags, None, 0)
    }

    pub(super) fn build(
        pool: &Arc<Pool>,
        name: &[u8],
        size: usize,
        align: usize,
        flags: Flags,
        registry: Option<&Arc<Registry>>,
        class_of: usize,
    ) -> Result<Arc<Self>> {
        if !valid_name(name) {
            return Err(EINVAL);
        }
        let min_objects = crate::rkcore::slab::slub_min_objects(sys::num_online_cpus());
        let layout =
            Layout::with_min_objects(size, align, flags, min_objects).map_err(|_| EINVAL)?;
        let mut n = [0u8; NAME_MAX + 1];
        n[..name.len()].copy_from_slice(name);
        // Outside the initialiser: in there, `name` is the field already
        // written.
        let name_len = name.len();
        let mag_size = magazine_size(layout.stride());
        // SLUB's min_partial: clamp(ilog2(size) / 2, 5, 10).
        let keep_empty =
            ((usize::BITS - 1 - layout.stride().leading_zeros()) / 2).clamp(5, 10) as usize;
        let cache = Arc::pin_init(
            try_pin_init!(Cache {
                name: n,
                name_len,
                layout,
                debug: flags != Flags::empty(),
                secret: sys::random_u64() as u32,
                keep_empty,
                pool: pool.clone(),
                lists <- new_spinlock!(
                    Lists {
                        partial: SlabList::new(),
                        full: SlabList::new(),
                        empty: SlabList::new(),
                        inuse: 0,
                        barn: Barn::new(),
                        magazines: 0,
                    },
                    "rkalloc_slab_cache"
                ),
                pcpu: PerCpuShared::new(CpuCache::new)?,
                mag_size,
                max_magazines: 2 * (sys::nr_cpu_ids() as usize + BARN_MAX),
                counters: Counters::default(),
                registry: registry.cloned(),
                class_of,
            }),
            GFP_KERNEL,
        )?;
        if let Some(r) = registry {
            r.add(&cache)?;
        }
        Ok(cache)
    }

    /// The cache's name.
    pub(crate) fn name(&self) -> &str {
        core::str::from_utf8(self.name.get(..self.name_len).unwrap_or(&[])).unwrap_or("?")
    }

    /// The name as a C string, for trace events.
    #[inline]
    pub(crate) fn cname(&self) -> &CStr {
        let bytes = self.name.get(..=self.name_len).unwrap_or(b"?\0");
        // SAFETY: `valid_name` allowed no NUL in the name, and the byte
        // after it is the array's zero (the array is one longer than the
        // longest name).
        unsafe { CStr::from_bytes_with_nul_unchecked(bytes) }
    }

    #[cfg(rkalloc_kunit)]
    /// The object layout.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Usable bytes of each object.
    pub(crate) fn obj_size(&self) -> usize {
        self.layout.obj_size()
    }

    /// Kernel memory a cache may cost besides its slabs (for per-fd caps):
    /// itself, its per-CPU slots and all the magazines it may hold.
    pub(crate) fn footprint() -> usize {
        let cpus = sys::nr_cpu_ids() as usize;
        core::mem::size_of::<Cache>()
            + cpus * core::mem::size_of::<CpuCache>()
            + 2 * (cpus + BARN_MAX) * core::mem::size_of::<Magazine>()
    }

    /// Allocates one object. May sleep (the pool may grow); ENOMEM when
    /// neither the cache nor the pool has room.
    #[inline(always)]
    pub(crate) fn alloc(&self) -> Result<NonNull<u8>> {
        if !self.debug {
            let g = CpuGuard::new();
            let p = self.pcpu.with(&g, |cc| {
                let p = cc.take();
                if p.is_some() {
                    bump(&cc.fast_allocs);
                }
                p
            });
            if let Some(p) = p {
                if sys::trace::alloc_on() {
                    sys::trace::alloc(self.cname(), p.as_ptr(), self.obj_size(), -1);
                }
                return Ok(p);
            }
        }
        let p = self.alloc_slow()?;
        if sys::trace::alloc_on() {
            sys::trace::alloc(self.cname(), p.as_ptr(), self.obj_size(), -1);
        }
        Ok(p)
    }

    /// Frees one object of this cache. Never sleeps.
    ///
    /// On a debug cache the object is checked at once: a double or invalid
    /// free, or a clobbered red zone, is reported, counted and refused
    /// with EINVAL, and the object is not reused. Without debug flags the
    /// pointer is trusted, like `kmem_cache_free`'s.
    #[inline(always)]
    pub(crate) fn free(&self, p: NonNull<u8>) -> Result {
        if !self.debug {
            let g = CpuGuard::new();
            let done = self.pcpu.with(&g, |cc| {
                let done = cc.put(p);
                if done {
                    bump(&cc.fast_frees);
                }
                done
            });
            if done {
                // With preemption still off (`g`): the object is in this
                // CPU's magazine, which no other CPU takes from meanwhile,
                // so the rk_free precedes the next owner's rk_alloc.
                self.trace_free(p);
                return Ok(());
            }
        }
        self.free_slow(p)
    }

    /// Fires rk_free for `p`, whose free is certain, before another CPU can
    /// allocate it again.
    #[inline(always)]
    pub(super) fn trace_free(&self, p: NonNull<u8>) {
        if sys::trace::free_on() {
            sys::trace::free(self.cname(), p.as_ptr(), self.obj_size(), -1);
        }
    }

    /// Allocates `out.len()` objects into `out`, all or nothing: on failure
    /// every object taken is freed again and `out` is left unspecified.
    pub(crate) fn alloc_bulk(&self, out: &mut [*mut u8]) -> Result {
        for i in 0..out.len() {
            match self.alloc() {
                Ok(p) => out[i] = p.as_ptr(),
                Err(e) => {
                    for q in &out[..i] {
                        if let Some(q) = NonNull::new(*q) {
                            let _ = self.free(q);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    #[cfg(rkalloc_kunit)]
    /// Frees every object of `objs` (null entries are skipped). Returns the
    /// first error of a debug cache's checks, after trying every object.
    pub(crate) fn free_bulk(&self, objs: &[*mut u8]) -> Result {
        let mut r = Ok(());
        for p in objs {
            if let Some(p) = NonNull::new(*p) {
                if let Err(e) = self.free(p) {
                    r = r.and(Err(e));
                }
            }
        }
        r
    }

    /// The memory of slab `s` as the core wants it.
    ///
    /// # Safety
    ///
    /// `s` is a live descriptor of this cache, and the caller holds the
    /// cache's lock for as long as it uses the slice.
    ///
    /// The slice also covers live objects, which their owners may be
    /// writing meanwhile; the core only reads and writes free slots, red
    /// zones and the bitmap, bytes no user owns, so no access races.
    #[expect(clippy::mut_from_ref)]
    pub(super) unsafe fn mem(&self, s: &Slab) -> &mut [u8] {
        // SAFETY: `base` is `slab_bytes()` of pool memory owned by this
        // slab (caller's contract); see above for the aliasing argument.
        unsafe { core::slice::from_raw_parts_mut(s.base.as_ptr(), self.layout.slab_bytes()) }
    }

    /// Reports a violation the core found in `s` (once, and counted).
    pub(super) fn report(&self, s: &Slab, e: SlabError) {
        self.counters.violations.fetch_add(1, Relaxed);
        let name = self.name();
        match e {
            SlabError::DoubleFree { offset } => {
                pr_err!("cache {}: double free of the object at offset {} of slab {}\n", name, offset, s.pfn)
            }
            SlabError::Misaligned { offset } => pr_err!(
                "cache {}: invalid free at offset {} of slab {}: not the start of an object\n",
                name,
                offset,
                s.pfn
            ),
            SlabError::OutOfRange { offset } => pr_err!(
                "cache {}: invalid free at offset {} of slab {}: outside the objects\n",
                name,
                offset,
                s.pfn
            ),
            SlabError::RedZone { offset, at } => pr_err!(
                "cache {}: red zone of the object at offset {} of slab {} overwritten at offset {}; object withdrawn\n",
                name,
                offset,
                s.pfn,
                at
            ),
            SlabError::UseAfterFree { offset, at } => pr_err!(
                "cache {}: freed object at offset {} of slab {} written at offset {} (poison damaged); object withdrawn\n",
                name,
                offset,
                s.pfn,
                at
            ),
            SlabError::CorruptFreePointer { offset } => pr_err!(
                "cache {}: corrupted free pointer in the object at offset {} of slab {}; rest of its free list withdrawn\n",
                name,
                offset,
                s.pfn
            ),
            SlabError::Invalid | SlabError::ShortMemory | SlabError::Exhausted => {
                pr_err!("cache {}: slab {} is inconsistent ({:?}); slab withdrawn\n", name, s.pfn, e)
            }
        }
    }

}


#[pinned_drop]
impl PinnedDrop for Cache {
    fn drop(self: Pin<&mut Self>) {
        if let Some(r) = &self.registry {
            r.remove(&self);
        }
        // The last reference is gone, so no CPU uses the magazines: empty
        // and free them from here.
        let mut l = self.lists.lock();
        for cpu in 0..sys::nr_cpu_ids() {
            if let Some(cc) = self.pcpu.get(cpu) {
                if cc.size.load(Relaxed) != 0 {
                    // SAFETY: the cache is being dropped, hence quiescent:
                    // the magazines are live, this CPU's own, and taken out
                    // of the slots before they are freed.
                    unsafe {
                        self.flush_locked(&mut l, cc.main());
                        self.flush_locked(&mut l, cc.spare());
                        self.free_magazine(&mut l, cc.main.swap(no_magazine(), Relaxed));
                        self.free_magazine(&mut l, cc.spare.swap(no_magazine(), Relaxed));
                    }
                    cc.size.store(0, Relaxed);
                }
            }
        }
        self.drain_barn_locked(&mut l);
        while let Some(m) = l.barn.pop_empty() {
            // SAFETY: the barn's empty magazines are live and only its own.
            unsafe { self.free_magazine(&mut l, m) };
        }
        let mut lost = 0;
        for list in [Which::Partial, Which::Full, Which::Empty] {
            while let Some(s) = l.list(list).map(|x| x.head).filter(|s| !s.is_null()) {
                // SAFETY: linked, hence live, under the lock.
                let inuse = unsafe { (*s).state.inuse() };
                if inuse == 0 {
                    // SAFETY: as above, and no object is live.
                    unsafe { self.release(&mut l, s) };
                    continue;
                }
                // Objects are still referenced somewhere: leave the pages
                // allocated rather than let them be reused; the pool's
                // teardown reports them.
                lost += inuse;
                if let Some(x) = l.list(list) {
                    // SAFETY: `s` is linked on `list`.
                    unsafe { x.unlink(s) };
                }
                // SAFETY: unlinked, so ours alone; from `KBox::into_raw`.
                let slab = unsafe { KBox::from_raw(s) };
                for i in 0..self.layout.pages_per_slab() {
                    // SAFETY: the slab's pages are pool memory we own.
                    unsafe {
                        sys::mem::set_page_private(slab.base.as_ptr().wrapping_add(i * PAGE_SIZE), 0)
                    };
                }
                l.inuse -= inuse;
            }
        }
        if lost != 0 {
            pr_err!(
                "cache {}: dropped with {} objects in use; their slabs are leaked\n",
                self.name(),
                lost
            );
        }
    }
}

