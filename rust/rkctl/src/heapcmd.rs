//! `rkctl heap`: drives heaps and the arena step by step through one open
//! `/dev/rkalloc`, and the heap and arena cases of `rkctl errors`.
//!
//! Each step is one word; a step that should fail names its errno after `=`:
//!
//! ```text
//! rkctl heap create:best-fit alloc:100 alloc:5000 free:0 show reset free:1=EINVAL destroy
//! ```
//!
//! | step                           | does                                                   |
//! |--------------------------------|--------------------------------------------------------|
//! | `create:POLICY[:debug][:flagsN][:BYTES]` | a heap; later heap steps use the latest heap. POLICY |
//! |                                | is a policy name of the module's table (`best-fit`), |
//! |                                | its short form (`best`) or an id                       |
//! | `alloc:BYTES`                  | a block, filled with a pattern; numbered from 0        |
//! | `arena:BYTES[:ALIGN]`          | an arena allocation, filled; numbered with the blocks  |
//! | `free:N`, `verify:N`           | the N-th allocation of this run                        |
//! | `reset`, `destroy`             | the latest heap                                        |
//! | `arena-reset`                  | the fd's arena; prints what it reclaimed               |
//! | `show`                         | prints the debugfs `heaps` and `arenas` files          |
//! | `check`                        | runs the invariant checkers                            |
//!
//! Every step is parsed before the first runs, so a misspelt step changes
//! nothing. rkctl exits non-zero when any step deviates from what it
//! expects: 3 for an errno that was not expected, 4 for a verify that
//! finds the pattern changed.
use crate::{
    device::{errno_of, Device, Errno},
    errors::{Cases, Tables},
    error,
    table::{self, Policy},
    uapi,
};
use anyhow::Result;
use std::path::Path;

/// rkalloc's debugfs directory.
const DEBUGFS: &str = "/sys/kernel/debug/rkalloc";

/// The pattern of the `i`-th allocation.
fn pattern(i: usize) -> u32 {
    0x5eed_0000 | i as u32
}

/// A step's operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Create { policy: u32, flags: u32, initial: u64 },
    Alloc(u64),
    Arena { bytes: u64, align: u32 },
    Free(usize),
    Verify(usize),
    Reset,
    Destroy,
    ArenaReset,
    Show,
    Check,
}

/// A parsed step: what to do and what it should give (`ok` or an errno
/// name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    pub op: Op,
    pub expect: String,
}

/// The number `s` of step `step`, or a usage error.
fn num<T: std::str::FromStr>(s: Option<&str>, step: &str) -> Result<T> {
    let Some(s) = s else { return Err(error::usage(format!("step {step:?}: a number is missing"))) };
    s.parse().map_err(|_| error::usage(format!("step {step:?}: {s:?} is not a number")))
}

/// Parses one step; `policies` are the module's.
pub fn parse_step(step: &str, policies: &[Policy]) -> Result<Step> {
    let (op, expect) = match step.split_once('=') {
        Some((op, e)) => {
            if errno_of(e).is_none() {
                return Err(error::usage(format!("step {step:?}: {e:?} is not an errno name rkctl knows (e.g. EINVAL)")));
            }
            (op, e.to_string())
        }
        None => (step, "ok".to_string()),
    };
    let mut args = op.split(':');
    let name = args.next().unwrap_or("");
    let op = match name {
        "create" => {
            let policy = table::parse_policy(args.next().unwrap_or("first-fit"), policies)?;
            let (mut flags, mut initial) = (0, 0);
            for a in args.by_ref() {
                if a == "debug" {
                    flags |= uapi::RKALLOC_HEAP_DEBUG;
                } else if let Some(f) = a.strip_prefix("flags") {
                    flags = num(Some(f), step)?;
                } else {
                    initial = num(Some(a), step)?;
                }
            }
            Op::Create { policy, flags, initial }
        }
        "alloc" => Op::Alloc(num(args.next(), step)?),
        "arena" => Op::Arena { bytes: num(args.next(), step)?, align: args.next().map_or(Ok(0), |a| num(Some(a), step))? },
        "free" => Op::Free(num(args.next(), step)?),
        "verify" => Op::Verify(num(args.next(), step)?),
        "reset" => Op::Reset,
        "destroy" => Op::Destroy,
        "arena-reset" => Op::ArenaReset,
        "show" => Op::Show,
        "check" => Op::Check,
        _ => return Err(error::usage(format!("unknown step {step:?} (see rkctl heap --help)"))),
    };
    if let Some(extra) = args.next() {
        return Err(error::usage(format!("step {step:?}: unexpected {extra:?}")));
    }
    Ok(Step { text: step.into(), op, expect })
}

