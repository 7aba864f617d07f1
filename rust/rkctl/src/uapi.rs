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
        static rkctl_cmd_cache_create: u32;
        static rkctl_cmd_cache_destroy: u32;
        static rkctl_cmd_obj_alloc: u32;
        static rkctl_cmd_obj_free: u32;
        static rkctl_cmd_malloc: u32;
        static rkctl_cmd_heap_create: u32;
        static rkctl_cmd_heap_alloc: u32;
        static rkctl_cmd_heap_reset: u32;
        static rkctl_cmd_heap_destroy: u32;
        static rkctl_cmd_arena_alloc: u32;
        static rkctl_cmd_arena_reset: u32;
        static rkctl_cmd_bench: u32;
        static rkctl_cmd_replay: u32;
        static rkctl_cmd_list: u32;
        static rkctl_cmd_allocators: u32;
        static rkctl_cmd_conform: u32;
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
    cmds!(info => rkctl_cmd_info, pool_alloc => rkctl_cmd_pool_alloc, free => rkctl_cmd_free, fill => rkctl_cmd_fill, verify => rkctl_cmd_verify, check => rkctl_cmd_check, pool_shrink => rkctl_cmd_pool_shrink, pool_stats => rkctl_cmd_pool_stats, cache_create => rkctl_cmd_cache_create, cache_destroy => rkctl_cmd_cache_destroy, obj_alloc => rkctl_cmd_obj_alloc, obj_free => rkctl_cmd_obj_free, malloc => rkctl_cmd_malloc, heap_create => rkctl_cmd_heap_create, heap_alloc => rkctl_cmd_heap_alloc, heap_reset => rkctl_cmd_heap_reset, heap_destroy => rkctl_cmd_heap_destroy, arena_alloc => rkctl_cmd_arena_alloc, arena_reset => rkctl_cmd_arena_reset, bench => rkctl_cmd_bench, replay => rkctl_cmd_replay, list => rkctl_cmd_list);
    cmds!(allocators => rkctl_cmd_allocators, conform => rkctl_cmd_conform);
}
