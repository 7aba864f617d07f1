//! `rkctl copyout`: a call whose result cannot be copied back to userspace
//! must change nothing.
//!
//! The header promises that a call that fails changes nothing, "also when
//! the copy of the result back to userspace fails (EFAULT)". For every
//! command that allocates, frees or resets, this puts a valid argument
//! struct in a page, makes the page read-only (the kernel can read the
//! struct but not write the result), issues the ioctl and expects EFAULT;
//! then it proves that nothing changed:
//!
//! - the fd's bytes (INFO fd_bytes) and heaps (INFO nr_heaps);
//! - the fd's own caches and heaps (RKALLOC_IOC_LIST entries with a
//!   handle), entry for entry, and the total count of entries;
//! - the pool's allocated pages, measured after a POOL_SHRINK (which
//!   drains the slab magazines and the per-CPU lists first), and the slab
//!   caches' live objects (debugfs slabinfo) after it;
//! - every handle the fd had still works: its memory still holds the
//!   pattern written into it (VERIFY), and at the end each one frees;
//! - for the heap, its live block count in debugfs `heaps`; for the arena,
//!   the next reset reclaims exactly the allocations made before; for
//!   POOL_STATS with RKALLOC_STATS_RESET, no counter went down.
//!
//! Then the same call on a writable page must succeed (so the EFAULT was
//! the copy-out's, not a bad argument's), everything is freed (each free
//! and destroy must succeed: a cache with a leaked object answers EBUSY),
//! the fd holds 0 bytes (without an arena, which keeps its region), and
//! once it is closed the pool's allocated pages are what they were before
//! the case. OBJ_ALLOC is also run with a writable struct and a read-only
//! handle array.
//!
//! Run it alone on the module: pool pages are global.
use crate::{
    device::{Arg, Device},
    error,
    fuzz::sys,
    top::parse::{Snapshot, Table},
    uapi,
};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::{
    collections::BTreeSet,
    os::fd::RawFd,
    path::{Path, PathBuf},
};

/// `rkctl copyout`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The module's debugfs directory (heaps' live block counts).
    #[arg(long, default_value = "/sys/kernel/debug/rkalloc")]
    pub debugfs: PathBuf,
}

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The case's name, as the line prints it.
    pub case: String,
    /// Whether every check held.
    pub pass: bool,
    /// What was checked, or what went wrong.
    pub detail: String,
}

/// A page of ours that the kernel can read but not write.
///
/// # Invariants
///
/// `page` is a private anonymous mapping of `len` bytes owned by this
/// value, read-only once [`RoPage::new`] returned.
pub struct RoPage {
    /// The mapping's start.
    page: *mut u8,
    /// Its length, whole pages.
    len: usize,
}

impl RoPage {
    /// A read-only page holding `content` at its end (flush against the
    /// end, so nothing of ours follows the object).
    pub fn new(content: &[u8]) -> Result<Self> {
        let len = content.len().next_multiple_of(4096).max(4096);
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            bail!("mmap: {}", std::io::Error::last_os_error());
        }
        let page: *mut u8 = p.cast();
        let ro = RoPage { page, len };
        // SAFETY: `content` fits at the end of our fresh mapping.
        unsafe { std::ptr::copy_nonoverlapping(content.as_ptr(), page.add(len - content.len()), content.len()) };
        // SAFETY: our own mapping.
        if unsafe { libc::mprotect(p, len, libc::PROT_READ) } != 0 {
            bail!("mprotect: {}", std::io::Error::last_os_error());
        }
        Ok(ro)
    }

    /// The address of the content.
    pub fn addr(&self, content_len: usize) -> u64 {
        self.page as u64 + (self.len - content_len) as u64
    }
}

impl Drop for RoPage {
    fn drop(&mut self) {
        // SAFETY: our own mapping (invariant), not used after this.
        unsafe { libc::munmap(self.page.cast(), self.len) };
    }
}

/// The bytes of a UAPI struct (see [`crate::fuzz::spec::bytes_of`]).
fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    crate::fuzz::spec::bytes_of(v)
}

