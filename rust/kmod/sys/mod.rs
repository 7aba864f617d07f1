// SPDX-License-Identifier: GPL-2.0
//! All FFI in one place: one file per kernel facility, each wrapping the
//! raw `bindings::` calls and the C shim (`shim.c`, prototypes in
//! `shim.h`) behind safe functions with `// SAFETY:` comments. Nothing
//! outside this folder calls C. The shim exists for what 7.2's Rust
//! bindings lack: inline functions and macros (preemption, per-CPU access,
//! `page->private`, fault injection, tracepoints).

pub(crate) mod cpu;
pub(crate) mod fault;
pub(crate) mod mem;
pub(crate) mod misc;
pub(crate) mod percpu;
pub(crate) mod shrinker;
pub(crate) mod slub;
pub(crate) mod trace;

pub(crate) use cpu::{
    cond_resched, cpu_online, interrupted, nr_cpu_ids, num_online_cpus, run_on_cpu, stop_machine,
    CpuGuard,
};
pub(crate) use misc::{euclean, ktime_ns, module_get, module_put, random_u64};
pub(crate) use percpu::PerCpuShared;
pub(crate) use shrinker::{Reclaim, Shrinker};
pub(crate) use slub::KmemCache;
