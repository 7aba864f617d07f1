//! `rkctl bench`: the in-kernel comparison of rkalloc's allocators with the
//! kernel's, run through `RKALLOC_IOC_BENCH` in one guest run, reported as a
//! table with ratios to each allocator's kernel peer, as JSON, and as plots.
//!
//! The matrix is derived from the module's allocator table ([`matrix`]):
//! each class has its groups of cases, every allocator of the class gets a
//! row in each, its baseline is its `peer` from the table (run in the same
//! group), and a size outside an allocator's `[min_bytes, max_bytes]` is
//! not run (the report lists it under "not run"). An allocator or a policy
//! the module adds therefore gets its rows without a change here.
//!
//! Figures are per alloc+free pair. `mean` is the mean over repeats of each
//! repeat's mean (every sample times `ops` pairs), `spread` is (max - min)
//! / mean of those repeat means, and `sample min..max` the fastest and the
//! slowest sample of every repeat: the spread of sample means, not a
//! per-operation tail. Per-operation percentiles come only with
//! `--latency` (`RKALLOC_BENCH_LATENCY`: every allocation and free timed on
//! its own, the clock's cost taken off).
use crate::{
    device::{Device, Errno},
    error,
    table::{Allocator, AllocatorClass},
    uapi,
};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::{fmt::Write as _, path::Path, sync::Barrier};

/// One benchmark case: an allocator, a pattern, a size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub group: String,
    pub allocator: String,
    pub pattern: String,
    pub bytes: u64,
    /// Objects held at once (BATCH, BATCH_RANDOM, RANDOM_LIFE, CROSS_CPU).
    pub batch: u32,
    /// The allocator this one is compared with: its peer, run in the same
    /// group with the same pattern, size and batch.
    pub baseline: Option<String>,
}

impl Case {
    /// Same group, pattern, size and batch: rows that compare.
    fn same_point(&self, o: &Case) -> bool {
        self.group == o.group && self.pattern == o.pattern && self.bytes == o.bytes && self.batch == o.batch
    }
}

/// A case the table's ranges or flags rule out, with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skip {
    pub group: String,
    pub allocator: String,
    pub bytes: u64,
    pub reason: String,
}

/// Per-operation latency percentiles (`--latency`), in the report's unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub alloc_p50_ns: f64,
    pub alloc_p99_ns: f64,
    pub free_p50_ns: f64,
    pub free_p99_ns: f64,
    /// The clock's own cost, already taken off the figures above.
    pub clock_overhead_ns: f64,
}

/// Throughput on this row's CPU count over the same case on one CPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    /// Mean pairs/s here over mean pairs/s on 1 CPU.
    pub ratio: f64,
    /// The smallest and largest ratio the repeats allow: slowest repeat
    /// here over the fastest on 1 CPU, and the other way round.
    pub low: f64,
    pub high: f64,
}

/// Results of one case on one CPU count. Figures are `None` when the row
/// failed: a failed repeat fails the row, whatever earlier repeats gave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub case: Case,
    pub cpus: usize,
    /// Mean per pair: the mean of the repeats' means.
    pub ns_per_op: Option<f64>,
    /// (max - min) / mean of the repeats' means.
    pub spread: Option<f64>,
    /// The fastest sample of all repeats (and CPUs).
    #[serde(default)]
    pub sample_min_ns: Option<f64>,
    /// The median of the samples' medians.
    #[serde(default)]
    pub sample_median_ns: Option<f64>,
    /// The slowest sample of all repeats (and CPUs).
    #[serde(default)]
    pub sample_max_ns: Option<f64>,
    /// Pairs per second over all CPUs, mean of the repeats.
    pub ops_per_sec: Option<f64>,
    /// Each repeat's mean per pair.
    #[serde(default)]
    pub repeat_means_ns: Vec<f64>,
    /// Each repeat's pairs per second over all CPUs.
    #[serde(default)]
    pub repeat_ops_per_sec: Vec<f64>,
    /// Each repeat's median sample per pair (mean over CPUs): robust to a
    /// sample the host preempted, so the native reports use these.
    #[serde(default)]
    pub repeat_medians_ns: Vec<f64>,
    /// Each repeat's pairs per second over all CPUs at the median sample
    /// (the sum over CPUs of 1 / median).
    #[serde(default)]
    pub repeat_median_ops_per_sec: Vec<f64>,
    /// With `--latency`: medians over repeats and CPUs of each percentile.
    #[serde(default)]
    pub latency: Option<Latency>,
    /// `ns_per_op` over the baseline's.
    pub ratio: Option<f64>,
    /// [`Row::median_ns`] over the baseline's.
    #[serde(default)]
    pub median_ratio: Option<f64>,
    /// On more than one CPU: throughput over 1 CPU.
    #[serde(default)]
    pub scaling: Option<Scaling>,
    /// Why the row failed (which repeat, which command, the errno).
    pub failed: Option<String>,
    /// The errno of the failure, e.g. `ENOMEM`.
    #[serde(default)]
    pub errno: Option<String>,
}

impl Row {
    /// The median over repeats of each repeat's median sample: the figure a
    /// sample the host preempted cannot move (the native reports' figure).
    /// `None` for a failed row or a report older than the field.
    pub fn median_ns(&self) -> Option<f64> {
        (!self.repeat_medians_ns.is_empty()).then(|| median(&mut self.repeat_medians_ns.clone()))
    }
}

/// The whole run.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// How time was measured: icount, tcg-wallclock, kvm-wallclock,
    /// uml-native.
    pub mode: String,
    /// What the figures count, from the mode.
    #[serde(default)]
    pub units: String,
    /// The caller's build information (`--label`): compiler, code model.
    #[serde(default)]
    pub build: String,
    #[serde(default)]
    pub rkctl_version: String,
    pub kernel: String,
    pub cpus_online: u32,
    pub init_on_alloc: String,
    pub slub_tiny: String,
    pub sheaf_capacity_64: String,
    pub repeats: u32,
    #[serde(default)]
    pub samples: u32,
    #[serde(default)]
    pub ops: u64,
    #[serde(default)]
    pub latency: bool,
    /// The module's allocator table the matrix was derived from.
    #[serde(default)]
    pub allocators: Vec<Allocator>,
    /// Cases not run, with why.
    #[serde(default)]
    pub skipped: Vec<Skip>,
    pub rows: Vec<Row>,
}

/// What `rkctl bench` was asked.
pub struct Options {
    pub repeats: u32,
    pub samples: u32,
    pub ops: u64,
    pub cpus: Vec<usize>,
    pub quick: bool,
    /// How guest time is measured; `None`: as the guest was booted (see
    /// [`mode_of`]).
    pub mode: Option<String>,
    pub filter: Option<String>,
    /// Table names to run (with their peers); empty: all.
    pub allocators: Vec<String>,
    pub latency: bool,
    /// Build information for the report (`--label`).
    pub label: Option<String>,
}

/// The matrix's shape: what the module and the guest allow.
pub struct Spec {
    pub quick: bool,
    pub page_size: u64,
    pub nr_cpus: u32,
}

