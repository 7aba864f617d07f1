// SPDX-License-Identifier: GPL-2.0
//! Per-CPU memory (`alloc_percpu`), reached with preemption disabled: the
//! current CPU's slot is the `__percpu` pointer plus the offset a
//! [`CpuGuard`] reads (`this_cpu_ptr`), inline where the guard is.

use super::cpu::{cpu_online, cpu_possible, nr_cpu_ids, run_on_cpu, run_on_cpu_in_reclaim, CpuGuard};
use kernel::prelude::*;

extern "C" {
    fn rk_alloc_percpu(size: usize, align: usize) -> *mut c_void;
    fn rk_free_percpu(ptr: *mut c_void);
    fn rk_per_cpu_ptr(ptr: *mut c_void, cpu: u32) -> *mut c_void;
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
            rk_alloc_percpu(
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
                unsafe { rk_per_cpu_ptr(ptr, cpu).cast::<T>().write(init()) };
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
        let slot = unsafe { &mut *rk_per_cpu_ptr(self.ptr, cpu).cast::<T>() };
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
        unsafe { rk_free_percpu(self.ptr) };
    }
}

/// The current CPU's slot of a [`PerCpuShared`], borrowed with preemption
/// disabled.
///
/// # Invariants
///
/// `guard` keeps preemption disabled while `slot`, this CPU's slot, is
/// borrowed; the guard cannot move to another task.
pub(crate) struct Local<'a, T> {
    slot: &'a T,
    // Dropped after the last use of `slot`: preemption comes back on last.
    _guard: CpuGuard,
}

impl<T> core::ops::Deref for Local<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        self.slot
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
    /// duration.
    #[inline(always)]
    pub(crate) fn with_local<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let slot = self.local();
        f(&slot)
    }

    /// The current CPU's slot, with preemption disabled until the returned
    /// guard is dropped (`get_cpu_ptr`/`put_cpu_ptr`). Straight-line code
    /// for the fast paths: no closure for the compiler to keep out of line.
    #[inline(always)]
    pub(crate) fn local(&self) -> Local<'_, T> {
        let guard = CpuGuard::new();
        // SAFETY: the slot is used only through the `Local`, which keeps
        // `guard`.
        let slot = unsafe { self.slot(&guard) };
        // INVARIANT: `guard` disabled preemption and moves into the `Local`.
        Local { slot, _guard: guard }
    }

    /// Runs `f` on the slot of the CPU `guard` pins this task to.
    #[inline(always)]
    pub(crate) fn with<R>(&self, guard: &CpuGuard, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: `guard` outlives the call of `f`, the slot's only use.
        f(unsafe { self.slot(guard) })
    }

    /// The slot of the CPU `guard` pins this task to.
    ///
    /// # Safety
    ///
    /// The slot is used only while `guard` lives.
    #[inline(always)]
    unsafe fn slot(&self, guard: &CpuGuard) -> &T {
        // `this_cpu_ptr`: the per-CPU pointer plus this CPU's offset.
        let p = self.0.ptr.cast::<u8>().wrapping_add(guard.this_cpu_offset()).cast::<T>();
        // Preemption is disabled while `guard` lives (as long as the slot is
        // used, by the contract), so this task stays on `guard`'s CPU.
        // SAFETY: `p` is that CPU's slot, initialised (`PerCpu` invariant),
        // only shared references to it exist (type invariant), `T: Sync`.
        unsafe { &*p }
    }

    /// Any possible CPU's slot.
    pub(crate) fn get(&self, cpu: u32) -> Option<&T> {
        if !cpu_possible(cpu) {
            return None;
        }
        // SAFETY: the slot of a possible CPU is initialised (invariant of
        // `PerCpu`), only shared references to it exist (type invariant),
        // and `T: Sync` makes sharing across CPUs sound.
        Some(unsafe { &*rk_per_cpu_ptr(self.0.ptr, cpu).cast::<T>() })
    }

    /// The body of the work [`Self::for_each_cpu`] and
    /// [`Self::for_each_cpu_in_reclaim`] run on `cpu`: `f` on its slot with
    /// preemption disabled; -1 (nothing done) if the work did not run on
    /// `cpu` after all (it went offline meanwhile).
    fn on_this_cpu(&self, cpu: u32, f: &mut impl FnMut(&T)) -> i32 {
        let g = CpuGuard::new();
        if g.cpu() != cpu {
            return -1;
        }
        if let Some(t) = self.get(cpu) {
            f(t);
        }
        0
    }

    /// Runs `f` on every online CPU's slot, on that CPU (preemption
    /// disabled), from a shrinker's scan: a CPU that cannot be reached now
    /// (a hotplug operation is running, see [`run_on_cpu_in_reclaim`])
    /// is skipped, and an offline CPU's slot is left alone (it is reached
    /// only with hotplug held off, by [`Self::for_each_cpu`]). Returns how
    /// many CPUs were skipped.
    pub(crate) fn for_each_cpu_in_reclaim(&self, mut f: impl FnMut(&T) + Send) -> u32 {
        let mut skipped = 0;
        for cpu in (0..nr_cpu_ids()).filter(|&c| cpu_online(c)) {
            let ran = run_on_cpu_in_reclaim(cpu, || self.on_this_cpu(cpu, &mut f));
            if !matches!(ran, Ok(0)) {
                skipped += 1;
            }
        }
        skipped
    }

    /// Runs `f` on every possible CPU's slot: for online CPUs on that CPU
    /// (preemption disabled, through [`run_on_cpu`]), for the others here.
    /// Process context only (it sleeps).
    pub(crate) fn for_each_cpu(&self, mut f: impl FnMut(&T) + Send) {
        for cpu in 0..nr_cpu_ids() {
            if cpu_online(cpu) {
                let ran = run_on_cpu(cpu, || self.on_this_cpu(cpu, &mut f));
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
