// SPDX-License-Identifier: GPL-2.0
//! Magazines (Bonwick's, SLUB's sheaves): per-CPU stacks of free objects,
//! and the cache's depot of full and empty ones (the barn).

use super::*;

/// `count <=` the cache's magazine size `< MAG_CAP`, and `objs[..count]`
/// are free objects of the cache (in use as far as their slabs know). A
/// magazine has one owner at a time: a CPU's slot (used with preemption
/// off on that CPU) or the barn (under the cache's lock). Its fields are
/// atomics only so that statistics may read the count from elsewhere; the
/// owner's relaxed loads and stores compile to plain moves.
pub(super) struct Magazine {
    pub(super) count: AtomicU32,
    pub(super) objs: [AtomicUsize; MAG_CAP],
}

/// The magazine of CPUs without magazines yet: always empty, and never
/// written, because such a CPU's `size` is 0.
pub(super) static NO_MAGAZINE: Magazine = Magazine::new();

impl Magazine {
    pub(super) const fn new() -> Self {
        Self {
            count: AtomicU32::new(0),
            objs: [const { AtomicUsize::new(0) }; MAG_CAP],
        }
    }

    #[inline]
    pub(super) fn count(&self) -> u32 {
        self.count.load(Relaxed)
    }

    /// Takes the most recently freed (cache-hot) object.
    #[inline]
    pub(super) fn take(&self) -> Option<NonNull<u8>> {
        let n = self.count.load(Relaxed);
        if n == 0 {
            return None;
        }
        let n = n - 1;
        self.count.store(n, Relaxed);
        NonNull::new(self.objs[n as usize & MAG_MASK].load(Relaxed) as *mut u8)
    }

    /// Stores a free object; `false` when `size` objects are in already.
    #[inline]
    pub(super) fn put(&self, p: NonNull<u8>, size: u32) -> bool {
        let n = self.count.load(Relaxed);
        if n >= size {
            return false;
        }
        self.objs[n as usize & MAG_MASK].store(p.as_ptr() as usize, Relaxed);
        self.count.store(n + 1, Relaxed);
        true
    }
}

/// One CPU's magazines of one cache.
///
/// # Invariants
///
/// Either `size == 0` and both magazines are [`NO_MAGAZINE`], or `size` is
/// the cache's magazine size and `main` and `spare` are two distinct live
/// magazines of the cache (from `KBox::into_raw`) owned by this slot. A
/// cache frees its magazines only when it is dropped, so statistics may
/// follow the pointers from another CPU (they are atomics for that alone:
/// the owner's relaxed loads and stores are plain moves).
pub(super) struct CpuCache {
    pub(super) main: AtomicPtr<Magazine>,
    pub(super) spare: AtomicPtr<Magazine>,
    /// Magazine capacity once attached, 0 before: an atomic so that other
    /// CPUs may look at this CPU's cache through shared references.
    pub(super) size: AtomicU32,
    pub(super) fast_allocs: AtomicU64,
    pub(super) fast_frees: AtomicU64,
}

/// `NO_MAGAZINE` as the pointer a slot holds. It is only ever read through
/// `&Magazine` (all its fields are atomics), never written.
pub(super) fn no_magazine() -> *mut Magazine {
    ptr::from_ref(&NO_MAGAZINE).cast_mut()
}

impl CpuCache {
    pub(super) fn new() -> Self {
        Self {
            main: AtomicPtr::new(no_magazine()),
            spare: AtomicPtr::new(no_magazine()),
            size: AtomicU32::new(0),
            fast_allocs: AtomicU64::new(0),
            fast_frees: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(super) fn main(&self) -> &Magazine {
        // SAFETY: `main` is `NO_MAGAZINE` or a live magazine of the cache,
        // which outlives its per-CPU slots (type invariant).
        unsafe { &*self.main.load(Relaxed) }
    }

    #[inline]
    pub(super) fn spare(&self) -> &Magazine {
        // SAFETY: as for `main`.
        unsafe { &*self.spare.load(Relaxed) }
    }

    #[inline]
    pub(super) fn take(&self) -> Option<NonNull<u8>> {
        self.main().take()
    }

    #[inline]
    pub(super) fn put(&self, p: NonNull<u8>) -> bool {
        self.main().put(p, self.size.load(Relaxed))
    }

    /// Exchanges the loaded and the spare magazine.
    pub(super) fn swap(&self) {
        // Only this CPU changes its slots (with preemption disabled), so
        // two relaxed load/store pairs make an exchange; other CPUs only
        // read the counts behind them.
        let m = self.main.load(Relaxed);
        self.main.store(self.spare.load(Relaxed), Relaxed);
        self.spare.store(m, Relaxed);
    }

    /// Objects held by both magazines.
    pub(super) fn cached(&self) -> usize {
        (self.main().count() + self.spare().count()) as usize
    }
}

/// The cache's depot of full and empty magazines (Bonwick's depot, SLUB's
/// barn), under the cache's lock.
///
/// # Invariants
///
/// `full[..nr_full]` are full magazines, `empty[..nr_empty]` empty ones,
/// each a live magazine of the cache owned by the barn.
pub(super) struct Barn {
    pub(super) full: [*const Magazine; BARN_MAX],
    pub(super) nr_full: usize,
    pub(super) empty: [*const Magazine; BARN_MAX],
    pub(super) nr_empty: usize,
}

impl Barn {
    pub(super) const fn new() -> Self {
        Self {
            full: [ptr::null(); BARN_MAX],
            nr_full: 0,
            empty: [ptr::null(); BARN_MAX],
            nr_empty: 0,
        }
    }

    pub(super) fn pop_full(&mut self) -> Option<*const Magazine> {
        self.nr_full = self.nr_full.checked_sub(1)?;
        self.full.get(self.nr_full).copied()
    }

    pub(super) fn pop_empty(&mut self) -> Option<*const Magazine> {
        self.nr_empty = self.nr_empty.checked_sub(1)?;
        self.empty.get(self.nr_empty).copied()
    }

    /// Stores full magazine `m`; gives it back when the barn is full.
    pub(super) fn push_full(&mut self, m: *const Magazine) -> core::result::Result<(), *const Magazine> {
        let slot = self.full.get_mut(self.nr_full).ok_or(m)?;
        *slot = m;
        self.nr_full += 1;
        Ok(())
    }

    /// Stores empty magazine `m`; gives it back when the barn is full.
    pub(super) fn push_empty(&mut self, m: *const Magazine) -> core::result::Result<(), *const Magazine> {
        let slot = self.empty.get_mut(self.nr_empty).ok_or(m)?;
        *slot = m;
        self.nr_empty += 1;
        Ok(())
    }

    /// Objects in the full magazines.
    pub(super) fn objects(&self) -> usize {
        self.full
            .iter()
            .take(self.nr_full)
            .map(|&m| {
                // SAFETY: the barn's magazines are live (type invariant).
                unsafe { (*m).count() as usize }
            })
            .sum()
    }
}

/// Objects per magazine, SLAB's `enable_cpucache` limits: fewer for bigger
/// objects.
pub(super) fn magazine_size(stride: usize) -> u32 {
    match stride {
        s if s > PAGE_SIZE => 8,
        s if s > 1024 => 24,
        s if s > 256 => 54,
        _ => 120,
    }
}
