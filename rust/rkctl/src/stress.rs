//! `rkctl stress`: threads run a random mix of allocations through
//! `/dev/rkalloc`, fill every allocation with a pattern, verify it before
//! freeing it in random order, and report ops/s and every error.
//!
//! Two kinds of work share the threads:
//!
//! - the handle ioctls, by [`Kind`]: pool blocks, slab objects, `rk_malloc`,
//!   heap blocks (heaps of every policy the module has, picked from
//!   `0..nr_policies`) and arena allocations, each filled and verified from
//!   userspace;
//! - conformance runs (`RKALLOC_IOC_CONFORM`) of the module's allocators,
//!   every allocator of its table by default: the kernel allocates random
//!   sizes, fills and verifies every block, asks for sizes the allocator
//!   must refuse, and runs its checker. A conformance step counts as one
//!   op, and conformance takes the share of one kind of the run's ops
//!   (all of them when no kind is chosen), in runs of `--conform-ops`
//!   steps on the next allocator in turn (threads start at different
//!   places); so the kernel-side steps grow with `--ops` or `--duration`.
//!   An allocator no thread reached is run once at the end, so every
//!   allocator of the table gets a run.
//!
//! Any corruption (a verify mismatch, EUCLEAN, a conformance count) or
//! errno the command does not expect fails the run.
use crate::{
    device::{Device, Errno, KResult},
    error,
    table::{self, Allocator},
    uapi,
};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

/// The handle ioctls `stress` can drive.
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

/// What `--alloc` names: a kind of handle ioctl, or conformance runs of
/// every allocator of the table (`conform`) or of one (`conform:NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Kind(Kind),
    Conform(Option<String>),
}

/// Parses one `--alloc` value.
pub fn parse_target(s: &str) -> Result<Target, String> {
    if s == "conform" {
        return Ok(Target::Conform(None));
    }
    if let Some(name) = s.strip_prefix("conform:") {
        return if name.is_empty() { Err("conform: needs an allocator name, e.g. conform:rk_pool".into()) } else { Ok(Target::Conform(Some(name.into()))) };
    }
    <Kind as clap::ValueEnum>::from_str(s, false).map(Target::Kind).map_err(|_| {
        format!("{s:?} is neither a kind (pool, heap, arena, object, malloc) nor conform or conform:NAME (NAME: an allocator of `rkctl allocators`)")
    })
}

/// The kinds and the allocators to conform-test that `targets` name,
/// against the module's table; every kind and every allocator when
/// `targets` is empty.
pub fn resolve(targets: &[Target], t: &[Allocator]) -> Result<(Vec<Kind>, Vec<Allocator>)> {
    if targets.is_empty() {
        return Ok((<Kind as clap::ValueEnum>::value_variants().to_vec(), t.to_vec()));
    }
    let mut kinds = Vec::new();
    let mut names = Vec::new();
    let mut all = false;
    for x in targets {
        match x {
            Target::Kind(k) if !kinds.contains(k) => kinds.push(*k),
            Target::Kind(_) => {}
            Target::Conform(None) => all = true,
            Target::Conform(Some(n)) if !names.contains(n) => names.push(n.clone()),
            Target::Conform(Some(_)) => {}
        }
    }
    // Names are checked even when `conform` takes them all.
    let named: Vec<Allocator> = if names.is_empty() { Vec::new() } else { table::select(t, &names)?.into_iter().cloned().collect() };
    let conform = if all { t.to_vec() } else { named };
    Ok((kinds, conform))
}

