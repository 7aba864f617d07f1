// SPDX-License-Identifier: GPL-2.0
//! What an open `/dev/rkalloc` owns, and the commands that change it.
//!
//! # A call that fails changes nothing
//!
//! Every command that allocates, frees or resets holds the fd's lock from
//! its checks to its end, and sends its result to userspace ([`Reply`])
//! while it still can take the operation back:
//!
//! - one that allocates inserts the new handle, sends the result, and on a
//!   failed copy-out removes the handle and frees what it made (the caller
//!   sees EFAULT and the fd holds exactly what it held);
//! - one that frees or resets first checks everything that can fail, then
//!   sends its result (computed beforehand where it has outputs), and only
//!   then frees: a failed copy-out leaves everything in place.
//!
//! Nobody else can use the fd's items in between: they are reached only
//! under its lock. Statistics (allocation counts, generations of handle
//! slots) may move; the header says so.

use super::{handles::Table, uapi, uapi::Versioned};
use crate::{
    alloc::{conform, rk_heap},
    measure::{bench, replay},
    mm::{
        arena::{ArenaAlloc, ArenaObj},
        heap::{HeapBlock, HeapObj},
        pool::{self, Block, PAGE_SIZE},
        slab::{self, Malloced, Object},
    },
    rkcore::{buddy::MAX_ORDER, pattern, slab::Flags, sort::sort_u64},
    state::Shared,
    sys,
};
use core::{marker::PhantomData, ptr};
use kernel::{
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::{UserPtr, UserSlice},
};

/// Something an fd owns.
pub(super) enum Owned {
    /// A pool block.
    Pool(Block),
    /// A fit-policy heap (not memory itself).
    Heap(Arc<HeapObj>),
    /// A block of one of the fd's heaps.
    HeapBlock(HeapBlock),
    /// An allocation of the fd's arena, valid until the arena's reset.
    Arena(ArenaAlloc),
    /// A slab cache made through this fd (not memory itself).
    Cache(Arc<slab::Cache>),
    /// An object of one of the fd's caches.
    Object(Object),
    /// `rk_malloc` memory.
    Malloc(Malloced),
}

impl Owned {
    /// What the item is charged against the fd's cap. A heap's and an
    /// arena's regions are charged as they grow and shrink, not here.
    fn bytes(&self) -> u64 {
        (match self {
            Owned::Pool(b) => b.bytes(),
            Owned::Heap(_) | Owned::HeapBlock(_) | Owned::Arena(_) => 0,
            // A cache's own memory (descriptor, per-CPU arrays); its slabs
            // are charged through its objects.
            Owned::Cache(_) => slab::Cache::footprint(),
            Owned::Object(o) => o.cache.obj_size(),
            // What the request really takes: its class, or whole pages.
            Owned::Malloc(m) => slab::SizeClasses::footprint(m.bytes).unwrap_or(0),
        }) as u64
    }

    /// Runs `f` on the memory, for fill and verify; EINVAL for a heap or a
    /// cache (not memory).
    fn with_memory<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        match self {
            // SAFETY: the block is `bytes()` bytes of pool memory in the
            // kernel's linear map, owned by this fd alone (it holds the
            // handle and the fd's lock), and allocated while borrowed here.
            Owned::Pool(b) => Ok(f(unsafe { core::slice::from_raw_parts_mut(b.addr.as_ptr(), b.bytes()) })),
            Owned::HeapBlock(b) => b.heap.with_payload(b.ptr, f),
            Owned::Arena(a) => a.arena.with_bytes(a.ptr, a.len, f),
            Owned::Heap(_) | Owned::Cache(_) => Err(EINVAL),
            Owned::Object(o) => Ok(f(o.memory())),
            Owned::Malloc(m) => Ok(f(m.memory())),
        }
    }
}

/// An fd's items and what they are charged.
pub(super) struct FdState {
    pub(super) items: Table<Owned>,
    pub(super) bytes: u64,
    /// The fd's arena, made on its first arena allocation.
    pub(super) arena: Option<Arc<ArenaObj>>,
}

impl FdState {
    /// An fd with nothing.
    pub(super) fn new(fd_id: u32) -> Self {
        Self {
            items: Table::new(fd_id),
            bytes: 0,
            arena: None,
        }
    }
}

/// The way back to userspace for one command's argument struct.
pub(super) struct Reply<T> {
    ptr: UserPtr,
    sent: bool,
    _t: PhantomData<T>,
}