/// Issues `cmd` with `a` in a read-only page; returns the errno (0 on
/// success, which here is wrong).
fn ro_call<T: Arg + Copy>(fd: RawFd, cmd: u32, mut a: T) -> Result<i32> {
    a.set_size();
    let page = RoPage::new(bytes_of(&a))?;
    // SAFETY: the struct is in a page the kernel cannot write; the arrays
    // it points to are the caller's own buffers (or read-only pages).
    Ok(unsafe { sys::ioctl(fd, cmd, page.addr(std::mem::size_of::<T>())) })
}

/// An errno's name.
fn name(e: i32) -> String {
    crate::fuzz::verdict::errno_name(e)
}

/// The operation a case makes fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// POOL_ALLOC of an order-2 block.
    PoolAlloc,
    /// FREE of the fixture's memory of that kind.
    Free(Which),
    /// MALLOC of that many bytes.
    Malloc(u64),
    /// OBJ_ALLOC with the struct read-only.
    ObjAlloc,
    /// OBJ_ALLOC with a writable struct and a read-only handle array.
    ObjAllocArray,
    /// OBJ_FREE of both of the fixture's objects.
    ObjFree,
    /// CACHE_CREATE of a 64-byte cache.
    CacheCreate,
    /// CACHE_DESTROY of the fixture's empty cache.
    CacheDestroy,
    /// HEAP_CREATE with the defaults.
    HeapCreate,
    /// HEAP_ALLOC of 500 bytes from the fixture's heap.
    HeapAlloc,
    /// HEAP_RESET of the fixture's heap.
    HeapReset,
    /// HEAP_DESTROY of the fixture's heap.
    HeapDestroy,
    /// ARENA_ALLOC of 256 bytes.
    ArenaAlloc,
    /// ARENA_RESET.
    ArenaReset,
    /// POOL_STATS with RKALLOC_STATS_RESET.
    StatsReset,
}

/// The kind of memory a FREE case frees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// A pool block (order 1).
    Pool,
    /// `rk_malloc` of 100 bytes: a size class.
    MallocSmall,
    /// `rk_malloc` of 20000 bytes: pool pages.
    MallocLarge,
    /// An object of the fixture's 72-byte cache.
    Object,
    /// A block of the fixture's heap.
    HeapBlock,
}

/// Every case: (line name, the header's command, op).
pub fn cases() -> Vec<(&'static str, &'static str, Op)> {
    vec![
        ("POOL_ALLOC", "POOL_ALLOC", Op::PoolAlloc),
        ("FREE (pool block)", "FREE", Op::Free(Which::Pool)),
        ("FREE (rk_malloc, size class)", "FREE", Op::Free(Which::MallocSmall)),
        ("FREE (rk_malloc, pages)", "FREE", Op::Free(Which::MallocLarge)),
        ("FREE (slab object)", "FREE", Op::Free(Which::Object)),
        ("FREE (heap block)", "FREE", Op::Free(Which::HeapBlock)),
        ("MALLOC (size class)", "MALLOC", Op::Malloc(100)),
        ("MALLOC (pages)", "MALLOC", Op::Malloc(20000)),
        ("OBJ_ALLOC (struct read-only)", "OBJ_ALLOC", Op::ObjAlloc),
        ("OBJ_ALLOC (handle array read-only)", "OBJ_ALLOC", Op::ObjAllocArray),
        ("OBJ_FREE", "OBJ_FREE", Op::ObjFree),
        ("CACHE_CREATE", "CACHE_CREATE", Op::CacheCreate),
        ("CACHE_DESTROY", "CACHE_DESTROY", Op::CacheDestroy),
        ("HEAP_CREATE", "HEAP_CREATE", Op::HeapCreate),
        ("HEAP_ALLOC", "HEAP_ALLOC", Op::HeapAlloc),
        ("HEAP_RESET", "HEAP_RESET", Op::HeapReset),
        ("HEAP_DESTROY", "HEAP_DESTROY", Op::HeapDestroy),
        ("ARENA_ALLOC", "ARENA_ALLOC", Op::ArenaAlloc),
        ("ARENA_RESET", "ARENA_RESET", Op::ArenaReset),
        ("POOL_STATS (RKALLOC_STATS_RESET)", "POOL_STATS", Op::StatsReset),
    ]
}

