// SPDX-License-Identifier: GPL-2.0
//! A cache's slow paths: magazines traded with the barn, refilled from and
//! flushed to the slabs, new slabs from the pool, and debug allocations.

use super::*;

impl Cache {
    /// Takes up to `want` objects from the slabs, calling `put` for each
    /// until it refuses. Partial slabs go first, so empty ones can return to
    /// the pool. Returns the objects taken.
    pub(super) fn take_locked(
        &self,
        l: &mut Lists,
        want: usize,
        mut put: impl FnMut(NonNull<u8>) -> bool,
    ) -> usize {
        let mut got = 0;
        while got < want {
            let s = if !l.partial.head.is_null() {
                l.partial.head
            } else if !l.empty.head.is_null() {
                l.empty.head
            } else {
                break;
            };
            // SAFETY: `s` is linked, hence live (invariant of `Lists`), and
            // we hold the lock (`&mut Lists`).
            let slab = unsafe { &mut *s };
            // SAFETY: as above.
            let mem = unsafe { self.mem(slab) };
            let before = slab.state.inuse();
            while got < want {
                match slab.state.alloc(&self.layout, mem) {
                    Ok(off) => {
                        // `off` is inside the slab, so this cannot wrap and
                        // is not null.
                        let p = slab.base.as_ptr().wrapping_add(off);
                        let Some(p) = NonNull::new(p) else { break };
                        if !put(p) {
                            // Cannot happen (callers ask for no more than
                            // they can hold); give the object back.
                            let _ = slab.state.free(&self.layout, mem, off);
                            l.inuse += slab.state.inuse();
                            l.inuse -= before;
                            // SAFETY: live and linked, under the lock.
                            unsafe { l.relist(s) };
                            return got;
                        }
                        got += 1;
                    }
                    Err(SlabError::Exhausted) => break,
                    Err(
                        e @ (SlabError::RedZone { .. }
                        | SlabError::UseAfterFree { .. }
                        | SlabError::CorruptFreePointer { .. }),
                    ) => {
                        // The core withdrew the damaged object(s): retry.
                        self.report(slab, e);
                    }
                    Err(e) => {
                        self.report(slab, e);
                        slab.quarantined = true;
                        break;
                    }
                }
            }
            // `inuse` only grew: no underflow.
            l.inuse += slab.state.inuse() - before;
            // SAFETY: live and linked, under the lock.
            unsafe { l.relist(s) };
        }
        got
    }

    /// Returns `p` to its slab. `hint` caches the last slab looked up, so
    /// that a flush of neighbours costs one `page->private` read per slab.
    pub(super) fn put_locked(&self, l: &mut Lists, p: NonNull<u8>, hint: &mut *mut Slab) -> Result {
        let addr = p.as_ptr() as usize;
        let slab_mask = !(self.layout.slab_bytes() - 1);
        let mut s = *hint;
        // SAFETY: a non-null hint is a live descriptor of this cache (set
        // below, under the same lock hold).
        if s.is_null() || unsafe { (*s).base.as_ptr() as usize } != addr & slab_mask {
            // SAFETY: `p` came from this cache (the caller's contract for a
            // non-debug free; checked by `owner_locked` for debug ones), so
            // it is pool memory in the linear map.
            let tag = unsafe { sys::mem::page_private(p.as_ptr()) };
            s = (tag & !TAG_MASK) as *mut Slab;
            // A `TAG_SLAB` tag on pool memory names a live descriptor
            // (invariant of `Lists`: set with the slab, cleared before it is
            // freed); `||` reads it only after those checks.
            let foreign = tag & TAG_MASK != TAG_SLAB || s.is_null() || {
                // SAFETY: `s` is a live descriptor, as just checked.
                let owner = unsafe { (*s).cache };
                owner != ptr::from_ref(self)
            };
            if foreign {
                self.counters.violations.fetch_add(1, Relaxed);
                pr_err!(
                    "cache {}: invalid free of an object this cache does not own; ignored\n",
                    self.name()
                );
                return Err(EINVAL);
            }
            *hint = s;
        }
        // SAFETY: `s` is a live descriptor of this cache, and we hold the
        // lock.
        let slab = unsafe { &mut *s };
        // SAFETY: as above.
        let mem = unsafe { self.mem(slab) };
        let before = slab.state.inuse();
        let r = slab.state.free(
            &self.layout,
            mem,
            addr.wrapping_sub(slab.base.as_ptr() as usize),
        );
        // `inuse` only shrank: no underflow.
        l.inuse -= before - slab.state.inuse();
        if let Err(e) = r {
            self.report(slab, e);
        }
        // SAFETY: live and linked, under the lock.
        unsafe { l.relist(s) };
        r.map_err(|_| EINVAL)
    }

