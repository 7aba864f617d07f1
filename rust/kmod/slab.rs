// SPDX-License-Identifier: GPL-2.0
//! Slab caches and kmalloc-style size classes on the page pool.
//!
//! The bookkeeping inside a slab (free list in the free objects, red zones,
//! poison, allocation bitmap) is the pure [`crate::rkcore::slab`]; this file
//! is its kernel glue, modelled on SLUB:
//!
//! - A **cache** ([`Cache`]) hands out objects of one size. Its slabs are
//!   `2^order` pool pages ([`Layout::order`] keeps the waste at or below 1/8,
//!   like SLUB's `calculate_order`), each with a small descriptor
//!   ([`Slab`]). Slabs sit on a partial, a full and an empty list under the
//!   cache's spinlock; up to [`Cache::keep_empty`] empty slabs stay, the rest
//!   go back to the pool at once, and [`Cache::shrink`] releases them all.
//! - **The fast path** is Bonwick's magazine layer (SLUB's sheaves and
//!   barn in 7.x): each CPU has a loaded and a spare magazine, a stack of
//!   object pointers. An alloc pops, a free pushes, with preemption
//!   disabled and no shared lock or atomic RMW. When both magazines are
//!   empty (or full) the CPU trades one, under the cache's lock, for a full
//!   (or empty) one of the cache's depot, the barn; only when the barn has
//!   none does it refill a magazine from the slabs (or flush one to them).
//!   So a working set of up to `BARN_MAX` magazines moves between CPUs and
//!   the barn a magazine at a time, without touching the slabs. Objects are
//!   not tied to a CPU: a free on another CPU lands in that CPU's magazine.
//! - **Owner lookup in O(1)**: every page of a slab carries
//!   `descriptor | TAG_SLAB` in its `struct page`'s `private` field, which
//!   belongs to whoever allocated the page (the pool takes its chunks from
//!   `alloc_pages` and never uses it). A large [`SizeClasses::malloc`]
//!   block carries its pool pfn and order instead ([`TAG_LARGE`]), so
//!   [`SizeClasses::free`] needs no size. There is no per-object header.
//! - **Debug caches** (any of [`Flags`]) bypass the per-CPU arrays, like
//!   SLUB debug, so that every free is checked against the slab at once:
//!   double and invalid frees, red zones, poison and corrupted free pointers
//!   are reported once with `pr_err` (cache name and object offset, never an
//!   address), counted, and the object is never handed out again.
//! - **Size classes** ([`SizeClasses`]): 13 caches of 8 to 8192 bytes behind
//!   `rk_malloc`/`rk_free`; larger requests go to the pool directly.
//!
//! Lock order: registry mutex, then a cache's lock, then the pool's lock.
//! Everything here runs in process context; allocations may sleep (the pool
//! may grow), frees never do.

