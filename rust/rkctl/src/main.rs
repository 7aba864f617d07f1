//! rkctl: drive rkalloc's allocators from userspace through `/dev/rkalloc`.
//!
//! Every subcommand's `--help` has examples; `rkctl completions SHELL`
//! prints shell completions and `rkctl man DIR` writes the man pages.
//!
//! Exit status (the same text is in `rkctl --help`; a test keeps the two
//! equal):
//!
//! ```text
//! Exit status:
//!   0  success
//!   1  usage: bad arguments, or an input file that cannot be read or is malformed
//!   3  the kernel refused: an ioctl returned an errno the command did not expect,
//!      or the module's answers deviate from include/uapi/rkalloc.h
//!   4  data corruption: a verify mismatch, EUCLEAN from CHECK, CONFORM or a debug
//!      heap, or corruption found by stress
//!   5  rkctl cannot run: /dev/rkalloc missing or not accessible (root only), a
//!      module of another ABI version, an output file that cannot be written
//! (2 is never used. Output into a pipe closed early, as in `rkctl ... | head`,
//! ends rkctl by SIGPIPE, which shells report as 141.)
//! ```
//!
//! clap's own usage errors exit 1 like rkctl's; `--help` and `--version`
//! exit 0. The mapping is in `error.rs`.
mod bench;
mod canvas;
mod copyout;
mod device;
mod error;
mod errors;
mod fuzz;
mod heapcmd;
mod import;
mod map;
mod plot;
mod replay;
mod stress;
mod table;
mod top;
mod uapi;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use error::{Class, ResultExt};
use serde::Serialize;
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

/// The text after `rkctl --help`: examples, then the exit statuses.
fn after_help() -> String {
    format!(
        "Examples:
  rkctl info                         the module, the pool, every allocator, cache and heap
  rkctl stress -t 4 -d 10            every kind and every allocator of the table, 4 threads, 10 s
  rkctl bench --quick --out r.json   the comparison with the kernel's allocators
  rkctl SUBCOMMAND --help            more examples

{}",
        error::EXIT_CODES_HELP
    )
}

/// rkctl's command line.
#[derive(Parser)]
#[command(version, about = "Drive rkalloc's allocators through /dev/rkalloc", after_help = after_help())]
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

/// The subcommands.
#[derive(Subcommand)]
enum Cmd {
    /// The module, the pool, this fd, every cache and heap, every allocator.
    ///
    /// ABI version, page size, pool size and this fd's usage; every slab
    /// cache and heap (RKALLOC_IOC_LIST); the allocator table.
    #[command(after_help = "Examples:
  rkctl info
  rkctl --json info > info.json        the same, with the table as \"allocators\"")]
    Info,
    /// The module's allocator table.
    ///
    /// RKALLOC_IOC_ALLOCATORS: id, name, class, size range, whether it
    /// frees one by one or all at once, whose it is (rkalloc's or the
    /// kernel's), its kernel peer, its fit policy. Everything bench,
    /// replay, stress and errors run comes from this table.
    #[command(after_help = "Examples:
  rkctl allocators
  rkctl --json allocators")]
    Allocators,
    /// Pool statistics (per order) from the stats ioctl.
    #[command(after_help = "Examples:
  rkctl stats
  rkctl stats --reset        read, then zero the counters")]
    Stats {
        /// Reset the counters after reading them (RKALLOC_STATS_RESET).
        #[arg(long)]
        reset: bool,
    },
    /// Random allocations on many threads, verified, and conformance runs.
    ///
    /// Threads run a random mix of allocations, filling and verifying
    /// each, and conformance runs (RKALLOC_IOC_CONFORM) of the module's
    /// allocators; exits 4 on any corruption, 3 on an unexpected errno.
    #[command(after_help = "Kinds (-a): pool, heap (every policy of the module), arena, object, malloc;
conform (a conformance run of every allocator of the table) or conform:NAME
(of one; NAME from `rkctl allocators`). Default: all kinds and conform.
A conformance step counts as one op; conformance takes the share of one
kind of the ops (all of them when no kind is named), in runs of
--conform-ops steps on each allocator in turn. Every allocator named gets
at least one run.

