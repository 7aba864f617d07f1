//! Is a call's outcome acceptable? The header's "errors:" table (parsed at
//! build time), the header's conventions where the fuzzer knows a call is
//! bad, and the outputs of a success (no kernel address, nothing written
//! beyond what the call reports).
use super::spec::{Role, Spec};
use std::fmt::Write as _;

include!(concat!(env!("OUT_DIR"), "/errtable.rs"));

/// What the fuzzer knows about a call before it is issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Nothing: 0 or any errno the table lists for the command.
    Table,
    /// It must fail, with an errno the table lists: its result cannot be
    /// written back (read-only argument), a reserved field is set, it
    /// names another fd's handle, or the user array it needs is not
    /// accessible.
    Fail,
    /// Exactly this errno: ENOTTY for a command number the header does
    /// not define, EFAULT for an argument the kernel cannot read, EINVAL
    /// for a size field no version of the struct has.
    Errno(i32),
    /// It must succeed (the fuzzer's own well-formed CHECK).
    Success,
}

/// The errnos the header documents for `command`, or None when it has no
/// row (a number the header does not define).
pub fn documented(command: &str) -> Option<&'static [(&'static str, i32)]> {
    ERRNO_TABLE.iter().find(|(c, _)| *c == command).map(|(_, e)| *e)
}

/// The name of an errno as rkctl spells it (`EINVAL`), and `0` for
/// success (the histogram's first column).
pub fn errno_name(e: i32) -> String {
    if e == 0 {
        "0".into()
    } else {
        crate::device::errno_name(e)
    }
}

/// Errno names, space separated.
fn names(v: &[(&str, i32)]) -> String {
    v.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" ")
}

/// Judges a result: Ok(()) when acceptable, else why not. `command` is
/// the header's name of the number issued, None for a number it does not
/// define. EUCLEAN is never acceptable: the fuzzer cannot damage a heap's
/// tags or a block through the ioctls, so any report of damage is the
/// module's fault.
pub fn judge(command: Option<&str>, expect: Expect, errno: i32) -> Result<(), String> {
    let Some(command) = command else {
        return if errno == libc::ENOTTY {
            Ok(())
        } else {
            Err(format!("a command number the header does not define returned {}, not ENOTTY", errno_name(errno)))
        };
    };
    let Some(doc) = documented(command) else {
        return Err(format!("{command} has no row in the header's errors: table"));
    };
    if errno == libc::EUCLEAN {
        return Err(format!("{command} reported damage (EUCLEAN)"));
    }
    if errno != 0 && !doc.iter().any(|&(_, e)| e == errno) {
        return Err(format!("{command} returned {}, which the header does not list (errors: {})", errno_name(errno), names(doc)));
    }
    match expect {
        Expect::Table => Ok(()),
        Expect::Fail if errno == 0 => Err(format!("{command} succeeded but had to fail")),
        Expect::Fail => Ok(()),
        Expect::Errno(e) if errno == e => Ok(()),
        Expect::Errno(e) => Err(format!("{command} returned {}, expected {}", errno_name(errno), errno_name(e))),
        Expect::Success if errno == 0 => Ok(()),
        Expect::Success => Err(format!("{command} returned {}, expected success", errno_name(errno))),
    }
}

/// Whether a value looks like a kernel address (the upper half of the
/// x86-64 address space, where the kernel's direct map, vmalloc area and
/// text live).
pub fn kernel_like(v: u64) -> bool {
    v >= 0xffff_8000_0000_0000
}

/// The little-endian u64 at `off`, if `b` holds it.
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    b.get(off..off + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or_default()))
}

/// The output fields of a successful call's struct `out` that look like
/// kernel addresses (documented ~0 sentinels aside).
pub fn leaks_in_struct(spec: &Spec, out: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for &(name, off, n) in spec.outs {
        for i in 0..n {
            let Some(x) = u64_at(out, off + 8 * i) else { continue };
            if kernel_like(x) && !(x == u64::MAX && spec.sentinels.contains(&name)) {
                v.push(if n > 1 { format!("{name}[{i}] = {x:#x}") } else { format!("{name} = {x:#x}") });
            }
        }
    }
    v
}

/// Checks what the kernel wrote to a user array of a successful call:
/// `window` starts at the array and runs to the end of our area, filled
/// with `canary` beforehand. `written` is how many elements the call says
/// it wrote. The u64 `words` of each element (offsets) must not look like
/// a kernel address, and
/// nothing after them may have changed. For OBJ_ALLOC's handles, they must
/// also be distinct and non-zero.
pub fn check_array(role: Role, esz: usize, words: &[usize], window: &[u8], written: usize, canary: u8) -> Vec<String> {
    let mut v = Vec::new();
    let n = (written * esz).min(window.len());
    for (i, e) in window[..n].chunks_exact(esz).enumerate() {
        for &off in words {
            if let Some(x) = u64_at(e, off).filter(|&x| kernel_like(x)) {
                v.push(format!("element {i} at byte {off}: {x:#x} looks like a kernel address"));
            }
        }
    }
    if let Some(p) = window[n..].iter().position(|&b| b != canary) {
        v.push(format!("wrote past the {written} elements it reported, at byte {} of the array", n + p));
    }
    if role == Role::HandlesOut {
        let mut hs: Vec<u64> = window[..n].chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default())).collect();
        if hs.contains(&0) {
            v.push("a handle of 0".into());
        }
        hs.sort_unstable();
        if hs.windows(2).any(|w| w[0] == w[1]) {
            v.push("the same handle twice".into());
        }
    }
    v
}

/// A short description of an errno list, for the report.
pub fn table_text() -> String {
    let mut s = String::new();
    for (c, e) in ERRNO_TABLE {
        let _ = writeln!(s, "{c:<14} {}", names(e));
    }
    s
}