/// What one stress run does.
#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub ops: u64,
    pub duration: Option<Duration>,
    pub seed: u64,
    /// What `--alloc` named (empty: everything).
    pub targets: Vec<Target>,
    pub max_live: usize,
    pub max_order: u32,
    /// Steps of each conformance run (the last of a thread may be shorter).
    pub conform_ops: u64,
    pub progress: bool,
    /// Each worker thread sets its own `/proc/thread-self/make-it-fail`,
    /// so that task-filtered fault injection (failslab, fail_page_alloc,
    /// rkalloc's fail points with `task-filter`) fails the workers' kernel
    /// calls and nothing else: not the main thread, which sets up, checks
    /// and reports.
    pub make_it_fail: bool,
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
    /// The next conformance target, an index into the run's list.
    next_conform: usize,
}

/// A heap request: mostly small, some medium, a few large.
fn mixed_size(rng: &mut SmallRng) -> u64 {
    match rng.gen_range(0..100) {
        0..=69 => rng.gen_range(1..=256),
        70..=94 => rng.gen_range(257..=8192),
        _ => rng.gen_range(8193..=128 << 10),
    }
}

/// A heap policy: any of the module's `nr_policies`, so a policy the module
/// adds is stressed too.
pub fn heap_policy(rng: &mut SmallRng, nr_policies: u32) -> u32 {
    rng.gen_range(0..nr_policies)
}

/// Per-kind results.
#[derive(Default, Debug, Serialize, Clone, PartialEq)]
pub struct PerKind {
    pub allocs: u64,
    pub frees: u64,
    pub bytes_verified: u64,
    pub enomem: u64,
    pub ops_per_sec: f64,
}

/// Per-allocator conformance results, summed over its runs.
#[derive(Default, Debug, Serialize, Clone, PartialEq)]
pub struct ConformStats {
    pub runs: u64,
    pub steps: u64,
    pub allocs: u64,
    pub frees: u64,
    /// Allocations the allocator refused for want of memory.
    pub failures: u64,
    pub corrupt_blocks: u64,
    pub bad_sizes: u64,
    pub check_failures: u64,
    /// Runs refused with ENOMEM.
    pub enomem: u64,
}

impl ConformStats {
    /// Adds a run's counts.
    fn add(&mut self, a: &uapi::rkalloc_conform) {
        self.allocs += a.allocs;
        self.frees += a.frees;
        self.failures += a.failures;
        self.corrupt_blocks += a.corrupt_blocks;
        self.bad_sizes += a.bad_sizes;
        self.check_failures += a.check_failures;
    }

    /// Adds another's totals.
    fn merge(&mut self, o: &ConformStats) {
        self.runs += o.runs;
        self.steps += o.steps;
        self.allocs += o.allocs;
        self.frees += o.frees;
        self.failures += o.failures;
        self.corrupt_blocks += o.corrupt_blocks;
        self.bad_sizes += o.bad_sizes;
        self.check_failures += o.check_failures;
        self.enomem += o.enomem;
    }
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
    /// The first errors of each thread.
    pub errors: Vec<String>,
    pub check_ok: bool,
    /// The errno of the final `RKALLOC_IOC_CHECK`, if it failed.
    pub check_errno: Option<String>,
    pub nr_policies: u32,
    pub per_allocator: BTreeMap<String, PerKind>,
    /// Conformance runs, by allocator name.
    pub conform: BTreeMap<String, ConformStats>,
}

impl Summary {
    /// The run as rkctl's result: corruption first, then what the kernel
    /// refused.
    pub fn result(&self) -> Result<()> {
        if self.corruptions != 0 || self.check_errno.as_deref() == Some("EUCLEAN") {
            Err(error::corruption(format!(
                "stress found {} corruptions (invariant check: {})",
                self.corruptions,
                self.check_errno.as_deref().unwrap_or("ok")
            )))
        } else if self.unexpected_errors != 0 || !self.check_ok {
            Err(error::refused(format!(
                "stress met {} unexpected errors (invariant check: {})",
                self.unexpected_errors,
                self.check_errno.as_deref().unwrap_or("ok")
            )))
        } else {
            Ok(())
        }
    }
}

/// A live allocation and the pattern it was filled with.
struct Live {
    kind: Kind,
    handle: u64,
    pattern: u32,
}

