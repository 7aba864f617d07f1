// SPDX-License-Identifier: GPL-2.0
//! `/dev/rkalloc`: the ioctl misc device.
//!
//! Each open file owns what it allocates, named by opaque handles; closing
//! the file frees all of it. The device node is root-only (devtmpfs gives a
//! misc device without an explicit mode 0600). A file holds a reference on
//! the module, so `rmmod` fails with EBUSY while any file is open: a Rust
//! misc device does not set `fops.owner`, so `open` takes the reference
//! itself.

use crate::{
    arena::{ArenaAlloc, ArenaObj},
    handles::Table,
    heap::{self, HeapBlock, HeapObj},
    pool::Block,
    rkcore::slab::Flags,
    slab::{self, Malloced, Object},
    sys, uapi, RkallocModule, Shared,
};
use core::{ptr, sync::atomic::Ordering};
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

/// Something an fd owns.
enum Owned {
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

// The UAPI's cache flags are the core's debug flags, bit for bit.
const _: () = assert!(
    uapi::RKALLOC_CACHE_RED_ZONE == Flags::RED_ZONE.bits()
        && uapi::RKALLOC_CACHE_POISON == Flags::POISON.bits()
        && uapi::RKALLOC_CACHE_DEBUG_CHECKS == Flags::DEBUG_CHECKS.bits()
);

impl Owned {
    fn bytes(&self) -> usize {
        match self {
            Owned::Pool(b) => b.bytes(),
            Owned::Heap(_) | Owned::HeapBlock(_) | Owned::Arena(_) => 0,
            // A cache's own memory (descriptor, per-CPU arrays); its slabs
            // are charged through its objects.
            Owned::Cache(_) => slab::Cache::footprint(),
            Owned::Object(o) => o.cache.obj_size(),
            // What the request really takes: its class, or whole pages.
            Owned::Malloc(m) => slab::SizeClasses::footprint(m.bytes).unwrap_or(0),
        }
    }

    /// Runs `f` on the memory, for fill and verify; EINVAL for a heap.
    fn with_memory<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        match self {
            // SAFETY: the block is `bytes()` bytes of pool memory in the
            // kernel's linear map, owned by this fd alone (it holds the handle
            // and the fd's mutex), and stays allocated while borrowed here.
            Owned::Pool(b) => Ok(f(unsafe { core::slice::from_raw_parts_mut(b.addr.as_ptr(), b.bytes()) })),
            Owned::HeapBlock(b) => b.heap.with_payload(b.ptr, f),
            Owned::Arena(a) => a.arena.with_bytes(a.ptr, a.len, f),
            Owned::Heap(_) | Owned::Cache(_) => Err(EINVAL),
            Owned::Object(o) => Ok(f(o.memory())),
            Owned::Malloc(m) => Ok(f(m.memory())),
        }
    }
}

struct FdState {
    items: Table<Owned>,
    bytes: u64,
    /// The fd's arena, made on its first arena allocation.
    arena: Option<Arc<ArenaObj>>,
}

/// One open file of `/dev/rkalloc`.
#[pin_data(PinnedDrop)]
pub(crate) struct RkDevice {
    shared: Arc<Shared>,
    #[pin]
    state: Mutex<FdState>,
}

