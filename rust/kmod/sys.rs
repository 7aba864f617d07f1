// SPDX-License-Identifier: GPL-2.0
//! All FFI in one place: the C shim (`shim.c`, prototypes in `shim.h`) and
//! the raw `bindings::` calls the allocators need, each behind a safe
//! function. Allocator code never calls C directly.

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

/// Prototypes of `shim.h`.
mod shim {
    use kernel::{bindings::page, prelude::*};
    // `struct page` (and `kmem_cache`) only ever cross by pointer; their
    // layout, which rustc flags as not FFI-safe, is never used from Rust.
    #[allow(improper_ctypes)]
    extern "C" {
        pub(super) fn rk_page_address(page: *mut page) -> *mut c_void;
        pub(super) fn rk_virt_to_page(addr: *const c_void) -> *mut page;
        pub(super) fn rk_alloc_pages(gfp: kernel::bindings::gfp_t, order: c_uint) -> *mut page;
        pub(super) fn rk_vmalloc(size: usize) -> *mut c_void;
        pub(super) fn rk_vfree(addr: *const c_void);
        pub(super) fn rk_kvmalloc(size: usize) -> *mut c_void;
        pub(super) fn rk_kvfree(addr: *const c_void);
        pub(super) fn rk_kmalloc(size: usize) -> *mut c_void;
        pub(super) fn rk_kfree(addr: *const c_void);
        pub(super) fn rk_ktime_ns() -> u64;
        pub(super) fn rk_preempt_disable();
        pub(super) fn rk_preempt_enable();
        pub(super) fn rk_smp_processor_id() -> u32;
        pub(super) fn rk_num_online_cpus() -> u32;
        pub(super) fn rk_nr_cpu_ids() -> u32;
        pub(super) fn rk_cpu_online(cpu: u32) -> bool;
        pub(super) fn rk_cond_resched();
        pub(super) fn rk_call_on_cpu(
            cpu: u32,
            f: unsafe extern "C" fn(*mut c_void) -> c_int,
            arg: *mut c_void,
        ) -> c_int;
        pub(super) fn rk_uapi_cmd(index: u32) -> u32;
        pub(super) fn rk_alloc_percpu(size: usize, align: usize) -> *mut c_void;
        pub(super) fn rk_free_percpu(ptr: *mut c_void);
        pub(super) fn rk_per_cpu_ptr(ptr: *mut c_void, cpu: u32) -> *mut c_void;
        pub(super) fn rk_cpu_possible(cpu: u32) -> bool;
        pub(super) fn rk_get_cpu_ptr(ptr: *mut c_void) -> *mut c_void;
        pub(super) fn rk_put_cpu_ptr();
        pub(super) fn rk_kmem_cache_create(
            name: *const c_char,
            size: c_uint,
            align: c_uint,
        ) -> *mut kernel::bindings::kmem_cache;
        pub(super) fn rk_kmem_cache_destroy(s: *mut kernel::bindings::kmem_cache);
        pub(super) fn rk_set_page_private(addr: *const c_void, v: c_ulong);
        pub(super) fn rk_page_private(addr: *const c_void) -> c_ulong;
    }
}

/// `EUCLEAN` ("structure needs cleaning"): an invariant checker found a
/// violation. The kernel crate does not name this errno.
pub(crate) fn euclean() -> Error {
    Error::from_errno(-(bindings::EUCLEAN as i32))
}

/// `__GFP_NORETRY`, which bindgen does not carry over (it is built from an
/// enum of bit numbers).
pub(crate) const GFP_NORETRY: bindings::gfp_t = 1 << bindings::___GFP_NORETRY_BIT;

/// Monotonic time in nanoseconds (`ktime_get_ns`).
#[inline]
pub(crate) fn ktime_ns() -> u64 {
    // SAFETY: `ktime_get_ns` has no preconditions.
    unsafe { shim::rk_ktime_ns() }
}

/// `kmalloc_size_roundup`: the bytes `kmalloc(size)` really hands out.
#[inline]
pub(crate) fn kmalloc_size_roundup(size: usize) -> usize {
    // SAFETY: a pure function of its argument, with no preconditions.
    unsafe { bindings::kmalloc_size_roundup(size) }
}