/// Page orders timed as hot pairs.
const PAGE_ORDERS: &[u32] = &[0, 3, 6, 9];
/// Page orders of `--quick`.
const PAGE_ORDERS_QUICK: &[u32] = &[0, 3];
/// Blocks held at once by the page batch and random-lifetime rows.
pub const PAGE_BATCH: u32 = 1024;
/// Those rows only run where `PAGE_BATCH` blocks hold at most this many
/// pages (32 MiB of 4 KiB pages: orders 0 and 3), so that the pool's
/// default 64 MiB and the guest's memory hold them.
const PAGE_BATCH_MAX_PAGES: u64 = 8192;
/// Batch sizes swept for the 64 B object rows: around the objects each
/// side caches per CPU (rk_slab about 1440, SLUB's sheaves some hundreds).
pub const OBJECT_BATCHES: &[u32] = &[64, 256, 1024, 4096];
/// The object size of the object rows.
const OBJECT_BYTES: u64 = 64;
/// Objects live at once in the 64 B random-lifetime rows.
const RANDOM_LIFE_LIVE: u32 = 1024;
/// Objects in flight between CPUs in the cross-CPU rows.
const CROSS_CPU_BATCH: u32 = 256;
/// Sizes of the kmalloc-style rows: the size classes and a 16 KiB buffer.
const MALLOC_SIZES: &[u64] = &[8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384];
/// Sizes of the kmalloc-style rows of `--quick`.
const MALLOC_SIZES_QUICK: &[u64] = &[8, 256, 4096];
/// Sizes of the heap rows.
const HEAP_SIZES: &[u64] = &[64, 256, 2048];
/// Sizes of the heap rows of `--quick`.
const HEAP_SIZES_QUICK: &[u64] = &[256];
/// Blocks live at once in the heap rows.
const HEAP_LIVE: u32 = 512;

/// The patterns by their report names.
pub const PATTERNS: &[(&str, u32)] = &[
    ("pair", uapi::RKALLOC_BENCH_PAIR),
    ("batch", uapi::RKALLOC_BENCH_BATCH),
    ("batch_random", uapi::RKALLOC_BENCH_BATCH_RANDOM),
    ("random_life", uapi::RKALLOC_BENCH_RANDOM_LIFE),
    ("cross_cpu", uapi::RKALLOC_BENCH_CROSS_CPU),
];

/// The `RKALLOC_BENCH_*` value of a pattern name.
fn pattern_id(name: &str) -> Option<u32> {
    PATTERNS.iter().find(|(n, _)| *n == name).map(|&(_, id)| id)
}

/// A group of cases: one pattern, size and batch for every member.
struct Group<'a> {
    name: String,
    pattern: &'static str,
    bytes: u64,
    batch: u32,
    members: Vec<&'a Allocator>,
}

/// Why `a` cannot run in `g`, if it cannot.
fn cannot_run(a: &Allocator, g: &Group<'_>, spec: &Spec) -> Option<String> {
    if !a.serves(g.bytes) {
        return Some(format!("{} B is outside its range {}..={} B", g.bytes, a.min_bytes, a.max_bytes));
    }
    if a.frees_all() && matches!(g.pattern, "random_life" | "cross_cpu") {
        return Some(format!("frees only all at once: no {}", g.pattern));
    }
    if g.pattern == "cross_cpu" && spec.nr_cpus < 2 {
        return Some("cross_cpu needs 2 CPUs online".into());
    }
    None
}

/// The groups of each class.
fn groups<'a>(t: &'a [Allocator], spec: &Spec) -> Vec<Group<'a>> {
    let of = |classes: &[AllocatorClass]| -> Vec<&'a Allocator> { t.iter().filter(|a| classes.contains(&a.class)).collect() };
    let group = |name: String, pattern, bytes, batch, members: &Vec<&'a Allocator>| Group { name, pattern, bytes, batch, members: members.clone() };
    let mut v = Vec::new();

    // Page allocators: hot pairs at each order, and where a batch fits,
    // batches and random lifetimes, which reach the buddy behind the
    // per-CPU lists.
    let pages = of(&[AllocatorClass::Pages]);
    for &o in if spec.quick { PAGE_ORDERS_QUICK } else { PAGE_ORDERS } {
        let bytes = spec.page_size << o;
        v.push(group(format!("pages order {o}"), "pair", bytes, 1, &pages));
        if (u64::from(PAGE_BATCH) << o) <= PAGE_BATCH_MAX_PAGES {
            v.push(group(format!("pages order {o}, batch"), "batch", bytes, PAGE_BATCH, &pages));
            v.push(group(format!("pages order {o}, random_life"), "random_life", bytes, PAGE_BATCH, &pages));
        }
    }

    // Object caches, and the arenas in the patterns they can run (a pair
    // is an allocation and a reset, a batch N allocations and one reset).
    let objects = of(&[AllocatorClass::Objects]);
    let with_arenas = of(&[AllocatorClass::Objects, AllocatorClass::Arena]);
    v.push(group("64 B objects, pair".into(), "pair", OBJECT_BYTES, 1, &with_arenas));
    for &b in OBJECT_BATCHES {
        v.push(group("64 B objects, batch".into(), "batch", OBJECT_BYTES, b, &with_arenas));
    }
    if !spec.quick {
        for &b in OBJECT_BATCHES {
            v.push(group("64 B objects, batch_random".into(), "batch_random", OBJECT_BYTES, b, &objects));
        }
        v.push(group("64 B objects, random_life".into(), "random_life", OBJECT_BYTES, RANDOM_LIFE_LIVE, &objects));
        v.push(group("64 B objects, cross_cpu".into(), "cross_cpu", OBJECT_BYTES, CROSS_CPU_BATCH, &objects));
    }

    // kmalloc-style allocators: hot pairs at each size class.
    let malloc = of(&[AllocatorClass::Malloc]);
    for &s in if spec.quick { MALLOC_SIZES_QUICK } else { MALLOC_SIZES } {
        v.push(group(format!("malloc {s} B"), "pair", s, 1, &malloc));
    }

    // Heaps, every policy of the table: random lifetimes.
    let heaps = of(&[AllocatorClass::Heap]);
    for &s in if spec.quick { HEAP_SIZES_QUICK } else { HEAP_SIZES } {
        v.push(group(format!("heaps {s} B, random_life"), "random_life", s, HEAP_LIVE, &heaps));
    }
    v
}