use crate::{
    pool::{Pool, PAGE_SIZE},
    rkcore::{
        sizeclass::{self, CLASSES, NR_CLASSES},
        slab::{Flags, Layout, SlabError, SlabState, MAX_OBJECT_SIZE},
    },
    sys::{self, CpuGuard, PerCpuShared},
};
use core::{
    fmt,
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed},
};
use kernel::{
    alloc::flags::{__GFP_NOWARN, GFP_NOWAIT},
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// Longest cache name, NUL excluded (the UAPI's `RKALLOC_NAME_LEN` - 1).
pub(crate) const NAME_MAX: usize = 31;

/// Capacity of a magazine; a power of two so that indexing is a mask (no
/// bounds check on the fast path). The sizes in use stay below it.
const MAG_CAP: usize = 128;
const MAG_MASK: usize = MAG_CAP - 1;

/// Full and empty magazines the barn holds at most, each (SLUB's
/// `MAX_FULL_SHEAVES`/`MAX_EMPTY_SHEAVES`).
const BARN_MAX: usize = 10;

/// Tag bits in `page->private` (descriptors are at least 8-byte aligned).
const TAG_MASK: usize = 0b111;
/// `private` = slab descriptor address | `TAG_SLAB`.
const TAG_SLAB: usize = 1;
/// `private` = `pfn << 8 | order << 3 | TAG_LARGE`: a large malloc block.
const TAG_LARGE: usize = 2;

/// Pages of the largest [`SizeClasses::malloc`] block (the pool's top order).
const LARGE_MAX_ORDER: u32 = crate::rkcore::buddy::MAX_ORDER;

/// Bumps a counter written by one CPU only: a plain load and store, no
/// locked RMW, while readers on other CPUs still see a whole value.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

/// A magazine: a stack of free objects of one cache.
///
/// # Invariants
///
/// `count <=` the cache's magazine size `< MAG_CAP`, and `objs[..count]`
/// are free objects of the cache (in use as far as their slabs know). A
/// magazine has one owner at a time: a CPU's slot (used with preemption
/// off on that CPU) or the barn (under the cache's lock). Its fields are
/// atomics only so that statistics may read the count from elsewhere; the
/// owner's relaxed loads and stores compile to plain moves.
struct Magazine {
    count: AtomicU32,
    objs: [AtomicUsize; MAG_CAP],
}

/// The magazine of CPUs without magazines yet: always empty, and never
/// written, because such a CPU's `size` is 0.
static NO_MAGAZINE: Magazine = Magazine::new();

impl Magazine {
    const fn new() -> Self {
        Self {
            count: AtomicU32::new(0),
            objs: [const { AtomicUsize::new(0) }; MAG_CAP],
        }
    }

    #[inline]
    fn count(&self) -> u32 {
        self.count.load(Relaxed)
    }

    /// Takes the most recently freed (cache-hot) object.
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
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
    fn put(&self, p: NonNull<u8>, size: u32) -> bool {
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
struct CpuCache {
    main: AtomicPtr<Magazine>,
    spare: AtomicPtr<Magazine>,
    /// Magazine capacity once attached, 0 before: an atomic so that other
    /// CPUs may look at this CPU's cache through shared references.
    size: AtomicU32,
    fast_allocs: AtomicU64,
    fast_frees: AtomicU64,
}

/// `NO_MAGAZINE` as the pointer a slot holds. It is only ever read through
/// `&Magazine` (all its fields are atomics), never written.
fn no_magazine() -> *mut Magazine {
    ptr::from_ref(&NO_MAGAZINE).cast_mut()
}

impl CpuCache {
    fn new() -> Self {
        Self {
            main: AtomicPtr::new(no_magazine()),
            spare: AtomicPtr::new(no_magazine()),
            size: AtomicU32::new(0),
            fast_allocs: AtomicU64::new(0),
            fast_frees: AtomicU64::new(0),
        }
    }

    #[inline]
    fn main(&self) -> &Magazine {
        // SAFETY: `main` is `NO_MAGAZINE` or a live magazine of the cache,
        // which outlives its per-CPU slots (type invariant).
        unsafe { &*self.main.load(Relaxed) }
    }

    #[inline]
    fn spare(&self) -> &Magazine {
        // SAFETY: as for `main`.
        unsafe { &*self.spare.load(Relaxed) }
    }

    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        self.main().take()
    }

    #[inline]
    fn put(&self, p: NonNull<u8>) -> bool {
        self.main().put(p, self.size.load(Relaxed))
    }

    /// Exchanges the loaded and the spare magazine.
    fn swap(&self) {
        // Only this CPU changes its slots (with preemption disabled), so
        // two relaxed load/store pairs make an exchange; other CPUs only
        // read the counts behind them.
        let m = self.main.load(Relaxed);
        self.main.store(self.spare.load(Relaxed), Relaxed);
        self.spare.store(m, Relaxed);
    }

    /// Objects held by both magazines.
    fn cached(&self) -> usize {
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
struct Barn {
    full: [*const Magazine; BARN_MAX],
    nr_full: usize,
    empty: [*const Magazine; BARN_MAX],
    nr_empty: usize,
}

impl Barn {
    const fn new() -> Self {
        Self {
            full: [ptr::null(); BARN_MAX],
            nr_full: 0,
            empty: [ptr::null(); BARN_MAX],
            nr_empty: 0,
        }
    }

    fn pop_full(&mut self) -> Option<*const Magazine> {
        self.nr_full = self.nr_full.checked_sub(1)?;
        self.full.get(self.nr_full).copied()
    }

    fn pop_empty(&mut self) -> Option<*const Magazine> {
        self.nr_empty = self.nr_empty.checked_sub(1)?;
        self.empty.get(self.nr_empty).copied()
    }

    /// Stores full magazine `m`; gives it back when the barn is full.
    fn push_full(&mut self, m: *const Magazine) -> core::result::Result<(), *const Magazine> {
        let slot = self.full.get_mut(self.nr_full).ok_or(m)?;
        *slot = m;
        self.nr_full += 1;
        Ok(())
    }

    /// Stores empty magazine `m`; gives it back when the barn is full.
    fn push_empty(&mut self, m: *const Magazine) -> core::result::Result<(), *const Magazine> {
        let slot = self.empty.get_mut(self.nr_empty).ok_or(m)?;
        *slot = m;
        self.nr_empty += 1;
        Ok(())
    }

    /// Objects in the full magazines.
    fn objects(&self) -> usize {
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
fn magazine_size(stride: usize) -> u32 {
    match stride {
        s if s > PAGE_SIZE => 8,
        s if s > 1024 => 24,
        s if s > 256 => 54,
        _ => 120,
    }
}

/// Which list a slab is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    /// Not linked (being created or released).
    None,
    /// Some objects free, some live or quarantined.
    Partial,
    /// No free object.
    Full,
    /// No live and no quarantined object: may go back to the pool.
    Empty,
}

/// A slab's descriptor, allocated with `KBox` and reached through the
/// lists and through `page->private` of each of its pages.
struct Slab {
    state: SlabState,
    /// The slab's memory: `layout.slab_bytes()` bytes of pool memory,
    /// aligned to their size.
    base: NonNull<u8>,
    /// Pool pfn of the first page (for `Pool::free` and reports).
    pfn: u32,
    on: Which,
    /// Set when the core reported an inconsistency it cannot repair; the
    /// slab then stays on the full list until the cache goes away.
    quarantined: bool,
    prev: *mut Slab,
    next: *mut Slab,
    /// The owning cache; it outlives the descriptor.
    cache: *const Cache,
}

impl Slab {
    fn which(&self) -> Which {
        if self.quarantined || self.state.is_full() {
            Which::Full
        } else if self.state.inuse() == 0 && self.state.leaked() == 0 {
            Which::Empty
        } else {
            Which::Partial
        }
    }
}

/// An intrusive doubly linked list of slab descriptors.
struct SlabList {
    head: *mut Slab,
    len: usize,
}

impl SlabList {
    const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    /// # Safety
    ///
    /// `s` is a live descriptor on no list, and the caller holds the lock
    /// of the cache that owns this list and `s`.
    unsafe fn push(&mut self, s: *mut Slab) {
        // SAFETY: `s` and the current head are live descriptors of this
        // cache, reached only under its lock (caller's contract).
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    ///
    /// `s` is a live descriptor linked on this list, under the cache's lock.
    unsafe fn unlink(&mut self, s: *mut Slab) {
        // SAFETY: `s` and its neighbours are live descriptors linked on this
        // list, reached only under the lock (caller's contract).
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*s).prev = ptr::null_mut();
            (*s).next = ptr::null_mut();
        }
        self.len -= 1;
    }
}

/// A cache's slabs, under its lock.
///
/// # Invariants
///
/// - Every slab of the cache is linked on exactly one list, the one its
///   `on` field names, and that is the list `Slab::which` picks (the lists
///   are updated whenever a slab's state changes).
/// - Every linked pointer came from `KBox::into_raw` in `Cache::new_slab`
///   and stays live until `Cache::release` unlinks and frees it.
/// - Every page of a linked slab has `page->private == slab | TAG_SLAB`.
/// - `inuse` is the sum of the slabs' `state.inuse()`: live objects plus
///   the free ones parked in magazines.
/// - `magazines` counts the cache's live magazines (per-CPU and barn).
struct Lists {
    partial: SlabList,
    full: SlabList,
    empty: SlabList,
    inuse: usize,
    barn: Barn,
    magazines: usize,
}

// SAFETY: the descriptors the lists point to are owned by the cache and
// only reached under its lock, whichever thread holds it.
unsafe impl Send for Lists {}

impl Lists {
    fn list(&mut self, w: Which) -> Option<&mut SlabList> {
        match w {
            Which::Partial => Some(&mut self.partial),
            Which::Full => Some(&mut self.full),
            Which::Empty => Some(&mut self.empty),
            Which::None => None,
        }
    }

    /// Moves `s` to the list its state calls for.
    ///
    /// # Safety
    ///
    /// `s` is a live descriptor of this cache, linked on the list named by
    /// its `on` field (or on none with `Which::None`).
    unsafe fn relist(&mut self, s: *mut Slab) {
        // SAFETY: live descriptor, under the lock (caller's contract).
        let (from, to) = unsafe { ((*s).on, (*s).which()) };
        if from == to {
            return;
        }
        if let Some(l) = self.list(from) {
            // SAFETY: `s` is linked on `from` (caller's contract).
            unsafe { l.unlink(s) };
        }
        if let Some(l) = self.list(to) {
            // SAFETY: `s` was just unlinked (or never linked).
            unsafe { l.push(s) };
        }
        // SAFETY: as above.
        unsafe { (*s).on = to };
    }

    fn nr_slabs(&self) -> usize {
        self.partial.len + self.full.len + self.empty.len
    }

    /// Calls `f` on every slab. `f` must not relink slabs.
    fn for_each(&self, mut f: impl FnMut(&Slab)) {
        for l in [&self.partial, &self.full, &self.empty] {
            let mut s = l.head;
            while !s.is_null() {
                // SAFETY: linked descriptors are live (type invariant) and
                // the caller holds the lock (it has `&self`).
                let slab = unsafe { &*s };
                f(slab);
                s = slab.next;
            }
        }
    }
}

/// The slow-path and debug counters of a cache.
#[derive(Default)]
struct Counters {
    slow_allocs: AtomicU64,
    slow_frees: AtomicU64,
    /// Magazines filled from the slabs.
    refills: AtomicU64,
    /// Magazines emptied into the slabs.
    flushes: AtomicU64,
    /// Magazines traded with the barn.
    exchanges: AtomicU64,
    slabs_allocated: AtomicU64,
    slabs_freed: AtomicU64,
    violations: AtomicU64,
    leaks_reported: AtomicU64,
}

/// A snapshot of a cache for slabinfo and slabstats.
pub(crate) struct CacheStats {
    pub(crate) obj_size: usize,
    pub(crate) stride: usize,
    pub(crate) align: usize,
    pub(crate) flags: u32,
    pub(crate) order: u32,
    pub(crate) objects_per_slab: usize,
    pub(crate) waste_per_slab: usize,
    /// Descriptor plus in-slab bitmap, per slab.
    pub(crate) metadata_per_slab: usize,
    /// Objects per magazine (0: no magazines, a debug cache).
    pub(crate) magazine_size: u32,
    pub(crate) magazines: usize,
    pub(crate) nr_slabs: usize,
    /// Slabs with at least one object in use.
    pub(crate) active_slabs: usize,
    pub(crate) empty_slabs: usize,
    /// Objects in use, those parked on per-CPU arrays included (as SLUB
    /// counts its per-CPU slabs and sheaves).
    pub(crate) active_objs: usize,
    /// Free objects in the CPUs' magazines.
    pub(crate) cpu_cached: usize,
    /// Free objects in the barn's full magazines.
    pub(crate) barn_cached: usize,
    pub(crate) quarantined_objs: usize,
    pub(crate) fast_allocs: u64,
    pub(crate) fast_frees: u64,
    pub(crate) slow_allocs: u64,
    pub(crate) slow_frees: u64,
    pub(crate) refills: u64,
    pub(crate) flushes: u64,
    pub(crate) exchanges: u64,
    pub(crate) slabs_allocated: u64,
    pub(crate) slabs_freed: u64,
    pub(crate) violations: u64,
    pub(crate) leaks_reported: u64,
}

impl CacheStats {
    /// Slab bytes per object not used by the object itself, in
    /// thousandths: `(slab bytes - objects * object size) / objects`, as
    /// SLUB's `/sys/kernel/slab/<cache>/` figures give it (padding, red
    /// zones, the debug bitmap and the slab's tail). The descriptor, which
    /// SLUB keeps in `struct page`, is `metadata_per_slab`.
    pub(crate) fn waste_per_object_milli(&self) -> u64 {
        let slab = PAGE_SIZE << self.order;
        let used = self.objects_per_slab * self.obj_size;
        let n = self.objects_per_slab.max(1) as u64;
        (slab.saturating_sub(used) as u64 * 1000) / n
    }
}

/// A slab cache: objects of one size, from slabs of pool pages.
#[pin_data(PinnedDrop)]
pub(crate) struct Cache {
    name: [u8; NAME_MAX],
    name_len: usize,
    layout: Layout,
    /// Any debug flag: every alloc and free goes to the slabs.
    debug: bool,
    /// Hardens the in-object free pointers (`SLAB_FREELIST_HARDENED`).
    secret: u32,
    /// Empty slabs kept on the empty list.
    keep_empty: usize,
    pool: Arc<Pool>,
    #[pin]
    lists: SpinLock<Lists>,
    pcpu: PerCpuShared<CpuCache>,
    /// Objects per magazine.
    mag_size: u32,
    /// Most magazines the cache may hold: two per CPU and a full barn.
    max_magazines: usize,
    counters: Counters,
    /// The registry listing this cache, if any.
    registry: Option<Arc<Registry>>,
    /// Identifies the [`SizeClasses`] this cache is a class of (0: none).
    class_of: usize,
}

/// Checks a cache name: 1 to [`NAME_MAX`] printable ASCII bytes without
/// spaces, so that slabinfo's columns stay columns.
fn valid_name(name: &[u8]) -> bool {
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

    fn build(
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
        let mut n = [0u8; NAME_MAX];
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
                secret: sys::random_u32(),
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
    #[inline]
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
                return Ok(p);
            }
        }
        self.alloc_slow()
    }

    /// Frees one object of this cache. Never sleeps.
    ///
    /// On a debug cache the object is checked at once: a double or invalid
    /// free, or a clobbered red zone, is reported, counted and refused
    /// with EINVAL, and the object is not reused. Without debug flags the
    /// pointer is trusted, like `kmem_cache_free`'s.
    #[inline]
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
                return Ok(());
            }
        }
        self.free_slow(p)
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
    unsafe fn mem(&self, s: &Slab) -> &mut [u8] {
        // SAFETY: `base` is `slab_bytes()` of pool memory owned by this
        // slab (caller's contract); see above for the aliasing argument.
        unsafe { core::slice::from_raw_parts_mut(s.base.as_ptr(), self.layout.slab_bytes()) }
    }

    /// Reports a violation the core found in `s` (once, and counted).
    fn report(&self, s: &Slab, e: SlabError) {
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

    /// Takes up to `want` objects from the slabs, calling `put` for each
    /// until it refuses. Partial slabs go first, so empty ones can return to
    /// the pool. Returns the objects taken.
    fn take_locked(
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
    fn put_locked(&self, l: &mut Lists, p: NonNull<u8>, hint: &mut *mut Slab) -> Result {
        let addr = p.as_ptr() as usize;
        let slab_mask = !(self.layout.slab_bytes() - 1);
        let mut s = *hint;
        // SAFETY: a non-null hint is a live descriptor of this cache (set
        // below, under the same lock hold).
        if s.is_null() || unsafe { (*s).base.as_ptr() as usize } != addr & slab_mask {
            // SAFETY: `p` came from this cache (the caller's contract for a
            // non-debug free; checked by `owner_locked` for debug ones), so
            // it is pool memory in the linear map.
            let tag = unsafe { sys::page_private(p.as_ptr()) };
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
    fn flush_locked(&self, l: &mut Lists, m: &Magazine) {
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
    fn refill_locked(&self, l: &mut Lists, m: &Magazine) -> usize {
        let want = self.mag_size.saturating_sub(m.count()) as usize;
        let got = self.take_locked(l, want, |p| m.put(p, self.mag_size));
        if got != 0 {
            self.counters.refills.fetch_add(1, Relaxed);
        }
        got
    }

    /// A fresh empty magazine, if the cache may have one more: never sleeps.
    fn new_magazine(&self, l: &mut Lists) -> Option<*const Magazine> {
        if l.magazines >= self.max_magazines {
            return None;
        }
        let m = KBox::new(Magazine::new(), GFP_NOWAIT | __GFP_NOWARN).ok()?;
        l.magazines += 1;
        Some(KBox::into_raw(m).cast_const())
    }

    /// An empty magazine from the barn, or a fresh one.
    fn empty_magazine(&self, l: &mut Lists) -> Option<*const Magazine> {
        l.barn.pop_empty().or_else(|| self.new_magazine(l))
    }

    /// Frees a magazine that nothing references any more.
    ///
    /// # Safety
    ///
    /// `m` is an empty, live magazine of this cache, owned by the caller.
    unsafe fn free_magazine(&self, l: &mut Lists, m: *const Magazine) {
        // SAFETY: `m` came from `KBox::into_raw` in `new_magazine` and the
        // caller hands over the only reference.
        drop(unsafe { KBox::from_raw(m.cast_mut()) });
        l.magazines -= 1;
    }

    /// Gives a CPU without magazines its two; `false` when none can be had.
    fn attach_locked(&self, l: &mut Lists, cc: &CpuCache) -> bool {
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
    fn alloc_slow(&self) -> Result<NonNull<u8>> {
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
    fn alloc_refill(&self, cc: &CpuCache, grown: Option<*mut Slab>) -> Option<NonNull<u8>> {
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

    fn alloc_debug(&self) -> Result<NonNull<u8>> {
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
    fn free_slow(&self, p: NonNull<u8>) -> Result {
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
            self.trim_locked(&mut l);
            return r;
        }
        let g = CpuGuard::new();
        self.pcpu.with(&g, |cc| self.free_flush(cc, p));
        Ok(())
    }

    /// The free slow path on this CPU: the main magazine is full. Swap in
    /// an empty spare, or trade the full spare for an empty magazine of the
    /// barn, or (barn full) empty the spare into the slabs.
    fn free_flush(&self, cc: &CpuCache, p: NonNull<u8>) {
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

    fn invalid_free<T>(&self) -> Result<T> {
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
    fn owner_locked(&self, l: &Lists, p: NonNull<u8>) -> Result<*mut Slab> {
        // SAFETY: `p` is pool memory (the caller checked), in the linear map.
        let tag = unsafe { sys::page_private(p.as_ptr()) };
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
    fn new_slab(&self) -> Result<*mut Slab> {
        let block = self
            .pool
            .alloc_tagged(self.layout.order(), crate::pool::tag::SLAB)?;
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
                sys::set_page_private(
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
    unsafe fn release(&self, l: &mut Lists, s: *mut Slab) -> usize {
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
            unsafe { sys::set_page_private(slab.base.as_ptr().wrapping_add(i * PAGE_SIZE), 0) };
        }
        let _ = self.pool.free(slab.pfn, self.layout.order());
        self.counters.slabs_freed.fetch_add(1, Relaxed);
        self.layout.pages_per_slab()
    }

    /// Gives empty slabs beyond `keep_empty` back to the pool.
    fn trim_locked(&self, l: &mut Lists) {
        while l.empty.len > self.keep_empty {
            let s = l.empty.head;
            // SAFETY: the head of the empty list is live and linked, and an
            // empty slab has no live object.
            unsafe { self.release(l, s) };
        }
    }

    /// Empties every CPU's array into the slabs. Process context (sleeps).
    fn drain_cpus(&self) {
        if self.debug {
            return;
        }
        self.pcpu.for_each_cpu(|cc| {
            let mut l = self.lists.lock();
            self.flush_locked(&mut l, cc.main());
            self.flush_locked(&mut l, cc.spare());
        });
    }

    /// Empties the barn's full magazines into the slabs; they join its
    /// empty ones (or are freed when those are at their maximum).
    fn drain_barn_locked(&self, l: &mut Lists) {
        while let Some(m) = l.barn.pop_full() {
            // SAFETY: the barn's magazines are live (invariant of `Barn`).
            self.flush_locked(l, unsafe { &*m });
            if let Err(m) = l.barn.push_empty(m) {
                // SAFETY: just emptied, and no longer referenced.
                unsafe { self.free_magazine(l, m) };
            }
        }
    }

    /// Drains the per-CPU magazines and the barn and gives every empty
    /// slab back to the pool. Returns the pages released. Process context
    /// (it sleeps, running on every CPU in turn).
    pub(crate) fn shrink(&self) -> usize {
        self.drain_cpus();
        self.release_empty()
    }

    /// Empties the barn and gives every empty slab back, but leaves the
    /// CPUs' magazines alone; never sleeps, so a shrinker's scan may call
    /// it. Returns the pages released.
    pub(crate) fn release_empty(&self) -> usize {
        let mut l = self.lists.lock();
        self.drain_barn_locked(&mut l);
        let mut pages = 0;
        while !l.empty.head.is_null() {
            let s = l.empty.head;
            // SAFETY: linked, hence live; empty, so no live object.
            pages += unsafe { self.release(&mut l, s) };
        }
        pages
    }

    /// Destroys the cache's contents: drains the magazines and, if no
    /// object is live, gives every slab back (quarantined objects too).
    /// EBUSY while objects are live; under `DEBUG_CHECKS` each leaked
    /// object is reported, as SLUB's `kmem_cache_destroy` does.
    ///
    /// The cache stays usable afterwards (it simply starts empty); owners
    /// drop it. Callers must not allocate from it concurrently.
    pub(crate) fn destroy(&self) -> Result {
        self.drain_cpus();
        let mut l = self.lists.lock();
        self.drain_barn_locked(&mut l);
        if l.inuse != 0 {
            if self.layout.flags().contains(Flags::DEBUG_CHECKS) {
                self.report_leaks(&l);
            } else {
                pr_err!(
                    "cache {}: destroy refused: {} objects still in use\n",
                    self.name(),
                    l.inuse
                );
            }
            return Err(EBUSY);
        }
        for list in [Which::Partial, Which::Full, Which::Empty] {
            while let Some(s) = l.list(list).map(|x| x.head).filter(|s| !s.is_null()) {
                // SAFETY: linked, hence live; `inuse` is 0, so no live object.
                unsafe { self.release(&mut l, s) };
            }
        }
        Ok(())
    }

    /// `pr_err`s up to 16 leaked objects (offsets only) and a total.
    fn report_leaks(&self, l: &Lists) {
        let mut n = 0usize;
        l.for_each(|s| {
            // SAFETY: `s` is live and we hold the lock (`&Lists`); the bitmap
            // walk only reads.
            let mem = unsafe { self.mem(s) };
            if let Some(live) = s.state.live_objects(&self.layout, mem) {
                for off in live {
                    if n < 16 {
                        pr_err!(
                            "cache {}: leaked object at offset {} of slab {}\n",
                            self.name(),
                            off,
                            s.pfn
                        );
                    }
                    n += 1;
                }
            }
        });
        self.counters.leaks_reported.fetch_add(n as u64, Relaxed);
        pr_err!(
            "cache {}: destroy refused: {} objects still in use\n",
            self.name(),
            n
        );
    }

    /// Runs the core's `validate` on every slab and checks the counts.
    /// Returns the number of problems found (each reported).
    pub(crate) fn check(&self) -> usize {
        let l = self.lists.lock();
        let mut bad = 0;
        let mut inuse = 0;
        l.for_each(|s| {
            inuse += s.state.inuse();
            // SAFETY: live, under the lock; `validate` only reads.
            let mem = unsafe { self.mem(s) };
            if let Err(e) = s.state.validate(&self.layout, mem) {
                pr_err!(
                    "cache {}: check: slab {} fails validation: {:?}\n",
                    self.name(),
                    s.pfn,
                    e
                );
                bad += 1;
            }
            if s.on != s.which() {
                pr_err!(
                    "cache {}: check: slab {} on the wrong list\n",
                    self.name(),
                    s.pfn
                );
                bad += 1;
            }
        });
        if inuse != l.inuse {
            pr_err!(
                "cache {}: check: {} objects in use by the slabs, {} counted\n",
                self.name(),
                inuse,
                l.inuse
            );
            bad += 1;
        }
        bad
    }

    /// A snapshot of the cache's figures.
    pub(crate) fn stats(&self) -> CacheStats {
        let (mut fast_allocs, mut fast_frees, mut cpu_cached) = (0, 0, 0);
        for cpu in 0..sys::nr_cpu_ids() {
            // Only atomics are read, from magazines that live as long as
            // the cache; a racing update gives a stale but whole figure.
            if let Some(cc) = self.pcpu.get(cpu) {
                fast_allocs += cc.fast_allocs.load(Relaxed);
                fast_frees += cc.fast_frees.load(Relaxed);
                cpu_cached += cc.cached();
            }
        }
        let (
            nr_slabs,
            empty_slabs,
            active_objs,
            active_slabs,
            quarantined_objs,
            barn_cached,
            magazines,
        ) = {
            let l = self.lists.lock();
            let mut active = 0;
            let mut quarantined = 0;
            l.for_each(|s| {
                if s.state.inuse() != 0 {
                    active += 1;
                }
                quarantined += s.state.leaked();
            });
            (
                l.nr_slabs(),
                l.empty.len,
                l.inuse,
                active,
                quarantined,
                l.barn.objects(),
                l.magazines,
            )
        };
        let c = &self.counters;
        CacheStats {
            obj_size: self.layout.obj_size(),
            stride: self.layout.stride(),
            align: self.layout.align(),
            flags: self.layout.flags().bits(),
            order: self.layout.order(),
            objects_per_slab: self.layout.objects_per_slab(),
            waste_per_slab: self.layout.waste_per_slab(),
            metadata_per_slab: core::mem::size_of::<Slab>() + self.layout.metadata_bytes_per_slab(),
            magazine_size: if self.debug { 0 } else { self.mag_size },
            magazines,
            nr_slabs,
            active_slabs,
            empty_slabs,
            active_objs,
            cpu_cached,
            barn_cached,
            quarantined_objs,
            fast_allocs,
            fast_frees,
            slow_allocs: c.slow_allocs.load(Relaxed),
            slow_frees: c.slow_frees.load(Relaxed),
            refills: c.refills.load(Relaxed),
            flushes: c.flushes.load(Relaxed),
            exchanges: c.exchanges.load(Relaxed),
            slabs_allocated: c.slabs_allocated.load(Relaxed),
            slabs_freed: c.slabs_freed.load(Relaxed),
            violations: c.violations.load(Relaxed),
            leaks_reported: c.leaks_reported.load(Relaxed),
        }
    }

    /// The `/proc/slabinfo` 2.1 line of this cache (`cache_show` in
    /// mm/slab_common.c), `objsize` being the stride as SLUB's `s->size`.
    /// The tunables are SLAB's, which had the same layers: `limit` and
    /// `batchcount` are the magazine size (the per-CPU unit of transfer),
    /// `sharedfactor` the barn's magazines and `sharedavail` the objects in
    /// it.
    pub(crate) fn slabinfo_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.stats();
        let num_objs = st.nr_slabs * st.objects_per_slab;
        writeln!(
            f,
            "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
            self.name(),
            st.active_objs,
            num_objs,
            st.stride,
            st.objects_per_slab,
            1u32 << st.order,
            st.magazine_size,
            st.magazine_size,
            if st.magazine_size == 0 { 0 } else { BARN_MAX },
            st.active_slabs,
            st.nr_slabs,
            st.barn_cached
        )
    }

    /// One `slabstats` line: the cache's name, then `key=value` pairs.
    pub(crate) fn stats_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.stats();
        let w = s.waste_per_object_milli();
        writeln!(
            f,
            "{} object_size={} stride={} align={} flags={:#x} order={} objects_per_slab={} waste_per_slab={} \
             waste_per_object={}.{:03} metadata_per_slab={} magazine_size={} magazines={} slabs={} active_slabs={} \
             empty_slabs={} active_objs={} cpu_cached={} barn_cached={} quarantined={} fast_allocs={} fast_frees={} \
             slow_allocs={} slow_frees={} refills={} flushes={} exchanges={} slabs_allocated={} slabs_freed={} \
             violations={} leaks_reported={}",
            self.name(),
            s.obj_size,
            s.stride,
            s.align,
            s.flags,
            s.order,
            s.objects_per_slab,
            s.waste_per_slab,
            w / 1000,
            w % 1000,
            s.metadata_per_slab,
            s.magazine_size,
            s.magazines,
            s.nr_slabs,
            s.active_slabs,
            s.empty_slabs,
            s.active_objs,
            s.cpu_cached,
            s.barn_cached,
            s.quarantined_objs,
            s.fast_allocs,
            s.fast_frees,
            s.slow_allocs,
            s.slow_frees,
            s.refills,
            s.flushes,
            s.exchanges,
            s.slabs_allocated,
            s.slabs_freed,
            s.violations,
            s.leaks_reported
        )
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
                        sys::set_page_private(slab.base.as_ptr().wrapping_add(i * PAGE_SIZE), 0)
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

/// A raw pointer to a registered cache.
struct CachePtr(*const Cache);

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
    caches: Mutex<KVec<CachePtr>>,
}

impl Registry {
    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Registry { caches <- new_mutex!(KVec::new(), "rkalloc_slab_registry") }),
            GFP_KERNEL,
        )
    }

    fn add(&self, c: &Arc<Cache>) -> Result {
        self.caches
            .lock()
            .push(CachePtr(Arc::as_ptr(c)), GFP_KERNEL)?;
        Ok(())
    }

    fn remove(&self, c: &Cache) {
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
    pool: Arc<Pool>,
    registry: Arc<Registry>,
    classes: KVec<Arc<Cache>>,
}

/// kmalloc's cache names (`kmalloc_info` in mm/slab_common.c), with our
/// prefix: `rkmalloc-8` .. `rkmalloc-512`, `rkmalloc-1k` .. `rkmalloc-8k`.
fn class_name(size: usize, buf: &mut [u8; NAME_MAX]) -> usize {
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
    fn malloc_large(&self, size: usize) -> Result<NonNull<u8>> {
        if size <= MAX_OBJECT_SIZE || size > PAGE_SIZE << LARGE_MAX_ORDER {
            return Err(EINVAL);
        }
        let pages = size.div_ceil(PAGE_SIZE);
        let order = usize::BITS - (pages - 1).leading_zeros();
        let b = self
            .pool
            .alloc_tagged(order, crate::pool::tag::MALLOC_LARGE)?;
        let tag = ((b.pfn as usize) << 8) | ((order as usize) << 3) | TAG_LARGE;
        // SAFETY: the block's head page is pool memory we own.
        unsafe { sys::set_page_private(b.addr.as_ptr(), tag) };
        Ok(b.addr)
    }

    /// The class cache `p` belongs to, or the order of its large block.
    fn owner(&self, p: NonNull<u8>) -> Result<core::result::Result<&Cache, (u32, u32)>> {
        // SAFETY: `p` came from `malloc` (the caller's contract, as for
        // `kfree`), so it is pool memory in the linear map.
        let tag = unsafe { sys::page_private(p.as_ptr()) };
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
                unsafe { sys::set_page_private(p.as_ptr(), 0) };
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

#[kunit_tests(rkalloc_slab)]
mod tests {
    use super::*;
    use crate::pool::PoolConfig;

    fn pool(max_chunks: u32) -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(1, max_chunks))
    }

    /// xorshift64*: a small deterministic generator for shuffles.
    fn next(s: &mut u64) -> u64 {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pattern(k: usize, j: usize) -> u8 {
        ((k.wrapping_mul(0x9e37_79b9) >> 7) as u8) ^ (j as u8).wrapping_mul(31) ^ (k as u8)
    }

    fn write_pattern(p: *mut u8, len: usize, k: usize) {
        for j in 0..len {
            // SAFETY: `p` is a live object of at least `len` bytes owned by
            // the test.
            unsafe { p.add(j).write(pattern(k, j)) };
        }
    }

    fn pattern_ok(p: *mut u8, len: usize, k: usize) -> bool {
        // SAFETY: as in `write_pattern`.
        (0..len).all(|j| unsafe { p.add(j).read() } == pattern(k, j))
    }

    fn used_pages(p: &Pool) -> u64 {
        let s = p.stats();
        s.total_pages - s.free_pages
    }

    /// Fill a cache across several slabs with a distinct pattern in every
    /// object, then free in random order, checking each object first: any
    /// overlap between objects, or with the bookkeeping, breaks a pattern.
    #[test]
    fn fill_and_free_in_random_order() -> Result {
        let p = pool(4)?;
        for (size, align, flags) in [
            (200, 8, Flags::empty()),
            (64, 64, Flags::empty()),
            (24, 8, Flags::ALL),
            (1000, 16, Flags::RED_ZONE | Flags::POISON),
        ] {
            let c = Cache::new(&p, b"test-fill", size, align, flags)?;
            let n = c.layout().objects_per_slab() * 5 + 3;
            let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
            for k in 0..n {
                let o = c.alloc()?.as_ptr();
                assert_eq!(o as usize % c.layout().align(), 0);
                write_pattern(o, size, k);
                objs.push((o, k), GFP_KERNEL)?;
            }
            assert!(c.stats().nr_slabs >= 5);
            let mut rng = 0x1234_5678_9abc_def1u64 ^ size as u64;
            while !objs.is_empty() {
                let i = (next(&mut rng) % objs.len() as u64) as usize;
                let (o, k) = objs[i];
                assert!(pattern_ok(o, size, k));
                let _ = objs.remove(i);
                c.free(NonNull::new(o).ok_or(EINVAL)?)?;
            }
            assert_eq!(c.check(), 0);
            let st = c.stats();
            assert_eq!(st.violations, 0);
            assert!(st.empty_slabs <= c.keep_empty);
            c.shrink();
            assert_eq!(c.stats().nr_slabs, 0);
            assert_eq!(c.stats().active_objs, 0);
            c.destroy()?;
        }
        assert_eq!(used_pages(&p), 0);
        p.check()?;
        Ok(())
    }

    /// Bulk alloc and free; a bulk allocation that cannot complete is
    /// rolled back entirely.
    #[test]
    fn bulk_alloc_and_free() -> Result {
        let p = pool(1)?;
        let c = Cache::new(&p, b"test-bulk", 96, 8, Flags::empty())?;
        let mut objs = KVec::from_elem(ptr::null_mut::<u8>(), 1000, GFP_KERNEL)?;
        c.alloc_bulk(&mut objs)?;
        for (k, &o) in objs.iter().enumerate() {
            assert!(!o.is_null());
            write_pattern(o, 96, k);
        }
        for (k, &o) in objs.iter().enumerate() {
            assert!(pattern_ok(o, 96, k));
        }
        assert!(c.stats().active_objs >= 1000);
        c.free_bulk(&objs)?;
        c.shrink();
        assert_eq!(c.stats().active_objs, 0);
        // One 4 MiB chunk holds 512 objects of 8 KiB: 600 cannot succeed.
        let big = Cache::new(&p, b"test-bulk-8k", 8192, 8, Flags::empty())?;
        let mut many = KVec::from_elem(ptr::null_mut::<u8>(), 600, GFP_KERNEL)?;
        assert_eq!(big.alloc_bulk(&mut many).err(), Some(ENOMEM));
        big.shrink();
        c.shrink();
        assert_eq!(big.stats().active_objs, 0);
        assert_eq!(used_pages(&p), 0);
        // And a bulk that fits still works after the failure.
        let mut some = KVec::from_elem(ptr::null_mut::<u8>(), 100, GFP_KERNEL)?;
        big.alloc_bulk(&mut some)?;
        big.free_bulk(&some)?;
        big.destroy()?;
        c.destroy()?;
        Ok(())
    }

    /// Every size from 1 to 8192 maps to the smallest class that holds it,
    /// through `malloc`, and the memory is really that big.
    #[test]
    fn size_class_of_every_size() -> Result {
        let p = pool(4)?;
        let sc = SizeClasses::new(&p)?;
        for size in 1..=MAX_OBJECT_SIZE {
            let o = sc.malloc(size)?;
            let want = CLASSES.iter().copied().find(|&c| c >= size).ok_or(EINVAL)?;
            assert_eq!(sc.usable_size(o)?, want);
            let c = sc.owner(o)?.map_err(|_| EINVAL)?;
            assert_eq!(c.obj_size(), want);
            // SAFETY: `o` is `want >= size` bytes of our memory.
            unsafe { ptr::write_bytes(o.as_ptr(), 0x5a, size) };
            // SAFETY: as above.
            assert_eq!(unsafe { o.as_ptr().add(size - 1).read() }, 0x5a);
            sc.free(o)?;
        }
        for size in [8193, 12288, 16384, 100_000, PAGE_SIZE << LARGE_MAX_ORDER] {
            let o = sc.malloc(size)?;
            assert!(sc.usable_size(o)? >= size);
            assert_eq!(o.as_ptr() as usize % PAGE_SIZE, 0);
            // SAFETY: `o` is at least `size` bytes of our memory.
            unsafe { ptr::write_bytes(o.as_ptr(), 0xa5, size) };
            sc.free(o)?;
        }
        assert_eq!(sc.malloc(0).err(), Some(EINVAL));
        assert_eq!(
            sc.malloc((PAGE_SIZE << LARGE_MAX_ORDER) + 1).err(),
            Some(EINVAL)
        );
        assert_eq!(sc.registry().len(), NR_CLASSES);
        assert_eq!(sc.check(), 0);
        sc.shrink();
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// A red zone clobber and a double free are detected, counted and
    /// survived, and the object concerned is never handed out again.
    #[test]
    fn red_zone_and_double_free_are_caught() -> Result {
        let p = pool(4)?;
        for flags in [Flags::RED_ZONE, Flags::ALL] {
            let c = Cache::new(&p, b"test-redzone", 64, 8, flags)?;
            let o = c.alloc()?;
            // SAFETY: the right red zone follows the 64-byte object inside
            // its slot (`Flags::RED_ZONE`), so this writes slab memory;
            // lib/tests/slub_kunit.c's test_clobber_zone does the same.
            unsafe { o.as_ptr().add(64).write(0x12) };
            assert_eq!(c.free(o).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 1);
            assert_eq!(c.stats().quarantined_objs, 1);
            // Freeing it again is now a double free, also refused.
            assert_eq!(c.free(o).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 2);
            let n = c.layout().objects_per_slab() * 2;
            let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                let q = c.alloc()?;
                assert_ne!(q, o);
                objs.push(q, GFP_KERNEL)?;
            }
            for q in objs.drain_all() {
                c.free(q)?;
            }
            assert_eq!(c.stats().violations, 2);
            c.destroy()?;
        }
        for flags in [Flags::DEBUG_CHECKS, Flags::POISON | Flags::DEBUG_CHECKS] {
            let c = Cache::new(&p, b"test-double", 128, 8, flags)?;
            let a = c.alloc()?;
            let b = c.alloc()?;
            let d = c.alloc()?;
            c.free(a)?;
            c.free(b)?;
            // `a` is not the free list head: only the bitmap catches it.
            assert_eq!(c.free(a).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 1);
            // Invalid frees: inside an object, and memory of no slab.
            let inside = NonNull::new(d.as_ptr().wrapping_add(8)).ok_or(EINVAL)?;
            assert_eq!(c.free(inside).err(), Some(EINVAL));
            let foreign = [0u64; 4];
            let foreign = NonNull::new(foreign.as_ptr().cast_mut().cast::<u8>()).ok_or(EINVAL)?;
            assert_eq!(c.free(foreign).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 3);
            // Every object is still handed out at most once.
            let n = c.layout().objects_per_slab() + 5;
            let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
            for k in 0..n {
                let q = c.alloc()?;
                assert!(objs.iter().all(|&(x, _)| x != q));
                assert_ne!(q, d);
                write_pattern(q.as_ptr(), 128, k);
                objs.push((q, k), GFP_KERNEL)?;
            }
            for (q, k) in objs.drain_all() {
                assert!(pattern_ok(q.as_ptr(), 128, k));
                c.free(q)?;
            }
            c.free(d)?;
            assert_eq!(c.check(), 0);
            c.destroy()?;
        }
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// A write to a freed object (poison) and a scribbled free pointer are
    /// caught at allocation, counted, and the damaged object withdrawn.
    #[test]
    fn use_after_free_and_corrupt_free_pointer() -> Result {
        let p = pool(4)?;
        let c = Cache::new(&p, b"test-poison", 64, 8, Flags::POISON)?;
        let a = c.alloc()?;
        c.free(a)?;
        // SAFETY: `a` is freed but its slab is ours and alive: the write
        // lands in slab memory (that is what the test is about).
        unsafe { a.as_ptr().write(0) };
        let b = c.alloc()?;
        assert_ne!(a, b);
        assert_eq!(c.stats().violations, 1);
        c.free(b)?;
        c.destroy()?;

        let c = Cache::new(&p, b"test-freeptr", 64, 8, Flags::DEBUG_CHECKS)?;
        let a = c.alloc()?;
        let keep = c.alloc()?;
        c.free(a)?;
        // The free pointer lives inside the free object: scribble over it.
        // SAFETY: as above.
        unsafe { ptr::write_bytes(a.as_ptr(), 0xff, 64) };
        let b = c.alloc()?;
        assert_ne!(a, b);
        assert_ne!(keep, b);
        assert_eq!(c.stats().violations, 1);
        c.free(b)?;
        c.free(keep)?;
        c.destroy()?;
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Objects allocated on one CPU and freed on another go back correctly,
    /// through the other CPU's array and, on flush, to their slabs.
    #[test]
    fn free_on_another_cpu() -> Result {
        let p = pool(4)?;
        let first = (0..sys::nr_cpu_ids())
            .find(|&c| sys::cpu_online(c))
            .ok_or(EINVAL)?;
        let last = (0..sys::nr_cpu_ids())
            .rev()
            .find(|&c| sys::cpu_online(c))
            .ok_or(EINVAL)?;
        if first == last {
            pr_info!("free_on_another_cpu: one CPU online; both sides run on it\n");
        }
        for flags in [Flags::empty(), Flags::DEBUG_CHECKS] {
            let c = Cache::new(&p, b"test-xcpu", 48, 8, flags)?;
            let n = 700usize;
            // Addresses as integers: raw pointers may not cross threads.
            let mut objs = KVec::from_elem(0usize, n, GFP_KERNEL)?;
            let alloc_all = |objs: &mut KVec<usize>| -> i32 {
                for (k, o) in objs.iter_mut().enumerate() {
                    match c.alloc() {
                        Ok(p) => {
                            write_pattern(p.as_ptr(), 48, k);
                            *o = p.as_ptr() as usize;
                        }
                        Err(e) => return e.to_errno(),
                    }
                }
                0
            };
            let free_all = |objs: &KVec<usize>| -> i32 {
                for (k, &o) in objs.iter().enumerate() {
                    if !pattern_ok(o as *mut u8, 48, k) {
                        return -1;
                    }
                    let Some(p) = NonNull::new(o as *mut u8) else {
                        return -2;
                    };
                    if let Err(e) = c.free(p) {
                        return e.to_errno();
                    }
                }
                0
            };
            assert_eq!(sys::run_on_cpu(first, || alloc_all(&mut objs))?, 0);
            let before = c.stats().fast_frees;
            assert_eq!(sys::run_on_cpu(last, || free_all(&objs))?, 0);
            let st = c.stats();
            if flags == Flags::empty() {
                assert!(st.fast_frees > before);
                // More than two magazines' worth: some went to the barn.
                assert!(st.exchanges > 0);
            }
            assert_eq!(st.violations, 0);
            // The far CPU now reuses what was freed there.
            assert_eq!(sys::run_on_cpu(last, || alloc_all(&mut objs))?, 0);
            assert_eq!(sys::run_on_cpu(first, || free_all(&objs))?, 0);
            c.shrink();
            assert_eq!(c.stats().active_objs, 0);
            assert_eq!(c.check(), 0);
            c.destroy()?;
        }
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Destroy refuses with EBUSY while objects are live (and counts the
    /// leaks under DEBUG_CHECKS), then succeeds once they are freed.
    #[test]
    fn destroy_with_live_objects_refuses() -> Result {
        let p = pool(4)?;
        for flags in [Flags::empty(), Flags::DEBUG_CHECKS] {
            let c = Cache::new(&p, b"test-destroy", 256, 8, flags)?;
            let mut objs = KVec::new();
            for _ in 0..3 {
                objs.push(c.alloc()?, GFP_KERNEL)?;
            }
            assert_eq!(c.destroy().err(), Some(EBUSY));
            if flags == Flags::DEBUG_CHECKS {
                assert_eq!(c.stats().leaks_reported, 3);
            }
            // Still fully usable.
            let extra = c.alloc()?;
            c.free(extra)?;
            assert_eq!(c.destroy().err(), Some(EBUSY));
            for o in objs.drain_all() {
                c.free(o)?;
            }
            c.destroy()?;
            assert_eq!(c.stats().nr_slabs, 0);
        }
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Bad parameters give EINVAL and create nothing.
    #[test]
    fn bad_create_arguments() -> Result {
        let p = pool(4)?;
        let e = Some(EINVAL);
        assert_eq!(Cache::new(&p, b"x", 0, 8, Flags::empty()).err(), e);
        assert_eq!(
            Cache::new(&p, b"x", MAX_OBJECT_SIZE + 1, 8, Flags::empty()).err(),
            e
        );
        assert_eq!(Cache::new(&p, b"x", 64, 3, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"x", 64, 0, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"x", 64, 8192, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"", 64, 8, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"has space", 64, 8, Flags::empty()).err(), e);
        assert_eq!(
            Cache::new(&p, &[b'a'; NAME_MAX + 1], 64, 8, Flags::empty()).err(),
            e
        );
        assert!(Cache::new(&p, &[b'a'; NAME_MAX], MAX_OBJECT_SIZE, 4096, Flags::ALL).is_ok());
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Objects beyond what the magazines and the barn hold go back to their
    /// slabs, and empty slabs beyond a few go back to the pool at once;
    /// shrink returns the rest, magazines and barn included.
    #[test]
    fn empty_slabs_return_to_the_pool() -> Result {
        let p = pool(4)?;
        let c = Cache::new(&p, b"test-empty", 512, 8, Flags::empty())?;
        let per = c.layout().objects_per_slab();
        let n = per * 100;
        let mut objs = KVec::from_elem(ptr::null_mut::<u8>(), n, GFP_KERNEL)?;
        c.alloc_bulk(&mut objs)?;
        let st = c.stats();
        assert!(st.nr_slabs >= 100);
        assert_eq!(st.slabs_allocated as usize, st.nr_slabs);
        c.free_bulk(&objs)?;
        let st = c.stats();
        let cached = st.cpu_cached + st.barn_cached;
        // Every object in use now sits in a magazine, at most two per CPU
        // and a full barn; only the slabs those pin, plus a few empty ones,
        // are left.
        let most = (2 * sys::nr_cpu_ids() as usize + BARN_MAX) * st.magazine_size as usize;
        assert!(cached <= most);
        assert!(st.barn_cached > 0);
        assert_eq!(st.active_objs, cached);
        assert!(st.empty_slabs <= c.keep_empty);
        assert!(st.nr_slabs - st.empty_slabs <= cached);
        assert!(st.slabs_freed as usize + c.keep_empty + cached >= st.slabs_allocated as usize);
        assert!(st.slabs_freed > 0);
        // The shrinker's part alone: the barn empties, the CPUs keep theirs.
        c.release_empty();
        let st = c.stats();
        assert_eq!((st.barn_cached, st.empty_slabs), (0, 0));
        assert_eq!(st.active_objs, st.cpu_cached);
        let pages = c.shrink();
        assert!(pages > 0);
        let st = c.stats();
        assert_eq!(
            (st.nr_slabs, st.cpu_cached, st.barn_cached, st.active_objs),
            (0, 0, 0, 0)
        );
        assert_eq!(st.slabs_allocated, st.slabs_freed);
        assert_eq!(used_pages(&p), 0);
        Ok(())
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