    /// Empties magazine `m` into the slabs.
    pub(super) fn flush_locked(&self, l: &mut Lists, m: &Magazine) {
        if m.count() == 0 {
            return;
        }
        let mut hint = ptr::null_mut();
        while let Some(p) = m.take() {
            let _ = self.put_locked(l, p, &mut hint);
        }
        self.counters.flushes.fetch_add(1, Relaxed);
    }

    /// Fills magazine `m` (of this cache) from the slabs; the objects taken.
    pub(super) fn refill_locked(&self, l: &mut Lists, m: &Magazine) -> usize {
        let want = self.mag_size.saturating_sub(m.count()) as usize;
        let got = self.take_locked(l, want, |p| m.put(p, self.mag_size));
        if got != 0 {
            self.counters.refills.fetch_add(1, Relaxed);
        }
        got
    }

    /// A fresh empty magazine, if the cache may have one more: never sleeps.
    pub(super) fn new_magazine(&self, l: &mut Lists) -> Option<*const Magazine> {
        if l.magazines >= self.max_magazines {
            return None;
        }
        let m = KBox::new(Magazine::new(), GFP_NOWAIT | __GFP_NOWARN).ok()?;
        l.magazines += 1;
        Some(KBox::into_raw(m).cast_const())
    }

    /// An empty magazine from the barn, or a fresh one.
    pub(super) fn empty_magazine(&self, l: &mut Lists) -> Option<*const Magazine> {
        l.barn.pop_empty().or_else(|| self.new_magazine(l))
    }

    /// Frees a magazine that nothing references any more.
    ///
    /// # Safety
    ///
    /// `m` is an empty, live magazine of this cache, owned by the caller.
    pub(super) unsafe fn free_magazine(&self, l: &mut Lists, m: *const Magazine) {
        // SAFETY: `m` came from `KBox::into_raw` in `new_magazine` and the
        // caller hands over the only reference.
        drop(unsafe { KBox::from_raw(m.cast_mut()) });
        l.magazines -= 1;
    }

    /// Gives a CPU without magazines its two; `false` when none can be had.
    pub(super) fn attach_locked(&self, l: &mut Lists, cc: &CpuCache) -> bool {
        if cc.size.load(Relaxed) != 0 {
            return true;
        }
        let Some(a) = self.empty_magazine(l) else {
            return false;
        };
        let Some(b) = self.empty_magazine(l) else {
            if let Err(a) = l.barn.push_empty(a) {
                // SAFETY: `a` is empty and ours alone.
                unsafe { self.free_magazine(l, a) };
            }
            return false;
        };
        // INVARIANT: two distinct live magazines, and the cache's size.
        cc.main.store(a.cast_mut(), Relaxed);
        cc.spare.store(b.cast_mut(), Relaxed);
        cc.size.store(self.mag_size, Relaxed);
        true
    }

    #[cold]
    pub(super) fn alloc_slow(&self) -> Result<NonNull<u8>> {
        if self.debug {
            return self.alloc_debug();
        }
        let mut grown = None;
        loop {
            let g = CpuGuard::new();
            let p = self.pcpu.with(&g, |cc| self.alloc_refill(cc, grown.take()));
            drop(g);
            if let Some(p) = p {
                self.counters.slow_allocs.fetch_add(1, Relaxed);
                return Ok(p);
            }
            if grown.is_some() {
                // A fresh slab made no object: cannot happen, but never loop.
                return Err(ENOMEM);
            }
            // None free anywhere: grow by a slab outside any lock (the pool
            // may sleep), then refill from it.
            grown = Some(self.new_slab()?);
        }
    }

