//! rkctl: drive rkalloc's allocators from userspace through `/dev/rkalloc`.
mod bench;
mod canvas;
mod copyout;
mod device;
mod errors;
mod fuzz;
mod heapcmd;
mod import;
mod map;
mod plot;
mod replay;
mod stress;
mod top;
mod uapi;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::{path::PathBuf, time::Duration};

#[derive(Parser)]
#[command(version, about = "Drive rkalloc's allocators through /dev/rkalloc")]
struct Cli {
    /// The device node.
    #[arg(long, default_value = "/dev/rkalloc", global = true)]
    dev: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// ABI version, page size, pool size and this fd's usage.
    Info,
    /// Pool statistics (per order) from the stats ioctl.
    Stats {
        /// Reset the counters after reading them (RKALLOC_STATS_RESET).
        #[arg(long)]
        reset: bool,
    },
    /// Threads run a random mix of allocations, filling and verifying each;
    /// exits non-zero on any corruption or unexpected errno.
    Stress {
        /// Threads, each with its own fd.
        #[arg(short, long, default_value_t = 2)]
        threads: usize,
        /// Total operations (ignored with --duration).
        #[arg(short, long, default_value_t = 100_000)]
        ops: u64,
        /// Run for this many seconds instead of a count.
        #[arg(short, long)]
        duration: Option<f64>,
        /// Seed of the random mix.
        #[arg(short, long, default_value_t = 1)]
        seed: u64,
        /// Allocators to drive (default: all).
        #[arg(short, long, value_delimiter = ',')]
        alloc: Vec<stress::Kind>,
        /// Most live allocations per thread.
        #[arg(long, default_value_t = 256)]
        max_live: usize,
        /// Highest pool order used.
        #[arg(long, default_value_t = 6)]
        max_order: u32,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Exercise every documented error path; exits non-zero on any deviation.
    Errors,
    /// Compare every allocator with its kernel peer in this kernel
    /// (RKALLOC_IOC_BENCH): one table, JSON with --json, plots with --plot.
    Bench {
        /// Repeats of each case (the spread is over these).
        #[arg(short, long, default_value_t = 3)]
        repeats: u32,
        /// Samples per repeat (p50/p99 are over these).
        #[arg(long, default_value_t = 64)]
        samples: u32,
        /// Alloc+free pairs per sample.
        #[arg(long, default_value_t = 2048)]
        ops: u64,
        /// CPU counts to run each case on in parallel (e.g. 1,2).
        #[arg(long, value_delimiter = ',', default_value = "1")]
        cpus: Vec<usize>,
        /// A smaller matrix.
        #[arg(long)]
        quick: bool,
        /// Only cases whose group or allocator contains this.
        #[arg(long)]
        filter: Option<String>,
        /// How guest time is measured, recorded in the report (default: as
        /// scripts/vm-run booted the guest: icount, tcg-wallclock or
        /// kvm-wallclock).
        #[arg(long)]
        mode: Option<String>,
        /// Also draw the plots into this .svg or .png file.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Write the JSON report to this file (as well as printing the table).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the table of a saved bench report (.json).
    Table {
        report: PathBuf,
    },
    /// Draw the plots of a saved bench report (.json) into an .svg or .png file.
    Plot {
        report: PathBuf,
        out: PathBuf,
    },
    /// Drive heaps and the arena step by step on one fd, e.g.
    /// `create:best-fit alloc:100 free:0 free:0=EINVAL show destroy`
    /// (steps: create:POLICY[:debug][:BYTES], alloc:BYTES,
    /// arena:BYTES[:ALIGN], free:N, verify:N, reset, destroy, arena-reset,
    /// show, check; `=ERRNO` expects a failure). Exits non-zero on any
    /// deviation.
    Heap {
        #[arg(required = true)]
        steps: Vec<String>,
    },
    /// Replay an allocation trace (`a ID SIZE` / `f ID` lines) in the
    /// kernel against every allocator that can serve it: ops/s, peak
    /// footprint, internal and external fragmentation.
    Replay {
        trace: PathBuf,
        /// Allocators to run (default: all), e.g. heap_first,heap_next.
        #[arg(short, long, value_delimiter = ',')]
        alloc: Vec<String>,
        /// Runs per allocator; the table shows the median.
        #[arg(short, long, default_value_t = 3)]
        repeats: u32,
    },
    /// Turn a capture of the kernel's kmem:kmalloc/kmem:kfree tracepoints
    /// (and kmem_cache_alloc/free), from `perf script` or `trace-cmd
    /// report` (or tracefs's trace file), into a replay trace: ids in
    /// allocation order, sizes are bytes_req, no pointer kept.
    Import(import::Args),
    /// Write a synthetic allocation trace to stdout.
    GenTrace {
        #[arg(value_enum)]
        shape: replay::Shape,
        /// Allocations in the trace.
        #[arg(long, default_value_t = 3000)]
        allocs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Fuzz the ioctls, structure-aware and deterministic by seed: valid,
    /// boundary and broken arguments, handles of every kind and fd, bad
    /// user pointers, fds closed under running calls, concurrent CHECKs.
    /// Exits 0 only if every call returned 0 or an errno the header's
    /// "errors:" table lists for it (and what the header makes certain),
    /// no output held a kernel address, CHECK stayed clean, and the pool,
    /// slab caches, heaps and arenas came back to their baseline once the
    /// fuzzer's fds were closed. Run it alone on the module.
    Fuzz(fuzz::Args),
    /// A call whose result cannot be copied back (its struct in a read-only
    /// page: EFAULT) must change nothing: for every command that allocates,
    /// frees or resets, one line PASS or FAIL with why. Exits non-zero on
    /// any failure. Run it alone on the module.
    Copyout(copyout::Args),
    /// A live view of /sys/kernel/debug/rkalloc like slabtop: the pool,
    /// every slab cache (slabtop's columns and sort keys), every heap and
    /// arena; q or Ctrl-C quits. --once prints one plain frame.
    Top(top::Args),
    /// Give free pool memory back to the kernel.
    Shrink,
    /// Run the invariant checkers.
    Check,
    /// The pool's occupancy, one cell per page (free, per-CPU, or used by
    /// owner or order), from the binary debugfs map: a summary, and an SVG
    /// with --out.
    Map {
        /// Draw the map into this .svg or .png file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Colour used pages by owner class or by block order.
        #[arg(long, value_enum, default_value = "owner")]
        by: map::By,
        /// The kernel's binary map file.
        #[arg(long, default_value = map::DEBUGFS_MAP)]
        debugfs: PathBuf,
        /// Read a saved map file instead (e.g. on the host).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Also save the raw map file here.
        #[arg(long)]
        save: Option<PathBuf>,
    },
}

/// One slab cache or heap of `RKALLOC_IOC_LIST`.
#[derive(Serialize)]
struct ListEntry {
    kind: &'static str,
    name: String,
    /// This fd's handle for it, 0 when another fd (or the module) owns it.
    handle: u64,
    obj_size: u32,
    policy: u32,
    flags: u32,
    bytes: u64,
}

impl ListEntry {
    fn of(e: &uapi::rkalloc_list_entry) -> Self {
        let name: Vec<u8> = e.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        ListEntry {
            kind: match e.kind {
                uapi::RKALLOC_KIND_CACHE => "cache",
                uapi::RKALLOC_KIND_HEAP => "heap",
                _ => "unknown",
            },
            name: String::from_utf8_lossy(&name).into_owned(),
            handle: e.handle,
            obj_size: e.obj_size,
            policy: e.policy,
            flags: e.flags,
            bytes: e.bytes,
        }
    }
}

#[derive(Serialize)]
struct Info {
    abi_version: u32,
    page_size: u32,
    max_order: u32,
    nr_cpus: u32,
    nr_caches: u32,
    nr_heaps: u32,
    pool_pages: u64,
    pool_free_pages: u64,
    fd_bytes: u64,
    fd_cap_bytes: u64,
}

fn print<T: Serialize>(json: bool, v: &T) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        let v = serde_json::to_value(v)?;
        for (k, v) in v.as_object().into_iter().flatten() {
            println!("{k:>22}: {v}");
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Info => {
            let dev = device::Device::open(&cli.dev)?;
            let i = dev.info()?;
            let list: Vec<ListEntry> = dev.list()?.iter().map(ListEntry::of).collect();
            let info = Info {
                abi_version: i.abi_version,
                page_size: i.page_size,
                max_order: i.max_order,
                nr_cpus: i.nr_cpus,
                nr_caches: i.nr_caches,
                nr_heaps: i.nr_heaps,
                pool_pages: i.pool_pages,
                pool_free_pages: i.pool_free_pages,
                fd_bytes: i.fd_bytes,
                fd_cap_bytes: i.fd_cap_bytes,
            };
            if cli.json {
                #[derive(Serialize)]
                struct Full {
                    #[serde(flatten)]
                    info: Info,
                    caches_and_heaps: Vec<ListEntry>,
                }
                println!("{}", serde_json::to_string_pretty(&Full { info, caches_and_heaps: list })?);
            } else {
                print(false, &info)?;
                println!();
                println!("{:<6} {:<32} {:>8} {:>6} {:>5} {:>12} {:>18}", "kind", "name", "obj_size", "policy", "flags", "bytes", "handle");
                for e in &list {
                    println!(
                        "{:<6} {:<32} {:>8} {:>6} {:>5} {:>12} {:>18}",
                        e.kind,
                        e.name,
                        e.obj_size,
                        e.policy,
                        e.flags,
                        e.bytes,
                        if e.handle == 0 { "-".to_string() } else { format!("{:#x}", e.handle) }
                    );
                }
            }
        }
        Cmd::Stats { reset } => {
            let s = device::Device::open(&cli.dev)?.pool_stats_flags(if reset { uapi::RKALLOC_STATS_RESET } else { 0 })?;
            #[derive(Serialize)]
            struct Order {
                order: usize,
                free_blocks: u64,
                allocs: u64,
                frees: u64,
                splits: u64,
                merges: u64,
                failures: u64,
            }
            #[derive(Serialize)]
            struct Stats {
                total_pages: u64,
                free_pages: u64,
                pcp_pages: u64,
                high_water_pages: u64,
                chunks_grown: u64,
                chunks_shrunk: u64,
                orders: Vec<Order>,
            }
            let st = Stats {
                total_pages: s.total_pages,
                free_pages: s.free_pages,
                pcp_pages: s.pcp_pages,
                high_water_pages: s.high_water_pages,
                chunks_grown: s.chunks_grown,
                chunks_shrunk: s.chunks_shrunk,
                orders: (0..uapi::RKALLOC_NR_ORDERS as usize)
                    .map(|o| Order {
                        order: o,
                        free_blocks: s.nr_free[o],
                        allocs: s.allocs[o],
                        frees: s.frees[o],
                        splits: s.splits[o],
                        merges: s.merges[o],
                        failures: s.failures[o],
                    })
                    .collect(),
            };
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                println!(
                    "pool: {} pages, {} free ({} on per-CPU lists), high water {}, chunks grown {} shrunk {}",
                    st.total_pages, st.free_pages, st.pcp_pages, st.high_water_pages, st.chunks_grown, st.chunks_shrunk
                );
                println!("{:>5} {:>8} {:>12} {:>12} {:>10} {:>10} {:>8}", "order", "free", "allocs", "frees", "splits", "merges", "fails");
                for o in &st.orders {
                    println!(
                        "{:>5} {:>8} {:>12} {:>12} {:>10} {:>10} {:>8}",
                        o.order, o.free_blocks, o.allocs, o.frees, o.splits, o.merges, o.failures
                    );
                }
            }
        }
        Cmd::Stress { threads, ops, duration, seed, alloc, max_live, max_order, quiet } => {
            let allocators = if alloc.is_empty() { <stress::Kind as clap::ValueEnum>::value_variants().to_vec() } else { alloc };
            if max_order > 10 {
                bail!("--max-order must be at most 10");
            }
            let cfg = stress::Config {
                threads,
                ops,
                duration: duration.map(Duration::from_secs_f64),
                seed,
                allocators,
                max_live,
                max_order,
                progress: !quiet && !cli.json,
            };
            let s = stress::run(&cli.dev, cfg)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "stress: {} threads, seed {}, {} ops in {:.2}s ({:.0} ops/s)",
                    s.threads, s.seed, s.ops, s.seconds, s.ops_per_sec
                );
                println!("{:>10} {:>10} {:>10} {:>14} {:>8} {:>12}", "allocator", "allocs", "frees", "verified B", "ENOMEM", "ops/s");
                for (k, v) in &s.per_allocator {
                    println!(
                        "{:>10} {:>10} {:>10} {:>14} {:>8} {:>12.0}",
                        k, v.allocs, v.frees, v.bytes_verified, v.enomem, v.ops_per_sec
                    );
                }
                println!("corruptions: {}, unexpected errors: {}, invariant check: {}", s.corruptions, s.unexpected_errors, if s.check_ok { "ok" } else { "FAILED" });
                for e in &s.errors {
                    println!("  error: {e}");
                }
            }
            if s.corruptions != 0 || s.unexpected_errors != 0 || !s.check_ok {
                bail!("stress found {} corruptions and {} unexpected errors", s.corruptions, s.unexpected_errors);
            }
        }
        Cmd::Errors => {
            let cases = errors::run(&cli.dev)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&cases)?);
            } else {
                for c in &cases {
                    println!("{} - {}: expected {}, got {}", if c.ok { "ok" } else { "not ok" }, c.name, c.expected, c.got);
                }
            }
            let bad = cases.iter().filter(|c| !c.ok).count();
            if bad != 0 {
                bail!("{bad} of {} error cases deviate", cases.len());
            }
        }
        Cmd::Bench { repeats, samples, ops, cpus, quick, filter, mode, plot, out } => {
            if repeats == 0 || cpus.is_empty() || cpus.contains(&0) {
                bail!("--repeats and every --cpus value must be at least 1");
            }
            let opt = bench::Options { repeats, samples, ops, cpus, quick, mode, filter };
            let r = bench::run(&cli.dev, &opt, !cli.json)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                bench::print(&r);
            }
            if let Some(out) = out {
                std::fs::write(&out, serde_json::to_string_pretty(&r)?)?;
            }
            if let Some(p) = plot {
                plot::draw(&r, &p)?;
            }
        }
        Cmd::Table { report } => {
            let r = bench::load(&report)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                bench::print(&r);
            }
        }
        Cmd::Plot { report, out } => {
            let r = bench::load(&report)?;
            plot::draw(&r, &out)?;
            if cli.json {
                println!("{}", serde_json::json!({ "wrote": out.display().to_string() }));
            } else {
                println!("wrote {}", out.display());
            }
        }
        Cmd::Heap { steps } => {
            let bad = heapcmd::run(&cli.dev, &steps, cli.json)?;
            if bad != 0 {
                bail!("{bad} of {} steps deviate", steps.len());
            }
        }
        Cmd::Replay { trace, alloc, repeats } => {
            let t = replay::load(&trace)?;
            let name = trace.file_name().map_or_else(|| trace.display().to_string(), |n| n.to_string_lossy().into_owned());
            let r = replay::run(&cli.dev, &name, &t, &alloc, repeats)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                replay::print(&r);
            }
        }
        Cmd::GenTrace { shape, allocs, seed } => print!("{}", replay::generate(shape, allocs, seed)),
        Cmd::Fuzz(a) => fuzz::main(&cli.dev, cli.json, &a)?,
        Cmd::Copyout(a) => copyout::main(&cli.dev, cli.json, &a)?,
        Cmd::Import(a) => import::main(&a)?,
        Cmd::Top(a) => top::main(&a)?,
        Cmd::Shrink => {
            let n = device::Device::open(&cli.dev)?.shrink()?;
            if cli.json {
                println!("{}", serde_json::json!({ "released_pages": n }));
            } else {
                println!("released {n} pages");
            }
        }
        Cmd::Check => {
            device::Device::open(&cli.dev)?.check()?;
            if cli.json {
                println!("{}", serde_json::json!({ "invariants_hold": true }));
            } else {
                println!("invariants hold");
            }
        }
        Cmd::Map { out, by, debugfs, input, save } => {
            let (raw, m) = map::load(input.as_deref().unwrap_or(&debugfs))?;
            if let Some(p) = save {
                std::fs::write(&p, &raw)?;
            }
            let s = map::summarize(&m);
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                map::print(&s);
            }
            if let Some(out) = out {
                map::draw(&m, by, &out)?;
                if !cli.json {
                    println!("wrote {}", out.display());
                }
            }
        }
    }
    Ok(())
}
