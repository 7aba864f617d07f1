//! rkctl's failures and the exit status each one gives.
//!
//! Every subcommand returns `anyhow::Result`; what kind of failure an error
//! is travels inside it, so `main` can turn it into an exit status:
//!
//! - an [`Error`] (made by [`usage`], [`system`], [`refused`],
//!   [`corruption`], or attached with [`ResultExt::class`]) names its
//!   [`Class`] itself;
//! - otherwise an [`Errno`] anywhere in the chain is an ioctl of
//!   `/dev/rkalloc` that failed in a way the command did not handle:
//!   [`Class::Refused`], or [`Class::Corruption`] for `EUCLEAN` (an
//!   invariant checker or a debug heap found damage);
//! - anything else (a file rkctl could not write, a thread that could not
//!   start) is [`Class::System`].
//!
//! The outermost class wins, so a command can reclassify what a helper
//! returned.
use crate::device::Errno;
use std::fmt;

/// What kind of failure ended rkctl, as its exit status tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Bad arguments (clap's own parse errors too) or an input file that
    /// cannot be read or is malformed.
    Usage,
    /// rkctl cannot do its work: `/dev/rkalloc` missing or not
    /// accessible, a module of another ABI version, an output file that
    /// cannot be written.
    System,
    /// The kernel refused: an ioctl returned an errno the command did not
    /// expect, or its answers deviate from the documented contract
    /// (`rkctl errors`, `rkctl heap` steps, a table that breaks its rules).
    Refused,
    /// Data corruption found: a pattern that changed while its allocation
    /// was live, `EUCLEAN` from an invariant checker, `CONFORM` or a
    /// debug heap.
    Corruption,
}

/// Exit status of a successful run.
pub const EXIT_OK: u8 = 0;

impl Class {
    /// The exit status. 2 is never used: it is clap's usual status for a
    /// usage error, which rkctl reports as 1 like its own usage errors, so
    /// a script never has to tell two meanings of 2 apart.
    pub const fn exit_code(self) -> u8 {
        match self {
            Class::Usage => 1,
            Class::Refused => 3,
            Class::Corruption => 4,
            Class::System => 5,
        }
    }
}

/// The exit statuses, for `rkctl --help` and the documentation of main.rs.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  usage: bad arguments, or an input file that cannot be read or is malformed
  3  the kernel refused: an ioctl returned an errno the command did not expect,
     or the module's answers deviate from include/uapi/rkalloc.h
  4  data corruption: a verify mismatch, EUCLEAN from CHECK, CONFORM or a debug
     heap, or corruption found by stress
  5  rkctl cannot run: /dev/rkalloc missing or not accessible (root only), a
     module of another ABI version, an output file that cannot be written
(2 is never used. Output into a pipe closed early, as in `rkctl ... | head`,
ends rkctl by SIGPIPE, which shells report as 141.)";

/// An error that knows its class.
#[derive(Debug)]
pub struct Error {
    class: Class,
    msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// An [`Error`] of `class` as an `anyhow::Error`.
fn new(class: Class, msg: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Error { class, msg: msg.to_string() })
}

/// A usage error: bad arguments or input.
pub fn usage(msg: impl fmt::Display) -> anyhow::Error {
    new(Class::Usage, msg)
}

/// rkctl cannot run (device, ABI version, output files).
pub fn system(msg: impl fmt::Display) -> anyhow::Error {
    new(Class::System, msg)
}

/// The kernel refused or deviates from its contract.
pub fn refused(msg: impl fmt::Display) -> anyhow::Error {
    new(Class::Refused, msg)
}

/// Data corruption was found.
pub fn corruption(msg: impl fmt::Display) -> anyhow::Error {
    new(Class::Corruption, msg)
}

