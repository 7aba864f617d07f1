// SPDX-License-Identifier: GPL-2.0
//! rkalloc's tracepoints, `rkalloc:rk_alloc` and `rkalloc:rk_free`
//! (defined with `TRACE_EVENT` in `rk_trace.h`, instantiated in the shim).
//!
//! Each event's static key is tested inline, with the same jump label the
//! kernel's own `trace_*()` use (`kernel::jump_label`): while the event is
//! off the test is a patched-out jump, and the shim (which hashes the
//! address into a handle-free id and fills the event) is called only when
//! it is on.

use kernel::{bindings, prelude::*};

// `struct tracepoint` is only ever named by address, for its static key;
// its layout (which rustc flags for a member it cannot check) is not used.
#[expect(improper_ctypes)]
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

/// Fires `rkalloc:rk_alloc` if it is on: `allocator` handed out `bytes`
/// at `addr` (page order `order`, or -1 for an object).
#[inline(always)]
pub(crate) fn alloc(allocator: &CStr, addr: *const u8, bytes: usize, order: i32) {
    // SAFETY: reading a tracepoint's static key is always allowed; the key
    // is a C-defined static.
    if unsafe { kernel::static_branch_unlikely!(__tracepoint_rk_alloc, bindings::tracepoint, key) } {
        // SAFETY: `allocator` is NUL-terminated and lives through the call
        // (the event copies it); the shim only hashes `addr`, never
        // dereferences it.
        unsafe { rk_trace_alloc(allocator.as_char_ptr(), addr.cast(), bytes, order) }
    }
}

/// Fires `rkalloc:rk_free` if it is on (the arguments as in [`alloc`]).
#[inline(always)]
pub(crate) fn free(allocator: &CStr, addr: *const u8, bytes: usize, order: i32) {
    // SAFETY: as in `alloc`.
    if unsafe { kernel::static_branch_unlikely!(__tracepoint_rk_free, bindings::tracepoint, key) } {
        // SAFETY: as in `alloc`.
        unsafe { rk_trace_free(allocator.as_char_ptr(), addr.cast(), bytes, order) }
    }
}