    /// The alloc slow path on this CPU: the spare magazine, a full one from
    /// the barn, or a refill from the slabs (`grown`, a fresh slab, joins
    /// them first).
    pub(super) fn alloc_refill(&self, cc: &CpuCache, grown: Option<*mut Slab>) -> Option<NonNull<u8>> {
        if grown.is_none() {
            // Preempted and migrated since the fast path, or the spare has
            // objects: no lock needed.
            if let Some(p) = cc.take() {
                return Some(p);
            }
            if cc.spare().count() != 0 {
                cc.swap();
                return cc.take();
            }
        }
        let mut l = self.lists.lock();
        if let Some(s) = grown {
            // SAFETY: a fresh descriptor of this cache on no list.
            unsafe { l.relist(s) };
        }
        if !self.attach_locked(&mut l, cc) {
            // No magazine to be had: hand out one object straight away.
            let mut got = None;
            self.take_locked(&mut l, 1, |p| {
                got = Some(p);
                true
            });
            return got;
        }
        if cc.main().count() == 0 {
            if let Some(full) = l.barn.pop_full() {
                // Trade the empty magazine for a full one.
                let empty = cc.main.swap(full.cast_mut(), Relaxed).cast_const();
                if let Err(m) = l.barn.push_empty(empty) {
                    // SAFETY: `m` is empty and no longer referenced.
                    unsafe { self.free_magazine(&mut l, m) };
                }
                self.counters.exchanges.fetch_add(1, Relaxed);
                return cc.take();
            }
        }
        self.refill_locked(&mut l, cc.main());
        cc.take()
    }

    pub(super) fn alloc_debug(&self) -> Result<NonNull<u8>> {
        let mut got = None;
        self.take_locked(&mut self.lists.lock(), 1, |p| {
            got = Some(p);
            true
        });
        if got.is_none() {
            let s = self.new_slab()?;
            let mut l = self.lists.lock();
            // SAFETY: `s` is a fresh descriptor of this cache on no list.
            unsafe { l.relist(s) };
            self.take_locked(&mut l, 1, |p| {
                got = Some(p);
                true
            });
        }
        self.counters.slow_allocs.fetch_add(1, Relaxed);
        got.ok_or(ENOMEM)
    }

    #[cold]
    pub(super) fn free_slow(&self, p: NonNull<u8>) -> Result {
        self.counters.slow_frees.fetch_add(1, Relaxed);
        if self.debug {
            // Pool memory is in the linear map, so its `struct page` exists
            // and `owner_locked` may read it.
            if self.pool.pfn_of(p.as_ptr()).is_none() {
                return self.invalid_free();
            }
            let mut l = self.lists.lock();
            let mut hint = self.owner_locked(&l, p)?;
            let r = self.put_locked(&mut l, p, &mut hint);
            // Under the lock: no one can allocate `p` again before it.
            if r.is_ok() {
                self.trace_free(p);
            }
            self.trim_locked(&mut l);
            return r;
        }
        // Certain from here on: the event goes out before `p` is released.
        self.trace_free(p);
        let g = CpuGuard::new();
        self.pcpu.with(&g, |cc| self.free_flush(cc, p));
        Ok(())
    }

    /// The free slow path on this CPU: the main magazine is full. Swap in
    /// an empty spare, or trade the full spare for an empty magazine of the
    /// barn, or (barn full) empty the spare into the slabs.
    pub(super) fn free_flush(&self, cc: &CpuCache, p: NonNull<u8>) {
        // Migrated since the fast path, or the spare is empty: no lock.
        if cc.put(p) {
            return;
        }
        if cc.size.load(Relaxed) != 0 && cc.spare().count() == 0 {
            cc.swap();
            let _ = cc.put(p);
            return;
        }
        let mut l = self.lists.lock();
        if !self.attach_locked(&mut l, cc) {
            // No magazine to be had: straight back to the slab.
            let mut hint = ptr::null_mut();
            let _ = self.put_locked(&mut l, p, &mut hint);
            self.trim_locked(&mut l);
            return;
        }
        if cc.put(p) {
            return;
        }
        if l.barn.nr_full < BARN_MAX {
            if let Some(empty) = self.empty_magazine(&mut l) {
                let full = cc.spare.swap(empty.cast_mut(), Relaxed).cast_const();
                // Room was checked above.
                let _ = l.barn.push_full(full);
                cc.swap();
                let _ = cc.put(p);
                self.counters.exchanges.fetch_add(1, Relaxed);
                return;
            }
        }
        self.flush_locked(&mut l, cc.spare());
        self.trim_locked(&mut l);
        cc.swap();
        let _ = cc.put(p);
    }

