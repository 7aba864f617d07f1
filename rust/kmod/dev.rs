// SPDX-License-Identifier: GPL-2.0
//! `/dev/rkalloc`: the ioctl misc device.
//!
//! Each open file owns what it allocates, named by opaque handles; closing
//! the file frees all of it. The device node is root-only (devtmpfs gives a
//! misc device without an explicit mode 0600). A file holds a reference on
//! the module, so `rmmod` fails with EBUSY while any file is open: a Rust
//! misc device does not set `fops.owner`, so `open` takes the reference
//! itself.

use crate::{handles::Table, pool::Block, sys, uapi, RkallocModule, Shared};
use core::sync::atomic::Ordering;
use kernel::{
    fs::File,
    ioctl::_IOC_SIZE,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

/// Something an fd owns.
enum Owned {
    /// A pool block.
    Pool(Block),
}

impl Owned {
    fn kind(&self) -> u32 {
        match self {
            Owned::Pool(_) => uapi::RKALLOC_KIND_POOL,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Owned::Pool(b) => b.bytes(),
        }
    }

    /// The memory, for fill and verify.
    fn memory(&mut self) -> &mut [u8] {
        match self {
            // SAFETY: the block is `bytes()` bytes of pool memory in the
            // kernel's linear map, owned by this fd alone (it holds the handle
            // and the fd's mutex), and stays allocated while borrowed here.
            Owned::Pool(b) => unsafe { core::slice::from_raw_parts_mut(b.addr.as_ptr(), b.bytes()) },
        }
    }
}

struct FdState {
    items: Table<Owned>,
    bytes: u64,
}

/// One open file of `/dev/rkalloc`.
#[pin_data(PinnedDrop)]
pub(crate) struct RkDevice {
    shared: Arc<Shared>,
    #[pin]
    state: Mutex<FdState>,
}

#[vtable]
impl MiscDevice for RkDevice {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let shared = RkallocModule::from_misc(misc).shared.clone();
        if !sys::module_get(shared.module) {
            return Err(ENODEV);
        }
        shared.open_fds.fetch_add(1, Ordering::Relaxed);
        // From here on, dropping `RkDevice` releases the module reference.
        let fd_id = shared.next_fd_id.fetch_add(1, Ordering::Relaxed);
        let dev = KBox::pin_init(
            try_pin_init!(RkDevice {
                shared: shared.clone(),
                state <- new_mutex!(FdState { items: Table::new(fd_id), bytes: 0 }),
            }),
            GFP_KERNEL,
        );
        if dev.is_err() {
            shared.open_fds.fetch_sub(1, Ordering::Relaxed);
            sys::module_put(shared.module);
        }
        dev
    }

    fn ioctl(me: Pin<&RkDevice>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            uapi::IOC_INFO => with_arg(cmd, arg, |a: &mut uapi::rkalloc_info| me.info(a)),
            uapi::IOC_POOL_ALLOC => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pool_alloc| me.pool_alloc(a)),
            uapi::IOC_FREE => with_arg(cmd, arg, |a: &mut uapi::rkalloc_free| me.free(a)),
            uapi::IOC_FILL => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pattern| me.pattern(a, false)),
            uapi::IOC_VERIFY => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pattern| me.pattern(a, true)),
            uapi::IOC_CHECK => with_arg(cmd, arg, |a: &mut uapi::rkalloc_check| me.check(a)),
            uapi::IOC_POOL_SHRINK => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pool_shrink| me.shrink(a)),
            uapi::IOC_POOL_STATS => with_arg(cmd, arg, |a: &mut uapi::rkalloc_pool_stats| me.pool_stats(a)),
            _ => Err(ENOTTY),
        }
    }
}

#[pinned_drop]
impl PinnedDrop for RkDevice {
    fn drop(self: Pin<&mut Self>) {
        let pool = &self.shared.pool;
        let mut st = self.state.lock();
        let n = st.items.len();
        st.items.drain(|item| match item {
            Owned::Pool(b) => {
                // The fd owned it, so the pool takes it back.
                let _ = pool.free(b.pfn, b.order);
            }
        });
        st.bytes = 0;
        drop(st);
        if n != 0 {
            pr_debug!("release: freed {} allocations left by the fd\n", n);
        }
        self.shared.open_fds.fetch_sub(1, Ordering::Relaxed);
        // Last: once the reference is gone the module may be unloaded, but
        // only after this function returns to the VFS (release runs under
        // the file's last reference, and the unload waits for rmmod's
        // synchronisation of module refcounts).
        sys::module_put(self.shared.module);
    }
}

/// The version field every UAPI struct starts with.
pub(crate) trait Versioned: FromBytes + AsBytes {
    /// The caller's `sizeof` of the struct.
    fn size(&self) -> u32;
}

/// Copies the argument struct in, checks its size field, runs `op` on it and
/// copies it back out. Nothing is copied out when `op` fails.
fn with_arg<T: Versioned>(cmd: u32, arg: usize, op: impl FnOnce(&mut T) -> Result) -> Result<isize> {
    let len = core::mem::size_of::<T>();
    if _IOC_SIZE(cmd) != len {
        return Err(ENOTTY);
    }
    let (mut reader, mut writer) = UserSlice::new(UserPtr::from_addr(arg), len).reader_writer();
    let mut a: T = reader.read()?;
    if a.size() as usize != len {
        return Err(EINVAL);
    }
    op(&mut a)?;
    writer.write(&a)?;
    Ok(0)
}