#[vtable]
impl MiscDevice for RkDevice {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let shared = RkallocModule::from_misc(misc).shared.clone();
        if !sys::module_get(shared.module) {
            return Err(ENODEV);
        }
        shared.open_fds.fetch_add(1, Ordering::Relaxed);
        // From here on, dropping `RkDevice` releases the module reference.
        let fd_id = shared.next_fd_id.fetch_add(1, Ordering::Relaxed);
        let fd_shared = shared.clone();
        let dev = KBox::pin_init(
            try_pin_init!(RkDevice {
                shared: fd_shared,
                state <- new_mutex!(FdState { items: Table::new(fd_id), bytes: 0, arena: None }),
            }),
            GFP_KERNEL,
        );
        if dev.is_err() {
            shared.open_fds.fetch_sub(1, Ordering::Relaxed);
            sys::module_put(shared.module);
        }
        dev
    }

    fn ioctl(me: Pin<&RkDevice>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::IOC_INFO => with_arg(cmd, arg, |a: &mut uapi::rkalloc_info| me.info(a)),
            uapi::IOC_POOL_ALLOC => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pool_alloc| me.pool_alloc(a)),
            uapi::IOC_FREE => with_arg(cmd, arg, |a: &mut uapi::rkalloc_free| me.free(a)),
            uapi::IOC_FILL => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pattern| me.pattern(a, false)),
            uapi::IOC_VERIFY => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pattern| me.pattern(a, true)),
            uapi::IOC_CHECK => with_arg(cmd, arg, |a: &mut uapi::rkalloc_check| me.check(a)),
            uapi::IOC_POOL_SHRINK => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pool_shrink| me.shrink(a)),
            uapi::IOC_POOL_STATS => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pool_stats| me.pool_stats(a)),
            uapi::IOC_CACHE_CREATE => with_arg(cmd, arg, |a: &mut uapi::rkalloc_cache_create| me.cache_create(a)),
            uapi::IOC_CACHE_DESTROY => with_arg(cmd, arg, |a: &mut uapi::rkalloc_handle_op| me.cache_destroy(a)),
            uapi::IOC_OBJ_ALLOC => with_arg(cmd, arg, |a: &mut uapi::rkalloc_batch| me.obj_alloc(a)),
            uapi::IOC_OBJ_FREE => with_arg(cmd, arg, |a: &mut uapi::rkalloc_batch| me.obj_free(a)),
            uapi::IOC_MALLOC => with_arg(cmd, arg, |a: &mut uapi::rkalloc_malloc| me.malloc(a)),
            uapi::IOC_HEAP_CREATE => with_arg(cmd, arg, |a: &mut uapi::rkalloc_heap_create| me.heap_create(a)),
            uapi::IOC_HEAP_ALLOC => with_arg(cmd, arg, |a: &mut uapi::rkalloc_heap_alloc| me.heap_alloc(a)),
            uapi::IOC_HEAP_RESET => with_arg(cmd, arg, |a: &mut uapi::rkalloc_handle_op| me.heap_reset(a)),
            uapi::IOC_HEAP_DESTROY => with_arg(cmd, arg, |a: &mut uapi::rkalloc_handle_op| me.heap_destroy(a)),
            uapi::IOC_ARENA_ALLOC => with_arg(cmd, arg, |a: &mut uapi::rkalloc_arena_alloc| me.arena_alloc(a)),
            uapi::IOC_ARENA_RESET => with_arg(cmd, arg, |a: &mut uapi::rkalloc_arena_reset| me.arena_reset(a)),
            uapi::IOC_BENCH => with_arg(cmd, arg, |a: &mut uapi::rkalloc_bench| crate::bench::run(&me.shared, a)),
            uapi::IOC_LIST => with_arg(cmd, arg, |a: &mut uapi::rkalloc_list| me.list(a)),
            uapi::IOC_REPLAY => with_arg(cmd, arg, |a: &mut uapi::rkalloc_replay| crate::replay::run(&me.shared, a)),
            _ => Err(ENOTTY),
        }
    }
}

#[pinned_drop]
impl PinnedDrop for RkDevice {
    fn drop(self: Pin<&mut Self>) {
        let pool = &self.shared.pool;
        let mut st = self.state.lock();
        let n = st.items.len();
        st.items.drain(|item| match item {
            Owned::Pool(b) => {
                // The fd owned it, so the pool takes it back.
                let _ = pool.free(b.pfn, b.order);
            }
            // A heap's memory goes back when its last reference (the
            // catalog's, its blocks') is gone.
            Owned::Heap(h) => self.shared.catalog.remove_heap(&h),
            Owned::HeapBlock(_) | Owned::Arena(_) => {}
            // Objects keep their cache alive; the cache gives its slabs back
            // when the last of them (or its handle) goes.
            Owned::Object(o) => {
                let _ = o.cache.free(o.ptr);
            }
            Owned::Malloc(m) => {
                let _ = self.shared.kmalloc.free(m.ptr);
            }
            Owned::Cache(_) => {}
        });
        if let Some(arena) = st.arena.take() {
            self.shared.catalog.remove_arena(&arena);
        }
        st.bytes = 0;
        drop(st);
        if n != 0 {
            pr_debug!("release: freed {} allocations left by the fd\n", n);
        }
        self.shared.open_fds.fetch_sub(1, Ordering::Relaxed);
        // Last: once the reference is gone the module may be unloaded, but
        // only after this function returns to the VFS (release runs under
        // the file's last reference, and the unload waits for rmmod's
        // synchronisation of module refcounts).
        sys::module_put(self.shared.module);
    }
}