/// Number of CPUs online.
pub(crate) fn num_online_cpus() -> u32 {
    // SAFETY: reads a kernel counter; no preconditions.
    unsafe { shim::rk_num_online_cpus() }
}

/// Upper bound of CPU ids (`nr_cpu_ids`): every CPU id is below it.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a kernel variable set at boot; no preconditions.
    unsafe { shim::rk_nr_cpu_ids() }
}

/// Whether `cpu` is a valid, online CPU.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: the shim checks `cpu < nr_cpu_ids` before testing the mask.
    unsafe { shim::rk_cpu_online(cpu) }
}

/// Yields the CPU if the scheduler wants it; for long loops in process context.
pub(crate) fn cond_resched() {
    // SAFETY: callers run in process context, where sleeping is allowed.
    unsafe { shim::rk_cond_resched() }
}

/// The value the C header gives ioctl command `index` (see `shim.c`); lets
/// KUnit prove that the Rust command numbers match the header.
pub(crate) fn uapi_cmd(index: u32) -> u32 {
    // SAFETY: the shim returns 0 for an index it does not know.
    unsafe { shim::rk_uapi_cmd(index) }
}

/// A section that stays on one CPU: preemption is disabled while it lives.
///
/// # Invariants
///
/// Preemption is disabled from `new` until drop, so `cpu` stays the current
/// CPU for the guard's whole life.
pub(crate) struct CpuGuard {
    cpu: u32,
    // Must not move to another thread: preempt_enable has to run where
    // preempt_disable ran.
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl CpuGuard {
    /// Disables preemption and records the current CPU.
    #[inline]
    pub(crate) fn new() -> Self {
        // SAFETY: balanced by `preempt_enable` in `drop`.
        unsafe { shim::rk_preempt_disable() };
        // SAFETY: preemption is disabled, so the id is stable.
        let cpu = unsafe { shim::rk_smp_processor_id() };
        // INVARIANT: preemption was disabled just above.
        Self {
            cpu,
            _not_send: core::marker::PhantomData,
        }
    }

    /// The CPU this section runs on.
    #[inline]
    pub(crate) fn cpu(&self) -> u32 {
        self.cpu
    }
}

impl Drop for CpuGuard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: pairs with the `preempt_disable` in `new` (type invariant).
        unsafe { shim::rk_preempt_enable() };
    }
}

/// Runs `f` on `cpu`, in a kworker bound to it (`smp_call_on_cpu`), and
/// waits for it. Process context only.
pub(crate) fn run_on_cpu<F: FnMut() -> i32 + Send>(cpu: u32, mut f: F) -> Result<i32> {
    if !cpu_online(cpu) {
        return Err(EINVAL);
    }
    unsafe extern "C" fn trampoline<F: FnMut() -> i32>(arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the `&mut F` passed below, alive until
        // `smp_call_on_cpu` returns, which waits for this call.
        let f = unsafe { &mut *arg.cast::<F>() };
        f()
    }
    let arg = core::ptr::from_mut(&mut f).cast::<c_void>();
    // SAFETY: `trampoline::<F>` matches the callback type, and `arg` stays
    // valid until the call returns (smp_call_on_cpu is synchronous).
    Ok(unsafe { shim::rk_call_on_cpu(cpu, trampoline::<F>, arg) })
}

/// Allocates 2^`order` contiguous pages from the kernel's page allocator and
/// returns their kernel address, or `None`.
pub(crate) fn alloc_pages(order: u32, gfp: bindings::gfp_t) -> Option<*mut u8> {
    // SAFETY: `alloc_pages` accepts any gfp and order; it returns NULL on
    // failure (and for orders above MAX_PAGE_ORDER).
    let page = unsafe { shim::rk_alloc_pages(gfp, order) };
    if page.is_null() {
        return None;
    }
    // SAFETY: `page` is a valid page of the linear map (no __GFP_HIGHMEM on
    // x86_64), so it has a permanent kernel address.
    Some(unsafe { shim::rk_page_address(page) }.cast())
}

