// SPDX-License-Identifier: GPL-2.0
//! Odds and ends: time, random numbers, module references, errnos the
//! kernel crate does not name, and the header's command numbers.

use kernel::{bindings, prelude::*};

extern "C" {
    fn rk_ktime_ns() -> u64;
    fn rk_uapi_cmd(index: u32) -> u32;
}

/// `EUCLEAN` ("structure needs cleaning"): an invariant checker found a
/// violation. The kernel crate does not name this errno.
pub(crate) fn euclean() -> Error {
    Error::from_errno(-(bindings::EUCLEAN as i32))
}

/// Monotonic time in nanoseconds (`ktime_get_ns`).
#[inline]
pub(crate) fn ktime_ns() -> u64 {
    // SAFETY: `ktime_get_ns` has no preconditions.
    unsafe { rk_ktime_ns() }
}

/// The value the C header gives ioctl command `index` (see `shim.c`); lets
/// KUnit prove that the Rust command numbers match the header.
pub(crate) fn uapi_cmd(index: u32) -> u32 {
    // SAFETY: the shim returns 0 for an index it does not know.
    unsafe { rk_uapi_cmd(index) }
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

/// A random `u64` (`get_random_u64`): seeds for the module's generators.
pub(crate) fn random_u64() -> u64 {
    // SAFETY: no preconditions; usable in any context.
    unsafe { bindings::get_random_u64() }
}
