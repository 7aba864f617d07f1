//! What the fuzzer knows about each command: its struct, which fields are
//! reserved, outputs or user pointers, how to fill it (structure-aware,
//! from the module's own tables and the fd's live handles), and what a
//! success changes in the fd's state.
use crate::uapi;
use std::mem::{offset_of, size_of};

/// Largest argument struct, in bytes (checked below).
pub const MAX_ARG: usize = 1024;

/// The user array an argument struct points to, if any, and which way the
/// kernel copies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `rkalloc_batch.handles` of OBJ_ALLOC: the kernel writes `count` handles.
    HandlesOut,
    /// `rkalloc_batch.handles` of OBJ_FREE: the kernel reads `count` handles.
    HandlesIn,
    /// `rkalloc_replay.ops`: the kernel reads `count` trace ops.
    OpsIn,
    /// `rkalloc_list.entries` / `rkalloc_allocators.entries`: the kernel
    /// writes min(max, count) entries of `esz` bytes.
    EntriesOut,
}

/// One command of the header.
pub struct Spec {
    /// The name without `RKALLOC_IOC_`, as in the "errors:" table.
    pub name: &'static str,
    /// Its command number.
    pub cmd: fn() -> u32,
    /// Its struct's size.
    pub size: usize,
    /// Offsets of reserved u32 fields.
    pub reserved: &'static [usize],
    /// u64 output fields: (name, offset, count); checked for kernel
    /// addresses after a success.
    pub outs: &'static [(&'static str, usize, usize)],
    /// Outputs where u64::MAX is a documented sentinel ("~0 when none").
    pub sentinels: &'static [&'static str],
    /// The user-pointer field, its role and element size.
    pub array: Option<(usize, Role, usize)>,
    /// Relative frequency among the commands. The slow ones (BENCH,
    /// CONFORM, CHECK, POOL_SHRINK: 25-110 ms a call on the default kernel
    /// under TCG; cache create and destroy, a few ms) are rarer.
    pub weight: u32,
    /// Formats the struct from its bytes (for failure reports).
    pub show: fn(&[u8]) -> String,
}

/// Reads a `T` from the first `size_of::<T>()` bytes of `b` (zero-padded).
pub fn from_bytes<T: Copy + Default>(b: &[u8]) -> T {
    let mut v = T::default();
    let n = b.len().min(size_of::<T>());
    // SAFETY: `T` is a bindgen UAPI struct of plain integers and integer
    // arrays, for which every bit pattern is valid; at most its size is
    // written, from a slice that has that many bytes.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), (&mut v as *mut T).cast::<u8>(), n) };
    v
}

/// The bytes of a UAPI struct.
pub fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: UAPI structs are #[repr(C)] plain integers without implicit
    // padding (bindgen's layout tests check their sizes against the
    // header), so all their bytes are initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A [`Spec`] from a UAPI struct's field names.
macro_rules! spec {
    ($name:literal, $cmd:ident, $t:ident, w = $w:expr,
     reserved = [$($r:ident),*], outs = [$($o:ident $([$n:expr])?),*], sentinels = [$($s:literal),*],
     array = $arr:expr) => {{
        type T = uapi::$t;
        Spec {
            name: $name,
            cmd: uapi::cmd::$cmd,
            size: size_of::<T>(),
            reserved: &[$(offset_of!(T, $r)),*],
            outs: &[$((stringify!($o), offset_of!(T, $o), 1 $(* 0 + $n)?)),*],
            sentinels: &[$($s),*],
            array: $arr,
            weight: $w,
            show: |b| format!("{:?}", from_bytes::<T>(b)),
        }
    }};
}