/// A memory handle of the fixture, with the pattern written into it.
#[derive(Clone, Copy, Debug)]
struct Mem {
    /// Its handle.
    handle: u64,
    /// The pattern FILL wrote into it.
    pattern: u32,
    /// What kind of memory it is.
    which: Which,
}

/// One case's fd and what it holds.
struct Fixture {
    /// The case's own fd.
    dev: Device,
    /// Its memory handles (not the arena's).
    mem: Vec<Mem>,
    /// A 72-byte cache holding the two objects.
    cache: u64,
    /// A cache without objects (for CACHE_DESTROY).
    empty_cache: u64,
    /// A heap holding two blocks (0 once destroyed).
    heap: u64,
    /// The heap's id in debugfs `heaps`.
    heap_id: String,
    /// Arena allocations (freed only by a reset).
    arena: Vec<Mem>,
    /// Handles the control calls made: freed at the end.
    extra: Vec<u64>,
    /// Caches the control calls made.
    extra_caches: Vec<u64>,
    /// Heaps the control calls made.
    extra_heaps: Vec<u64>,
}

/// The ids of the heaps debugfs lists.
fn heap_ids(debugfs: &Path) -> Result<BTreeSet<String>> {
    let t =
        Table::parse(&std::fs::read_to_string(debugfs.join("heaps")).with_context(|| format!("cannot read {}/heaps", debugfs.display()))?)?;
    Ok(t.by_id()?.into_keys().collect())
}

impl Fixture {
    /// A fresh fd holding a pool block, two rk_mallocs (a size class and
    /// pages), a cache with two objects, an empty cache, a heap with two
    /// blocks, and with `arena` two arena allocations; every memory handle
    /// filled with a pattern of its own.
    fn new(path: &Path, debugfs: &Path, arena: bool, tag: usize) -> Result<Self> {
        let dev = Device::open(path)?;
        let mut mem = Vec::new();
        let mut add = |handle, which| mem.push(Mem { handle, pattern: 0x5eed_0000 + mem.len() as u32, which });
        add(dev.pool_alloc(1)?, Which::Pool);
        add(dev.malloc(100)?, Which::MallocSmall);
        add(dev.malloc(20000)?, Which::MallocLarge);
        let cache = dev.cache_create(&format!("cpo-{}-{tag}", std::process::id()), 72, 0, 0)?;
        let empty_cache = dev.cache_create(&format!("cpo-e-{}-{tag}", std::process::id()), 40, 0, 0)?;
        for o in dev.obj_alloc(cache, 2)? {
            add(o, Which::Object);
        }
        let ids = heap_ids(debugfs)?;
        let heap = dev.heap_create(0, 0, 0)?;
        let new: Vec<String> = heap_ids(debugfs)?.difference(&ids).cloned().collect();
        let [heap_id] = new.as_slice() else {
            bail!("cannot tell this fd's heap in debugfs heaps (new ids: {new:?}); is another program using rkalloc?");
        };
        for b in [200, 3000] {
            add(dev.heap_alloc(heap, b)?, Which::HeapBlock);
        }
        let mut arena_allocs = Vec::new();
        if arena {
            for b in [64, 128] {
                arena_allocs.push(Mem { handle: dev.arena_alloc(b, 0)?, pattern: 0xa7e0_0000 + b as u32, which: Which::Pool });
            }
        }
        for m in mem.iter().chain(&arena_allocs) {
            dev.fill(m.handle, m.pattern)?;
        }
        Ok(Fixture {
            dev,
            mem,
            cache,
            empty_cache,
            heap,
            heap_id: heap_id.clone(),
            arena: arena_allocs,
            extra: Vec::new(),
            extra_caches: Vec::new(),
            extra_heaps: Vec::new(),
        })
    }

