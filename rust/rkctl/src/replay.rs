//! `rkctl replay TRACE`: replays an allocation trace in the kernel
//! (`RKALLOC_IOC_REPLAY`) against every allocator that can serve it, and
//! `rkctl gen-trace`: writes synthetic traces.
//!
//! The trace format is text, one op a line: `a <id> <size>` allocates `size`
//! bytes under the name `id`, `f <id>` frees it; `#` starts a comment. Ids
//! are any token; they are renumbered densely (a freed id's number is
//! reused), so a trace may name allocations by pointer.
use crate::{
    device::{Device, KResult},
    error::{self, Class, ResultExt},
    errors::Cases,
    table::{self, Allocator},
    uapi,
};
use anyhow::{bail, Result};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::Serialize;
use std::{collections::HashMap, fmt::Write as _, path::Path};

/// A parsed trace, ready for the ioctl.
#[derive(Debug)]
pub struct Trace {
    pub ops: Vec<uapi::rkalloc_trace_op>,
    /// Dense ids are below it.
    pub max_id: u32,
    pub allocs: u64,
    pub frees: u64,
    pub max_size: u64,
    pub min_size: u64,
    /// Most requested bytes live at once.
    pub peak_live: u64,
    /// Still live at the end (the kernel frees them, untimed).
    pub live_at_end: u64,
}

/// Parses the text of a trace. Errors name the line and what is wrong; a
/// free of an id that is not live, or an allocation of a live id, is an
/// error, as the kernel would refuse it.
pub fn parse(text: &str) -> Result<Trace> {
    let mut ops = Vec::new();
    let mut names: HashMap<&str, (u32, u64)> = HashMap::new();
    let mut spare: Vec<u32> = Vec::new();
    let (mut max_id, mut allocs, mut frees, mut max_size, mut live, mut peak) = (0u32, 0, 0, 0, 0u64, 0u64);
    let mut min_size = u64::MAX;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let Some(op) = w.next() else { continue };
        let Some(id) = w.next() else { bail!("line {n}: `{op}` needs an id") };
        match op {
            "a" => {
                let Some(size) = w.next() else { bail!("line {n}: `a {id}` needs a size") };
                let Ok(size) = size.parse::<u64>() else { bail!("line {n}: the size is not a number") };
                if size == 0 || size > u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) {
                    bail!("line {n}: size {size} is not in 1..={}", uapi::RKALLOC_MAX_REPLAY_SIZE);
                }
                if names.contains_key(id) {
                    bail!("line {n}: allocation of id {id}, which is still live");
                }
                let dense = match spare.pop() {
                    Some(d) => d,
                    None => {
                        max_id += 1;
                        max_id - 1
                    }
                };
                names.insert(id, (dense, size));
                ops.push(uapi::rkalloc_trace_op { op: uapi::RKALLOC_TRACE_ALLOC, id: dense, size });
                allocs += 1;
                max_size = max_size.max(size);
                min_size = min_size.min(size);
                live += size;
                peak = peak.max(live);
            }
            "f" => {
                let Some((dense, size)) = names.remove(id) else { bail!("line {n}: free of id {id}, which is not live") };
                spare.push(dense);
                ops.push(uapi::rkalloc_trace_op { op: uapi::RKALLOC_TRACE_FREE, id: dense, size: 0 });
                frees += 1;
                live -= size;
            }
            _ => bail!("line {n}: unknown op `{op}` (expected `a ID SIZE` or `f ID`)"),
        }
        if let Some(extra) = w.next() {
            bail!("line {n}: unexpected `{extra}` after the op");
        }
    }
    if ops.is_empty() {
        bail!("the trace has no ops");
    }
    if ops.len() > uapi::RKALLOC_MAX_REPLAY_OPS as usize {
        bail!("the trace has {} ops, more than the kernel's {}", ops.len(), uapi::RKALLOC_MAX_REPLAY_OPS);
    }
    Ok(Trace { ops, max_id, allocs, frees, max_size, min_size, peak_live: peak, live_at_end: names.len() as u64 })
}