Examples:
  rkctl stress -t 4 -d 10                       everything, 4 threads, 10 seconds
  rkctl stress -a pool,object -o 100000 --seed 3
  rkctl stress -a conform -o 2000               conformance runs only, every allocator
  rkctl stress -a heap,conform:rk_slab,conform:kmalloc --conform-ops 1000")]
    Stress {
        /// Threads, each with its own fd.
        #[arg(short, long, default_value_t = 2)]
        threads: usize,
        /// Total operations, conformance steps included (ignored with
        /// --duration).
        #[arg(short, long, default_value_t = 100_000)]
        ops: u64,
        /// Run for this many seconds instead of a count.
        #[arg(short, long)]
        duration: Option<f64>,
        /// Seed of the random mix (and of the conformance runs' seeds).
        #[arg(short, long, default_value_t = 1)]
        seed: u64,
        /// What to drive: kinds and conform[:NAME] (default: all).
        #[arg(short, long, value_delimiter = ',', value_parser = stress::parse_target)]
        alloc: Vec<stress::Target>,
        /// Most live allocations per thread (and per conformance run).
        #[arg(long, default_value_t = 256)]
        max_live: usize,
        /// Highest pool order used.
        #[arg(long, default_value_t = 6)]
        max_order: u32,
        /// Steps of each conformance run (1..2^24).
        #[arg(long, default_value_t = 256)]
        conform_ops: u64,
        /// Set /proc/thread-self/make-it-fail in every worker thread (after
        /// it opened its fd), for task-filtered fault injection: ENOMEM is
        /// then expected and counted, and anything else still fails.
        #[arg(long)]
        make_it_fail: bool,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check every documented error path.
    ///
    /// For every allocator and policy of the module's tables; exits 3 on
    /// any deviation.
    #[command(after_help = "Examples:
  rkctl errors
  rkctl --json errors > errors.json")]
    Errors,
    /// Compare every allocator with its kernel peer, in this kernel.
    ///
    /// RKALLOC_IOC_BENCH: one table, JSON with --json or --out, plots with
    /// --plot. The matrix comes from the module's table (by class; each
    /// row's baseline is its peer; sizes outside an allocator's range are
    /// not run). Exits 3 if a row failed.
    #[command(after_help = "Columns: mean = mean of the repeats' means per alloc+free pair; spread =
(max - min) / mean over repeats; sample min..max = fastest and slowest sample
(means of --ops pairs, not single operations); with --latency, alloc and free
p50/p99 of single operations. Units follow the mode: guest instructions
under icount, ns of real time in uml-native, ns of wall-clock time in
tcg-wallclock and kvm-wallclock.

Examples:
  rkctl bench --quick
  rkctl bench --filter \"pages order 0\" --repeats 5
  rkctl bench --alloc rk_slab --latency         rk_slab and its peer, with per-operation p50/p99
  rkctl bench --quick --cpus 1,2 --out r.json --plot r.svg
  rkctl bench --label \"clang 19, -mcmodel=kernel\" --out native.json")]
    Bench {
        /// Repeats of each case (the spread is over these).
        #[arg(short, long, default_value_t = 3)]
        repeats: u32,
        /// Samples per repeat (sample min..max are over these).
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
        /// Only cases whose group or allocator contains this (with their
        /// baselines).
        #[arg(long)]
        filter: Option<String>,
        /// Only these allocators of the table (with their peers).
        #[arg(short, long, value_delimiter = ',')]
        alloc: Vec<String>,
        /// Also time single allocations and frees (RKALLOC_BENCH_LATENCY):
        /// per-operation p50/p99.
        #[arg(long)]
        latency: bool,
        /// How the module was built, for the report (compiler, code model):
        /// native figures must say it.
        #[arg(long)]
        label: Option<String>,
        /// How guest time is measured, recorded in the report (default: as
        /// scripts/vm-run booted the guest: icount, tcg-wallclock,
        /// kvm-wallclock or uml-native).
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
    #[command(after_help = "Examples:
  rkctl table out/bench/icount.json
  rkctl --json table r.json")]
    Table {
        report: PathBuf,
    },
    /// Draw the plots of a saved bench report (.json) into an .svg or .png file.
    #[command(after_help = "Examples:
  rkctl plot r.json r.svg
  rkctl plot out/bench/wallclock.json wallclock.png")]
    Plot {
        report: PathBuf,
        out: PathBuf,
    },
    /// Drive heaps and the arena step by step on one fd.
    ///
    /// Steps: create:POLICY[:debug][:flagsN][:BYTES], alloc:BYTES,
    /// arena:BYTES[:ALIGN], free:N, verify:N, reset, destroy, arena-reset,
    /// show, check; `=ERRNO` expects a failure. POLICY is a policy name
    /// of the module (`best-fit`), its short form (`best`) or an id.
    /// Every step is checked before the first runs. Exits 3 on a
    /// deviation, 4 on a corrupted allocation.
    #[command(after_help = "Examples:
  rkctl heap create:best-fit alloc:100 alloc:5000 free:0 show
  rkctl heap create:segregated:debug alloc:64 reset free:0=EINVAL destroy
  rkctl heap arena:100:64 verify:0 arena-reset verify:0=EINVAL
  rkctl heap create:9=EINVAL                 a policy id the module does not have")]
    Heap {
        #[arg(required = true)]
        steps: Vec<String>,
    },
    /// Replay an allocation trace on every allocator that can serve it.
    ///
    /// The trace (`a ID SIZE` / `f ID` lines) runs in the kernel
    /// (RKALLOC_IOC_REPLAY) on every allocator of the table whose range
    /// holds its sizes and that frees one by one: ops/s, peak footprint,
    /// internal and external fragmentation. Exits 3 if the kernel refused
    /// a replay the table says it can serve.
    #[command(after_help = "Examples:
  rkctl replay /rkalloc/tests/traces/synth-phased.trace
  rkctl replay -a heap_first,heap_best -r 5 t.trace
  rkctl --json replay -r 1 t.trace > r.json")]
    Replay {
        trace: PathBuf,
        /// Allocators to run (default: all), names of the table.
        #[arg(short, long, value_delimiter = ',')]
        alloc: Vec<String>,
        /// Runs per allocator; the table shows the median.
        #[arg(short, long, default_value_t = 3)]
        repeats: u32,
    },
    /// Turn a perf script or trace-cmd capture of kmem events into a trace.
    ///
    /// Reads the kernel's kmem:kmalloc / kmem:kfree tracepoints (and
    /// kmem_cache_alloc / kmem_cache_free) as `perf script` or `trace-cmd
    /// report` print them (or tracefs's trace file) and writes rkctl
    /// replay's format: ids in allocation order, sizes from bytes_req, no
    /// pointer kept; frees of memory allocated before the capture are
    /// dropped and counted in a comment. Malformed lines fail the import
    /// with their line numbers (exit 1).
    #[command(after_help = "Examples:
  rkctl import --from perf-script kmem.txt -o kmem.trace
      after: perf record -e kmem:kmalloc -e kmem:kfree -a -- sleep 5; perf script > kmem.txt
  rkctl import --from trace-cmd - -o kmem.trace < report.txt
      after: trace-cmd record -e kmem:kmalloc -e kmem:kfree sleep 5; trace-cmd report > report.txt
  rkctl import --from trace-cmd /sys/kernel/tracing/trace > kmem.trace
  rkctl replay kmem.trace")]
    Import(import::Args),
    /// Write a synthetic allocation trace to stdout.
    #[command(after_help = "Examples:
  rkctl gen-trace phased --allocs 3000 --seed 1 > phased.trace
  rkctl gen-trace power-law | rkctl replay /dev/stdin")]
    GenTrace {
        #[arg(value_enum)]
        shape: replay::Shape,
        /// Allocations in the trace.
        #[arg(long, default_value_t = 3000)]
        allocs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Fuzz the ioctls: structure-aware, deterministic by seed.
    ///
    /// Threads issue the header's commands with valid, boundary and broken
    /// arguments (sizes, counts, orders and ids at the edges of the
    /// module's tables; live, freed and other fds' handles; wrong size
    /// fields, reserved fields, unknown command numbers; NULL, unmapped,
    /// read-only, misaligned, straddling and kernel pointers), close fds
    /// under running calls and run CHECK concurrently. Exits 0 only if every
    /// call returned 0 or an errno the header's "errors:" table lists for it
    /// (and what the header makes certain), no output held a kernel address,
    /// CHECK stayed clean, and the pool, slab caches, heaps and arenas came
    /// back to their baseline once the fuzzer's fds were closed; else 3 (4
    /// for damage: EUCLEAN, a failed CHECK). Run it alone on the module.
    #[command(after_help = "Examples:
  rkctl fuzz --threads 2 --calls 100000 --seed 7
  rkctl fuzz --threads 1 --calls 5000 --seed 7      one thread: a seed replays its calls
  rkctl --json fuzz --calls 20000 --fds 4 > fuzz.json
  rkctl fuzz --table                                the header's errors: table as rkctl reads it")]
    Fuzz(fuzz::Args),
    /// Failed copy-outs change nothing: one line per command.
    ///
    /// For every command that allocates, frees or resets: its valid struct
    /// in a read-only page must give EFAULT, and then the fd's bytes,
    /// caches and heaps, the pool's pages, every handle's contents and the
    /// heap's and arena's live allocations must be as before; the same
    /// call on a writable page must succeed; everything must free. Exits 3
    /// on any failure. Run it alone on the module.
    #[command(after_help = "Examples:
  rkctl copyout
  rkctl --json copyout > copyout.json")]
    Copyout(copyout::Args),
    /// A live view of the pool, slab caches, heaps and arenas, like slabtop.
    ///
    /// Reads /sys/kernel/debug/rkalloc: the pool's pages and free blocks
    /// per order, every cache's slabinfo figures (slabtop's summary,
    /// columns and sort keys a b c l v n o p s u), every heap's and
    /// arena's sizes and fragmentation. q or Ctrl-C quits.
    #[command(after_help = "Examples:
  rkctl top
  rkctl top --sort active -d 1
  rkctl top --once > frame.txt       one frame, no terminal control codes")]
    Top(top::Args),
    /// Give free pool memory back to the kernel.
    #[command(after_help = "Examples:
  rkctl shrink
  rkctl --json shrink")]
    Shrink,
    /// Run the invariant checkers; exits 4 when they find damage.
    #[command(after_help = "Examples:
  rkctl check
  rkctl --json check")]
    Check,
    /// Print shell completions for rkctl.
    #[command(after_help = "Examples:
  rkctl completions bash > /etc/bash_completion.d/rkctl
  rkctl completions zsh > ~/.zfunc/_rkctl
  rkctl completions fish > ~/.config/fish/completions/rkctl.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages.
    ///
    /// rkctl.1, and rkctl-SUBCOMMAND.1 for each subcommand.
    #[command(after_help = "Examples:
  rkctl man out/man
  man -l out/man/rkctl-bench.1")]
    Man {
        /// The directory (made if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// The pool's occupancy, one cell per page.
    ///
    /// Free, per-CPU, or used by owner or order, from the binary debugfs
    /// map: a summary, and an SVG or PNG with --out.
    #[command(after_help = "Examples:
  rkctl map --out m.svg
  rkctl map --by order --out m.png --save m.bin
  rkctl map --input m.bin --out m.svg        a saved map, drawn on the host")]
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
    /// The entry as the kernel wrote it.
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

/// `RKALLOC_IOC_INFO`, as `rkctl info` shows it.
#[derive(Serialize)]
struct Info {
    abi_version: u32,
    page_size: u32,
    max_order: u32,
    nr_cpus: u32,
    nr_caches: u32,
    nr_heaps: u32,
    nr_allocators: u32,
    nr_policies: u32,
    pool_pages: u64,
    pool_free_pages: u64,
    fd_bytes: u64,
    fd_cap_bytes: u64,
}

/// Prints `v` as JSON, or as `key: value` lines.
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

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a write to a closed pipe (`rkctl gen-trace |
    // head`) would panic in print!; with the default action rkctl ends
    // quietly as C tools do.
    // SAFETY: setting SIGPIPE's default action, before any thread starts,
    // touches no Rust state.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version come here too, and print to stdout.
            let _ = e.print();
            return ExitCode::from(error::clap_exit_code(&e));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::from(error::EXIT_OK),
        Err(e) => {
            eprintln!("rkctl: {e:#}");
            ExitCode::from(error::classify(&e).exit_code())
        }
    }
}

/// Writes `rkctl.1` and `rkctl-SUBCOMMAND.1` for every subcommand into
/// `dir`; returns the files written.
fn write_man(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).class(Class::System, || format!("cannot make {}", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut pages = vec![("rkctl".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("rkctl-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name).bin_name(format!("rkctl {}", sub.get_name()))));
    }
    let mut written = Vec::new();
    for (name, page) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf).class(Class::System, || format!("cannot render {name}.1"))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, buf).class(Class::System, || format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `text` to `path`, as rkctl's output.
fn write_out(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).class(Class::System, || format!("cannot write {}", path.display()))
}

/// Runs the subcommand `cli` names.
fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Info => {
            let dev = device::Device::open(&cli.dev)?;
            let i = dev.info()?;
            let list: Vec<ListEntry> = dev.list()?.iter().map(ListEntry::of).collect();
            let allocators = dev.allocators()?;
            let info = Info {
                abi_version: i.abi_version,
                page_size: i.page_size,
                max_order: i.max_order,
                nr_cpus: i.nr_cpus,
                nr_caches: i.nr_caches,
                nr_heaps: i.nr_heaps,
                nr_allocators: i.nr_allocators,
                nr_policies: i.nr_policies,
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
                    allocators: Vec<table::Allocator>,
                }
                println!("{}", serde_json::to_string_pretty(&Full { info, caches_and_heaps: list, allocators })?);
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
                println!();
                print!("{}", table::render(&allocators));
            }
        }
        Cmd::Allocators => {
            let t = device::Device::open(&cli.dev)?.allocators()?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                print!("{}", table::render(&t));
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
        Cmd::Stress { threads, ops, duration, seed, alloc, max_live, max_order, conform_ops, make_it_fail, quiet } => {
            if max_order > 10 {
                return Err(error::usage("--max-order must be at most 10"));
            }
            if conform_ops == 0 || conform_ops > 1 << 24 {
                return Err(error::usage("--conform-ops must be in 1..=16777216"));
            }
            let cfg = stress::Config {
                threads,
                ops,
                duration: duration.map(Duration::from_secs_f64),
                seed,
                targets: alloc,
                max_live,
                max_order,
                conform_ops,
                progress: !quiet && !cli.json,
                make_it_fail,
            };
            let s = stress::run(&cli.dev, cfg)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "stress: {} threads, seed {}, {} ops in {:.2}s ({:.0} ops/s), {} fit policies",
                    s.threads, s.seed, s.ops, s.seconds, s.ops_per_sec, s.nr_policies
                );
                if !s.per_allocator.is_empty() {
                    println!("{:>10} {:>10} {:>10} {:>14} {:>8} {:>12}", "kind", "allocs", "frees", "verified B", "ENOMEM", "ops/s");
                    for (k, v) in &s.per_allocator {
                        println!(
                            "{:>10} {:>10} {:>10} {:>14} {:>8} {:>12.0}",
                            k, v.allocs, v.frees, v.bytes_verified, v.enomem, v.ops_per_sec
                        );
                    }
                }
                if !s.conform.is_empty() {
                    println!(
                        "{:>18} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7}",
                        "conform", "runs", "steps", "allocs", "frees", "refused", "corrupt", "bad size", "checker", "ENOMEM"
                    );
                    for (k, v) in &s.conform {
                        println!(
                            "{:>18} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7}",
                            k, v.runs, v.steps, v.allocs, v.frees, v.failures, v.corrupt_blocks, v.bad_sizes, v.check_failures, v.enomem
                        );
                    }
                }
                println!(
                    "corruptions: {}, unexpected errors: {}, invariant check: {}",
                    s.corruptions,
                    s.unexpected_errors,
                    s.check_errno.as_deref().map_or("ok".to_string(), |e| format!("FAILED ({e})"))
                );
                for e in &s.errors {
                    println!("  error: {e}");
                }
            }
            s.result()?;
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
                return Err(error::refused(format!("{bad} of {} error cases deviate", cases.len())));
            }
        }
        Cmd::Bench { repeats, samples, ops, cpus, quick, filter, alloc, latency, label, mode, plot, out } => {
            if repeats == 0 || cpus.is_empty() || cpus.contains(&0) {
                return Err(error::usage("--repeats and every --cpus value must be at least 1"));
            }
            let opt = bench::Options { repeats, samples, ops, cpus, quick, mode, filter, allocators: alloc, latency, label };
            let r = bench::run(&cli.dev, &opt, !cli.json)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                bench::print(&r);
            }
            if let Some(out) = out {
                write_out(&out, &serde_json::to_string_pretty(&r)?)?;
            }
            if let Some(p) = plot {
                plot::draw(&r, &p).class(Class::System, || format!("cannot draw {}", p.display()))?;
            }
            bench::failures(&r)?;
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
            heapcmd::run(&cli.dev, &steps, cli.json)?.result(steps.len())?;
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
            replay::failures(&r)?;
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
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rkctl", &mut std::io::stdout());
        }
        Cmd::Man { dir } => {
            for p in write_man(&dir)? {
                if !cli.json {
                    println!("wrote {}", p.display());
                }
            }
        }
        Cmd::Map { out, by, debugfs, input, save } => {
            // A saved map is the user's input; the kernel's is the system's.
            let (raw, m) = match &input {
                Some(p) => map::load(p).class(Class::Usage, || "--input".into())?,
                None => map::load(&debugfs)?,
            };
            if let Some(p) = save {
                write_out_bytes(&p, &raw)?;
            }
            let s = map::summarize(&m);
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                map::print(&s);
            }
            if let Some(out) = out {
                map::draw(&m, by, &out).class(Class::System, || format!("cannot draw {}", out.display()))?;
                if !cli.json {
                    println!("wrote {}", out.display());
                }
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path`, as rkctl's output.
fn write_out_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).class(Class::System, || format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_examples() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            let help = sub.get_after_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains("Examples:\n  rkctl "), "rkctl {} --help has no examples", sub.get_name());
        }
        let top = cmd.get_after_help().unwrap().to_string();
        assert!(top.contains(error::EXIT_CODES_HELP));
    }

    #[test]
    fn the_doc_comment_states_the_exit_codes() {
        // One text: the doc comment at the top of this file quotes
        // EXIT_CODES_HELP line by line.
        let doc: String = include_str!("main.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.strip_prefix("//! ").unwrap_or(l.strip_prefix("//!").unwrap_or(l)))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(doc.contains(error::EXIT_CODES_HELP), "main.rs's doc comment differs from EXIT_CODES_HELP");
    }

    #[test]
    fn usage_errors_exit_1() {
        for args in [&["rkctl", "bench", "--repeats", "x"][..], &["rkctl", "nonesuch"], &["rkctl", "stress", "-a", "kmalloc"], &["rkctl"]] {
            let e = Cli::try_parse_from(args).err().unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(error::clap_exit_code(&e), 1, "{args:?}");
        }
        let e = Cli::try_parse_from(["rkctl", "bench", "--help"]).err().unwrap();
        assert_eq!(error::clap_exit_code(&e), 0);
        // Missing device: rkctl cannot run.
        let cli = Cli::try_parse_from(["rkctl", "--dev", "/nonexistent/rkalloc", "info"]).unwrap();
        assert_eq!(error::classify(&run(cli).unwrap_err()).exit_code(), 5);
        // An unreadable input file is a usage error.
        let cli = Cli::try_parse_from(["rkctl", "table", "/nonexistent/r.json"]).unwrap();
        assert_eq!(error::classify(&run(cli).unwrap_err()).exit_code(), 1);
        let cli = Cli::try_parse_from(["rkctl", "replay", "/nonexistent/t.trace"]).unwrap();
        assert_eq!(error::classify(&run(cli).unwrap_err()).exit_code(), 1);
        let cli = Cli::try_parse_from(["rkctl", "map", "--input", "/nonexistent/m.bin"]).unwrap();
        assert_eq!(error::classify(&run(cli).unwrap_err()).exit_code(), 1);
    }

    #[test]
    fn stress_targets_parse_on_the_command_line() {
        let cli = Cli::try_parse_from(["rkctl", "stress", "-a", "pool,conform:rk_pool,conform"]).unwrap();
        let Cmd::Stress { alloc, .. } = cli.cmd else { panic!("not stress") };
        assert_eq!(
            alloc,
            [stress::Target::Kind(stress::Kind::Pool), stress::Target::Conform(Some("rk_pool".into())), stress::Target::Conform(None)]
        );
    }

    #[test]
    fn man_pages_for_every_subcommand() {
        let dir = std::env::temp_dir().join(format!("rkctl-man-{}", std::process::id()));
        let written = write_man(&dir).unwrap();
        let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names[0], "rkctl.1");
        for sub in Cli::command().get_subcommands() {
            assert!(names.contains(&format!("rkctl-{}.1", sub.get_name())), "no page for {}", sub.get_name());
        }
        let bench = std::fs::read_to_string(dir.join("rkctl-bench.1")).unwrap();
        assert!(bench.starts_with(".ie") || bench.contains(".TH"), "not roff");
        assert!(bench.contains("latency") && bench.contains("Examples"));
        let top = std::fs::read_to_string(dir.join("rkctl.1")).unwrap();
        assert!(top.contains("Exit status"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "rkctl", &mut out);
            let s = String::from_utf8(out).unwrap();
            for sub in ["bench", "stress", "allocators", "completions", "man"] {
                assert!(s.contains(sub), "{shell:?} completions lack {sub}");
            }
        }
    }
}