    /// The fd's number.
    fn fd(&self) -> RawFd {
        self.dev.raw_fd()
    }

    /// The fixture's handle of kind `w`.
    fn one(&self, w: Which) -> u64 {
        self.mem.iter().find(|m| m.which == w).map_or(0, |m| m.handle)
    }
}

/// What a failed call must leave as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// INFO fd_bytes.
    pub fd_bytes: u64,
    /// INFO nr_heaps.
    pub nr_heaps: u32,
    /// The fd's own LIST entries: (handle, kind, obj_size, policy, flags, bytes).
    pub own: Vec<(u64, u32, u32, u32, u32, u64)>,
    /// LIST's entries, every fd's.
    pub list_count: usize,
    /// Pool pages allocated after a shrink.
    pub used_pages: u64,
    /// Live objects of every slab cache after that shrink (debugfs
    /// slabinfo active_objs, which counts objects parked on per-CPU
    /// magazines until a shrink drains them): a leaked rk_malloc object
    /// or slab object shows here, where it need not change a page count.
    pub slab_objects: u64,
    /// The fixture heap's live blocks (debugfs).
    pub heap_live: Option<u64>,
}

/// The fields of `b` that differ from `a`, described.
pub fn diff(a: &State, b: &State) -> Vec<String> {
    let mut v = Vec::new();
    macro_rules! field {
        ($($f:ident: $what:literal,)+) => {$(
            if a.$f != b.$f {
                v.push(format!(concat!($what, " {:?} -> {:?}"), a.$f, b.$f));
            }
        )+};
    }
    field! {
        fd_bytes: "fd_bytes",
        nr_heaps: "nr_heaps",
        own: "the fd's caches and heaps",
        list_count: "LIST count",
        used_pages: "pool pages in use after a shrink",
        slab_objects: "live slab objects after a shrink",
        heap_live: "the heap's live blocks",
    }
    v
}

/// Pool pages allocated after a POOL_SHRINK.
fn used_pages(dev: &Device) -> Result<u64> {
    dev.shrink()?;
    let s = dev.pool_stats()?;
    Ok(s.total_pages - s.free_pages)
}

/// What a failed call must leave as it was, now.
fn state(fx: &Fixture, debugfs: &Path) -> Result<State> {
    let i = fx.dev.info()?;
    let l = fx.dev.list()?;
    // Shrink first: the slab figures below are then live objects only.
    let used_pages = used_pages(&fx.dev)?;
    let snap = Snapshot::read(debugfs)?;
    let heaps = snap.heaps;
    let rows = heaps.by_id()?;
    let heap_live = match rows.get(&fx.heap_id) {
        Some(r) => Some(heaps.num(r, "live")?),
        None => None,
    };
    Ok(State {
        fd_bytes: i.fd_bytes,
        nr_heaps: i.nr_heaps,
        own: l.iter().filter(|e| e.handle != 0).map(|e| (e.handle, e.kind, e.obj_size, e.policy, e.flags, e.bytes)).collect(),
        list_count: l.len(),
        used_pages,
        slab_objects: snap.slabs.iter().map(|c| c.get("active_objs")).sum(),
        heap_live,
    })
}

