//! `rkctl errors`: exercises every documented error path of the UAPI and
//! checks the errno, and that the failed call changed nothing.
use crate::{device::Device, uapi};
use anyhow::Result;
use serde::Serialize;
use std::{io, path::Path};

#[derive(Serialize)]
pub struct Case {
    pub name: &'static str,
    pub expected: &'static str,
    pub got: String,
    pub ok: bool,
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ENOTTY => "ENOTTY",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::EFAULT => "EFAULT",
        libc::ENOMEM => "ENOMEM",
        libc::E2BIG => "E2BIG",
        libc::EUCLEAN => "EUCLEAN",
        libc::EBUSY => "EBUSY",
        _ => "other",
    }
}

fn outcome(r: io::Result<()>) -> String {
    match r {
        Ok(()) => "success".into(),
        Err(e) => errno_name(e.raw_os_error().unwrap_or(0)).into(),
    }
}

/// A raw ioctl with an arbitrary command and argument pointer.
fn raw(dev: &Device, cmd: u32, arg: usize) -> io::Result<()> {
    // SAFETY: the kernel validates `arg`; a bad pointer yields EFAULT, which
    // is what some cases test. No memory of ours is written unless `arg`
    // points at a live struct of the command's size.
    let rc = unsafe { libc::ioctl(dev.raw_fd(), cmd as _, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
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

pub fn run(path: &Path) -> Result<Vec<Case>> {
    let dev = Device::open(path)?;
    let other = Device::open(path)?;
    let mut cases = Vec::new();
    let mut case = |name, expected: &'static str, r: io::Result<()>| {
        let got = outcome(r);
        cases.push(Case { name, ok: got == expected, expected, got });
    };

    let h = dev.pool_alloc(0)?;
    let before = snapshot(&dev)?;

    // Unknown command: a number in our magic the header does not define.
    let unknown = (3u32 << 30) | (8 << 16) | (uapi::RKALLOC_IOC_MAGIC << 8) | 0x7f;
    let mut buf = [0u64; 1];
    case("unknown command", "ENOTTY", raw(&dev, unknown, buf.as_mut_ptr() as usize));

    let mut info = uapi::rkalloc_info { size: 4, ..Default::default() };
    case("wrong size field", "EINVAL", raw(&dev, uapi::cmd::info(), &mut info as *mut _ as usize));
    case("bad user pointer", "EFAULT", raw(&dev, uapi::cmd::info(), 0x10));

    let mut fr = uapi::rkalloc_free { handle: h, reserved: 1, ..Default::default() };
    fr.size = std::mem::size_of_val(&fr) as u32;
    case("non-zero reserved field", "EINVAL", raw(&dev, uapi::cmd::free(), &mut fr as *mut _ as usize));

    case("order above max", "EINVAL", dev.pool_alloc(11).map(|_| ()));
    case("order far above max", "EINVAL", dev.pool_alloc(u32::MAX).map(|_| ()));
    case("another fd's handle", "EINVAL", other.free(h));
    case("unknown handle (unused index)", "ENOENT", dev.free(h + (1000 << 16)));
    case("verify of unknown handle", "ENOENT", dev.verify(h + (77 << 16), 1).map(|_| ()));
    let after = snapshot(&dev)?;
    case("failed calls changed nothing", "success", if before == after { Ok(()) } else { Err(io::Error::from_raw_os_error(libc::EIO)) });

    case("free", "success", dev.free(h));
    case("double free", "EINVAL", dev.free(h));
    case("verify after free", "EINVAL", dev.verify(h, 1).map(|_| ()));
    crate::heapcmd::error_cases(&dev, &other, &mut case)?;
    slab_cases(&dev, &other, &mut case)?;
    list_cases(&dev, &other, &mut case)?;
    crate::replay::error_cases(&dev, &mut case)?;
    bench_cases(&dev, &mut case)?;

    // The per-fd cap: fill it with top-order blocks until ENOMEM.
    let cap = dev.info()?.fd_cap_bytes;
    let mut held = Vec::new();
    let mut last = Ok(());
    for _ in 0..=(cap >> 22) + 1 {
        match dev.pool_alloc(10) {
            Ok(h) => held.push(h),
            Err(e) => {
                last = Err(e);
                break;
            }
        }
    }
    case("allocation beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    case(
        "cap honoured",
        "success",
        if i.fd_bytes <= cap && i.fd_bytes + (4 << 20) > cap { Ok(()) } else { Err(io::Error::from_raw_os_error(libc::EIO)) },
    );
    case("other fds unaffected by the cap", "success", other.pool_alloc(0).map(|_| ()));
    crate::heapcmd::cap_cases(&dev, cap, &mut held, &mut case)?;
    for h in held {
        dev.free(h)?;
    }
    case("invariants hold", "success", dev.check());
    Ok(cases)
}

/// `RKALLOC_IOC_LIST` error paths: a bad size or reserved field, an
/// unwritable entry array; and max 0 only counts.
fn list_cases(dev: &Device, other: &Device, case: &mut dyn FnMut(&'static str, &'static str, io::Result<()>)) -> Result<()> {
    let eio = || Err(io::Error::from_raw_os_error(libc::EIO));
    let total = dev.list()?.len() as u32;
    let mut l = uapi::rkalloc_list { size: 8, ..Default::default() };
    case("list: wrong size field", "EINVAL", raw(dev, uapi::cmd::list(), &mut l as *mut _ as usize));
    let mut l = uapi::rkalloc_list { reserved: 1, count: 77, ..Default::default() };
    case("list: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::list(), &mut l));
    case("list: count untouched on failure", "success", if l.count == 77 { Ok(()) } else { eio() });
    let mut l = uapi::rkalloc_list { max: 4, entries: 0x10, ..Default::default() };
    case("list: unwritable entry array", "EFAULT", dev.ioctl(uapi::cmd::list(), &mut l));
    let mut l = uapi::rkalloc_list { max: 0, entries: 0x10, ..Default::default() };
    case("list: max 0 only counts", "success", dev.ioctl(uapi::cmd::list(), &mut l));
    case("list: count of max 0 is the total", "success", if l.count == total && total >= 13 { Ok(()) } else { eio() });
    let mut one = [uapi::rkalloc_list_entry::default(); 2];
    let mut l = uapi::rkalloc_list { max: 1, entries: one.as_mut_ptr() as u64, ..Default::default() };
    let r = dev.ioctl(uapi::cmd::list(), &mut l);
    let ok = r.is_ok() && l.count == total && one[0].kind == uapi::RKALLOC_KIND_CACHE && one[1].kind == 0;
    case("list: writes at most max entries", "success", if ok { Ok(()) } else { eio() });
    // An fd's own cache and heap carry its handles; another fd sees 0.
    let cache = dev.cache_create("rkctl-list", 40, 0, 0)?;
    let heap = dev.heap_create(uapi::RKALLOC_POLICY_BEST_FIT, 0, 0)?;
    let mine = dev.list()?;
    let theirs = other.list()?;
    let named = |v: &[uapi::rkalloc_list_entry], h: u64| v.iter().filter(|e| e.handle == h).count();
    let cache_ok = mine.iter().any(|e| e.handle == cache && e.kind == uapi::RKALLOC_KIND_CACHE && e.obj_size == 40);
    let heap_ok = mine.iter().any(|e| e.handle == heap && e.kind == uapi::RKALLOC_KIND_HEAP && e.policy == uapi::RKALLOC_POLICY_BEST_FIT && e.bytes == 64 << 10);
    case("list: own cache and heap by handle", "success", if cache_ok && heap_ok && named(&mine, cache) == 1 { Ok(()) } else { eio() });
    let hidden = theirs.len() == mine.len() && named(&theirs, cache) == 0 && named(&theirs, heap) == 0;
    case("list: another fd's cache and heap without handle", "success", if hidden { Ok(()) } else { eio() });
    dev.cache_destroy(cache)?;
    dev.heap_destroy(heap)?;
    case("list: destroyed ones are gone", "success", if dev.list()?.len() as u32 == total { Ok(()) } else { eio() });
    Ok(())
}

/// Slab cache, object batch and `rk_malloc` error paths: every bad input
/// returns its errno and changes nothing.
fn slab_cases(dev: &Device, other: &Device, case: &mut dyn FnMut(&'static str, &'static str, io::Result<()>)) -> Result<()> {
    let eio = || Err(io::Error::from_raw_os_error(libc::EIO));
    let nr_caches = |d: &Device| d.info().map(|i| i.nr_caches).unwrap_or(u32::MAX);
    let caches = nr_caches(dev);
    let create = |size, align, flags| dev.cache_create("rkctl-errors", size, align, flags).map(|_| ());
    case("cache: object size 0", "EINVAL", create(0, 0, 0));
    case("cache: object size above 8192", "EINVAL", create(8193, 0, 0));
    case("cache: object size far too big", "EINVAL", create(u32::MAX, 0, 0));
    case("cache: alignment not a power of two", "EINVAL", create(64, 24, 0));
    case("cache: alignment above a page", "EINVAL", create(64, 8192, 0));
    case("cache: unknown flag", "EINVAL", create(64, 0, 8));
    case("cache: empty name", "EINVAL", dev.cache_create("", 64, 0, 0).map(|_| ()));
    case("cache: name with a space", "EINVAL", dev.cache_create("a b", 64, 0, 0).map(|_| ()));
    let mut cc = uapi::rkalloc_cache_create { obj_size: 64, ..Default::default() };
    cc.name.fill(b'a' as _);
    case("cache: name without NUL", "EINVAL", dev.ioctl(uapi::cmd::cache_create(), &mut cc));
    case("cache: failed creates made no cache", "success", if nr_caches(dev) == caches { Ok(()) } else { eio() });

    let cache = dev.cache_create("rkctl-errors", 100, 0, uapi::RKALLOC_CACHE_DEBUG_CHECKS)?;
    case("cache: created", "success", if nr_caches(dev) == caches + 1 { Ok(()) } else { eio() });
    let pool = dev.pool_alloc(0)?;
    let before = snapshot(dev)?;
    case("objects: count 0", "EINVAL", dev.obj_alloc(cache, 0).map(|_| ()));
    case("objects: count above the batch maximum", "E2BIG", dev.obj_alloc(cache, uapi::RKALLOC_MAX_BATCH + 1).map(|_| ()));
    case("objects: from a pool handle", "EINVAL", dev.obj_alloc(pool, 1).map(|_| ()));
    case("objects: from an unknown cache", "ENOENT", dev.obj_alloc(cache + (999 << 16), 1).map(|_| ()));
    case("objects: from another fd's cache", "EINVAL", other.obj_alloc(cache, 1).map(|_| ()));
    let mut b = uapi::rkalloc_batch { count: 8, cache, handles: 0x10, ..Default::default() };
    case("objects: unwritable handle array", "EFAULT", dev.ioctl(uapi::cmd::obj_alloc(), &mut b));
    case("objects: failed batches changed nothing", "success", if snapshot(dev)? == before { Ok(()) } else { eio() });

    let objs = dev.obj_alloc(cache, 3)?;
    for (i, &o) in objs.iter().enumerate() {
        dev.fill(o, i as u32)?;
    }
    case("objects: three allocated", "success", if objs.len() == 3 && dev.verify(objs[2], 2)? == (100, 0) { Ok(()) } else { eio() });
    case("cache: destroy with live objects", "EBUSY", dev.cache_destroy(cache));
    case("cache: free of a cache handle", "EINVAL", dev.free(cache));
    case("cache: fill of a cache handle", "EINVAL", dev.fill(cache, 1).map(|_| ()));
    let before = snapshot(dev)?;
    case("objects: free count 0", "EINVAL", dev.obj_free(&[]));
    case("objects: free count above the maximum", "E2BIG", dev.obj_free(&vec![objs[0]; uapi::RKALLOC_MAX_BATCH as usize + 1]));
    case("objects: free with one unknown handle", "ENOENT", dev.obj_free(&[objs[0], objs[1] + (999 << 16)]));
    case("objects: free with a pool handle", "EINVAL", dev.obj_free(&[objs[0], pool]));
    case("objects: free with the cache's handle", "EINVAL", dev.obj_free(&[cache, objs[0]]));
    case("objects: free with a handle twice", "EINVAL", dev.obj_free(&[objs[0], objs[1], objs[0]]));
    case("objects: free from another fd", "EINVAL", other.obj_free(&objs));
    let mut b = uapi::rkalloc_batch { count: 2, handles: 0x10, ..Default::default() };
    case("objects: unreadable handle array", "EFAULT", dev.ioctl(uapi::cmd::obj_free(), &mut b));
    let intact = objs.iter().enumerate().all(|(i, &o)| dev.verify(o, i as u32).map(|v| v == (100, 0)).unwrap_or(false));
    case("objects: failed frees freed nothing", "success", if intact && snapshot(dev)? == before { Ok(()) } else { eio() });
    case("objects: free one", "success", dev.free(objs[2]));
    case("objects: double free", "EINVAL", dev.free(objs[2]));
    case("objects: batch free with a freed handle", "EINVAL", dev.obj_free(&objs));
    case("objects: batch free the rest", "success", dev.obj_free(&objs[..2]));
    case("objects: verify after batch free", "EINVAL", dev.verify(objs[0], 0).map(|_| ()));
    case("cache: destroy", "success", dev.cache_destroy(cache));
    case("cache: destroy again", "EINVAL", dev.cache_destroy(cache));
    case("objects: from a destroyed cache", "EINVAL", dev.obj_alloc(cache, 1).map(|_| ()));
    case("cache: destroyed cache is gone", "success", if nr_caches(dev) == caches { Ok(()) } else { eio() });
    dev.free(pool)?;

    let before = snapshot(dev)?;
    case("malloc: 0 bytes", "EINVAL", dev.malloc(0).map(|_| ()));
    case("malloc: above RKALLOC_MAX_MALLOC", "EINVAL", dev.malloc(uapi::RKALLOC_MAX_MALLOC as u64 + 1).map(|_| ()));
    case("malloc: far too big", "EINVAL", dev.malloc(u64::MAX).map(|_| ()));
    let mut m = uapi::rkalloc_malloc { bytes: 64, reserved: 1, ..Default::default() };
    case("malloc: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::malloc(), &mut m));
    case("malloc: failed calls changed nothing", "success", if snapshot(dev)? == before { Ok(()) } else { eio() });
    for bytes in [1, 100, 8192, 8193, uapi::RKALLOC_MAX_MALLOC as u64] {
        let h = dev.malloc(bytes)?;
        dev.fill(h, 7)?;
        case("malloc: the requested bytes are usable", "success", if dev.verify(h, 7)? == (bytes, 0) { Ok(()) } else { eio() });
        case("malloc: free", "success", dev.free(h));
        case("malloc: double free", "EINVAL", dev.free(h));
    }
    case("malloc: everything given back", "success", if snapshot(dev)?.0 == before.0 { Ok(()) } else { eio() });
    Ok(())
}

/// `RKALLOC_IOC_BENCH` error paths, and an arena run that gives every page
/// back: a bad allocator, pattern or count is EINVAL and runs nothing; the
/// arena serves pairs and batches but no per-object lifetimes.
fn bench_cases(dev: &Device, case: &mut dyn FnMut(&'static str, &'static str, io::Result<()>)) -> Result<()> {
    let bench = |allocator, pattern, batch| {
        let mut a = uapi::rkalloc_bench { allocator, pattern, batch, bytes: 64, ops: 256, samples: 2, ..Default::default() };
        dev.bench(&mut a).map(|()| a)
    };
    let ok = |r: io::Result<uapi::rkalloc_bench>| r.map(|_| ());
    let before = snapshot(dev)?;
    let (kmalloc, arena) = (uapi::RKALLOC_ALLOC_KMALLOC, uapi::RKALLOC_ALLOC_RK_ARENA);
    case("bench: unknown allocator", "EINVAL", ok(bench(uapi::RKALLOC_NR_ALLOCATORS, uapi::RKALLOC_BENCH_PAIR, 1)));
    case("bench: unknown pattern", "EINVAL", ok(bench(kmalloc, uapi::RKALLOC_BENCH_CROSS_CPU + 1, 16)));
    case("bench: batch above the maximum", "EINVAL", ok(bench(kmalloc, uapi::RKALLOC_BENCH_BATCH, uapi::RKALLOC_MAX_BATCH + 1)));
    let mut a = uapi::rkalloc_bench { allocator: kmalloc, bytes: 64, ops: 256, samples: 0, ..Default::default() };
    case("bench: zero samples", "EINVAL", dev.bench(&mut a));
    case("bench: arena with random lifetimes", "EINVAL", ok(bench(arena, uapi::RKALLOC_BENCH_RANDOM_LIFE, 64)));
    case("bench: arena across CPUs", "EINVAL", ok(bench(arena, uapi::RKALLOC_BENCH_CROSS_CPU, 64)));
    let timed = |r: io::Result<uapi::rkalloc_bench>| match r {
        Ok(a) if a.failures == 0 && a.mean_ps > 0 && a.p50_ps <= a.p99_ps => Ok(()),
        Ok(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
        Err(e) => Err(e),
    };
    case("bench: arena pairs", "success", timed(bench(arena, uapi::RKALLOC_BENCH_PAIR, 1)));
    case("bench: arena batches", "success", timed(bench(arena, uapi::RKALLOC_BENCH_BATCH, 1024)));
    let after = snapshot(dev)?;
    case(
        "bench: every page back after the runs",
        "success",
        if before == after { Ok(()) } else { Err(io::Error::from_raw_os_error(libc::EIO)) },
    );
    Ok(())
}
