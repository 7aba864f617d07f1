//! A safe wrapper around `/dev/rkalloc`.
use crate::uapi;
use anyhow::{Context, Result};
use std::{fs::File, io, os::fd::AsRawFd, path::Path};

/// An open `/dev/rkalloc`. Everything allocated through it is freed by the
/// kernel when it is dropped (closed).
pub struct Device {
    file: File,
}

/// A UAPI argument struct: plain integers, starting with its size field.
pub trait Arg: Default {
    /// Sets the leading `size` field to `size_of::<Self>()`.
    fn set_size(&mut self);
}

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
);

impl Device {
    /// Opens the device (root only).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {} (is rkalloc loaded, and are you root?)", path.display()))?;
        Ok(Self { file })
    }

    /// Issues `cmd` with `arg`; returns the errno on failure.
    pub fn ioctl<T: Arg>(&self, cmd: u32, arg: &mut T) -> io::Result<()> {
        arg.set_size();
        // SAFETY: `arg` is a live, exclusively borrowed #[repr(C)] struct of
        // the size the command encodes (both come from the same header).
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, arg as *mut T) };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// `RKALLOC_IOC_INFO`.
    pub fn info(&self) -> io::Result<uapi::rkalloc_info> {
        let mut a = uapi::rkalloc_info::default();
        self.ioctl(uapi::cmd::info(), &mut a)?;
        Ok(a)
    }
}

