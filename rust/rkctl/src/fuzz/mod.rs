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
pub mod spec;
pub mod sys;
#[cfg(test)]
mod tests;
pub mod verdict;

use crate::{
    device::Device,
    error::{self, Class, ResultExt},
    top::parse::Snapshot,
    uapi,
};
use anyhow::{bail, Context, Result};
use mem::{Area, Ptr, Scratch};
use serde::Serialize;
use spec::{Draft, Env, Gen, Held, Kind, Role, Spec, Tracked};
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
const MAX_ERRNO: usize = 134;
/// Extra histogram rows after the commands: numbers the header does not
/// define, real numbers with another size, and with another direction.
const BAD_NUMBERS: [&str; 3] = ["(unknown number)", "(wrong size in number)", "(wrong direction)"];
/// ioctl magics the VFS answers itself (FIOCLEX, FIFREEZE, FS_IOC_*,
/// FICLONE, FS_IOC_GETFSUUID, FIBMAP...): random numbers avoid them, as
/// they act on the file or the filesystem, not on rkalloc.
const VFS_MAGICS: [u32; 6] = [0x00, 0x15, 0x54, 0x58, 0x66, 0x94];

/// One fd of the fuzzer and what it holds.
struct Slot {
    /// The fd.
    fd: OwnedFd,
    /// Unique among the run's slots.
    serial: u64,
    /// What it holds, as the fuzzer knows.
    tracked: Mutex<Tracked>,
}

/// A call that broke the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The fuzz thread (None: a kernel report of another task).
    pub thread: Option<usize>,
    /// Index of the call in its thread's sequence.
    pub call: u64,
    /// The header's command name, or a bad-number row.
    pub command: String,
    /// The command number issued.
    pub number: String,
    /// The argument: where it pointed, the struct, what was done to it.
    pub arg: String,
    /// The errno returned (0 for success).
    pub errno: String,
    /// Why that is a failure.
    pub why: String,
}

/// What the threads share.
struct Shared {
    /// The device node.
    dev: PathBuf,
    /// The module's tables.
    env: Env,
    /// The header's commands.
    specs: Vec<Spec>,
    /// Cumulative weights of `specs`.
    cumulative: Vec<u32>,
    /// The fds the threads share.
    slots: Vec<Mutex<Arc<Slot>>>,
    /// Live handles of every slot, with its serial (a ring).
    foreign: Mutex<Vec<(u64, u64)>>,
    /// Handles of closed slots (a ring).
    dead: Mutex<Vec<u64>>,
    /// Serials of slots, and numbers for cache names.
    serial: AtomicU64,
    /// An fd the close race swaps in (dup2) for the one it closes.
    tombstone: OwnedFd,
    /// The first failures, in full.
    failures: Mutex<Vec<Failure>>,
    /// Every failure, counted.
    nr_failures: AtomicU64,
    /// The run's seed.
    seed: u64,
    /// Failures printed as they happen.
    show: usize,
    /// Per thread: its last calls, for a kernel report that names it.
    recent: Vec<Mutex<Recent>>,
    /// (task id, thread): the workers' and their close-race helpers'.
    tids: Mutex<Vec<(i32, usize)>>,
}

/// How many calls [`Recent`] keeps.
const RECENT: usize = 16;

/// A thread's last calls, oldest first once full: (call index, command
/// row, number, argument pointer, struct bytes).
#[derive(Default)]
struct Recent {
    /// The calls: (index, histogram row, number, argument pointer, struct).
    calls: Vec<(u64, usize, u32, Ptr, Vec<u8>)>,
    /// Where the next call goes once full.
    next: usize,
}

impl Recent {
    /// Records a call.
    fn push(&mut self, i: u64, row: usize, cmd: u32, p: Ptr, arg: &[u8]) {
        if self.calls.len() < RECENT {
            self.calls.push((i, row, cmd, p, arg.to_vec()));
        } else {
            let c = &mut self.calls[self.next];
            (c.0, c.1, c.2, c.3) = (i, row, cmd, p);
            c.4.clear();
            c.4.extend_from_slice(arg);
        }
        self.next = (self.next + 1) % RECENT;
    }