/// Returns pages from [`alloc_pages`] to the kernel.
///
/// # Safety
///
/// `addr` came from `alloc_pages(order, _)` with this `order` and is not
/// used after this call.
pub(crate) unsafe fn free_pages(addr: *mut u8, order: u32) {
    // SAFETY: by the contract, `addr` is the address of a live 2^order block
    // from `alloc_pages`, so `virt_to_page` finds its head page.
    unsafe { bindings::__free_pages(shim::rk_virt_to_page(addr.cast()), order) }
}

/// `kmalloc(size, GFP_KERNEL)`.
#[inline]
pub(crate) fn kmalloc(size: usize) -> *mut u8 {
    // SAFETY: `kmalloc` accepts any size and returns NULL on failure.
    unsafe { shim::rk_kmalloc(size) }.cast()
}

/// `kfree`.
///
/// # Safety
///
/// `p` came from [`kmalloc`] (or is null) and is not used again.
#[inline]
pub(crate) unsafe fn kfree(p: *mut u8) {
    // SAFETY: by the contract.
    unsafe { shim::rk_kfree(p.cast()) }
}

/// `vmalloc(size)`.
pub(crate) fn vmalloc(size: usize) -> *mut u8 {
    // SAFETY: `vmalloc` accepts any size and returns NULL on failure.
    unsafe { shim::rk_vmalloc(size) }.cast()
}

/// `vfree`.
///
/// # Safety
///
/// `p` came from [`vmalloc`] (or is null) and is not used again.
pub(crate) unsafe fn vfree(p: *mut u8) {
    // SAFETY: by the contract.
    unsafe { shim::rk_vfree(p.cast()) }
}

/// `kvmalloc(size, GFP_KERNEL)`.
pub(crate) fn kvmalloc(size: usize) -> *mut u8 {
    // SAFETY: `kvmalloc` accepts any size and returns NULL on failure.
    unsafe { shim::rk_kvmalloc(size) }.cast()
}

/// `kvfree`.
///
/// # Safety
///
/// `p` came from [`kvmalloc`] (or is null) and is not used again.
pub(crate) unsafe fn kvfree(p: *mut u8) {
    // SAFETY: by the contract.
    unsafe { shim::rk_kvfree(p.cast()) }
}

/// Takes a reference on `module` so it cannot be unloaded; `false` if it is
/// already going away.
pub(crate) fn module_get(module: &'static ThisModule) -> bool {
    // SAFETY: `module.as_ptr()` is this module's `struct module`, alive while
    // any of its code runs.
    unsafe { bindings::try_module_get(module.as_ptr()) }
}

/// Drops a reference taken by [`module_get`].
pub(crate) fn module_put(module: &'static ThisModule) {
    // SAFETY: pairs with a successful `module_get`.
    unsafe { bindings::module_put(module.as_ptr()) }
}

/// Sets `page->private` of the page holding `addr` (the slab layer's owner
/// tag; see `slab.rs`).
///
/// # Safety
///
/// `addr` lies in the kernel's linear map (pool memory does), and the caller
/// owns the page's `private` field: it holds the page from the pool.
#[inline]
pub(crate) unsafe fn set_page_private(addr: *const u8, v: usize) {
    // SAFETY: a linear-map address has a `struct page` (caller's contract).
    unsafe { shim::rk_set_page_private(addr.cast(), v as c_ulong) }
}

/// `page->private` of the page holding `addr`.
///
/// # Safety
///
/// `addr` lies in the kernel's linear map (pool memory does), so that its
/// `struct page` exists.
#[inline]
pub(crate) unsafe fn page_private(addr: *const u8) -> usize {
    // SAFETY: a linear-map address has a `struct page` (caller's contract).
    unsafe { shim::rk_page_private(addr.cast()) as usize }
}

/// A random `u32` (`get_random_u32`).
pub(crate) fn random_u32() -> u32 {
    // SAFETY: no preconditions; usable in any context.
    unsafe { bindings::get_random_u32() }
}

/// A random `u64` (`get_random_u64`).
pub(crate) fn random_u64() -> u64 {
    // SAFETY: no preconditions; usable in any context.
    unsafe { bindings::get_random_u64() }
}

