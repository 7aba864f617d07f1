//! `rkctl fuzz`: a structure-aware fuzzer of the `/dev/rkalloc` ioctls,
//! deterministic by seed, in the spirit of syzkaller.
//!
//! Threads share a few fds and issue calls: mostly the header's commands
//! with their real structs, filled from the module's own tables (orders up
//! to max_order, sizes at the edges of each allocator's range, counts
//! around RKALLOC_MAX_BATCH, allocator and policy ids of the tables) and
//! from the fd's live, freed and other fds' handles; sometimes with a
//! wrong size field, a reserved field set, a command number that is
//! unknown, has the wrong size or direction, and user pointers that are
//! NULL, unmapped, read-only, misaligned, straddle a guard page or point
//! into the kernel. Now and then an fd is closed and reopened, closed
//! while another thread is inside a slow command on it (through a dup,
//! atomically replaced by dup2 so the number is never free for reuse),
//! and CHECK runs concurrently. Slow commands (BENCH, CONFORM, REPLAY)
//! get small runs, and the slowest are drawn rarely, to keep the rate up.
//!
//! The verdict (exit status 0 only if all hold):
//! - every call returned 0 or an errno the header's "errors:" table lists
//!   for its command (ENOTTY for numbers the header does not define),
//!   never EUCLEAN, and what the header's conventions make certain (EFAULT
//!   for an unreadable argument, EINVAL for an impossible size field,
//!   ENOTTY for a wrong number, a failure for a read-only argument, a set
//!   reserved field, another fd's handle, a parameter outside its
//!   documented range ([`spec::invalid`]) or an inaccessible user array);
//! - no output of a successful call looks like a kernel address, and no
//!   user array was written past what the call reports;
//! - the kernel log shows no WARNING, BUG, KASAN or lockdep report while
//!   the fuzzer runs ([`kmsg`]; each is told with the last calls of the
//!   thread it names);
//! - CHECK returns 0 during and after the run;
//! - once every fd of the fuzzer is closed, the pool, the slab caches and
//!   the heaps and arenas are as before the run (see [`baseline`]).
//!
//! Every thread draws from its own generator seeded by (seed, thread):
//! given the same answers from the kernel, a seed gives the same calls.
//! With one thread (`--threads 1`) the calls depend on the seed and the
//! kernel's answers alone (two runs of a seed in one boot gave the same
//! errno histogram); with more, the interleaving changes the fds' state
//! and so some of the calls.
pub mod baseline;
#[cfg(test)]
mod errtable;
pub mod kmsg;
pub mod mem;
pub mod draft;
pub mod gen;
pub mod spec;
pub mod sys;
#[cfg(test)]
mod tests;
pub mod verdict;
mod shared;
mod worker;

use crate::{
    device::Device,
    error::{self, Class, ResultExt},
    top::parse::Snapshot,
    uapi,
};
use anyhow::{bail, Context, Result};
use mem::{Area, Ptr, Scratch};
use serde::Serialize;
use draft::Draft;
use gen::{Env, Gen, Held, Kind, Tracked};
use spec::{Role, Spec};
use std::{
    collections::BTreeMap,
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use verdict::{errno_name, judge, Expect};
use shared::*;
use worker::*;

/// `rkctl fuzz`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Threads issuing calls.
    #[arg(short, long, default_value_t = 2)]
    pub threads: usize,
    /// Calls in all, split evenly over the threads.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub calls: u64,
    /// Seed of the run (default: from the clock); always printed.
    #[arg(short, long)]
    pub seed: Option<u64>,
    /// Fds of /dev/rkalloc open at once (each is closed and reopened now
    /// and then).
    #[arg(long, default_value_t = 3)]
    pub fds: usize,
    /// The module's debugfs directory (for the baseline).
    #[arg(long, default_value = "/sys/kernel/debug/rkalloc")]
    pub debugfs: PathBuf,
    /// MiB the fuzzer lets its fds hold in all before it prefers frees.
    #[arg(long, default_value_t = 64)]
    pub max_mb: u64,
    /// Failures printed in full.
    #[arg(long, default_value_t = 20)]
    pub show: usize,
    /// Print the header's "errors:" table as built into rkctl, and exit.
    #[arg(long)]
    pub table: bool,
}

/// Errnos above this are counted together.
/// Reads the module's tables: INFO and ALLOCATORS.
pub fn probe(dev: &Device, budget: u64) -> Result<Env> {
    let i = dev.info()?;
    let v = dev.allocators_raw()?;
    Ok(Env {
        max_order: i.max_order,
        page_size: u64::from(i.page_size),
        nr_policies: i.nr_policies,
        allocators: v.iter().map(|a| gen::Alloc { flags: a.flags, min: a.min_bytes, max: a.max_bytes }).collect(),
        fd_cap: i.fd_cap_bytes,
        budget,
    })
}