/// The allocators of the table a trace is replayed on (those `names`
/// picks, all by default), each with why it cannot serve the trace, if it
/// cannot: a size outside its range, or it frees only all at once (a
/// trace's frees mean nothing to it).
pub fn plan<'a>(t: &'a [Allocator], trace: &Trace, names: &[String]) -> Result<Vec<(&'a Allocator, Option<String>)>> {
    Ok(table::select(t, names)?
        .into_iter()
        .map(|a| {
            let why = if a.frees_all() {
                Some("cannot serve a trace: it frees only all at once".to_string())
            } else if !a.serves(trace.max_size) || !a.serves(trace.min_size) {
                Some(format!(
                    "cannot serve sizes {}..={} B: its range is {}..={} B",
                    trace.min_size, trace.max_size, a.min_bytes, a.max_bytes
                ))
            } else {
                None
            };
            (a, why)
        })
        .collect())
}

/// One allocator's results.
#[derive(Debug, Serialize)]
pub struct Row {
    pub allocator: String,
    /// Why it did not run ("cannot serve ..."), if it did not.
    pub skipped: Option<String>,
    /// The kernel refused a replay the table says it can serve.
    pub failed: Option<String>,
    /// Median over the repeats.
    pub total_ns: u64,
    pub ops_per_sec: f64,
    pub peak_live_bytes: u64,
    pub peak_footprint_bytes: u64,
    pub footprint_ratio: f64,
    pub internal_bytes: u64,
    /// internal / footprint.
    pub internal_ratio: f64,
    pub metadata_bytes: u64,
    /// Only where the allocator reports its own fragmentation (heaps).
    pub external_permille: Option<u32>,
    pub failures: u32,
}

/// The whole replay.
#[derive(Debug, Serialize)]
pub struct Report {
    pub trace: String,
    pub ops: usize,
    pub allocs: u64,
    pub frees: u64,
    pub max_id: u32,
    pub max_size: u64,
    pub peak_live_bytes: u64,
    pub live_at_end: u64,
    pub repeats: u32,
    pub rows: Vec<Row>,
}

/// Replays `trace` (named `name`) on each allocator of `names` (all by
/// default), `repeats` times each. A row the kernel refuses is reported as
/// failed and the others still run ([`failures`] makes it an error).
pub fn run(dev: &Path, name: &str, trace: &Trace, names: &[String], repeats: u32) -> Result<Report> {
    let d = Device::open(dev)?;
    let t = d.allocators()?;
    let mut rows = Vec::new();
    for (a, why) in plan(&t, trace, names)? {
        let mut runs = Vec::new();
        let mut failed = None;
        if why.is_none() {
            for _ in 0..repeats.max(1) {
                let mut r = uapi::rkalloc_replay {
                    allocator: a.id,
                    ops: trace.ops.as_ptr() as u64,
                    count: trace.ops.len() as u32,
                    max_id: trace.max_id,
                    ..Default::default()
                };
                match d.replay(&mut r) {
                    Ok(()) => runs.push(r),
                    Err(e) => {
                        failed = Some(e.to_string());
                        runs.clear();
                        break;
                    }
                }
            }
        }
        let mut r = row(&a.name, trace, &mut runs, why);
        r.failed = failed;
        rows.push(r);
    }
    Ok(Report {
        trace: name.into(),
        ops: trace.ops.len(),
        allocs: trace.allocs,
        frees: trace.frees,
        max_id: trace.max_id,
        max_size: trace.max_size,
        peak_live_bytes: trace.peak_live,
        live_at_end: trace.live_at_end,
        repeats,
        rows,
    })
}

/// The rows the kernel refused, as an error for the exit status.
pub fn failures(r: &Report) -> Result<()> {
    let failed: Vec<String> = r.rows.iter().filter_map(|w| w.failed.as_ref().map(|f| format!("{}: {f}", w.allocator))).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(error::refused(format!("the kernel refused {} replays: {}", failed.len(), failed.join("; "))))
    }
}