/// Whether `cpu` is a possible CPU (it may come online and has per-CPU data).
pub(crate) fn cpu_possible(cpu: u32) -> bool {
    // SAFETY: the shim checks `cpu < nr_cpu_ids` before testing the mask.
    unsafe { shim::rk_cpu_possible(cpu) }
}

/// One `T` per possible CPU, in the kernel's per-CPU memory (`alloc_percpu`).
///
/// # Invariants
///
/// - `ptr` is a live `__percpu` allocation of `size_of::<T>()` bytes whose
///   slot for every possible CPU holds an initialised `T`.
/// - A slot is accessed mutably only by [`PerCpu::with_remote`], whose
///   callers guarantee that no one else uses it (teardown). Shared access
///   goes through [`PerCpuShared`], the only user of this type.
pub(crate) struct PerCpu<T> {
    ptr: *mut c_void,
    _t: core::marker::PhantomData<T>,
}

// SAFETY: each slot is accessed by one CPU at a time (type invariant), so
// sharing the handle between threads is sound when `T` may move between them.
unsafe impl<T: Send> Send for PerCpu<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for PerCpu<T> {}

impl<T> PerCpu<T> {
    /// Allocates the per-CPU slots and initialises each with `init()`.
    pub(crate) fn new(init: impl Fn() -> T) -> Result<Self> {
        // SAFETY: `__alloc_percpu` accepts any size/alignment and returns
        // NULL on failure.
        let ptr = unsafe {
            shim::rk_alloc_percpu(
                core::mem::size_of::<T>().max(1),
                core::mem::align_of::<T>(),
            )
        };
        if ptr.is_null() {
            return Err(ENOMEM);
        }
        for cpu in 0..nr_cpu_ids() {
            if cpu_possible(cpu) {
                // SAFETY: `ptr` is a live per-CPU allocation and `cpu` is
                // possible, so its slot is valid, suitably aligned memory for
                // a `T`, not yet initialised and not shared.
                unsafe { shim::rk_per_cpu_ptr(ptr, cpu).cast::<T>().write(init()) };
            }
        }
        // INVARIANT: every possible CPU's slot was initialised above.
        Ok(Self {
            ptr,
            _t: core::marker::PhantomData,
        })
    }

    /// Runs `f` on `cpu`'s slot from another CPU.
    ///
    /// # Safety
    ///
    /// No one else may use `cpu`'s slot meanwhile: `cpu` is offline, or the
    /// whole structure is quiescent (its owner is being torn down).
    pub(crate) unsafe fn with_remote<R>(&self, cpu: u32, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if !cpu_possible(cpu) {
            return None;
        }
        // SAFETY: `cpu` is possible, so its slot is initialised (type
        // invariant); exclusivity is the caller's contract.
        let slot = unsafe { &mut *shim::rk_per_cpu_ptr(self.ptr, cpu).cast::<T>() };
        Some(f(slot))
    }

}

impl<T> Drop for PerCpu<T> {
    fn drop(&mut self) {
        for cpu in 0..nr_cpu_ids() {
            // SAFETY: `&mut self` proves no one else uses any slot, and each
            // possible CPU's slot holds an initialised `T` (type invariant),
            // dropped exactly once here.
            unsafe { self.with_remote(cpu, |t| core::ptr::drop_in_place(t)) };
        }
        // SAFETY: `ptr` came from `__alloc_percpu` and is freed once.
        unsafe { shim::rk_free_percpu(self.ptr) };
    }
}

/// A kernel slab cache (`kmem_cache`, SLUB), created with `SLAB_NO_MERGE`
/// so that it is not silently merged with another cache of the same size.
///
/// # Invariants
///
/// `ptr` is a live cache from `kmem_cache_create`, destroyed only in drop.
pub(crate) struct KmemCache {
    ptr: NonNull<bindings::kmem_cache>,
}

// SAFETY: kmem_cache functions are thread-safe.
unsafe impl Send for KmemCache {}
// SAFETY: as above.
unsafe impl Sync for KmemCache {}

