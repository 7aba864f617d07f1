//! `rkctl errors`: exercises every documented error path of the UAPI and
//! checks the errno, and that the failed call changed nothing. Everything
//! that depends on the module's tables (allocator ids, size ranges,
//! policies) is read from them: every allocator of the table is checked.
use crate::{
    device::{errno_name, Device, Errno},
    table::{self, Allocator},
    uapi,
};
use anyhow::Result;
use serde::Serialize;
use std::{io, path::Path};

/// One checked error path.
#[derive(Serialize, Debug, PartialEq)]
pub struct Case {
    pub name: String,
    pub expected: String,
    pub got: String,
    pub ok: bool,
}

/// What a call returned, as a case names it: `success` or the errno's name.
pub trait Outcome {
    /// `success`, or the errno's name.
    fn outcome(self) -> String;
}

impl<T> Outcome for Result<T, Errno> {
    fn outcome(self) -> String {
        match self {
            Ok(_) => "success".into(),
            Err(e) => e.name(),
        }
    }
}

impl<T> Outcome for io::Result<T> {
    fn outcome(self) -> String {
        match self {
            Ok(_) => "success".into(),
            Err(e) => e.raw_os_error().map_or_else(|| format!("error: {e}"), errno_name),
        }
    }
}

/// The cases checked so far.
#[derive(Default)]
pub struct Cases {
    pub v: Vec<Case>,
}

impl Cases {
    /// A call that should end in `expected` (`success` or an errno name).
    pub fn check(&mut self, name: impl Into<String>, expected: &str, r: impl Outcome) {
        let got = r.outcome();
        self.v.push(Case { name: name.into(), ok: got == expected, expected: expected.into(), got });
    }

    /// A property that should hold.
    pub fn holds(&mut self, name: impl Into<String>, ok: bool) {
        let got = if ok { "holds" } else { "violated" };
        self.v.push(Case { name: name.into(), expected: "holds".into(), got: got.into(), ok });
    }

    /// A property that should hold; `Err` says how it does not.
    pub fn holds_or(&mut self, name: impl Into<String>, r: Result<(), String>) {
        let (got, ok) = match r {
            Ok(()) => ("holds".to_string(), true),
            Err(why) => (format!("violated: {why}"), false),
        };
        self.v.push(Case { name: name.into(), expected: "holds".into(), got, ok });
    }
}

/// A raw ioctl with an arbitrary command and argument pointer.
fn raw(dev: &Device, cmd: u32, arg: usize) -> Result<(), Errno> {
    // SAFETY: the kernel validates `arg`; a bad pointer yields EFAULT, which
    // is what some cases test. No memory of ours is written unless `arg`
    // points at a live struct of the command's size.
    let rc = unsafe { libc::ioctl(dev.raw_fd(), cmd as _, arg) };
    if rc < 0 {
        Err(Errno { cmd, errno: io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) })
    } else {
        Ok(())
    }
}

/// Pool state that a failed call must leave as it was.
fn snapshot(dev: &Device) -> Result<(u64, u64)> {
    let i = dev.info()?;
    let s = dev.pool_stats()?;
    Ok((i.fd_bytes, s.total_pages - s.free_pages))
}

/// The module's tables, as the cases need them.
pub struct Tables {
    pub allocators: Vec<Allocator>,
    pub nr_policies: u32,
    /// A policy to make heaps with: best fit when the module has it.
    pub policy: u32,
}

impl Tables {
    /// Reads the tables from the module.
    fn of(dev: &Device) -> Result<Self> {
        let allocators = dev.allocators()?;
        let nr_policies = dev.info()?.nr_policies;
        let policies = table::policies(&allocators);
        let policy = policies.iter().find(|p| p.name == "best-fit").or(policies.first()).map_or(0, |p| p.id);
        Ok(Tables { allocators, nr_policies, policy })
    }
}