    /// The calls, oldest first, one a line.
    fn describe(&self, specs: &[Spec]) -> String {
        let n = self.calls.len();
        let start = if n < RECENT { 0 } else { self.next };
        (0..n)
            .map(|k| {
                let (i, row, cmd, p, b) = &self.calls[(start + k) % n];
                let what =
                    specs.get(*row).map_or_else(|| BAD_NUMBERS[row - specs.len()].to_string(), |s| format!("{} {}", s.name, (s.show)(b)));
                format!("\n    call {i}: {cmd:#010x} {p:?} {what}")
            })
            .collect()
    }
}

/// Entries of the foreign and dead handle rings.
const RING: usize = 128;

/// Appends to a ring of [`RING`] entries.
fn ring_push<T>(v: &mut Vec<T>, x: T) {
    if v.len() >= RING {
        v.remove(0);
    }
    v.push(x);
}

/// Per-thread counts.
struct Counts {
    /// Calls by histogram row (command or bad number), then by errno.
    hist: Vec<[u64; MAX_ERRNO + 1]>,
    /// Nanoseconds spent in the ioctls, by histogram row.
    ns: Vec<u64>,
    /// Nanoseconds in reopens (a close frees what the fd held).
    reopen_ns: u64,
    /// ioctls issued.
    ioctls: u64,
    /// Close races run.
    races: u64,
    /// fds closed and reopened.
    reopens: u64,
    /// Concurrent CHECKs run.
    checks: u64,
}

impl Shared {
    /// Opens a new fd for a slot.
    fn open_slot(&self) -> Result<Arc<Slot>> {
        Ok(Arc::new(Slot { fd: sys::open(&self.dev)?, serial: self.serial.fetch_add(1, Relaxed), tracked: Mutex::new(Tracked::default()) }))
    }

    /// Replaces slot `i` by a new fd; the old one is closed once no thread
    /// uses it any more. Its handles become dead handles.
    fn retire(&self, i: usize) -> Result<Arc<Slot>> {
        let new = self.open_slot()?;
        let old = std::mem::replace(&mut *lock(&self.slots[i]), new);
        let handles: Vec<u64> = lock(&old.tracked).all().take(16).collect();
        lock(&self.foreign).retain(|&(s, _)| s != old.serial);
        let mut dead = lock(&self.dead);
        for h in handles {
            ring_push(&mut dead, h);
        }
        Ok(old)
    }

    /// Records a failure (and prints it, among the first ones).
    fn fail(&self, f: Failure) {
        let n = self.nr_failures.fetch_add(1, Relaxed);
        if (n as usize) < self.show {
            eprintln!("{}", f.line(self.seed));
        }
        let mut v = lock(&self.failures);
        if v.len() < 1000 {
            v.push(f);
        }
    }
}

impl Failure {
    /// The failure as one report line (more for a kernel report).
    pub fn line(&self, seed: u64) -> String {
        let t = self.thread.map_or("?".into(), |t| t.to_string());
        format!(
            "FAIL seed={seed} thread={t} call={}: {} {} arg={} -> {}: {}",
            self.call, self.command, self.number, self.arg, self.errno, self.why
        )
    }
}

impl Shared {
    /// A report in the kernel log: a failure, with the last calls of the
    /// thread whose task it names.
    fn report(&self, r: kmsg::Report) {
        let t = r.tid.and_then(|tid| lock(&self.tids).iter().find(|&&(x, _)| x == tid).map(|&(_, t)| t));
        let (arg, call) = match t {
            Some(t) => {
                let rc = lock(&self.recent[t]);
                let last = rc.calls.iter().map(|c| c.0).max().unwrap_or(0);
                (format!("the last calls of thread {t}:{}", rc.describe(&self.specs)), last)
            }
            None => ("(the report names no fuzz thread)".to_string(), 0),
        };
        self.fail(Failure {
            thread: t,
            call,
            command: "(kernel log)".into(),
            number: r.tid.map_or("-".into(), |x| format!("task {x}")),
            arg,
            errno: "-".into(),
            why: r.line,
        });
    }
}

