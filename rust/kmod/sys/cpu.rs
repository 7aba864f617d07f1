// SPDX-License-Identifier: GPL-2.0
//! CPUs, preemption and process-context helpers: `preempt_disable` and
//! the current CPU (inline where the architecture allows, see
//! [`CpuGuard`]), and the shim's wrappers of the CPU masks,
//! `cond_resched`, `fatal_signal_pending` and `smp_call_on_cpu`.

use kernel::prelude::*;

extern "C" {
    fn rk_num_online_cpus() -> u32;
    fn rk_nr_cpu_ids() -> u32;
    fn rk_cpu_online(cpu: u32) -> bool;
    fn rk_cpu_possible(cpu: u32) -> bool;
    fn rk_cond_resched();
    fn rk_fatal_signal_pending() -> bool;
    fn rk_wq_init() -> c_int;
    fn rk_wq_exit();
    fn rk_call_on_cpu(cpu: u32, f: unsafe extern "C" fn(*mut c_void) -> c_int, arg: *mut c_void, in_reclaim: bool) -> c_int;
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
/// This is the kernel's `preempt_disable()`/`preempt_enable()`, and the
/// guard knows the CPU it pins and that CPU's per-CPU offset. Where the
/// architecture allows it (see [`arch`]), all of it is inline code, as the
/// kernel's own headers make it: one `%gs`-relative instruction each way on
/// x86-64; on User-Mode Linux one call to `uml_curr_cpu()` (a read of the
/// host thread's TLS, which is how UML finds `current`) and plain loads
/// and stores on `current`'s `thread_info`. Elsewhere, and on kernels that
/// trace or debug preemption, it calls the C shim.
///
/// # Invariants
///
/// Preemption is disabled from `new` until drop, so the CPU it names stays
/// the current CPU for the guard's whole life.
pub(crate) struct CpuGuard {
    token: arch::Token,
    // Must not move to another thread: preempt_enable has to run where
    // preempt_disable ran.
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl CpuGuard {
    /// Disables preemption.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        // SAFETY: balanced by `arch::enable` in `drop`, on this task (the
        // guard is not `Send`).
        let token = unsafe { arch::disable() };
        // INVARIANT: preemption was disabled just above.
        Self {
            token,
            _not_send: core::marker::PhantomData,
        }
    }

    /// The CPU this section runs on.
    #[inline(always)]
    pub(crate) fn cpu(&self) -> u32 {
        // SAFETY: preemption is disabled (type invariant).
        unsafe { arch::cpu(&self.token) }
    }

    /// This CPU's per-CPU offset (`__my_cpu_offset`): a `__percpu` pointer
    /// plus it is this CPU's copy (`this_cpu_ptr`).
    #[inline(always)]
    pub(crate) fn this_cpu_offset(&self) -> usize {
        // SAFETY: preemption is disabled (type invariant).
        unsafe { arch::this_cpu_offset(&self.token) }
    }
}

impl Drop for CpuGuard {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: pairs with the `arch::disable` in `new` (type invariant).
        unsafe { arch::enable(&self.token) };
    }
}

/// The tail of `preempt_enable()` when the count dropped to zero with a
/// reschedule pending: the kernel's own `preempt_enable()` run again from
/// that count (see the shim). Out of line and rare.
#[cfg(any(all(CONFIG_X86_64, not(CONFIG_UML), CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE)), all(CONFIG_UML, CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE))))]
#[cold]
#[inline(never)]
fn resched() {
    // SAFETY: called with preemption enabled again, in a context that
    // could have called `preempt_enable()` (which ends the same way).
    unsafe { rk_preempt_resched() }
}

#[cfg(any(all(CONFIG_X86_64, not(CONFIG_UML), CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE)), all(CONFIG_UML, CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE))))]
extern "C" {
    fn rk_preempt_resched();
}

/// Preemption and the current CPU on x86-64, as `arch/x86/include/asm/
/// preempt.h` and `percpu.h` do it: `__preempt_count`, `cpu_number` and
/// `this_cpu_off` are per-CPU variables reached `%gs`-relative, so
/// `preempt_disable()` is one `incl`, and `preempt_enable()` one `decl`
/// whose zero flag says "count zero and a reschedule pending" (x86 folds
/// an inverted `PREEMPT_NEED_RESCHED` bit into the count).
#[cfg(all(CONFIG_X86_64, not(CONFIG_UML), CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE)))]
mod arch {
    use kernel::bindings;

    pub(super) struct Token;

