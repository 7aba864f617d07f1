//! `rkctl top`: a live view of `/sys/kernel/debug/rkalloc/`, like slabtop:
//! the pool (pages used, free, on per-CPU lists, high water; free blocks
//! per order from `buddyinfo`), every slab cache's `slabinfo` figures with
//! slabtop's summary and columns and sort keys, and every heap's and
//! arena's sizes and fragmentation (`heaps`, `arenas`, read by column
//! name).
//!
//! `--once` prints one frame without terminal control codes. Otherwise the
//! frame is redrawn in place (the alternate screen, plain ANSI) every
//! `--interval` seconds until `q` or Ctrl-C; the keys of slabtop change
//! the sort (a b c l v n o p s u), and the terminal is restored however
//! the view ends.
pub mod parse;

use anyhow::Result;
use parse::{Slab, Snapshot, Table};
use std::{
    fmt::Write as _,
    io::Write as _,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

/// `rkctl top`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Print one frame without terminal control codes, and exit.
    #[arg(long)]
    pub once: bool,
    /// Seconds between refreshes.
    #[arg(short = 'd', long, default_value_t = 3.0)]
    pub interval: f64,
    /// The column caches are sorted by (largest first; name A to Z).
    #[arg(short, long, value_enum, default_value = "cache-size")]
    pub sort: Sort,
    /// The module's debugfs directory.
    #[arg(long, default_value = "/sys/kernel/debug/rkalloc")]
    pub debugfs: PathBuf,
}

/// slabtop's sort criteria, with its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sort {
    /// Active objects (key a).
    Active,
    /// Objects per slab (key b).
    ObjPerSlab,
    /// Cache size (key c).
    CacheSize,
    /// Slabs (key l).
    Slabs,
    /// Active slabs (key v).
    ActiveSlabs,
    /// Name (key n).
    Name,
    /// Objects (key o).
    Objs,
    /// Pages per slab (key p).
    PagesPerSlab,
    /// Object size (key s).
    ObjSize,
    /// Cache utilisation, active / objects (key u).
    Use,
}

impl Sort {
    /// The criterion of a slabtop key.
    pub fn of_key(c: u8) -> Option<Self> {
        Some(match c {
            b'a' => Sort::Active,
            b'b' => Sort::ObjPerSlab,
            b'c' => Sort::CacheSize,
            b'l' => Sort::Slabs,
            b'v' => Sort::ActiveSlabs,
            b'n' => Sort::Name,
            b'o' => Sort::Objs,
            b'p' => Sort::PagesPerSlab,
            b's' => Sort::ObjSize,
            b'u' => Sort::Use,
            _ => return None,
        })
    }
}