/// Issues `op`; `ro` puts the result where the kernel cannot write it.
/// On success (the control call) the fixture learns what changed.
fn issue(fx: &mut Fixture, op: Op, ro: bool) -> Result<i32> {
    let f = fx.fd();
    macro_rules! go {
        ($cmd:expr, $a:expr) => {
            if ro {
                ro_call(f, $cmd, $a)?
            } else {
                match sys::call(f, $cmd, $a) {
                    Ok(out) => {
                        learn(fx, op, bytes_of(&out))?;
                        0
                    }
                    Err(e) => e,
                }
            }
        };
    }
    let mut handles = [0u64; 4];
    Ok(match op {
        Op::PoolAlloc => go!(uapi::cmd::pool_alloc(), uapi::rkalloc_pool_alloc { order: 2, ..Default::default() }),
        Op::Free(w) => go!(uapi::cmd::free(), uapi::rkalloc_free { handle: fx.one(w), ..Default::default() }),
        Op::Malloc(b) => go!(uapi::cmd::malloc(), uapi::rkalloc_malloc { bytes: b, ..Default::default() }),
        Op::ObjAlloc => {
            let a = uapi::rkalloc_batch { count: 4, cache: fx.cache, handles: handles.as_mut_ptr() as u64, ..Default::default() };
            let e = go!(uapi::cmd::obj_alloc(), a);
            if e == 0 && !ro {
                fx.extra.extend(handles);
            }
            e
        }
        Op::ObjAllocArray => {
            if ro {
                let page = RoPage::new(&[0u8; 32])?;
                let a = uapi::rkalloc_batch { count: 4, cache: fx.cache, handles: page.addr(32), ..Default::default() };
                sys::call(f, uapi::cmd::obj_alloc(), a).err().unwrap_or(0)
            } else {
                let a = uapi::rkalloc_batch { count: 4, cache: fx.cache, handles: handles.as_mut_ptr() as u64, ..Default::default() };
                let e = sys::call(f, uapi::cmd::obj_alloc(), a).err().unwrap_or(0);
                if e == 0 {
                    fx.extra.extend(handles);
                }
                e
            }
        }
        Op::ObjFree => {
            let objs: Vec<u64> = fx.mem.iter().filter(|m| m.which == Which::Object).map(|m| m.handle).collect();
            let a = uapi::rkalloc_batch { count: objs.len() as u32, handles: objs.as_ptr() as u64, ..Default::default() };
            // The kernel only reads `objs`.
            go!(uapi::cmd::obj_free(), a)
        }
        Op::CacheCreate => {
            let mut a = uapi::rkalloc_cache_create { obj_size: 64, ..Default::default() };
            for (d, s) in a.name.iter_mut().zip(b"cpo-new".iter()) {
                *d = *s as _;
            }
            go!(uapi::cmd::cache_create(), a)
        }
        Op::CacheDestroy => go!(uapi::cmd::cache_destroy(), uapi::rkalloc_handle_op { handle: fx.empty_cache, ..Default::default() }),
        Op::HeapCreate => go!(uapi::cmd::heap_create(), uapi::rkalloc_heap_create::default()),
        Op::HeapAlloc => go!(uapi::cmd::heap_alloc(), uapi::rkalloc_heap_alloc { heap: fx.heap, bytes: 500, ..Default::default() }),
        Op::HeapReset => go!(uapi::cmd::heap_reset(), uapi::rkalloc_handle_op { handle: fx.heap, ..Default::default() }),
        Op::HeapDestroy => go!(uapi::cmd::heap_destroy(), uapi::rkalloc_handle_op { handle: fx.heap, ..Default::default() }),
        Op::ArenaAlloc => go!(uapi::cmd::arena_alloc(), uapi::rkalloc_arena_alloc { bytes: 256, ..Default::default() }),
        Op::ArenaReset => go!(uapi::cmd::arena_reset(), uapi::rkalloc_arena_reset::default()),
        Op::StatsReset => go!(uapi::cmd::pool_stats(), uapi::rkalloc_pool_stats { flags: uapi::RKALLOC_STATS_RESET, ..Default::default() }),
    })
}

