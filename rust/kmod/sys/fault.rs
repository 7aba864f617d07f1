// SPDX-License-Identifier: GPL-2.0
//! rkalloc's own fail points, with the kernel's fault-injection semantics
//! (`Documentation/fault-injection/`): each is a `struct fault_attr` in the
//! shim, configured under `/sys/kernel/debug/rkalloc/fail/<name>/` exactly
//! as failslab is (`probability`, `interval`, `times`, `space`, `verbose`,
//! `task-filter`), and asked with `should_fail()` on the slow path it
//! guards. Without `CONFIG_FAULT_INJECTION` (the default, benchmark kernel)
//! every point compiles to `false`.

use kernel::prelude::*;

#[cfg(CONFIG_FAULT_INJECTION)]
extern "C" {
    fn rk_should_fail(point: c_uint, size: usize) -> bool;
    fn rk_fail_force(point: c_uint, on: bool);
    fn rk_fail_debugfs_create() -> c_int;
    fn rk_fail_debugfs_remove();
}

/// A fail point; the order is the shim's `rk_fail_attrs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Point {
    /// The pool takes a chunk from the kernel (`fail/pool_grow`).
    PoolGrow = 0,
    /// A CPU's page list refills from the buddy (`fail/pcp_refill`).
    PcpRefill = 1,
    /// A slab cache takes a new slab from the pool (`fail/slab_refill`).
    SlabRefill = 2,
    /// A heap takes a new region from the pool (`fail/heap_grow`).
    HeapGrow = 3,
    /// An arena takes a new region from the pool (`fail/arena_grow`).
    ArenaGrow = 4,
}

impl Point {
    /// Whether this call (of `size` bytes) should fail. Slow paths only.
    #[inline]
    pub(crate) fn should_fail(self, size: usize) -> bool {
        #[cfg(CONFIG_FAULT_INJECTION)]
        {
            // SAFETY: the shim checks the index; `should_fail` may be called
            // in any context.
            unsafe { rk_should_fail(self as c_uint, size) }
        }
        #[cfg(not(CONFIG_FAULT_INJECTION))]
        {
            let _ = size;
            false
        }
    }

    /// Makes every call of this point fail (`on`), or none: for KUnit,
    /// which runs before anyone can reach the debugfs files.
    #[cfg(all(rkalloc_kunit, CONFIG_FAULT_INJECTION))]
    pub(crate) fn force(self, on: bool) {
        // SAFETY: the shim checks the index; the attr is a static.
        unsafe { rk_fail_force(self as c_uint, on) }
    }
}

/// The `fail/` directory under the module's debugfs directory; removed on
/// drop, which must come before the module's debugfs directory goes.
pub(crate) struct FailDir(());

impl FailDir {
    /// Creates `/sys/kernel/debug/rkalloc/fail/` (nothing without fault
    /// injection). The module's debugfs directory must exist.
    pub(crate) fn new() -> Result<Self> {
        #[cfg(CONFIG_FAULT_INJECTION)]
        {
            // SAFETY: no preconditions; it finds the directory by name.
            let rc = unsafe { rk_fail_debugfs_create() };
            if rc < 0 {
                return Err(Error::from_errno(rc));
            }
        }
        Ok(Self(()))
    }
}

impl Drop for FailDir {
    fn drop(&mut self) {
        #[cfg(CONFIG_FAULT_INJECTION)]
        // SAFETY: removes what `new` made (a NULL dentry is fine).
        unsafe {
            rk_fail_debugfs_remove()
        };
    }
}