/// The row of the median run (by time); the space figures are the same in
/// every run of a deterministic allocator.
fn row(name: &str, trace: &Trace, runs: &mut [uapi::rkalloc_replay], skipped: Option<String>) -> Row {
    runs.sort_by_key(|a| a.total_ns);
    let Some(m) = runs.get(runs.len() / 2) else {
        return Row {
            allocator: name.into(),
            skipped,
            failed: None,
            total_ns: 0,
            ops_per_sec: 0.0,
            peak_live_bytes: trace.peak_live,
            peak_footprint_bytes: 0,
            footprint_ratio: 0.0,
            internal_bytes: 0,
            internal_ratio: 0.0,
            metadata_bytes: 0,
            external_permille: None,
            failures: 0,
        };
    };
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Row {
        allocator: name.into(),
        skipped,
        failed: None,
        total_ns: m.total_ns,
        ops_per_sec: ratio(trace.ops.len() as u64, m.total_ns) * 1e9,
        peak_live_bytes: m.peak_live_bytes,
        peak_footprint_bytes: m.peak_footprint_bytes,
        footprint_ratio: ratio(m.peak_footprint_bytes, m.peak_live_bytes),
        internal_bytes: m.internal_bytes_at_peak,
        internal_ratio: ratio(m.internal_bytes_at_peak, m.peak_footprint_bytes),
        metadata_bytes: m.metadata_bytes_at_peak,
        external_permille: (m.flags & uapi::RKALLOC_REPLAY_OWN_FRAG != 0).then_some(m.external_permille_at_peak),
        failures: m.failures,
    }
}

/// The table of a report.
pub fn print(r: &Report) {
    println!(
        "replay {}: {} ops ({} allocs, {} frees, {} live at the end), {} ids, sizes up to {} B, peak live {} B, median of {}",
        r.trace, r.ops, r.allocs, r.frees, r.live_at_end, r.max_id, r.max_size, r.peak_live_bytes, r.repeats
    );
    println!(
        "{:>16} {:>12} {:>10} {:>12} {:>14} {:>7} {:>12} {:>7} {:>9} {:>6}",
        "allocator", "ops/s", "time ms", "peak live", "peak footprint", "ratio", "internal B", "int %", "ext perm", "fails"
    );
    for w in &r.rows {
        if let Some(s) = &w.skipped {
            println!("{:>16} {s}", w.allocator);
            continue;
        }
        if let Some(f) = &w.failed {
            println!("{:>16} FAILED: {f}", w.allocator);
            continue;
        }
        println!(
            "{:>16} {:>12.0} {:>10.2} {:>12} {:>14} {:>7.2} {:>12} {:>7.1} {:>9} {:>6}",
            w.allocator,
            w.ops_per_sec,
            w.total_ns as f64 / 1e6,
            w.peak_live_bytes,
            w.peak_footprint_bytes,
            w.footprint_ratio,
            w.internal_bytes,
            w.internal_ratio * 100.0,
            w.external_permille.map_or("-".into(), |e| e.to_string()),
            w.failures
        );
    }
}

/// Reads and parses a trace file.
pub fn load(path: &Path) -> Result<Trace> {
    let text = std::fs::read_to_string(path).class(Class::Usage, || format!("cannot read {}", path.display()))?;
    parse(&text).class(Class::Usage, || format!("{} is not a valid trace", path.display()))
}

impl Device {
    /// `RKALLOC_IOC_REPLAY`.
    pub fn replay(&self, a: &mut uapi::rkalloc_replay) -> KResult<()> {
        self.ioctl(uapi::cmd::replay(), a)
    }
}