/// Attaches a class (and a message) to any failure.
pub trait ResultExt<T> {
    /// On error, classifies it as `class`, with `msg` in front of the
    /// original error.
    fn class(self, class: Class, msg: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E> ResultExt<T> for Result<T, E>
where
    E: Into<anyhow::Error>,
{
    fn class(self, class: Class, msg: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| e.into().context(Error { class, msg: msg() }))
    }
}

/// The class of an error: the outermost [`Error`], else an [`Errno`] in
/// the chain, else [`Class::System`].
pub fn classify(e: &anyhow::Error) -> Class {
    // downcast_ref sees through anyhow's context layers, outermost first.
    if let Some(m) = e.downcast_ref::<Error>() {
        return m.class;
    }
    for cause in e.chain() {
        if let Some(m) = cause.downcast_ref::<Error>() {
            return m.class;
        }
        if let Some(n) = cause.downcast_ref::<Errno>() {
            return n.class();
        }
    }
    Class::System
}

impl Errno {
    /// An ioctl's unhandled errno: corruption for `EUCLEAN`, else the
    /// kernel refused.
    pub fn class(&self) -> Class {
        if self.errno == libc::EUCLEAN {
            Class::Corruption
        } else {
            Class::Refused
        }
    }
}

/// The exit status of a clap parse error: 0 for `--help` and `--version`
/// (clap reports them as errors too), [`Class::Usage`] for everything else.
pub fn clap_exit_code(e: &clap::Error) -> u8 {
    if e.exit_code() == 0 {
        EXIT_OK
    } else {
        Class::Usage.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn errno(e: i32) -> Errno {
        Errno { cmd: crate::uapi::cmd::bench(), errno: e }
    }

    #[test]
    fn exit_codes_are_distinct_and_never_2() {
        let all = [Class::Usage, Class::System, Class::Refused, Class::Corruption];
        let mut codes: Vec<u8> = all.iter().map(|c| c.exit_code()).collect();
        assert_eq!(codes, [1, 5, 3, 4]);
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(!codes.contains(&2) && !codes.contains(&EXIT_OK));
        // The help text names every code.
        for c in all {
            assert!(EXIT_CODES_HELP.contains(&format!("\n  {}  ", c.exit_code())), "{c:?} undocumented");
        }
    }

    #[test]
    fn markers_classify() {
        assert_eq!(classify(&usage("bad --cpus")), Class::Usage);
        assert_eq!(classify(&system("no device")), Class::System);
        assert_eq!(classify(&refused("deviates")), Class::Refused);
        assert_eq!(classify(&corruption("3 bytes differ")), Class::Corruption);
        // Context on top keeps the class.
        assert_eq!(classify(&usage("x").context("while parsing")), Class::Usage);
    }

    #[test]
    fn ioctl_errnos_classify_by_errno() {
        let e: anyhow::Error = errno(libc::ENOMEM).into();
        assert_eq!(classify(&e), Class::Refused);
        let e: anyhow::Error = errno(libc::EUCLEAN).into();
        assert_eq!(classify(&e), Class::Corruption);
        // Under one or two layers of context.
        let r: Result<(), Errno> = Err(errno(libc::EINVAL));
        let e = r.context("bench rk_pool").context("rkctl bench").unwrap_err();
        assert_eq!(classify(&e), Class::Refused);
        let r: Result<(), Errno> = Err(errno(libc::EUCLEAN));
        let e = r.context("check").unwrap_err();
        assert_eq!(classify(&e), Class::Corruption);
    }

    #[test]
    fn the_outermost_class_wins() {
        // An ioctl error that the command calls corruption.
        let r: Result<(), Errno> = Err(errno(libc::EINVAL));
        let e = r.class(Class::Corruption, || "verify".into()).unwrap_err();
        assert_eq!(classify(&e), Class::Corruption);
        // A usage error reclassified by a caller.
        let e = Err::<(), _>(usage("inner")).class(Class::System, || "outer".into()).unwrap_err();
        assert_eq!(classify(&e), Class::System);
        assert_eq!(format!("{e:#}"), "outer: inner");
    }

    #[test]
    fn everything_else_is_system() {
        let e: anyhow::Error = std::io::Error::from_raw_os_error(libc::ENOSPC).into();
        assert_eq!(classify(&e), Class::System);
        assert_eq!(classify(&anyhow::anyhow!("plain")), Class::System);
        let r: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ENOENT));
        let e = r.class(Class::Usage, || "cannot read trace".into()).unwrap_err();
        assert_eq!(classify(&e), Class::Usage);
    }

    #[test]
    fn clap_errors_exit_1_and_help_exits_0() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct T {
            #[arg(long)]
            n: u32,
        }
        let e = T::try_parse_from(["t", "--n", "x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2, "clap's own status");
        assert_eq!(clap_exit_code(&e), 1);
        let e = T::try_parse_from(["t", "--help"]).unwrap_err();
        assert_eq!(clap_exit_code(&e), 0);
    }
}
