//! The memory the fuzzer hands to the kernel.
//!
//! Every user pointer the kernel may write through points into a [`Scratch`]
//! the thread owns, and every writable area there ends at a guard page
//! (`PROT_NONE`), with what the kernel may write placed flush against it: a
//! kernel that writes more than it should faults (EFAULT) instead of
//! scribbling over the fuzzer's own memory. Pointers that must not be
//! writable point into a read-only view of a memfd whose other, writable
//! view is where the fuzzer writes the content; "unmapped" pointers point
//! into a guard page the scratch keeps reserved for its whole life, so no
//! later mapping can appear there.
//!
//! Layout, in pages: `G A G R... G O... G`, where G is a guard, A the
//! argument page, R the array area ([`ARRAY_BYTES`]) and O the read-only
//! area ([`RO_BYTES`]).
use std::{io, os::fd::AsRawFd, os::fd::FromRawFd, os::fd::OwnedFd, ptr};

/// Bytes of the array area: room for RKALLOC_MAX_BATCH handles, 1024 list
/// entries or 512 allocator entries.
pub const ARRAY_BYTES: usize = 64 << 10;
/// Bytes of the read-only area.
pub const RO_BYTES: usize = 64 << 10;
/// The byte the fuzzer fills kernel-writable areas with before a call, to
/// see afterwards what the kernel wrote.
pub const CANARY: u8 = 0xa5;

/// Where a pointer the fuzzer passes points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ptr {
    /// Writable memory of ours, flush against a guard page.
    Valid,
    /// Like `Valid`, one byte off alignment.
    Misaligned,
    /// The object's first bytes are ours, its last 8 lie in a guard page.
    Straddle,
    /// A read-only page of ours (readable by the kernel, not writable).
    ReadOnly,
    /// NULL.
    Null,
    /// A low address below mmap_min_addr.
    Low,
    /// A guard page of ours (mapped `PROT_NONE`).
    Unmapped,
    /// A kernel address (direct map, text, vmalloc).
    Kernel(u64),
    /// A non-canonical or above-TASK_SIZE address.
    NonCanonical(u64),
}

impl Ptr {
    /// Whether the kernel can read the whole object behind the pointer.
    pub fn readable(self) -> bool {
        matches!(self, Ptr::Valid | Ptr::Misaligned | Ptr::ReadOnly)
    }

    /// Whether the kernel can read and write the whole object.
    pub fn writable(self) -> bool {
        matches!(self, Ptr::Valid | Ptr::Misaligned)
    }
}

/// The areas of a [`Scratch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// The argument struct's page.
    Arg,
    /// User arrays the struct points to.
    Array,
}

/// Where an object was put.
#[derive(Clone, Copy, Debug)]
pub struct Placed {
    /// The address handed to the kernel.
    pub addr: u64,
    /// The writable range of ours behind it, to read results back from:
    /// (start, bytes from start to the end of its area). None when the
    /// pointer is not ours or not writable.
    pub window: Option<(*mut u8, usize)>,
}

/// One thread's memory for the kernel.
///
/// # Invariants
///
/// `base..base + len` is a mapping this value owns, laid out as the module
/// doc says; `alias` is a writable mapping of `alias_len` bytes of the same
/// memfd pages the read-only area maps. Both stay mapped until drop.
pub struct Scratch {
    /// The start of the reservation.
    base: *mut u8,
    /// Its length.
    len: usize,
    /// The writable view of the read-only area.
    alias: *mut u8,
    /// The page size.
    page: usize,
    /// The memfd behind the read-only area and its alias.
    _memfd: OwnedFd,
}