/// What a successful control call changed in the fixture.
fn learn(fx: &mut Fixture, op: Op, out: &[u8]) -> Result<()> {
    use crate::fuzz::spec::from_bytes;
    match op {
        Op::PoolAlloc => fx.extra.push(from_bytes::<uapi::rkalloc_pool_alloc>(out).handle),
        Op::Malloc(_) => fx.extra.push(from_bytes::<uapi::rkalloc_malloc>(out).handle),
        Op::HeapAlloc => fx.extra.push(from_bytes::<uapi::rkalloc_heap_alloc>(out).handle),
        Op::Free(w) => {
            let h = fx.one(w);
            fx.mem.retain(|m| m.handle != h);
        }
        Op::ObjAlloc | Op::ObjAllocArray | Op::StatsReset => {}
        Op::ObjFree => fx.mem.retain(|m| m.which != Which::Object),
        Op::CacheCreate => fx.extra_caches.push(from_bytes::<uapi::rkalloc_cache_create>(out).handle),
        Op::CacheDestroy => fx.empty_cache = 0,
        Op::HeapCreate => fx.extra_heaps.push(from_bytes::<uapi::rkalloc_heap_create>(out).handle),
        Op::HeapReset | Op::HeapDestroy => {
            fx.mem.retain(|m| m.which != Which::HeapBlock);
            if op == Op::HeapDestroy {
                fx.heap = 0;
            }
        }
        Op::ArenaAlloc => {
            fx.arena.push(Mem { handle: from_bytes::<uapi::rkalloc_arena_alloc>(out).handle, pattern: 0, which: Which::Pool })
        }
        Op::ArenaReset => {
            let r: uapi::rkalloc_arena_reset = from_bytes(out);
            if r.allocations_reclaimed != fx.arena.len() as u64 {
                bail!("the arena reset reclaimed {} allocations, the fd made {}", r.allocations_reclaimed, fx.arena.len());
            }
            fx.arena.clear();
        }
    }
    Ok(())
}

/// The pool counters a reset would zero.
fn counters(s: &uapi::rkalloc_pool_stats) -> Vec<u64> {
    [&s.allocs, &s.frees, &s.splits, &s.merges, &s.failures].iter().flat_map(|a| a.iter().copied()).collect()
}

/// Frees everything the fixture holds (each must succeed); returns what
/// went wrong.
fn teardown(fx: &mut Fixture) -> Vec<String> {
    let f = fx.fd();
    let mut bad = Vec::new();
    let mut free = |h: u64, what: &str| {
        if let Err(e) = sys::call(f, uapi::cmd::free(), uapi::rkalloc_free { handle: h, ..Default::default() }) {
            bad.push(format!("free of {what} {h:#x}: {}", name(e)));
        }
    };
    // Heap blocks made by a control HEAP_ALLOC die with a reset/destroy
    // of their heap, which the HEAP_* cases did; free the rest.
    for m in std::mem::take(&mut fx.mem) {
        free(m.handle, &format!("{:?}", m.which));
    }
    for h in std::mem::take(&mut fx.extra) {
        free(h, "a control call's handle");
    }
    let mut op = |cmd: u32, h: u64, what: &str| {
        if h != 0 {
            if let Err(e) = sys::call(f, cmd, uapi::rkalloc_handle_op { handle: h, ..Default::default() }) {
                bad.push(format!("{what} {h:#x}: {}", name(e)));
            }
        }
    };
    for c in [fx.cache, fx.empty_cache].into_iter().chain(std::mem::take(&mut fx.extra_caches)) {
        op(uapi::cmd::cache_destroy(), c, "destroy of cache (EBUSY: an object leaked)");
    }
    for h in [fx.heap].into_iter().chain(std::mem::take(&mut fx.extra_heaps)) {
        op(uapi::cmd::heap_destroy(), h, "destroy of heap");
    }
    if !fx.arena.is_empty() {
        match sys::call(f, uapi::cmd::arena_reset(), uapi::rkalloc_arena_reset::default()) {
            Ok(r) if r.allocations_reclaimed == fx.arena.len() as u64 => {}
            Ok(r) => bad.push(format!("the arena reset reclaimed {} allocations, the fd made {}", r.allocations_reclaimed, fx.arena.len())),
            Err(e) => bad.push(format!("arena reset: {}", name(e))),
        }
        fx.arena.clear();
    }
    bad
}

