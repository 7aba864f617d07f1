//! `rkctl import`: turns a capture of the kernel's `kmem:kmalloc` /
//! `kmem:kfree` tracepoints (and `kmem_cache_alloc` / `kmem_cache_free`)
//! into rkctl replay's trace format (`a ID SIZE`, `f ID`, `#` comments).
//!
//! Inputs, by `--from`:
//! - `perf-script`: the default output of `perf script` after
//!   `perf record -e kmem:kmalloc -e kmem:kfree ...`: `COMM TID [CPU]
//!   SECS.USECS: kmem:kmalloc: FIELDS` (tools/perf/builtin-script.c), with
//!   `-g` an indented frame per line after each event;
//! - `trace-cmd`: `trace-cmd report` (`COMM-PID [CPU] FLAGS SECS.USECS:
//!   kmalloc: FIELDS`), and the same shape read straight from tracefs
//!   (`/sys/kernel/tracing/trace`, `#` header, hashed pointers).
//!
//! FIELDS is the event's TP_printk in include/trace/events/kmem.h:
//! `call_site=%pS ptr=%p bytes_req=%zu bytes_alloc=%zu gfp_flags=%s
//! node=%d accounted=%s` for kmalloc (kmem_cache_alloc adds `name=%s`),
//! `call_site=%pS ptr=%p` for kfree (kmem_cache_free adds `name=%s`). Only
//! `ptr` and `bytes_req` are used, by name; `bytes_req=56bytes_alloc=64`
//! (libtraceevent drops the space after some values) is read as 56.
//!
//! The trace: events are taken in timestamp order (stable: the file's
//! order among equal times, across CPUs); each allocation gets the next id
//! in allocation order and its requested size (bytes_req); a free names the
//! id of its pointer; no pointer is written. Frees of pointers allocated
//! before the capture started are dropped, and counted in a comment, as
//! are frees of NULL, failed (NULL) and zero-size allocations (and their
//! frees), allocations over a pointer still live (its free was lost: it is
//! freed first, as tests/guest/events2trace.awk does), and other events.
//! A line that is neither an event, a callchain frame, a comment nor a
//! known header is malformed: the import fails naming its line (or, with
//! `--skip-bad`, lists it in a comment).
use crate::uapi;
use anyhow::{bail, Result};
use std::{collections::HashMap, fmt::Write as _, io::Read, path::PathBuf};

/// `rkctl import`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The capture's format.
    #[arg(long = "from", value_enum)]
    pub from: Format,
    /// The capture (`-` reads stdin).
    pub file: PathBuf,
    /// Write the trace here instead of stdout.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Skip malformed lines (listed in a comment) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
}

/// The capture formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `perf script` (events named `kmem:kmalloc`).
    PerfScript,
    /// `trace-cmd report`, or tracefs's `trace` file (events named `kmalloc`).
    TraceCmd,
}

/// What an event line does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// kmalloc, kmem_cache_alloc (and the *_node events).
    Alloc,
    /// kfree, kmem_cache_free.
    Free,
}

/// One kmem event of the capture.
#[derive(Clone, Debug)]
struct Event {
    /// (seconds, nanoseconds).
    time: (u64, u64),
    /// Allocation or free.
    op: Op,
    /// The pointer as printed (hashed or not); "0" for NULL.
    ptr: u64,
    /// bytes_req (0 for a free).
    size: u64,
}

