//! `rkctl bench`: the in-kernel comparison of rkalloc's allocators with the
//! kernel's, run through `RKALLOC_IOC_BENCH` in one guest run, reported as a
//! table with ratios to the kernel's counterpart, as JSON, and as plots.
use crate::{device::Device, uapi};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::{path::Path, sync::Barrier, time::Instant};

/// One benchmark case: an allocator, a pattern, a size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    pub group: String,
    pub allocator: String,
    pub pattern: String,
    pub bytes: u64,
    pub batch: u32,
    /// The kernel allocator this one is compared with (same group).
    pub baseline: Option<String>,
}

/// Results of one case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub case: Case,
    pub cpus: usize,
    /// Mean ns per alloc+free pair, averaged over repeats.
    pub ns_per_op: f64,
    pub p50_ns: f64,
    pub p99_ns: f64,
    /// Spread of the per-repeat means: (max - min) / mean.
    pub spread: f64,
    /// Pairs per second over all CPUs.
    pub ops_per_sec: f64,
    /// ns_per_op / the baseline's ns_per_op.
    pub ratio: Option<f64>,
    pub failed: Option<String>,
}

/// The whole run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub mode: String,
    pub kernel: String,
    pub cpus_online: u32,
    pub init_on_alloc: String,
    pub slub_tiny: String,
    pub sheaf_capacity_64: String,
    pub repeats: u32,
    pub rows: Vec<Row>,
}

pub struct Options {
    pub repeats: u32,
    pub samples: u32,
    pub ops: u64,
    pub cpus: Vec<usize>,
    pub quick: bool,
    /// How guest time is measured; `None`: as `scripts/vm-run` booted the
    /// guest (see [`mode_of`]).
    pub mode: Option<String>,
    pub filter: Option<String>,
}

fn alloc_id(name: &str) -> Option<u32> {
    Some(match name {
        "rk_pool" => uapi::RKALLOC_ALLOC_RK_POOL,
        "alloc_pages" => uapi::RKALLOC_ALLOC_PAGES,
        "kmem_cache" => uapi::RKALLOC_ALLOC_KMEM_CACHE,
        "kmalloc" => uapi::RKALLOC_ALLOC_KMALLOC,
        "vmalloc" => uapi::RKALLOC_ALLOC_VMALLOC,
        "kvmalloc" => uapi::RKALLOC_ALLOC_KVMALLOC,
        "rk_slab" => uapi::RKALLOC_ALLOC_RK_SLAB,
        "rk_malloc" => uapi::RKALLOC_ALLOC_RK_MALLOC,
        "heap_first" => uapi::RKALLOC_ALLOC_RK_HEAP_FIRST,
        "heap_next" => uapi::RKALLOC_ALLOC_RK_HEAP_NEXT,
        "heap_best" => uapi::RKALLOC_ALLOC_RK_HEAP_BEST,
        "heap_segregated" => uapi::RKALLOC_ALLOC_RK_HEAP_SEGREGATED,
        "rk_arena" => uapi::RKALLOC_ALLOC_RK_ARENA,
        _ => return None,
    })
}

fn pattern_id(name: &str) -> Option<u32> {
    Some(match name {
        "pair" => uapi::RKALLOC_BENCH_PAIR,
        "batch" => uapi::RKALLOC_BENCH_BATCH,
        "batch_random" => uapi::RKALLOC_BENCH_BATCH_RANDOM,
        "random_life" => uapi::RKALLOC_BENCH_RANDOM_LIFE,
        "cross_cpu" => uapi::RKALLOC_BENCH_CROSS_CPU,
        _ => return None,
    })
}

fn case(group: &str, allocator: &str, pattern: &str, bytes: u64, batch: u32, baseline: Option<&str>) -> Case {
    Case {
        group: group.into(),
        allocator: allocator.into(),
        pattern: pattern.into(),
        bytes,
        batch,
        baseline: baseline.map(Into::into),
    }
}

