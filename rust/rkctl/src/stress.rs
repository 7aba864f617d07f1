//! `rkctl stress`: threads run a random mix of allocations through
//! `/dev/rkalloc`, fill every allocation with a pattern, verify it before
//! freeing it in random order, and report ops/s and every error.
use crate::device::Device;
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    io,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

/// What one stress run does.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub ops: u64,
    pub duration: Option<Duration>,
    pub seed: u64,
    pub allocators: Vec<Kind>,
    pub max_live: usize,
    pub max_order: u32,
    pub progress: bool,
}

/// The allocators `stress` can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Pool blocks of random order.
    Pool,
    /// Blocks of mixed sizes from a heap of a random policy per thread,
    /// which is now and then reset or destroyed (and made anew).
    Heap,
    /// Arena allocations of mixed sizes and alignments, reset now and then.
    Arena,
    /// Objects of a slab cache of random size (8..2048, sometimes with
    /// debug flags) per thread, allocated in batches; now and then all are
    /// freed in one batch and the cache is destroyed (and made anew).
    Object,
    /// `rk_malloc` of random sizes (1..16384), the size classes and the
    /// pool behind them.
    Malloc,
}

/// A thread's heap and arena.
#[derive(Default)]
struct Ctx {
    /// The thread's heap, made on the first heap allocation.
    heap: Option<u64>,
    /// Arena allocations since the last reset: what the next one reclaims.
    arena_allocs: u64,
    /// The thread's slab cache, made on the first object allocation.
    cache: Option<u64>,
    /// Objects of the last batch not handed out yet.
    objects: Vec<u64>,
}

/// A heap request: mostly small, some medium, a few large.
fn mixed_size(rng: &mut SmallRng) -> u64 {
    match rng.gen_range(0..100) {
        0..=69 => rng.gen_range(1..=256),
        70..=94 => rng.gen_range(257..=8192),
        _ => rng.gen_range(8193..=128 << 10),
    }
}

/// Per-allocator results.
#[derive(Default, Debug, Serialize, Clone)]
pub struct PerKind {
    pub allocs: u64,
    pub frees: u64,
    pub bytes_verified: u64,
    pub enomem: u64,
    pub ops_per_sec: f64,
}

/// The run's summary.
#[derive(Default, Debug, Serialize)]
pub struct Summary {
    pub threads: usize,
    pub seed: u64,
    pub seconds: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub corruptions: u64,
    pub unexpected_errors: u64,
    pub errors: Vec<String>,
    pub check_ok: bool,
    pub per_allocator: BTreeMap<String, PerKind>,
}

struct Live {
    kind: Kind,
    handle: u64,
    pattern: u32,
}

#[derive(Default)]
struct ThreadResult {
    per: BTreeMap<Kind, PerKind>,
    ops: u64,
    corruptions: u64,
    errors: Vec<String>,
}

fn alloc(dev: &Device, kind: Kind, rng: &mut SmallRng, max_order: u32, ctx: &mut Ctx) -> io::Result<u64> {
    match kind {
        Kind::Pool => {
            // Small orders most of the time, as real users do.
            let order = if rng.gen_bool(0.8) { rng.gen_range(0..=max_order.min(3)) } else { rng.gen_range(0..=max_order) };
            dev.pool_alloc(order)
        }
        Kind::Heap => {
            let heap = match ctx.heap {
                Some(h) => h,
                None => {
                    let flags = if rng.gen_bool(0.25) { crate::uapi::RKALLOC_HEAP_DEBUG } else { 0 };
                    let h = dev.heap_create(rng.gen_range(0..4), flags, 0)?;
                    ctx.heap = Some(h);
                    h
                }
            };
            dev.heap_alloc(heap, mixed_size(rng))
        }
        Kind::Arena => {
            let align = if rng.gen_bool(0.5) { 0 } else { 1 << rng.gen_range(0..=12) };
            let h = dev.arena_alloc(rng.gen_range(1..=4096), align)?;
            ctx.arena_allocs += 1;
            Ok(h)
        }
        Kind::Object => {
            if ctx.objects.is_empty() {
                let cache = match ctx.cache {
                    Some(c) => c,
                    None => {
                        let flags = if rng.gen_bool(0.25) { rng.gen_range(1..=7) } else { 0 };
                        let align = if rng.gen_bool(0.5) { 0 } else { 1 << rng.gen_range(3..=7) };
                        let c = dev.cache_create("stress", rng.gen_range(8..=2048), align, flags)?;
                        ctx.cache = Some(c);
                        c
                    }
                };
                ctx.objects = dev.obj_alloc(cache, rng.gen_range(1..=32))?;
            }
            ctx.objects.pop().ok_or_else(|| io::Error::from_raw_os_error(libc::EIO))
        }
        Kind::Malloc => {
            let bytes = match rng.gen_range(0..100) {
                0..=79 => rng.gen_range(1..=512),
                80..=94 => rng.gen_range(513..=8192),
                _ => rng.gen_range(8193..=16384),
            };
            dev.malloc(bytes)
        }
    }
}