/// The matrix of `t`: its cases, and the cases not run with why.
pub fn matrix(t: &[Allocator], spec: &Spec) -> (Vec<Case>, Vec<Skip>) {
    let mut cases = Vec::new();
    let mut skipped: Vec<Skip> = t
        .iter()
        .filter_map(|a| match a.class {
            AllocatorClass::Unknown(n) => Some(Skip {
                group: "-".into(),
                allocator: a.name.clone(),
                bytes: 0,
                reason: format!("class {n} is unknown to this rkctl: no bench rows"),
            }),
            _ => None,
        })
        .collect();
    for g in groups(t, spec) {
        let mut rows: Vec<&Allocator> = Vec::new();
        for &a in &g.members {
            match cannot_run(a, &g, spec) {
                Some(reason) => skipped.push(Skip { group: g.name.clone(), allocator: a.name.clone(), bytes: g.bytes, reason }),
                None => rows.push(a),
            }
        }
        // Each row's peer runs beside it, as its baseline.
        let mut i = 0;
        while i < rows.len() {
            if let Some(p) = rows[i].peer.as_deref().and_then(|p| t.iter().find(|b| b.name == p)) {
                if !rows.iter().any(|r| r.id == p.id) {
                    match cannot_run(p, &g, spec) {
                        None => rows.push(p),
                        Some(reason) => skipped.push(Skip {
                            group: g.name.clone(),
                            allocator: p.name.clone(),
                            bytes: g.bytes,
                            reason: format!("{reason} (the peer of {}, which has no ratio here)", rows[i].name),
                        }),
                    }
                }
            }
            i += 1;
        }
        // Baselines first: the kernel's allocators, then rkalloc's, each
        // in table order.
        rows.sort_by_key(|a| (!a.is_kernel(), a.id));
        for a in &rows {
            let baseline = a.peer.clone().filter(|p| rows.iter().any(|r| &r.name == p));
            cases.push(Case {
                group: g.name.clone(),
                allocator: a.name.clone(),
                pattern: g.pattern.into(),
                bytes: g.bytes,
                batch: g.batch,
                baseline,
            });
        }
    }
    skipped.dedup();
    (cases, skipped)
}

/// The cases `--filter` (a substring of the group or allocator) and
/// `--alloc` (table names) select, with the baselines of those cases so
/// that their ratios can be computed. Matrix order is kept.
pub fn select(cases: Vec<Case>, filter: Option<&str>, names: &[String]) -> Vec<Case> {
    let chosen = |c: &Case| {
        filter.is_none_or(|f| c.group.contains(f) || c.allocator.contains(f)) && (names.is_empty() || names.contains(&c.allocator))
    };
    let keep: Vec<bool> = cases
        .iter()
        .map(|c| {
            chosen(c) || cases.iter().any(|o| chosen(o) && o.same_point(c) && o.baseline.as_deref() == Some(c.allocator.as_str()))
        })
        .collect();
    cases.into_iter().zip(keep).filter_map(|(c, k)| k.then_some(c)).collect()
}

/// What one run of `RKALLOC_IOC_BENCH` on one CPU measured (ps, as the
/// kernel reports).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub mean_ps: u64,
    pub median_ps: u64,
    pub min_ps: u64,
    pub max_ps: u64,
    pub total_ns: u64,
    /// Pairs timed: ops x samples.
    pub pairs: u64,
    /// `[alloc p50, alloc p99, free p50, free p99, clock overhead]` in ps.
    pub latency: Option<[u64; 5]>,
}

impl Sample {
    /// What the kernel wrote into `a`.
    fn of(a: &uapi::rkalloc_bench, latency: bool) -> Self {
        Sample {
            mean_ps: a.mean_ps,
            median_ps: a.median_ps,
            min_ps: a.min_ps,
            max_ps: a.max_ps,
            total_ns: a.total_ns,
            pairs: a.ops * u64::from(a.samples),
            latency: latency.then_some([a.alloc_p50_ps, a.alloc_p99_ps, a.free_p50_ps, a.free_p99_ps, a.lat_overhead_ps]),
        }
    }
}

/// A repeat that failed: the row fails.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// 1-based.
    pub repeat: u32,
    pub repeats: u32,
    pub errno: Option<String>,
    pub message: String,
}

/// Runs `repeats` repeats with `run` (given the 0-based repeat), each
/// returning one sample per CPU; the first failure ends the row, and what
/// earlier repeats measured is dropped with it.
#[cfg(test)]
pub fn measure(repeats: u32, mut run: impl FnMut(u32) -> Result<Vec<Sample>>) -> Result<Vec<Vec<Sample>>, Failure> {
    let mut done = Ok(Vec::new());
    for r in 0..repeats {
        measure_repeat(&mut done, r, repeats, &mut run);
    }
    done
}

/// Runs repeat `r` (0-based, of `repeats`) of a row into `done`, unless an
/// earlier repeat failed the row: the first failure ends it, and what
/// earlier repeats measured is dropped with it ([`measure`], one repeat at
/// a time, for runs that interleave rows).
pub fn measure_repeat(
    done: &mut Result<Vec<Vec<Sample>>, Failure>,
    r: u32,
    repeats: u32,
    run: impl FnOnce(u32) -> Result<Vec<Sample>>,
) {
    let Ok(reps) = done else { return };
    match run(r) {
        Ok(s) if !s.is_empty() => reps.push(s),
        Ok(_) => *done = Err(Failure { repeat: r + 1, repeats, errno: None, message: "no CPU ran the case".into() }),
        Err(e) => {
            let errno = e.chain().find_map(|c| c.downcast_ref::<Errno>()).map(Errno::name);
            *done = Err(Failure { repeat: r + 1, repeats, errno, message: format!("{e:#}") });
        }
    }
}

/// The median of `v` (sorted in place); NaN for none.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The row of `case` on `cpus` CPUs from what [`measure`] returned.
pub fn row(case: Case, cpus: usize, outcome: Result<Vec<Vec<Sample>>, Failure>) -> Row {
    let mut r = Row {
        case,
        cpus,
        ns_per_op: None,
        spread: None,
        sample_min_ns: None,
        sample_median_ns: None,
        sample_max_ns: None,
        ops_per_sec: None,
        repeat_means_ns: Vec::new(),
        repeat_ops_per_sec: Vec::new(),
        repeat_medians_ns: Vec::new(),
        repeat_median_ops_per_sec: Vec::new(),
        latency: None,
        ratio: None,
        median_ratio: None,
        scaling: None,
        failed: None,
        errno: None,
    };
    let repeats = match outcome {
        Ok(reps) if !reps.is_empty() => reps,
        Ok(_) => {
            r.failed = Some("no repeats".into());
            return r;
        }
        Err(f) => {
            r.failed = Some(format!("repeat {} of {}: {}", f.repeat, f.repeats, f.message));
            r.errno = f.errno;
            return r;
        }
    };
    let ns = |ps: u64| ps as f64 / 1000.0;
    let all = || repeats.iter().flatten();
    r.repeat_means_ns = repeats.iter().map(|rep| rep.iter().map(|s| ns(s.mean_ps)).sum::<f64>() / rep.len() as f64).collect();
    r.repeat_ops_per_sec = repeats
        .iter()
        .map(|rep| rep.iter().map(|s| s.pairs as f64 / (s.total_ns.max(1) as f64 / 1e9)).sum::<f64>())
        .collect();
    r.repeat_medians_ns = repeats.iter().map(|rep| rep.iter().map(|s| ns(s.median_ps)).sum::<f64>() / rep.len() as f64).collect();
    r.repeat_median_ops_per_sec =
        repeats.iter().map(|rep| rep.iter().map(|s| 1e9 / ns(s.median_ps.max(1))).sum::<f64>()).collect();
    let mean = r.repeat_means_ns.iter().sum::<f64>() / r.repeat_means_ns.len() as f64;
    let (lo, hi) = r.repeat_means_ns.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    r.ns_per_op = Some(mean);
    r.spread = Some(if mean > 0.0 { (hi - lo) / mean } else { 0.0 });
    r.sample_min_ns = all().map(|s| ns(s.min_ps)).reduce(f64::min);
    r.sample_max_ns = all().map(|s| ns(s.max_ps)).reduce(f64::max);
    r.sample_median_ns = Some(median(&mut all().map(|s| ns(s.median_ps)).collect::<Vec<_>>()));
    r.ops_per_sec = Some(r.repeat_ops_per_sec.iter().sum::<f64>() / r.repeat_ops_per_sec.len() as f64);
    if all().all(|s| s.latency.is_some()) {
        let pct = |i: usize| median(&mut all().map(|s| ns(s.latency.unwrap_or_default()[i])).collect::<Vec<_>>());
        r.latency = Some(Latency {
            alloc_p50_ns: pct(0),
            alloc_p99_ns: pct(1),
            free_p50_ns: pct(2),
            free_p99_ns: pct(3),
            clock_overhead_ns: pct(4),
        });
    }
    r
}