/// Runs one case; Ok(detail) when it passes, Err(why) when not.
fn run_case(dev: &Path, debugfs: &Path, ctl: &Device, tag: usize, op: Op) -> Result<String, String> {
    let e = |x: anyhow::Error| format!("{x:#}");
    let before = used_pages(ctl).map_err(e)?;
    let arena = matches!(op, Op::ArenaAlloc | Op::ArenaReset);
    let mut fx = Fixture::new(dev, debugfs, arena, tag).map_err(e)?;
    let mut why = Vec::new();
    let s0 = state(&fx, debugfs).map_err(e)?;
    let stats0 = fx.dev.pool_stats().map_err(|x| e(x.into()))?;
    let got = issue(&mut fx, op, true).map_err(e)?;
    if got != libc::EFAULT {
        why.push(format!("the call returned {}, expected EFAULT", name(got)));
    }
    let s1 = state(&fx, debugfs).map_err(e)?;
    why.extend(diff(&s0, &s1));
    for m in fx.mem.iter().chain(fx.arena.iter().filter(|a| a.pattern != 0)) {
        match fx.dev.verify(m.handle, m.pattern) {
            Ok((bytes, 0)) if bytes > 0 => {}
            Ok((bytes, bad)) => why.push(format!("{:?} {:#x}: {bad} of {bytes} bytes changed", m.which, m.handle)),
            Err(x) => why.push(format!("{:?} {:#x} no longer works: VERIFY {}", m.which, m.handle, x.name())),
        }
    }
    if op == Op::StatsReset {
        let stats1 = fx.dev.pool_stats().map_err(|x| e(x.into()))?;
        let (c0, c1) = (counters(&stats0), counters(&stats1));
        if c0.iter().sum::<u64>() == 0 {
            why.push("no pool counter was above 0: a reset could not show".into());
        }
        if c0.iter().zip(&c1).any(|(a, b)| b < a) {
            why.push("pool counters went down: the failed call reset them".into());
        }
    }
    if op == Op::ArenaAlloc {
        // The arena must hold exactly the allocations made before: a reset
        // tells. (Its own control call follows below.)
        let r = issue(&mut fx, Op::ArenaReset, false).map_err(e)?;
        if r != 0 {
            why.push(format!("ARENA_RESET after the failed call: {}", name(r)));
        }
    }
    // The control: the same call where the result can be written.
    match issue(&mut fx, op, false) {
        Ok(0) => {}
        Ok(x) => why.push(format!("the same call on a writable page returned {} (the case's argument is bad)", name(x))),
        Err(x) => why.push(format!("{x:#}")),
    }
    if op == Op::StatsReset {
        let s = fx.dev.pool_stats().map_err(|x| e(x.into()))?;
        if counters(&s).iter().sum::<u64>() >= counters(&stats0).iter().sum::<u64>() {
            why.push("a writable STATS_RESET did not lower the counters: the check above cannot see a reset".into());
        }
    }
    why.extend(teardown(&mut fx));
    if !arena {
        match fx.dev.info() {
            Ok(i) if i.fd_bytes == 0 => {}
            Ok(i) => why.push(format!("the fd holds {} bytes once everything is freed", i.fd_bytes)),
            Err(x) => why.push(format!("INFO: {x}")),
        }
    }
    drop(fx);
    let after = used_pages(ctl).map_err(e)?;
    if after != before {
        why.push(format!("pool pages in use after the fd closed: {before} before the case, {after} after"));
    }
    if why.is_empty() {
        Ok(format!(
            "EFAULT; fd_bytes, caches, heaps, pool pages, slab objects{} unchanged; handles intact; writable call succeeds; all freed",
            match op {
                Op::ArenaAlloc | Op::ArenaReset => ", arena contents",
                Op::StatsReset => ", counters",
                Op::HeapAlloc | Op::HeapReset | Op::HeapDestroy => ", heap live blocks",
                _ => "",
            }
        ))
    } else {
        Err(why.join("; "))
    }
}

/// Runs every case.
pub fn run(dev: &Path, debugfs: &Path) -> Result<Vec<Outcome>> {
    let ctl = Device::open(dev)?;
    Snapshot::read(debugfs).map_err(|e| error::system(format!("rkctl copyout reads the module's debugfs files (--debugfs): {e:#}")))?;
    let mut v = Vec::new();
    for (tag, (case, _, op)) in cases().into_iter().enumerate() {
        let r = run_case(dev, debugfs, &ctl, tag, op);
        v.push(Outcome { case: case.to_string(), pass: r.is_ok(), detail: r.unwrap_or_else(|x| x) });
    }
    Ok(v)
}

