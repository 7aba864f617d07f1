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
    /// A function per command, returning its number.
    macro_rules! cmds {
        ($($f:ident => $s:ident),* $(,)?) => {$(
            /// The command number of the header's macro of that name.
            pub fn $f() -> u32 {
                // SAFETY: a constant defined in src/cmds.c, never written.
                unsafe { $s }
            }
        )*};
    }
    cmds!(info => rkctl_cmd_info, pool_alloc => rkctl_cmd_pool_alloc, free => rkctl_cmd_free, fill => rkctl_cmd_fill, verify => rkctl_cmd_verify, check => rkctl_cmd_check, pool_shrink => rkctl_cmd_pool_shrink, pool_stats => rkctl_cmd_pool_stats, cache_create => rkctl_cmd_cache_create, cache_destroy => rkctl_cmd_cache_destroy, obj_alloc => rkctl_cmd_obj_alloc, obj_free => rkctl_cmd_obj_free, malloc => rkctl_cmd_malloc, heap_create => rkctl_cmd_heap_create, heap_alloc => rkctl_cmd_heap_alloc, heap_reset => rkctl_cmd_heap_reset, heap_destroy => rkctl_cmd_heap_destroy, arena_alloc => rkctl_cmd_arena_alloc, arena_reset => rkctl_cmd_arena_reset, bench => rkctl_cmd_bench, replay => rkctl_cmd_replay, list => rkctl_cmd_list, allocators => rkctl_cmd_allocators, conform => rkctl_cmd_conform);

    /// The header's name of a command number (`RKALLOC_IOC_BENCH`), for
    /// messages; `"an unknown command"` for a number the header does not
    /// define.
    pub fn name(nr: u32) -> &'static str {
        let all: [(fn() -> u32, &'static str); 24] = [
            (info, "RKALLOC_IOC_INFO"),
            (pool_alloc, "RKALLOC_IOC_POOL_ALLOC"),
            (free, "RKALLOC_IOC_FREE"),
            (fill, "RKALLOC_IOC_FILL"),
            (verify, "RKALLOC_IOC_VERIFY"),
            (check, "RKALLOC_IOC_CHECK"),
            (pool_shrink, "RKALLOC_IOC_POOL_SHRINK"),
            (pool_stats, "RKALLOC_IOC_POOL_STATS"),
            (cache_create, "RKALLOC_IOC_CACHE_CREATE"),
            (cache_destroy, "RKALLOC_IOC_CACHE_DESTROY"),
            (obj_alloc, "RKALLOC_IOC_OBJ_ALLOC"),
            (obj_free, "RKALLOC_IOC_OBJ_FREE"),
            (malloc, "RKALLOC_IOC_MALLOC"),
            (heap_create, "RKALLOC_IOC_HEAP_CREATE"),
            (heap_alloc, "RKALLOC_IOC_HEAP_ALLOC"),
            (heap_reset, "RKALLOC_IOC_HEAP_RESET"),
            (heap_destroy, "RKALLOC_IOC_HEAP_DESTROY"),
            (arena_alloc, "RKALLOC_IOC_ARENA_ALLOC"),
            (arena_reset, "RKALLOC_IOC_ARENA_RESET"),
            (bench, "RKALLOC_IOC_BENCH"),
            (replay, "RKALLOC_IOC_REPLAY"),
            (list, "RKALLOC_IOC_LIST"),
            (allocators, "RKALLOC_IOC_ALLOCATORS"),
            (conform, "RKALLOC_IOC_CONFORM"),
        ];
        all.iter().find(|(f, _)| f() == nr).map_or("an unknown command", |&(_, n)| n)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn names_are_the_headers() {
            assert_eq!(super::name(super::conform()), "RKALLOC_IOC_CONFORM");
            assert_eq!(super::name(super::allocators()), "RKALLOC_IOC_ALLOCATORS");
            assert_eq!(super::name(super::info()), "RKALLOC_IOC_INFO");
            assert_eq!(super::name(0), "an unknown command");
        }

        #[test]
        fn new_commands_follow_list() {
            // _IOWR(0xB7, nr, struct): the number byte follows LIST's.
            assert_eq!(super::allocators() & 0xff, 0x16);
            assert_eq!(super::conform() & 0xff, 0x17);
            assert_eq!((super::conform() >> 8) & 0xff, crate::uapi::RKALLOC_IOC_MAGIC);
            assert_eq!((super::conform() >> 16) & 0x3fff, std::mem::size_of::<crate::uapi::rkalloc_conform>() as u32);
        }
    }
}