/// `RKALLOC_IOC_REPLAY` error paths (for `rkctl errors`): every malformed
/// trace the parser would refuse is refused by the kernel too, with the
/// header's errno, and changes nothing; so is every allocator of the table
/// asked for a size outside its range, or one that frees all at once.
pub fn error_cases(dev: &Device, t: &crate::errors::Tables, c: &mut Cases) -> Result<()> {
    let (a, f) = (uapi::RKALLOC_TRACE_ALLOC, uapi::RKALLOC_TRACE_FREE);
    let op = |op, id, size| uapi::rkalloc_trace_op { op, id, size };
    let replay = |ops: &[uapi::rkalloc_trace_op], max_id, allocator| {
        let mut r = uapi::rkalloc_replay {
            allocator,
            ops: ops.as_ptr() as u64,
            count: ops.len() as u32,
            max_id,
            ..Default::default()
        };
        dev.replay(&mut r).map(|()| r)
    };
    // The malformed traces go to an allocator that serves small sizes one
    // by one: the trace is what is wrong, not the allocator.
    let Some(any) = t.allocators.iter().find(|x| !x.frees_all() && x.serves(8) && x.serves(5000)) else {
        c.holds("replay: an allocator serves 8..=5000 B one by one", false);
        return Ok(());
    };
    let run = |ops: &[uapi::rkalloc_trace_op], max_id| replay(ops, max_id, any.id);
    let used = || dev.pool_stats().map(|s| s.total_pages - s.free_pages).unwrap_or(u64::MAX);
    // Slab caches keep empty slabs until shrunk: compare shrunk pools.
    dev.shrink()?;
    let before = (used(), dev.info()?.fd_bytes);
    c.check("replay: free of an id not live", "EINVAL", run(&[op(a, 0, 8), op(f, 1, 0)], 2));
    c.check("replay: double free", "EINVAL", run(&[op(a, 0, 8), op(f, 0, 0), op(f, 0, 0)], 2));
    c.check("replay: allocation of a live id", "EINVAL", run(&[op(a, 0, 8), op(a, 0, 8)], 2));
    c.check("replay: id at max_id", "EINVAL", run(&[op(a, 2, 8)], 2));
    c.check("replay: size 0", "EINVAL", run(&[op(a, 0, 0)], 1));
    c.check("replay: size too big", "EINVAL", run(&[op(a, 0, u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) + 1)], 1));
    c.check("replay: free with a size", "EINVAL", run(&[op(a, 0, 8), op(f, 0, 8)], 1));
    c.check("replay: unknown op", "EINVAL", run(&[op(7, 0, 8)], 1));
    c.check("replay: max_id 0", "EINVAL", run(&[op(a, 0, 8)], 0));
    c.check("replay: count 0", "EINVAL", run(&[], 1));
    let good = [op(a, 0, 100), op(a, 1, 5000), op(f, 0, 0)];
    let mut r = uapi::rkalloc_replay { count: 3, max_id: 2, ops: good.as_ptr() as u64, reserved: 1, allocator: any.id, ..Default::default() };
    c.check("replay: non-zero reserved field", "EINVAL", dev.replay(&mut r));
    let mut r = uapi::rkalloc_replay {
        count: uapi::RKALLOC_MAX_REPLAY_OPS + 1,
        max_id: 2,
        ops: good.as_ptr() as u64,
        allocator: any.id,
        ..Default::default()
    };
    c.check("replay: count above the maximum", "E2BIG", dev.replay(&mut r));
    let mut r = uapi::rkalloc_replay { count: 3, max_id: 2, ops: 0x10, allocator: any.id, ..Default::default() };
    c.check("replay: unreadable ops", "EFAULT", dev.replay(&mut r));
    c.check("replay: unknown allocator", "EINVAL", replay(&good, 2, t.allocators.len() as u32));
    for x in &t.allocators {
        if x.frees_all() {
            c.check(format!("replay: {} (frees only all at once)", x.name), "EINVAL", replay(&good, 2, x.id));
        }
        let max = u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE);
        if x.max_bytes < max {
            c.check(format!("replay: {} asked for max_bytes + 1", x.name), "EINVAL", replay(&[op(a, 0, x.max_bytes + 1)], 1, x.id));
        }
        if x.min_bytes > 1 {
            c.check(format!("replay: {} asked for min_bytes - 1", x.name), "EINVAL", replay(&[op(a, 0, x.min_bytes - 1)], 1, x.id));
        }
    }
    let cap = dev.info()?.fd_cap_bytes;
    let max = u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE);
    // The peak check comes before any allocator's range check, so any
    // allocator will do; one that serves the largest size is clearer.
    let big = t.allocators.iter().find(|x| !x.frees_all() && x.serves(max)).unwrap_or(any);
    let over: Vec<_> = (0..(cap / max + 1) as u32).map(|i| op(a, i, max)).collect();
    c.check("replay: peak above the per-fd cap", "ENOMEM", replay(&over, over.len() as u32, big.id));
    let after = (used(), dev.info()?.fd_bytes);
    c.holds("replay: failed replays changed nothing", before == after);
    for x in t.allocators.iter().filter(|x| !x.frees_all() && x.serves(100) && x.serves(5000)) {
        let r = replay(&good, 2, x.id);
        let own = x.own_frag();
        c.holds_or(
            format!("replay: a good trace runs on {}", x.name),
            match r {
                Ok(r) if r.peak_live_bytes == 5100
                    && r.peak_footprint_bytes >= 5100
                    && r.failures == 0
                    && (r.flags & uapi::RKALLOC_REPLAY_OWN_FRAG != 0) == own =>
                {
                    Ok(())
                }
                Ok(r) => Err(format!(
                    "peak live {} footprint {} failures {} own_frag flag {} (table: {own})",
                    r.peak_live_bytes,
                    r.peak_footprint_bytes,
                    r.failures,
                    r.flags & uapi::RKALLOC_REPLAY_OWN_FRAG != 0
                )),
                Err(e) => Err(e.to_string()),
            },
        );
    }
    dev.shrink()?;
    c.holds("replay: nothing stays allocated", (used(), dev.info()?.fd_bytes) == before);
    Ok(())
}

