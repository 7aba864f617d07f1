// SPDX-License-Identifier: GPL-2.0
//! Kernel shrinkers: memory pressure calls back into a [`Reclaim`].

use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

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