/// Follows the kernel log until `done`, and a moment more: every report is
/// a failure, told as soon as the lines naming its task have arrived.
fn watch_log(sh: &Shared, w: &mut kmsg::Watch, done: &std::sync::atomic::AtomicBool) {
    const CONTEXT: usize = 13;
    let mut next = 0;
    let mut finishing = false;
    loop {
        w.read();
        while next < w.lines.len() {
            let end = (next + CONTEXT).min(w.lines.len());
            let first = kmsg::scan(&w.lines[next..end]).into_iter().next().filter(|r| r.line == w.lines[next].trim());
            match first {
                None => next += 1,
                Some(r) if r.tid.is_none() && end - next < CONTEXT && !finishing => break,
                Some(r) => {
                    sh.report(r);
                    next += 1;
                }
            }
        }
        if finishing {
            return;
        }
        if done.load(Relaxed) {
            finishing = true;
            std::thread::sleep(Duration::from_millis(300));
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Locks a mutex; a thread that panicked holding it poisons nothing we
/// rely on (the data is the fuzzer's own bookkeeping).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A call ready to be issued.
struct Prepared {
    /// The spec whose struct was drafted.
    si: usize,
    /// How the number was made.
    number: Number,
    /// The number issued.
    cmd: u32,
    /// Histogram row.
    row: usize,
    /// What the result must be.
    expect: Expect,
    /// Where the struct went.
    arg_ptr: Ptr,
    /// What was done to the call, for a failure report.
    notes: Vec<String>,
    /// The struct, placed.
    argp: mem::Placed,
    /// The user array, placed, with its role and element size.
    array: Option<(mem::Placed, Role, usize)>,
}

/// A thread's working set.
struct Worker<'a> {
    /// What the threads share.
    sh: &'a Shared,
    /// The thread's number.
    t: usize,
    /// Its generator.
    g: Gen,
    /// Its memory for the kernel.
    mem: Scratch,
    /// The call being drafted.
    d: Draft,
    /// Other fds' live handles, for this call.
    foreign: Vec<u64>,
    /// Closed fds' handles, for this call.
    dead: Vec<u64>,
    /// What it counted.
    counts: Counts,
}

/// How a call's command number was made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Number {
    /// The command's own number.
    Real,
    /// A number the header does not define.
    Unknown,
    /// The command's number with another size.
    WrongSize,
    /// The command's number with another direction.
    WrongDir,
}

impl<'a> Worker<'a> {
    /// Thread `t`'s worker (registers its task id).
    fn new(sh: &'a Shared, t: usize) -> Result<Self> {
        // SAFETY: gettid has no preconditions.
        lock(&sh.tids).push((unsafe { libc::gettid() }, t));
        Ok(Worker {
            sh,
            t,
            g: Gen::new(sh.seed, t as u64),
            mem: Scratch::new().context("cannot map the fuzzer's scratch memory")?,
            d: Draft::new(),
            foreign: Vec::new(),
            dead: Vec::new(),
            counts: Counts {
                hist: vec![[0; MAX_ERRNO + 1]; sh.specs.len() + BAD_NUMBERS.len()],
                ns: vec![0; sh.specs.len() + BAD_NUMBERS.len()],
                reopen_ns: 0,
                ioctls: 0,
                races: 0,
                reopens: 0,
                checks: 0,
            },
        })
    }

    /// Runs `calls` steps: calls, reopens, close races, CHECKs.
    fn run(&mut self, calls: u64) -> Result<()> {
        for i in 0..calls {
            match self.g.below(10_000) {
                0..=19 => {
                    let t0 = Instant::now();
                    self.sh.retire(self.g.below(self.sh.slots.len()))?;
                    self.counts.reopen_ns += t0.elapsed().as_nanos() as u64;
                    self.counts.reopens += 1;
                }
                20..=29 => self.race(i)?,
                30..=39 => self.check(i),
                _ => self.call(i),
            }
        }
        Ok(())
    }

    /// Counts a call's answer and time.
    fn record(&mut self, row: usize, errno: i32, took: Duration) {
        self.counts.ns[row] += took.as_nanos() as u64;
        self.counts.ioctls += 1;
        self.counts.hist[row][(errno.max(0) as usize).min(MAX_ERRNO)] += 1;
    }

    /// A random slot's fd.
    fn slot(&mut self) -> Arc<Slot> {
        let i = self.g.below(self.sh.slots.len());
        lock(&self.sh.slots[i]).clone()
    }

    /// A well-formed CHECK on one of the fds, concurrent with the rest:
    /// it must return 0.
    fn check(&mut self, i: u64) {
        let slot = self.slot();
        let t0 = Instant::now();
        let r = sys::call(slot.fd.as_raw_fd(), uapi::cmd::check(), uapi::rkalloc_check::default());
        let took = t0.elapsed();
        let errno = r.err().unwrap_or(0);
        let row = self.row("CHECK");
        self.record(row, errno, took);
        self.counts.checks += 1;
        if let Err(why) = judge(Some("CHECK"), Expect::Success, errno) {
            self.sh.fail(Failure {
                thread: Some(self.t),
                call: i,
                command: "CHECK".into(),
                number: format!("{:#x}", uapi::cmd::check()),
                arg: "(the fuzzer's own check)".into(),
                errno: errno_name(errno),
                why,
            });
        }
    }

    /// The histogram row of a command name.
    fn row(&self, name: &str) -> usize {
        self.sh.specs.iter().position(|s| s.name == name).unwrap_or(0)
    }

    /// Picks a command by weight; when the fd holds more than its budget
    /// or many handles, frees and resets come first.
    fn pick_spec(&mut self, tr: &Tracked) -> usize {
        let over = tr.bytes > self.sh.env.budget
            || tr.count(Kind::Pool) + tr.count(Kind::Malloc) + tr.count(Kind::Object) + tr.count(Kind::HeapBlock) > 600;
        if over && self.g.below(2) == 0 {
            let names = ["FREE", "OBJ_FREE", "HEAP_RESET", "HEAP_DESTROY", "ARENA_RESET", "FREE"];
            let n = names[self.g.below(names.len())];
            return self.row(n);
        }
        if (tr.count(Kind::Cache) >= 8 || tr.count(Kind::Heap) >= 8) && self.g.below(4) == 0 {
            return self.row(if tr.count(Kind::Cache) >= 8 { "CACHE_DESTROY" } else { "HEAP_DESTROY" });
        }
        let total = *self.sh.cumulative.last().unwrap_or(&1);
        let x = self.g.below(total as usize) as u32;
        self.sh.cumulative.iter().position(|&c| x < c).unwrap_or(0)
    }

    /// One generated call on one of the fds.
    fn call(&mut self, i: u64) {
        let slot = self.slot();
        let p = self.prepare(&slot);
        let size = self.sh.specs[p.si].size;
        lock(&self.sh.recent[self.t]).push(i, p.row, p.cmd, p.arg_ptr, &self.d.arg[..size]);
        // SAFETY: the argument and its arrays were placed by `self.mem`:
        // what the kernel may write is our own memory, flush against guard
        // pages, that nothing else uses during the call (see mem.rs).
        let t0 = Instant::now();
        // SAFETY: as said above.
        let errno = unsafe { sys::ioctl(slot.fd.as_raw_fd(), p.cmd, p.argp.addr) };
        let took = t0.elapsed();
        self.finish(i, &slot, p, errno, took);
    }

    /// Generates a call for `slot` and puts it in memory: the command
    /// number, the struct and its user array, and what the result must be.
    fn prepare(&mut self, slot: &Slot) -> Prepared {
        let sh = self.sh;
        let mut number = match self.g.below(1000) {
            0..=39 => Number::Unknown,
            40..=59 => Number::WrongSize,
            60..=69 => Number::WrongDir,
            _ => Number::Real,
        };
        // Draft the struct from the fd's state.
        let si = {
            let tr = lock(&slot.tracked);
            let si = self.pick_spec(&tr);
            self.foreign.clear();
            self.foreign.extend(lock(&sh.foreign).iter().filter(|&&(s, _)| s != slot.serial).map(|&(_, h)| h));
            self.dead.clear();
            self.dead.extend(lock(&sh.dead).iter().copied());
            let cx = spec::Ctx { env: &sh.env, tr: &tr, foreign: &self.foreign, dead: &self.dead, serial: sh.serial.fetch_add(1, Relaxed) };
            spec::draft(sh.specs[si].name, &mut self.g, &cx, &mut self.d);
            si
        };
        let spec = &sh.specs[si];
        let real = (spec.cmd)();
        let mut cmd = real;
        match number {
            Number::Real => {}
            Number::Unknown => {
                let magic = if self.g.below(2) == 0 {
                    uapi::RKALLOC_IOC_MAGIC
                } else {
                    let m = self.g.below(256) as u32;
                    if VFS_MAGICS.contains(&m) {
                        0xfe
                    } else {
                        m
                    }
                };
                let size = match self.g.below(3) {
                    0 => spec.size as u32,
                    1 => self.g.below(0x4000) as u32,
                    _ => [0, 8, 16, 32, 64][self.g.below(5)],
                };
                cmd = (self.g.below(4) as u32) << 30 | size << 16 | magic << 8 | self.g.below(256) as u32;
            }
            Number::WrongSize => {
                let s = spec.size as u32;
                let bad = [0, s - 8, s + 8, s + 1, s * 2, 0x3fff][self.g.below(6)];
                cmd = (real & !(0x3fff << 16)) | (bad << 16);
            }
            Number::WrongDir => cmd = (real & !(3 << 30)) | (self.g.below(3) as u32) << 30,
        }
        // A random number that happens to be this command's is this
        // command; one that happens to be another command's is made
        // unknown (nr 0xff), as the struct was drafted for this one.
        if number != Number::Real {
            match sh.specs.iter().position(|s| (s.cmd)() == cmd) {
                Some(k) if k == si => number = Number::Real,
                Some(_) => cmd |= 0xff,
                None => {}
            }
        }
        let row = match number {
            Number::Real => si,
            Number::Unknown => sh.specs.len(),
            Number::WrongSize => sh.specs.len() + 1,
            Number::WrongDir => sh.specs.len() + 2,
        };

        // Mutations of the struct itself.
        let mut notes: Vec<String> = self.d.notes.iter().map(|s| s.to_string()).collect();
        let arg_ptr = self.g.ptr();
        let size_field = match self.g.below(1000) {
            0..=49 => {
                let s = spec.size as u32;
                let v = [0, 4, s - 4, s + 4, u32::MAX, 1 << 31][self.g.below(6)];
                notes.push(format!("size field {v} (impossible)"));
                Some((v, true))
            }
            50..=59 => {
                let v = [spec.size as u32 - 8, spec.size as u32 + 8][self.g.below(2)];
                notes.push(format!("size field {v}"));
                Some((v, false))
            }
            _ => None,
        };
        let mut reserved_set = false;
        if !spec.reserved.is_empty() && self.g.below(100) < 4 {
            let off = spec.reserved[self.g.below(spec.reserved.len())];
            let v = self.g.u32() | 1;
            self.d.arg[off..off + 4].copy_from_slice(&v.to_le_bytes());
            reserved_set = true;
            notes.push(format!("reserved field at offset {off} = {v:#x}"));
        }
        self.d.arg[..4].copy_from_slice(&size_field.map_or(spec.size as u32, |(v, _)| v).to_le_bytes());

        // The user array, then the struct pointing to it.
        let mut array = None;
        let mut array_bad = false;
        if let Some((off, role, esz)) = spec.array {
            let out = matches!(role, Role::HandlesOut | Role::EntriesOut);
            let p = self.mem.place(Area::Array, self.d.array_ptr, &self.d.array, self.d.array_access, if out { esz } else { 0 }, out);
            self.d.arg[off..off + 8].copy_from_slice(&p.addr.to_le_bytes());
            let usable = if out { self.d.array_ptr.writable() } else { self.d.array_ptr.readable() };
            // Without access to its array the call cannot succeed. LIST and
            // ALLOCATORS write only min(max, count) entries: none for max
            // 0, and maybe few enough to stop short of the guard page of a
            // straddling array.
            let max = u32::from_le_bytes(self.d.arg[4..8].try_into().unwrap_or_default());
            let maybe = role == Role::EntriesOut && (max == 0 || self.d.array_ptr == Ptr::Straddle);
            array_bad = !usable && !maybe;
            if !usable {
                notes.push(format!("{:?} user array", self.d.array_ptr));
            }
            array = Some((p, role, esz));
        }
        let argp = self.mem.place(Area::Arg, arg_ptr, &self.d.arg[..spec.size], spec.size, 0, false);
        let out_of_range = spec::invalid(spec.name, &self.d.arg[..spec.size], &self.d.array, &sh.env);
        if let Some(why) = out_of_range {
            notes.push(why.to_string());
        }
        let expect = if number != Number::Real {
            Expect::Errno(libc::ENOTTY)
        } else if arg_ptr == Ptr::Straddle && size_field.is_some() {
            // The size field itself is readable: a kernel may refuse it
            // (EINVAL) before reading the rest (EFAULT), or accept a smaller
            // size of another ABI version that ends before the guard page.
            if size_field.is_some_and(|(_, impossible)| impossible) {
                Expect::Fail
            } else {
                Expect::Table
            }
        } else if !arg_ptr.readable() {
            Expect::Errno(libc::EFAULT)
        } else if size_field.is_some_and(|(_, impossible)| impossible) {
            Expect::Errno(libc::EINVAL)
        } else if arg_ptr == Ptr::ReadOnly
            || reserved_set
            || array_bad
            || out_of_range.is_some()
            || self.d.srcs.iter().any(|s| s.must_refuse())
        {
            Expect::Fail
        } else {
            Expect::Table
        };

        Prepared { si, number, cmd, row, expect, arg_ptr, notes, argp, array }
    }

    /// Judges a call's result, checks its outputs and records what it
    /// changed.
    fn finish(&mut self, i: u64, slot: &Slot, p: Prepared, errno: i32, took: Duration) {
        let sh = self.sh;
        let Prepared { si, number, cmd, row, expect, arg_ptr, mut notes, argp, array } = p;
        let spec = &sh.specs[si];
        self.record(row, errno, took);
        let command = (number == Number::Real).then_some(spec.name);
        let mut why = judge(command, expect, errno).err();
        let out: Vec<u8> = match argp.window {
            Some(w) if errno == 0 && arg_ptr.writable() => self.mem.read(w)[..spec.size].to_vec(),
            _ => Vec::new(),
        };
        if why.is_none() && errno == 0 && number == Number::Real {
            why = self.check_outputs(spec, &out, array);
        }
        if let Some(why) = why {
            if self.d.srcs.iter().any(|s| s.must_refuse()) {
                notes.push(format!("handles from {:?}", self.d.srcs));
            }
            let mut arg = format!("{arg_ptr:?} {}", (spec.show)(&self.d.arg[..spec.size]));
            if !notes.is_empty() {
                arg += &format!(" [{}]", notes.join("; "));
            }
            sh.fail(Failure {
                thread: Some(self.t),
                call: i,
                command: command.unwrap_or(BAD_NUMBERS[row.saturating_sub(sh.specs.len()).min(2)]).to_string(),
                number: format!("{cmd:#010x}"),
                arg,
                errno: errno_name(errno),
                why,
            });
        }
        if errno == 0 && number == Number::Real && !out.is_empty() {
            let arr: Vec<u8> = match array {
                Some((p, Role::HandlesOut, _)) => p.window.map(|w| self.mem.read(w).to_vec()).unwrap_or_default(),
                _ => self.d.array.clone(),
            };
            self.effects(slot, spec.name, &out, &arr);
        }
    }

    /// The checks of a successful call's outputs.
    fn check_outputs(&self, spec: &Spec, out: &[u8], array: Option<(mem::Placed, Role, usize)>) -> Option<String> {
        let mut bad = verdict::leaks_in_struct(spec, out);
        if !bad.is_empty() {
            bad.insert(0, "kernel address in the output:".into());
        }
        if spec.name == "INFO" {
            let i: uapi::rkalloc_info = spec::from_bytes(out);
            if i.abi_version != uapi::RKALLOC_ABI_VERSION {
                bad.push(format!("abi_version {} (the header's is {})", i.abi_version, uapi::RKALLOC_ABI_VERSION));
            }
        }
        if let Some((p, role, esz)) = array {
            if let (Some(w), true) = (p.window, matches!(role, Role::HandlesOut | Role::EntriesOut)) {
                let written = match role {
                    Role::HandlesOut => spec::from_bytes::<uapi::rkalloc_batch>(out).count as usize,
                    _ if spec.name == "LIST" => {
                        let l: uapi::rkalloc_list = spec::from_bytes(out);
                        l.max.min(l.count) as usize
                    }
                    _ => {
                        let l: uapi::rkalloc_allocators = spec::from_bytes(out);
                        l.max.min(l.count) as usize
                    }
                };
                let window = self.mem.read(w);
                bad.extend(verdict::check_array(role, esz, spec::out_words(spec.name), window, written, mem::CANARY));
                if spec.name == "ALLOCATORS" {
                    for (k, e) in window.chunks_exact(esz).take(written).enumerate() {
                        let a: uapi::rkalloc_allocator = spec::from_bytes(e);
                        if a.id as usize != k {
                            bad.push(format!("entry {k} has id {}", a.id));
                        }
                    }
                }
            }
        }
        (!bad.is_empty()).then(|| bad.join("; "))
    }

    /// What a success changed in the fd's state.
    fn effects(&self, slot: &Slot, name: &str, out: &[u8], arr: &[u8]) {
        let mut tr = lock(&slot.tracked);
        let mut made = Vec::new();
        let mut add = |tr: &mut Tracked, k: Kind, handle: u64, bytes: u64, parent: u64| {
            tr.add(k, Held { handle, bytes, parent });
            made.push(handle);
        };
        let handles = |b: &[u8], n: usize| -> Vec<u64> {
            b.chunks_exact(8).take(n).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).collect()
        };
        match name {
            "POOL_ALLOC" => {
                let a: uapi::rkalloc_pool_alloc = spec::from_bytes(out);
                add(&mut tr, Kind::Pool, a.handle, self.sh.env.page_size << a.order.min(20), 0);
            }
            "FREE" => {
                tr.remove(spec::from_bytes::<uapi::rkalloc_free>(out).handle);
            }
            "CACHE_CREATE" => {
                let a: uapi::rkalloc_cache_create = spec::from_bytes(out);
                add(&mut tr, Kind::Cache, a.handle, u64::from(a.obj_size), 0);
            }
            "CACHE_DESTROY" => {
                tr.remove(spec::from_bytes::<uapi::rkalloc_handle_op>(out).handle);
            }
            "OBJ_ALLOC" => {
                let a: uapi::rkalloc_batch = spec::from_bytes(out);
                let size = tr.object_size(a.cache);
                for h in handles(arr, a.count as usize) {
                    add(&mut tr, Kind::Object, h, size, a.cache);
                }
            }
            "OBJ_FREE" => {
                let a: uapi::rkalloc_batch = spec::from_bytes(out);
                for h in handles(arr, a.count as usize) {
                    tr.remove(h);
                }
            }
            "MALLOC" => {
                let a: uapi::rkalloc_malloc = spec::from_bytes(out);
                add(&mut tr, Kind::Malloc, a.handle, a.bytes, 0);
            }
            "HEAP_CREATE" => {
                let a: uapi::rkalloc_heap_create = spec::from_bytes(out);
                add(&mut tr, Kind::Heap, a.handle, a.initial_bytes.max(64 << 10), 0);
            }
            "HEAP_ALLOC" => {
                let a: uapi::rkalloc_heap_alloc = spec::from_bytes(out);
                add(&mut tr, Kind::HeapBlock, a.handle, a.bytes, a.heap);
            }
            "HEAP_RESET" | "HEAP_DESTROY" => {
                let h = spec::from_bytes::<uapi::rkalloc_handle_op>(out).handle;
                tr.remove_children(Kind::HeapBlock, Some(h));
                if name == "HEAP_DESTROY" {
                    tr.remove(h);
                }
            }
            "ARENA_ALLOC" => {
                let a: uapi::rkalloc_arena_alloc = spec::from_bytes(out);
                add(&mut tr, Kind::Arena, a.handle, a.bytes, 0);
            }
            "ARENA_RESET" => tr.remove_children(Kind::Arena, None),
            _ => {}
        }
        drop(tr);
        if !made.is_empty() {
            let mut f = lock(&self.sh.foreign);
            for h in made.into_iter().take(8) {
                ring_push(&mut f, (slot.serial, h));
            }
        }
    }

    /// Closes an fd while another thread is (most likely) inside a slow
    /// command on it. The helper thread uses a dup of the fd; this thread
    /// retires the slot (so the dup may hold the file's last reference),
    /// then replaces the dup's number with the tombstone fd by dup2: the
    /// file is released when the helper's ioctl returns, and the number
    /// never becomes free, so no other open in the process can get it
    /// while the helper may still use it. If the helper had not started
    /// yet, its command runs on the tombstone fd instead, which must
    /// answer as documented too.
    fn race(&mut self, i: u64) -> Result<()> {
        let slot = self.sh.retire(self.g.below(self.sh.slots.len()))?;
        // SAFETY: dup of an fd this Arc keeps open.
        let dup = unsafe { libc::dup(slot.fd.as_raw_fd()) };
        if dup < 0 {
            bail!("dup failed: {}", std::io::Error::last_os_error());
        }
        drop(slot);
        let which = self.g.below(5);
        let seed = self.g.u64();
        let delay = Duration::from_micros(self.g.below(400) as u64);
        let (env, tids, t) = (&self.sh.env, &self.sh.tids, self.t);
        let t0 = Instant::now();
        let (name, errno) = std::thread::scope(|s| {
            let h = s.spawn(move || {
                // SAFETY: gettid has no preconditions.
                lock(tids).push((unsafe { libc::gettid() }, t));
                slow_call(dup, which, seed, env)
            });
            std::thread::sleep(delay);
            // SAFETY: `dup` is our own number; dup2 atomically makes it
            // name the tombstone's file instead.
            unsafe { libc::dup2(self.sh.tombstone.as_raw_fd(), dup) };
            h.join().unwrap_or(("(helper panicked)", -1))
        });
        // SAFETY: our own number, not used by anyone any more.
        unsafe { libc::close(dup) };
        self.counts.races += 1;
        let row = self.row(name);
        // The race's whole time, the helper thread's start included.
        self.record(row, errno, t0.elapsed());
        if let Err(why) = judge(Some(name), Expect::Table, errno) {
            self.sh.fail(Failure {
                thread: Some(self.t),
                call: i,
                command: name.into(),
                number: "(close race)".into(),
                arg: format!("well-formed {name} on an fd closed meanwhile"),
                errno: errno_name(errno),
                why,
            });
        }
        Ok(())
    }
}