/// Ratios to the baselines (same point, same CPU count) and scaling over
/// one CPU, once every row is in.
pub fn finish(rows: &mut [Row]) {
    let snapshot = rows.to_vec();
    for r in rows.iter_mut() {
        let Some(mean) = r.ns_per_op else { continue };
        let base = r.case.baseline.as_ref().and_then(|b| {
            snapshot.iter().find(|x| &x.case.allocator == b && x.case.same_point(&r.case) && x.cpus == r.cpus)
        });
        r.ratio = base.and_then(|x| x.ns_per_op).map(|base| mean / base);
        r.median_ratio = base.and_then(Row::median_ns).zip(r.median_ns()).map(|(base, m)| m / base);
        if r.cpus > 1 {
            let one = snapshot.iter().find(|x| x.case == r.case && x.cpus == 1 && x.ops_per_sec.is_some());
            r.scaling = one.and_then(|one| {
                let (a, b) = (&r.repeat_ops_per_sec, &one.repeat_ops_per_sec);
                let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
                let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
                (!a.is_empty() && !b.is_empty()).then(|| Scaling {
                    ratio: r.ops_per_sec.unwrap_or(0.0) / one.ops_per_sec.unwrap_or(1.0),
                    low: min(a) / max(b),
                    high: max(a) / min(b),
                })
            });
        }
    }
}

/// One `RKALLOC_IOC_BENCH` of case `c` on allocator `id`.
fn run_once(dev: &Device, id: u32, c: &Case, opt: &Options) -> Result<Sample> {
    let pattern = pattern_id(&c.pattern).with_context(|| format!("unknown pattern {}", c.pattern))?;
    let mut a = uapi::rkalloc_bench {
        allocator: id,
        pattern,
        batch: c.batch,
        bytes: c.bytes,
        ops: opt.ops,
        samples: opt.samples,
        flags: if opt.latency { uapi::RKALLOC_BENCH_LATENCY } else { 0 },
        ..Default::default()
    };
    dev.bench(&mut a).with_context(|| format!("{} {} {} B", c.allocator, c.pattern, c.bytes))?;
    Ok(Sample::of(&a, opt.latency))
}

/// Runs `c` on `cpus` threads at once (each pinned to its own CPU) and
/// returns the per-thread results.
fn run_parallel(path: &Path, id: u32, c: &Case, opt: &Options, cpus: usize) -> Result<Vec<Sample>> {
    let barrier = Barrier::new(cpus);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..cpus)
            .map(|cpu| {
                let barrier = &barrier;
                s.spawn(move || -> Result<Sample> {
                    pin_to(cpu);
                    let dev = Device::open(path);
                    // Every thread reaches the barrier, or the others wait forever.
                    barrier.wait();
                    run_once(&dev?, id, c, opt)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().map_err(|_| error::system("a bench thread panicked"))?).collect()
    })
}

/// Pins the calling thread to `cpu`, if the kernel lets it.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it;
    // sched_setaffinity reads it. Failure only means no pinning.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The timing mode of this guest, from the `rkalloc_accel=` word that
/// `scripts/vm-run` puts on the kernel command line: `icount` (guest
/// instructions), `tcg-wallclock` (multi-threaded TCG), `kvm-wallclock`
/// (hardware) or `uml-native` (User Mode Linux: native code, real time).
pub fn mode_of(cmdline: &str) -> String {
    match cmdline.split_whitespace().find_map(|w| w.strip_prefix("rkalloc_accel=")) {
        Some("icount") => "icount".into(),
        Some("tcg") => "tcg-wallclock".into(),
        Some("kvm") => "kvm-wallclock".into(),
        Some("uml") => "uml-native".into(),
        Some(other) => format!("unknown ({other})"),
        None => "unknown (not booted by scripts/vm-run)".into(),
    }
}

/// What a figure counts in `mode`, for tables and reports.
pub fn units_of(mode: &str) -> String {
    match mode {
        "icount" => "guest instructions per alloc+free pair (QEMU -icount shift=0: 1 ns of guest time is 1 instruction)".into(),
        "uml-native" => "ns of real time per alloc+free pair (UML: the kernel runs natively on the host CPU)".into(),
        "tcg-wallclock" => "ns of guest wall-clock time per alloc+free pair under TCG emulation (not hardware time)".into(),
        "kvm-wallclock" => "ns of wall-clock time per alloc+free pair (KVM: hardware)".into(),
        m => format!("ns per alloc+free pair (timing mode {m})"),
    }
}

/// The short unit for a plot's axis in `mode`.
pub fn axis_unit(mode: &str) -> &'static str {
    match mode {
        "icount" => "guest instructions (-icount)",
        "uml-native" => "ns of real time (UML, native)",
        "tcg-wallclock" => "ns of wall-clock time (TCG emulation)",
        "kvm-wallclock" => "ns of wall-clock time (KVM)",
        _ => "ns (unknown timing mode)",
    }
}