/// Frees the thread's batched objects not handed out yet and destroys its
/// cache, which must succeed: no object of it is live any more.
fn drop_cache(dev: &Device, ctx: &mut Ctx, r: &mut ThreadResult, err: &mut impl FnMut(&mut ThreadResult, String)) {
    if !ctx.objects.is_empty() {
        if let Err(e) = dev.obj_free(&ctx.objects) {
            err(r, format!("free unused objects: {e}"));
        }
        ctx.objects.clear();
    }
    if let Some(c) = ctx.cache.take() {
        if let Err(e) = dev.cache_destroy(c) {
            err(r, format!("destroy cache: {e}"));
        }
    }
}

/// Now and then the thread resets its arena or heap (or destroys the heap):
/// the live allocations of that kind are verified first, and afterwards one
/// of their handles must be stale (EINVAL).
fn reset(dev: &Device, kind: Kind, rng: &mut SmallRng, ctx: &mut Ctx, live: &mut Vec<Live>, r: &mut ThreadResult, err: &mut impl FnMut(&mut ThreadResult, String)) {
    let mut dropped = Vec::new();
    live.retain(|l| {
        if l.kind == kind {
            dropped.push((l.handle, l.pattern));
        }
        l.kind != kind
    });
    for &(handle, pattern) in &dropped {
        verify_one(dev, kind, handle, pattern, r, err);
    }
    let done = match kind {
        Kind::Arena => dev.arena_reset().map(|(_, allocs)| {
            if allocs != ctx.arena_allocs {
                err(r, format!("arena reset reclaimed {allocs} allocations, expected {}", ctx.arena_allocs));
            }
            r.per.entry(kind).or_default().frees += allocs;
            ctx.arena_allocs = 0;
        }),
        Kind::Heap => match ctx.heap {
            Some(h) if rng.gen_bool(0.3) => {
                ctx.heap = None;
                dev.heap_destroy(h)
            }
            Some(h) => dev.heap_reset(h),
            None => Ok(()),
        }
        .map(|()| r.per.entry(kind).or_default().frees += dropped.len() as u64),
        Kind::Object => {
            let handles: Vec<u64> = dropped.iter().map(|&(h, _)| h).collect();
            let freed = handles.chunks(4096).try_for_each(|c| dev.obj_free(c));
            if freed.is_ok() {
                r.per.entry(kind).or_default().frees += dropped.len() as u64;
                drop_cache(dev, ctx, r, err);
            }
            freed
        }
        Kind::Pool | Kind::Malloc => Ok(()),
    };
    if let Err(e) = done {
        err(r, format!("reset {kind:?}: {e}"));
    }
    if let Some(&(handle, pattern)) = dropped.first() {
        match dev.verify(handle, pattern) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => err(r, format!("{kind:?} handle after reset: expected EINVAL, got {other:?}")),
        }
    }
}

fn verify_one(dev: &Device, kind: Kind, handle: u64, pattern: u32, r: &mut ThreadResult, err: &mut impl FnMut(&mut ThreadResult, String)) {
    match dev.verify(handle, pattern) {
        Ok((bytes, 0)) => r.per.entry(kind).or_default().bytes_verified += bytes,
        Ok((_, bad)) => {
            r.corruptions += 1;
            err(r, format!("{kind:?} allocation corrupted: {bad} bytes differ"));
        }
        Err(e) => err(r, format!("verify {kind:?}: {e}")),
    }
}

