// SPDX-License-Identifier: GPL-2.0
//! rkalloc's tracepoints, `rkalloc:rk_alloc` and `rkalloc:rk_free`
//! (defined with `TRACE_EVENT` in `rk_trace.h`, instantiated in the shim).
//!
//! Each event's static key is tested inline ([`alloc_on`], [`free_on`]),
//! with the same jump label the kernel's own `trace_*()` use
//! (`kernel::jump_label`): while the event is off the test is a
//! patched-out jump, and neither the event's arguments nor the shim (which
//! hashes the address into a handle-free id and fills the event) are
//! computed or called.
//!
//! `--cfg rkalloc_no_tracepoints` (`KRUSTFLAGS=` on the module's make
//! line) compiles the tests out, for `make bench` to measure what they
//! cost while off; such a module fires no events.

use kernel::{bindings, prelude::*};

// `struct tracepoint` is only ever named by address, for its static key;
// its layout (which rustc flags for a member it cannot check) is not used.
// The member is x86's `struct its_array` (in `struct module`), empty
// without CONFIG_MITIGATION_ITS; User-Mode Linux has no such member.
#[cfg_attr(all(CONFIG_X86, not(CONFIG_MITIGATION_ITS)), expect(improper_ctypes))]
extern "C" {
    fn rk_trace_init();
    fn rk_trace_alloc(allocator: *const c_char, addr: *const c_void, bytes: usize, order: c_int);
    fn rk_trace_free(allocator: *const c_char, addr: *const c_void, bytes: usize, order: c_int);
    // Defined by `CREATE_TRACE_POINTS` in the shim.
    static __tracepoint_rk_alloc: bindings::tracepoint;
    static __tracepoint_rk_free: bindings::tracepoint;
}

/// Seeds the key that turns addresses into event ids. Call once at load.
pub(crate) fn init() {
    // SAFETY: no preconditions.
    unsafe { rk_trace_init() }
}

/// Whether the tracepoint `tp` is on, without jump labels (User-Mode
/// Linux has none): one load of its static key's count, as the C
/// `static_key_count()` does inline (the kernel crate's helper for it is an
/// out-of-line call).
#[cfg(all(not(CONFIG_JUMP_LABEL), not(rkalloc_no_tracepoints)))]
#[inline(always)]
fn key_on(tp: &bindings::tracepoint) -> bool {
    let count = core::ptr::addr_of!(tp.key.key.enabled.counter);
    // SAFETY: `count` points into a live C static; a volatile load is the
    // `READ_ONCE` of `atomic_read`, and a stale answer only delays an event
    // that is being switched on.
    unsafe { core::ptr::read_volatile(count) > 0 }
}

/// Whether `rkalloc:rk_alloc` is on: a patched-out jump while it is off.
/// Callers compute the event's arguments only under it:
/// `if trace::alloc_on() { trace::alloc(...) }`, so that an event that is
/// off costs the allocator nothing but that jump.
#[inline(always)]
pub(crate) fn alloc_on() -> bool {
    #[cfg(rkalloc_no_tracepoints)]
    return false;
    #[cfg(all(CONFIG_JUMP_LABEL, not(rkalloc_no_tracepoints)))]
    // SAFETY: reading a tracepoint's static key is always allowed; the key
    // is a C-defined static.
    return unsafe { kernel::static_branch_unlikely!(__tracepoint_rk_alloc, bindings::tracepoint, key) };
    #[cfg(all(not(CONFIG_JUMP_LABEL), not(rkalloc_no_tracepoints)))]
    // SAFETY: a C-defined static, alive as long as the module.
    return key_on(unsafe { &*core::ptr::addr_of!(__tracepoint_rk_alloc) });
}

/// Whether `rkalloc:rk_free` is on (see [`alloc_on`]).
#[inline(always)]
pub(crate) fn free_on() -> bool {
    #[cfg(rkalloc_no_tracepoints)]
    return false;
    #[cfg(all(CONFIG_JUMP_LABEL, not(rkalloc_no_tracepoints)))]
    // SAFETY: as in `alloc_on`.
    return unsafe { kernel::static_branch_unlikely!(__tracepoint_rk_free, bindings::tracepoint, key) };
    #[cfg(all(not(CONFIG_JUMP_LABEL), not(rkalloc_no_tracepoints)))]
    // SAFETY: as in `alloc_on`.
    return key_on(unsafe { &*core::ptr::addr_of!(__tracepoint_rk_free) });
}

/// Fires `rkalloc:rk_alloc`: `allocator` handed out `bytes` at `addr`
/// (page order `order`, or -1 for an object). Out of line: call it only
/// under [`alloc_on`].
#[cold]
#[inline(never)]
pub(crate) fn alloc(allocator: &CStr, addr: *const u8, bytes: usize, order: i32) {
    // SAFETY: `allocator` is NUL-terminated and lives through the call
    // (the event copies it); the shim only hashes `addr`, never
    // dereferences it.
    unsafe { rk_trace_alloc(allocator.as_char_ptr(), addr.cast(), bytes, order) }
}

/// Fires `rkalloc:rk_free` (the arguments as in [`alloc`]); call it only
/// under [`free_on`].
#[cold]
#[inline(never)]
pub(crate) fn free(allocator: &CStr, addr: *const u8, bytes: usize, order: i32) {
    // SAFETY: as in `alloc`.
    unsafe { rk_trace_free(allocator.as_char_ptr(), addr.cast(), bytes, order) }
}