/// A well-formed slow command on `fd` (for the close race): BENCH,
/// CONFORM, REPLAY, CHECK or POOL_SHRINK. Returns its name and errno.
fn slow_call(fd: RawFd, which: usize, seed: u64, env: &Env) -> (&'static str, i32) {
    let pick = |want: fn(&spec::Alloc) -> bool| env.allocators.iter().position(want).unwrap_or(0) as u32;
    let r = match which {
        0 => {
            let allocator = pick(|a| a.flags & uapi::RKALLOC_ALLOCATOR_FREES_ALL == 0 && a.min <= 64 && a.max >= 64);
            let a = uapi::rkalloc_bench {
                allocator,
                pattern: uapi::RKALLOC_BENCH_BATCH,
                batch: 16,
                bytes: 64,
                ops: 256,
                samples: 4,
                ..Default::default()
            };
            ("BENCH", sys::call(fd, uapi::cmd::bench(), a).err())
        }
        1 => {
            let allocator = (seed % env.allocators.len().max(1) as u64) as u32;
            let a = uapi::rkalloc_conform { allocator, ops: 256, seed, max_live: 32, ..Default::default() };
            ("CONFORM", sys::call(fd, uapi::cmd::conform(), a).err())
        }
        2 => {
            let allocator = pick(|a| a.flags & uapi::RKALLOC_ALLOCATOR_FREES_ALL == 0 && a.min <= 1 && a.max >= 4096);
            let ops: Vec<uapi::rkalloc_trace_op> = (0..256u32)
                .map(|i| match i % 4 {
                    3 => uapi::rkalloc_trace_op { op: uapi::RKALLOC_TRACE_FREE, id: i - 3, size: 0 },
                    _ => uapi::rkalloc_trace_op { op: uapi::RKALLOC_TRACE_ALLOC, id: i, size: u64::from(i * 13 % 4096 + 1) },
                })
                .collect();
            let a =
                uapi::rkalloc_replay { allocator, ops: ops.as_ptr() as u64, count: ops.len() as u32, max_id: 256, ..Default::default() };
            // `ops` outlives the call; the kernel only reads it.
            ("REPLAY", sys::call(fd, uapi::cmd::replay(), a).err())
        }
        3 => ("CHECK", sys::call(fd, uapi::cmd::check(), uapi::rkalloc_check::default()).err()),
        _ => ("POOL_SHRINK", sys::call(fd, uapi::cmd::pool_shrink(), uapi::rkalloc_pool_shrink::default()).err()),
    };
    (r.0, r.1.unwrap_or(0))
}

/// Reads the module's tables: INFO and ALLOCATORS.
pub fn probe(dev: &Device, budget: u64) -> Result<Env> {
    let i = dev.info()?;
    let v = dev.allocators_raw()?;
    Ok(Env {
        max_order: i.max_order,
        page_size: u64::from(i.page_size),
        nr_policies: i.nr_policies,
        allocators: v.iter().map(|a| spec::Alloc { flags: a.flags, min: a.min_bytes, max: a.max_bytes }).collect(),
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