    /// # Safety
    ///
    /// Balanced by [`enable`] on the same task.
    #[inline(always)]
    pub(super) unsafe fn disable() -> Token {
        // A single instruction, so an interrupt sees the count before or
        // after. No `nomem`: the asm is a compiler barrier, like the
        // `barrier()` in `preempt_disable()`.
        // SAFETY: `__preempt_count` is this CPU's count (exported per-CPU
        // variable, %gs-relative like every per-CPU access on x86-64).
        unsafe {
            kernel::asm!("incl %gs:{pc}(%rip)";
                pc = sym bindings::__preempt_count, options(nostack))
        };
        Token
    }

    /// # Safety
    ///
    /// Pairs with a [`disable`] on this task.
    #[inline(always)]
    pub(super) unsafe fn enable(_: &Token) {
        // SAFETY: as in `disable`; the barrier comes first, as in
        // `preempt_enable()`. A zero count jumps to the reschedule.
        unsafe {
            kernel::asm!("decl %gs:{pc}(%rip)\n\tjz {slow}";
                pc = sym bindings::__preempt_count,
                slow = label { super::resched() },
                options(nostack))
        };
    }

    /// # Safety
    ///
    /// Preemption is disabled.
    #[inline(always)]
    pub(super) unsafe fn cpu(_: &Token) -> u32 {
        let cpu: u32;
        // SAFETY: `cpu_number` is this CPU's id, stable while preemption
        // is off.
        unsafe {
            kernel::asm!("movl %gs:{n}(%rip), {c:e}";
                n = sym bindings::cpu_number, c = out(reg) cpu, options(nostack, readonly, preserves_flags))
        };
        cpu
    }

    /// # Safety
    ///
    /// Preemption is disabled.
    #[inline(always)]
    pub(super) unsafe fn this_cpu_offset(_: &Token) -> usize {
        let off: usize;
        // SAFETY: `this_cpu_off` is this CPU's per-CPU offset, stable while
        // preemption is off (`arch_raw_cpu_ptr`).
        unsafe {
            kernel::asm!("movq %gs:{o}(%rip), {r}";
                o = sym bindings::this_cpu_off, r = out(reg) off, options(nostack, readonly, preserves_flags))
        };
        off
    }
}

/// Preemption and the current CPU on User-Mode Linux, as the generic
/// `asm-generic/preempt.h` and `percpu.h` do it there: `current` is
/// `cpu_tasks[uml_curr_cpu()]` (the CPU is a host thread, whose id lives in
/// the host's thread-local storage, so finding it is a call), the count is
/// `current->thread_info.preempt_count`, and a CPU's per-CPU offset is
/// `__per_cpu_offset[cpu]`. The C macros find `current` again at every use
/// (four calls for `get_cpu_ptr()` + `put_cpu_ptr()`); here the guard finds
/// it once and keeps it, which is exact: it stays `current` while
/// preemption is off. UML's kernel code is not preempted between the call
/// and the increment (it reschedules only at `preempt_enable()` and
/// explicit schedule points, never on return from an interrupt), the same
/// argument that makes the C sequence correct.
#[cfg(all(CONFIG_UML, CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE)))]
mod arch {
    use core::{
        ptr::{addr_of, addr_of_mut},
        sync::atomic::{compiler_fence, Ordering::SeqCst},
    };
    use kernel::bindings;

    /// `current`, pinned.
    pub(super) struct Token(*mut bindings::task_struct);

    /// # Safety
    ///
    /// Balanced by [`enable`] on the same task.
    #[inline(always)]
    pub(super) unsafe fn disable() -> Token {
        // SAFETY: no preconditions; the id is below NR_CPUS (`uml_ncpus`
        // is clamped to it).
        let cpu = unsafe { bindings::uml_curr_cpu() } as usize;
        // SAFETY: `cpu_tasks` holds every CPU's running task, and `cpu`
        // indexes it (above); `current` is a live task.
        let t = unsafe { *addr_of!(bindings::cpu_tasks).cast::<*mut bindings::task_struct>().add(cpu) };
        // SAFETY: `t` is `current`, whose count only this task and the
        // interrupts it takes (which leave it as they found it) change:
        // the plain increment of `*preempt_count_ptr() += 1`.
        unsafe {
            let pc = addr_of_mut!((*t).thread_info.preempt_count);
            pc.write_volatile(pc.read_volatile().wrapping_add(1));
        }
        compiler_fence(SeqCst);
        Token(t)
    }

    /// # Safety
    ///
    /// Pairs with a [`disable`] on this task.
    #[inline(always)]
    pub(super) unsafe fn enable(t: &Token) {
        compiler_fence(SeqCst);
        // SAFETY: `t.0` is still `current` (preemption was off since
        // `disable`); as there, and then `preempt_enable()`'s test:
        // count zero and `TIF_NEED_RESCHED` set.
        let resched = unsafe {
            let pc = addr_of_mut!((*t.0).thread_info.preempt_count);
            let n = pc.read_volatile().wrapping_sub(1);
            pc.write_volatile(n);
            n == 0
                && addr_of!((*t.0).thread_info.flags).read_volatile()
                    & bindings::_TIF_NEED_RESCHED as kernel::ffi::c_ulong
                    != 0
        };
        if resched {
            super::resched();
        }
    }