/// The synthetic trace shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// Sizes uniform in 16..=4096, lifetimes uniform in 1..=400 ops.
    Uniform,
    /// Sizes power-law (many small, few up to 64 KiB), lifetimes
    /// power-law too (most die young, a few live long).
    PowerLaw,
    /// Mixed lifetimes in phases: each phase allocates small long-lived
    /// objects among larger short-lived ones, then the next phase asks
    /// for larger sizes than the holes the short-lived ones left.
    Phased,
}

/// A draw from a power law on [lo, hi] with exponent `alpha` (> 1).
fn power_law(rng: &mut SmallRng, lo: f64, hi: f64, alpha: f64) -> f64 {
    let u: f64 = rng.gen();
    let (a, b) = (lo.powf(1.0 - alpha), hi.powf(1.0 - alpha));
    (a + u * (b - a)).powf(1.0 / (1.0 - alpha))
}

/// Writes a synthetic trace of about `allocs` allocations (each freed when
/// its lifetime ends; what lives past the end stays live).
pub fn generate(shape: Shape, allocs: usize, seed: u64) -> String {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = String::new();
    let name = clap::ValueEnum::to_possible_value(&shape).map_or_else(|| format!("{shape:?}"), |v| v.get_name().to_string());
    let _ = writeln!(out, "# rkctl gen-trace {name} --allocs {allocs} --seed {seed}");
    // Deaths by op index: (time, id).
    let mut deaths: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64)>> = Default::default();
    for i in 0..allocs as u64 {
        while let Some(std::cmp::Reverse((t, id))) = deaths.peek().copied() {
            if t > i {
                break;
            }
            deaths.pop();
            let _ = writeln!(out, "f {id}");
        }
        let (size, life) = match shape {
            Shape::Uniform => (rng.gen_range(16..=4096u64), rng.gen_range(1..=400u64)),
            Shape::PowerLaw => (
                power_law(&mut rng, 16.0, 65536.0, 1.8) as u64,
                power_law(&mut rng, 1.0, 20000.0, 1.5) as u64,
            ),
            Shape::Phased => {
                // Phases of 2000 allocations; sizes grow with the phase so
                // that the holes of one phase are too small for the next.
                let phase = i / 2000;
                let base = 64u64 << (phase % 4);
                if rng.gen_bool(0.2) {
                    // Long-lived: survives several phases.
                    (rng.gen_range(16..=64u64), rng.gen_range(4000..=12000u64))
                } else {
                    (rng.gen_range(base..=base * 4), rng.gen_range(1..=300u64))
                }
            }
        };
        let _ = writeln!(out, "a {i} {}", size.max(1));
        deaths.push(std::cmp::Reverse((i + life.max(1), i)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renumbers() {
        let t = parse("# a comment\na 0xffff1 100\na 0xffff2 50 # trailing\n\nf 0xffff1\na x 200\nf 0xffff2\n").unwrap();
        assert_eq!(t.ops.len(), 5);
        assert_eq!((t.allocs, t.frees), (3, 2));
        // `x` reuses the number 0xffff1 left.
        assert_eq!(t.max_id, 2);
        assert_eq!(t.ops[3].id, t.ops[0].id);
        assert_eq!(t.ops[3].op, uapi::RKALLOC_TRACE_ALLOC);
        assert_eq!(t.ops[4].op, uapi::RKALLOC_TRACE_FREE);
        assert_eq!(t.ops[4].size, 0);
        assert_eq!(t.peak_live, 250);
        assert_eq!(t.max_size, 200);
        assert_eq!(t.min_size, 50);
        assert_eq!(t.live_at_end, 1);
    }

    fn planned(t: &[Allocator], trace: &str, names: &[&str]) -> Vec<(String, Option<String>)> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        plan(t, &parse(trace).unwrap(), &names).unwrap().into_iter().map(|(a, why)| (a.name.clone(), why)).collect()
    }

    #[test]
    fn every_allocator_that_serves_the_trace_replays_it() {
        let t = table::synthetic::table();
        let p = planned(&t, "a 1 100\na 2 5000\nf 1\n", &[]);
        assert_eq!(p.len(), t.len(), "every allocator is listed");
        let ran: Vec<&str> = p.iter().filter(|(_, w)| w.is_none()).map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            ran,
            ["rk_pool", "alloc_pages", "kmem_cache", "kmalloc", "vmalloc", "kvmalloc", "rk_slab", "rk_malloc", "heap_first", "heap_next", "heap_best", "heap_segregated"]
        );
        // The arena frees only all at once: listed, not replayed.
        let arena = &p.iter().find(|(n, _)| n == "rk_arena").unwrap().1;
        assert!(arena.as_deref().unwrap().contains("frees only all at once"));
    }

    #[test]
    fn sizes_outside_a_range_cannot_be_served() {
        let t = table::synthetic::table();
        let p = planned(&t, "a 1 100000\na 2 10\nf 1\n", &["kmem_cache", "rk_slab", "heap_first"]);
        assert_eq!(p.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["kmem_cache", "rk_slab", "heap_first"]);
        assert_eq!(p[0].1.as_deref(), Some("cannot serve sizes 10..=100000 B: its range is 1..=8192 B"));
        assert!(p[1].1.is_some());
        assert_eq!(p[2].1, None);
        // 2 MiB: above the heaps' 1 MiB.
        let p = planned(&t, "a 1 2097152\n", &[]);
        let ran: Vec<&str> = p.iter().filter(|(_, w)| w.is_none()).map(|(n, _)| n.as_str()).collect();
        assert_eq!(ran, ["rk_pool", "alloc_pages", "kmalloc", "vmalloc", "kvmalloc", "rk_malloc"]);
    }

    #[test]
    fn new_allocators_replay_without_changes() {
        let t = table::synthetic::extended();
        let p = planned(&t, "a 1 4096\nf 1\n", &[]);
        for n in ["rk_pages2", "heap_worst"] {
            assert_eq!(p.iter().find(|(a, _)| a == n).unwrap().1, None, "{n} not replayed");
        }
        // Its range starts at 4 KiB: a 100-byte trace is not for it.
        let p = planned(&t, "a 1 100\n", &["rk_pages2"]);
        assert!(p[0].1.as_deref().unwrap().starts_with("cannot serve"));
        let e = plan(&t, &parse("a 1 8\n").unwrap(), &["heap_fastest".into()]).unwrap_err();
        assert_eq!(error::classify(&e), Class::Usage);
    }

    #[test]
    fn an_id_may_be_reused_after_its_free() {
        let t = parse("a p 8\nf p\na p 16\n").unwrap();
        assert_eq!(t.max_id, 1);
        assert_eq!(t.peak_live, 16);
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn rejects_bad_traces() {
        assert!(err("f 1\n").contains("line 1: free of id 1, which is not live"));
        assert!(err("a 1 8\nf 1\nf 1\n").contains("line 3: free of id 1"));
        assert!(err("a 1 8\na 1 8\n").contains("line 2: allocation of id 1, which is still live"));
        assert!(err("a 1 0\n").contains("line 1: size 0"));
        assert!(err("a 1 huge\n").contains("line 1: the size is not a number"));
        assert!(err("a 1\n").contains("needs a size"));
        assert!(err("x 1 8\n").contains("line 1: unknown op `x`"));
        assert!(err("a 1 8 9\n").contains("unexpected `9`"));
        assert!(err("f\n").contains("needs an id"));
        assert!(err("# nothing\n\n").contains("no ops"));
        let big = u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) + 1;
        assert!(err(&format!("a 1 {big}\n")).contains("is not in 1..="));
    }

    #[test]
    fn generated_traces_parse() {
        for shape in [Shape::Uniform, Shape::PowerLaw, Shape::Phased] {
            let text = generate(shape, 3000, 7);
            let t = parse(&text).unwrap();
            assert_eq!(t.allocs, 3000);
            assert!(t.frees > 1000, "{shape:?}: {} frees", t.frees);
            assert!(t.max_size <= 65536);
            // Same seed, same trace.
            assert_eq!(text, generate(shape, 3000, 7));
            // The header is a command that makes it again.
            assert!(text.starts_with("# rkctl gen-trace ") && !text.lines().next().unwrap().contains(char::is_uppercase));
        }
    }
}
