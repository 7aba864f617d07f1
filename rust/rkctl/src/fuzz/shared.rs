//! The state the fuzzer's threads share: the fds they use, the failures
//! and counts they gather, and the kernel log they watch.
use super::*;

pub(super) const MAX_ERRNO: usize = 134;
/// Extra histogram rows after the commands: numbers the header does not
/// define, real numbers with another size, and with another direction.
pub(super) const BAD_NUMBERS: [&str; 3] = ["(unknown number)", "(wrong size in number)", "(wrong direction)"];
/// ioctl magics the VFS answers itself (FIOCLEX, FIFREEZE, FS_IOC_*,
/// FICLONE, FS_IOC_GETFSUUID, FIBMAP...): random numbers avoid them, as
/// they act on the file or the filesystem, not on rkalloc.
pub(super) const VFS_MAGICS: [u32; 6] = [0x00, 0x15, 0x54, 0x58, 0x66, 0x94];

/// One fd of the fuzzer and what it holds.
pub(super) struct Slot {
    /// The fd.
    pub(super) fd: OwnedFd,
    /// Unique among the run's slots.
    pub(super) serial: u64,
    /// What it holds, as the fuzzer knows.
    pub(super) tracked: Mutex<Tracked>,
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
pub(super) struct Shared {
    /// The device node.
    pub(super) dev: PathBuf,
    /// The module's tables.
    pub(super) env: Env,
    /// The header's commands.
    pub(super) specs: Vec<Spec>,
    /// Cumulative weights of `specs`.
    pub(super) cumulative: Vec<u32>,
    /// The fds the threads share.
    pub(super) slots: Vec<Mutex<Arc<Slot>>>,
    /// Live handles of every slot, with its serial (a ring).
    pub(super) foreign: Mutex<Vec<(u64, u64)>>,
    /// Handles of closed slots (a ring).
    pub(super) dead: Mutex<Vec<u64>>,
    /// Serials of slots, and numbers for cache names.
    pub(super) serial: AtomicU64,
    /// An fd the close race swaps in (dup2) for the one it closes.
    pub(super) tombstone: OwnedFd,
    /// The first failures, in full.
    pub(super) failures: Mutex<Vec<Failure>>,
    /// Every failure, counted.
    pub(super) nr_failures: AtomicU64,
    /// The run's seed.
    pub(super) seed: u64,
    /// Failures printed as they happen.
    pub(super) show: usize,
    /// Per thread: its last calls, for a kernel report that names it.
    pub(super) recent: Vec<Mutex<Recent>>,
    /// (task id, thread): the workers' and their close-race helpers'.
    pub(super) tids: Mutex<Vec<(i32, usize)>>,
}

/// How many calls [`Recent`] keeps.
pub(super) const RECENT: usize = 16;

/// A thread's last calls, oldest first once full: (call index, command
/// row, number, argument pointer, struct bytes).
#[derive(Default)]
pub(super) struct Recent {
    /// The calls: (index, histogram row, number, argument pointer, struct).
    pub(super) calls: Vec<(u64, usize, u32, Ptr, Vec<u8>)>,
    /// Where the next call goes once full.
    pub(super) next: usize,
}

impl Recent {
    /// Records a call.
    pub(super) fn push(&mut self, i: u64, row: usize, cmd: u32, p: Ptr, arg: &[u8]) {
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
    pub(super) fn describe(&self, specs: &[Spec]) -> String {
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
pub(super) const RING: usize = 128;

/// Appends to a ring of [`RING`] entries.
pub(super) fn ring_push<T>(v: &mut Vec<T>, x: T) {
    if v.len() >= RING {
        v.remove(0);
    }
    v.push(x);
}

/// Per-thread counts.
pub(super) struct Counts {
    /// Calls by histogram row (command or bad number), then by errno.
    pub(super) hist: Vec<[u64; MAX_ERRNO + 1]>,
    /// Nanoseconds spent in the ioctls, by histogram row.
    pub(super) ns: Vec<u64>,
    /// Nanoseconds in reopens (a close frees what the fd held).
    pub(super) reopen_ns: u64,
    /// ioctls issued.
    pub(super) ioctls: u64,
    /// Close races run.
    pub(super) races: u64,
    /// fds closed and reopened.
    pub(super) reopens: u64,
    /// Concurrent CHECKs run.
    pub(super) checks: u64,
}

impl Shared {
    /// Opens a new fd for a slot.
    pub(super) fn open_slot(&self) -> Result<Arc<Slot>> {
        Ok(Arc::new(Slot { fd: sys::open(&self.dev)?, serial: self.serial.fetch_add(1, Relaxed), tracked: Mutex::new(Tracked::default()) }))
    }

    /// Replaces slot `i` by a new fd; the old one is closed once no thread
    /// uses it any more. Its handles become dead handles.
    pub(super) fn retire(&self, i: usize) -> Result<Arc<Slot>> {
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
    pub(super) fn fail(&self, f: Failure) {
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
    pub(super) fn report(&self, r: kmsg::Report) {
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
pub(super) fn watch_log(sh: &Shared, w: &mut kmsg::Watch, done: &std::sync::atomic::AtomicBool) {
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
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

