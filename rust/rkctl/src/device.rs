//! A safe wrapper around `/dev/rkalloc`.
use crate::{error, table, uapi};
use anyhow::Result;
use std::{fmt, fs::File, io, os::fd::AsRawFd, path::Path};

/// An open `/dev/rkalloc`. Everything allocated through it is freed by the
/// kernel when it is dropped (closed).
pub struct Device {
    file: File,
}

/// An errno returned by an ioctl of `/dev/rkalloc`, with the command that
/// returned it. It is its own type so that rkctl's exit status can tell
/// "the kernel refused" from a failure of rkctl's own files
/// ([`crate::error::classify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno {
    /// The command number (`uapi::cmd::*`).
    pub cmd: u32,
    /// The errno, positive.
    pub errno: i32,
}

impl Errno {
    /// The errno, as [`io::Error::raw_os_error`] has it.
    pub fn raw_os_error(&self) -> Option<i32> {
        Some(self.errno)
    }

    /// The errno's name, e.g. `EINVAL`.
    pub fn name(&self) -> String {
        errno_name(self.errno)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = io::Error::from_raw_os_error(self.errno).to_string();
        // std appends " (os error N)"; the name already says which.
        let text = text.split(" (os error").next().unwrap_or(&text);
        write!(f, "{}: {} ({text})", uapi::cmd::name(self.cmd), self.name())
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for io::Error {
    fn from(e: Errno) -> Self {
        io::Error::from_raw_os_error(e.errno)
    }
}

/// The errnos the header documents, and a few an ioctl can meet on its way
/// (a missing device, a denied one).
const ERRNOS: &[(i32, &str)] = &[
    (libc::EPERM, "EPERM"),
    (libc::ENOENT, "ENOENT"),
    (libc::EINTR, "EINTR"),
    (libc::EIO, "EIO"),
    (libc::ENXIO, "ENXIO"),
    (libc::E2BIG, "E2BIG"),
    (libc::EBADF, "EBADF"),
    (libc::EAGAIN, "EAGAIN"),
    (libc::ENOMEM, "ENOMEM"),
    (libc::EACCES, "EACCES"),
    (libc::EFAULT, "EFAULT"),
    (libc::EBUSY, "EBUSY"),
    (libc::ENODEV, "ENODEV"),
    (libc::EINVAL, "EINVAL"),
    (libc::ENOSPC, "ENOSPC"),
    (libc::ENOTTY, "ENOTTY"),
    (libc::ERANGE, "ERANGE"),
    (libc::ENAMETOOLONG, "ENAMETOOLONG"),
    (libc::EOVERFLOW, "EOVERFLOW"),
    (libc::EUCLEAN, "EUCLEAN"),
];

/// The name of an errno (`EINVAL`), or `errno N` for one rkctl does not name.
pub fn errno_name(e: i32) -> String {
    ERRNOS.iter().find(|&&(n, _)| n == e).map_or_else(|| format!("errno {e}"), |&(_, s)| s.to_string())
}

/// The errno of a name [`errno_name`] gives (`EINVAL`), if rkctl knows it.
pub fn errno_of(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|&&(_, s)| s == name).map(|&(n, _)| n)
}

/// A UAPI argument struct: plain integers, starting with its size field.
pub trait Arg: Default {
    /// Sets the leading `size` field to `size_of::<Self>()`.
    fn set_size(&mut self);
}

/// Implements [`Arg`] for each UAPI struct named.
macro_rules! args {
    ($($t:ty),* $(,)?) => {$(
        impl Arg for $t {
            fn set_size(&mut self) {
                self.size = std::mem::size_of::<Self>() as u32;
            }
        }
    )*};
}
args!(
    uapi::rkalloc_info,
    uapi::rkalloc_pool_alloc,
    uapi::rkalloc_free,
    uapi::rkalloc_pattern,
    uapi::rkalloc_check,
    uapi::rkalloc_pool_shrink,
    uapi::rkalloc_pool_stats,
    uapi::rkalloc_bench,
    uapi::rkalloc_replay,
    uapi::rkalloc_heap_create,
    uapi::rkalloc_heap_alloc,
    uapi::rkalloc_handle_op,
    uapi::rkalloc_arena_alloc,
    uapi::rkalloc_arena_reset,
    uapi::rkalloc_cache_create,
    uapi::rkalloc_batch,
    uapi::rkalloc_malloc,
    uapi::rkalloc_list,
    uapi::rkalloc_allocators,
    uapi::rkalloc_conform,
);

/// The result of an ioctl.
pub type KResult<T> = std::result::Result<T, Errno>;

impl Device {
    /// Opens the device (root only) and checks that the module speaks this
    /// rkctl's ABI version.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::options().read(true).write(true).open(path).map_err(|e| {
            error::system(format!("cannot open {}: {e} (is rkalloc loaded, and are you root?)", path.display()))
        })?;
        let dev = Self { file };
        match dev.info() {
            Ok(i) if i.abi_version == uapi::RKALLOC_ABI_VERSION => Ok(dev),
            Ok(i) => Err(error::system(format!(
                "the module at {} speaks ABI version {}, this rkctl version {}: build and load the module of the same tree",
                path.display(),
                i.abi_version,
                uapi::RKALLOC_ABI_VERSION
            ))),
            // An older module does not know version 2's struct size.
            Err(e) if e.errno == libc::EINVAL => Err(error::system(format!(
                "the module at {} refuses ABI version {}'s RKALLOC_IOC_INFO (EINVAL): it is older than this rkctl; build and load the module of the same tree",
                path.display(),
                uapi::RKALLOC_ABI_VERSION
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Issues `cmd` with `arg`; returns the errno on failure.
    pub fn ioctl<T: Arg>(&self, cmd: u32, arg: &mut T) -> KResult<()> {
        arg.set_size();
        // Pointers inside `arg` (user arrays) are the caller's: the kernel
        // checks them and answers EFAULT.
        // SAFETY: `arg` is a live, exclusively borrowed #[repr(C)] struct of
        // the size the command encodes (both come from the same header).
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, arg as *mut T) };
        if rc < 0 {
            Err(Errno { cmd, errno: io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) })
        } else {
            Ok(())
        }
    }

    /// `RKALLOC_IOC_INFO`.
    pub fn info(&self) -> KResult<uapi::rkalloc_info> {
        let mut a = uapi::rkalloc_info::default();
        self.ioctl(uapi::cmd::info(), &mut a)?;
        Ok(a)
    }

    /// `RKALLOC_IOC_ALLOCATORS`: the module's allocator table. Asks for the
    /// count (max 0), then for that many entries, again with more room if
    /// the table grew meanwhile.
    pub fn allocators(&self) -> KResult<Vec<table::Allocator>> {
        Ok(self.allocators_raw()?.iter().map(table::Allocator::from_uapi).collect())
    }

    /// `RKALLOC_IOC_ALLOCATORS` as the kernel wrote it.
    pub fn allocators_raw(&self) -> KResult<Vec<uapi::rkalloc_allocator>> {
        let mut max = 0u32;
        loop {
            let mut v = vec![uapi::rkalloc_allocator::default(); max as usize];
            let mut a = uapi::rkalloc_allocators { max, entries: v.as_mut_ptr() as u64, ..Default::default() };
            self.ioctl(uapi::cmd::allocators(), &mut a)?;
            if a.count <= max {
                v.truncate(a.count as usize);
                return Ok(v);
            }
            max = a.count;
        }
    }

    /// `RKALLOC_IOC_CONFORM`. On EUCLEAN the counts say what was found, so
    /// they are returned with the error.
    pub fn conform(&self, a: &mut uapi::rkalloc_conform) -> KResult<()> {
        self.ioctl(uapi::cmd::conform(), a)
    }
}