impl<T: Versioned> Reply<T> {
    /// The reply to the struct at user address `addr`.
    pub(super) fn new(addr: usize) -> Self {
        Self {
            ptr: UserPtr::from_addr(addr),
            sent: false,
            _t: PhantomData,
        }
    }

    /// Copies `a` back to userspace; EFAULT when the memory is not
    /// writable. A command sends before it commits (see the module doc).
    pub(super) fn send(&mut self, a: &T) -> Result {
        UserSlice::new(self.ptr, core::mem::size_of::<T>()).writer().write(a)?;
        self.sent = true;
        Ok(())
    }

    /// Whether the command sent its result itself.
    pub(super) fn sent(&self) -> bool {
        self.sent
    }
}

/// One open file's state and the module's, as the commands see them.
pub(super) struct Fd<'a> {
    pub(super) shared: &'a Shared,
    pub(super) state: &'a Mutex<FdState>,
}

/// Gives back what an fd owned: on close, and when a command takes back
/// what it just made.
pub(super) fn release(shared: &Shared, item: Owned) {
    match item {
        // The fd owned it, so the pool takes it back.
        Owned::Pool(b) => {
            let _ = shared.pool.free(b.pfn, b.order);
        }
        // A heap's memory goes back when its last reference (the
        // catalog's, its blocks') is gone.
        Owned::Heap(h) => shared.catalog.remove_heap(&h),
        Owned::HeapBlock(b) => {
            let _ = b.heap.free(b.ptr);
        }
        Owned::Arena(_) => {}
        // Objects keep their cache alive; the cache gives its slabs back
        // when the last of them (or its handle) goes.
        Owned::Object(o) => {
            let _ = o.cache.free(o.ptr);
        }
        Owned::Malloc(m) => {
            let _ = shared.kmalloc.free(m.ptr);
        }
        Owned::Cache(_) => {}
    }
}