/// What the import saw, for the trace's comments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lines read.
    pub lines: usize,
    /// kmem events taken.
    pub events: usize,
    /// Allocations written.
    pub allocs: usize,
    /// Frees written.
    pub frees: usize,
    /// Frees of pointers allocated before the capture started.
    pub unknown_frees: usize,
    /// Frees of NULL.
    pub null_frees: usize,
    /// Allocations that returned NULL.
    pub failed_allocs: usize,
    /// Allocations of 0 bytes (ZERO_SIZE_PTR), or above what a replay
    /// takes, with their frees.
    pub skipped_allocs: usize,
    /// Frees of those allocations.
    pub skipped_frees: usize,
    /// Allocations of a pointer still live: its free was not seen.
    pub lost_frees: usize,
    /// Events of other kinds.
    pub other_events: usize,
    /// perf -g frames.
    pub callchain_lines: usize,
    /// Events the tracer says it lost (`[LOST N EVENTS]`).
    pub lost_events: u64,
    /// Allocations never freed.
    pub live_at_end: usize,
    /// The CPUs the events ran on.
    pub cpus: std::collections::BTreeSet<u32>,
    /// Malformed lines skipped (`--skip-bad`): (line, why).
    pub bad: Vec<(usize, String)>,
}

/// A parsed line.
#[derive(Debug)]
enum Line {
    /// A kmem event, and the CPU it ran on.
    Event(Event, Option<u32>),
    /// An event of another kind.
    Other,
    /// A frame of a perf -g callchain.
    Callchain,
    /// `[LOST N EVENTS]`.
    Lost(u64),
    /// A comment, a blank line or a known header line.
    Ignored,
}

/// The event names of a format: (allocations, frees, how one is spelt).
fn names(f: Format) -> (&'static [&'static str], &'static [&'static str], &'static str) {
    match f {
        Format::PerfScript => (
            &["kmem:kmalloc", "kmem:kmem_cache_alloc", "kmem:kmalloc_node", "kmem:kmem_cache_alloc_node"],
            &["kmem:kfree", "kmem:kmem_cache_free"],
            "kmem:kmalloc",
        ),
        Format::TraceCmd => {
            (&["kmalloc", "kmem_cache_alloc", "kmalloc_node", "kmem_cache_alloc_node"], &["kfree", "kmem_cache_free"], "kmalloc")
        }
    }
}

/// `SECS.FRAC:` as (seconds, nanoseconds).
fn timestamp(t: &str) -> Option<(u64, u64)> {
    let t = t.strip_suffix(':')?;
    let (s, f) = t.split_once('.')?;
    if s.is_empty() || f.is_empty() || f.len() > 9 || !s.bytes().chain(f.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((s.parse().ok()?, f.parse::<u64>().ok()? * 10u64.pow(9 - f.len() as u32)))
}

/// A pointer as the kernel, libtraceevent or glibc print it.
fn pointer(v: &str) -> Option<u64> {
    match v {
        "(null)" | "(nil)" => return Some(0),
        _ => {}
    }
    let h = v.strip_prefix("0x").unwrap_or(v);
    if h.is_empty() || h.len() > 16 {
        return None;
    }
    u64::from_str_radix(h, 16).ok()
}

/// The value of `key=` among the fields.
fn field<'a>(fields: &[&'a str], key: &str) -> Option<&'a str> {
    fields.iter().find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
}