/// The default matrix: every rkalloc allocator next to its kernel peer.
pub fn matrix(quick: bool) -> Vec<Case> {
    let mut v = Vec::new();
    let orders: &[u32] = if quick { &[0, 3] } else { &[0, 3, 6, 9] };
    for &o in orders {
        let b = 4096u64 << o;
        let g = format!("pages order {o}");
        v.push(case(&g, "alloc_pages", "pair", b, 1, None));
        v.push(case(&g, "rk_pool", "pair", b, 1, Some("alloc_pages")));
    }
    let pats: &[(&str, u32)] = if quick {
        &[("pair", 1), ("batch", 1024)]
    } else {
        &[("pair", 1), ("batch", 1024), ("batch_random", 1024), ("random_life", 1024), ("cross_cpu", 256)]
    };
    for &(p, batch) in pats {
        let g = format!("64 B objects, {p}");
        v.push(case(&g, "kmem_cache", p, 64, batch, None));
        v.push(case(&g, "kmalloc", p, 64, batch, None));
        v.push(case(&g, "rk_slab", p, 64, batch, Some("kmem_cache")));
        v.push(case(&g, "rk_malloc", p, 64, batch, Some("kmalloc")));
        if matches!(p, "pair" | "batch") {
            // The arena frees only all at once: a pair is an allocation
            // and a reset, a batch is `batch` allocations and one reset.
            v.push(case(&g, "rk_arena", p, 64, batch, Some("kmalloc")));
        }
    }
    let sizes: &[u64] = if quick { &[8, 256, 4096] } else { &[8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192] };
    for &s in sizes {
        let g = format!("malloc {s} B");
        v.push(case(&g, "kmalloc", "pair", s, 1, None));
        v.push(case(&g, "rk_malloc", "pair", s, 1, Some("kmalloc")));
    }
    let g = "16 KiB buffers".to_string();
    v.push(case(&g, "kmalloc", "pair", 16384, 1, None));
    v.push(case(&g, "vmalloc", "pair", 16384, 1, Some("kmalloc")));
    v.push(case(&g, "kvmalloc", "pair", 16384, 1, Some("kmalloc")));
    v.push(case(&g, "rk_malloc", "pair", 16384, 1, Some("kmalloc")));
    let heap_sizes: &[u64] = if quick { &[256] } else { &[64, 256, 2048] };
    for &s in heap_sizes {
        let g = format!("heaps {s} B, random_life");
        v.push(case(&g, "kmalloc", "random_life", s, 512, None));
        // The arena frees only all at once, so it has no place in a
        // per-object lifetime pattern.
        for h in ["heap_first", "heap_next", "heap_best", "heap_segregated"] {
            v.push(case(&g, h, "random_life", s, 512, Some("kmalloc")));
        }
    }
    v
}

struct One {
    mean_ps: u64,
    p50_ps: u64,
    p99_ps: u64,
    total_ns: u64,
    ops: u64,
}

fn run_once(dev: &Device, c: &Case, opt: &Options) -> std::io::Result<One> {
    let mut a = uapi::rkalloc_bench {
        allocator: alloc_id(&c.allocator).expect("known allocator"),
        pattern: pattern_id(&c.pattern).expect("known pattern"),
        batch: c.batch,
        bytes: c.bytes,
        ops: opt.ops,
        samples: opt.samples,
        ..Default::default()
    };
    dev.bench(&mut a)?;
    Ok(One { mean_ps: a.mean_ps, p50_ps: a.p50_ps, p99_ps: a.p99_ps, total_ns: a.total_ns, ops: opt.ops * u64::from(opt.samples) })
}

