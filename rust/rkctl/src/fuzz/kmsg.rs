//! The kernel log during a fuzz run: a call can return a documented errno
//! and still make the kernel print a WARNING, a BUG or a KASAN report.
//! The fuzzer reads `/dev/kmsg` from the run's start, counts every report
//! as a failure, and names the thread whose call it was when the report
//! says which task it ran in (`CPU#0: rkctl/127`, `PID: 127 Comm: rkctl`),
//! so the calls that thread made just before can be printed with it.
use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
};

/// The lines that start a report: what scripts/vm-run looks for.
const PATTERNS: [&str; 10] = [
    "BUG:",
    "WARNING:",
    "KASAN:",
    "Oops",
    "Kernel panic",
    "general protection fault",
    "new suspected memory leaks",
    "possible circular locking",
    "inconsistent lock state",
    " blocked for more than ",
];

/// A report in the kernel log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Its first line.
    pub line: String,
    /// The task id it names, if it names a task.
    pub tid: Option<i32>,
}

/// The task id a log line names: `comm/TID` after `CPU#N: ` (a WARNING's
/// first line), or `PID: TID Comm:` (the line after a BUG or an oops).
fn tid_of(line: &str) -> Option<i32> {
    if let Some(i) = line.find("PID: ") {
        return line[i + 5..].split_whitespace().next()?.parse().ok();
    }
    let i = line.find("CPU#")?;
    let task = line[i..].split_whitespace().nth(1)?;
    task.rsplit_once('/')?.1.parse().ok()
}

/// The reports among `lines` (messages of the log, oldest first): each
/// line matching a pattern starts one, and its task is the first one named
/// in it or in the 12 lines after it.
pub fn scan(lines: &[String]) -> Vec<Report> {
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if PATTERNS.iter().any(|p| l.contains(p)) {
            let tid = lines[i..lines.len().min(i + 13)].iter().find_map(|l| tid_of(l));
            v.push(Report { line: l.trim().to_string(), tid });
        }
    }
    v
}

/// `/dev/kmsg`, read from where it was opened.
pub struct Watch {
    /// `/dev/kmsg`, non-blocking.
    file: File,
    /// Messages read so far.
    pub lines: Vec<String>,
}

impl Watch {
    /// Opens the log and skips what it already holds; None when it cannot
    /// be read (not root, no /dev/kmsg).
    pub fn open() -> Option<Self> {
        let mut file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/dev/kmsg").ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        Some(Watch { file, lines: Vec::new() })
    }

    /// Reads every record written since the last call. A record is
    /// `PRIO,SEQ,USEC,FLAGS;MESSAGE`, then continuation lines starting
    /// with a space (dropped).
    pub fn read(&mut self) {
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    if let Some(first) = rec.lines().next() {
                        let msg = first.split_once(';').map_or(first, |(_, m)| m);
                        self.lines.push(msg.to_string());
                    }
                }
                // Records overwritten before we read them: go on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(t: &str) -> Vec<String> {
        t.lines().map(str::to_string).collect()
    }

    #[test]
    fn finds_reports_and_their_task() {
        // The WARNING of the first fuzz run on the v2 module.
        let log = lines(
            "rkalloc: shrink: gave 1024 pages back to the kernel
WARNING: mm/page_alloc.c:5336 at __alloc_frozen_pages_noprof+0x125/0x200, CPU#0: rkctl/127
Modules linked in: rkalloc(O)
CPU: 0 UID: 0 PID: 127 Comm: rkctl Tainted: G           O     N  7.2.13 #1 PREEMPTLAZY
BUG: KASAN: slab-out-of-bounds in rkalloc_thing+0x10/0x20 [rkalloc]
Read of size 8 at addr ffff888003a4b000 by task rkctl/131

CPU: 1 UID: 0 PID: 131 Comm: rkctl Tainted: G    B      O     N  7.2.13 #1
Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP
rkalloc: nothing wrong here",
        );
        let r = scan(&log);
        assert_eq!(r.len(), 3, "{r:#?}");
        assert_eq!(r[0].tid, Some(127));
        assert!(r[0].line.starts_with("WARNING: mm/page_alloc.c:5336"));
        assert_eq!(r[1].tid, Some(131));
        assert!(r[1].line.starts_with("BUG: KASAN"));
        assert!(r[2].line.starts_with("Oops: general protection fault"));
        assert!(scan(&lines("rkalloc: loaded\nrkalloc: unloaded")).is_empty());
    }

    #[test]
    fn task_ids_as_the_kernel_prints_them() {
        assert_eq!(tid_of("WARNING: x at y, CPU#1: kworker/u8:2/45"), Some(45));
        assert_eq!(tid_of("CPU: 0 UID: 0 PID: 127 Comm: rkctl"), Some(127));
        assert_eq!(tid_of("no task here"), None);
    }
}