/// Every command of the header, in its order. The fuzzer's tests check
/// that this list and the header's "errors:" table name the same commands.
pub fn specs() -> Vec<Spec> {
    use uapi::*;
    const NO: usize = uapi::RKALLOC_NR_ORDERS as usize;
    vec![
        spec!(
            "INFO",
            info,
            rkalloc_info,
            w = 30,
            reserved = [reserved],
            outs = [pool_pages, pool_free_pages, fd_bytes, fd_cap_bytes],
            sentinels = [],
            array = None
        ),
        spec!("POOL_ALLOC", pool_alloc, rkalloc_pool_alloc, w = 100, reserved = [], outs = [handle], sentinels = [], array = None),
        spec!("FREE", free, rkalloc_free, w = 120, reserved = [reserved], outs = [], sentinels = [], array = None),
        spec!("FILL", fill, rkalloc_pattern, w = 40, reserved = [], outs = [bytes], sentinels = [], array = None),
        spec!(
            "VERIFY",
            verify,
            rkalloc_pattern,
            w = 40,
            reserved = [],
            outs = [bytes, mismatches, first_mismatch],
            sentinels = ["first_mismatch"],
            array = None
        ),
        spec!("CHECK", check, rkalloc_check, w = 1, reserved = [reserved], outs = [violations], sentinels = [], array = None),
        spec!(
            "POOL_SHRINK",
            pool_shrink,
            rkalloc_pool_shrink,
            w = 1,
            reserved = [reserved],
            outs = [released_pages],
            sentinels = [],
            array = None
        ),
        spec!(
            "POOL_STATS",
            pool_stats,
            rkalloc_pool_stats,
            w = 20,
            reserved = [],
            outs = [
                total_pages,
                free_pages,
                pcp_pages,
                high_water_pages,
                chunks_grown,
                chunks_shrunk,
                nr_free[NO],
                allocs[NO],
                frees[NO],
                splits[NO],
                merges[NO],
                failures[NO]
            ],
            sentinels = [],
            array = None
        ),
        spec!("CACHE_CREATE", cache_create, rkalloc_cache_create, w = 15, reserved = [], outs = [handle], sentinels = [], array = None),
        spec!("CACHE_DESTROY", cache_destroy, rkalloc_handle_op, w = 12, reserved = [reserved], outs = [], sentinels = [], array = None),
        spec!(
            "OBJ_ALLOC",
            obj_alloc,
            rkalloc_batch,
            w = 80,
            reserved = [],
            outs = [],
            sentinels = [],
            array = Some((offset_of!(rkalloc_batch, handles), Role::HandlesOut, 8))
        ),
        spec!(
            "OBJ_FREE",
            obj_free,
            rkalloc_batch,
            w = 60,
            reserved = [],
            outs = [],
            sentinels = [],
            array = Some((offset_of!(rkalloc_batch, handles), Role::HandlesIn, 8))
        ),
        spec!("MALLOC", malloc, rkalloc_malloc, w = 80, reserved = [reserved], outs = [handle], sentinels = [], array = None),
        spec!(
            "HEAP_CREATE",
            heap_create,
            rkalloc_heap_create,
            w = 25,
            reserved = [reserved],
            outs = [handle],
            sentinels = [],
            array = None
        ),
        spec!("HEAP_ALLOC", heap_alloc, rkalloc_heap_alloc, w = 80, reserved = [reserved], outs = [handle], sentinels = [], array = None),
        spec!("HEAP_RESET", heap_reset, rkalloc_handle_op, w = 15, reserved = [reserved], outs = [], sentinels = [], array = None),
        spec!("HEAP_DESTROY", heap_destroy, rkalloc_handle_op, w = 15, reserved = [reserved], outs = [], sentinels = [], array = None),
        spec!("ARENA_ALLOC", arena_alloc, rkalloc_arena_alloc, w = 50, reserved = [], outs = [handle], sentinels = [], array = None),
        spec!(
            "ARENA_RESET",
            arena_reset,
            rkalloc_arena_reset,
            w = 15,
            reserved = [reserved],
            outs = [bytes_reclaimed, allocations_reclaimed],
            sentinels = [],
            array = None
        ),
        spec!(
            "BENCH",
            bench,
            rkalloc_bench,
            w = 2,
            reserved = [reserved],
            outs = [
                total_ns,
                mean_ps,
                median_ps,
                min_ps,
                max_ps,
                failures,
                alloc_p50_ps,
                alloc_p99_ps,
                free_p50_ps,
                free_p99_ps,
                lat_overhead_ps
            ],
            sentinels = [],
            array = None
        ),
        spec!(
            "REPLAY",
            replay,
            rkalloc_replay,
            w = 10,
            reserved = [reserved],
            outs = [total_ns, peak_live_bytes, peak_footprint_bytes, internal_bytes_at_peak, metadata_bytes_at_peak],
            sentinels = [],
            array = Some((offset_of!(rkalloc_replay, ops), Role::OpsIn, size_of::<rkalloc_trace_op>()))
        ),
        spec!(
            "LIST",
            list,
            rkalloc_list,
            w = 8,
            reserved = [reserved],
            outs = [],
            sentinels = [],
            array = Some((offset_of!(rkalloc_list, entries), Role::EntriesOut, size_of::<rkalloc_list_entry>()))
        ),
        spec!(
            "ALLOCATORS",
            allocators,
            rkalloc_allocators,
            w = 15,
            reserved = [reserved],
            outs = [],
            sentinels = [],
            array = Some((offset_of!(rkalloc_allocators, entries), Role::EntriesOut, size_of::<rkalloc_allocator>()))
        ),
        spec!(
            "CONFORM",
            conform,
            rkalloc_conform,
            w = 2,
            reserved = [reserved],
            outs = [allocs, frees, failures, corrupt_blocks, bad_sizes, check_failures],
            sentinels = [],
            array = None
        ),
    ]
}

/// The u64 words of one element of a command's output array that the
/// kernel fills with values (not u32 pairs, which a sentinel such as
/// RKALLOC_NO_POLICY would make look like an address): what is checked
/// for kernel addresses. Names are checked too, word by word: text cannot
/// look like an address, padding left uninitialised can.
pub fn out_words(name: &str) -> &'static [usize] {
    use uapi::{rkalloc_allocator as A, rkalloc_list_entry as L};
    const LIST: [usize; 6] = [
        offset_of!(L, handle),
        offset_of!(L, bytes),
        offset_of!(L, name),
        offset_of!(L, name) + 8,
        offset_of!(L, name) + 16,
        offset_of!(L, name) + 24,
    ];
    const ALLOCATORS: [usize; 14] = {
        let mut w = [0; 14];
        w[0] = offset_of!(A, min_bytes);
        w[1] = offset_of!(A, max_bytes);
        let mut i = 0;
        // name, peer and policy_name: three arrays of 32 bytes, in a row.
        while i < 12 {
            w[2 + i] = offset_of!(A, name) + 8 * i;
            i += 1;
        }
        w
    };
    match name {
        "LIST" => &LIST,
        "ALLOCATORS" => &ALLOCATORS,
        _ => &[0],
    }
}

const _: () = assert!(
    offset_of!(uapi::rkalloc_allocator, peer) == offset_of!(uapi::rkalloc_allocator, name) + 32
        && offset_of!(uapi::rkalloc_allocator, policy_name) == offset_of!(uapi::rkalloc_allocator, name) + 64
);

const _: () = assert!(size_of::<uapi::rkalloc_pool_stats>() <= MAX_ARG && size_of::<uapi::rkalloc_bench>() <= MAX_ARG);