fn run_thread(path: &Path, cfg: &Config, id: usize, deadline: Option<Instant>, bar: &ProgressBar) -> Result<ThreadResult> {
    let dev = Device::open(path)?;
    let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_add(id as u64 * 0x9e37_79b9));
    let mut live: Vec<Live> = Vec::new();
    let mut r = ThreadResult::default();
    let mut ctx = Ctx::default();
    let resettable: Vec<Kind> = cfg.allocators.iter().copied().filter(|k| matches!(k, Kind::Heap | Kind::Arena | Kind::Object)).collect();
    let per_thread = cfg.ops / cfg.threads as u64;
    let mut err = |r: &mut ThreadResult, what: String| {
        if r.errors.len() < 20 {
            r.errors.push(what);
        }
    };
    loop {
        if deadline.map_or(r.ops >= per_thread, |d| Instant::now() >= d) {
            break;
        }
        r.ops += 1;
        if r.ops % 256 == 0 {
            bar.inc(256);
        }
        if !resettable.is_empty() && rng.gen_ratio(1, 256) {
            let kind = resettable[rng.gen_range(0..resettable.len())];
            reset(&dev, kind, &mut rng, &mut ctx, &mut live, &mut r, &mut err);
            continue;
        }
        let do_alloc = live.is_empty() || (live.len() < cfg.max_live && rng.gen_bool(0.55));
        if do_alloc {
            let kind = cfg.allocators[rng.gen_range(0..cfg.allocators.len())];
            match alloc(&dev, kind, &mut rng, cfg.max_order, &mut ctx) {
                Ok(handle) => {
                    let pattern: u32 = rng.gen();
                    if let Err(e) = dev.fill(handle, pattern) {
                        err(&mut r, format!("fill {kind:?}: {e}"));
                    }
                    r.per.entry(kind).or_default().allocs += 1;
                    live.push(Live { kind, handle, pattern });
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => r.per.entry(kind).or_default().enomem += 1,
                Err(e) => err(&mut r, format!("alloc {kind:?}: {e}")),
            }
        } else {
            let l = live.swap_remove(rng.gen_range(0..live.len()));
            free_one(&dev, &l, &mut r, &mut err);
        }
    }
    for l in live.drain(..) {
        free_one(&dev, &l, &mut r, &mut err);
    }
    if ctx.arena_allocs != 0 {
        reset(&dev, Kind::Arena, &mut rng, &mut ctx, &mut live, &mut r, &mut err);
    }
    if let Some(h) = ctx.heap.take() {
        if let Err(e) = dev.heap_destroy(h) {
            err(&mut r, format!("destroy heap: {e}"));
        }
    }
    drop_cache(&dev, &mut ctx, &mut r, &mut err);
    Ok(r)
}

fn free_one(dev: &Device, l: &Live, r: &mut ThreadResult, err: &mut impl FnMut(&mut ThreadResult, String)) {
    verify_one(dev, l.kind, l.handle, l.pattern, r, err);
    if l.kind == Kind::Arena {
        // Arena allocations end only with the arena's reset.
        return;
    }
    match dev.free(l.handle) {
        Ok(()) => r.per.entry(l.kind).or_default().frees += 1,
        Err(e) => err(r, format!("free {:?}: {e}", l.kind)),
    }
}

/// Runs the stress test.
pub fn run(path: &Path, cfg: Config) -> Result<Summary> {
    if cfg.threads == 0 || cfg.allocators.is_empty() {
        bail!("stress needs at least one thread and one allocator");
    }
    let bar = if cfg.progress && cfg.duration.is_none() {
        ProgressBar::with_draw_target(Some(cfg.ops), ProgressDrawTarget::stderr_with_hz(4))
    } else if cfg.progress {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} stress [{elapsed_precise}] {bar:30} {pos}/{len} ops {per_sec}").unwrap());
    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let start = Instant::now();
    let cfg = Arc::new(cfg);
    let results: Vec<Result<ThreadResult>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..cfg.threads)
            .map(|id| {
                let cfg = cfg.clone();
                let bar = bar.clone();
                s.spawn(move || run_thread(path, &cfg, id, deadline, &bar))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("stress thread panicked")).collect()
    });
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mut sum = Summary { threads: cfg.threads, seed: cfg.seed, seconds: secs, ..Default::default() };
    for r in results {
        let r = r?;
        sum.ops += r.ops;
        sum.corruptions += r.corruptions;
        sum.unexpected_errors += r.errors.len() as u64 - r.corruptions.min(r.errors.len() as u64);
        sum.errors.extend(r.errors);
        for (k, v) in r.per {
            let e = sum.per_allocator.entry(format!("{k:?}").to_lowercase()).or_default();
            e.allocs += v.allocs;
            e.frees += v.frees;
            e.bytes_verified += v.bytes_verified;
            e.enomem += v.enomem;
        }
    }
    for v in sum.per_allocator.values_mut() {
        v.ops_per_sec = (v.allocs + v.frees) as f64 / secs;
    }
    sum.ops_per_sec = sum.ops as f64 / secs;
    sum.check_ok = Device::open(path)?.check().is_ok();
    Ok(sum)
}