/// Runs `c` on `cpus` threads at once (each pinned to its own CPU) and
/// returns the per-thread results.
fn run_parallel(path: &Path, c: &Case, opt: &Options, cpus: usize) -> Result<Vec<One>> {
    let barrier = Barrier::new(cpus);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..cpus)
            .map(|cpu| {
                let barrier = &barrier;
                s.spawn(move || -> Result<One> {
                    pin_to(cpu);
                    let dev = Device::open(path)?;
                    barrier.wait();
                    Ok(run_once(&dev, c, opt)?)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("bench thread panicked")).collect()
    })
}

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
/// instructions), `tcg-wallclock` (multi-threaded TCG) or `kvm-wallclock`
/// (hardware).
pub fn mode_of(cmdline: &str) -> String {
    match cmdline.split_whitespace().find_map(|w| w.strip_prefix("rkalloc_accel=")) {
        Some("icount") => "icount".into(),
        Some("tcg") => "tcg-wallclock".into(),
        Some("kvm") => "kvm-wallclock".into(),
        Some(other) => format!("unknown ({other})"),
        None => "unknown (not booted by scripts/vm-run)".into(),
    }
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

/// Runs the matrix and returns the report.
pub fn run(path: &Path, opt: &Options, progress: bool) -> Result<Report> {
    let cases: Vec<Case> = matrix(opt.quick)
        .into_iter()
        .filter(|c| opt.filter.as_ref().is_none_or(|f| c.group.contains(f.as_str()) || c.allocator.contains(f.as_str())))
        .collect();
    let bar = if progress {
        indicatif::ProgressBar::new((cases.len() * opt.cpus.len()) as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let cmdline = read_trim("/proc/cmdline");
    let init_on_alloc = if cmdline.contains("init_on_alloc=0") { "off (init_on_alloc=0)" } else { "kernel default" };
    let mut report = Report {
        mode: opt.mode.clone().unwrap_or_else(|| mode_of(&cmdline)),
        kernel: read_trim("/proc/sys/kernel/osrelease"),
        cpus_online: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        init_on_alloc: init_on_alloc.into(),
        slub_tiny: if Path::new("/sys/kernel/slab/kmalloc-64/sheaf_capacity").exists() || Path::new("/sys/kernel/slab/kmalloc-64").exists() {
            "off (SLUB sysfs present)".into()
        } else {
            "unknown".into()
        },
        sheaf_capacity_64: String::new(),
        repeats: opt.repeats,
        rows: Vec::new(),
    };
    for c in &cases {
        for &cpus in &opt.cpus {
            bar.set_message(format!("{} {} {}", c.group, c.allocator, cpus));
            let started = Instant::now();
            let mut means = Vec::new();
            let mut p50s = Vec::new();
            let mut p99s = Vec::new();
            let mut tput = Vec::new();
            let mut failed = None;
            for _ in 0..opt.repeats {
                match run_parallel(path, c, opt, cpus) {
                    Ok(res) => {
                        let m = res.iter().map(|r| r.mean_ps).sum::<u64>() as f64 / res.len() as f64;
                        means.push(m / 1000.0);
                        p50s.push(res.iter().map(|r| r.p50_ps).max().unwrap_or(0) as f64 / 1000.0);
                        p99s.push(res.iter().map(|r| r.p99_ps).max().unwrap_or(0) as f64 / 1000.0);
                        tput.push(res.iter().map(|r| r.ops as f64 / (r.total_ns.max(1) as f64 / 1e9)).sum::<f64>());
                    }
                    Err(e) => {
                        failed = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
            let _ = started;
            let mean = if means.is_empty() { f64::NAN } else { means.iter().sum::<f64>() / means.len() as f64 };
            let spread = if means.len() > 1 {
                let max = means.iter().cloned().fold(f64::MIN, f64::max);
                let min = means.iter().cloned().fold(f64::MAX, f64::min);
                (max - min) / mean
            } else {
                0.0
            };
            p50s.sort_by(f64::total_cmp);
            report.rows.push(Row {
                case: c.clone(),
                cpus,
                ns_per_op: mean,
                p50_ns: p50s.get(p50s.len() / 2).cloned().unwrap_or(f64::NAN),
                p99_ns: p99s.iter().cloned().fold(f64::NAN, f64::max),
                spread,
                ops_per_sec: if tput.is_empty() { f64::NAN } else { tput.iter().sum::<f64>() / tput.len() as f64 },
                ratio: None,
                failed,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    // Ratios to the baseline of the same group, pattern and CPU count.
    let snapshot = report.rows.clone();
    for r in &mut report.rows {
        if let Some(b) = &r.case.baseline {
            r.ratio = snapshot
                .iter()
                .find(|x| &x.case.allocator == b && x.case.group == r.case.group && x.cpus == r.cpus && x.failed.is_none())
                .map(|x| r.ns_per_op / x.ns_per_op);
        }
    }
    report.sheaf_capacity_64 = read_trim("/sys/kernel/slab/rkalloc_peer_64/sheaf_capacity");
    Ok(report)
}

/// Prints the report as one table.
pub fn print(r: &Report) {
    println!(
        "mode: {}; kernel {}; {} CPUs; init_on_alloc: {}; SLUB_TINY: {}; sheaf_capacity of rkalloc_peer_64: {}; repeats: {}",
        r.mode, r.kernel, r.cpus_online, r.init_on_alloc, r.slub_tiny, r.sheaf_capacity_64, r.repeats
    );
    println!(
        "{:<28} {:<16} {:<13} {:>4} {:>10} {:>9} {:>9} {:>7} {:>13} {:>8}",
        "case", "allocator", "pattern", "cpus", "ns/op", "p50", "p99", "spread", "ops/s", "ratio"
    );
    for x in &r.rows {
        let ratio = x.ratio.map_or("-".to_string(), |v| format!("{v:.2}x"));
        if let Some(e) = &x.failed {
            println!("{:<28} {:<16} {:<13} {:>4} failed: {e}", x.case.group, x.case.allocator, x.case.pattern, x.cpus);
            continue;
        }
        println!(
            "{:<28} {:<16} {:<13} {:>4} {:>10.1} {:>9.1} {:>9.1} {:>6.1}% {:>13.0} {:>8}",
            x.case.group,
            x.case.allocator,
            x.case.pattern,
            x.cpus,
            x.ns_per_op,
            x.p50_ns,
            x.p99_ns,
            x.spread * 100.0,
            x.ops_per_sec,
            ratio
        );
    }
}

/// Reads a report written with `--json`.
pub fn load(path: &Path) -> Result<Report> {
    let s = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&s).with_context(|| format!("{} is not a bench report", path.display()))
}

#[cfg(test)]
mod tests {
    use super::mode_of;

    #[test]
    fn mode_comes_from_the_command_line() {
        assert_eq!(mode_of("console=ttyS0 rkalloc_accel=icount init_on_alloc=0"), "icount");
        assert_eq!(mode_of("rkalloc_accel=tcg"), "tcg-wallclock");
        assert_eq!(mode_of("quiet rkalloc_accel=kvm"), "kvm-wallclock");
        assert_eq!(mode_of("rkalloc_accel=hvf"), "unknown (hvf)");
        assert!(mode_of("console=ttyS0").starts_with("unknown"));
    }
}
