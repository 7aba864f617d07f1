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

fn alloc(dev: &Device, kind: Kind, rng: &mut SmallRng, max_order: u32) -> io::Result<u64> {
    match kind {
        Kind::Pool => {
            // Small orders most of the time, as real users do.
            let order = if rng.gen_bool(0.8) { rng.gen_range(0..=max_order.min(3)) } else { rng.gen_range(0..=max_order) };
            dev.pool_alloc(order)
        }
    }
}

fn run_thread(path: &Path, cfg: &Config, id: usize, deadline: Option<Instant>, bar: &ProgressBar) -> Result<ThreadResult> {
    let dev = Device::open(path)?;
    let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_add(id as u64 * 0x9e37_79b9));
    let mut live: Vec<Live> = Vec::new();
    let mut r = ThreadResult::default();
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
        let do_alloc = live.is_empty() || (live.len() < cfg.max_live && rng.gen_bool(0.55));
        if do_alloc {
            let kind = cfg.allocators[rng.gen_range(0..cfg.allocators.len())];
            match alloc(&dev, kind, &mut rng, cfg.max_order) {
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
    Ok(r)
}

fn free_one(dev: &Device, l: &Live, r: &mut ThreadResult, err: &mut impl FnMut(&mut ThreadResult, String)) {
    match dev.verify(l.handle, l.pattern) {
        Ok((bytes, 0)) => r.per.entry(l.kind).or_default().bytes_verified += bytes,
        Ok((_, bad)) => {
            r.corruptions += 1;
            err(r, format!("{:?} allocation corrupted: {bad} bytes differ", l.kind));
        }
        Err(e) => err(r, format!("verify {:?}: {e}", l.kind)),
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