/// A small kernel file, trimmed; `unknown` when it cannot be read.
fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Runs the matrix and returns the report.
pub fn run(path: &Path, opt: &Options, progress: bool) -> Result<Report> {
    // Only the runs' own fds stay open while they run.
    let (info, table) = {
        let dev = Device::open(path)?;
        (dev.info()?, dev.allocators()?)
    };
    if let Some(&n) = opt.cpus.iter().find(|&&n| n == 0 || n > info.nr_cpus as usize) {
        return Err(error::usage(format!("--cpus {n}: the guest has {} CPUs online", info.nr_cpus)));
    }
    crate::table::select(&table, &opt.allocators)?;
    let spec = Spec { quick: opt.quick, page_size: u64::from(info.page_size), nr_cpus: info.nr_cpus };
    let (all, skipped) = matrix(&table, &spec);
    let cases = select(all, opt.filter.as_deref(), &opt.allocators);
    if cases.is_empty() {
        return Err(error::usage("no bench case matches --filter and --alloc"));
    }
    let bar = if progress {
        indicatif::ProgressBar::new((cases.len() * opt.cpus.len()) as u64 * u64::from(opt.repeats))
    } else {
        indicatif::ProgressBar::hidden()
    };
    let cmdline = read_trim("/proc/cmdline");
    let mode = opt.mode.clone().unwrap_or_else(|| mode_of(&cmdline));
    if mode == "uml-native" && opt.label.is_none() {
        eprintln!("rkctl bench: native figures should say how the module was built: pass --label \"COMPILER, CODE MODEL\"");
    }
    let mut report = Report {
        units: units_of(&mode),
        mode,
        build: opt.label.clone().unwrap_or_else(|| "not stated (no --label)".into()),
        rkctl_version: env!("CARGO_PKG_VERSION").into(),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        cpus_online: info.nr_cpus,
        init_on_alloc: if cmdline.contains("init_on_alloc=0") { "off (init_on_alloc=0)" } else { "kernel default" }.into(),
        slub_tiny: if Path::new("/sys/kernel/slab/kmalloc-64").exists() { "off (SLUB sysfs present)" } else { "unknown" }.into(),
        sheaf_capacity_64: String::new(),
        repeats: opt.repeats,
        samples: opt.samples,
        ops: opt.ops,
        latency: opt.latency,
        allocators: table.clone(),
        skipped: skipped.into_iter().filter(|s| select_skip(s, opt)).collect(),
        rows: Vec::new(),
    };
    // Repeats run in passes over the whole matrix, not one row's repeats
    // back to back: a slow spell of a shared host then lands on every row
    // a little, not on one row wholly (the median over repeats takes the
    // rest off).
    let mut runs = Vec::new();
    for c in &cases {
        let id = table.iter().find(|a| a.name == c.allocator).map(|a| a.id).context("matrix names an allocator outside the table")?;
        for &cpus in &opt.cpus {
            runs.push((c, id, cpus, Ok(Vec::new())));
        }
    }
    for r in 0..opt.repeats {
        for (c, id, cpus, done) in runs.iter_mut() {
            bar.set_message(format!("{} {} {} (repeat {} of {})", c.group, c.allocator, cpus, r + 1, opt.repeats));
            measure_repeat(done, r, opt.repeats, |_| run_parallel(path, *id, c, opt, *cpus));
            bar.inc(1);
        }
    }
    report.rows = runs.into_iter().map(|(c, _, cpus, done)| row(c.clone(), cpus, done)).collect();
    bar.finish_and_clear();
    finish(&mut report.rows);
    report.sheaf_capacity_64 = read_trim("/sys/kernel/slab/rkalloc_peer_64/sheaf_capacity");
    Ok(report)
}

/// A skipped case is reported when the selection would have run it.
fn select_skip(s: &Skip, opt: &Options) -> bool {
    opt.filter.as_deref().is_none_or(|f| s.group.contains(f) || s.allocator.contains(f))
        && (opt.allocators.is_empty() || opt.allocators.contains(&s.allocator))
}