impl KmemCache {
    /// Creates a cache of `size`-byte objects. The kernel copies `name`.
    pub(crate) fn new(name: &CStr, size: u32, align: u32) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string, which slab duplicates
        // (kstrdup_const); size and align are checked by kmem_cache_create
        // (NULL on error).
        let ptr = unsafe { shim::rk_kmem_cache_create(name.as_char_ptr(), size, align) };
        // INVARIANT: non-null means a live cache.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(ENOMEM)
    }

    /// `kmem_cache_alloc(GFP_KERNEL)`.
    #[inline]
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
        // SAFETY: `ptr` is a live cache (type invariant).
        NonNull::new(unsafe { bindings::kmem_cache_alloc_noprof(self.ptr.as_ptr(), bindings::GFP_KERNEL) }.cast())
    }

    /// `kmem_cache_free`.
    ///
    /// # Safety
    ///
    /// `p` came from [`KmemCache::alloc`] on this cache and is not used again.
    #[inline]
    pub(crate) unsafe fn free(&self, p: NonNull<u8>) {
        // SAFETY: by the contract and the type invariant.
        unsafe { bindings::kmem_cache_free(self.ptr.as_ptr(), p.as_ptr().cast()) }
    }
}

impl Drop for KmemCache {
    fn drop(&mut self) {
        // SAFETY: the cache is live (type invariant) and its users are gone
        // (`&mut self`).
        unsafe { shim::rk_kmem_cache_destroy(self.ptr.as_ptr()) }
    }
}

/// What a kernel shrinker asks of a cache of reclaimable memory.
pub(crate) trait Reclaim: Send + Sync {
    /// Objects (pages) that a scan could free now; 0 when none.
    fn count(&self) -> u64;
    /// Frees up to about `nr`; returns how many were freed. Must not sleep
    /// on anything reclaim may be waiting for.
    fn scan(&self, nr: u64) -> u64;
}

// From include/linux/shrinker.h, whose macros bindgen does not carry over.
const SHRINK_STOP: c_ulong = !0;
const SHRINK_EMPTY: c_ulong = !0 - 1;
const DEFAULT_SEEKS: c_int = 2;

/// A registered kernel shrinker calling into a [`Reclaim`], modelled on
/// `drivers/android/binder/page_range.rs` (7.2 has no Rust abstraction).
///
/// # Invariants
///
/// `ptr` is a registered shrinker whose `private_data` points at a `T` that
/// outlives this value (the contract of [`Shrinker::register`]); dropping
/// this unregisters it and waits for running callbacks.
pub(crate) struct Shrinker {
    ptr: NonNull<bindings::shrinker>,
}

// SAFETY: the shrinker API may be called from any thread.
unsafe impl Send for Shrinker {}
// SAFETY: `&Shrinker` exposes nothing.
unsafe impl Sync for Shrinker {}

impl Shrinker {
    /// Registers a shrinker named `name` that reclaims from `data`.
    ///
    /// # Safety
    ///
    /// `*data` must stay valid until the returned value is dropped.
    pub(crate) unsafe fn register<T: Reclaim>(name: &CStr, data: *const T) -> Result<Self> {
        // SAFETY: `shrinker_alloc` takes flags and a printf format with no
        // arguments (so `name` must not contain '%': callers pass literals);
        // it returns NULL on failure.
        let s = unsafe { bindings::shrinker_alloc(0, name.as_char_ptr()) };
        let ptr = NonNull::new(s).ok_or(ENOMEM)?;
        // SAFETY: `s` is a fresh, unregistered shrinker we own; `data`
        // outlives it (the contract), and `Drop` frees it.
        unsafe {
            (*s).count_objects = Some(count_cb::<T>);
            (*s).scan_objects = Some(scan_cb::<T>);
            (*s).private_data = data.cast_mut().cast();
            (*s).seeks = DEFAULT_SEEKS;
            bindings::shrinker_register(s);
        }
        // INVARIANT: registered above with `private_data = data`.
        Ok(Self { ptr })
    }
}

unsafe extern "C" fn count_cb<T: Reclaim>(s: *mut bindings::shrinker, _sc: *mut bindings::shrink_control) -> c_ulong {
    // SAFETY: `private_data` is the `T` given to `register`, alive while the
    // shrinker is registered (type invariant of `Shrinker`).
    let data = unsafe { &*(*s).private_data.cast::<T>() };
    match data.count() {
        0 => SHRINK_EMPTY,
        n => n as c_ulong,
    }
}