impl RkDevice {
    fn info(&self, a: &mut uapi::rkalloc_info) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        a.abi_version = uapi::RKALLOC_ABI_VERSION;
        a.page_size = kernel::page::PAGE_SIZE as u32;
        a.max_order = 10;
        a.nr_cpus = sys::num_online_cpus();
        a.nr_caches = 0;
        a.nr_heaps = 0;
        let st = self.shared.pool.stats();
        a.pool_pages = st.total_pages;
        a.pool_free_pages = st.free_pages;
        a.fd_bytes = self.state.lock().bytes;
        a.fd_cap_bytes = self.shared.fd_cap_bytes;
        Ok(())
    }

    /// Checks the per-fd cap for `more` bytes.
    fn charge(&self, st: &FdState, more: u64) -> Result {
        match st.bytes.checked_add(more) {
            Some(n) if n <= self.shared.fd_cap_bytes => Ok(()),
            _ => Err(ENOMEM),
        }
    }

    fn pool_alloc(&self, a: &mut uapi::rkalloc_pool_alloc) -> Result {
        if a.order > crate::rkcore::buddy::MAX_ORDER {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        let bytes = (crate::pool::PAGE_SIZE as u64) << a.order;
        self.charge(&st, bytes)?;
        st.items.reserve()?;
        let block = self.shared.pool.alloc(a.order)?;
        a.handle = st.items.insert(Owned::Pool(block))?;
        st.bytes += bytes;
        Ok(())
    }

    fn free(&self, a: &mut uapi::rkalloc_free) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        let pool = &self.shared.pool;
        let mut st = self.state.lock();
        let item = st.items.remove_with(a.handle, |item| match item {
            Owned::Pool(b) => pool.free(b.pfn, b.order),
        })?;
        st.bytes -= item.bytes() as u64;
        Ok(())
    }

    fn pattern(&self, a: &mut uapi::rkalloc_pattern, verify: bool) -> Result {
        let mut st = self.state.lock();
        let item = st.items.get_mut(a.handle)?;
        let mem = item.memory();
        a.bytes = mem.len() as u64;
        if verify {
            let (n, first) = verify_pattern(mem, a.pattern);
            a.mismatches = n;
            a.first_mismatch = first;
        } else {
            fill_pattern(mem, a.pattern);
            a.mismatches = 0;
            a.first_mismatch = u64::MAX;
        }
        Ok(())
    }

    fn check(&self, a: &mut uapi::rkalloc_check) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        a.violations = 0;
        if self.shared.pool.check().is_err() {
            a.violations += 1;
        }
        if a.violations != 0 {
            return Err(EUCLEAN);
        }
        Ok(())
    }

    fn shrink(&self, a: &mut uapi::rkalloc_pool_shrink) -> Result {
        if a.reserved != 0 {
            return Err(EINVAL);
        }
        a.released_pages = self.shared.pool.shrink();
        Ok(())
    }

    fn pool_stats(&self, a: &mut uapi::rkalloc_pool_stats) -> Result {
        if a.flags & !uapi::RKALLOC_STATS_RESET != 0 {
            return Err(EINVAL);
        }
        let st = self.shared.pool.stats();
        a.total_pages = st.total_pages;
        a.free_pages = st.free_pages;
        a.pcp_pages = st.pcp_pages;
        a.high_water_pages = st.high_water_pages;
        a.chunks_grown = st.chunks_grown;
        a.chunks_shrunk = st.chunks_shrunk;
        for o in 0..crate::rkcore::buddy::NR_ORDERS {
            let (pa, pf) = st.pcp_allocs.get(o).zip(st.pcp_frees.get(o)).map_or((0, 0), |(a, f)| (*a, *f));
            a.nr_free[o] = u64::from(st.nr_free[o]);
            a.allocs[o] = st.buddy.allocs[o] + pa;
            a.frees[o] = st.buddy.frees[o] + pf;
            a.splits[o] = st.buddy.splits[o];
            a.merges[o] = st.buddy.merges[o];
            a.failures[o] = st.buddy.failures[o];
        }
        Ok(())
    }
}

/// The byte `fill` writes at offset `i`: distinct per pattern and position,
/// so overlapping allocations or stray writes show up in `verify`.
#[inline]
fn pattern_byte(pattern: u32, i: usize) -> u8 {
    let x = (i as u32).wrapping_mul(0x9e37_79b1) ^ pattern.wrapping_mul(0x85eb_ca6b);
    (x >> 24) as u8 ^ (x >> 8) as u8
}

fn fill_pattern(mem: &mut [u8], pattern: u32) {
    for (i, b) in mem.iter_mut().enumerate() {
        *b = pattern_byte(pattern, i);
    }
}

fn verify_pattern(mem: &[u8], pattern: u32) -> (u64, u64) {
    let mut n = 0u64;
    let mut first = u64::MAX;
    for (i, b) in mem.iter().enumerate() {
        if *b != pattern_byte(pattern, i) {
            if n == 0 {
                first = i as u64;
            }
            n += 1;
        }
    }
    (n, first)
}
