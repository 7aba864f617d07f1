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
//! | `create:POLICY[:debug][:BYTES]`| a heap (first-fit, next-fit, best-fit, segregated-fit  |
//! |                                | or a number); later heap steps use the latest heap     |
//! | `alloc:BYTES`                  | a block, filled with a pattern; numbered from 0        |
//! | `arena:BYTES[:ALIGN]`          | an arena allocation, filled; numbered with the blocks  |
//! | `free:N`, `verify:N`           | the N-th allocation of this run                        |
//! | `reset`, `destroy`             | the latest heap                                        |
//! | `arena-reset`                  | the fd's arena; prints what it reclaimed               |
//! | `show`                         | prints the debugfs `heaps` and `arenas` files          |
//! | `check`                        | runs the invariant checkers                            |
//!
//! rkctl exits non-zero when any step deviates from what it expects.
use crate::{device::Device, uapi};
use anyhow::{anyhow, bail, Result};
use std::{io, path::Path};

const DEBUGFS: &str = "/sys/kernel/debug/rkalloc";

/// The errno's name, as the steps and error cases spell it.
fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::ENOMEM) => "ENOMEM".into(),
        Some(libc::EUCLEAN) => "EUCLEAN".into(),
        Some(libc::EFAULT) => "EFAULT".into(),
        Some(libc::ENOTTY) => "ENOTTY".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// A policy by name or number.
fn policy(s: &str) -> Result<u32> {
    Ok(match s {
        "first-fit" => uapi::RKALLOC_POLICY_FIRST_FIT,
        "next-fit" => uapi::RKALLOC_POLICY_NEXT_FIT,
        "best-fit" => uapi::RKALLOC_POLICY_BEST_FIT,
        "segregated-fit" => uapi::RKALLOC_POLICY_SEGREGATED_FIT,
        n => n.parse().map_err(|_| anyhow!("unknown policy {n:?}"))?,
    })
}