/// The failed rows of a report, as an error for the exit status: the
/// kernel refused a case it should have run.
pub fn failures(r: &Report) -> Result<()> {
    let failed: Vec<String> = r
        .rows
        .iter()
        .filter_map(|x| x.failed.as_ref().map(|f| format!("{} {} on {} CPUs: {f}", x.case.group, x.case.allocator, x.cpus)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(error::refused(format!("{} of {} bench rows failed: {}", failed.len(), r.rows.len(), failed.join("; "))))
    }
}

/// A figure in a column: one decimal, `-` when missing.
fn fig(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// Pairs per second, short.
fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The report as text: a header naming the mode, units and build, one
/// table, scaling, and what was not run.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let units = if r.units.is_empty() { units_of(&r.mode) } else { r.units.clone() };
    let _ = writeln!(s, "mode: {}: {units}", r.mode);
    let _ = writeln!(
        s,
        "build: {}; kernel {}; {} CPUs; init_on_alloc: {}; SLUB_TINY: {}; sheaf_capacity of rkalloc_peer_64: {}",
        if r.build.is_empty() { "not stated" } else { &r.build },
        r.kernel,
        r.cpus_online,
        r.init_on_alloc,
        r.slub_tiny,
        r.sheaf_capacity_64
    );
    let shape = if r.samples == 0 {
        format!("{} repeats (samples per repeat not recorded)", r.repeats)
    } else {
        format!("{} repeats of {} samples of {} pairs", r.repeats, r.samples, r.ops)
    };
    let _ = writeln!(
        s,
        "{shape}; mean = mean of the repeats' means, spread = (max - min) / mean over repeats, sample min..max = fastest..slowest sample mean{}",
        if r.latency { "; p50/p99 = single operations (--latency)" } else { "" }
    );
    let _ = write!(
        s,
        "{:<30} {:<16} {:<12} {:>5} {:>4} {:>9} {:>7} {:>21} {:>8} {:>7}",
        "case", "allocator", "pattern", "batch", "cpus", "mean", "spread", "sample min..max", "pairs/s", "ratio"
    );
    if r.latency {
        let _ = write!(s, " {:>17} {:>17}", "alloc p50/p99", "free p50/p99");
    }
    s.push('\n');
    for x in &r.rows {
        let _ = write!(s, "{:<30} {:<16} {:<12} {:>5} {:>4} ", x.case.group, x.case.allocator, x.case.pattern, x.case.batch, x.cpus);
        if let Some(e) = &x.failed {
            let _ = writeln!(s, "FAILED{}: {e}", x.errno.as_ref().map_or(String::new(), |n| format!(" ({n})")));
            continue;
        }
        let _ = write!(
            s,
            "{:>9} {:>6.1}% {:>21} {:>8} {:>7}",
            fig(x.ns_per_op),
            x.spread.unwrap_or(0.0) * 100.0,
            format!("{}..{}", fig(x.sample_min_ns), fig(x.sample_max_ns)),
            x.ops_per_sec.map_or("-".into(), rate),
            x.ratio.map_or("-".to_string(), |v| format!("{v:.2}x"))
        );
        if let Some(l) = &x.latency {
            let _ = write!(
                s,
                " {:>17} {:>17}",
                format!("{:.1}/{:.1}", l.alloc_p50_ns, l.alloc_p99_ns),
                format!("{:.1}/{:.1}", l.free_p50_ns, l.free_p99_ns)
            );
        }
        s.push('\n');
    }
    let scaled: Vec<&Row> = r.rows.iter().filter(|x| x.scaling.is_some()).collect();
    if !scaled.is_empty() {
        let _ = writeln!(s, "\nscaling: pairs/s on N CPUs over 1 CPU (low..high: slowest repeat over fastest, and the reverse)");
        for x in scaled {
            if let Some(sc) = &x.scaling {
                let _ = writeln!(
                    s,
                    "{:<30} {:<16} {:<12} {:>5} {:>4} {:>6.2}x ({:.2}..{:.2})",
                    x.case.group, x.case.allocator, x.case.pattern, x.case.batch, x.cpus, sc.ratio, sc.low, sc.high
                );
            }
        }
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(s, "\nnot run:");
        for k in &r.skipped {
            let _ = writeln!(s, "  {} in {}: {}", k.allocator, k.group, k.reason);
        }
    }
    s
}

/// Prints the report as one table.
pub fn print(r: &Report) {
    print!("{}", render(r));
}

/// Reads a report written with `--out` or `--json`.
pub fn load(path: &Path) -> Result<Report> {
    use crate::error::{Class, ResultExt};
    let s = std::fs::read_to_string(path).class(Class::Usage, || format!("cannot read {}", path.display()))?;
    serde_json::from_str(&s).class(Class::Usage, || format!("{} is not a bench report", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::synthetic;

    fn spec(quick: bool) -> Spec {
        Spec { quick, page_size: 4096, nr_cpus: 2 }
    }

    fn rows_of<'a>(cases: &'a [Case], allocator: &str) -> Vec<&'a Case> {
        cases.iter().filter(|c| c.allocator == allocator).collect()
    }

    #[test]
    fn mode_comes_from_the_command_line() {
        assert_eq!(mode_of("console=ttyS0 rkalloc_accel=icount init_on_alloc=0"), "icount");
        assert_eq!(mode_of("rkalloc_accel=tcg"), "tcg-wallclock");
        assert_eq!(mode_of("quiet rkalloc_accel=kvm"), "kvm-wallclock");
        assert_eq!(mode_of("mem=2G rkalloc_accel=uml"), "uml-native");
        assert_eq!(mode_of("rkalloc_accel=hvf"), "unknown (hvf)");
        assert!(mode_of("console=ttyS0").starts_with("unknown"));
        assert!(units_of("icount").starts_with("guest instructions"));
        assert!(units_of("uml-native").starts_with("ns of real time"));
        assert!(axis_unit("uml-native").contains("real time"));
    }

    #[test]
    fn every_class_gets_its_groups() {
        let (cases, _) = matrix(&synthetic::table(), &spec(false));
        let groups = |a: &str| {
            let mut g: Vec<String> = rows_of(&cases, a).iter().map(|c| c.group.clone()).collect();
            g.dedup();
            g
        };
        // Pages: pairs at four orders, batches and random lifetimes where
        // 1024 blocks fit, against alloc_pages.
        assert_eq!(
            groups("rk_pool"),
            [
                "pages order 0",
                "pages order 0, batch",
                "pages order 0, random_life",
                "pages order 3",
                "pages order 3, batch",
                "pages order 3, random_life",
                "pages order 6",
                "pages order 9"
            ]
        );
        assert!(rows_of(&cases, "rk_pool").iter().all(|c| c.baseline.as_deref() == Some("alloc_pages")));
        assert_eq!(rows_of(&cases, "alloc_pages").len(), rows_of(&cases, "rk_pool").len());
        let batch = cases.iter().find(|c| c.group == "pages order 3, batch" && c.allocator == "rk_pool").unwrap();
        assert_eq!((batch.pattern.as_str(), batch.bytes, batch.batch), ("batch", 32768, PAGE_BATCH));
        // Objects: every pattern, the batch sweep, against kmem_cache.
        let slab = rows_of(&cases, "rk_slab");
        let sweep: Vec<u32> = slab.iter().filter(|c| c.pattern == "batch").map(|c| c.batch).collect();
        assert_eq!(sweep, OBJECT_BATCHES);
        let sweep: Vec<u32> = slab.iter().filter(|c| c.pattern == "batch_random").map(|c| c.batch).collect();
        assert_eq!(sweep, OBJECT_BATCHES);
        assert!(slab.iter().any(|c| c.pattern == "random_life") && slab.iter().any(|c| c.pattern == "cross_cpu"));
        assert!(slab.iter().all(|c| c.bytes == 64 && c.baseline.as_deref() == Some("kmem_cache")));
        // kmem_cache is in the object groups only.
        assert!(rows_of(&cases, "kmem_cache").iter().all(|c| c.group.starts_with("64 B objects")));
        // The arena: pairs and the batch sweep, with its peer beside it.
        let arena = rows_of(&cases, "rk_arena");
        assert!(arena.iter().all(|c| matches!(c.pattern.as_str(), "pair" | "batch") && c.baseline.as_deref() == Some("kmalloc")));
        assert_eq!(arena.len(), 1 + OBJECT_BATCHES.len());
        for a in &arena {
            assert!(cases.iter().any(|c| c.same_point(a) && c.allocator == "kmalloc"), "no kmalloc beside {a:?}");
        }
        // Size classes: every malloc-class allocator at each size.
        let malloc: Vec<u64> = rows_of(&cases, "rk_malloc").iter().map(|c| c.bytes).collect();
        assert_eq!(malloc, MALLOC_SIZES);
        assert_eq!(rows_of(&cases, "vmalloc").iter().filter(|c| c.group.starts_with("malloc")).count(), MALLOC_SIZES.len());
        // Heaps: every policy, random lifetimes, against kmalloc.
        for h in ["heap_first", "heap_next", "heap_best", "heap_segregated"] {
            let r = rows_of(&cases, h);
            assert_eq!(r.iter().map(|c| c.bytes).collect::<Vec<_>>(), HEAP_SIZES, "{h}");
            assert!(r.iter().all(|c| c.pattern == "random_life" && c.batch == HEAP_LIVE && c.baseline.as_deref() == Some("kmalloc")));
        }
        // Baselines come first in each group, and every baseline is there.
        for c in &cases {
            if let Some(b) = &c.baseline {
                let pos = |a: &str| cases.iter().position(|x| x.same_point(c) && x.allocator == a);
                assert!(pos(b).unwrap() < pos(&c.allocator).unwrap(), "{c:?}");
            }
        }
    }

    #[test]
    fn a_new_page_allocator_and_a_fifth_policy_get_rows() {
        let (before, _) = matrix(&synthetic::table(), &spec(false));
        let (cases, skipped) = matrix(&synthetic::extended(), &spec(false));
        // The new page allocator: its range (4 KiB..32 KiB) holds orders 0
        // and 3, so those rows run and orders 6 and 9 are skipped.
        let pages2 = rows_of(&cases, "rk_pages2");
        assert_eq!(pages2.len(), 6);
        assert!(pages2.iter().all(|c| c.baseline.as_deref() == Some("alloc_pages") && c.bytes <= 32768));
        let sk: Vec<&Skip> = skipped.iter().filter(|s| s.allocator == "rk_pages2").collect();
        assert_eq!(sk.iter().map(|s| s.group.as_str()).collect::<Vec<_>>(), ["pages order 6", "pages order 9"]);
        assert!(sk[0].reason.contains("262144 B is outside its range 4096..=32768"), "{}", sk[0].reason);
        // The fifth policy's heap: the heap rows.
        let worst = rows_of(&cases, "heap_worst");
        assert_eq!(worst.len(), HEAP_SIZES.len());
        assert!(worst.iter().all(|c| c.group.starts_with("heaps") && c.baseline.as_deref() == Some("kmalloc")));
        // Nothing else changed.
        let old: Vec<&Case> = cases.iter().filter(|c| c.allocator != "rk_pages2" && c.allocator != "heap_worst").collect();
        assert_eq!(old, before.iter().collect::<Vec<_>>());
    }

    #[test]
    fn sizes_out_of_range_are_skipped_not_run() {
        let mut t = synthetic::table();
        // A slab that serves at most 32 bytes: no 64 B rows at all.
        t[6].max_bytes = 32;
        // A size-class allocator from 16 bytes to 4 KiB.
        t[7].min_bytes = 16;
        t[7].max_bytes = 4096;
        let (cases, skipped) = matrix(&t, &spec(false));
        assert!(rows_of(&cases, "rk_slab").is_empty());
        assert!(skipped.iter().any(|s| s.allocator == "rk_slab" && s.group == "64 B objects, pair"));
        let sizes: Vec<u64> = rows_of(&cases, "rk_malloc").iter().map(|c| c.bytes).collect();
        assert_eq!(sizes, [16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096]);
        for s in [8u64, 8192, 16384] {
            assert!(skipped.iter().any(|k| k.allocator == "rk_malloc" && k.bytes == s), "{s} not listed as skipped");
        }
        // kmem_cache runs the object groups still, without a comparison.
        assert!(!rows_of(&cases, "kmem_cache").is_empty());
    }

    #[test]
    fn a_peer_that_cannot_serve_leaves_no_ratio() {
        let mut t = synthetic::table();
        t[3].max_bytes = 4096; // kmalloc
        let (cases, skipped) = matrix(&t, &spec(false));
        let big = cases.iter().find(|c| c.allocator == "rk_malloc" && c.bytes == 8192).unwrap();
        assert_eq!(big.baseline, None);
        assert!(skipped.iter().any(|s| s.allocator == "kmalloc" && s.bytes == 8192 && s.reason.contains("the peer of rk_malloc")));
    }

    #[test]
    fn one_cpu_and_frees_all_rule_patterns_out() {
        let (cases, skipped) = matrix(&synthetic::table(), &Spec { quick: false, page_size: 4096, nr_cpus: 1 });
        assert!(!cases.iter().any(|c| c.pattern == "cross_cpu"));
        assert!(skipped.iter().any(|s| s.group == "64 B objects, cross_cpu" && s.reason.contains("2 CPUs")));
        // An arena-class allocator is never given per-object lifetimes.
        assert!(!cases.iter().any(|c| c.allocator == "rk_arena" && matches!(c.pattern.as_str(), "random_life" | "cross_cpu")));
        let mut t = synthetic::table();
        t[11].flags |= uapi::RKALLOC_ALLOCATOR_FREES_ALL; // a heap that frees all at once
        let (cases, skipped) = matrix(&t, &spec(true));
        assert!(rows_of(&cases, "heap_segregated").is_empty());
        assert!(skipped.iter().any(|s| s.allocator == "heap_segregated" && s.reason.contains("frees only all at once")));
    }

    #[test]
    fn unknown_classes_are_listed() {
        let mut t = synthetic::table();
        t.push(synthetic::entry("rk_new", AllocatorClass::Unknown(9), 0, (1, 64), "", None));
        let t = synthetic::numbered(t);
        let (cases, skipped) = matrix(&t, &spec(true));
        assert!(rows_of(&cases, "rk_new").is_empty());
        assert!(skipped.iter().any(|s| s.allocator == "rk_new" && s.reason.contains("class 9")));
    }

    #[test]
    fn quick_is_a_subset() {
        let (full, _) = matrix(&synthetic::table(), &spec(false));
        let (quick, _) = matrix(&synthetic::table(), &spec(true));
        assert!(quick.len() < full.len());
        assert!(quick.iter().all(|c| full.contains(c)));
        // The sweep is there in quick too.
        assert_eq!(quick.iter().filter(|c| c.allocator == "rk_slab" && c.pattern == "batch").count(), OBJECT_BATCHES.len());
    }

    #[test]
    fn selection_keeps_baselines() {
        let (cases, _) = matrix(&synthetic::table(), &spec(true));
        let s = select(cases.clone(), None, &["rk_slab".into()]);
        assert!(s.iter().all(|c| c.allocator == "rk_slab" || c.allocator == "kmem_cache"));
        assert_eq!(s.iter().filter(|c| c.allocator == "kmem_cache").count(), s.iter().filter(|c| c.allocator == "rk_slab").count());
        let s = select(cases.clone(), Some("malloc 8 B"), &[]);
        assert_eq!(s.iter().map(|c| c.allocator.as_str()).collect::<Vec<_>>(), ["kmalloc", "vmalloc", "kvmalloc", "rk_malloc"]);
        // A filter on the allocator brings its peer along.
        let s = select(cases.clone(), Some("heap_best"), &[]);
        assert!(s.iter().any(|c| c.allocator == "kmalloc") && s.iter().all(|c| c.group.starts_with("heaps")));
        assert!(select(cases, Some("nonesuch"), &[]).is_empty());
    }

    fn sample(mean: u64) -> Sample {
        Sample { mean_ps: mean, median_ps: mean, min_ps: mean - 10_000, max_ps: mean + 20_000, total_ns: 1_000_000, pairs: 1000, latency: None }
    }

    fn case(allocator: &str, baseline: Option<&str>) -> Case {
        Case { group: "g".into(), allocator: allocator.into(), pattern: "pair".into(), bytes: 64, batch: 1, baseline: baseline.map(Into::into) }
    }

    #[test]
    fn repeats_aggregate() {
        let reps = vec![vec![sample(100_000)], vec![sample(110_000)], vec![sample(90_000)]];
        let r = row(case("a", None), 1, Ok(reps));
        assert_eq!(r.ns_per_op, Some(100.0));
        assert!((r.spread.unwrap() - 0.2).abs() < 1e-9);
        assert_eq!((r.sample_min_ns, r.sample_median_ns, r.sample_max_ns), (Some(80.0), Some(100.0), Some(130.0)));
        assert_eq!(r.repeat_ops_per_sec, [1e6, 1e6, 1e6]);
        assert_eq!(r.repeat_medians_ns, [100.0, 110.0, 90.0]);
        assert_eq!(r.median_ns(), Some(100.0));
        assert_eq!(r.repeat_median_ops_per_sec, [1e7, 1e9 / 110.0, 1e9 / 90.0]);
        assert_eq!(r.failed, None);
        assert_eq!(r.latency, None);
        // Two CPUs: throughput adds up, the mean is per pair.
        let r = row(case("a", None), 2, Ok(vec![vec![sample(100_000), sample(120_000)]]));
        assert_eq!(r.ns_per_op, Some(110.0));
        assert_eq!(r.ops_per_sec, Some(2e6));
        assert_eq!(r.repeat_medians_ns, [110.0]);
        assert_eq!(r.repeat_median_ops_per_sec, [1e9 / 100.0 + 1e9 / 120.0]);
    }

    #[test]
    fn latency_percentiles_are_reported_in_ns() {
        let mut s = sample(100_000);
        s.latency = Some([40_000, 90_000, 30_000, 70_000, 20_000]);
        let r = row(case("a", None), 1, Ok(vec![vec![s]]));
        assert_eq!(
            r.latency,
            Some(Latency { alloc_p50_ns: 40.0, alloc_p99_ns: 90.0, free_p50_ns: 30.0, free_p99_ns: 70.0, clock_overhead_ns: 20.0 })
        );
    }

    #[test]
    fn a_later_failed_repeat_fails_the_row() {
        let err = Errno { cmd: uapi::cmd::bench(), errno: libc::ENOMEM };
        let outcome = measure(3, |r| if r == 0 { Ok(vec![sample(100_000)]) } else { Err(anyhow::Error::new(err).context("rk_pool pair")) });
        let f = outcome.clone().unwrap_err();
        assert_eq!((f.repeat, f.repeats, f.errno.as_deref()), (2, 3, Some("ENOMEM")));
        let r = row(case("a", None), 1, outcome);
        assert_eq!(r.ns_per_op, None, "the first repeat's mean must not survive");
        assert_eq!(r.ops_per_sec, None);
        assert!(r.repeat_means_ns.is_empty());
        assert_eq!(r.errno.as_deref(), Some("ENOMEM"));
        let msg = r.failed.as_deref().unwrap();
        assert!(msg.starts_with("repeat 2 of 3: rk_pool pair: RKALLOC_IOC_BENCH: ENOMEM"), "{msg}");
        // And the report shows it as failed, and fails the run.
        let rep = report(vec![r]);
        assert!(render(&rep).contains("FAILED (ENOMEM): repeat 2 of 3"));
        assert_eq!(error::classify(&failures(&rep).unwrap_err()), error::Class::Refused);
        // Interleaved rows: a row that failed runs no more repeats, the
        // others go on.
        let mut rows = [Ok(Vec::new()), Ok(Vec::new())];
        let mut calls = [0, 0];
        for r in 0..3 {
            for (i, done) in rows.iter_mut().enumerate() {
                measure_repeat(done, r, 3, |r| {
                    calls[i] += 1;
                    if i == 0 && r == 1 {
                        Err(anyhow::Error::new(err))
                    } else {
                        Ok(vec![sample(1_000_000)])
                    }
                });
            }
        }
        assert_eq!(calls, [2, 3]);
        assert_eq!(rows[0].as_ref().unwrap_err().repeat, 2);
        assert_eq!(rows[1].as_ref().unwrap().len(), 3);
        // Every repeat ran when none failed.
        let mut n = 0;
        assert_eq!(measure(4, |_| { n += 1; Ok(vec![sample(1_000_000)]) }).unwrap().len(), 4);
        assert_eq!(n, 4);
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            mode: "icount".into(),
            units: units_of("icount"),
            build: "clang 19, -mcmodel=kernel".into(),
            rkctl_version: "0.1.0".into(),
            kernel: "7.2.13".into(),
            cpus_online: 2,
            init_on_alloc: "off".into(),
            slub_tiny: "off".into(),
            sheaf_capacity_64: "60".into(),
            repeats: 3,
            samples: 64,
            ops: 2048,
            latency: false,
            allocators: synthetic::table(),
            skipped: vec![Skip { group: "pages order 9".into(), allocator: "rk_x".into(), bytes: 1 << 21, reason: "too big".into() }],
            rows,
        }
    }

    #[test]
    fn ratios_and_scaling() {
        let mut rows = vec![
            row(case("kmalloc", None), 1, Ok(vec![vec![sample(200_000)]])),
            row(case("rk", Some("kmalloc")), 1, Ok(vec![vec![sample(100_000)], vec![sample(100_000)]])),
            row(case("kmalloc", None), 2, Ok(vec![vec![sample(400_000), sample(400_000)]])),
            row(case("rk", Some("kmalloc")), 2, Ok(vec![vec![sample(100_000), sample(100_000)], vec![sample(100_000), sample(100_000)]])),
        ];
        // One repeat of rk on 2 CPUs twice as fast in wall time.
        rows[3].repeat_ops_per_sec = vec![2e6, 4e6];
        rows[3].ops_per_sec = Some(3e6);
        finish(&mut rows);
        assert_eq!(rows[1].ratio, Some(0.5));
        assert_eq!(rows[1].median_ratio, Some(0.5));
        assert_eq!(rows[3].ratio, Some(0.25));
        assert_eq!(rows[0].ratio, None);
        assert_eq!(rows[2].scaling, Some(Scaling { ratio: 2.0, low: 2.0, high: 2.0 }));
        assert_eq!(rows[3].scaling, Some(Scaling { ratio: 3.0, low: 2.0, high: 4.0 }));
        let text = render(&report(rows));
        assert!(text.contains("3.00x (2.00..4.00)"), "{text}");
        // A failed baseline gives no ratio.
        let mut rows = vec![
            row(case("kmalloc", None), 1, Err(Failure { repeat: 1, repeats: 1, errno: Some("EINTR".into()), message: "x".into() })),
            row(case("rk", Some("kmalloc")), 1, Ok(vec![vec![sample(100_000)]])),
        ];
        finish(&mut rows);
        assert_eq!(rows[1].ratio, None);
    }

    #[test]
    fn report_json_round_trips() {
        let mut rows = vec![
            row(case("kmalloc", None), 1, Ok(vec![vec![sample(200_000)]])),
            row(case("rk", Some("kmalloc")), 1, Err(Failure { repeat: 2, repeats: 2, errno: Some("ENOMEM".into()), message: "m".into() })),
        ];
        let mut s = sample(100_000);
        s.latency = Some([1000, 2000, 3000, 4000, 500]);
        rows.push(row(case("rk2", Some("kmalloc")), 1, Ok(vec![vec![s]])));
        finish(&mut rows);
        let r = report(rows);
        let json = serde_json::to_string_pretty(&r).unwrap();
        // A failed row's figures are null, not NaN (which JSON cannot hold).
        assert!(json.contains("\"ns_per_op\": null"));
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // The names scripts read stay where they were.
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        for k in ["group", "allocator", "pattern", "bytes", "batch", "baseline", "cpus", "ns_per_op", "spread", "ops_per_sec", "ratio", "failed"] {
            assert!(v["rows"][0].get(k).is_some(), "no {k}");
        }
        assert_eq!(v["mode"], "icount");
        assert_eq!(v["build"], "clang 19, -mcmodel=kernel");
    }

    #[test]
    fn older_reports_still_load() {
        // docs/bench/v1 has reports of the ABI v1 bench (p50_ns/p99_ns, no
        // units or build): they load, and print with their mode's units.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/v1/icount.json");
        let r = load(&path).unwrap();
        assert_eq!(r.mode, "icount");
        assert!(r.rows.len() > 20);
        assert!(r.rows.iter().all(|x| x.ns_per_op.is_some() || x.failed.is_some()));
        assert!(render(&r).starts_with("mode: icount: guest instructions"));
        let e = load(Path::new("/nonexistent/r.json")).unwrap_err();
        assert_eq!(error::classify(&e), error::Class::Usage);
    }

    #[test]
    fn the_table_says_mode_units_and_build() {
        let t = render(&report(vec![row(case("kmalloc", None), 1, Ok(vec![vec![sample(200_000)]]))]));
        let mut lines = t.lines();
        assert!(lines.next().unwrap().starts_with("mode: icount: guest instructions per alloc+free pair"));
        assert!(lines.next().unwrap().starts_with("build: clang 19, -mcmodel=kernel; kernel 7.2.13; 2 CPUs"));
        assert!(t.contains("mean") && t.contains("spread") && t.contains("sample min..max"));
        assert!(!t.contains("p99"), "no p99 column without --latency");
        assert!(t.contains("190.0..220.0"));
        assert!(t.contains("not run:\n  rk_x in pages order 9: too big"));
    }
}