/// Classifies one line of a capture in format `f`; Err says why it is malformed.
fn parse_line(f: Format, line: &str) -> Result<Line, String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(Line::Ignored);
    }
    // trace-cmd report's head and its per-CPU notes.
    if t.starts_with("cpus=") || t.starts_with("version =") || (t.starts_with("CPU ") && t.ends_with("is empty")) {
        return Ok(Line::Ignored);
    }
    let w: Vec<&str> = t.split_whitespace().collect();
    if let Some(i) = w.iter().position(|&x| x == "[LOST") {
        if let Some(n) = w.get(i + 1).and_then(|n| n.parse().ok()) {
            return Ok(Line::Lost(n));
        }
    }
    let Some(ti) = w.iter().position(|x| timestamp(x).is_some()) else {
        // perf -g: "\t    ffffffff8134a2b1 sym+0x1f1 ([kernel.kallsyms])".
        if line.starts_with(char::is_whitespace) && w.len() >= 2 && w[0].bytes().all(|b| b.is_ascii_hexdigit()) && t.ends_with(')') {
            return Ok(Line::Callchain);
        }
        return Err("no timestamp (SECS.USECS:), not an event".into());
    };
    let time = timestamp(w[ti]).unwrap_or_default();
    let event = w.get(ti + 1).and_then(|e| e.strip_suffix(':')).ok_or("no event name after the timestamp")?;
    let cpu = w[..ti].iter().rev().find_map(|x| x.strip_prefix('[')?.strip_suffix(']')?.parse().ok());
    let (allocs, frees, _) = names(f);
    let op = if allocs.contains(&event) {
        Op::Alloc
    } else if frees.contains(&event) {
        Op::Free
    } else {
        return Ok(Line::Other);
    };
    let fields = &w[ti + 2..];
    let ptr = field(fields, "ptr").ok_or("no ptr=")?;
    let ptr = pointer(ptr).ok_or_else(|| format!("ptr={ptr} is not a pointer"))?;
    let size = match op {
        Op::Free => 0,
        Op::Alloc => {
            let b = field(fields, "bytes_req").ok_or("no bytes_req=")?;
            let digits: String = b.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().map_err(|_| format!("bytes_req={b} is not a number"))?
        }
    };
    Ok(Line::Event(Event { time, op, ptr, size }, cpu))
}

/// Converts a capture into a trace.
pub fn convert(f: Format, text: &str, skip_bad: bool) -> Result<(String, Counts)> {
    let mut c = Counts::default();
    let mut events: Vec<Event> = Vec::new();
    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut others_named_like_the_other_format = 0;
    let other = match f {
        Format::PerfScript => Format::TraceCmd,
        Format::TraceCmd => Format::PerfScript,
    };
    for (i, l) in text.lines().enumerate() {
        c.lines += 1;
        match parse_line(f, l) {
            Ok(Line::Event(e, cpu)) => {
                events.push(e);
                c.cpus.extend(cpu);
            }
            Ok(Line::Other) => {
                c.other_events += 1;
                if matches!(parse_line(other, l), Ok(Line::Event(..))) {
                    others_named_like_the_other_format += 1;
                }
            }
            Ok(Line::Callchain) => c.callchain_lines += 1,
            Ok(Line::Lost(n)) => c.lost_events += n,
            Ok(Line::Ignored) => {}
            Err(why) => bad.push((i + 1, why)),
        }
    }
    if !bad.is_empty() && !skip_bad {
        let mut m = format!("{} malformed lines (--skip-bad skips them):", bad.len());
        for (n, why) in bad.iter().take(10) {
            let _ = write!(m, "\n  line {n}: {why}: `{}`", text.lines().nth(n - 1).unwrap_or("").trim());
        }
        bail!(m);
    }
    if events.is_empty() {
        let (_, _, spelt) = names(f);
        let hint = if others_named_like_the_other_format > 0 {
            format!(
                " ({others_named_like_the_other_format} events are named as --from {} names them)",
                match other {
                    Format::PerfScript => "perf-script",
                    Format::TraceCmd => "trace-cmd",
                }
            )
        } else {
            String::new()
        };
        bail!("no kmalloc or kfree events (named like `{spelt}`) in the capture{hint}");
    }
    events.sort_by_key(|e| e.time);
    c.events = events.len();
    // Pointer -> (id, size) of live allocations; pointers of allocations
    // not written (0 bytes, too big).
    let mut live: HashMap<u64, u64> = HashMap::new();
    let mut skipped: std::collections::HashSet<u64> = Default::default();
    let mut next = 0u64;
    let mut ops = String::new();
    for e in &events {
        match e.op {
            Op::Alloc if e.ptr == 0 => c.failed_allocs += 1,
            Op::Alloc => {
                if let Some(old) = live.remove(&e.ptr) {
                    c.lost_frees += 1;
                    c.frees += 1;
                    let _ = writeln!(ops, "f {old}");
                }
                if e.size == 0 || e.size > u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) {
                    c.skipped_allocs += 1;
                    skipped.insert(e.ptr);
                    continue;
                }
                skipped.remove(&e.ptr);
                live.insert(e.ptr, next);
                let _ = writeln!(ops, "a {next} {}", e.size);
                next += 1;
                c.allocs += 1;
            }
            Op::Free if e.ptr == 0 => c.null_frees += 1,
            Op::Free => {
                if let Some(id) = live.remove(&e.ptr) {
                    let _ = writeln!(ops, "f {id}");
                    c.frees += 1;
                } else if skipped.remove(&e.ptr) {
                    c.skipped_frees += 1;
                } else {
                    c.unknown_frees += 1;
                }
            }
        }
    }
    c.live_at_end = live.len();
    c.bad = bad;
    if c.allocs == 0 {
        bail!("the capture has {} kmem events but no allocation a replay can take", c.events);
    }
    Ok((format!("{}{ops}", header(f, &c)), c))
}