/// What one thread found.
#[derive(Default)]
struct ThreadResult {
    per: BTreeMap<Kind, PerKind>,
    conform: BTreeMap<String, ConformStats>,
    ops: u64,
    corruptions: u64,
    unexpected: u64,
    errors: Vec<String>,
}

impl ThreadResult {
    /// An errno or outcome the command did not expect.
    fn error(&mut self, what: String) {
        self.unexpected += 1;
        self.note(what);
    }

    /// Corruption found.
    fn corrupt(&mut self, what: String) {
        self.corruptions += 1;
        self.note(what);
    }

    /// Keeps the first errors for the report.
    fn note(&mut self, what: String) {
        if self.errors.len() < 20 {
            self.errors.push(what);
        }
    }
}

/// How often a release command that answered ENOMEM is tried again.
/// The header lists ENOMEM for OBJ_FREE, HEAP_RESET, HEAP_DESTROY and
/// ARENA_RESET (their handle-table removals reserve memory; FREE and
/// CACHE_DESTROY never answer it, and are not retried), and a failed call
/// changes nothing, so the handles are still live and the call can be made
/// again; under fault injection (`--make-it-fail`, 10%) 64 failures in a
/// row would take a chance of 10^-64.
const RELEASE_TRIES: u32 = 64;

/// `op`, made again while it answers ENOMEM (at most [`RELEASE_TRIES`]
/// times); each ENOMEM counts for `kind`.
fn release<T>(r: &mut ThreadResult, kind: Kind, mut op: impl FnMut() -> KResult<T>) -> KResult<T> {
    let mut tries = 1;
    loop {
        match op() {
            Err(e) if e.errno == libc::ENOMEM && tries < RELEASE_TRIES => {
                r.per.entry(kind).or_default().enomem += 1;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// One allocation of `kind`, of a random size.
fn alloc(dev: &Device, kind: Kind, rng: &mut SmallRng, cfg: &Config, nr_policies: u32, ctx: &mut Ctx) -> Result<u64, Errno> {
    match kind {
        Kind::Pool => {
            // Small orders most of the time, as real users do.
            let order = if rng.gen_bool(0.8) { rng.gen_range(0..=cfg.max_order.min(3)) } else { rng.gen_range(0..=cfg.max_order) };
            dev.pool_alloc(order)
        }
        Kind::Heap => {
            let heap = match ctx.heap {
                Some(h) => h,
                None => {
                    let flags = if rng.gen_bool(0.25) { uapi::RKALLOC_HEAP_DEBUG } else { 0 };
                    let h = dev.heap_create(heap_policy(rng, nr_policies), flags, 0)?;
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
            Ok(ctx.objects.pop().expect("a batch has at least one object"))
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

/// The size range of a conformance run: the allocator's own (0, 0) half
/// the time, else a random range within it, at most 64 KiB.
pub fn conform_range(rng: &mut SmallRng, a: &Allocator) -> (u64, u64) {
    if rng.gen_bool(0.5) {
        return (0, 0);
    }
    let top = a.max_bytes.min(64 << 10).max(a.min_bytes);
    let lo = rng.gen_range(a.min_bytes..=top);
    (lo, rng.gen_range(lo..=top))
}

/// One conformance run of `a`, `steps` long; counts go to
/// `r.conform[a.name]`.
fn conform_one(dev: &Device, a: &Allocator, seed: u64, steps: u64, cfg: &Config, rng: &mut SmallRng, r: &mut ThreadResult) {
    let (lo, hi) = conform_range(rng, a);
    let mut x = uapi::rkalloc_conform {
        allocator: a.id,
        ops: steps,
        seed,
        lo,
        hi,
        max_live: (cfg.max_live as u32).clamp(1, uapi::RKALLOC_MAX_BATCH),
        ..Default::default()
    };
    let res = dev.conform(&mut x);
    let what = format!("conform {} (seed {seed:#x}, sizes {lo}..={hi}): ", a.name);
    let st = r.conform.entry(a.name.clone()).or_default();
    st.runs += 1;
    st.steps += steps;
    let counts = |x: &uapi::rkalloc_conform| {
        format!("{} corrupt blocks, {} bad sizes served, {} checker reports", x.corrupt_blocks, x.bad_sizes, x.check_failures)
    };
    match res {
        Ok(()) => {
            st.add(&x);
            if x.corrupt_blocks != 0 || x.bad_sizes != 0 || x.check_failures != 0 {
                r.corrupt(format!("{what}returned 0 with {}", counts(&x)));
            }
        }
        Err(e) if e.errno == libc::EUCLEAN => {
            st.add(&x);
            r.corrupt(format!("{what}EUCLEAN: {}", counts(&x)));
        }
        Err(e) if e.errno == libc::ENOMEM => st.enomem += 1,
        Err(e) => r.error(format!("{what}{e}")),
    }
}

/// Frees the thread's batched objects not handed out yet and destroys its
/// cache, which must succeed: no object of it is live any more.
fn drop_cache(dev: &Device, ctx: &mut Ctx, r: &mut ThreadResult) {
    if !ctx.objects.is_empty() {
        if let Err(e) = release(r, Kind::Object, || dev.obj_free(&ctx.objects)) {
            r.error(format!("free unused objects: {e}"));
        }
        ctx.objects.clear();
    }
    if let Some(c) = ctx.cache.take() {
        if let Err(e) = dev.cache_destroy(c) {
            r.error(format!("destroy cache: {e}"));
        }
    }
}

/// Now and then the thread resets its arena or heap (or destroys the heap):
/// the live allocations of that kind are verified first, and afterwards one
/// of their handles must be stale (EINVAL).
fn reset(dev: &Device, kind: Kind, rng: &mut SmallRng, ctx: &mut Ctx, live: &mut Vec<Live>, r: &mut ThreadResult) {
    let mut dropped = Vec::new();
    live.retain(|l| {
        if l.kind == kind {
            dropped.push((l.handle, l.pattern));
        }
        l.kind != kind
    });
    for &(handle, pattern) in &dropped {
        verify_one(dev, kind, handle, pattern, r);
    }
    let done = match kind {
        Kind::Arena => release(r, kind, || dev.arena_reset()).map(|(_, allocs)| {
            if allocs != ctx.arena_allocs {
                r.error(format!("arena reset reclaimed {allocs} allocations, expected {}", ctx.arena_allocs));
            }
            r.per.entry(kind).or_default().frees += allocs;
            ctx.arena_allocs = 0;
        }),
        Kind::Heap => match ctx.heap {
            Some(h) if rng.gen_bool(0.3) => {
                ctx.heap = None;
                release(r, kind, || dev.heap_destroy(h))
            }
            Some(h) => release(r, kind, || dev.heap_reset(h)),
            None => Ok(()),
        }
        .map(|()| r.per.entry(kind).or_default().frees += dropped.len() as u64),
        Kind::Object => {
            let handles: Vec<u64> = dropped.iter().map(|&(h, _)| h).collect();
            let freed = handles.chunks(uapi::RKALLOC_MAX_BATCH as usize).try_for_each(|c| release(r, kind, || dev.obj_free(c)));
            if freed.is_ok() {
                r.per.entry(kind).or_default().frees += dropped.len() as u64;
                drop_cache(dev, ctx, r);
            }
            freed
        }
        Kind::Pool | Kind::Malloc => Ok(()),
    };
    if let Err(e) = done {
        r.error(format!("reset {kind:?}: {e}"));
    }
    if let Some(&(handle, pattern)) = dropped.first() {
        match dev.verify(handle, pattern) {
            Err(e) if e.errno == libc::EINVAL => {}
            other => r.error(format!("{kind:?} handle after reset: expected EINVAL, got {other:?}")),
        }
    }
}

/// Verifies one allocation's pattern.
fn verify_one(dev: &Device, kind: Kind, handle: u64, pattern: u32, r: &mut ThreadResult) {
    match dev.verify(handle, pattern) {
        Ok((bytes, 0)) => r.per.entry(kind).or_default().bytes_verified += bytes,
        Ok((_, bad)) => r.corrupt(format!("{kind:?} allocation corrupted: {bad} bytes differ")),
        Err(e) if e.errno == libc::EUCLEAN => r.corrupt(format!("verify {kind:?}: {e}")),
        Err(e) => r.error(format!("verify {kind:?}: {e}")),
    }
}

/// What every thread shares.
struct Work<'a> {
    path: &'a Path,
    cfg: &'a Config,
    kinds: &'a [Kind],
    conform: &'a [Allocator],
    nr_policies: u32,
    deadline: Option<Instant>,
    bar: &'a ProgressBar,
}

/// The seed of thread `id`.
fn thread_seed(seed: u64, id: usize) -> u64 {
    seed.wrapping_add(id as u64 * 0x9e37_79b9)
}

/// One thread's run, on its own fd.
fn run_thread(w: &Work<'_>, id: usize) -> Result<ThreadResult> {
    let cfg = w.cfg;
    let dev = Device::open(w.path)?;
    if cfg.make_it_fail {
        // After the open: a refused open would stop the worker, and it is
        // the stress's allocations that are to fail, not its set-up.
        std::fs::write("/proc/thread-self/make-it-fail", "1")
            .map_err(|e| error::system(format!("cannot set /proc/thread-self/make-it-fail ({e}): is the kernel built with CONFIG_FAULT_INJECTION?")))?;
    }
    let mut rng = SmallRng::seed_from_u64(thread_seed(cfg.seed, id));
    let mut live: Vec<Live> = Vec::new();
    let mut r = ThreadResult::default();
    let mut ctx = Ctx { next_conform: id, ..Default::default() };
    let resettable: Vec<Kind> = w.kinds.iter().copied().filter(|k| matches!(k, Kind::Heap | Kind::Arena | Kind::Object)).collect();
    let per_thread = cfg.ops / cfg.threads as u64 + u64::from((id as u64) < cfg.ops % cfg.threads as u64);
    // Conformance steps are owed one for every op of the kinds, divided
    // among the kinds: they get the share of one kind.
    let mut owed = 0u64;
    let mut unreported = 0u64;
    loop {
        let left = match w.deadline {
            Some(d) if Instant::now() >= d => break,
            Some(_) => u64::MAX,
            None if r.ops >= per_thread => break,
            None => per_thread - r.ops,
        };
        if unreported >= 256 {
            w.bar.inc(unreported);
            unreported = 0;
        }
        if !w.conform.is_empty() && conform_due(owed, w.kinds.len(), cfg.conform_ops) {
            let a = &w.conform[ctx.next_conform % w.conform.len()];
            ctx.next_conform += 1;
            let steps = cfg.conform_ops.min(left);
            let seed = rng.gen();
            conform_one(&dev, a, seed, steps, cfg, &mut rng, &mut r);
            r.ops += steps;
            unreported += steps;
            owed = 0;
            continue;
        }
        r.ops += 1;
        unreported += 1;
        owed += 1;
        if !resettable.is_empty() && rng.gen_ratio(1, 256) {
            let kind = resettable[rng.gen_range(0..resettable.len())];
            reset(&dev, kind, &mut rng, &mut ctx, &mut live, &mut r);
            continue;
        }
        let do_alloc = live.is_empty() || (live.len() < cfg.max_live && rng.gen_bool(0.55));
        if do_alloc {
            let kind = w.kinds[rng.gen_range(0..w.kinds.len())];
            match alloc(&dev, kind, &mut rng, cfg, w.nr_policies, &mut ctx) {
                Ok(handle) => {
                    let pattern: u32 = rng.gen();
                    if let Err(e) = dev.fill(handle, pattern) {
                        r.error(format!("fill {kind:?}: {e}"));
                    }
                    r.per.entry(kind).or_default().allocs += 1;
                    live.push(Live { kind, handle, pattern });
                }
                Err(e) if e.errno == libc::ENOMEM => r.per.entry(kind).or_default().enomem += 1,
                Err(e) if e.errno == libc::EUCLEAN => r.corrupt(format!("alloc {kind:?}: {e}")),
                Err(e) => r.error(format!("alloc {kind:?}: {e}")),
            }
        } else {
            let l = live.swap_remove(rng.gen_range(0..live.len()));
            free_one(&dev, &l, &mut r);
        }
    }
    w.bar.inc(unreported);
    for l in live.drain(..) {
        free_one(&dev, &l, &mut r);
    }
    if ctx.arena_allocs != 0 {
        reset(&dev, Kind::Arena, &mut rng, &mut ctx, &mut live, &mut r);
    }
    if let Some(h) = ctx.heap.take() {
        if let Err(e) = release(&mut r, Kind::Heap, || dev.heap_destroy(h)) {
            r.error(format!("destroy heap: {e}"));
        }
    }
    drop_cache(&dev, &mut ctx, &mut r);
    Ok(r)
}

/// Verifies and frees one allocation.
fn free_one(dev: &Device, l: &Live, r: &mut ThreadResult) {
    verify_one(dev, l.kind, l.handle, l.pattern, r);
    if l.kind == Kind::Arena {
        // Arena allocations end only with the arena's reset.
        return;
    }
    match dev.free(l.handle) {
        Ok(()) => r.per.entry(l.kind).or_default().frees += 1,
        Err(e) if e.errno == libc::EUCLEAN => r.corrupt(format!("free {:?}: {e}", l.kind)),
        Err(e) => r.error(format!("free {:?}: {e}", l.kind)),
    }
}

/// Whether a conformance run is due after `owed` ops of `kinds` kinds
/// since the last: conformance gets the share of one kind, all when there
/// is no kind.
pub fn conform_due(owed: u64, kinds: usize, conform_ops: u64) -> bool {
    kinds == 0 || owed >= conform_ops * kinds as u64
}

/// The allocators of `conform` no run reached.
pub fn unreached<'a>(conform: &'a [Allocator], done: &BTreeMap<String, ConformStats>) -> Vec<&'a Allocator> {
    conform.iter().filter(|a| done.get(&a.name).is_none_or(|s| s.runs == 0)).collect()
}

/// Runs the stress test.
pub fn run(path: &Path, cfg: Config) -> Result<Summary> {
    // No fd of ours stays open while the threads run: each thread's is
    // the only one (t-kill counts them).
    let (table, nr_policies) = {
        let dev = Device::open(path)?;
        (dev.allocators()?, dev.info()?.nr_policies)
    };
    let (kinds, conform) = resolve(&cfg.targets, &table)?;
    if cfg.threads == 0 {
        return Err(error::usage("stress needs at least one thread"));
    }
    if kinds.is_empty() && conform.is_empty() {
        return Err(error::usage("stress needs at least one kind or allocator"));
    }
    if kinds.contains(&Kind::Heap) && nr_policies == 0 {
        return Err(error::refused("the module has no fit policies (nr_policies 0): no heap to stress"));
    }
    let bar = if cfg.progress && cfg.duration.is_none() {
        ProgressBar::with_draw_target(Some(cfg.ops), ProgressDrawTarget::stderr_with_hz(4))
    } else if cfg.progress {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} stress [{elapsed_precise}] {bar:30} {pos}/{len} ops {per_sec}").expect("a valid template"));
    let w = Work {
        path,
        cfg: &cfg,
        kinds: &kinds,
        conform: &conform,
        nr_policies,
        deadline: cfg.duration.map(|d| Instant::now() + d),
        bar: &bar,
    };
    let start = Instant::now();
    let results: Vec<Result<ThreadResult>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..cfg.threads).map(|id| s.spawn({ let w = &w; move || run_thread(w, id) })).collect();
        hs.into_iter().map(|h| h.join().map_err(|_| error::system("a stress thread panicked"))?).collect()
    });
    bar.finish_and_clear();
    let mut sum = Summary { threads: cfg.threads, seed: cfg.seed, nr_policies, ..Default::default() };
    let mut last = ThreadResult::default();
    let merge = |sum: &mut Summary, r: ThreadResult| {
        sum.ops += r.ops;
        sum.corruptions += r.corruptions;
        sum.unexpected_errors += r.unexpected;
        sum.errors.extend(r.errors);
        for (k, v) in r.per {
            let e = sum.per_allocator.entry(format!("{k:?}").to_lowercase()).or_default();
            e.allocs += v.allocs;
            e.frees += v.frees;
            e.bytes_verified += v.bytes_verified;
            e.enomem += v.enomem;
        }
        for (k, v) in r.conform {
            sum.conform.entry(k).or_default().merge(&v);
        }
    };
    for r in results {
        merge(&mut sum, r?);
    }
    // Every allocator asked for gets a run, however short the mix was.
    let dev = Device::open(path)?;
    let mut rng = SmallRng::seed_from_u64(thread_seed(cfg.seed, cfg.threads));
    for a in unreached(&conform, &sum.conform) {
        let seed = rng.gen();
        conform_one(&dev, a, seed, cfg.conform_ops, &cfg, &mut rng, &mut last);
        last.ops += cfg.conform_ops;
    }
    merge(&mut sum, last);
    let secs = start.elapsed().as_secs_f64();
    sum.seconds = secs;
    for v in sum.per_allocator.values_mut() {
        v.ops_per_sec = (v.allocs + v.frees) as f64 / secs;
    }
    sum.ops_per_sec = sum.ops as f64 / secs;
    let check = dev.check();
    sum.check_ok = check.is_ok();
    sum.check_errno = check.err().map(|e| e.name());
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::synthetic;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("pool"), Ok(Target::Kind(Kind::Pool)));
        assert_eq!(parse_target("conform"), Ok(Target::Conform(None)));
        assert_eq!(parse_target("conform:rk_pool"), Ok(Target::Conform(Some("rk_pool".into()))));
        assert!(parse_target("conform:").is_err());
        let e = parse_target("kmalloc").unwrap_err();
        assert!(e.contains("conform:NAME"), "{e}");
    }

    #[test]
    fn by_default_every_kind_and_every_allocator() {
        let t = synthetic::extended();
        let (kinds, conform) = resolve(&[], &t).unwrap();
        assert_eq!(kinds, [Kind::Pool, Kind::Heap, Kind::Arena, Kind::Object, Kind::Malloc]);
        // The new page allocator and the fifth policy's heap included.
        assert_eq!(conform, t);
        assert!(conform.iter().any(|a| a.name == "rk_pages2") && conform.iter().any(|a| a.name == "heap_worst"));
    }

    #[test]
    fn named_targets() {
        let t = synthetic::table();
        let (kinds, conform) = resolve(&[Target::Kind(Kind::Pool), Target::Kind(Kind::Pool)], &t).unwrap();
        assert_eq!((kinds, conform.len()), (vec![Kind::Pool], 0));
        let x = [Target::Conform(Some("heap_best".into())), Target::Kind(Kind::Malloc), Target::Conform(Some("kmalloc".into()))];
        let (kinds, conform) = resolve(&x, &t).unwrap();
        assert_eq!(kinds, [Kind::Malloc]);
        assert_eq!(conform.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["heap_best", "kmalloc"]);
        let (kinds, conform) = resolve(&[Target::Conform(None)], &t).unwrap();
        assert!(kinds.is_empty());
        assert_eq!(conform.len(), t.len());
        let e = resolve(&[Target::Conform(Some("heap_worst".into()))], &t).unwrap_err();
        assert_eq!(error::classify(&e), error::Class::Usage);
    }

    #[test]
    fn heaps_use_every_policy() {
        // With five policies, the fifth is drawn; never one beyond.
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seen = [0u32; 6];
        for _ in 0..1000 {
            seen[heap_policy(&mut rng, 5) as usize] += 1;
        }
        assert!(seen[..5].iter().all(|&n| n > 100), "{seen:?}");
        assert_eq!(seen[5], 0);
    }

    #[test]
    fn conform_ranges_stay_in_the_allocator_range() {
        let t = synthetic::extended();
        let mut rng = SmallRng::seed_from_u64(9);
        let mut own = 0;
        for _ in 0..2000 {
            for a in &t {
                match conform_range(&mut rng, a) {
                    (0, 0) => own += 1,
                    (lo, hi) => assert!(a.min_bytes <= lo && lo <= hi && hi <= a.max_bytes && hi <= 64 << 10, "{} {lo}..{hi}", a.name),
                }
            }
        }
        assert!(own > 0);
    }

    #[test]
    fn conformance_takes_one_kinds_share() {
        // The loop's accounting, without a device.
        let run = |total: u64, kinds: usize, c: u64| {
            let (mut ops, mut owed, mut steps, mut runs) = (0u64, 0u64, 0u64, 0u64);
            while ops < total {
                if conform_due(owed, kinds, c) {
                    let n = c.min(total - ops);
                    (ops, steps, runs, owed) = (ops + n, steps + n, runs + 1, 0);
                } else {
                    (ops, owed) = (ops + 1, owed + 1);
                }
            }
            (steps, runs)
        };
        // Five kinds: a sixth of the ops are conformance steps.
        let (steps, runs) = run(60_000, 5, 256);
        assert!((9_500..=10_500).contains(&steps), "{steps}");
        assert_eq!(runs, steps.div_ceil(256));
        // One kind: half.
        let (steps, _) = run(10_000, 1, 100);
        assert!((4_900..=5_100).contains(&steps), "{steps}");
        // No kind: every op, the last run cut to what is left.
        assert_eq!(run(1000, 0, 256), (1000, 4));
    }

    #[test]
    fn unreached_allocators_are_found() {
        let t = synthetic::table();
        let mut done = BTreeMap::new();
        done.insert("rk_pool".to_string(), ConformStats { runs: 2, ..Default::default() });
        done.insert("kmalloc".to_string(), ConformStats::default());
        let u: Vec<&str> = unreached(&t, &done).iter().map(|a| a.name.as_str()).collect();
        assert_eq!(u.len(), t.len() - 1);
        assert!(!u.contains(&"rk_pool") && u.contains(&"kmalloc"));
    }

    #[test]
    fn summaries_give_the_exit_class() {
        let ok = Summary { check_ok: true, ..Default::default() };
        assert!(ok.result().is_ok());
        let s = Summary { check_ok: true, unexpected_errors: 1, ..Default::default() };
        assert_eq!(error::classify(&s.result().unwrap_err()), error::Class::Refused);
        let s = Summary { check_ok: true, unexpected_errors: 1, corruptions: 1, ..Default::default() };
        assert_eq!(error::classify(&s.result().unwrap_err()), error::Class::Corruption);
        let s = Summary { check_ok: false, check_errno: Some("EUCLEAN".into()), ..Default::default() };
        assert_eq!(error::classify(&s.result().unwrap_err()), error::Class::Corruption);
        let s = Summary { check_ok: false, check_errno: Some("ENOMEM".into()), ..Default::default() };
        assert_eq!(error::classify(&s.result().unwrap_err()), error::Class::Refused);
    }
}
