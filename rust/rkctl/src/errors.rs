//! `rkctl errors`: exercises every documented error path of the UAPI and
//! checks the errno, and that the failed call changed nothing.
use crate::{device::Device, uapi};
use anyhow::Result;
use serde::Serialize;
use std::{io, path::Path};

#[derive(Serialize)]
pub struct Case {
    pub name: &'static str,
    pub expected: &'static str,
    pub got: String,
    pub ok: bool,
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ENOTTY => "ENOTTY",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::EFAULT => "EFAULT",
        libc::ENOMEM => "ENOMEM",
        libc::E2BIG => "E2BIG",
        libc::EUCLEAN => "EUCLEAN",
        _ => "other",
    }
}

fn outcome(r: io::Result<()>) -> String {
    match r {
        Ok(()) => "success".into(),
        Err(e) => errno_name(e.raw_os_error().unwrap_or(0)).into(),
    }
}

/// A raw ioctl with an arbitrary command and argument pointer.
fn raw(dev: &Device, cmd: u32, arg: usize) -> io::Result<()> {
    // SAFETY: the kernel validates `arg`; a bad pointer yields EFAULT, which
    // is what some cases test. No memory of ours is written unless `arg`
    // points at a live struct of the command's size.
    let rc = unsafe { libc::ioctl(dev.raw_fd(), cmd as _, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Pool state that a failed call must leave as it was.
fn snapshot(dev: &Device) -> Result<(u64, u64)> {
    let i = dev.info()?;
    let s = dev.pool_stats()?;
    Ok((i.fd_bytes, s.total_pages - s.free_pages))
}

pub fn run(path: &Path) -> Result<Vec<Case>> {
    let dev = Device::open(path)?;
    let other = Device::open(path)?;
    let mut cases = Vec::new();
    let mut case = |name, expected: &'static str, r: io::Result<()>| {
        let got = outcome(r);
        cases.push(Case { name, ok: got == expected, expected, got });
    };

    let h = dev.pool_alloc(0)?;
    let before = snapshot(&dev)?;

    // Unknown command: a number in our magic the header does not define.
    let unknown = (3u32 << 30) | (8 << 16) | (uapi::RKALLOC_IOC_MAGIC << 8) | 0x7f;
    let mut buf = [0u64; 1];
    case("unknown command", "ENOTTY", raw(&dev, unknown, buf.as_mut_ptr() as usize));

    let mut info = uapi::rkalloc_info { size: 4, ..Default::default() };
    case("wrong size field", "EINVAL", raw(&dev, uapi::cmd::info(), &mut info as *mut _ as usize));
    case("bad user pointer", "EFAULT", raw(&dev, uapi::cmd::info(), 0x10));

    let mut fr = uapi::rkalloc_free { handle: h, reserved: 1, ..Default::default() };
    fr.size = std::mem::size_of_val(&fr) as u32;
    case("non-zero reserved field", "EINVAL", raw(&dev, uapi::cmd::free(), &mut fr as *mut _ as usize));

    case("order above max", "EINVAL", dev.pool_alloc(11).map(|_| ()));
    case("order far above max", "EINVAL", dev.pool_alloc(u32::MAX).map(|_| ()));
    case("another fd's handle", "EINVAL", other.free(h));
    case("unknown handle (unused index)", "ENOENT", dev.free(h + (1000 << 16)));
    case("verify of unknown handle", "ENOENT", dev.verify(h + (77 << 16), 1).map(|_| ()));
    let after = snapshot(&dev)?;
    case("failed calls changed nothing", "success", if before == after { Ok(()) } else { Err(io::Error::from_raw_os_error(libc::EIO)) });

    case("free", "success", dev.free(h));
    case("double free", "EINVAL", dev.free(h));
    case("verify after free", "EINVAL", dev.verify(h, 1).map(|_| ()));

    // The per-fd cap: fill it with top-order blocks until ENOMEM.
    let cap = dev.info()?.fd_cap_bytes;
    let mut held = Vec::new();
    let mut last = Ok(());
    for _ in 0..=(cap >> 22) + 1 {
        match dev.pool_alloc(10) {
            Ok(h) => held.push(h),
            Err(e) => {
                last = Err(e);
                break;
            }
        }
    }
    case("allocation beyond the per-fd cap", "ENOMEM", last);
    let i = dev.info()?;
    case(
        "cap honoured",
        "success",
        if i.fd_bytes <= cap && i.fd_bytes + (4 << 20) > cap { Ok(()) } else { Err(io::Error::from_raw_os_error(libc::EIO)) },
    );
    case("other fds unaffected by the cap", "success", other.pool_alloc(0).map(|_| ()));
    for h in held {
        dev.free(h)?;
    }
    case("invariants hold", "success", dev.check());
    Ok(cases)
}