/// The pattern of the `i`-th allocation.
fn pattern(i: usize) -> u32 {
    0x5eed_0000 | i as u32
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &str) -> Result<T> {
    s.and_then(|s| s.parse().ok()).ok_or_else(|| anyhow!("{what}: a number is missing"))
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

/// Runs the steps, printing each outcome (or, with `json`, all of them as
/// one JSON array at the end); returns how many deviated.
pub fn run(path: &Path, steps: &[String], json: bool) -> Result<usize> {
    let mut results = Vec::new();
    let dev = Device::open(path)?;
    let mut heap: Option<u64> = None;
    let mut allocs: Vec<u64> = Vec::new();
    let mut bad = 0;
    for step in steps {
        let (op, expect) = match step.split_once('=') {
            Some((op, e)) => (op, Some(e)),
            None => (step.as_str(), None),
        };
        let mut args = op.split(':');
        let name = args.next().unwrap_or("");
        let cur = || heap.ok_or_else(|| anyhow!("{step}: no heap created yet"));
        let nth = |n: usize| allocs.get(n).copied().ok_or_else(|| anyhow!("{step}: no allocation {n}"));
        let r: io::Result<String> = match name {
            "create" => {
                let p = policy(args.next().unwrap_or("first-fit"))?;
                let mut flags = 0;
                let mut initial = 0;
                for a in args.by_ref() {
                    if a == "debug" {
                        flags |= uapi::RKALLOC_HEAP_DEBUG;
                    } else if let Some(f) = a.strip_prefix("flags") {
                        flags = num(Some(f), step)?;
                    } else {
                        initial = num(Some(a), step)?;
                    }
                }
                dev.heap_create(p, flags, initial).map(|h| {
                    heap = Some(h);
                    String::new()
                })
            }
            "alloc" | "arena" => {
                let bytes: u64 = num(args.next(), step)?;
                let r = if name == "alloc" {
                    dev.heap_alloc(cur()?, bytes)
                } else {
                    dev.arena_alloc(bytes, args.next().map_or(Ok(0), |a| num(Some(a), step))?)
                };
                r.and_then(|h| {
                    let n = allocs.len();
                    let filled = dev.fill(h, pattern(n))?;
                    allocs.push(h);
                    Ok(format!("#{n} {filled} bytes"))
                })
            }
            "free" => dev.free(nth(num(args.next(), step)?)?).map(|()| String::new()),
            "verify" => {
                let n = num(args.next(), step)?;
                dev.verify(nth(n)?, pattern(n)).map(|(bytes, mismatches)| {
                    if mismatches != 0 {
                        bad += 1;
                        format!("{bytes} bytes, CORRUPTED: {mismatches} differ")
                    } else {
                        format!("{bytes} bytes intact")
                    }
                })
            }
            "reset" => dev.heap_reset(cur()?).map(|()| String::new()),
            "destroy" => dev.heap_destroy(cur()?).map(|()| String::new()),
            "arena-reset" => dev.arena_reset().map(|(b, n)| format!("reclaimed {b} bytes {n} allocations")),
            "check" => dev.check().map(|()| String::new()),
            "show" => {
                let text = show("heaps") + &show("arenas");
                if !json {
                    print!("{text}");
                }
                Ok(if json { text } else { String::new() })
            }
            _ => bail!("unknown step {step:?} (see rkctl heap --help)"),
        };
        let got = match &r {
            Ok(_) => "ok".to_string(),
            Err(e) => errno_name(e),
        };
        let want = expect.unwrap_or("ok");
        let detail = r.unwrap_or_default();
        let ok = got == want;
        if !ok {
            bad += 1;
        }
        if json {
            results.push(StepResult { step: step.clone(), expected: want.into(), got, detail, ok });
        } else if ok {
            println!("{step}: {got} {detail}");
        } else {
            println!("{step}: DEVIATES: expected {want}, got {got} {detail}");
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(bad)
}

type Case<'a> = dyn FnMut(&'static str, &'static str, io::Result<()>) + 'a;

fn deviation() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

/// Heap and arena error paths for `rkctl errors`: every bad input returns
/// its errno and changes nothing; stale handles (after free, reset,
/// destroy) are EINVAL.
pub fn error_cases(dev: &Device, other: &Device, case: &mut Case<'_>) -> Result<()> {
    let heaps = || std::fs::read_to_string(format!("{DEBUGFS}/heaps")).unwrap_or_default();
    let fd_bytes = |d: &Device| d.info().map(|i| i.fd_bytes).unwrap_or(u64::MAX);
    let max = uapi::RKALLOC_MAX_HEAP_ALLOC as u64;

    case("heap: unknown policy", "EINVAL", dev.heap_create(4, 0, 0).map(|_| ()));
    case("heap: policy far out of range", "EINVAL", dev.heap_create(u32::MAX, 0, 0).map(|_| ()));
    case("heap: unknown flag", "EINVAL", dev.heap_create(0, 2, 0).map(|_| ()));
    case("heap: initial size beyond any heap", "EINVAL", dev.heap_create(0, 0, u64::MAX).map(|_| ()));
    let mut hc = uapi::rkalloc_heap_create { reserved: 1, ..Default::default() };
    case("heap: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::heap_create(), &mut hc));
    case("heap: failed creates made no heap", "success", if dev.info()?.nr_heaps == 0 { Ok(()) } else { Err(deviation()) });

    let hp = dev.heap_create(uapi::RKALLOC_POLICY_BEST_FIT, uapi::RKALLOC_HEAP_DEBUG, 0)?;
    let pool = dev.pool_alloc(0)?;
    let b = dev.heap_alloc(hp, 100)?;
    dev.fill(b, 7)?;
    let (before, bytes_before) = (heaps(), fd_bytes(dev));
    case("heap alloc: zero bytes", "EINVAL", dev.heap_alloc(hp, 0).map(|_| ()));
    case("heap alloc: above RKALLOC_MAX_HEAP_ALLOC", "EINVAL", dev.heap_alloc(hp, max + 1).map(|_| ()));
    case("heap alloc: u64::MAX bytes", "EINVAL", dev.heap_alloc(hp, u64::MAX).map(|_| ()));
    let mut ha = uapi::rkalloc_heap_alloc { heap: hp, bytes: 8, reserved: 1, ..Default::default() };
    case("heap alloc: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::heap_alloc(), &mut ha));
    case("heap alloc: from a pool block's handle", "EINVAL", dev.heap_alloc(pool, 8).map(|_| ()));
    case("heap alloc: from an unknown handle", "ENOENT", dev.heap_alloc(hp + (1000 << 16), 8).map(|_| ()));
    case("heap alloc: from another fd's heap", "EINVAL", other.heap_alloc(hp, 8).map(|_| ()));
    case("free: a heap's handle", "EINVAL", dev.free(hp));
    case("free: another fd's heap block", "EINVAL", other.free(b));
    case("heap reset: a block's handle", "EINVAL", dev.heap_reset(b));
    case("heap reset: a pool block's handle", "EINVAL", dev.heap_reset(pool));
    case("heap destroy: a block's handle", "EINVAL", dev.heap_destroy(b));
    case("heap destroy: another fd's heap", "EINVAL", other.heap_destroy(hp));
    case("fill: a heap's handle", "EINVAL", dev.fill(hp, 1).map(|_| ()));
    let unchanged = heaps() == before && fd_bytes(dev) == bytes_before && dev.verify(b, 7)? == (100, 0);
    case("heap: failed calls changed nothing", "success", if unchanged { Ok(()) } else { Err(deviation()) });

    case("heap: free a block", "success", dev.free(b));
    case("heap: double free", "EINVAL", dev.free(b));
    case("heap: verify after free", "EINVAL", dev.verify(b, 7).map(|_| ()));
    let b2 = dev.heap_alloc(hp, 5000)?;
    case("heap: reset", "success", dev.heap_reset(hp));
    case("heap: free after reset", "EINVAL", dev.free(b2));
    case("heap: verify after reset", "EINVAL", dev.verify(b2, 1).map(|_| ()));
    let b3 = dev.heap_alloc(hp, 64)?;
    case("heap: destroy", "success", dev.heap_destroy(hp));
    case("heap: alloc from a destroyed heap", "EINVAL", dev.heap_alloc(hp, 8).map(|_| ()));
    case("heap: reset a destroyed heap", "EINVAL", dev.heap_reset(hp));
    case("heap: destroy twice", "EINVAL", dev.heap_destroy(hp));
    case("heap: free a destroyed heap's block", "EINVAL", dev.free(b3));
    dev.free(pool)?;

    let before = fd_bytes(dev);
    case("arena: zero bytes", "EINVAL", dev.arena_alloc(0, 0).map(|_| ()));
    case("arena: above RKALLOC_MAX_HEAP_ALLOC", "EINVAL", dev.arena_alloc(max + 1, 0).map(|_| ()));
    case("arena: alignment not a power of two", "EINVAL", dev.arena_alloc(8, 3).map(|_| ()));
    case("arena: alignment above 4096", "EINVAL", dev.arena_alloc(8, 8192).map(|_| ()));
    let made = std::fs::read_to_string(format!("{DEBUGFS}/arenas")).map_or(0, |s| s.lines().count());
    case("arena: failed calls made no arena", "success", if made <= 1 && fd_bytes(dev) == before { Ok(()) } else { Err(deviation()) });
    let a = dev.arena_alloc(100, 64)?;
    case("arena: fill", "success", dev.fill(a, 9).map(|_| ()));
    case("free: an arena allocation", "EINVAL", dev.free(a));
    case("arena: intact after the refused free", "success", if dev.verify(a, 9)? == (100, 0) { Ok(()) } else { Err(deviation()) });
    let mut ar = uapi::rkalloc_arena_reset { reserved: 1, ..Default::default() };
    case("arena reset: non-zero reserved field", "EINVAL", dev.ioctl(uapi::cmd::arena_reset(), &mut ar));
    let r = dev.arena_reset();
    case("arena: reset reclaims the one allocation", "success", match r {
        Ok((bytes, 1)) if bytes >= 100 => Ok(()),
        Ok(_) => Err(deviation()),
        Err(e) => Err(e),
    });
    case("arena: verify after reset", "EINVAL", dev.verify(a, 9).map(|_| ()));
    Ok(())
}

/// The per-fd cap holds for heaps and the arena. `held` are top-order pool
/// blocks that fill the cap to within one block.
pub fn cap_cases(dev: &Device, cap: u64, held: &mut Vec<u64>, case: &mut Case<'_>) -> Result<()> {
    let max = uapi::RKALLOC_MAX_HEAP_ALLOC as u64;
    case("heap: creation beyond the per-fd cap", "ENOMEM", dev.heap_create(0, 0, 4 << 20).map(|_| ()));
    // Room for one more top-order block: a heap grows into it, then stops.
    if let Some(h) = held.pop() {
        dev.free(h)?;
    }
    let hp = dev.heap_create(uapi::RKALLOC_POLICY_SEGREGATED_FIT, 0, 0)?;
    let mut last = Ok(());
    for _ in 0..8 {
        if let Err(e) = dev.heap_alloc(hp, max) {
            last = Err(e);
            break;
        }
    }
    case("heap: growth beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    case("heap: cap honoured", "success", if i.fd_bytes <= cap { Ok(()) } else { Err(deviation()) });
    dev.heap_destroy(hp)?;
    let mut last = Ok(());
    for _ in 0..8 {
        if let Err(e) = dev.arena_alloc(max, 0) {
            last = Err(e);
            break;
        }
    }
    case("arena: growth beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    case("arena: cap honoured", "success", if i.fd_bytes <= cap { Ok(()) } else { Err(deviation()) });
    dev.arena_reset()?;
    Ok(())
}