    pub(super) fn invalid_free<T>(&self) -> Result<T> {
        self.counters.violations.fetch_add(1, Relaxed);
        pr_err!(
            "cache {}: invalid free of a pointer outside this cache; ignored\n",
            self.name()
        );
        Err(EINVAL)
    }

    /// For a debug free of `p`, pool memory: the descriptor of the slab of
    /// this cache that holds `p`, or a reported refusal. The tag is only
    /// compared with our own descriptors, never followed, so a pointer into
    /// another cache's slab (whose descriptor may go away meanwhile) is
    /// refused without touching it. O(slabs): debug caches trade speed for
    /// checks, as SLUB's do.
    pub(super) fn owner_locked(&self, l: &Lists, p: NonNull<u8>) -> Result<*mut Slab> {
        // SAFETY: `p` is pool memory (the caller checked), in the linear map.
        let tag = unsafe { sys::mem::page_private(p.as_ptr()) };
        let s = (tag & !TAG_MASK) as *mut Slab;
        let mut mine = false;
        if tag & TAG_MASK == TAG_SLAB {
            l.for_each(|x| mine |= ptr::eq(x, s));
        }
        if mine {
            Ok(s)
        } else {
            self.invalid_free()
        }
    }

    /// Allocates and formats a new slab; on no list yet.
    pub(super) fn new_slab(&self) -> Result<*mut Slab> {
        if fault::Point::SlabRefill.should_fail(PAGE_SIZE << self.layout.order()) {
            return Err(ENOMEM);
        }
        let block = self
            .pool
            .alloc_tagged(self.layout.order(), tag::SLAB)?;
        // SAFETY: the block is `slab_bytes()` (= `block.bytes()`) of pool
        // memory that we own alone until it is published below.
        let mem = unsafe { core::slice::from_raw_parts_mut(block.addr.as_ptr(), block.bytes()) };
        #[cfg(CONFIG_SLAB_FREELIST_RANDOM)]
        let state = SlabState::init_shuffled(&self.layout, mem, self.secret, sys::random_u64());
        #[cfg(not(CONFIG_SLAB_FREELIST_RANDOM))]
        let state = SlabState::init(&self.layout, mem, self.secret);
        let slab = state.map_err(|_| EINVAL).and_then(|state| {
            KBox::new(
                Slab {
                    state,
                    base: block.addr,
                    pfn: block.pfn,
                    on: Which::None,
                    quarantined: false,
                    prev: ptr::null_mut(),
                    next: ptr::null_mut(),
                    cache: ptr::from_ref(self),
                },
                GFP_KERNEL,
            )
            .map_err(Into::into)
        });
        let slab = match slab {
            Ok(s) => KBox::into_raw(s),
            Err(e) => {
                let _ = self.pool.free(block.pfn, block.order);
                return Err(e);
            }
        };
        for i in 0..self.layout.pages_per_slab() {
            // SAFETY: page `i` of the block is pool memory we own.
            unsafe {
                sys::mem::set_page_private(
                    block.addr.as_ptr().wrapping_add(i * PAGE_SIZE),
                    slab as usize | TAG_SLAB,
                )
            };
        }
        self.counters.slabs_allocated.fetch_add(1, Relaxed);
        Ok(slab)
    }

    /// Unlinks slab `s`, clears its tags and gives its pages back.
    ///
    /// # Safety
    ///
    /// `s` is a live, linked descriptor of this cache, under its lock, and
    /// no object of it is live (or the caller accepts to lose them).
    pub(super) unsafe fn release(&self, l: &mut Lists, s: *mut Slab) -> usize {
        // SAFETY: live and linked (caller's contract).
        let on = unsafe { (*s).on };
        if let Some(list) = l.list(on) {
            // SAFETY: linked on `on` (invariant of `Lists`).
            unsafe { list.unlink(s) };
        }
        // SAFETY: unlinked now, so this is the only reference; it came from
        // `KBox::into_raw` in `new_slab`.
        let slab = unsafe { KBox::from_raw(s) };
        l.inuse -= slab.state.inuse();
        for i in 0..self.layout.pages_per_slab() {
            // SAFETY: the slab's pages are pool memory this cache owns.
            unsafe { sys::mem::set_page_private(slab.base.as_ptr().wrapping_add(i * PAGE_SIZE), 0) };
        }
        let _ = self.pool.free(slab.pfn, self.layout.order());
        self.counters.slabs_freed.fetch_add(1, Relaxed);
        self.layout.pages_per_slab()
    }

}