/// The trace's comments: where it came from and what was dropped.
fn header(f: Format, c: &Counts) -> String {
    let mut h = String::new();
    let from = match f {
        Format::PerfScript => "perf-script",
        Format::TraceCmd => "trace-cmd",
    };
    let _ = writeln!(h, "# rkctl import --from {from}: the kernel's kmem kmalloc/kfree (and kmem_cache_alloc/free) events as replay ops");
    let _ = writeln!(
        h,
        "# {} events on {} CPUs: {} allocations, {} frees; ids in allocation order, sizes are bytes_req, no pointer kept",
        c.events,
        c.cpus.len(),
        c.allocs,
        c.frees
    );
    let _ = writeln!(h, "# {} frees of memory allocated before the capture started were dropped", c.unknown_frees);
    let _ = writeln!(h, "# {} allocations of a pointer still live (its free was not seen) free it first", c.lost_frees);
    let _ = writeln!(
        h,
        "# skipped: {} frees of NULL, {} failed allocations, {} allocations of 0 bytes or above {} bytes and {} frees of them",
        c.null_frees,
        c.failed_allocs,
        c.skipped_allocs,
        uapi::RKALLOC_MAX_REPLAY_SIZE,
        c.skipped_frees
    );
    let _ = writeln!(
        h,
        "# ignored: {} other events, {} callchain lines; events the tracer lost: {}",
        c.other_events, c.callchain_lines, c.lost_events
    );
    if !c.bad.is_empty() {
        let lines: Vec<String> = c.bad.iter().map(|(n, _)| n.to_string()).collect();
        let _ = writeln!(h, "# {} malformed lines skipped: {}", c.bad.len(), lines.join(" "));
    }
    let _ = writeln!(h, "# live at the end: {}", c.live_at_end);
    h
}