impl Fd<'_> {
    /// Checks the per-fd cap for `more` bytes.
    fn charge(&self, st: &FdState, more: u64) -> Result {
        match st.bytes.checked_add(more) {
            Some(n) if n <= self.shared.fd_cap_bytes => Ok(()),
            _ => Err(ENOMEM),
        }
    }

    /// Makes something the fd owns, charged `bytes`, and replies with its
    /// handle: checks the cap and makes room for the handle before `make`
    /// allocates, so nothing can fail between the allocation and the
    /// insertion; a failed reply takes it all back.
    fn adopt<T: Versioned>(
        &self,
        a: &mut T,
        reply: &mut Reply<T>,
        bytes: u64,
        set: impl FnOnce(&mut T, u64),
        make: impl FnOnce() -> Result<Owned>,
    ) -> Result {
        let mut st = self.state.lock();
        self.charge(&st, bytes)?;
        st.items.reserve()?;
        let handle = match st.items.insert(make()?) {
            Ok(h) => h,
            // Cannot happen after `reserve`; give it back rather than lose it.
            Err(item) => {
                release(self.shared, item);
                return Err(ENOMEM);
            }
        };
        set(a, handle);
        if let Err(e) = reply.send(a) {
            if let Ok(item) = st.items.remove_with(handle, |_| Ok(())) {
                release(self.shared, item);
            }
            return Err(e);
        }
        st.bytes += bytes;
        Ok(())
    }

    pub(super) fn info(&self, a: &mut uapi::rkalloc_info) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        a.abi_version = uapi::RKALLOC_ABI_VERSION;
        a.page_size = PAGE_SIZE as u32;
        a.max_order = MAX_ORDER;
        a.nr_cpus = sys::num_online_cpus();
        a.nr_caches = self.shared.kmalloc.registry().len() as u32;
        a.nr_allocators = self.shared.allocators.len() as u32;
        a.nr_policies = rk_heap::nr_policies();
        let st = self.shared.pool.stats();
        a.pool_pages = st.total_pages;
        a.pool_free_pages = st.free_pages;
        let fd = self.state.lock();
        a.nr_heaps = fd.items.count(|i| matches!(i, Owned::Heap(_))) as u32;
        a.fd_bytes = fd.bytes;
        a.fd_cap_bytes = self.shared.fd_cap_bytes;
        Ok(())
    }

    /// `RKALLOC_IOC_LIST`: every slab cache and every heap, this fd's own
    /// named by their handles; writes at most `max` entries, counts all.
    pub(super) fn list(&self, a: &mut uapi::rkalloc_list) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut out = KVec::new();
        {
            // The fd's lock first, then the registry's and the catalog's,
            // as in cache and heap creation.
            let st = self.state.lock();
            self.shared.kmalloc.registry().for_each(|c| -> Result {
                let s = c.stats();
                let mut e = uapi::rkalloc_list_entry {
                    handle: st.items.find(|i| matches!(i, Owned::Cache(o) if ptr::eq(&**o, c))).unwrap_or(0),
                    kind: uapi::RKALLOC_KIND_CACHE,
                    obj_size: s.obj_size as u32,
                    flags: s.flags,
                    bytes: (s.nr_slabs as u64 * PAGE_SIZE as u64) << s.order,
                    ..Default::default()
                };
                uapi::name_into(&mut e.name, c.name().as_bytes());
                out.push(e, GFP_KERNEL)?;
                Ok(())
            })?;
            self.shared.catalog.for_each_heap(|h| {
                let (id, policy, flags, held) = h.describe();
                let mut e = uapi::rkalloc_list_entry {
                    handle: st.items.find(|i| matches!(i, Owned::Heap(o) if Arc::ptr_eq(o, h))).unwrap_or(0),
                    kind: uapi::RKALLOC_KIND_HEAP,
                    policy: rk_heap::policy_index(policy),
                    flags: uapi::heap_flags_to_uapi(flags),
                    bytes: held,
                    ..Default::default()
                };
                let mut buf = [0u8; uapi::RKALLOC_NAME_LEN as usize];
                let mut w = kernel::str::Formatter::new(&mut buf);
                let _ = core::fmt::Write::write_fmt(&mut w, format_args!("heap-{}", id));
                let n = w.bytes_written();
                uapi::name_into(&mut e.name, &buf[..n]);
                out.push(e, GFP_KERNEL)?;
                Ok(())
            })?;
        }
        write_entries(a.entries, a.max, &out)?;
        a.count = out.len() as u32;
        Ok(())
    }

    /// `RKALLOC_IOC_ALLOCATORS`: the allocator table.
    pub(super) fn allocators(&self, a: &mut uapi::rkalloc_allocators) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut out = KVec::with_capacity(self.shared.allocators.len(), GFP_KERNEL)?;
        for (id, d) in self.shared.allocators.iter() {
            out.push(uapi::allocator_entry(id, d), GFP_KERNEL)?;
        }
        write_entries(a.entries, a.max, &out)?;
        a.count = out.len() as u32;
        Ok(())
    }

    pub(super) fn pool_alloc(&self, a: &mut uapi::rkalloc_pool_alloc, r: &mut Reply<uapi::rkalloc_pool_alloc>) -> Result {
        if a.order > MAX_ORDER {
            return Err(EINVAL);
        }
        let order = a.order;
        let bytes = (PAGE_SIZE as u64) << order;
        self.adopt(a, r, bytes, |a, h| a.handle = h, || {
            Ok(Owned::Pool(self.shared.pool.alloc_tagged(order, pool::tag::USER)?))
        })
    }

    /// `RKALLOC_IOC_FREE`: checks the handle names freeable memory, replies,
    /// then frees.
    pub(super) fn free(&self, a: &mut uapi::rkalloc_free, r: &mut Reply<uapi::rkalloc_free>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let shared = self.shared;
        let mut st = self.state.lock();
        // Heaps and caches are destroyed and arena allocations reset, not
        // freed.
        if matches!(st.items.get_mut(a.handle)?, Owned::Heap(_) | Owned::Arena(_) | Owned::Cache(_)) {
            return Err(EINVAL);
        }
        r.send(a)?;
        // Bytes a heap gives back when the freed block empties a region.
        let mut released = 0;
        let item = st.items.remove_with(a.handle, |item| match item {
            Owned::Pool(b) => shared.pool.free(b.pfn, b.order),
            Owned::HeapBlock(b) => b.heap.free(b.ptr).map(|n| released = n),
            // A debug cache reports (and counts) a bad free itself; the
            // handle is gone either way.
            Owned::Object(o) => {
                let _ = o.cache.free(o.ptr);
                Ok(())
            }
            Owned::Malloc(m) => shared.kmalloc.free(m.ptr),
            Owned::Heap(_) | Owned::Arena(_) | Owned::Cache(_) => Err(EINVAL),
        })?;
        st.bytes -= item.bytes() + released;
        Ok(())
    }

    /// `RKALLOC_IOC_FILL` and `RKALLOC_IOC_VERIFY`.
    pub(super) fn pattern(&self, a: &mut uapi::rkalloc_pattern, verify: bool) -> Result {
        let mut st = self.state.lock();
        let item = st.items.get_mut(a.handle)?;
        item.with_memory(|mem| {
            a.bytes = mem.len() as u64;
            if verify {
                let (n, first) = pattern::verify(mem, a.pattern);
                a.mismatches = n;
                a.first_mismatch = first;
            } else {
                pattern::fill(mem, a.pattern);
                a.mismatches = 0;
                a.first_mismatch = u64::MAX;
            }
        })
    }

    /// The heap named by `handle`; EINVAL for a handle of another kind.
    fn heap_of(st: &mut FdState, handle: u64) -> Result<Arc<HeapObj>> {
        match st.items.get_mut(handle)? {
            Owned::Heap(h) => Ok(h.clone()),
            _ => Err(EINVAL),
        }
    }

    pub(super) fn heap_create(&self, a: &mut uapi::rkalloc_heap_create, r: &mut Reply<uapi::rkalloc_heap_create>) -> Result {
        let policy = rk_heap::policy(a.policy).ok_or(EINVAL)?;
        let flags = uapi::heap_flags(a.flags).ok_or(EINVAL)?;
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let catalog = &self.shared.catalog;
        let mut st = self.state.lock();
        st.items.reserve()?;
        let budget = self.shared.fd_cap_bytes.saturating_sub(st.bytes);
        let h = HeapObj::new(&self.shared.pool, catalog.next_id(), policy, flags, a.initial_bytes, budget)?;
        catalog.add_heap(&h)?;
        let handle = match st.items.insert(Owned::Heap(h.clone())) {
            Ok(handle) => handle,
            Err(_) => {
                catalog.remove_heap(&h);
                return Err(ENOMEM);
            }
        };
        a.handle = handle;
        if let Err(e) = r.send(a) {
            let _ = st.items.remove_with(handle, |_| Ok(()));
            catalog.remove_heap(&h);
            return Err(e);
        }
        st.bytes += h.held();
        Ok(())
    }

    pub(super) fn heap_alloc(&self, a: &mut uapi::rkalloc_heap_alloc, r: &mut Reply<uapi::rkalloc_heap_alloc>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let size = usize::try_from(a.bytes).map_err(|_| EINVAL)?;
        let mut st = self.state.lock();
        let heap = Self::heap_of(&mut st, a.heap)?;
        st.items.reserve()?;
        let budget = self.shared.fd_cap_bytes.saturating_sub(st.bytes);
        let (ptr, grown) = heap.alloc(size, budget)?;
        let handle = match st.items.insert(Owned::HeapBlock(HeapBlock { heap: heap.clone(), ptr })) {
            Ok(handle) => handle,
            Err(_) => {
                let released = heap.free(ptr).unwrap_or(0);
                st.bytes = st.bytes + grown - released;
                return Err(ENOMEM);
            }
        };
        a.handle = handle;
        if let Err(e) = r.send(a) {
            let _ = st.items.remove_with(handle, |_| Ok(()));
            let released = heap.free(ptr).unwrap_or(0);
            st.bytes = st.bytes + grown - released;
            return Err(e);
        }
        st.bytes += grown;
        Ok(())
    }

    /// Frees every block of a heap; their handles become stale (EINVAL).
    pub(super) fn heap_reset(&self, a: &mut uapi::rkalloc_handle_op, r: &mut Reply<uapi::rkalloc_handle_op>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let heap = Self::heap_of(&mut st, a.handle)?;
        let of = |item: &Owned| matches!(item, Owned::HeapBlock(b) if b.is_of(&heap));
        let n = st.items.count(of);
        st.items.reserve_removals(n)?;
        r.send(a)?;
        let mut reset = heap.begin_reset();
        st.items.remove_all(of, |item| {
            if let Owned::HeapBlock(b) = item {
                reset.free(b.ptr);
            }
        });
        st.bytes -= reset.finish();
        Ok(())
    }

    /// Frees a heap and all its blocks; every handle of them becomes stale.
    pub(super) fn heap_destroy(&self, a: &mut uapi::rkalloc_handle_op, r: &mut Reply<uapi::rkalloc_handle_op>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let heap = Self::heap_of(&mut st, a.handle)?;
        let of = |item: &Owned| matches!(item, Owned::HeapBlock(b) if b.is_of(&heap));
        let n = st.items.count(of);
        // One more for the heap's own handle, so nothing below can fail.
        st.items.reserve_removals(n + 1)?;
        r.send(a)?;
        st.items.remove_all(of, drop);
        st.items.remove_with(a.handle, |_| Ok(()))?;
        self.shared.catalog.remove_heap(&heap);
        // The memory goes back to the pool with `heap`, the last reference.
        st.bytes -= heap.held();
        Ok(())
    }

    pub(super) fn arena_alloc(&self, a: &mut uapi::rkalloc_arena_alloc, r: &mut Reply<uapi::rkalloc_arena_alloc>) -> Result {
        let size = usize::try_from(a.bytes).map_err(|_| EINVAL)?;
        let align = a.align as usize;
        // Checked before the arena is made, so a bad call changes nothing.
        if !crate::mm::arena::request_ok(size, align) {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        st.items.reserve()?;
        let made = st.arena.is_none();
        let arena = if let Some(arena) = st.arena.clone() {
            arena
        } else {
            let arena = ArenaObj::new(&self.shared.pool, self.shared.catalog.next_id())?;
            self.shared.catalog.add_arena(&arena)?;
            arena
        };
        // Takes back an arena this call made.
        let unmake = |st: &mut FdState| {
            if made {
                st.arena = None;
                self.shared.catalog.remove_arena(&arena);
            }
        };
        let budget = self.shared.fd_cap_bytes.saturating_sub(st.bytes);
        let (ptr, grown, undo) = match arena.alloc_undoable(size, align, budget) {
            Ok(x) => x,
            Err(e) => {
                unmake(&mut st);
                return Err(e);
            }
        };
        st.arena = Some(arena.clone());
        // Cannot fail after `reserve`.
        let handle = match st.items.insert(Owned::Arena(ArenaAlloc { arena: arena.clone(), ptr, len: size })) {
            Ok(h) => h,
            Err(_) => {
                let back = arena.undo(undo);
                st.bytes = st.bytes + grown - back;
                unmake(&mut st);
                return Err(ENOMEM);
            }
        };
        a.handle = handle;
        if let Err(e) = r.send(a) {
            let _ = st.items.remove_with(handle, |_| Ok(()));
            let back = arena.undo(undo);
            // What the arena still holds after giving back the region it
            // grew by, if any, stays charged (as before the call).
            st.bytes = st.bytes + grown - back;
            unmake(&mut st);
            return Err(e);
        }
        st.bytes += grown;
        Ok(())
    }

    /// Frees every arena allocation of the fd; their handles become stale.
    /// The arena keeps its largest region (charged until the fd closes).
    pub(super) fn arena_reset(&self, a: &mut uapi::rkalloc_arena_reset, r: &mut Reply<uapi::rkalloc_arena_reset>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let Some(arena) = st.arena.clone() else {
            a.bytes_reclaimed = 0;
            a.allocations_reclaimed = 0;
            return Ok(());
        };
        let of = |item: &Owned| matches!(item, Owned::Arena(_));
        let n = st.items.count(of);
        st.items.reserve_removals(n)?;
        // The fd's lock keeps the arena still: what a reset would reclaim
        // now is what it reclaims below.
        let report = arena.reset_report();
        a.bytes_reclaimed = report.bytes_reclaimed;
        a.allocations_reclaimed = report.allocations_reclaimed;
        r.send(a)?;
        let (_, released) = arena.reset();
        st.items.remove_all(of, drop);
        st.bytes -= released;
        Ok(())
    }

    /// `RKALLOC_IOC_CHECK`: every checker, exact while others work. The
    /// count of violations reaches userspace with EUCLEAN too.
    pub(super) fn check(&self, a: &mut uapi::rkalloc_check, r: &mut Reply<uapi::rkalloc_check>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        sys::interrupted()?;
        a.violations = 0;
        if self.shared.pool.check().is_err() {
            a.violations += 1;
        }
        sys::interrupted()?;
        a.violations += self.shared.catalog.check().1;
        a.violations += self.shared.kmalloc.check() as u64;
        if a.violations != 0 {
            r.send(a)?;
            return Err(sys::euclean());
        }
        Ok(())
    }

    /// `RKALLOC_IOC_POOL_SHRINK`: a module-wide operation, not the fd's:
    /// its memory goes back to the kernel, which cannot be undone, so the
    /// reply is probed writable first.
    pub(super) fn shrink(&self, a: &mut uapi::rkalloc_pool_shrink, r: &mut Reply<uapi::rkalloc_pool_shrink>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        r.send(a)?;
        sys::interrupted()?;
        // Slab caches first: their empty slabs and per-CPU objects pin pool
        // pages.
        let slab_pages = self.shared.kmalloc.shrink() as u64;
        sys::interrupted()?;
        a.released_pages = self.shared.pool.shrink();
        pr_debug!("shrink: slab caches gave back {} pages\n", slab_pages);
        r.send(a)
    }

    pub(super) fn cache_create(&self, a: &mut uapi::rkalloc_cache_create, r: &mut Reply<uapi::rkalloc_cache_create>) -> Result {
        let flags = Flags::from_bits(a.flags).ok_or(EINVAL)?;
        let align = if a.align == 0 { 8 } else { a.align as usize };
        let len = a.name.iter().position(|&c| c == 0).ok_or(EINVAL)?;
        let mut name = [0u8; slab::NAME_MAX];
        let dst = name.get_mut(..len).ok_or(EINVAL)?;
        for (d, s) in dst.iter_mut().zip(a.name.iter()) {
            *d = *s as u8;
        }
        let size = a.obj_size as usize;
        self.adopt(a, r, slab::Cache::footprint() as u64, |a, h| a.handle = h, || {
            Ok(Owned::Cache(self.shared.kmalloc.create_cache(&name[..len], size, align, flags)?))
        })
    }

    /// EBUSY while objects of the cache are live.
    pub(super) fn cache_destroy(&self, a: &mut uapi::rkalloc_handle_op, r: &mut Reply<uapi::rkalloc_handle_op>) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        if !matches!(st.items.get_mut(a.handle)?, Owned::Cache(_)) {
            return Err(EINVAL);
        }
        r.send(a)?;
        let item = st.items.remove_with(a.handle, |item| match item {
            Owned::Cache(c) => c.destroy(),
            _ => Err(EINVAL),
        })?;
        st.bytes -= item.bytes();
        Ok(())
    }

    /// The batch size of `a`: EINVAL for 0, E2BIG above the maximum.
    fn batch_len(a: &uapi::rkalloc_batch) -> Result<usize> {
        match a.count {
            0 => Err(EINVAL),
            n if n > uapi::RKALLOC_MAX_BATCH => Err(E2BIG),
            n => Ok(n as usize),
        }
    }

    /// Allocates `count` objects, all or nothing, writes their handles to
    /// the user array, and replies; any failure takes all of them back.
    pub(super) fn obj_alloc(&self, a: &mut uapi::rkalloc_batch, r: &mut Reply<uapi::rkalloc_batch>) -> Result {
        let n = Self::batch_len(a)?;
        let mut st = self.state.lock();
        let cache = match st.items.get_mut(a.cache)? {
            Owned::Cache(c) => c.clone(),
            _ => return Err(EINVAL),
        };
        // At most 4096 * 8192 bytes: no overflow.
        let bytes = (cache.obj_size() * n) as u64;
        self.charge(&st, bytes)?;
        st.items.reserve_inserts(n)?;
        st.items.reserve_removals(n)?;
        // A bad array fails here, before the cache grows; the rollback
        // below covers one unmapped meanwhile.
        let mut w = UserSlice::new(UserPtr::from_addr(a.handles as usize), n * 8).writer();
        (0..n).try_for_each(|_| w.write(&0u64))?;
        let mut objs = KVec::from_elem(ptr::null_mut::<u8>(), n, GFP_KERNEL)?;
        let mut handles = KVec::with_capacity(n, GFP_KERNEL)?;
        cache.alloc_bulk(&mut objs)?;
        for p in objs.iter() {
            let Some(ptr) = core::ptr::NonNull::new(*p) else { continue };
            // Cannot fail: room was reserved above. Were it to, the object
            // goes back and the batch fails below.
            match st.items.insert(Owned::Object(Object { cache: cache.clone(), ptr })) {
                Ok(h) => {
                    let _ = handles.push_within_capacity(h);
                }
                Err(item) => release(self.shared, item),
            }
        }
        let mut w = UserSlice::new(UserPtr::from_addr(a.handles as usize), n * 8).writer();
        let copied = handles.iter().try_for_each(|h| w.write(h)).and_then(|()| r.send(a));
        if handles.len() == n && copied.is_ok() {
            st.bytes += bytes;
            return Ok(());
        }
        // Roll back: the caller cannot name what it did not receive.
        for h in handles.iter() {
            if let Ok(Owned::Object(o)) = st.items.remove_with(*h, |_| Ok(())) {
                let _ = o.cache.free(o.ptr);
            }
        }
        copied.and(Err(ENOMEM))
    }

    /// Frees `count` objects; every handle is checked first (and twice the
    /// same handle is EINVAL), so a bad one frees nothing.
    pub(super) fn obj_free(&self, a: &mut uapi::rkalloc_batch, r: &mut Reply<uapi::rkalloc_batch>) -> Result {
        let n = Self::batch_len(a)?;
        let mut handles = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut rd = UserSlice::new(UserPtr::from_addr(a.handles as usize), n * 8).reader();
        for _ in 0..n {
            let h: u64 = rd.read()?;
            let _ = handles.push_within_capacity(h);
        }
        let mut st = self.state.lock();
        for h in handles.iter() {
            if !matches!(st.items.get_mut(*h)?, Owned::Object(_)) {
                return Err(EINVAL);
            }
        }
        let mut sorted = KVec::with_capacity(n, GFP_KERNEL)?;
        sorted.extend_from_slice(&handles, GFP_KERNEL)?;
        sort_u64(&mut sorted);
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(EINVAL);
        }
        st.items.reserve_removals(n)?;
        r.send(a)?;
        let mut bytes = 0u64;
        for h in handles.iter() {
            if let Ok(item) = st.items.remove_with(*h, |_| Ok(())) {
                bytes += item.bytes();
                if let Owned::Object(o) = item {
                    let _ = o.cache.free(o.ptr);
                }
            }
        }
        st.bytes -= bytes;
        Ok(())
    }

    /// `rk_malloc(bytes)`, charged what it really takes.
    pub(super) fn malloc(&self, a: &mut uapi::rkalloc_malloc, r: &mut Reply<uapi::rkalloc_malloc>) -> Result {
        if a.reserved != 0 || a.bytes == 0 || a.bytes > u64::from(uapi::RKALLOC_MAX_MALLOC) {
            return Err(EINVAL);
        }
        let bytes = a.bytes as usize;
        let charged = slab::SizeClasses::footprint(bytes)? as u64;
        self.adopt(a, r, charged, |a, h| a.handle = h, || {
            let ptr = self.shared.kmalloc.malloc(bytes)?;
            Ok(Owned::Malloc(Malloced { ptr, bytes }))
        })
    }

    /// `RKALLOC_IOC_POOL_STATS`; with `RKALLOC_STATS_RESET`, the counters
    /// restart only once the snapshot reached userspace.
    pub(super) fn pool_stats(&self, a: &mut uapi::rkalloc_pool_stats, r: &mut Reply<uapi::rkalloc_pool_stats>) -> Result {
        if a.flags & !uapi::RKALLOC_STATS_RESET != 0 {
            return Err(EINVAL);
        }
        let st = self.shared.pool.stats();
        a.total_pages = st.total_pages;
        a.free_pages = st.free_pages;
        a.pcp_pages = st.pcp_pages;
        a.high_water_pages = st.high_water_pages;
        a.chunks_grown = st.chunks_grown;
        a.chunks_shrunk = st.chunks_shrunk;
        for o in 0..crate::rkcore::buddy::NR_ORDERS {
            let (pa, pf) = st.pcp_allocs.get(o).zip(st.pcp_frees.get(o)).map_or((0, 0), |(a, f)| (*a, *f));
            a.nr_free[o] = u64::from(st.nr_free[o]);
            a.allocs[o] = st.buddy.allocs[o] + pa;
            a.frees[o] = st.buddy.frees[o] + pf;
            a.splits[o] = st.buddy.splits[o];
            a.merges[o] = st.buddy.merges[o];
            a.failures[o] = st.buddy.failures[o];
        }
        if a.flags & uapi::RKALLOC_STATS_RESET != 0 {
            r.send(a)?;
            self.shared.pool.reset_stats();
        }
        Ok(())
    }

    /// `RKALLOC_IOC_CONFORM`: the conformance run of one allocator; its
    /// counts reach userspace with EUCLEAN too.
    pub(super) fn conform(&self, a: &mut uapi::rkalloc_conform, r: &mut Reply<uapi::rkalloc_conform>) -> Result {
        if a.reserved != 0 || a.max_live == 0 || a.max_live > uapi::RKALLOC_MAX_BATCH {
            return Err(EINVAL);
        }
        let d = self.shared.allocators.get(a.allocator).ok_or(EINVAL)?;
        let p = conform::Params {
            ops: a.ops,
            seed: a.seed,
            lo: usize::try_from(a.lo).map_err(|_| EINVAL)?,
            hi: usize::try_from(a.hi).map_err(|_| EINVAL)?,
            max_live: a.max_live as usize,
        };
        let rep = conform::run(self.shared.env(), d, &p)?;
        a.allocs = rep.allocs;
        a.frees = rep.frees;
        a.failures = rep.failures;
        a.corrupt_blocks = rep.corrupt_blocks;
        a.bad_sizes = rep.bad_sizes;
        a.check_failures = rep.check_failures;
        if rep.failed() {
            r.send(a)?;
            return Err(sys::euclean());
        }
        Ok(())
    }
}