/// The run's summary.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Threads.
    pub threads: usize,
    /// fds open at once.
    pub fds: usize,
    /// ioctls issued (the close races' and concurrent CHECKs' included).
    pub calls: u64,
    /// Wall-clock seconds of the threads' run.
    pub seconds: f64,
    /// `calls` / `seconds`.
    pub calls_per_sec: f64,
    /// Close races.
    pub races: u64,
    /// Reopens.
    pub reopens: u64,
    /// Concurrent CHECKs.
    pub checks: u64,
    /// Per command (or bad number), per errno ("0" for success): calls.
    pub errnos: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per command: milliseconds in its ioctls, summed over the threads
    /// (a close race's whole time counts for its command).
    pub ms: BTreeMap<String, f64>,
    /// Milliseconds in reopens (closing an fd frees what it held).
    pub reopen_ms: f64,
    /// Failed calls and kernel reports, all counted.
    pub failures_total: u64,
    /// The first of them (up to 1000).
    pub failures: Vec<Failure>,
    /// Whether the kernel log was followed (/dev/kmsg readable).
    pub kernel_log: bool,
    /// The final CHECK: "0" or its errno.
    pub final_check: String,
    /// What did not come back to the baseline (empty when all did).
    pub baseline: Vec<String>,
    /// The verdict.
    pub pass: bool,
}

/// Runs the fuzzer.
pub fn run(dev: &Path, a: &Args) -> Result<Summary> {
    if a.threads == 0 || a.fds == 0 {
        return Err(error::usage("--threads and --fds must be at least 1"));
    }
    let seed = a.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
    });
    eprintln!("fuzz: seed {seed} ({} threads, {} fds, {} calls; replay with --seed {seed})", a.threads, a.fds, a.calls);
    let ctl = Device::open(dev)?;
    let env = probe(&ctl, (a.max_mb << 20) / a.fds as u64)?;
    ctl.shrink()?;
    let before = Snapshot::read(&a.debugfs).class(Class::System, || "the baseline needs the module's debugfs files (--debugfs)".into())?;

    let specs = spec::specs();
    let cumulative = specs
        .iter()
        .scan(0, |s, x| {
            *s += x.weight;
            Some(*s)
        })
        .collect();
    let sh = Shared {
        dev: dev.to_path_buf(),
        env,
        specs,
        cumulative,
        slots: Vec::new(),
        foreign: Mutex::new(Vec::new()),
        dead: Mutex::new(Vec::new()),
        serial: AtomicU64::new(1),
        tombstone: sys::open(dev)?,
        failures: Mutex::new(Vec::new()),
        nr_failures: AtomicU64::new(0),
        seed,
        show: a.show,
        recent: (0..a.threads).map(|_| Mutex::new(Recent::default())).collect(),
        tids: Mutex::new(Vec::new()),
    };
    let mut sh = sh;
    for _ in 0..a.fds {
        let s = sh.open_slot()?;
        sh.slots.push(Mutex::new(s));
    }
    let start = Instant::now();
    let per = a.calls / a.threads as u64;
    let watch = kmsg::Watch::open();
    let kernel_log = watch.is_some();
    if !kernel_log {
        eprintln!("fuzz: cannot read /dev/kmsg: kernel reports during the run are not seen");
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<Result<Counts>> = std::thread::scope(|s| {
        let watcher = watch.map(|mut w| {
            let (sh, done) = (&sh, &done);
            s.spawn(move || watch_log(sh, &mut w, done))
        });
        let hs: Vec<_> = (0..a.threads)
            .map(|t| {
                let sh = &sh;
                let n = per + if t == 0 { a.calls % a.threads as u64 } else { 0 };
                s.spawn(move || -> Result<Counts> {
                    let mut w = Worker::new(sh, t)?;
                    w.run(n)?;
                    Ok(w.counts)
                })
            })
            .collect();
        let r = hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a fuzz thread panicked")))).collect();
        done.store(true, Relaxed);
        if let Some(w) = watcher {
            let _ = w.join();
        }
        r
    });
    let seconds = start.elapsed().as_secs_f64();
    let Shared { specs, slots, tombstone, failures, nr_failures, .. } = sh;
    // Every fd of the fuzzer closes here (the threads are joined).
    drop(slots);
    drop(tombstone);

    let mut hist = vec![[0u64; MAX_ERRNO + 1]; specs.len() + BAD_NUMBERS.len()];
    let mut ns = vec![0u64; specs.len() + BAD_NUMBERS.len()];
    let (mut calls, mut races, mut reopens, mut checks, mut reopen_ns) = (0, 0, 0, 0, 0);
    for r in results {
        let c = r?;
        for (h, x) in hist.iter_mut().zip(&c.hist) {
            for (a, b) in h.iter_mut().zip(x) {
                *a += b;
            }
        }
        for (a, b) in ns.iter_mut().zip(&c.ns) {
            *a += b;
        }
        reopen_ns += c.reopen_ns;
        calls += c.ioctls;
        races += c.races;
        reopens += c.reopens;
        checks += c.checks;
    }
    let mut errnos = BTreeMap::new();
    let mut ms = BTreeMap::new();
    for (r, h) in hist.iter().enumerate() {
        let name = specs.get(r).map_or_else(|| BAD_NUMBERS[r - specs.len()].to_string(), |s| s.name.to_string());
        if ns[r] > 0 {
            ms.insert(name.clone(), ns[r] as f64 / 1e6);
        }
        let m: BTreeMap<String, u64> = h.iter().enumerate().filter(|(_, &n)| n > 0).map(|(e, &n)| (errno_name(e as i32), n)).collect();
        if !m.is_empty() {
            errnos.insert(name, m);
        }
    }

    let final_check = match ctl.check() {
        Ok(()) => "0".to_string(),
        Err(e) => e.name(),
    };
    // A released fd is freed at once, but give the kernel a moment before
    // calling a difference a leak.
    let mut diff = Vec::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        ctl.shrink()?;
        diff = baseline::compare(&before, &Snapshot::read(&a.debugfs).class(Class::System, || "after the run".into())?);
        if diff.is_empty() {
            break;
        }
    }
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let failures_total = nr_failures.load(Relaxed);
    Ok(Summary {
        seed,
        threads: a.threads,
        fds: a.fds,
        calls,
        seconds,
        calls_per_sec: calls as f64 / seconds.max(1e-9),
        races,
        reopens,
        checks,
        errnos,
        ms,
        reopen_ms: reopen_ns as f64 / 1e6,
        pass: failures_total == 0 && final_check == "0" && diff.is_empty(),
        failures_total,
        failures,
        kernel_log,
        final_check,
        baseline: diff,
    })
}

