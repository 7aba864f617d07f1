//! Raw ioctls on `/dev/rkalloc`, for the fuzzer and the copy-out tests,
//! which pass pointers the safe wrapper in `device.rs` never would.
use crate::uapi;
use std::{
    io,
    os::fd::{OwnedFd, RawFd},
    path::Path,
};

/// The calling thread's errno.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Issues `cmd` with the raw argument `arg`; returns 0 or the errno.
///
/// # Safety
///
/// Whatever the kernel may write through `arg` (at most the size encoded
/// in `cmd`, and the user arrays the struct there points to) must be
/// memory the caller owns and no one else reads or writes meanwhile, or
/// memory the kernel cannot write (read-only, unmapped, kernel addresses).
pub unsafe fn ioctl(fd: RawFd, cmd: u32, arg: u64) -> i32 {
    // SAFETY: the caller's contract above.
    if unsafe { libc::ioctl(fd, cmd as _, arg as usize) } < 0 {
        errno()
    } else {
        0
    }
}

/// An argument struct: plain integers, starting with `__u32 size`.
pub trait Arg: Copy + Default {
    /// Sets `size` to the struct's size.
    fn sized(self) -> Self;
}

macro_rules! args {
    ($($t:ident),* $(,)?) => {$(
        impl Arg for uapi::$t {
            fn sized(mut self) -> Self {
                self.size = std::mem::size_of::<Self>() as u32;
                self
            }
        }
    )*};
}
args!(
    rkalloc_info,
    rkalloc_pool_alloc,
    rkalloc_free,
    rkalloc_pattern,
    rkalloc_check,
    rkalloc_pool_shrink,
    rkalloc_pool_stats,
    rkalloc_cache_create,
    rkalloc_handle_op,
    rkalloc_batch,
    rkalloc_malloc,
    rkalloc_heap_create,
    rkalloc_heap_alloc,
    rkalloc_arena_alloc,
    rkalloc_arena_reset,
    rkalloc_allocators,
    rkalloc_bench,
    rkalloc_conform,
    rkalloc_replay,
    rkalloc_list,
);

/// Issues `cmd` with `a` (its size field set) in our own memory; returns
/// the struct as the kernel left it, or the errno. User arrays `a` points
/// to must follow [`ioctl`]'s contract.
pub fn call<T: Arg>(fd: RawFd, cmd: u32, a: T) -> Result<T, i32> {
    let mut a = a.sized();
    // SAFETY: `a` is ours, of the size `cmd` encodes (both from the
    // header); the arrays it points to are the caller's (documented).
    match unsafe { ioctl(fd, cmd, &mut a as *mut T as u64) } {
        0 => Ok(a),
        e => Err(e),
    }
}

/// Opens the device read-write.
pub fn open(dev: &Path) -> anyhow::Result<OwnedFd> {
    use anyhow::Context;
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(dev)
        .with_context(|| format!("cannot open {} (is rkalloc loaded, and are you root?)", dev.display()))?;
    Ok(f.into())
}