impl Fd<'_> {
    /// `RKALLOC_IOC_BENCH`.
    pub(super) fn bench(&self, a: &mut uapi::rkalloc_bench) -> Result {
        if a.reserved != 0 || a.flags & !uapi::RKALLOC_BENCH_LATENCY != 0 {
            return Err(EINVAL);
        }
        let pattern = match a.pattern {
            uapi::RKALLOC_BENCH_PAIR => bench::Pattern::Pair,
            uapi::RKALLOC_BENCH_BATCH => bench::Pattern::Batch,
            uapi::RKALLOC_BENCH_BATCH_RANDOM => bench::Pattern::BatchRandom,
            uapi::RKALLOC_BENCH_RANDOM_LIFE => bench::Pattern::RandomLife,
            uapi::RKALLOC_BENCH_CROSS_CPU => bench::Pattern::CrossCpu,
            _ => return Err(EINVAL),
        };
        let q = bench::Request {
            allocator: a.allocator,
            pattern,
            batch: a.batch as usize,
            bytes: a.bytes,
            ops: a.ops,
            samples: a.samples,
            latency: a.flags & uapi::RKALLOC_BENCH_LATENCY != 0,
        };
        let mut o = bench::Outcome::default();
        bench::run(self.shared, &q, &mut o)?;
        a.cpu = o.cpu;
        a.total_ns = o.total_ns;
        a.mean_ps = o.mean_ps;
        a.median_ps = o.median_ps;
        a.min_ps = o.min_ps;
        a.max_ps = o.max_ps;
        a.failures = o.failures;
        a.alloc_p50_ps = o.alloc_p50_ps;
        a.alloc_p99_ps = o.alloc_p99_ps;
        a.free_p50_ps = o.free_p50_ps;
        a.free_p99_ps = o.free_p99_ps;
        a.lat_overhead_ps = o.lat_overhead_ps;
        Ok(())
    }

    /// `RKALLOC_IOC_REPLAY`: copies the trace in, then replays it.
    pub(super) fn replay(&self, a: &mut uapi::rkalloc_replay) -> Result {
        if a.reserved != 0 || a.count == 0 || a.max_id == 0 {
            return Err(EINVAL);
        }
        if a.count > uapi::RKALLOC_MAX_REPLAY_OPS {
            return Err(E2BIG);
        }
        // At most 2^20 ops of 16 bytes: no overflow.
        let len = a.count as usize * core::mem::size_of::<uapi::rkalloc_trace_op>();
        let mut raw = KVVec::new();
        UserSlice::new(UserPtr::from_addr(a.ops as usize), len).read_all(&mut raw, GFP_KERNEL)?;
        let o = replay::run(self.shared, a.allocator, &raw, a.max_id as usize, &uapi::TRACE_FORMAT)?;
        a.total_ns = o.total_ns;
        a.peak_live_bytes = o.peak_live;
        a.peak_footprint_bytes = o.footprint;
        a.internal_bytes_at_peak = o.internal;
        a.metadata_bytes_at_peak = o.metadata;
        a.external_permille_at_peak = o.external_permille;
        a.failures = o.failures;
        a.flags = if o.own_frag { uapi::RKALLOC_REPLAY_OWN_FRAG } else { 0 };
        Ok(())
    }
}

/// Writes `min(max, entries.len())` entries to the user array at `addr`.
fn write_entries<E: kernel::transmute::AsBytes>(addr: u64, max: u32, entries: &[E]) -> Result {
    let n = entries.len().min(max as usize);
    if n > 0 {
        let size = core::mem::size_of::<E>();
        let mut w = UserSlice::new(UserPtr::from_addr(addr as usize), n * size).writer();
        entries.iter().take(n).try_for_each(|e| w.write(e))?;
    }
    Ok(())
}
