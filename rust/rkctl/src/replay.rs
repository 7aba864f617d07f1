//! `rkctl replay TRACE`: replays an allocation trace in the kernel
//! (`RKALLOC_IOC_REPLAY`) against every allocator that can serve it, and
//! `rkctl gen-trace`: writes synthetic traces.
//!
//! The trace format is text, one op a line: `a <id> <size>` allocates `size`
//! bytes under the name `id`, `f <id>` frees it; `#` starts a comment. Ids
//! are any token; they are renumbered densely (a freed id's number is
//! reused), so a trace may name allocations by pointer.
use crate::{device::Device, uapi};
use anyhow::{bail, Context, Result};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use serde::Serialize;
use std::{collections::HashMap, fmt::Write as _, io, path::Path};

/// A parsed trace, ready for the ioctl.
#[derive(Debug)]
pub struct Trace {
    pub ops: Vec<uapi::rkalloc_trace_op>,
    /// Dense ids are below it.
    pub max_id: u32,
    pub allocs: u64,
    pub frees: u64,
    pub max_size: u64,
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
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let Some(op) = w.next() else { continue };
        let id = w.next().with_context(|| format!("line {n}: `{op}` needs an id"))?;
        match op {
            "a" => {
                let size: u64 = w
                    .next()
                    .with_context(|| format!("line {n}: `a {id}` needs a size"))?
                    .parse()
                    .with_context(|| format!("line {n}: the size is not a number"))?;
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
                live += size;
                peak = peak.max(live);
            }
            "f" => {
                let (dense, size) = names
                    .remove(id)
                    .with_context(|| format!("line {n}: free of id {id}, which is not live"))?;
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
    Ok(Trace { ops, max_id, allocs, frees, max_size, peak_live: peak, live_at_end: names.len() as u64 })
}

/// The allocators a trace can be replayed on, by the names `rkctl bench`
/// uses. Not the arena: it frees only all at once, so a trace's frees mean
/// nothing to it.
pub const ALLOCATORS: &[(&str, u32)] = &[
    ("rk_pool", uapi::RKALLOC_ALLOC_RK_POOL),
    ("alloc_pages", uapi::RKALLOC_ALLOC_PAGES),
    ("kmem_cache", uapi::RKALLOC_ALLOC_KMEM_CACHE),
    ("kmalloc", uapi::RKALLOC_ALLOC_KMALLOC),
    ("vmalloc", uapi::RKALLOC_ALLOC_VMALLOC),
    ("kvmalloc", uapi::RKALLOC_ALLOC_KVMALLOC),
    ("rk_slab", uapi::RKALLOC_ALLOC_RK_SLAB),
    ("rk_malloc", uapi::RKALLOC_ALLOC_RK_MALLOC),
    ("heap_first", uapi::RKALLOC_ALLOC_RK_HEAP_FIRST),
    ("heap_next", uapi::RKALLOC_ALLOC_RK_HEAP_NEXT),
    ("heap_best", uapi::RKALLOC_ALLOC_RK_HEAP_BEST),
    ("heap_segregated", uapi::RKALLOC_ALLOC_RK_HEAP_SEGREGATED),
];

/// One allocator's results.
#[derive(Debug, Serialize)]
pub struct Row {
    pub allocator: String,
    /// Why it did not run ("cannot serve ..."), if it did not.
    pub skipped: Option<String>,
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
/// default), `repeats` times each.
pub fn run(dev: &Path, name: &str, trace: &Trace, names: &[String], repeats: u32) -> Result<Report> {
    let d = Device::open(dev)?;
    let chosen: Vec<(&str, u32)> = if names.is_empty() {
        ALLOCATORS.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                ALLOCATORS
                    .iter()
                    .find(|(a, _)| a == n)
                    .copied()
                    .with_context(|| format!("unknown allocator {n} (known: {})", known()))
            })
            .collect::<Result<_>>()?
    };
    let mut rows = Vec::new();
    for (aname, id) in chosen {
        let mut runs = Vec::new();
        let mut skipped = None;
        for _ in 0..repeats.max(1) {
            let mut a = uapi::rkalloc_replay {
                allocator: id,
                ops: trace.ops.as_ptr() as u64,
                count: trace.ops.len() as u32,
                max_id: trace.max_id,
                ..Default::default()
            };
            match d.replay(&mut a) {
                Ok(()) => runs.push(a),
                // The trace itself was checked here: EINVAL is the allocator's.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    skipped = Some(format!("cannot serve sizes up to {} (EINVAL)", trace.max_size));
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("replay on {aname}")),
            }
        }
        rows.push(row(aname, trace, &mut runs, skipped));
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

fn known() -> String {
    ALLOCATORS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(",")
}

/// The row of the median run (by time); the space figures are the same in
/// every run of a deterministic allocator.
fn row(name: &str, trace: &Trace, runs: &mut [uapi::rkalloc_replay], skipped: Option<String>) -> Row {
    runs.sort_by_key(|a| a.total_ns);
    let Some(m) = runs.get(runs.len() / 2) else {
        return Row {
            allocator: name.into(),
            skipped,
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
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("{} is not a valid trace", path.display()))
}

impl Device {
    /// `RKALLOC_IOC_REPLAY`.
    pub fn replay(&self, a: &mut uapi::rkalloc_replay) -> io::Result<()> {
        self.ioctl(uapi::cmd::replay(), a)
    }
}

/// `RKALLOC_IOC_REPLAY` error paths (for `rkctl errors`): every malformed
/// trace the parser would refuse is refused by the kernel too, with the
/// header's errno, and changes nothing.
pub fn error_cases(dev: &Device, case: &mut dyn FnMut(&'static str, &'static str, io::Result<()>)) -> Result<()> {
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
    let run = |ops: &[uapi::rkalloc_trace_op], max_id| replay(ops, max_id, uapi::RKALLOC_ALLOC_RK_HEAP_FIRST).map(|_| ());
    let used = || dev.pool_stats().map(|s| s.total_pages - s.free_pages).unwrap_or(u64::MAX);
    let before = (used(), dev.info()?.fd_bytes);
    case("replay: free of an id not live", "EINVAL", run(&[op(a, 0, 8), op(f, 1, 0)], 2));
    case("replay: double free", "EINVAL", run(&[op(a, 0, 8), op(f, 0, 0), op(f, 0, 0)], 2));
    case("replay: allocation of a live id", "EINVAL", run(&[op(a, 0, 8), op(a, 0, 8)], 2));
    case("replay: id at max_id", "EINVAL", run(&[op(a, 2, 8)], 2));
    case("replay: size 0", "EINVAL", run(&[op(a, 0, 0)], 1));
    case("replay: size too big", "EINVAL", run(&[op(a, 0, u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) + 1)], 1));
    case("replay: free with a size", "EINVAL", run(&[op(a, 0, 8), op(f, 0, 8)], 1));
    case("replay: unknown op", "EINVAL", run(&[op(7, 0, 8)], 1));
    case("replay: max_id 0", "EINVAL", run(&[op(a, 0, 8)], 0));
    case("replay: count 0", "EINVAL", run(&[], 1));
    let good = [op(a, 0, 100), op(a, 1, 5000), op(f, 0, 0)];
    let mut r = uapi::rkalloc_replay { count: 3, max_id: 2, ops: good.as_ptr() as u64, reserved: 1, ..Default::default() };
    case("replay: non-zero reserved field", "EINVAL", dev.replay(&mut r));
    let mut r = uapi::rkalloc_replay { count: uapi::RKALLOC_MAX_REPLAY_OPS + 1, max_id: 2, ops: good.as_ptr() as u64, ..Default::default() };
    case("replay: count above the maximum", "E2BIG", dev.replay(&mut r));
    let mut r = uapi::rkalloc_replay { count: 3, max_id: 2, ops: 0x10, ..Default::default() };
    case("replay: unreadable ops", "EFAULT", dev.replay(&mut r));
    case("replay: unknown allocator", "EINVAL", replay(&good, 2, uapi::RKALLOC_NR_ALLOCATORS).map(|_| ()));
    case("replay: the arena (frees only all at once)", "EINVAL", replay(&good, 2, uapi::RKALLOC_ALLOC_RK_ARENA).map(|_| ()));
    case("replay: size a slab cannot serve", "EINVAL", replay(&[op(a, 0, 9000)], 1, uapi::RKALLOC_ALLOC_RK_SLAB).map(|_| ()));
    let cap = dev.info()?.fd_cap_bytes;
    let max = u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE);
    let over: Vec<_> = (0..(cap / max + 1) as u32).map(|i| op(a, i, max)).collect();
    case("replay: peak above the per-fd cap", "ENOMEM", run(&over, over.len() as u32));
    let after = (used(), dev.info()?.fd_bytes);
    let eio = || Err(io::Error::from_raw_os_error(libc::EIO));
    case("replay: failed replays changed nothing", "success", if before == after { Ok(()) } else { eio() });
    let r = replay(&good, 2, uapi::RKALLOC_ALLOC_RK_HEAP_BEST);
    let ok = matches!(&r, Ok(r) if r.peak_live_bytes == 5100 && r.peak_footprint_bytes >= 5100 && r.failures == 0
        && r.flags & uapi::RKALLOC_REPLAY_OWN_FRAG != 0);
    case("replay: a good trace runs", "success", if ok { Ok(()) } else { r.map(|_| ()).and_then(|()| eio()) });
    case("replay: nothing stays allocated", "success", if (used(), dev.info()?.fd_bytes) == before { Ok(()) } else { eio() });
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
    let _ = writeln!(out, "# rkctl gen-trace {shape:?} --allocs {allocs} --seed {seed}");
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
        assert_eq!(t.live_at_end, 1);
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
        }
    }
}