impl Device {
    /// `RKALLOC_IOC_POOL_ALLOC`: a block of 2^order pages; returns its handle.
    pub fn pool_alloc(&self, order: u32) -> KResult<u64> {
        let mut a = uapi::rkalloc_pool_alloc { order, ..Default::default() };
        self.ioctl(uapi::cmd::pool_alloc(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_FREE`.
    pub fn free(&self, handle: u64) -> KResult<()> {
        let mut a = uapi::rkalloc_free { handle, ..Default::default() };
        self.ioctl(uapi::cmd::free(), &mut a)
    }

    /// `RKALLOC_IOC_FILL`: returns the bytes written.
    pub fn fill(&self, handle: u64, pattern: u32) -> KResult<u64> {
        let mut a = uapi::rkalloc_pattern { handle, pattern, ..Default::default() };
        self.ioctl(uapi::cmd::fill(), &mut a)?;
        Ok(a.bytes)
    }

    /// `RKALLOC_IOC_VERIFY`: returns (bytes checked, mismatching bytes).
    pub fn verify(&self, handle: u64, pattern: u32) -> KResult<(u64, u64)> {
        let mut a = uapi::rkalloc_pattern { handle, pattern, ..Default::default() };
        self.ioctl(uapi::cmd::verify(), &mut a)?;
        Ok((a.bytes, a.mismatches))
    }

    /// `RKALLOC_IOC_CHECK`: Ok when every invariant holds.
    pub fn check(&self) -> KResult<()> {
        let mut a = uapi::rkalloc_check::default();
        self.ioctl(uapi::cmd::check(), &mut a)
    }

    /// `RKALLOC_IOC_POOL_SHRINK`: returns the pages released.
    pub fn shrink(&self) -> KResult<u64> {
        let mut a = uapi::rkalloc_pool_shrink::default();
        self.ioctl(uapi::cmd::pool_shrink(), &mut a)?;
        Ok(a.released_pages)
    }

    /// `RKALLOC_IOC_POOL_STATS`.
    pub fn pool_stats(&self) -> KResult<uapi::rkalloc_pool_stats> {
        self.pool_stats_flags(0)
    }

    /// `RKALLOC_IOC_POOL_STATS` with flags (`RKALLOC_STATS_RESET`).
    pub fn pool_stats_flags(&self, flags: u32) -> KResult<uapi::rkalloc_pool_stats> {
        let mut a = uapi::rkalloc_pool_stats { flags, ..Default::default() };
        self.ioctl(uapi::cmd::pool_stats(), &mut a)?;
        Ok(a)
    }

    /// The raw fd, for tests that issue malformed ioctls on purpose.
    pub fn raw_fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

impl Device {
    /// `RKALLOC_IOC_LIST`: every slab cache and heap. Asks for the count,
    /// then for that many entries (again, larger, if one was added
    /// meanwhile).
    pub fn list(&self) -> KResult<Vec<uapi::rkalloc_list_entry>> {
        let mut max = 0u32;
        loop {
            let mut v = vec![uapi::rkalloc_list_entry::default(); max as usize];
            let mut a = uapi::rkalloc_list { max, entries: v.as_mut_ptr() as u64, ..Default::default() };
            self.ioctl(uapi::cmd::list(), &mut a)?;
            if a.count <= max {
                v.truncate(a.count as usize);
                return Ok(v);
            }
            max = a.count + 8;
        }
    }

    /// `RKALLOC_IOC_BENCH`.
    pub fn bench(&self, a: &mut uapi::rkalloc_bench) -> KResult<()> {
        self.ioctl(uapi::cmd::bench(), a)
    }
}

/// Heaps and the arena.
impl Device {
    /// `RKALLOC_IOC_HEAP_CREATE`: a heap of `policy` (an id of the policy
    /// table, below `rkalloc_info.nr_policies`)
    /// with `flags` (`RKALLOC_HEAP_*`) over `initial_bytes` (0: 64 KiB).
    pub fn heap_create(&self, policy: u32, flags: u32, initial_bytes: u64) -> KResult<u64> {
        let mut a = uapi::rkalloc_heap_create { policy, flags, initial_bytes, ..Default::default() };
        self.ioctl(uapi::cmd::heap_create(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_HEAP_ALLOC`: `bytes` from `heap`; returns the block's handle.
    pub fn heap_alloc(&self, heap: u64, bytes: u64) -> KResult<u64> {
        let mut a = uapi::rkalloc_heap_alloc { heap, bytes, ..Default::default() };
        self.ioctl(uapi::cmd::heap_alloc(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_HEAP_RESET`: frees every block of `heap`.
    pub fn heap_reset(&self, heap: u64) -> KResult<()> {
        let mut a = uapi::rkalloc_handle_op { handle: heap, ..Default::default() };
        self.ioctl(uapi::cmd::heap_reset(), &mut a)
    }

    /// `RKALLOC_IOC_HEAP_DESTROY`: frees `heap` and its blocks.
    pub fn heap_destroy(&self, heap: u64) -> KResult<()> {
        let mut a = uapi::rkalloc_handle_op { handle: heap, ..Default::default() };
        self.ioctl(uapi::cmd::heap_destroy(), &mut a)
    }

    /// `RKALLOC_IOC_ARENA_ALLOC`: `bytes` aligned to `align` (0: 8) from
    /// the fd's arena.
    pub fn arena_alloc(&self, bytes: u64, align: u32) -> KResult<u64> {
        let mut a = uapi::rkalloc_arena_alloc { bytes, align, ..Default::default() };
        self.ioctl(uapi::cmd::arena_alloc(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_ARENA_RESET`: returns (bytes, allocations) reclaimed.
    pub fn arena_reset(&self) -> KResult<(u64, u64)> {
        let mut a = uapi::rkalloc_arena_reset::default();
        self.ioctl(uapi::cmd::arena_reset(), &mut a)?;
        Ok((a.bytes_reclaimed, a.allocations_reclaimed))
    }
}

/// Slab caches, their objects, and `rk_malloc`.
impl Device {
    /// `RKALLOC_IOC_CACHE_CREATE`: a cache of `obj_size`-byte objects
    /// aligned to `align` (0: 8) with `flags` (`RKALLOC_CACHE_*`) named
    /// `name` (at most 31 bytes); returns its handle.
    pub fn cache_create(&self, name: &str, obj_size: u32, align: u32, flags: u32) -> KResult<u64> {
        let mut a = uapi::rkalloc_cache_create { obj_size, align, flags, ..Default::default() };
        if name.len() >= a.name.len() {
            return Err(Errno { cmd: uapi::cmd::cache_create(), errno: libc::ENAMETOOLONG });
        }
        for (d, s) in a.name.iter_mut().zip(name.bytes()) {
            *d = s as _;
        }
        self.ioctl(uapi::cmd::cache_create(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_CACHE_DESTROY`: EBUSY while objects of it are live.
    pub fn cache_destroy(&self, cache: u64) -> KResult<()> {
        let mut a = uapi::rkalloc_handle_op { handle: cache, ..Default::default() };
        self.ioctl(uapi::cmd::cache_destroy(), &mut a)
    }

    /// `RKALLOC_IOC_OBJ_ALLOC`: `count` objects of `cache`, all or nothing.
    pub fn obj_alloc(&self, cache: u64, count: u32) -> KResult<Vec<u64>> {
        let mut handles = vec![0u64; count as usize];
        let mut a = uapi::rkalloc_batch { count, cache, handles: handles.as_mut_ptr() as u64, ..Default::default() };
        self.ioctl(uapi::cmd::obj_alloc(), &mut a)?;
        Ok(handles)
    }

    /// `RKALLOC_IOC_OBJ_FREE`: frees every handle of `handles`, or none.
    pub fn obj_free(&self, handles: &[u64]) -> KResult<()> {
        let count = u32::try_from(handles.len()).map_err(|_| Errno { cmd: uapi::cmd::obj_free(), errno: libc::E2BIG })?;
        let mut a = uapi::rkalloc_batch { count, handles: handles.as_ptr() as u64, ..Default::default() };
        self.ioctl(uapi::cmd::obj_free(), &mut a)
    }

    /// `RKALLOC_IOC_MALLOC`: `rk_malloc(bytes)`; returns the handle.
    pub fn malloc(&self, bytes: u64) -> KResult<u64> {
        let mut a = uapi::rkalloc_malloc { bytes, ..Default::default() };
        self.ioctl(uapi::cmd::malloc(), &mut a)?;
        Ok(a.handle)
    }
}