/// Bytes as KiB, MiB or GiB.
fn kib(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

/// `a` in percent of `b` (0 for b = 0).
fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

/// The caches in `sort` order (largest first; names A to Z), as slabtop.
pub fn sorted(slabs: &[Slab], sort: Sort, page: u64) -> Vec<&Slab> {
    let mut v: Vec<&Slab> = slabs.iter().collect();
    let key = |c: &Slab| -> u64 {
        match sort {
            Sort::Active => c.get("active_objs"),
            Sort::ObjPerSlab => c.get("objperslab"),
            Sort::CacheSize => c.cache_bytes(page),
            Sort::Slabs => c.get("num_slabs"),
            Sort::ActiveSlabs => c.get("active_slabs"),
            Sort::Objs => c.get("num_objs"),
            Sort::PagesPerSlab => c.get("pagesperslab"),
            Sort::ObjSize => c.get("objsize"),
            // In thousandths, to sort by utilisation.
            Sort::Use => (c.get("active_objs") * 1000).checked_div(c.get("num_objs")).unwrap_or(0),
            Sort::Name => 0,
        }
    };
    if sort == Sort::Name {
        v.sort_by(|a, b| a.name.cmp(&b.name));
    } else {
        // Ties by name, so frames do not jitter.
        v.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
    }
    v
}

/// A table's column by name for a row, "-" when the module has no such
/// column.
fn col<'a>(t: &'a Table, r: &'a [String], name: &str) -> &'a str {
    t.get(r, name).unwrap_or("-")
}

/// One frame: the pool, the caches sorted by `sort`, the heaps and the
/// arenas, without control codes.
pub fn render(s: &Snapshot, sort: Sort) -> String {
    let mut f = String::new();
    let page = s.info.num("page_size").unwrap_or(4096);
    let p = |k: &str| s.pool.num(k).ok();
    let n = |k: &str| p(k).map_or("-".into(), |v| v.to_string());
    let (total, free) = (p("total_pages").unwrap_or(0), p("free_pages").unwrap_or(0));
    let used = p("used_pages").unwrap_or(total.saturating_sub(free));
    let _ = writeln!(
        f,
        "pool: {} pages ({}), used {} ({:.1}%), free {} ({} on per-CPU lists), high water {}, max {}",
        total,
        kib(total * page),
        used,
        pct(used, total),
        free,
        n("pcp_pages"),
        n("high_water_pages"),
        p("max_pages").map_or("-".into(), |m| kib(m * page))
    );
    let _ = writeln!(
        f,
        "      chunks grown {} shrunk {}, largest free block {}, external fragmentation {}‰, bad frees {}, metadata {}",
        n("chunks_grown"),
        n("chunks_shrunk"),
        p("largest_free_bytes").map_or("-".into(), kib),
        n("external_frag_permille"),
        n("bad_frees"),
        p("metadata_bytes").map_or("-".into(), kib)
    );
    let _ = write!(f, "      free blocks per order:");
    for (o, c) in s.buddy.iter().enumerate() {
        let _ = write!(f, " {o}:{c}");
    }
    let _ = writeln!(f);

    // slabtop's summary.
    let sum = |k: &str, active: bool| -> u64 { s.slabs.iter().filter(|c| !active || c.get("active_objs") > 0).map(|c| c.get(k)).sum() };
    let (ao, to) = (sum("active_objs", false), sum("num_objs", false));
    let (asl, tsl) = (sum("active_slabs", false), sum("num_slabs", false));
    let active_caches = s.slabs.iter().filter(|c| c.get("active_objs") > 0).count();
    let asize: u64 = s.slabs.iter().map(|c| c.get("active_objs") * c.get("objsize")).sum();
    let tsize: u64 = s.slabs.iter().map(|c| c.get("num_objs") * c.get("objsize")).sum();
    let sizes: Vec<u64> = s.slabs.iter().map(|c| c.get("objsize")).collect();
    let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
    let avg = if sizes.is_empty() { 0.0 } else { sizes.iter().sum::<u64>() as f64 / sizes.len() as f64 };
    let _ = writeln!(f, "\n Active / Total Objects (% used)    : {ao} / {to} ({:.1}%)", pct(ao, to));
    let _ = writeln!(f, " Active / Total Slabs (% used)      : {asl} / {tsl} ({:.1}%)", pct(asl, tsl));
    let _ = writeln!(
        f,
        " Active / Total Caches (% used)     : {active_caches} / {} ({:.1}%)",
        s.slabs.len(),
        pct(active_caches as u64, s.slabs.len() as u64)
    );
    let _ = writeln!(
        f,
        " Active / Total Size (% used)       : {:.2}K / {:.2}K ({:.1}%)",
        asize as f64 / 1024.0,
        tsize as f64 / 1024.0,
        pct(asize, tsize)
    );
    let _ = writeln!(
        f,
        " Minimum / Average / Maximum Object : {:.2}K / {:.2}K / {:.2}K",
        min as f64 / 1024.0,
        avg / 1024.0,
        max as f64 / 1024.0
    );
    let _ = writeln!(
        f,
        "\n{:>6} {:>6} {:>4} {:>8} {:>6} {:>8} {:>10} NAME",
        "OBJS", "ACTIVE", "USE", "OBJ SIZE", "SLABS", "OBJ/SLAB", "CACHE SIZE"
    );
    for c in sorted(&s.slabs, sort, page) {
        let _ = writeln!(
            f,
            "{:>6} {:>6} {:>3}% {:>7.2}K {:>6} {:>8} {:>9}K {}",
            c.get("num_objs"),
            c.get("active_objs"),
            // As slabtop: the integer part.
            (c.get("active_objs") * 100).checked_div(c.get("num_objs")).unwrap_or(0),
            c.get("objsize") as f64 / 1024.0,
            c.get("num_slabs"),
            c.get("objperslab"),
            c.cache_bytes(page) / 1024,
            c.name
        );
    }

    let h = &s.heaps;
    let _ = writeln!(f, "\nheaps: {}", h.rows.len());
    if !h.rows.is_empty() {
        let _ = writeln!(
            f,
            "{:>5} {:<16} {:<5} {:>4} {:>9} {:>9} {:>9} {:>9} {:>5} {:>5} {:>6} {:>8} {:>8} {:>6} STATE",
            "ID", "POLICY", "FLAGS", "REGS", "SIZE", "USED", "FREE", "LARGEST", "INT‰", "EXT‰", "LIVE", "ALLOCS", "FREES", "FAILS"
        );
        for r in &h.rows {
            let c = |k| col(h, r, k);
            let _ = writeln!(
                f,
                "{:>5} {:<16} {:<5} {:>4} {:>9} {:>9} {:>9} {:>9} {:>5} {:>5} {:>6} {:>8} {:>8} {:>6} {}",
                c("id"),
                c("policy"),
                c("flags"),
                c("regions"),
                c("size"),
                c("used"),
                c("free"),
                c("largest_free"),
                c("internal_permille"),
                c("external_permille"),
                c("live"),
                c("allocs"),
                c("frees"),
                c("failures"),
                c("state")
            );
        }
    }
    let a = &s.arenas;
    let _ = writeln!(f, "\narenas: {}", a.rows.len());
    if !a.rows.is_empty() {
        let _ = writeln!(
            f,
            "{:>5} {:>4} {:>9} {:>9} {:>8} {:>9} {:>9} {:>6} {:>8} {:>5} {:>5} {:>6} {:>10}",
            "ID", "REGS", "SIZE", "USED", "PADDING", "FREE", "LARGEST", "LIVE", "ALLOCS", "INT‰", "EXT‰", "RESETS", "RECLAIMED"
        );
        for r in &a.rows {
            let c = |k| col(a, r, k);
            let _ = writeln!(
                f,
                "{:>5} {:>4} {:>9} {:>9} {:>8} {:>9} {:>9} {:>6} {:>8} {:>5} {:>5} {:>6} {:>10}",
                c("id"),
                c("regions"),
                c("size"),
                c("used"),
                c("padding"),
                c("free"),
                c("largest_free"),
                c("live"),
                c("allocs"),
                c("internal_permille"),
                c("external_permille"),
                c("resets"),
                c("reclaimed_bytes")
            );
        }
    }
    f
}

/// Set by SIGINT and SIGTERM while the live view runs.
static STOP: AtomicBool = AtomicBool::new(false);

/// SIGINT and SIGTERM: stop the live view.
extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// The terminal as the live view leaves it: restored on drop, however the
/// view ends (q, a signal, an error).
struct Screen {
    /// The terminal's settings before, when stdin is a terminal.
    saved: Option<libc::termios>,
}

impl Screen {
    /// Takes over the terminal: keys without Enter, the alternate screen.
    fn enter() -> Self {
        // SAFETY: a zeroed termios is a valid buffer for tcgetattr.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: stdin's fd and a valid termios buffer.
        let saved = (unsafe { libc::isatty(0) } == 1 && unsafe { libc::tcgetattr(0, &mut t) } == 0).then_some(t);
        if let Some(mut raw) = saved {
            // Keys without Enter and without echo; Ctrl-C still signals.
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 0;
            raw.c_cc[libc::VTIME] = 0;
            // SAFETY: stdin is a terminal; `raw` is a valid termios.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
        }
        // Alternate screen, cursor hidden.
        print!("\x1b[?1049h\x1b[?25l");
        let _ = std::io::stdout().flush();
        Screen { saved }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
        if let Some(t) = self.saved {
            // SAFETY: restores the settings read from stdin in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

/// The terminal's (rows, columns), or (24, 80).
fn size() -> (usize, usize) {
    // SAFETY: a zeroed winsize is a valid buffer for TIOCGWINSZ.
    let mut w: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: stdout's fd and a valid winsize buffer.
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut w) } == 0 && w.ws_row > 0 {
        (w.ws_row as usize, w.ws_col as usize)
    } else {
        (24, 80)
    }
}

/// Waits up to `d` for a key on stdin (when it is a terminal); returns it,
/// or None at the timeout or a signal.
fn key(d: Duration, tty: bool) -> Option<u8> {
    if !tty {
        // No keys to read: sleep in short steps, watching for a signal.
        let end = std::time::Instant::now() + d;
        while std::time::Instant::now() < end && !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(d));
        }
        return None;
    }
    let mut p = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, d.as_millis().min(i32::MAX as u128) as i32) } <= 0 {
        return None;
    }
    let mut b = [0u8; 1];
    // SAFETY: reads one byte into our buffer.
    (unsafe { libc::read(0, b.as_mut_ptr().cast(), 1) } == 1).then_some(b[0])
}