/// Prints the summary as text.
pub fn print(s: &Summary, show: usize) {
    println!(
        "fuzz: seed {}, {} threads, {} fds: {} calls in {:.2} s, {:.0} calls/s ({} close races, {} reopens, {} concurrent checks)",
        s.seed, s.threads, s.fds, s.calls, s.seconds, s.calls_per_sec, s.races, s.reopens, s.checks
    );
    let mut cols: Vec<&str> = vec!["0"];
    for m in s.errnos.values() {
        for e in m.keys() {
            if !cols.contains(&e.as_str()) {
                cols.push(e);
            }
        }
    }
    print!("{:<22} {:>8} {:>8}", "command", "ms", "calls");
    for c in &cols {
        print!(" {c:>8}");
    }
    println!();
    for (name, m) in &s.errnos {
        print!("{name:<22} {:>8.0} {:>8}", s.ms.get(name).copied().unwrap_or(0.0), m.values().sum::<u64>());
        for c in &cols {
            print!(" {:>8}", m.get(*c).map_or(String::from("-"), |n| n.to_string()));
        }
        println!();
    }
    println!("reopens: {:.0} ms (ms: time inside the ioctls, summed over the threads)", s.reopen_ms);
    let reports = s.failures.iter().filter(|f| f.command == "(kernel log)").count();
    println!(
        "kernel log: {}",
        if s.kernel_log { format!("followed, {reports} reports") } else { "not readable (reports not seen)".into() }
    );
    println!("final check: {}", if s.final_check == "0" { "0 (clean)".into() } else { format!("{} (FAILED)", s.final_check) });
    if s.baseline.is_empty() {
        println!("baseline: pool, slab caches, heaps and arenas back to where they were");
    } else {
        println!("baseline: {} differences after every fd was closed:", s.baseline.len());
        for d in &s.baseline {
            println!("  {d}");
        }
    }
    for f in s.failures.iter().take(show) {
        println!("{}", f.line(s.seed));
    }
    if s.failures_total as usize > show {
        println!("... and {} more failures", s.failures_total as usize - show);
    }
    println!("verdict: {} (seed {})", if s.pass { "PASS" } else { "FAIL" }, s.seed);
}

/// `rkctl fuzz`.
pub fn main(dev: &Path, json: bool, a: &Args) -> Result<()> {
    if a.table {
        print!("{}", verdict::table_text());
        return Ok(());
    }
    let s = run(dev, a)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print(&s, a.show);
    }
    if !s.pass {
        let msg = format!(
            "fuzz failed (seed {}): {} failed calls, final check {}, {} baseline differences",
            s.seed,
            s.failures_total,
            s.final_check,
            s.baseline.len()
        );
        // Damage reported (EUCLEAN) is corruption; anything else the
        // kernel's deviation from the header.
        let damage = s.final_check != "0"
            || s.failures.iter().any(|f| {
                f.errno == "EUCLEAN"
                    || (f.command == "(kernel log)" && ["BUG:", "KASAN", "Oops", "general protection"].iter().any(|p| f.why.contains(p)))
            });
        return Err(if damage { error::corruption(msg) } else { error::refused(msg) });
    }
    Ok(())
}