    /// # Safety
    ///
    /// Preemption is disabled.
    #[inline(always)]
    pub(super) unsafe fn cpu(t: &Token) -> u32 {
        // SAFETY: `t.0` is `current`, so `task_cpu(current)`: the scheduler
        // set it before the task ran here, and it cannot move meanwhile.
        unsafe { addr_of!((*t.0).thread_info.cpu).read_volatile() }
    }

    /// # Safety
    ///
    /// Preemption is disabled.
    #[inline(always)]
    pub(super) unsafe fn this_cpu_offset(t: &Token) -> usize {
        // SAFETY: as in `cpu`, which is below NR_CPUS, the length of
        // `__per_cpu_offset` (set up at boot, never written again).
        unsafe {
            let cpu = cpu(t) as usize;
            *addr_of!(bindings::__per_cpu_offset).cast::<kernel::ffi::c_ulong>().add(cpu) as usize
        }
    }
}

/// Preemption through the C shim: other architectures, and kernels whose
/// `preempt_disable()` is out of line (`CONFIG_DEBUG_PREEMPT`,
/// `CONFIG_TRACE_PREEMPT_TOGGLE`) or not a count.
#[cfg(not(any(all(CONFIG_X86_64, not(CONFIG_UML), CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE)), all(CONFIG_UML, CONFIG_SMP, CONFIG_PREEMPT_COUNT, not(CONFIG_DEBUG_PREEMPT), not(CONFIG_TRACE_PREEMPT_TOGGLE)))))]
mod arch {
    extern "C" {
        fn rk_preempt_disable();
        fn rk_preempt_enable();
        fn rk_smp_processor_id() -> u32;
        fn rk_per_cpu_offset(cpu: u32) -> usize;
    }

    pub(super) struct Token;

    /// # Safety
    ///
    /// Balanced by [`enable`] on the same task.
    #[inline(always)]
    pub(super) unsafe fn disable() -> Token {
        // SAFETY: the caller balances it.
        unsafe { rk_preempt_disable() };
        Token
    }

    /// # Safety
    ///
    /// Pairs with a [`disable`] on this task.
    #[inline(always)]
    pub(super) unsafe fn enable(_: &Token) {
        // SAFETY: the caller's contract.
        unsafe { rk_preempt_enable() }
    }

    /// # Safety
    ///
    /// Preemption is disabled.
    #[inline(always)]
    pub(super) unsafe fn cpu(_: &Token) -> u32 {
        // SAFETY: preemption is disabled, so the id is stable.
        unsafe { rk_smp_processor_id() }
    }

    /// # Safety
    ///
    /// Preemption is disabled.
    #[inline(always)]
    pub(super) unsafe fn this_cpu_offset(t: &Token) -> usize {
        // SAFETY: a valid CPU id (above).
        unsafe { rk_per_cpu_offset(cpu(t)) }
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
/// (like `smp_call_on_cpu`), and waits for it, with CPU hotplug held off.
/// Process context only; not from a shrinker (see [`run_on_cpu_in_reclaim`]).
/// EINVAL for a CPU that is not online.
pub(crate) fn run_on_cpu<F: FnMut() -> i32 + Send>(cpu: u32, f: F) -> Result<i32> {
    call_on_cpu(cpu, f, false)
}

/// [`run_on_cpu`] for reclaim (a shrinker's scan), on a workqueue of its
/// own with a rescuer, so reclaim may wait for it. `f` must not allocate
/// memory, nor take a lock that is held while allocating: reclaim waits for
/// it. CPU hotplug is only tried
/// (`cpus_read_trylock`), because a hotplug operation allocates memory
/// while it holds that lock, and its reclaim may call this. EBUSY while a
/// hotplug operation runs.
pub(crate) fn run_on_cpu_in_reclaim<F: FnMut() -> i32 + Send>(cpu: u32, f: F) -> Result<i32> {
    call_on_cpu(cpu, f, true)
}

fn call_on_cpu<F: FnMut() -> i32 + Send>(cpu: u32, mut f: F, in_reclaim: bool) -> Result<i32> {
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
    match unsafe { rk_call_on_cpu(cpu, trampoline::<F>, arg, in_reclaim) } {
        // The CPU went offline meanwhile.
        rc if rc == -(kernel::bindings::ENXIO as c_int) => Err(EINVAL),
        // A hotplug operation holds the lock (reclaim only).
        rc if rc == -(kernel::bindings::EBUSY as c_int) => Err(EBUSY),
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