/// `rkctl top`.
pub fn main(a: &Args) -> Result<()> {
    use crate::error::{Class, ResultExt};
    if a.once {
        let s = Snapshot::read(&a.debugfs).class(Class::System, || "rkctl top".into())?;
        print!("{}", render(&s, a.sort));
        return Ok(());
    }
    let interval = Duration::try_from_secs_f64(a.interval)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| crate::error::usage("--interval must be a positive number of seconds"))?;
    // Make sure the files are there before taking over the terminal.
    Snapshot::read(&a.debugfs).class(Class::System, || "rkctl top".into())?;
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
    let screen = Screen::enter();
    let tty = screen.saved.is_some();
    let mut sort = a.sort;
    while !STOP.load(Ordering::Relaxed) {
        let (rows, cols) = size();
        let body = match Snapshot::read(&a.debugfs) {
            Ok(s) => render(&s, sort),
            Err(e) => format!("cannot read {}: {e:#}\n", a.debugfs.display()),
        };
        let mut frame = format!(
            "rkalloc top - {} - every {:.1} s, sorted by {sort:?}; q quits, a b c l v n o p s u sort\x1b[K\n",
            a.debugfs.display(),
            interval.as_secs_f64()
        );
        for l in body.lines().take(rows.saturating_sub(1)) {
            frame.extend(l.chars().take(cols));
            frame.push_str("\x1b[K\n");
        }
        frame.pop();
        print!("\x1b[H{frame}\x1b[J");
        let _ = std::io::stdout().flush();
        match key(interval, tty) {
            Some(b'q') | Some(b'Q') => break,
            Some(k) => sort = Sort::of_key(k).unwrap_or(sort),
            None => {}
        }
    }
    drop(screen);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture() -> Snapshot {
        Snapshot::read(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/debugfs"))).unwrap()
    }

    fn names(s: &Snapshot, sort: Sort) -> Vec<String> {
        sorted(&s.slabs, sort, 4096).iter().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn one_frame_of_the_captured_files() {
        let s = fixture();
        let f = render(&s, Sort::CacheSize);
        assert!(!f.contains('\x1b'), "no control codes in a --once frame");
        assert!(
            f.starts_with(
                "pool: 16384 pages (64.0 MiB), used 1517 (9.3%), free 14867 (40 on per-CPU lists), high water 2210, max 1.0 GiB\n"
            ),
            "{f}"
        );
        assert!(f.contains("largest free block 4.0 MiB, external fragmentation 33‰, bad frees 3"), "{f}");
        assert!(f.contains("free blocks per order: 0:3 1:2 2:1 3:2 4:1 5:0 6:1 7:1 8:1 9:0 10:14\n"), "{f}");
        // slabtop's summary: 553 of 1150 objects, caches with objects.
        assert!(f.contains(" Active / Total Objects (% used)    : 553 / 1150 (48.1%)"), "{f}");
        assert!(f.contains(" Active / Total Caches (% used)     : 9 / 14 (64.3%)"), "{f}");
        assert!(f.contains(" Minimum / Average / Maximum Object : 0.01K / 1.17K / 8.00K"), "{f}");
        // The largest cache first: rkmalloc-4k, one slab of 8 pages.
        let rows: Vec<&str> = f.lines().skip_while(|l| !l.contains("OBJ/SLAB")).skip(1).collect();
        assert_eq!(rows[0], "     8      1  12%    4.00K      1        8        32K rkmalloc-4k");
        assert!(rows.contains(&"   128     70  54%    0.06K      2       64         8K rkmalloc-64"), "{rows:#?}");
        assert!(f.contains("heaps: 2\n") && f.contains("arenas: 1\n"));
        assert!(
            f.contains(
                "    3 best-fit         -        1     65536      4160     61120     49664    46   187     16       40       24      0 ok"
            ),
            "{f}"
        );
        assert!(f.contains("    5 segregated-fit   debug"), "{f}");
        assert!(
            f.contains("    1    1     65536      3072      120     62464     62344     12       40    37     1      2       2100"),
            "{f}"
        );
    }

    #[test]
    fn sorts_like_slabtop() {
        let s = fixture();
        assert_eq!(names(&s, Sort::Active)[..3], ["rkmalloc-8", "rkmalloc-16", "rkmalloc-64"]);
        assert_eq!(names(&s, Sort::ObjSize)[0], "rkmalloc-8k");
        assert_eq!(names(&s, Sort::Name)[0], "fuzz-17");
        assert_eq!(names(&s, Sort::Objs)[0], "rkmalloc-8");
        assert_eq!(names(&s, Sort::Slabs)[..3], ["fuzz-17", "rkmalloc-64", "rkmalloc-128"]);
        assert_eq!(names(&s, Sort::Use)[..2], ["rkmalloc-8", "rkmalloc-64"]);
        assert_eq!(names(&s, Sort::PagesPerSlab)[..2], ["rkmalloc-4k", "rkmalloc-8k"]);
        for (k, want) in [(b'a', Sort::Active), (b'c', Sort::CacheSize), (b'n', Sort::Name), (b'u', Sort::Use)] {
            assert_eq!(Sort::of_key(k), Some(want));
        }
        assert_eq!(Sort::of_key(b'z'), None);
    }

    #[test]
    fn heap_and_arena_columns_are_read_by_name() {
        let mut s = fixture();
        let before = render(&s, Sort::Name);
        // The same heaps with their columns in reverse order, and an
        // arena file that lacks a column.
        let t = &s.heaps;
        let cols: Vec<String> = t.columns.iter().rev().cloned().collect();
        let rows: Vec<String> = t.rows.iter().map(|r| r.iter().rev().cloned().collect::<Vec<_>>().join(" ")).collect();
        s.heaps = Table::parse(&format!("# {}\n{}\n", cols.join(" "), rows.join("\n"))).unwrap();
        assert_eq!(render(&s, Sort::Name), before);
        s.arenas = Table::parse("# id live\n7 3\n").unwrap();
        let f = render(&s, Sort::Name);
        assert!(
            f.contains("    7    -         -         -        -         -         -      3        -     -     -      -          -"),
            "{f}"
        );
    }
}
