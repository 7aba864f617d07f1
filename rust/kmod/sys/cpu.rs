// SPDX-License-Identifier: GPL-2.0
//! CPUs, preemption and process-context helpers: the shim's wrappers of
//! `preempt_disable`, `smp_processor_id`, the CPU masks, `cond_resched`,
//! `fatal_signal_pending` and `smp_call_on_cpu`.

use kernel::prelude::*;

extern "C" {
    fn rk_preempt_disable();
    fn rk_preempt_enable();
    fn rk_smp_processor_id() -> u32;
    fn rk_num_online_cpus() -> u32;
    fn rk_nr_cpu_ids() -> u32;
    fn rk_cpu_online(cpu: u32) -> bool;
    fn rk_cpu_possible(cpu: u32) -> bool;
    fn rk_cond_resched();
    fn rk_fatal_signal_pending() -> bool;
    fn rk_wq_init() -> c_int;
    fn rk_wq_exit();
    fn rk_call_on_cpu(cpu: u32, f: unsafe extern "C" fn(*mut c_void) -> c_int, arg: *mut c_void) -> c_int;
    fn rk_stop_machine(f: unsafe extern "C" fn(*mut c_void) -> c_int, arg: *mut c_void) -> c_int;
}

/// Number of CPUs online.
pub(crate) fn num_online_cpus() -> u32 {
    // SAFETY: reads a kernel counter; no preconditions.
    unsafe { rk_num_online_cpus() }
}

/// Upper bound of CPU ids (`nr_cpu_ids`): every CPU id is below it.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a kernel variable set at boot; no preconditions.
    unsafe { rk_nr_cpu_ids() }
}

/// Whether `cpu` is a valid, online CPU.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: the shim checks `cpu < nr_cpu_ids` before testing the mask.
    unsafe { rk_cpu_online(cpu) }
}

/// Yields the CPU if the scheduler wants it; for long loops in process context.
pub(crate) fn cond_resched() {
    // SAFETY: callers run in process context, where sleeping is allowed.
    unsafe { rk_cond_resched() }
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
        unsafe { rk_preempt_disable() };
        // SAFETY: preemption is disabled, so the id is stable.
        let cpu = unsafe { rk_smp_processor_id() };
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
        unsafe { rk_preempt_enable() };
    }
}

/// The module's workqueue (`WQ_MEM_RECLAIM`), which [`run_on_cpu`] uses:
/// made first at load and destroyed last.
///
/// # Invariants
///
/// While a value lives, the shim's workqueue exists.
pub(crate) struct WorkQueue(());

impl WorkQueue {
    /// Creates the workqueue.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions; called once at load.
        let rc = unsafe { rk_wq_init() };
        if rc < 0 {
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: created just above.
        Ok(Self(()))
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        // SAFETY: made by `new`; nothing queues work any more (the module
        // is going away and this is dropped last).
        unsafe { rk_wq_exit() }
    }
}

/// Runs `f` on `cpu`, in a worker of the module's workqueue bound to it
/// (like `smp_call_on_cpu`), and waits for it. Process context only; the
/// workqueue has a rescuer, so reclaim may wait for it. EINVAL for a CPU
/// that is not online.
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
    // valid until the call returns (it waits for the work); the workqueue
    // exists while the module runs (`WorkQueue`).
    match unsafe { rk_call_on_cpu(cpu, trampoline::<F>, arg) } {
        // The CPU went offline meanwhile.
        rc if rc == -(kernel::bindings::ENXIO as c_int) => Err(EINVAL),
        rc => Ok(rc),
    }
}


/// Whether `cpu` is a possible CPU (it may come online and has per-CPU data).
pub(crate) fn cpu_possible(cpu: u32) -> bool {
    // SAFETY: the shim checks `cpu < nr_cpu_ids` before testing the mask.
    unsafe { rk_cpu_possible(cpu) }
}

/// Whether the current task has a fatal signal (SIGKILL) pending: long
/// loops poll it and stop with EINTR, so that a killed process can die.
#[inline]
pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: reads the current task's signal state; no preconditions.
    unsafe { rk_fatal_signal_pending() }
}

