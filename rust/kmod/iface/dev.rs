// SPDX-License-Identifier: GPL-2.0
//! `/dev/rkalloc`: the ioctl misc device.
//!
//! Each open file owns what it allocates, named by opaque handles; closing
//! the file frees all of it (`fd.rs` has the state and the commands). The
//! device node is root-only (devtmpfs gives a misc device without an
//! explicit mode 0600). A file holds a reference on the module, so
//! `rmmod` fails while any file is open: a Rust misc device does not set
//! `fops.owner`, so `open` takes the reference itself.

use super::{
    fd::{release, Fd, FdState, Reply},
    uapi::{self, Versioned},
};
use crate::{state::Shared, sys};
use core::sync::atomic::Ordering;
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    uaccess::{UserPtr, UserSlice},
};

/// Where the device finds the module's shared state: the module that owns
/// the registration implements it (the crate root), so this layer does not
/// import the root.
pub(crate) trait Owner {
    /// The state of the module whose device `misc` is.
    fn shared(misc: &MiscDeviceRegistration<RkDevice<Self>>) -> Arc<Shared>
    where
        Self: Sized;
}

/// One open file of `/dev/rkalloc`.
#[pin_data(PinnedDrop)]
pub(crate) struct RkDevice<O: Owner + 'static> {
    shared: Arc<Shared>,
    #[pin]
    state: Mutex<FdState>,
    /// Names the owner only (always `Send + Sync`).
    _owner: core::marker::PhantomData<fn() -> O>,
}

impl<O: Owner + 'static> RkDevice<O> {
    fn fd(&self) -> Fd<'_> {
        Fd {
            shared: &self.shared,
            state: &self.state,
        }
    }
}

#[vtable]
impl<O: Owner + 'static> MiscDevice for RkDevice<O> {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let shared = O::shared(misc);
        if !sys::module_get(shared.module) {
            return Err(ENODEV);
        }
        shared.open_fds.fetch_add(1, Ordering::Relaxed);
        // From here on, dropping `RkDevice` releases the module reference.
        let fd_id = shared.next_fd_id.fetch_add(1, Ordering::Relaxed);
        let fd_shared = shared.clone();
        let dev = KBox::pin_init(
            try_pin_init!(RkDevice {
                shared: fd_shared,
                state <- new_mutex!(FdState::new(fd_id)),
                _owner: core::marker::PhantomData,
            }),
            GFP_KERNEL,
        );
        if dev.is_err() {
            shared.open_fds.fetch_sub(1, Ordering::Relaxed);
            sys::module_put(shared.module);
        }
        dev
    }

    fn ioctl(me: Pin<&RkDevice<O>>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let fd = me.fd();
        match cmd {
            uapi::IOC_INFO => with_arg(cmd, arg, |a, _| fd.info(a)),
            uapi::IOC_POOL_ALLOC => with_arg(cmd, arg, |a, r| fd.pool_alloc(a, r)),
            uapi::IOC_FREE => with_arg(cmd, arg, |a, r| fd.free(a, r)),
            uapi::IOC_FILL => with_arg(cmd, arg, |a, _| fd.pattern(a, false)),
            uapi::IOC_VERIFY => with_arg(cmd, arg, |a, _| fd.pattern(a, true)),
            uapi::IOC_CHECK => with_arg(cmd, arg, |a, r| fd.check(a, r)),
            uapi::IOC_POOL_SHRINK => with_arg(cmd, arg, |a, r| fd.shrink(a, r)),
            uapi::IOC_POOL_STATS => with_arg(cmd, arg, |a, r| fd.pool_stats(a, r)),
            uapi::IOC_CACHE_CREATE => with_arg(cmd, arg, |a, r| fd.cache_create(a, r)),
            uapi::IOC_CACHE_DESTROY => with_arg(cmd, arg, |a, r| fd.cache_destroy(a, r)),
            uapi::IOC_OBJ_ALLOC => with_arg(cmd, arg, |a, r| fd.obj_alloc(a, r)),
            uapi::IOC_OBJ_FREE => with_arg(cmd, arg, |a, r| fd.obj_free(a, r)),
            uapi::IOC_MALLOC => with_arg(cmd, arg, |a, r| fd.malloc(a, r)),
            uapi::IOC_HEAP_CREATE => with_arg(cmd, arg, |a, r| fd.heap_create(a, r)),
            uapi::IOC_HEAP_ALLOC => with_arg(cmd, arg, |a, r| fd.heap_alloc(a, r)),
            uapi::IOC_HEAP_RESET => with_arg(cmd, arg, |a, r| fd.heap_reset(a, r)),
            uapi::IOC_HEAP_DESTROY => with_arg(cmd, arg, |a, r| fd.heap_destroy(a, r)),
            uapi::IOC_ARENA_ALLOC => with_arg(cmd, arg, |a, r| fd.arena_alloc(a, r)),
            uapi::IOC_ARENA_RESET => with_arg(cmd, arg, |a, r| fd.arena_reset(a, r)),
            uapi::IOC_BENCH => with_arg(cmd, arg, |a, _| fd.bench(a)),
            uapi::IOC_LIST => with_arg(cmd, arg, |a, _| fd.list(a)),
            uapi::IOC_REPLAY => with_arg(cmd, arg, |a, _| fd.replay(a)),
            uapi::IOC_ALLOCATORS => with_arg(cmd, arg, |a, _| fd.allocators(a)),
            uapi::IOC_CONFORM => with_arg(cmd, arg, |a, r| fd.conform(a, r)),
            _ => Err(ENOTTY),
        }
    }
}

#[pinned_drop]
impl<O: Owner + 'static> PinnedDrop for RkDevice<O> {
    fn drop(self: Pin<&mut Self>) {
        let shared = &*self.shared;
        let mut st = self.state.lock();
        let n = st.items.len();
        let mut done = 0usize;
        st.items.drain(|item| {
            release(shared, item);
            done += 1;
            // An fd may hold millions of items: let others run.
            if done % 4096 == 0 {
                sys::cond_resched();
            }
        });
        if let Some(arena) = st.arena.take() {
            shared.catalog.remove_arena(&arena);
        }
        st.bytes = 0;
        drop(st);
        if n != 0 {
            pr_debug!("release: freed {} allocations left by the fd\n", n);
        }
        shared.open_fds.fetch_sub(1, Ordering::Relaxed);
        // Last: once the reference is gone the module may be unloaded, but
        // only after this function returns to the VFS (release runs under
        // the file's last reference, and the unload waits for rmmod's
        // synchronisation of module refcounts).
        sys::module_put(shared.module);
    }
}

/// Copies the argument struct in, checks its size field, runs `op` on it
/// and copies it back out, unless `op` sent it itself ([`Reply`]: the
/// commands that change the fd send before they commit). Nothing is copied
/// out when `op` fails, except what `op` chose to send.
fn with_arg<T: Versioned>(cmd: u32, arg: usize, op: impl FnOnce(&mut T, &mut Reply<T>) -> Result) -> Result<isize> {
    let len = core::mem::size_of::<T>();
    if _IOC_SIZE(cmd) != len {
        return Err(ENOTTY);
    }
    let mut a: T = UserSlice::new(UserPtr::from_addr(arg), len).reader().read()?;
    if a.size() as usize != len {
        return Err(EINVAL);
    }
    let mut reply = Reply::new(arg);
    op(&mut a, &mut reply)?;
    if !reply.sent() {
        reply.send(&a)?;
    }
    Ok(0)
}