/// Runs every case.
pub fn run(path: &Path) -> Result<Vec<Case>> {
    let dev = Device::open(path)?;
    let other = Device::open(path)?;
    let mut c = Cases::default();

    // The tables first: everything below takes its ids from them.
    allocators_cases(&dev, &mut c)?;
    let t = Tables::of(&dev)?;

    let h = dev.pool_alloc(0)?;
    let before = snapshot(&dev)?;

    // Unknown command: a number in our magic the header does not define.
    let unknown = (3u32 << 30) | (8 << 16) | (uapi::RKALLOC_IOC_MAGIC << 8) | 0x7f;
    let mut buf = [0u64; 1];
    c.check("unknown command", "ENOTTY", raw(&dev, unknown, buf.as_mut_ptr() as usize));

    let mut info = uapi::rkalloc_info { size: 4, ..Default::default() };
    c.check("wrong size field", "EINVAL", raw(&dev, uapi::cmd::info(), &mut info as *mut _ as usize));
    c.check("bad user pointer", "EFAULT", raw(&dev, uapi::cmd::info(), 0x10));

    let mut fr = uapi::rkalloc_free { handle: h, reserved: 1, ..Default::default() };
    fr.size = std::mem::size_of_val(&fr) as u32;
    c.check("non-zero reserved field", "EINVAL", raw(&dev, uapi::cmd::free(), &mut fr as *mut _ as usize));

    c.check("order above max", "EINVAL", dev.pool_alloc(dev.info()?.max_order + 1));
    c.check("order far above max", "EINVAL", dev.pool_alloc(u32::MAX));
    c.check("another fd's handle", "EINVAL", other.free(h));
    c.check("unknown handle (unused index)", "ENOENT", dev.free(h + (1000 << 16)));
    c.check("verify of unknown handle", "ENOENT", dev.verify(h + (77 << 16), 1));
    c.holds("failed calls changed nothing", snapshot(&dev)? == before);

    c.check("free", "success", dev.free(h));
    c.check("double free", "EINVAL", dev.free(h));
    c.check("verify after free", "EINVAL", dev.verify(h, 1));
    crate::heapcmd::error_cases(&dev, &other, &t, &mut c)?;
    slab_cases(&dev, &other, &mut c)?;
    list_cases(&dev, &other, &t, &mut c)?;
    crate::replay::error_cases(&dev, &t, &mut c)?;
    bench_cases(&dev, &t, &mut c)?;
    conform_cases(&dev, &t, &mut c)?;

    // The per-fd cap: fill it with top-order blocks until ENOMEM.
    let cap = dev.info()?.fd_cap_bytes;
    let top = dev.info()?.max_order;
    let mut held = Vec::new();
    let mut last = Ok(0);
    for _ in 0..=(cap >> 22) + 1 {
        match dev.pool_alloc(top) {
            Ok(h) => held.push(h),
            Err(e) => {
                last = Err(e);
                break;
            }
        }
    }
    c.check("allocation beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    c.holds("cap honoured", i.fd_bytes <= cap && i.fd_bytes + (4 << 20) > cap);
    c.check("other fds unaffected by the cap", "success", other.pool_alloc(0));
    crate::heapcmd::cap_cases(&dev, cap, &t, &mut held, &mut c)?;
    for h in held {
        dev.free(h)?;
    }
    c.check("invariants hold", "success", dev.check());
    Ok(c.v)
}

/// `RKALLOC_IOC_ALLOCATORS` follows `RKALLOC_IOC_LIST`'s conventions (max
/// 0 only counts, a short array gets max entries, a bad size or reserved
/// field is EINVAL, an unwritable array EFAULT with count untouched), and
/// the table it returns keeps the header's rules.
fn allocators_cases(dev: &Device, c: &mut Cases) -> Result<()> {
    let info = dev.info()?;
    let n = info.nr_allocators;
    c.holds("allocators: the table has entries", n > 0);
    let mut a = uapi::rkalloc_allocators { max: 0, entries: 0x10, count: 77, ..Default::default() };
    c.check("allocators: max 0 only counts", "success", dev.ioctl(uapi::cmd::allocators(), &mut a));
    c.holds("allocators: count is nr_allocators", a.count == n);

    let sentinel = uapi::rkalloc_allocator { id: 0xdead, ..Default::default() };
    let mut two = [sentinel; 2];
    let mut a = uapi::rkalloc_allocators { max: 1, entries: two.as_mut_ptr() as u64, ..Default::default() };
    c.check("allocators: a short array", "success", dev.ioctl(uapi::cmd::allocators(), &mut a));
    c.holds("allocators: writes at most max entries", a.count == n && two[0].id == 0 && two[1].id == 0xdead);

    let mut a = uapi::rkalloc_allocators { size: 8, ..Default::default() };
    c.check("allocators: wrong size field", "EINVAL", raw(dev, uapi::cmd::allocators(), &mut a as *mut _ as usize));
    let mut a = uapi::rkalloc_allocators { reserved: 1, count: 77, ..Default::default() };
    c.check("allocators: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::allocators(), &mut a));
    c.holds("allocators: count untouched on EINVAL", a.count == 77);
    let mut a = uapi::rkalloc_allocators { max: n, entries: 0x10, count: 77, ..Default::default() };
    c.check("allocators: unwritable entry array", "EFAULT", dev.ioctl(uapi::cmd::allocators(), &mut a));
    c.holds("allocators: count untouched on EFAULT", a.count == 77);

    let raw = dev.allocators_raw()?;
    c.holds("allocators: the whole table has nr_allocators entries", raw.len() as u32 == n);
    let problems = table::validate(&raw, info.nr_policies);
    c.holds_or("allocators: the table keeps the header's rules", if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) });
    c.holds("allocators: the module has fit policies", info.nr_policies > 0);
    Ok(())
}

