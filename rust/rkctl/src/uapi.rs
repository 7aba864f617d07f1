//! The ioctl contract, generated from `include/uapi/rkalloc.h` by build.rs.
#![allow(
    dead_code,
    non_camel_case_types,
    non_upper_case_globals,
    clippy::all
)]
include!(concat!(env!("OUT_DIR"), "/uapi.rs"));

/// Command numbers, compiled from the header's macros (src/cmds.c).
pub mod cmd {
    extern "C" {
        static rkctl_cmd_info: u32;
        static rkctl_cmd_pool_alloc: u32;
        static rkctl_cmd_free: u32;
        static rkctl_cmd_fill: u32;
        static rkctl_cmd_verify: u32;
        static rkctl_cmd_check: u32;
        static rkctl_cmd_pool_shrink: u32;
        static rkctl_cmd_pool_stats: u32;
    }
    macro_rules! cmds {
        ($($f:ident => $s:ident),* $(,)?) => {$(
            /// The command number of the header's macro of that name.
            pub fn $f() -> u32 {
                // SAFETY: a constant defined in src/cmds.c, never written.
                unsafe { $s }
            }
        )*};
    }
    cmds!(info => rkctl_cmd_info, pool_alloc => rkctl_cmd_pool_alloc, free => rkctl_cmd_free,
          fill => rkctl_cmd_fill, verify => rkctl_cmd_verify, check => rkctl_cmd_check,
          pool_shrink => rkctl_cmd_pool_shrink, pool_stats => rkctl_cmd_pool_stats);
}