/// A debugfs file of rkalloc, each line prefixed with its name.
fn show(name: &str) -> String {
    match std::fs::read_to_string(format!("{DEBUGFS}/{name}")) {
        Ok(s) => s.lines().map(|l| format!("{name}: {l}\n")).collect(),
        Err(e) => format!("{name}: cannot read: {e}\n"),
    }
}

/// One step's outcome, for `--json`.
#[derive(serde::Serialize)]
struct StepResult {
    step: String,
    expected: String,
    got: String,
    detail: String,
    ok: bool,
}

/// How the steps went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Steps that did not end as they should.
    pub deviations: usize,
    /// Verify steps that found the pattern changed.
    pub corruptions: usize,
}

impl Outcome {
    /// The outcome as rkctl's result: corruption before deviation.
    pub fn result(&self, steps: usize) -> Result<()> {
        if self.corruptions != 0 {
            Err(error::corruption(format!("{} verify steps found corrupted allocations", self.corruptions)))
        } else if self.deviations != 0 {
            Err(error::refused(format!("{} of {steps} steps deviate", self.deviations)))
        } else {
            Ok(())
        }
    }
}

/// What became of a step.
enum Issued {
    /// The call was made: its detail, or the errno.
    Done(Result<String, Errno>),
    /// It could not be made: an earlier step that should have made its
    /// heap or allocation did not.
    NotRun(&'static str),
}

/// Issues one step. Allocations are filled with their pattern and
/// numbered in the order they succeed.
fn issue(dev: &Device, step: &Step, heap: &mut Option<u64>, allocs: &mut Vec<u64>, out: &mut Outcome, json: bool) -> Issued {
    let unit = |r: Result<(), Errno>| Issued::Done(r.map(|()| String::new()));
    let handle = |alloc: Result<u64, Errno>, allocs: &mut Vec<u64>| {
        Issued::Done(alloc.and_then(|h| {
            let n = allocs.len();
            let filled = dev.fill(h, pattern(n))?;
            allocs.push(h);
            Ok(format!("#{n} {filled} bytes"))
        }))
    };
    match (&step.op, *heap) {
        (Op::Create { policy, flags, initial }, _) => Issued::Done(dev.heap_create(*policy, *flags, *initial).map(|h| {
            *heap = Some(h);
            String::new()
        })),
        (Op::Alloc(_) | Op::Reset | Op::Destroy, None) => Issued::NotRun("no heap"),
        (Op::Alloc(bytes), Some(h)) => handle(dev.heap_alloc(h, *bytes), allocs),
        (Op::Reset, Some(h)) => unit(dev.heap_reset(h)),
        (Op::Destroy, Some(h)) => unit(dev.heap_destroy(h)),
        (Op::Arena { bytes, align }, _) => handle(dev.arena_alloc(*bytes, *align), allocs),
        (Op::Free(n) | Op::Verify(n), _) if *n >= allocs.len() => Issued::NotRun("no such allocation"),
        (Op::Free(n), _) => unit(dev.free(allocs[*n])),
        (Op::Verify(n), _) => Issued::Done(dev.verify(allocs[*n], pattern(*n)).map(|(bytes, mismatches)| {
            if mismatches != 0 {
                out.corruptions += 1;
                format!("{bytes} bytes, CORRUPTED: {mismatches} differ")
            } else {
                format!("{bytes} bytes intact")
            }
        })),
        (Op::ArenaReset, _) => Issued::Done(dev.arena_reset().map(|(b, n)| format!("reclaimed {b} bytes {n} allocations"))),
        (Op::Check, _) => unit(dev.check()),
        (Op::Show, _) => {
            let text = show("heaps") + &show("arenas");
            if !json {
                print!("{text}");
            }
            Issued::Done(Ok(if json { text } else { String::new() }))
        }
    }
}

/// Refuses steps that name an allocation no earlier step is meant to
/// make (numbers count the allocation steps expected to succeed), or a
/// heap step before any create meant to succeed: typos, caught before
/// anything runs.
pub fn check_numbers(steps: &[Step]) -> Result<()> {
    let (mut made, mut heap) = (0usize, false);
    for s in steps {
        match s.op {
            Op::Create { .. } if s.expect == "ok" => heap = true,
            Op::Alloc(_) | Op::Reset | Op::Destroy if !heap => {
                return Err(error::usage(format!("step {:?}: no create step before it makes a heap", s.text)))
            }
            Op::Alloc(_) | Op::Arena { .. } if s.expect == "ok" => made += 1,
            Op::Free(n) | Op::Verify(n) if n >= made => {
                return Err(error::usage(format!("step {:?}: only {made} allocations are made before it (numbered from 0)", s.text)))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs the steps, printing each outcome (or, with `json`, all of them as
/// one JSON array at the end).
pub fn run(path: &Path, steps: &[String], json: bool) -> Result<Outcome> {
    let dev = Device::open(path)?;
    let policies = table::policies(&dev.allocators()?);
    let parsed: Vec<Step> = steps.iter().map(|s| parse_step(s, &policies)).collect::<Result<_>>()?;
    check_numbers(&parsed)?;
    let mut results = Vec::new();
    let mut heap: Option<u64> = None;
    let mut allocs: Vec<u64> = Vec::new();
    let mut out = Outcome::default();
    for step in &parsed {
        let (got, detail) = match issue(&dev, step, &mut heap, &mut allocs, &mut out, json) {
            Issued::Done(Ok(detail)) => ("ok".to_string(), detail),
            Issued::Done(Err(e)) => (e.name(), String::new()),
            Issued::NotRun(why) => (format!("not run: {why}"), String::new()),
        };
        let ok = got == step.expect;
        if !ok {
            out.deviations += 1;
        }
        if json {
            results.push(StepResult { step: step.text.clone(), expected: step.expect.clone(), got, detail, ok });
        } else if ok {
            println!("{}: {got} {detail}", step.text);
        } else {
            println!("{}: DEVIATES: expected {}, got {got} {detail}", step.text, step.expect);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(out)
}

/// Heap and arena error paths for `rkctl errors`: every bad input returns
/// its errno and changes nothing; stale handles (after free, reset,
/// destroy) are EINVAL.
pub fn error_cases(dev: &Device, other: &Device, t: &Tables, c: &mut Cases) -> Result<()> {
    let heaps = || std::fs::read_to_string(format!("{DEBUGFS}/heaps")).unwrap_or_default();
    let fd_bytes = |d: &Device| d.info().map(|i| i.fd_bytes).unwrap_or(u64::MAX);
    let max = uapi::RKALLOC_MAX_HEAP_ALLOC as u64;

    c.check(format!("heap: policy nr_policies ({})", t.nr_policies), "EINVAL", dev.heap_create(t.nr_policies, 0, 0));
    c.check("heap: policy far out of range", "EINVAL", dev.heap_create(u32::MAX, 0, 0));
    c.check("heap: unknown flag", "EINVAL", dev.heap_create(t.policy, 2, 0));
    c.check("heap: initial size beyond any heap", "EINVAL", dev.heap_create(t.policy, 0, u64::MAX));
    let mut hc = uapi::rkalloc_heap_create { reserved: 1, ..Default::default() };
    c.check("heap: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::heap_create(), &mut hc));
    c.holds("heap: failed creates made no heap", dev.info()?.nr_heaps == 0);

    let hp = dev.heap_create(t.policy, uapi::RKALLOC_HEAP_DEBUG, 0)?;
    let pool = dev.pool_alloc(0)?;
    let b = dev.heap_alloc(hp, 100)?;
    dev.fill(b, 7)?;
    let (before, bytes_before) = (heaps(), fd_bytes(dev));
    c.check("heap alloc: zero bytes", "EINVAL", dev.heap_alloc(hp, 0));
    c.check("heap alloc: above RKALLOC_MAX_HEAP_ALLOC", "EINVAL", dev.heap_alloc(hp, max + 1));
    c.check("heap alloc: u64::MAX bytes", "EINVAL", dev.heap_alloc(hp, u64::MAX));
    let mut ha = uapi::rkalloc_heap_alloc { heap: hp, bytes: 8, reserved: 1, ..Default::default() };
    c.check("heap alloc: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::heap_alloc(), &mut ha));
    c.check("heap alloc: from a pool block's handle", "EINVAL", dev.heap_alloc(pool, 8));
    c.check("heap alloc: from an unknown handle", "ENOENT", dev.heap_alloc(hp + (1000 << 16), 8));
    c.check("heap alloc: from another fd's heap", "EINVAL", other.heap_alloc(hp, 8));
    c.check("free: a heap's handle", "EINVAL", dev.free(hp));
    c.check("free: another fd's heap block", "EINVAL", other.free(b));
    c.check("heap reset: a block's handle", "EINVAL", dev.heap_reset(b));
    c.check("heap reset: a pool block's handle", "EINVAL", dev.heap_reset(pool));
    c.check("heap destroy: a block's handle", "EINVAL", dev.heap_destroy(b));
    c.check("heap destroy: another fd's heap", "EINVAL", other.heap_destroy(hp));
    c.check("fill: a heap's handle", "EINVAL", dev.fill(hp, 1));
    let unchanged = heaps() == before && fd_bytes(dev) == bytes_before && dev.verify(b, 7)? == (100, 0);
    c.holds("heap: failed calls changed nothing", unchanged);

    c.check("heap: free a block", "success", dev.free(b));
    c.check("heap: double free", "EINVAL", dev.free(b));
    c.check("heap: verify after free", "EINVAL", dev.verify(b, 7));
    let b2 = dev.heap_alloc(hp, 5000)?;
    c.check("heap: reset", "success", dev.heap_reset(hp));
    c.check("heap: free after reset", "EINVAL", dev.free(b2));
    c.check("heap: verify after reset", "EINVAL", dev.verify(b2, 1));
    let b3 = dev.heap_alloc(hp, 64)?;
    c.check("heap: destroy", "success", dev.heap_destroy(hp));
    c.check("heap: alloc from a destroyed heap", "EINVAL", dev.heap_alloc(hp, 8));
    c.check("heap: reset a destroyed heap", "EINVAL", dev.heap_reset(hp));
    c.check("heap: destroy twice", "EINVAL", dev.heap_destroy(hp));
    c.check("heap: free a destroyed heap's block", "EINVAL", dev.free(b3));
    dev.free(pool)?;

    let before = fd_bytes(dev);
    c.check("arena: zero bytes", "EINVAL", dev.arena_alloc(0, 0));
    c.check("arena: above RKALLOC_MAX_HEAP_ALLOC", "EINVAL", dev.arena_alloc(max + 1, 0));
    c.check("arena: alignment not a power of two", "EINVAL", dev.arena_alloc(8, 3));
    c.check("arena: alignment above 4096", "EINVAL", dev.arena_alloc(8, 8192));
    let made = std::fs::read_to_string(format!("{DEBUGFS}/arenas")).map_or(0, |s| s.lines().count());
    c.holds("arena: failed calls made no arena", made <= 1 && fd_bytes(dev) == before);
    let a = dev.arena_alloc(100, 64)?;
    c.check("arena: fill", "success", dev.fill(a, 9));
    c.check("free: an arena allocation", "EINVAL", dev.free(a));
    c.holds("arena: intact after the refused free", dev.verify(a, 9)? == (100, 0));
    let mut ar = uapi::rkalloc_arena_reset { reserved: 1, ..Default::default() };
    c.check("arena reset: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::arena_reset(), &mut ar));
    let r = dev.arena_reset();
    c.holds_or(
        "arena: reset reclaims the one allocation",
        match r {
            Ok((bytes, 1)) if bytes >= 100 => Ok(()),
            Ok((bytes, n)) => Err(format!("reclaimed {bytes} bytes, {n} allocations")),
            Err(e) => Err(e.to_string()),
        },
    );
    c.check("arena: verify after reset", "EINVAL", dev.verify(a, 9));
    Ok(())
}

/// The per-fd cap holds for heaps and the arena. `held` are top-order pool
/// blocks that fill the cap to within one block.
pub fn cap_cases(dev: &Device, cap: u64, t: &Tables, held: &mut Vec<u64>, c: &mut Cases) -> Result<()> {
    let max = uapi::RKALLOC_MAX_HEAP_ALLOC as u64;
    c.check("heap: creation beyond the per-fd cap", "ENOMEM", dev.heap_create(t.policy, 0, 4 << 20));
    // Room for one more top-order block: a heap grows into it, then stops.
    if let Some(h) = held.pop() {
        dev.free(h)?;
    }
    let hp = dev.heap_create(t.policy, 0, 0)?;
    let mut last = Ok(());
    for _ in 0..8 {
        if let Err(e) = dev.heap_alloc(hp, max) {
            last = Err(e);
            break;
        }
    }
    c.check("heap: growth beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    c.holds("heap: cap honoured", i.fd_bytes <= cap);
    dev.heap_destroy(hp)?;
    let mut last = Ok(());
    for _ in 0..8 {
        if let Err(e) = dev.arena_alloc(max, 0) {
            last = Err(e);
            break;
        }
    }
    c.check("arena: growth beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    c.holds("arena: cap honoured", i.fd_bytes <= cap);
    dev.arena_reset()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::synthetic;

    fn parse(steps: &[&str], policies: &[Policy]) -> Result<Vec<Step>> {
        let v: Vec<Step> = steps.iter().map(|s| parse_step(s, policies)).collect::<Result<_>>()?;
        check_numbers(&v)?;
        Ok(v)
    }

    #[test]
    fn steps_parse() {
        let p = table::policies(&synthetic::table());
        let v = parse(&["create:best-fit:debug:4096", "alloc:100", "arena:8:64", "free:0", "verify:1=EINVAL", "reset", "destroy", "arena-reset", "show", "check"], &p)
            .unwrap();
        assert_eq!(v[0].op, Op::Create { policy: 2, flags: uapi::RKALLOC_HEAP_DEBUG, initial: 4096 });
        assert_eq!(v[1].op, Op::Alloc(100));
        assert_eq!(v[2].op, Op::Arena { bytes: 8, align: 64 });
        assert_eq!((v[4].op.clone(), v[4].expect.as_str()), (Op::Verify(1), "EINVAL"));
        assert_eq!(v[0].expect, "ok");
        // Short policy names, raw ids and flags.
        assert_eq!(parse(&["create:segregated"], &p).unwrap()[0].op, Op::Create { policy: 3, flags: 0, initial: 0 });
        assert_eq!(parse(&["create:9=EINVAL"], &p).unwrap()[0].op, Op::Create { policy: 9, flags: 0, initial: 0 });
        assert_eq!(parse(&["create:first-fit:flags2=EINVAL"], &p).unwrap()[0].op, Op::Create { policy: 0, flags: 2, initial: 0 });
        // A fifth policy the module adds is a name like the others.
        let p5 = table::policies(&synthetic::extended());
        assert_eq!(parse(&["create:worst"], &p5).unwrap()[0].op, Op::Create { policy: 4, flags: 0, initial: 0 });
    }

    #[test]
    fn bad_steps_are_usage_errors_before_anything_runs() {
        let p = table::policies(&synthetic::table());
        let msg = |steps: &[&str]| {
            let e = parse(steps, &p).unwrap_err();
            assert_eq!(error::classify(&e), error::Class::Usage, "{e}");
            e.to_string()
        };
        assert!(msg(&["create:fastest"]).contains("unknown policy \"fastest\": the module has first-fit (first), next-fit (next), best-fit (best), segregated-fit (segregated)"));
        assert!(msg(&["create:best", "alloc:x"]).contains("\"x\" is not a number"));
        assert!(msg(&["create:best", "alloc"]).contains("a number is missing"));
        assert!(msg(&["frob"]).contains("unknown step"));
        assert!(msg(&["create:best", "alloc:8=EWHAT"]).contains("not an errno name"));
        assert!(msg(&["create:best", "free:0:1"]).contains("unexpected \"1\""));
        assert!(msg(&["alloc:8"]).contains("no create step before it"));
        assert!(msg(&["create:best", "alloc:8", "free:1"]).contains("only 1 allocations are made before it"));
        // An allocation expected to fail is not numbered.
        assert!(msg(&["create:best", "alloc:0=EINVAL", "free:0"]).contains("only 0 allocations"));
        // A create expected to fail makes no heap.
        assert!(msg(&["create:9=EINVAL", "alloc:8"]).contains("no create step"));
        // Arena allocations need no heap and count with the blocks.
        assert!(parse(&["arena:8", "verify:0", "create:first", "alloc:4", "free:1"], &p).is_ok());
    }

    #[test]
    fn outcomes_give_the_exit_class() {
        assert!(Outcome::default().result(3).is_ok());
        let e = Outcome { deviations: 2, corruptions: 0 }.result(5).unwrap_err();
        assert_eq!(error::classify(&e), error::Class::Refused);
        assert_eq!(e.to_string(), "2 of 5 steps deviate");
        let e = Outcome { deviations: 1, corruptions: 1 }.result(5).unwrap_err();
        assert_eq!(error::classify(&e), error::Class::Corruption);
    }
}