/// The version field every UAPI struct starts with.
pub(crate) trait Versioned: FromBytes + AsBytes {
    /// The caller's `sizeof` of the struct.
    fn size(&self) -> u32;
}

/// Copies the argument struct in, checks its size field, runs `op` on it and
/// copies it back out. Nothing is copied out when `op` fails.
fn with_arg<T: Versioned>(cmd: u32, arg: usize, op: impl FnOnce(&mut T) -> Result) -> Result<isize> {
    let len = core::mem::size_of::<T>();
    if _IOC_SIZE(cmd) != len {
        return Err(ENOTTY);
    }
    let (mut reader, mut writer) = UserSlice::new(UserPtr::from_addr(arg), len).reader_writer();
    let mut a: T = reader.read()?;
    if a.size() as usize != len {
        return Err(EINVAL);
    }
    op(&mut a)?;
    writer.write(&a)?;
    Ok(0)
}

impl RkDevice {
    fn info(&self, a: &mut uapi::rkalloc_info) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        a.abi_version = uapi::RKALLOC_ABI_VERSION;
        a.page_size = kernel::page::PAGE_SIZE as u32;
        a.max_order = 10;
        a.nr_cpus = sys::num_online_cpus();
        a.nr_caches = self.shared.kmalloc.registry().len() as u32;
        a.nr_heaps = self.state.lock().items.count(|i| matches!(i, Owned::Heap(_))) as u32;
        let st = self.shared.pool.stats();
        a.pool_pages = st.total_pages;
        a.pool_free_pages = st.free_pages;
        a.fd_bytes = self.state.lock().bytes;
        a.fd_cap_bytes = self.shared.fd_cap_bytes;
        Ok(())
    }

    /// `RKALLOC_IOC_LIST`: every slab cache and every heap, this fd's own
    /// named by their handles; writes at most `max` entries, counts all.
    fn list(&self, a: &mut uapi::rkalloc_list) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        fn name_into(dst: &mut [core::ffi::c_char; uapi::RKALLOC_NAME_LEN as usize], src: &[u8]) {
            // The last byte stays NUL.
            for (d, s) in dst.iter_mut().take(uapi::RKALLOC_NAME_LEN as usize - 1).zip(src) {
                *d = *s as core::ffi::c_char;
            }
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
                    bytes: (s.nr_slabs as u64 * crate::pool::PAGE_SIZE as u64) << s.order,
                    ..Default::default()
                };
                name_into(&mut e.name, c.name().as_bytes());
                out.push(e, GFP_KERNEL)?;
                Ok(())
            })?;
            self.shared.catalog.for_each_heap(|h| {
                let (id, policy, flags, held) = h.describe();
                let mut e = uapi::rkalloc_list_entry {
                    handle: st.items.find(|i| matches!(i, Owned::Heap(o) if Arc::ptr_eq(o, h))).unwrap_or(0),
                    kind: uapi::RKALLOC_KIND_HEAP,
                    policy,
                    flags,
                    bytes: held,
                    ..Default::default()
                };
                let mut buf = [0u8; uapi::RKALLOC_NAME_LEN as usize];
                let mut w = kernel::str::Formatter::new(&mut buf);
                let _ = core::fmt::Write::write_fmt(&mut w, format_args!("heap-{}", id));
                let n = w.bytes_written();
                name_into(&mut e.name, &buf[..n]);
                out.push(e, GFP_KERNEL)?;
                Ok(())
            })?;
        }
        let n = out.len().min(a.max as usize);
        if n > 0 {
            let size = core::mem::size_of::<uapi::rkalloc_list_entry>();
            let mut w = UserSlice::new(UserPtr::from_addr(a.entries as usize), n * size).writer();
            out.iter().take(n).try_for_each(|e| w.write(e))?;
        }
        a.count = out.len() as u32;
        Ok(())
    }

    /// Checks the per-fd cap for `more` bytes.
    fn charge(&self, st: &FdState, more: u64) -> Result {
        match st.bytes.checked_add(more) {
            Some(n) if n <= self.shared.fd_cap_bytes => Ok(()),
            _ => Err(ENOMEM),
        }
    }

    /// Makes something the fd owns, charged `bytes` against its cap: checks
    /// the cap and makes room for the handle before `make` allocates, so a
    /// failure after the allocation cannot happen. Returns the handle.
    fn adopt(&self, bytes: u64, make: impl FnOnce() -> Result<Owned>) -> Result<u64> {
        let mut st = self.state.lock();
        self.charge(&st, bytes)?;
        st.items.reserve()?;
        let handle = st.items.insert(make()?)?;
        st.bytes += bytes;
        Ok(handle)
    }

    fn pool_alloc(&self, a: &mut uapi::rkalloc_pool_alloc) -> Result {
        if a.order > crate::rkcore::buddy::MAX_ORDER {
            return Err(EINVAL);
        }
        let bytes = (crate::pool::PAGE_SIZE as u64) << a.order;
        a.handle = self.adopt(bytes, || {
            Ok(Owned::Pool(self.shared.pool.alloc_tagged(a.order, crate::pool::tag::USER)?))
        })?;
        Ok(())
    }

    fn free(&self, a: &mut uapi::rkalloc_free) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let pool = &self.shared.pool;
        let mut st = self.state.lock();
        // Bytes a heap gives back when the freed block empties a region.
        let mut released = 0;
        let item = st.items.remove_with(a.handle, |item| match item {
            Owned::Pool(b) => pool.free(b.pfn, b.order),
            Owned::HeapBlock(b) => b.heap.free(b.ptr).map(|n| released = n),
            // A debug cache reports (and counts) a bad free itself; the
            // handle is gone either way.
            Owned::Object(o) => {
                let _ = o.cache.free(o.ptr);
                Ok(())
            }
            Owned::Malloc(m) => self.shared.kmalloc.free(m.ptr),
            // Heaps and caches are destroyed and arena allocations reset,
            // not freed.
            Owned::Heap(_) | Owned::Arena(_) | Owned::Cache(_) => Err(EINVAL),
        })?;
        st.bytes -= item.bytes() as u64 + released;
        Ok(())
    }

    fn pattern(&self, a: &mut uapi::rkalloc_pattern, verify: bool) -> Result {
        let mut st = self.state.lock();
        let item = st.items.get_mut(a.handle)?;
        item.with_memory(|mem| {
            a.bytes = mem.len() as u64;
            if verify {
                let (n, first) = verify_pattern(mem, a.pattern);
                a.mismatches = n;
                a.first_mismatch = first;
            } else {
                fill_pattern(mem, a.pattern);
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

    fn heap_create(&self, a: &mut uapi::rkalloc_heap_create) -> Result {
        let policy = heap::policy_from_uapi(a.policy).ok_or(EINVAL)?;
        let flags = heap::flags_from_uapi(a.flags).ok_or(EINVAL)?;
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let catalog = &self.shared.catalog;
        let mut st = self.state.lock();
        st.items.reserve()?;
        let budget = self.shared.fd_cap_bytes.saturating_sub(st.bytes);
        let h = HeapObj::new(&self.shared.pool, catalog.next_id(), policy, flags, a.initial_bytes, budget)?;
        catalog.add_heap(&h)?;
        match st.items.insert(Owned::Heap(h.clone())) {
            Ok(handle) => {
                a.handle = handle;
                st.bytes += h.held();
                Ok(())
            }
            Err(e) => {
                catalog.remove_heap(&h);
                Err(e)
            }
        }
    }

    fn heap_alloc(&self, a: &mut uapi::rkalloc_heap_alloc) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let size = usize::try_from(a.bytes).map_err(|_| EINVAL)?;
        let mut st = self.state.lock();
        let heap = Self::heap_of(&mut st, a.heap)?;
        st.items.reserve()?;
        let budget = self.shared.fd_cap_bytes.saturating_sub(st.bytes);
        let (ptr, grown) = heap.alloc(size, budget)?;
        st.bytes += grown;
        match st.items.insert(Owned::HeapBlock(HeapBlock { heap: heap.clone(), ptr })) {
            Ok(handle) => {
                a.handle = handle;
                Ok(())
            }
            Err(e) => {
                let released = heap.free(ptr).unwrap_or(0);
                st.bytes -= released;
                Err(e)
            }
        }
    }

    /// Frees every block of a heap; their handles become stale (EINVAL).
    fn heap_reset(&self, a: &mut uapi::rkalloc_handle_op) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let heap = Self::heap_of(&mut st, a.handle)?;
        let of = |item: &Owned| matches!(item, Owned::HeapBlock(b) if b.is_of(&heap));
        let n = st.items.count(of);
        st.items.reserve_removals(n)?;
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
    fn heap_destroy(&self, a: &mut uapi::rkalloc_handle_op) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let heap = Self::heap_of(&mut st, a.handle)?;
        let of = |item: &Owned| matches!(item, Owned::HeapBlock(b) if b.is_of(&heap));
        let n = st.items.count(of);
        // One more for the heap's own handle, so nothing below can fail.
        st.items.reserve_removals(n + 1)?;
        st.items.remove_all(of, drop);
        st.items.remove_with(a.handle, |_| Ok(()))?;
        self.shared.catalog.remove_heap(&heap);
        // The memory goes back to the pool with `heap`, the last reference.
        st.bytes -= heap.held();
        Ok(())
    }

    fn arena_alloc(&self, a: &mut uapi::rkalloc_arena_alloc) -> Result {
        let size = usize::try_from(a.bytes).map_err(|_| EINVAL)?;
        let align = a.align as usize;
        // Checked before the arena is made, so a bad call changes nothing.
        if !crate::arena::request_ok(size, align) {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        st.items.reserve()?;
        let arena = if let Some(arena) = st.arena.clone() {
            arena
        } else {
            let arena = ArenaObj::new(&self.shared.pool, self.shared.catalog.next_id())?;
            self.shared.catalog.add_arena(&arena)?;
            st.arena = Some(arena.clone());
            arena
        };
        let budget = self.shared.fd_cap_bytes.saturating_sub(st.bytes);
        let (ptr, grown) = arena.alloc(size, align, budget)?;
        st.bytes += grown;
        // Cannot fail after `reserve`; were it to, the bytes would stay
        // allocated until the next reset.
        a.handle = st.items.insert(Owned::Arena(ArenaAlloc { arena, ptr, len: size }))?;
        Ok(())
    }

    /// Frees every arena allocation of the fd; their handles become stale.
    fn arena_reset(&self, a: &mut uapi::rkalloc_arena_reset) -> Result {
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
        let (report, released) = arena.reset();
        st.items.remove_all(of, drop);
        st.bytes -= released;
        a.bytes_reclaimed = report.bytes_reclaimed;
        a.allocations_reclaimed = report.allocations_reclaimed;
        Ok(())
    }

    fn check(&self, a: &mut uapi::rkalloc_check) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        a.violations = 0;
        if self.shared.pool.check().is_err() {
            a.violations += 1;
        }
        a.violations += self.shared.catalog.check().1;
        a.violations += self.shared.kmalloc.check() as u64;
        if a.violations != 0 {
            return Err(sys::euclean());
        }
        Ok(())
    }

    fn shrink(&self, a: &mut uapi::rkalloc_pool_shrink) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        // Slab caches first: their empty slabs and per-CPU objects pin pool
        // pages.
        let slab_pages = self.shared.kmalloc.shrink() as u64;
        a.released_pages = self.shared.pool.shrink();
        pr_debug!("shrink: slab caches gave back {} pages\n", slab_pages);
        Ok(())
    }

    fn cache_create(&self, a: &mut uapi::rkalloc_cache_create) -> Result {
        let flags = Flags::from_bits(a.flags).ok_or(EINVAL)?;
        let align = if a.align == 0 { 8 } else { a.align as usize };
        let len = a.name.iter().position(|&c| c == 0).ok_or(EINVAL)?;
        let mut name = [0u8; slab::NAME_MAX];
        let dst = name.get_mut(..len).ok_or(EINVAL)?;
        for (d, s) in dst.iter_mut().zip(a.name.iter()) {
            *d = *s as u8;
        }
        a.handle = self.adopt(slab::Cache::footprint() as u64, || {
            Ok(Owned::Cache(self.shared.kmalloc.create_cache(&name[..len], a.obj_size as usize, align, flags)?))
        })?;
        Ok(())
    }

    /// EBUSY while objects of the cache are live.
    fn cache_destroy(&self, a: &mut uapi::rkalloc_handle_op) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let item = st.items.remove_with(a.handle, |item| match item {
            Owned::Cache(c) => c.destroy(),
            _ => Err(EINVAL),
        })?;
        st.bytes -= item.bytes() as u64;
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

    /// Allocates `count` objects, all or nothing, and writes their handles
    /// to the user array.
    fn obj_alloc(&self, a: &mut uapi::rkalloc_batch) -> Result {
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
            // Cannot fail: room was reserved above.
            if let Ok(h) = st.items.insert(Owned::Object(Object { cache: cache.clone(), ptr })) {
                let _ = handles.push_within_capacity(h);
            }
        }
        st.bytes += bytes;
        let mut w = UserSlice::new(UserPtr::from_addr(a.handles as usize), n * 8).writer();
        let copied = handles.iter().try_for_each(|h| w.write(h));
        if handles.len() == n && copied.is_ok() {
            return Ok(());
        }
        // Roll back: the caller cannot name what it did not receive.
        for h in handles.iter() {
            if let Ok(Owned::Object(o)) = st.items.remove_with(*h, |_| Ok(())) {
                let _ = o.cache.free(o.ptr);
            }
        }
        st.bytes -= bytes;
        copied.and(Err(ENOMEM))
    }

    /// Frees `count` objects; every handle is checked first (and twice the
    /// same handle is EINVAL), so a bad one frees nothing.
    fn obj_free(&self, a: &mut uapi::rkalloc_batch) -> Result {
        let n = Self::batch_len(a)?;
        let mut handles = KVec::with_capacity(n, GFP_KERNEL)?;
        let mut r = UserSlice::new(UserPtr::from_addr(a.handles as usize), n * 8).reader();
        for _ in 0..n {
            let h: u64 = r.read()?;
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
        crate::sort::sort_u64(&mut sorted);
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(EINVAL);
        }
        st.items.reserve_removals(n)?;
        let mut bytes = 0u64;
        for h in handles.iter() {
            if let Ok(item) = st.items.remove_with(*h, |_| Ok(())) {
                bytes += item.bytes() as u64;
                if let Owned::Object(o) = item {
                    let _ = o.cache.free(o.ptr);
                }
            }
        }
        st.bytes -= bytes;
        Ok(())
    }

    /// `rk_malloc(bytes)`, charged what it really takes.
    fn malloc(&self, a: &mut uapi::rkalloc_malloc) -> Result {
        if a.reserved != 0 || a.bytes == 0 || a.bytes > u64::from(uapi::RKALLOC_MAX_MALLOC) {
            return Err(EINVAL);
        }
        let bytes = a.bytes as usize;
        let charged = slab::SizeClasses::footprint(bytes)? as u64;
        let mut st = self.state.lock();
        self.charge(&st, charged)?;
        st.items.reserve()?;
        let ptr = self.shared.kmalloc.malloc(bytes)?;
        match st.items.insert(Owned::Malloc(Malloced { ptr, bytes })) {
            Ok(h) => {
                a.handle = h;
                st.bytes += charged;
                Ok(())
            }
            Err(e) => {
                let _ = self.shared.kmalloc.free(ptr);
                Err(e)
            }
        }
    }

    fn pool_stats(&self, a: &mut uapi::rkalloc_pool_stats) -> Result {
        if a.flags & !uapi::RKALLOC_STATS_RESET != 0 {
            return Err(EINVAL);
        }
        let st = self.shared.pool.stats();
        if a.flags & uapi::RKALLOC_STATS_RESET != 0 {
            // The snapshot above is what the caller gets; counting starts
            // afresh from here.
            self.shared.pool.reset_stats();
        }
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
        Ok(())
    }
}

/// The byte `fill` writes at offset `i`: distinct per pattern and position,
/// so overlapping allocations or stray writes show up in `verify`.
#[inline]
fn pattern_byte(pattern: u32, i: usize) -> u8 {
    let x = (i as u32).wrapping_mul(0x9e37_79b1) ^ pattern.wrapping_mul(0x85eb_ca6b);
    (x >> 24) as u8 ^ (x >> 8) as u8
}

fn fill_pattern(mem: &mut [u8], pattern: u32) {
    for (i, b) in mem.iter_mut().enumerate() {
        *b = pattern_byte(pattern, i);
    }
}

fn verify_pattern(mem: &[u8], pattern: u32) -> (u64, u64) {
    let mut n = 0u64;
    let mut first = u64::MAX;
    for (i, b) in mem.iter().enumerate() {
        if *b != pattern_byte(pattern, i) {
            if n == 0 {
                first = i as u64;
            }
            n += 1;
        }
    }
    (n, first)
}