/// EINTR when the current task has a fatal signal pending, after a
/// reschedule point: the check every long loop makes between steps.
#[inline]
pub(crate) fn interrupted() -> Result {
    cond_resched();
    if fatal_signal_pending() {
        return Err(EINTR);
    }
    Ok(())
}

/// Runs `f` on one CPU while every other online CPU spins with interrupts
/// off (`stop_machine`), and returns its result. No other code runs
/// meanwhile: no task is inside a preempt-disabled section or holds a
/// spinlock, so per-CPU state and lock-protected state are all at rest.
/// `f` runs with interrupts disabled: it must not sleep, allocate with
/// anything but atomic flags, or take a sleeping lock. Process context.
pub(crate) fn stop_machine<F: FnMut() -> i32 + Send>(mut f: F) -> i32 {
    unsafe extern "C" fn trampoline<F: FnMut() -> i32>(arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the `&mut F` passed below, alive until
        // `stop_machine` returns, which waits for this call.
        let f = unsafe { &mut *arg.cast::<F>() };
        f()
    }
    let arg = core::ptr::from_mut(&mut f).cast::<c_void>();
    // SAFETY: `trampoline::<F>` matches the callback type and `arg` stays
    // valid until the synchronous call returns.
    unsafe { rk_stop_machine(trampoline::<F>, arg) }
}

#[cfg(rkalloc_kunit)]
extern "C" {
    fn rk_kthread_start(f: unsafe extern "C" fn(*mut c_void) -> c_int, arg: *mut c_void, cpu: u32) -> *mut c_void;
    fn rk_kthread_stop(t: *mut c_void) -> c_int;
    fn rk_kthread_should_stop() -> bool;
}

/// A kernel thread bound to one CPU that calls a step function until it is
/// stopped: KUnit suites use it to load a structure from another CPU while
/// they check it.
///
/// # Invariants
///
/// `task` is a started kthread running [`Worker::run`] on `state`, which
/// stays allocated (owned here) until `kthread_stop` has returned in drop.
#[cfg(rkalloc_kunit)]
pub(crate) struct Worker<F: FnMut() + Send> {
    task: core::ptr::NonNull<c_void>,
    state: *mut F,
}

#[cfg(rkalloc_kunit)]
impl<F: FnMut() + Send> Worker<F> {
    /// Starts a kthread on `cpu` that calls `step` again and again.
    pub(crate) fn spawn_on(cpu: u32, step: F) -> Result<Self> {
        let state = KBox::into_raw(KBox::new(step, GFP_KERNEL)?);
        // SAFETY: `run::<F>` matches the thread function type; `state` is a
        // live `F` that outlives the thread (freed only after `kthread_stop`).
        let task = unsafe { rk_kthread_start(Self::run, state.cast(), cpu) };
        let Some(task) = core::ptr::NonNull::new(task) else {
            // SAFETY: the thread never started; `state` is ours again.
            drop(unsafe { KBox::from_raw(state) });
            return Err(ENOMEM);
        };
        // INVARIANT: started above on `state`.
        Ok(Self { task, state })
    }

    unsafe extern "C" fn run(arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the worker's `state`, alive until the thread is
        // stopped, and only this thread uses it meanwhile.
        let step = unsafe { &mut *arg.cast::<F>() };
        // SAFETY: called from a kthread, which is what it asks.
        while !unsafe { rk_kthread_should_stop() } {
            step();
            cond_resched();
        }
        0
    }
}

#[cfg(rkalloc_kunit)]
impl<F: FnMut() + Send> Drop for Worker<F> {
    fn drop(&mut self) {
        // SAFETY: `task` was started by `spawn_on` and is stopped once;
        // `kthread_stop` waits for the thread function to return.
        unsafe { rk_kthread_stop(self.task.as_ptr()) };
        // SAFETY: the thread is gone, so `state` is ours again (invariant).
        drop(unsafe { KBox::from_raw(self.state) });
    }
}