/// `RKALLOC_IOC_LIST` error paths: a bad size or reserved field, an
/// unwritable entry array; and max 0 only counts.
fn list_cases(dev: &Device, other: &Device, t: &Tables, c: &mut Cases) -> Result<()> {
    let total = dev.list()?.len() as u32;
    let mut l = uapi::rkalloc_list { size: 8, ..Default::default() };
    c.check("list: wrong size field", "EINVAL", raw(dev, uapi::cmd::list(), &mut l as *mut _ as usize));
    let mut l = uapi::rkalloc_list { reserved: 1, count: 77, ..Default::default() };
    c.check("list: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::list(), &mut l));
    c.holds("list: count untouched on failure", l.count == 77);
    let mut l = uapi::rkalloc_list { max: 4, entries: 0x10, count: 77, ..Default::default() };
    c.check("list: unwritable entry array", "EFAULT", dev.ioctl(uapi::cmd::list(), &mut l));
    c.holds("list: count untouched on EFAULT", l.count == 77);
    let mut l = uapi::rkalloc_list { max: 0, entries: 0x10, ..Default::default() };
    c.check("list: max 0 only counts", "success", dev.ioctl(uapi::cmd::list(), &mut l));
    c.holds("list: count of max 0 is the total", l.count == total && total >= 13);
    let mut one = [uapi::rkalloc_list_entry::default(); 2];
    let mut l = uapi::rkalloc_list { max: 1, entries: one.as_mut_ptr() as u64, ..Default::default() };
    let r = dev.ioctl(uapi::cmd::list(), &mut l);
    c.holds("list: writes at most max entries", r.is_ok() && l.count == total && one[0].kind == uapi::RKALLOC_KIND_CACHE && one[1].kind == 0);
    // An fd's own cache and heap carry its handles; another fd sees 0.
    let cache = dev.cache_create("rkctl-list", 40, 0, 0)?;
    let heap = dev.heap_create(t.policy, 0, 0)?;
    let mine = dev.list()?;
    let theirs = other.list()?;
    let named = |v: &[uapi::rkalloc_list_entry], h: u64| v.iter().filter(|e| e.handle == h).count();
    let cache_ok = mine.iter().any(|e| e.handle == cache && e.kind == uapi::RKALLOC_KIND_CACHE && e.obj_size == 40);
    let heap_ok = mine.iter().any(|e| e.handle == heap && e.kind == uapi::RKALLOC_KIND_HEAP && e.policy == t.policy && e.bytes == 64 << 10);
    c.holds("list: own cache and heap by handle", cache_ok && heap_ok && named(&mine, cache) == 1);
    let hidden = theirs.len() == mine.len() && named(&theirs, cache) == 0 && named(&theirs, heap) == 0;
    c.holds("list: another fd's cache and heap without handle", hidden);
    dev.cache_destroy(cache)?;
    dev.heap_destroy(heap)?;
    c.holds("list: destroyed ones are gone", dev.list()?.len() as u32 == total);
    Ok(())
}

/// Slab cache, object batch and `rk_malloc` error paths: every bad input
/// returns its errno and changes nothing.
fn slab_cases(dev: &Device, other: &Device, c: &mut Cases) -> Result<()> {
    let nr_caches = |d: &Device| d.info().map(|i| i.nr_caches).unwrap_or(u32::MAX);
    let caches = nr_caches(dev);
    let create = |size, align, flags| dev.cache_create("rkctl-errors", size, align, flags);
    c.check("cache: object size 0", "EINVAL", create(0, 0, 0));
    c.check("cache: object size above 8192", "EINVAL", create(8193, 0, 0));
    c.check("cache: object size far too big", "EINVAL", create(u32::MAX, 0, 0));
    c.check("cache: alignment not a power of two", "EINVAL", create(64, 24, 0));
    c.check("cache: alignment above a page", "EINVAL", create(64, 8192, 0));
    c.check("cache: unknown flag", "EINVAL", create(64, 0, 8));
    c.check("cache: empty name", "EINVAL", dev.cache_create("", 64, 0, 0));
    c.check("cache: name with a space", "EINVAL", dev.cache_create("a b", 64, 0, 0));
    let mut cc = uapi::rkalloc_cache_create { obj_size: 64, ..Default::default() };
    cc.name.fill(b'a' as _);
    c.check("cache: name without NUL", "EINVAL", dev.ioctl(uapi::cmd::cache_create(), &mut cc));
    c.holds("cache: failed creates made no cache", nr_caches(dev) == caches);

    let cache = dev.cache_create("rkctl-errors", 100, 0, uapi::RKALLOC_CACHE_DEBUG_CHECKS)?;
    c.holds("cache: created", nr_caches(dev) == caches + 1);
    let pool = dev.pool_alloc(0)?;
    let before = snapshot(dev)?;
    c.check("objects: count 0", "EINVAL", dev.obj_alloc(cache, 0));
    c.check("objects: count above the batch maximum", "E2BIG", dev.obj_alloc(cache, uapi::RKALLOC_MAX_BATCH + 1));
    c.check("objects: from a pool handle", "EINVAL", dev.obj_alloc(pool, 1));
    c.check("objects: from an unknown cache", "ENOENT", dev.obj_alloc(cache + (999 << 16), 1));
    c.check("objects: from another fd's cache", "EINVAL", other.obj_alloc(cache, 1));
    let mut b = uapi::rkalloc_batch { count: 8, cache, handles: 0x10, ..Default::default() };
    c.check("objects: unwritable handle array", "EFAULT", dev.ioctl(uapi::cmd::obj_alloc(), &mut b));
    c.holds("objects: failed batches changed nothing", snapshot(dev)? == before);

    let objs = dev.obj_alloc(cache, 3)?;
    for (i, &o) in objs.iter().enumerate() {
        dev.fill(o, i as u32)?;
    }
    c.holds("objects: three allocated", objs.len() == 3 && dev.verify(objs[2], 2)? == (100, 0));
    c.check("cache: destroy with live objects", "EBUSY", dev.cache_destroy(cache));
    c.check("cache: free of a cache handle", "EINVAL", dev.free(cache));
    c.check("cache: fill of a cache handle", "EINVAL", dev.fill(cache, 1));
    let before = snapshot(dev)?;
    c.check("objects: free count 0", "EINVAL", dev.obj_free(&[]));
    c.check("objects: free count above the maximum", "E2BIG", dev.obj_free(&vec![objs[0]; uapi::RKALLOC_MAX_BATCH as usize + 1]));
    c.check("objects: free with one unknown handle", "ENOENT", dev.obj_free(&[objs[0], objs[1] + (999 << 16)]));
    c.check("objects: free with a pool handle", "EINVAL", dev.obj_free(&[objs[0], pool]));
    c.check("objects: free with the cache's handle", "EINVAL", dev.obj_free(&[cache, objs[0]]));
    c.check("objects: free with a handle twice", "EINVAL", dev.obj_free(&[objs[0], objs[1], objs[0]]));
    c.check("objects: free from another fd", "EINVAL", other.obj_free(&objs));
    let mut b = uapi::rkalloc_batch { count: 2, handles: 0x10, ..Default::default() };
    c.check("objects: unreadable handle array", "EFAULT", dev.ioctl(uapi::cmd::obj_free(), &mut b));
    let intact = objs.iter().enumerate().all(|(i, &o)| dev.verify(o, i as u32).map(|v| v == (100, 0)).unwrap_or(false));
    c.holds("objects: failed frees freed nothing", intact && snapshot(dev)? == before);
    c.check("objects: free one", "success", dev.free(objs[2]));
    c.check("objects: double free", "EINVAL", dev.free(objs[2]));
    c.check("objects: batch free with a freed handle", "EINVAL", dev.obj_free(&objs));
    c.check("objects: batch free the rest", "success", dev.obj_free(&objs[..2]));
    c.check("objects: verify after batch free", "EINVAL", dev.verify(objs[0], 0));
    c.check("cache: destroy", "success", dev.cache_destroy(cache));
    c.check("cache: destroy again", "EINVAL", dev.cache_destroy(cache));
    c.check("objects: from a destroyed cache", "EINVAL", dev.obj_alloc(cache, 1));
    c.holds("cache: destroyed cache is gone", nr_caches(dev) == caches);
    dev.free(pool)?;

    let before = snapshot(dev)?;
    c.check("malloc: 0 bytes", "EINVAL", dev.malloc(0));
    c.check("malloc: above RKALLOC_MAX_MALLOC", "EINVAL", dev.malloc(uapi::RKALLOC_MAX_MALLOC as u64 + 1));
    c.check("malloc: far too big", "EINVAL", dev.malloc(u64::MAX));
    let mut m = uapi::rkalloc_malloc { bytes: 64, reserved: 1, ..Default::default() };
    c.check("malloc: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::malloc(), &mut m));
    c.holds("malloc: failed calls changed nothing", snapshot(dev)? == before);
    for bytes in [1, 100, 8192, 8193, uapi::RKALLOC_MAX_MALLOC as u64] {
        let h = dev.malloc(bytes)?;
        dev.fill(h, 7)?;
        c.holds(format!("malloc: {bytes} requested bytes are usable"), dev.verify(h, 7)? == (bytes, 0));
        c.check(format!("malloc: free {bytes} bytes"), "success", dev.free(h));
        c.check(format!("malloc: double free of {bytes} bytes"), "EINVAL", dev.free(h));
    }
    c.holds("malloc: everything given back", snapshot(dev)?.0 == before.0);
    Ok(())
}

/// The smallest size below `a`'s range and the largest above it, where
/// there are such sizes.
fn outside(a: &Allocator) -> Vec<(&'static str, u64)> {
    let mut v = Vec::new();
    if a.min_bytes > 0 {
        v.push(("min_bytes - 1", a.min_bytes - 1));
    }
    if let Some(b) = a.max_bytes.checked_add(1) {
        v.push(("max_bytes + 1", b));
    }
    v
}

/// `RKALLOC_IOC_BENCH` error paths: a bad allocator, pattern, count or size
/// is EINVAL and runs nothing (a size above an allocator's max_bytes for
/// every allocator of the table: kmalloc with 64 MiB once reached a kernel
/// WARNING); allocators that free all at once serve pairs and batches but
/// no per-object lifetimes; a run gives every page back.
fn bench_cases(dev: &Device, t: &Tables, c: &mut Cases) -> Result<()> {
    let bench = |allocator, pattern, batch, bytes| {
        let mut a = uapi::rkalloc_bench { allocator, pattern, batch, bytes, ops: 256, samples: 2, ..Default::default() };
        dev.bench(&mut a).map(|()| a)
    };
    let n = t.allocators.len() as u32;
    let Some(any) = t.allocators.first() else { return Ok(()) };
    let ok_bytes = any.min_bytes.max(64).min(any.max_bytes);
    let before = snapshot(dev)?;
    c.check("bench: unknown allocator", "EINVAL", bench(n, uapi::RKALLOC_BENCH_PAIR, 1, 64));
    c.check("bench: allocator id far out of range", "EINVAL", bench(u32::MAX, uapi::RKALLOC_BENCH_PAIR, 1, 64));
    c.check("bench: unknown pattern", "EINVAL", bench(any.id, uapi::RKALLOC_BENCH_CROSS_CPU + 1, 16, ok_bytes));
    c.check("bench: batch 0", "EINVAL", bench(any.id, uapi::RKALLOC_BENCH_BATCH, 0, ok_bytes));
    c.check("bench: batch above the maximum", "EINVAL", bench(any.id, uapi::RKALLOC_BENCH_BATCH, uapi::RKALLOC_MAX_BATCH + 1, ok_bytes));
    let with = |f: &dyn Fn(&mut uapi::rkalloc_bench)| {
        let mut a = uapi::rkalloc_bench { allocator: any.id, bytes: ok_bytes, batch: 1, ops: 256, samples: 2, ..Default::default() };
        f(&mut a);
        dev.bench(&mut a)
    };
    c.check("bench: zero samples", "EINVAL", with(&|a| a.samples = 0));
    c.check("bench: samples above RKALLOC_MAX_SAMPLES", "EINVAL", with(&|a| a.samples = uapi::RKALLOC_MAX_SAMPLES + 1));
    c.check("bench: zero ops", "EINVAL", with(&|a| a.ops = 0));
    c.check("bench: ops above 2^24", "EINVAL", with(&|a| a.ops = (1 << 24) + 1));
    c.check("bench: non-zero reserved field", "EINVAL", with(&|a| a.reserved = 1));
    for a in &t.allocators {
        for (what, bytes) in outside(a) {
            c.check(format!("bench: {} refuses {what} ({bytes} B)", a.name), "EINVAL", bench(a.id, uapi::RKALLOC_BENCH_PAIR, 1, bytes));
        }
        c.check(format!("bench: {} refuses u64::MAX bytes", a.name), "EINVAL", bench(a.id, uapi::RKALLOC_BENCH_PAIR, 1, u64::MAX));
    }
    if dev.info()?.nr_cpus < 2 {
        c.check("bench: cross_cpu with one CPU online", "EINVAL", bench(any.id, uapi::RKALLOC_BENCH_CROSS_CPU, 16, ok_bytes));
    }
    let timed = |r: Result<uapi::rkalloc_bench, Errno>| match r {
        Ok(a) if a.failures == 0 && a.mean_ps > 0 && a.min_ps <= a.median_ps && a.median_ps <= a.max_ps => Ok(()),
        Ok(a) => Err(format!("mean {} min {} median {} max {} failures {}", a.mean_ps, a.min_ps, a.median_ps, a.max_ps, a.failures)),
        Err(e) => Err(e.to_string()),
    };
    for a in t.allocators.iter().filter(|a| a.frees_all()) {
        let bytes = a.min_bytes.max(64).min(a.max_bytes);
        c.check(format!("bench: {} with random lifetimes", a.name), "EINVAL", bench(a.id, uapi::RKALLOC_BENCH_RANDOM_LIFE, 64, bytes));
        c.check(format!("bench: {} across CPUs", a.name), "EINVAL", bench(a.id, uapi::RKALLOC_BENCH_CROSS_CPU, 64, bytes));
        c.holds_or(format!("bench: {} pairs", a.name), timed(bench(a.id, uapi::RKALLOC_BENCH_PAIR, 1, bytes)));
        c.holds_or(format!("bench: {} batches", a.name), timed(bench(a.id, uapi::RKALLOC_BENCH_BATCH, 1024, bytes)));
    }
    // Per-operation latency: percentiles in order, and none without the flag.
    let plain = bench(any.id, uapi::RKALLOC_BENCH_PAIR, 1, ok_bytes);
    c.holds_or(
        "bench: no latency figures without RKALLOC_BENCH_LATENCY",
        match plain {
            Ok(a) if a.alloc_p50_ps == 0 && a.alloc_p99_ps == 0 && a.free_p50_ps == 0 && a.free_p99_ps == 0 && a.lat_overhead_ps == 0 => Ok(()),
            Ok(_) => Err("lat_* outputs set".into()),
            Err(e) => Err(e.to_string()),
        },
    );
    let mut l = uapi::rkalloc_bench {
        allocator: any.id,
        bytes: ok_bytes,
        batch: 1,
        ops: 1024,
        samples: 2,
        flags: uapi::RKALLOC_BENCH_LATENCY,
        ..Default::default()
    };
    let r = dev.bench(&mut l);
    c.holds_or(
        "bench: latency percentiles are ordered",
        match r {
            Ok(()) if l.alloc_p50_ps <= l.alloc_p99_ps && l.free_p50_ps <= l.free_p99_ps && l.alloc_p99_ps > 0 => Ok(()),
            Ok(()) => Err(format!("alloc {}/{} free {}/{}", l.alloc_p50_ps, l.alloc_p99_ps, l.free_p50_ps, l.free_p99_ps)),
            Err(e) => Err(e.to_string()),
        },
    );
    c.holds("bench: every page back after the runs", snapshot(dev)? == before);
    Ok(())
}

/// `RKALLOC_IOC_CONFORM`: bad input is EINVAL and runs nothing; a short run
/// on every allocator of the table is clean and gives everything back.
fn conform_cases(dev: &Device, t: &Tables, c: &mut Cases) -> Result<()> {
    let n = t.allocators.len() as u32;
    let Some(any) = t.allocators.first() else { return Ok(()) };
    let conform = |f: &dyn Fn(&mut uapi::rkalloc_conform)| {
        let mut a = uapi::rkalloc_conform { allocator: any.id, ops: 64, seed: 1, max_live: 8, ..Default::default() };
        f(&mut a);
        dev.conform(&mut a)
    };
    dev.shrink()?;
    let before = snapshot(dev)?;
    c.check("conform: unknown allocator", "EINVAL", conform(&|a| a.allocator = n));
    c.check("conform: allocator id far out of range", "EINVAL", conform(&|a| a.allocator = u32::MAX));
    c.check("conform: max_live 0", "EINVAL", conform(&|a| a.max_live = 0));
    c.check("conform: max_live above RKALLOC_MAX_BATCH", "EINVAL", conform(&|a| a.max_live = uapi::RKALLOC_MAX_BATCH + 1));
    c.check("conform: zero ops", "EINVAL", conform(&|a| a.ops = 0));
    c.check("conform: ops above 2^24", "EINVAL", conform(&|a| a.ops = (1 << 24) + 1));
    c.check("conform: non-zero reserved field", "EINVAL", conform(&|a| a.reserved = 1));
    for a in &t.allocators {
        let id = a.id;
        let lo = a.min_bytes;
        c.check(format!("conform: {} with lo > hi", a.name), "EINVAL", conform(&|x| (x.allocator, x.lo, x.hi) = (id, lo + 1, lo)));
        if let Some(over) = a.max_bytes.checked_add(1) {
            c.check(format!("conform: {} with hi = max_bytes + 1", a.name), "EINVAL", conform(&|x| (x.allocator, x.lo, x.hi) = (id, lo, over)));
        }
        let mut x = uapi::rkalloc_conform { allocator: id, ops: 512, seed: 7, max_live: 32, ..Default::default() };
        let r = dev.conform(&mut x);
        c.holds_or(
            format!("conform: {} runs clean", a.name),
            match r {
                Ok(()) if x.corrupt_blocks == 0 && x.bad_sizes == 0 && x.check_failures == 0 && x.allocs > 0 => Ok(()),
                Ok(()) => Err(format!("allocs {} corrupt {} bad sizes {} checker {}", x.allocs, x.corrupt_blocks, x.bad_sizes, x.check_failures)),
                Err(e) => Err(format!(
                    "{e}: corrupt {} bad sizes {} checker {}",
                    x.corrupt_blocks, x.bad_sizes, x.check_failures
                )),
            },
        );
    }
    dev.shrink()?;
    c.holds("conform: failed and finished runs changed nothing", snapshot(dev)? == before);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_errnos() {
        let e = Errno { cmd: uapi::cmd::free(), errno: libc::EINVAL };
        assert_eq!(Err::<(), _>(e).outcome(), "EINVAL");
        assert_eq!(Ok::<_, Errno>(5).outcome(), "success");
        assert_eq!(Err::<(), _>(io::Error::from_raw_os_error(libc::EUCLEAN)).outcome(), "EUCLEAN");
        assert_eq!(Err::<(), _>(Errno { cmd: 0, errno: 4095 }).outcome(), "errno 4095");
    }

    #[test]
    fn cases_record_deviations() {
        let mut c = Cases::default();
        c.check("a", "EINVAL", Err::<(), _>(Errno { cmd: 0, errno: libc::ENOENT }));
        c.check("b", "success", Ok::<(), Errno>(()));
        c.holds("c", false);
        c.holds_or("d", Err("2 pages left".into()));
        let ok: Vec<bool> = c.v.iter().map(|c| c.ok).collect();
        assert_eq!(ok, [false, true, false, false]);
        assert_eq!(c.v[0].got, "ENOENT");
        assert_eq!(c.v[3].got, "violated: 2 pages left");
    }

    #[test]
    fn sizes_outside_a_range() {
        let t = table::synthetic::table();
        assert_eq!(outside(&t[0]), [("min_bytes - 1", 0), ("max_bytes + 1", (4 << 20) + 1)]);
        let mut a = t[0].clone();
        a.max_bytes = u64::MAX;
        a.min_bytes = 0;
        assert!(outside(&a).is_empty());
    }
}