/// An mmap result as a pointer, or the errno.
fn check(p: *mut libc::c_void) -> io::Result<*mut u8> {
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

impl Scratch {
    /// Maps a new scratch area.
    pub fn new() -> io::Result<Self> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = page * 5 + ARRAY_BYTES + RO_BYTES;
        // SAFETY: a fresh anonymous reservation; no existing memory is touched.
        let base = check(unsafe { libc::mmap(ptr::null_mut(), len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) })?;
        // SAFETY: a NUL-terminated name; the flags are valid.
        let fd = unsafe { libc::memfd_create(c"rkctl-fuzz-ro".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: unmaps the reservation made above, which nothing uses.
            unsafe { libc::munmap(base.cast(), len) };
            return Err(e);
        }
        // SAFETY: memfd_create returned a new fd that nothing else owns.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let s = Scratch { base, len, alias: ptr::null_mut(), page, _memfd: memfd };
        // From here on, drop unmaps `base` (alias is null until mapped).
        s.finish()
    }

    /// Maps the areas inside the reservation (see the layout above).
    fn finish(mut self) -> io::Result<Self> {
        let (page, fd) = (self.page, self._memfd.as_raw_fd());
        // SAFETY: a valid fd and length.
        if unsafe { libc::ftruncate(fd, RO_BYTES as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both ranges lie inside our own reservation.
        unsafe {
            if libc::mprotect(self.arg_start().cast(), page, libc::PROT_READ | libc::PROT_WRITE) != 0
                || libc::mprotect(self.array_start().cast(), ARRAY_BYTES, libc::PROT_READ | libc::PROT_WRITE) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: MAP_FIXED replaces part of our own reservation (the
        // read-only area), nothing else.
        check(unsafe { libc::mmap(self.ro_start().cast(), RO_BYTES, libc::PROT_READ, libc::MAP_SHARED | libc::MAP_FIXED, fd, 0) })?;
        // SAFETY: a fresh shared mapping of the memfd.
        self.alias = check(unsafe { libc::mmap(ptr::null_mut(), RO_BYTES, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) })?;
        Ok(self)
    }

    /// The argument page.
    fn arg_start(&self) -> *mut u8 {
        self.base.wrapping_add(self.page)
    }

    /// The array area.
    fn array_start(&self) -> *mut u8 {
        self.base.wrapping_add(3 * self.page)
    }

    /// The read-only area.
    fn ro_start(&self) -> *mut u8 {
        self.base.wrapping_add(4 * self.page + ARRAY_BYTES)
    }

    /// An address inside a guard page, `off` bytes in (`off` < a page).
    pub fn unmapped(&self, off: usize) -> u64 {
        self.base as u64 + (off % self.page) as u64
    }

    /// Puts `content` for an object of `access` bytes the kernel will
    /// access, as `kind` says, in `area`. `slack` more bytes after the
    /// object (a canary the caller checks) stay ours when they fit. When
    /// `canary` is set, the writable area from the end of `content` on is
    /// filled with [`CANARY`] first.
    ///
    /// Only ever writes inside our own mappings: `content` is cut to what
    /// fits before the guard page.
    pub fn place(&mut self, area: Area, kind: Ptr, content: &[u8], access: usize, slack: usize, canary: bool) -> Placed {
        let (start, bytes) = match area {
            Area::Arg => (self.arg_start(), self.page),
            Area::Array => (self.array_start(), ARRAY_BYTES),
        };
        let end = start as usize + bytes;
        let flush = |extra: usize| -> usize {
            match access.checked_add(slack + extra) {
                Some(n) if n <= bytes => end - n,
                _ => start as usize + extra,
            }
        };
        let (addr, window_end, alias_off) = match kind {
            Ptr::Valid => (flush(0), end, None),
            Ptr::Misaligned => (flush(1), end, None),
            Ptr::Straddle => {
                // The last bytes of the object (up to 8, at least 1) lie in
                // the guard page.
                let overhang = (access / 2).clamp(1, 8);
                (end - access.saturating_sub(overhang).min(bytes), end, None)
            }
            Ptr::ReadOnly => {
                let ro = self.ro_start() as usize;
                let a = match access.checked_add(slack) {
                    Some(n) if n <= RO_BYTES => ro + RO_BYTES - n,
                    _ => ro,
                };
                (a, ro + RO_BYTES, Some(a - ro))
            }
            Ptr::Null => return Placed { addr: 0, window: None },
            Ptr::Low => return Placed { addr: 0x10 + (access as u64 & 0x7f8), window: None },
            Ptr::Unmapped => return Placed { addr: self.unmapped(access), window: None },
            Ptr::Kernel(a) | Ptr::NonCanonical(a) => return Placed { addr: a, window: None },
        };
        let room = window_end - addr;
        let n = content.len().min(room);
        match alias_off {
            Some(off) => {
                // SAFETY: `off + n <= RO_BYTES`, inside the alias mapping,
                // which no one else references; `content` is a separate
                // slice.
                unsafe { ptr::copy_nonoverlapping(content.as_ptr(), self.alias.add(off), n) };
                Placed { addr: addr as u64, window: None }
            }
            None => {
                let p = addr as *mut u8;
                // SAFETY: `[addr, addr + room)` lies in a read-write area of
                // our reservation (invariant), and `content` is not in it.
                unsafe {
                    ptr::copy_nonoverlapping(content.as_ptr(), p, n);
                    if canary {
                        ptr::write_bytes(p.add(n), CANARY, room - n);
                    }
                }
                Placed { addr: addr as u64, window: Some((p, room)) }
            }
        }
    }

    /// The bytes of a window [`Scratch::place`] returned, as they are now
    /// (read them after the ioctl returned, before the next `place`).
    pub fn read(&self, window: (*mut u8, usize)) -> &[u8] {
        let (p, n) = window;
        let inside = |start: *mut u8, len: usize| p >= start && p as usize + n <= start as usize + len;
        assert!(inside(self.arg_start(), self.page) || inside(self.array_start(), ARRAY_BYTES), "not a window of this scratch");
        // No ioctl runs on this thread meanwhile, and no other thread is
        // given this scratch's pointers.
        // SAFETY: checked above to lie in a read-write area of this scratch,
        // which stays mapped while `self` is borrowed.
        unsafe { std::slice::from_raw_parts(p, n) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: the mappings this value owns (invariant); nothing points
        // into them after drop.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
            if !self.alias.is_null() {
                libc::munmap(self.alias.cast(), RO_BYTES);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many bytes the kernel writes at `addr` for a `read` of `n`
    /// from /dev/zero, or its errno (a short count when it faults part way).
    fn kernel_writes(addr: u64, n: usize) -> Result<usize, i32> {
        let f = std::fs::File::open("/dev/zero").unwrap();
        // SAFETY: the kernel checks the pointer; the test only passes
        // pointers into its own scratch or ones that must fault.
        let r = unsafe { libc::read(f.as_raw_fd(), addr as *mut libc::c_void, n) };
        if r < 0 {
            Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(r as usize)
        }
    }

    /// How many bytes the kernel reads from `addr` for a `write` of `n`
    /// to a pipe, or its errno.
    fn kernel_reads(addr: u64, n: usize) -> Result<usize, i32> {
        let mut fds = [0; 2];
        // SAFETY: a valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the kernel checks the pointer (pipe_write copies it).
        let r = unsafe { libc::write(fds[1], addr as *const libc::c_void, n) };
        let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: our own fds.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        if r < 0 {
            Err(e)
        } else {
            Ok(r as usize)
        }
    }

    const EFAULT: Result<usize, i32> = Err(libc::EFAULT);

    #[test]
    fn pointers_are_what_they_claim() {
        let mut s = Scratch::new().unwrap();
        let content = [1u8; 64];
        for area in [Area::Arg, Area::Array] {
            let v = s.place(area, Ptr::Valid, &content, 64, 0, true);
            assert_eq!(kernel_writes(v.addr, 64), Ok(64));
            // A byte more runs into the guard page: the copy stops there
            // (a short count or EFAULT, as the syscall reports it).
            assert!(matches!(kernel_writes(v.addr, 65), Ok(64) | EFAULT));
            assert!(matches!(kernel_reads(v.addr, 65), Ok(64) | EFAULT));
            let m = s.place(area, Ptr::Misaligned, &content, 64, 0, true);
            assert_eq!(m.addr % 8, 7);
            assert_eq!(kernel_writes(m.addr, 64), Ok(64));
            let st = s.place(area, Ptr::Straddle, &content, 64, 0, true);
            // The last 8 bytes are in the guard page.
            assert!(matches!(kernel_reads(st.addr, 64), Ok(56) | EFAULT));
            assert_eq!(kernel_reads(st.addr, 56), Ok(56));
        }
        let ro = s.place(Area::Arg, Ptr::ReadOnly, &[7u8; 32], 32, 0, false);
        assert_eq!(kernel_reads(ro.addr, 32), Ok(32));
        assert_eq!(kernel_writes(ro.addr, 32), EFAULT);
        // The kernel sees what was written through the alias.
        // SAFETY: a readable page of ours.
        assert_eq!(unsafe { *(ro.addr as *const u8) }, 7);
        for k in [Ptr::Null, Ptr::Low, Ptr::Unmapped, Ptr::Kernel(0xffff_8880_0000_0000), Ptr::NonCanonical(0x0000_8000_0000_0000)] {
            let p = s.place(Area::Arg, k, &content, 64, 0, false);
            assert_eq!(kernel_reads(p.addr, 8), EFAULT, "{k:?}");
            assert_eq!(kernel_writes(p.addr, 8), EFAULT, "{k:?}");
            assert!(p.window.is_none());
        }
    }

    #[test]
    fn canary_fills_the_rest_and_slack_stays_ours() {
        let mut s = Scratch::new().unwrap();
        let p = s.place(Area::Array, Ptr::Valid, &[0u8; 16], 16, 8, true);
        let w = s.read(p.window.unwrap());
        assert_eq!(w.as_ptr() as u64, p.addr);
        assert_eq!(w.len(), 24, "object + slack flush against the guard");
        assert!(w[..16].iter().all(|&b| b == 0));
        assert!(w[16..].iter().all(|&b| b == CANARY));
        // An object larger than the area starts at its beginning.
        let big = s.place(Area::Array, Ptr::Valid, &[], ARRAY_BYTES + 8, 0, false);
        assert_eq!(big.addr, s.read(big.window.unwrap()).as_ptr() as u64);
    }
}