impl Device {
    /// `RKALLOC_IOC_POOL_ALLOC`: a block of 2^order pages; returns its handle.
    pub fn pool_alloc(&self, order: u32) -> io::Result<u64> {
        let mut a = uapi::rkalloc_pool_alloc { order, ..Default::default() };
        self.ioctl(uapi::cmd::pool_alloc(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_FREE`.
    pub fn free(&self, handle: u64) -> io::Result<()> {
        let mut a = uapi::rkalloc_free { handle, ..Default::default() };
        self.ioctl(uapi::cmd::free(), &mut a)
    }

    /// `RKALLOC_IOC_FILL`: returns the bytes written.
    pub fn fill(&self, handle: u64, pattern: u32) -> io::Result<u64> {
        let mut a = uapi::rkalloc_pattern { handle, pattern, ..Default::default() };
        self.ioctl(uapi::cmd::fill(), &mut a)?;
        Ok(a.bytes)
    }

    /// `RKALLOC_IOC_VERIFY`: returns (bytes checked, mismatching bytes).
    pub fn verify(&self, handle: u64, pattern: u32) -> io::Result<(u64, u64)> {
        let mut a = uapi::rkalloc_pattern { handle, pattern, ..Default::default() };
        self.ioctl(uapi::cmd::verify(), &mut a)?;
        Ok((a.bytes, a.mismatches))
    }

    /// `RKALLOC_IOC_CHECK`: Ok when every invariant holds.
    pub fn check(&self) -> io::Result<()> {
        let mut a = uapi::rkalloc_check::default();
        self.ioctl(uapi::cmd::check(), &mut a)
    }

    /// `RKALLOC_IOC_POOL_SHRINK`: returns the pages released.
    pub fn shrink(&self) -> io::Result<u64> {
        let mut a = uapi::rkalloc_pool_shrink::default();
        self.ioctl(uapi::cmd::pool_shrink(), &mut a)?;
        Ok(a.released_pages)
    }

    /// `RKALLOC_IOC_POOL_STATS`.
    pub fn pool_stats(&self) -> io::Result<uapi::rkalloc_pool_stats> {
        self.pool_stats_flags(0)
    }

    /// `RKALLOC_IOC_POOL_STATS` with flags (`RKALLOC_STATS_RESET`).
    pub fn pool_stats_flags(&self, flags: u32) -> io::Result<uapi::rkalloc_pool_stats> {
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
    pub fn list(&self) -> io::Result<Vec<uapi::rkalloc_list_entry>> {
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
    pub fn bench(&self, a: &mut uapi::rkalloc_bench) -> io::Result<()> {
        self.ioctl(uapi::cmd::bench(), a)
    }
}

/// Heaps and the arena.
impl Device {
    /// `RKALLOC_IOC_HEAP_CREATE`: a heap of `policy` (`RKALLOC_POLICY_*`)
    /// with `flags` (`RKALLOC_HEAP_*`) over `initial_bytes` (0: 64 KiB).
    pub fn heap_create(&self, policy: u32, flags: u32, initial_bytes: u64) -> io::Result<u64> {
        let mut a = uapi::rkalloc_heap_create { policy, flags, initial_bytes, ..Default::default() };
        self.ioctl(uapi::cmd::heap_create(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_HEAP_ALLOC`: `bytes` from `heap`; returns the block's handle.
    pub fn heap_alloc(&self, heap: u64, bytes: u64) -> io::Result<u64> {
        let mut a = uapi::rkalloc_heap_alloc { heap, bytes, ..Default::default() };
        self.ioctl(uapi::cmd::heap_alloc(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_HEAP_RESET`: frees every block of `heap`.
    pub fn heap_reset(&self, heap: u64) -> io::Result<()> {
        let mut a = uapi::rkalloc_handle_op { handle: heap, ..Default::default() };
        self.ioctl(uapi::cmd::heap_reset(), &mut a)
    }

    /// `RKALLOC_IOC_HEAP_DESTROY`: frees `heap` and its blocks.
    pub fn heap_destroy(&self, heap: u64) -> io::Result<()> {
        let mut a = uapi::rkalloc_handle_op { handle: heap, ..Default::default() };
        self.ioctl(uapi::cmd::heap_destroy(), &mut a)
    }

    /// `RKALLOC_IOC_ARENA_ALLOC`: `bytes` aligned to `align` (0: 8) from
    /// the fd's arena.
    pub fn arena_alloc(&self, bytes: u64, align: u32) -> io::Result<u64> {
        let mut a = uapi::rkalloc_arena_alloc { bytes, align, ..Default::default() };
        self.ioctl(uapi::cmd::arena_alloc(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_ARENA_RESET`: returns (bytes, allocations) reclaimed.
    pub fn arena_reset(&self) -> io::Result<(u64, u64)> {
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
    pub fn cache_create(&self, name: &str, obj_size: u32, align: u32, flags: u32) -> io::Result<u64> {
        let mut a = uapi::rkalloc_cache_create { obj_size, align, flags, ..Default::default() };
        if name.len() >= a.name.len() {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        for (d, s) in a.name.iter_mut().zip(name.bytes()) {
            *d = s as _;
        }
        self.ioctl(uapi::cmd::cache_create(), &mut a)?;
        Ok(a.handle)
    }

    /// `RKALLOC_IOC_CACHE_DESTROY`: EBUSY while objects of it are live.
    pub fn cache_destroy(&self, cache: u64) -> io::Result<()> {
        let mut a = uapi::rkalloc_handle_op { handle: cache, ..Default::default() };
        self.ioctl(uapi::cmd::cache_destroy(), &mut a)
    }

    /// `RKALLOC_IOC_OBJ_ALLOC`: `count` objects of `cache`, all or nothing.
    pub fn obj_alloc(&self, cache: u64, count: u32) -> io::Result<Vec<u64>> {
        let mut handles = vec![0u64; count as usize];
        let mut a = uapi::rkalloc_batch { count, cache, handles: handles.as_mut_ptr() as u64, ..Default::default() };
        self.ioctl(uapi::cmd::obj_alloc(), &mut a)?;
        Ok(handles)
    }

    /// `RKALLOC_IOC_OBJ_FREE`: frees every handle of `handles`, or none.
    pub fn obj_free(&self, handles: &[u64]) -> io::Result<()> {
        let count = u32::try_from(handles.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
        let mut a = uapi::rkalloc_batch { count, handles: handles.as_ptr() as u64, ..Default::default() };
        self.ioctl(uapi::cmd::obj_free(), &mut a)
    }

    /// `RKALLOC_IOC_MALLOC`: `rk_malloc(bytes)`; returns the handle.
    pub fn malloc(&self, bytes: u64) -> io::Result<u64> {
        let mut a = uapi::rkalloc_malloc { bytes, ..Default::default() };
        self.ioctl(uapi::cmd::malloc(), &mut a)?;
        Ok(a.handle)
    }
}
