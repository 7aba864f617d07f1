//! Raw ioctls on `/dev/rkalloc`, for the fuzzer and the copy-out tests,
//! which pass pointers and command numbers that [`crate::device::Device`]
//! never would.
use crate::device::Arg;
use std::{io, os::fd::RawFd};

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

/// Issues `cmd` with `a` (its size field set) in our own memory, on a raw
/// fd (the fuzzer's dups); returns the struct as the kernel left it, or
/// the errno. User arrays `a` points to must follow [`ioctl`]'s contract.
pub fn call<T: Arg + Copy>(fd: RawFd, cmd: u32, mut a: T) -> Result<T, i32> {
    a.set_size();
    // SAFETY: `a` is ours, of the size `cmd` encodes (both from the
    // header); the arrays it points to are the caller's (documented).
    match unsafe { ioctl(fd, cmd, &mut a as *mut T as u64) } {
        0 => Ok(a),
        e => Err(e),
    }
}

/// Opens the device read-write as a plain fd (the fuzzer's slots; the
/// module's ABI version is checked once, by [`crate::device::Device::open`]).
pub fn open(dev: &std::path::Path) -> anyhow::Result<std::os::fd::OwnedFd> {
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| crate::error::system(format!("cannot open {}: {e} (is rkalloc loaded, and are you root?)", dev.display())))?;
    Ok(f.into())
}