/// `rkctl copyout`: one line per case; non-zero exit on any failure.
pub fn main(dev: &Path, json: bool, a: &Args) -> Result<()> {
    let v = run(dev, &a.debugfs)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for o in &v {
            println!("{} {}: {}", if o.pass { "PASS" } else { "FAIL" }, o.case, o.detail);
        }
    }
    let bad = v.iter().filter(|o| !o.pass).count();
    if bad != 0 {
        return Err(error::refused(format!("{bad} of {} copy-out cases failed", v.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_that_allocates_frees_or_resets_has_a_case() {
        let want = [
            "POOL_ALLOC",
            "FREE",
            "MALLOC",
            "OBJ_ALLOC",
            "OBJ_FREE",
            "CACHE_CREATE",
            "CACHE_DESTROY",
            "HEAP_CREATE",
            "HEAP_ALLOC",
            "HEAP_RESET",
            "HEAP_DESTROY",
            "ARENA_ALLOC",
            "ARENA_RESET",
            "POOL_STATS",
        ];
        let cs = cases();
        for w in want {
            assert!(cs.iter().any(|(_, c, _)| *c == w), "{w} has no case");
        }
        // The command names are the header's.
        let header = crate::fuzz::spec::specs();
        for (_, c, _) in &cs {
            assert!(header.iter().any(|s| s.name == *c), "{c}");
        }
        // Every kind of memory FREE takes, and both OBJ_ALLOC variants.
        assert_eq!(cs.iter().filter(|(_, c, _)| *c == "FREE").count(), 5);
        assert!(cs.iter().any(|(_, _, o)| *o == Op::ObjAllocArray));
        let names: BTreeSet<_> = cs.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names.len(), cs.len(), "one line per case");
    }

    #[test]
    fn a_read_only_page_is_readable_but_not_writable_by_the_kernel() {
        let content = [0x42u8; 40];
        let p = RoPage::new(&content).unwrap();
        let addr = p.addr(40);
        assert_eq!(addr % 4096, 4096 - 40);
        // The kernel reads it (write() to a pipe copies from it) ...
        let mut fds = [0; 2];
        // SAFETY: a valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: a readable page of ours.
        assert_eq!(unsafe { libc::write(fds[1], addr as *const libc::c_void, 40) }, 40);
        // ... but cannot write it (read() from the pipe copies into it).
        // SAFETY: the kernel checks the pointer; the page is read-only.
        let r = unsafe { libc::read(fds[0], addr as *mut libc::c_void, 40) };
        assert_eq!((r, sys::errno()), (-1, libc::EFAULT));
        // SAFETY: our own fds and page.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
            assert_eq!(*(addr as *const u8), 0x42);
        }
    }

    fn st() -> State {
        State {
            fd_bytes: 8192,
            nr_heaps: 1,
            own: vec![(1 << 40 | 1 << 16 | 1, 16, 72, 0, 0, 4096)],
            list_count: 15,
            used_pages: 40,
            slab_objects: 3,
            heap_live: Some(2),
        }
    }

    #[test]
    fn any_change_is_reported() {
        assert!(diff(&st(), &st()).is_empty());
        let mut b = st();
        b.fd_bytes += 4096;
        b.heap_live = Some(3);
        b.own.push((1 << 40 | 7 << 16 | 1, 17, 0, 1, 0, 65536));
        b.used_pages += 1;
        let d = diff(&st(), &b);
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d[0].contains("fd_bytes 8192 -> 12288"));
        assert!(d.iter().any(|s| s.contains("live blocks Some(2) -> Some(3)")));
        let mut c = st();
        c.list_count = 16;
        c.nr_heaps = 2;
        c.slab_objects = 4;
        assert_eq!(diff(&st(), &c).len(), 3);
    }
}