unsafe extern "C" fn scan_cb<T: Reclaim>(s: *mut bindings::shrinker, sc: *mut bindings::shrink_control) -> c_ulong {
    // SAFETY: as in `count_cb`; `sc` is valid for the duration of the call.
    let (data, nr) = unsafe { (&*(*s).private_data.cast::<T>(), (*sc).nr_to_scan) };
    match data.scan(nr as u64) {
        0 => SHRINK_STOP,
        n => n as c_ulong,
    }
}

impl Drop for Shrinker {
    fn drop(&mut self) {
        // SAFETY: registered in `register` and freed once; `shrinker_free`
        // waits for running callbacks, so `data` is not used afterwards.
        unsafe { bindings::shrinker_free(self.ptr.as_ptr()) };
    }
}

/// Per-CPU data reached only through shared references: for `T` whose
/// per-CPU state lives in atomics (`T: Sync`), so that other CPUs may read
/// (statistics) or even drain it while its own CPU works on it.
///
/// # Invariants
///
/// No `&mut T` to a slot is ever created while `self` is shared: the inner
/// [`PerCpu`] is private and only its shared-reference paths are used here
/// (its `Drop`, under `&mut self`, is the one exclusive access).
pub(crate) struct PerCpuShared<T: Sync>(PerCpu<T>);

impl<T: Sync + Send> PerCpuShared<T> {
    /// Allocates the per-CPU slots and initialises each with `init()`.
    pub(crate) fn new(init: impl Fn() -> T) -> Result<Self> {
        Ok(Self(PerCpu::new(init)?))
    }

    /// Runs `f` on the current CPU's slot with preemption disabled for its
    /// duration (one call to C on each side).
    #[inline]
    pub(crate) fn with_local<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: `rk_get_cpu_ptr` disables preemption and returns this
        // CPU's initialised slot (invariant of `PerCpu`); only shared
        // references to it exist (type invariant), and `T: Sync`.
        let slot = unsafe { &*shim::rk_get_cpu_ptr(self.0.ptr).cast::<T>() };
        let r = f(slot);
        // SAFETY: pairs with the preempt_disable in `rk_get_cpu_ptr`.
        unsafe { shim::rk_put_cpu_ptr() };
        r
    }

    /// Runs `f` on the slot of the CPU `guard` pins this task to.
    #[inline]
    pub(crate) fn with<R>(&self, guard: &CpuGuard, f: impl FnOnce(&T) -> R) -> R {
        // Preemption is disabled while `guard` lives, so this task stays on
        // `guard.cpu()`; only shared references to a slot exist (invariant).
        // SAFETY: the slot is initialised (invariant of `PerCpu`), `T: Sync`.
        let slot = unsafe { &*shim::rk_per_cpu_ptr(self.0.ptr, guard.cpu()).cast::<T>() };
        f(slot)
    }

    /// Any possible CPU's slot.
    pub(crate) fn get(&self, cpu: u32) -> Option<&T> {
        if !cpu_possible(cpu) {
            return None;
        }
        // SAFETY: the slot of a possible CPU is initialised (invariant of
        // `PerCpu`), only shared references to it exist (type invariant),
        // and `T: Sync` makes sharing across CPUs sound.
        Some(unsafe { &*shim::rk_per_cpu_ptr(self.0.ptr, cpu).cast::<T>() })
    }

    /// Runs `f` on every possible CPU's slot: for online CPUs on that CPU
    /// (preemption disabled, through [`run_on_cpu`]), for the others here.
    /// Process context only (it sleeps).
    pub(crate) fn for_each_cpu(&self, mut f: impl FnMut(&T) + Send) {
        for cpu in 0..nr_cpu_ids() {
            if cpu_online(cpu) {
                let ran = run_on_cpu(cpu, || {
                    let g = CpuGuard::new();
                    if g.cpu() != cpu {
                        return -1;
                    }
                    if let Some(t) = self.get(cpu) {
                        f(t);
                    }
                    0
                });
                if matches!(ran, Ok(0)) {
                    continue;
                }
            }
            if !cpu_online(cpu) {
                if let Some(t) = self.get(cpu) {
                    f(t);
                }
            }
        }
    }
}