/// `rkctl import`.
pub fn main(a: &Args) -> Result<()> {
    use crate::error::{usage, Class, ResultExt};
    let mut text = String::new();
    if a.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).class(Class::Usage, || "cannot read stdin".into())?;
    } else {
        text = std::fs::read_to_string(&a.file).class(Class::Usage, || format!("cannot read {}", a.file.display()))?;
    }
    // A capture rkctl cannot convert is bad input.
    let (trace, c) = convert(a.from, &text, a.skip_bad).map_err(|e| usage(format!("{}: {e:#}", a.file.display())))?;
    for (n, why) in &c.bad {
        eprintln!("import: skipped line {n}: {why}");
    }
    match &a.out {
        Some(p) => std::fs::write(p, &trace).class(Class::System, || format!("cannot write {}", p.display()))?,
        None => print!("{trace}"),
    }
    eprintln!(
        "import: {} allocations, {} frees{} ({} frees of memory from before the capture dropped)",
        c.allocs,
        c.frees,
        a.out.as_ref().map_or(String::new(), |p| format!(" written to {}", p.display())),
        c.unknown_frees
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import/");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{DIR}{name}")).unwrap()
    }

    /// The ops of a trace, comments dropped.
    fn ops(t: &str) -> Vec<&str> {
        t.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn perf_script() {
        let (t, c) = convert(Format::PerfScript, &fixture("perf-script.txt"), false).unwrap();
        // In time order: two pipe buffers (CPU 0), a kfree of memory from
        // before the capture (CPU 1), names_cache, the second buffer freed
        // and its pointer reused by seq_open, kfree(NULL), names_cache
        // freed, an skb, a failed allocation, the first buffer freed, a
        // kmalloc(0), the skb freed.
        assert_eq!(ops(&t), ["a 0 640", "a 1 40", "a 2 4096", "f 1", "a 3 120", "f 2", "a 4 1500", "f 0", "f 4"]);
        assert_eq!((c.events, c.allocs, c.frees, c.unknown_frees, c.null_frees, c.failed_allocs, c.skipped_allocs), (13, 5, 4, 1, 1, 1, 1));
        assert_eq!((c.live_at_end, c.lost_frees, c.other_events), (1, 0, 0));
        assert_eq!(c.cpus.len(), 2);
        assert!(t.contains("# 1 frees of memory allocated before the capture started were dropped"));
        assert!(!t.contains("ffff"), "no pointer in the trace");
        let parsed = crate::replay::parse(&t).unwrap();
        assert_eq!((parsed.allocs, parsed.frees, parsed.peak_live), (5, 4, 640 + 4096 + 120));
    }

    #[test]
    fn perf_script_with_callchains() {
        let (t, c) = convert(Format::PerfScript, &fixture("perf-script-g.txt"), false).unwrap();
        assert_eq!(ops(&t), ["a 0 640", "a 1 40"]);
        assert_eq!((c.callchain_lines, c.unknown_frees), (9, 1));
    }

    #[test]
    fn trace_cmd_report() {
        let (t, c) = convert(Format::TraceCmd, &fixture("trace-cmd.txt"), false).unwrap();
        // `bytes_req=56bytes_alloc=64` reads as 56; the pointer freed on
        // CPU 1 is reused on CPU 4; the second fuse_io_alloc of a live
        // pointer frees the first (its kfree was lost: LOST 3 EVENTS).
        assert_eq!(ops(&t), ["a 0 216", "a 1 56", "f 1", "a 2 152", "a 3 224", "f 2", "f 0", "a 4 216", "f 3"]);
        assert_eq!((c.allocs, c.frees, c.unknown_frees, c.lost_frees, c.lost_events, c.other_events), (5, 4, 1, 1, 3, 1));
        assert_eq!(c.cpus.into_iter().collect::<Vec<_>>(), [1, 4]);
        crate::replay::parse(&t).unwrap();
    }

    #[test]
    fn tracefs_text_with_hashed_pointers() {
        let (t, c) = convert(Format::TraceCmd, &fixture("tracefs.txt"), false).unwrap();
        assert_eq!(ops(&t), ["a 0 2312", "a 1 2896", "a 2 4096", "f 2", "f 0"]);
        assert_eq!((c.unknown_frees, c.null_frees, c.live_at_end), (1, 1, 1));
        crate::replay::parse(&t).unwrap();
    }

    #[test]
    fn a_tracefs_capture_of_the_guest() {
        // The first 200 lines of /sys/kernel/tracing/trace in the QEMU guest
        // (kernel 7.2.13) with the four kmem events on, while a shell ran
        // `ls -l /proc/self/` and `sh -c 'cat /proc/meminfo'`.
        let (t, c) = convert(Format::TraceCmd, &fixture("tracefs-guest.txt"), false).unwrap();
        assert_eq!((c.events, c.allocs, c.frees, c.unknown_frees, c.live_at_end), (188, 150, 36, 2, 114));
        assert_eq!(c.cpus.len(), 2);
        // The first event frees a filp allocated before the capture; the
        // names_cache buffer (192 B) is allocated and freed around it.
        assert_eq!(ops(&t)[..4], ["a 0 192", "a 1 168", "f 0", "a 2 5320"]);
        let r = crate::replay::parse(&t).unwrap();
        assert_eq!((r.allocs, r.frees), (150, 36));
    }

    #[test]
    fn events_are_taken_in_time_order() {
        // CPU 1's lines come after CPU 0's in the file, but its free of the
        // buffer happened between CPU 0's two allocations.
        let text = "\
a-1 [000] ..... 10.000001: kmalloc: call_site=x ptr=0xffff888000001000 bytes_req=8 bytes_alloc=8
a-1 [000] ..... 10.000005: kmalloc: call_site=x ptr=0xffff888000001000 bytes_req=16 bytes_alloc=16
b-2 [001] ..... 10.000003: kfree: call_site=y ptr=0xffff888000001000
";
        let (t, c) = convert(Format::TraceCmd, text, false).unwrap();
        assert_eq!(ops(&t), ["a 0 8", "f 0", "a 1 16"]);
        assert_eq!(c.lost_frees, 0);
    }

    #[test]
    fn malformed_lines_are_named() {
        let text = "\
a-1 [000] ..... 10.000001: kmalloc: call_site=x ptr=0xffff888000001000 bytes_req=8 bytes_alloc=8
garbage here
a-1 [000] ..... 10.000002: kmalloc: call_site=x bytes_req=8
a-1 [000] ..... 10.000003: kfree: call_site=x ptr=0xzz
a-1 [000] ..... 10.000004: kmalloc: call_site=x ptr=0x1 bytes_req=lots
";
        let e = format!("{:#}", convert(Format::TraceCmd, text, false).unwrap_err());
        assert!(e.contains("4 malformed lines"), "{e}");
        assert!(e.contains("line 2: no timestamp"), "{e}");
        assert!(e.contains("line 3: no ptr="), "{e}");
        assert!(e.contains("line 4: ptr=0xzz is not a pointer"), "{e}");
        assert!(e.contains("line 5: bytes_req=lots is not a number"), "{e}");
        let (t, c) = convert(Format::TraceCmd, text, true).unwrap();
        assert_eq!(c.bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3, 4, 5]);
        assert!(t.contains("# 4 malformed lines skipped: 2 3 4 5"));
        assert_eq!(ops(&t), ["a 0 8"]);
    }

    #[test]
    fn the_wrong_format_says_so() {
        let e = format!("{:#}", convert(Format::TraceCmd, &fixture("perf-script.txt"), false).unwrap_err());
        assert!(
            e.contains("no kmalloc or kfree events (named like `kmalloc`)") && e.contains("13 events are named as --from perf-script"),
            "{e}"
        );
        let e = format!("{:#}", convert(Format::PerfScript, &fixture("trace-cmd.txt"), false).unwrap_err());
        assert!(e.contains("as --from trace-cmd names them"), "{e}");
        assert!(convert(Format::TraceCmd, "# only a comment\n", false).is_err());
    }

    #[test]
    fn pointers_and_times_as_printed() {
        assert_eq!(pointer("0xffff888004a1c000"), Some(0xffff_8880_04a1_c000));
        assert_eq!(pointer("000000003e4c3799"), Some(0x3e4c_3799));
        assert_eq!(pointer("(null)"), Some(0));
        assert_eq!(pointer("0x0"), Some(0));
        assert_eq!(pointer("(____ptrval____)"), None);
        assert_eq!(pointer("0x1ffff888004a1c000"), None);
        assert_eq!(timestamp("5142.713104:"), Some((5142, 713_104_000)));
        assert_eq!(timestamp("1.000000001:"), Some((1, 1)));
        assert_eq!(timestamp("[000]"), None);
        assert_eq!(timestamp("5142:"), None);
    }
}
