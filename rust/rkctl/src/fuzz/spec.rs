//! What the fuzzer knows about each command: its struct, which fields are
//! reserved, outputs or user pointers, how to fill it (structure-aware,
//! from the module's own tables and the fd's live handles), and what a
//! success changes in the fd's state.
use super::mem::Ptr;
use crate::uapi;
use rand::{rngs::SmallRng, Rng, SeedableRng};
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

/// One allocator of the module's table, as far as the fuzzer cares.
#[derive(Clone, Debug, Default)]
pub struct Alloc {
    /// RKALLOC_ALLOCATOR_* flags.
    pub flags: u32,
    /// Smallest request it serves.
    pub min: u64,
    /// Largest request it serves.
    pub max: u64,
}

/// What the fuzzer learnt about the module before the run.
#[derive(Clone, Debug)]
pub struct Env {
    /// Highest pool order (INFO).
    pub max_order: u32,
    /// PAGE_SIZE (INFO).
    pub page_size: u64,
    /// Fit policies (INFO).
    pub nr_policies: u32,
    /// The allocator table (ALLOCATORS), by id.
    pub allocators: Vec<Alloc>,
    /// The per-fd cap (INFO).
    pub fd_cap: u64,
    /// Bytes one fd may hold before the fuzzer prefers frees.
    pub budget: u64,
}

#[cfg(test)]
impl Env {
    /// A plausible module, for host tests.
    pub fn example() -> Self {
        let a = |_class: u32, flags, min, max| Alloc { flags, min, max };
        Env {
            max_order: 10,
            page_size: 4096,
            nr_policies: 4,
            allocators: vec![
                a(uapi::RKALLOC_CLASS_PAGES, 0, 1, 4 << 20),
                a(uapi::RKALLOC_CLASS_OBJECTS, 0, 1, 8192),
                a(uapi::RKALLOC_CLASS_MALLOC, uapi::RKALLOC_ALLOCATOR_KERNEL, 1, 4 << 20),
                a(uapi::RKALLOC_CLASS_HEAP, uapi::RKALLOC_ALLOCATOR_OWN_FRAG, 1, 1 << 20),
                a(uapi::RKALLOC_CLASS_ARENA, uapi::RKALLOC_ALLOCATOR_FREES_ALL, 1, 1 << 20),
            ],
            fd_cap: 256 << 20,
            budget: 16 << 20,
        }
    }
}

/// What a handle names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A pool block.
    Pool,
    /// An object of a slab cache.
    Object,
    /// `rk_malloc` memory.
    Malloc,
    /// A block of a heap.
    HeapBlock,
    /// An arena allocation.
    Arena,
    /// A slab cache.
    Cache,
    /// A heap.
    Heap,
}

/// The number of [`Kind`]s.
const KINDS: usize = 7;
/// Memory a FREE takes.
const FREEABLE: &[Kind] = &[Kind::Pool, Kind::Object, Kind::Malloc, Kind::HeapBlock];
/// Memory FILL and VERIFY take.
const MEMORY: &[Kind] = &[Kind::Pool, Kind::Object, Kind::Malloc, Kind::HeapBlock, Kind::Arena];

/// A handle the fd holds, as far as the fuzzer knows.
#[derive(Clone, Copy, Debug)]
pub struct Held {
    /// The handle.
    pub handle: u64,
    /// Bytes it holds (caches: their object size).
    pub bytes: u64,
    /// The cache or heap it came from, else 0.
    pub parent: u64,
}

/// The fuzzer's picture of one fd: the handles it made and has not freed,
/// and some it freed. Exact for a single thread; with several threads on
/// one fd it may be stale, which only makes some calls fail that were
/// meant to succeed.
#[derive(Default, Debug)]
pub struct Tracked {
    /// Live handles, by [`Kind`].
    held: [Vec<Held>; KINDS],
    /// Recently freed handles (a ring).
    stale: Vec<u64>,
    /// Approximate bytes held.
    pub bytes: u64,
}

/// Most handles of one kind the fuzzer keeps track of.
const MAX_TRACKED: usize = 256;
/// Most freed handles the fuzzer remembers.
const MAX_STALE: usize = 64;

impl Tracked {
    /// Live handles of kind `k`.
    fn of(&self, k: Kind) -> &[Held] {
        &self.held[k as usize]
    }

    /// Handles of any kind, for retiring an fd.
    pub fn all(&self) -> impl Iterator<Item = u64> + '_ {
        self.held.iter().flatten().map(|h| h.handle)
    }

    /// Records a new handle.
    pub fn add(&mut self, k: Kind, h: Held) {
        let v = &mut self.held[k as usize];
        if v.len() >= MAX_TRACKED {
            // Forgotten, not freed: it goes with the fd.
            let old = v.remove(0);
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
        // A cache's `bytes` is its object size, not memory it holds.
        self.bytes = self.bytes.saturating_add(if k == Kind::Cache { 0 } else { h.bytes });
        v.push(h);
    }

    /// Forgets `handle` (freed); returns what it was.
    pub fn remove(&mut self, handle: u64) -> Option<(Kind, Held)> {
        for (i, v) in self.held.iter_mut().enumerate() {
            if let Some(p) = v.iter().position(|h| h.handle == handle) {
                let h = v.swap_remove(p);
                let k = KIND_OF[i];
                if k != Kind::Cache {
                    self.bytes = self.bytes.saturating_sub(h.bytes);
                }
                self.push_stale(handle);
                return Some((k, h));
            }
        }
        None
    }

    /// Forgets every handle of kind `k` whose parent is `parent` (or all
    /// of them, for `None`).
    pub fn remove_children(&mut self, k: Kind, parent: Option<u64>) {
        let v = std::mem::take(&mut self.held[k as usize]);
        for h in v {
            if parent.is_none_or(|p| p == h.parent) {
                self.bytes = self.bytes.saturating_sub(h.bytes);
                self.push_stale(h.handle);
            } else {
                self.held[k as usize].push(h);
            }
        }
    }

    /// Remembers a freed handle.
    fn push_stale(&mut self, h: u64) {
        if self.stale.len() >= MAX_STALE {
            self.stale.remove(0);
        }
        self.stale.push(h);
    }

    /// The object size of cache `cache`, or 64 when unknown.
    pub fn object_size(&self, cache: u64) -> u64 {
        self.of(Kind::Cache).iter().find(|c| c.handle == cache).map_or(64, |c| c.bytes.max(1))
    }

    /// Live handles of kind `k`.
    pub fn count(&self, k: Kind) -> usize {
        self.of(k).len()
    }
}

/// The [`Kind`] of each index of [`Tracked`]'s lists.
const KIND_OF: [Kind; KINDS] = [Kind::Pool, Kind::Object, Kind::Malloc, Kind::HeapBlock, Kind::Arena, Kind::Cache, Kind::Heap];

/// Where a handle in a call came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// A live handle of the fd, of a kind the command takes.
    Live,
    /// A live handle of the fd of another kind.
    OtherKind,
    /// A handle the fd freed.
    Stale,
    /// A live handle of another of the fuzzer's fds: must be refused.
    Foreign,
    /// A handle of an fd the fuzzer closed: must be refused.
    Dead,
    /// Made up: another index or generation of a live handle, or random.
    MadeUp,
    /// 0.
    Zero,
    /// u64::MAX.
    Max,
}

impl Src {
    /// A handle of another fd, which the header says only works on its
    /// own fd: a call that succeeds with it is a failure.
    pub fn must_refuse(self) -> bool {
        matches!(self, Src::Foreign | Src::Dead)
    }
}

/// What the generation may look at.
pub struct Ctx<'a> {
    /// The module's tables.
    pub env: &'a Env,
    /// The fd's handles.
    pub tr: &'a Tracked,
    /// Live handles of the fuzzer's other fds.
    pub foreign: &'a [u64],
    /// Handles of fds the fuzzer closed.
    pub dead: &'a [u64],
    /// A number for unique names.
    pub serial: u64,
}

/// The random choices of one thread, seeded.
pub struct Gen {
    /// The stream.
    rng: SmallRng,
}

/// `RKALLOC_MAX_BATCH` as u32 and usize.
const MB: u32 = uapi::RKALLOC_MAX_BATCH;

impl Gen {
    /// The generator of thread `thread` of a run seeded `seed`.
    pub fn new(seed: u64, thread: u64) -> Self {
        // splitmix64 of (seed, thread): distinct, well-mixed streams.
        let mut z = seed ^ thread.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Gen { rng: SmallRng::seed_from_u64(z ^ (z >> 31)) }
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.rng.gen_range(0..n)
    }

    /// A random u32.
    pub fn u32(&mut self) -> u32 {
        self.rng.gen()
    }

    /// A random u64.
    pub fn u64(&mut self) -> u64 {
        self.rng.gen()
    }

    /// A number in `lo..=hi` (`lo` when the range is empty).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if lo >= hi {
            lo
        } else {
            self.rng.gen_range(lo..=hi)
        }
    }

    /// One of `v` (not empty).
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }

    /// A small size, most often below a page, biased to small.
    fn small(&mut self) -> u64 {
        match self.below(10) {
            0..=5 => self.range(1, 256),
            6..=8 => self.range(257, 4096),
            _ => self.range(4097, 65536),
        }
    }

    /// A pool order: mostly small, sometimes any valid one, sometimes
    /// just above or far above max_order.
    pub fn order(&mut self, env: &Env, room: u64) -> u32 {
        let m = env.max_order;
        let any: u32 = self.rng.gen();
        let o = match self.below(100) {
            0..=69 => self.range(0, u64::from(m.min(3))) as u32,
            70..=84 => self.range(0, u64::from(m)) as u32,
            _ => self.pick(&[m, m + 1, m + 2, 31, 32, 63, 64, u32::MAX, 1 << 31, any]),
        };
        // Keep valid big blocks within the fd's budget.
        if o <= m && env.page_size << o > room {
            self.range(0, 1) as u32
        } else {
            o
        }
    }

    /// A size for an allocator whose range is [lo, hi]: mostly small and
    /// in range, sometimes at or beyond the edges of the range, the table
    /// of the module or u64.
    pub fn size(&mut self, env: &Env, lo: u64, hi: u64, room: u64) -> u64 {
        let s = if self.below(100) < 75 {
            self.small().clamp(lo.max(1), hi.max(1))
        } else {
            let a = if env.allocators.is_empty() { Alloc::default() } else { env.allocators[self.below(env.allocators.len())].clone() };
            let p = env.page_size;
            let any: u64 = self.rng.gen();
            self.pick(&[
                0,
                1,
                lo.saturating_sub(1),
                lo,
                hi,
                hi.saturating_add(1),
                p - 1,
                p,
                p + 1,
                8192,
                8193,
                u64::from(uapi::RKALLOC_MAX_MALLOC),
                u64::from(uapi::RKALLOC_MAX_MALLOC) + 1,
                u64::from(uapi::RKALLOC_MAX_HEAP_ALLOC),
                u64::from(uapi::RKALLOC_MAX_HEAP_ALLOC) + 1,
                a.min.saturating_sub(1),
                a.max,
                a.max.saturating_add(1),
                env.fd_cap,
                env.fd_cap + 1,
                1 << 31,
                1 << 32,
                1 << 63,
                u64::MAX,
                any,
            ])
        };
        // A valid size that would take the fd over its budget becomes small.
        if s >= lo && s <= hi && s > room {
            self.range(1, 64).clamp(lo.max(1), hi.max(1))
        } else {
            s
        }
    }

    /// A batch count: mostly small, sometimes the edges.
    pub fn count(&mut self) -> u32 {
        match self.below(100) {
            0..=59 => self.range(1, 8) as u32,
            60..=79 => self.range(1, 64) as u32,
            _ => self.pick(&[0, 1, 2, MB - 1, MB, MB + 1, MB * 2, 65536, 1 << 31, u32::MAX]),
        }
    }

    /// An allocator id: mostly valid, sometimes just past the table, or far.
    pub fn allocator(&mut self, env: &Env) -> u32 {
        let n = env.allocators.len() as u32;
        if n > 0 && self.below(100) < 85 {
            self.below(n as usize) as u32
        } else {
            self.pick(&[n, n + 1, 1 << 31, u32::MAX, uapi::RKALLOC_NO_POLICY])
        }
    }

    /// A fit policy: mostly valid, sometimes not.
    pub fn policy(&mut self, env: &Env) -> u32 {
        let n = env.nr_policies;
        if n > 0 && self.below(100) < 85 {
            self.below(n as usize) as u32
        } else {
            self.pick(&[n, n + 1, 1 << 31, u32::MAX, uapi::RKALLOC_NO_POLICY])
        }
    }

    /// An alignment: 0 (the default), powers of two up to a page and
    /// beyond, or not a power of two.
    pub fn align(&mut self) -> u32 {
        match self.below(100) {
            0..=39 => 0,
            40..=84 => 1 << self.below(13),
            _ => self.pick(&[3, 24, 48, 8192, 1 << 16, 1 << 31, u32::MAX]),
        }
    }

    /// Flags: mostly 0 or valid bits of `valid`, sometimes unknown bits.
    pub fn flags(&mut self, valid: u32) -> u32 {
        let any = self.u32();
        match self.below(100) {
            0..=59 => 0,
            60..=84 => any & valid,
            _ => self.pick(&[!valid, valid.wrapping_add(1).next_power_of_two(), 1 << 31, u32::MAX, any]),
        }
    }

    /// Where a user pointer points: mostly valid, sometimes not at all.
    pub fn ptr(&mut self) -> Ptr {
        match self.below(1000) {
            0..=899 => Ptr::Valid,
            900..=919 => Ptr::Misaligned,
            920..=939 => Ptr::ReadOnly,
            940..=949 => Ptr::Straddle,
            950..=959 => Ptr::Null,
            960..=969 => Ptr::Low,
            970..=979 => Ptr::Unmapped,
            980..=989 => {
                Ptr::Kernel(self.pick(&[0xffff_8880_0000_0000, 0xffff_ffff_8100_0000, 0xffff_c900_0000_0000, 0xffff_ffff_ffff_f000]))
            }
            _ => Ptr::NonCanonical(self.pick(&[0x0000_8000_0000_0000, 0x8000_0000_0000_0000, 0x0000_7fff_ffff_f000])),
        }
    }

    /// A handle for a field that takes one of `want`.
    pub fn handle(&mut self, cx: &Ctx, want: &[Kind]) -> (u64, Src) {
        let live: usize = want.iter().map(|&k| cx.tr.count(k)).sum();
        let r = self.below(100);
        if r < 60 && live > 0 {
            let mut i = self.below(live);
            for &k in want {
                let v = cx.tr.of(k);
                if i < v.len() {
                    return (v[i].handle, Src::Live);
                }
                i -= v.len();
            }
        }
        match r {
            60..=67 => {
                let k = KIND_OF[self.below(KINDS)];
                if let Some(h) = self.one(cx.tr.of(k)) {
                    return (h.handle, if want.contains(&k) { Src::Live } else { Src::OtherKind });
                }
            }
            68..=75 if !cx.tr.stale.is_empty() => return (self.pick(&cx.tr.stale), Src::Stale),
            76..=82 if !cx.foreign.is_empty() => return (self.pick(cx.foreign), Src::Foreign),
            83..=86 if !cx.dead.is_empty() => return (self.pick(cx.dead), Src::Dead),
            87..=89 => return (0, Src::Zero),
            90..=91 => return (u64::MAX, Src::Max),
            _ => {}
        }
        // Made up: another index or generation of one of ours, or random.
        let k = KIND_OF[self.below(KINDS)];
        let any: u64 = self.rng.gen();
        let base = self.one(cx.tr.of(k)).map_or(any, |h| h.handle);
        let h = match self.below(4) {
            0 => base.wrapping_add(self.range(1, 4096) << 16),
            1 => base ^ self.range(1, 0xffff),
            2 => base & !0xffff_ffff,
            _ => self.rng.gen(),
        };
        (h, Src::MadeUp)
    }

    /// One of `v`, if any.
    fn one<'a>(&mut self, v: &'a [Held]) -> Option<&'a Held> {
        (!v.is_empty()).then(|| &v[self.below(v.len())])
    }
}

/// An argument the generator drafted: the struct (its size field is set
/// later), the handles it used, and the user array it points to.
pub struct Draft {
    /// The struct's bytes.
    pub arg: [u8; MAX_ARG],
    /// Where the handles in it came from.
    pub srcs: Vec<Src>,
    /// The user array's content, where the kernel will access
    /// `array_access` bytes; `array_ptr` says where it goes.
    pub array: Vec<u8>,
    /// Bytes of the user array the kernel will access.
    pub array_access: usize,
    /// Where the user array goes.
    pub array_ptr: Ptr,
    /// For OBJ_FREE: handles in the array that must be refused (foreign).
    pub notes: Vec<&'static str>,
}

impl Draft {
    /// An empty draft.
    pub fn new() -> Self {
        Draft { arg: [0; MAX_ARG], srcs: Vec::new(), array: Vec::new(), array_access: 0, array_ptr: Ptr::Valid, notes: Vec::new() }
    }

    /// Empties the draft for the next call.
    fn clear(&mut self) {
        self.arg.fill(0);
        self.srcs.clear();
        self.array.clear();
        self.array_access = 0;
        self.array_ptr = Ptr::Valid;
        self.notes.clear();
    }

    /// Puts `v` at the start of the struct's bytes.
    fn put<T: Copy>(&mut self, v: &T) {
        let b = bytes_of(v);
        self.arg[..b.len()].copy_from_slice(b);
    }

    /// A handle for a field taking `want`, its origin recorded.
    fn handle(&mut self, g: &mut Gen, cx: &Ctx, want: &[Kind]) -> u64 {
        let (h, s) = g.handle(cx, want);
        self.srcs.push(s);
        h
    }
}

impl Default for Draft {
    fn default() -> Self {
        Self::new()
    }
}

/// How much the fd may still allocate before the budget.
fn room(cx: &Ctx) -> u64 {
    cx.env.budget.saturating_sub(cx.tr.bytes)
}

/// Fills `d` for the command `name` (a name of [`specs`]).
pub fn draft(name: &str, g: &mut Gen, cx: &Ctx, d: &mut Draft) {
    use uapi::*;
    d.clear();
    let env = cx.env;
    let room = room(cx);
    match name {
        "INFO" => d.put(&rkalloc_info::default()),
        "POOL_ALLOC" => d.put(&rkalloc_pool_alloc { order: g.order(env, room), ..Default::default() }),
        "FREE" => {
            let want = if g.below(10) == 0 { MEMORY } else { FREEABLE };
            let handle = d.handle(g, cx, want);
            d.put(&rkalloc_free { handle, ..Default::default() })
        }
        "FILL" | "VERIFY" => {
            let handle = d.handle(g, cx, MEMORY);
            let mut a = rkalloc_pattern { pattern: g.u32(), handle, ..Default::default() };
            if g.below(10) == 0 {
                // Outputs hold garbage on the way in; the kernel overwrites them.
                (a.bytes, a.mismatches, a.first_mismatch) = (g.u64(), g.u64(), g.u64());
            }
            d.put(&a)
        }
        "CHECK" => d.put(&rkalloc_check::default()),
        "POOL_SHRINK" => d.put(&rkalloc_pool_shrink::default()),
        "POOL_STATS" => {
            let flags = match g.below(10) {
                0..=6 => 0,
                7 | 8 => RKALLOC_STATS_RESET,
                _ => g.flags(RKALLOC_STATS_RESET) | 2,
            };
            d.put(&rkalloc_pool_stats { flags, ..Default::default() })
        }
        "CACHE_CREATE" => {
            let obj_size = match g.below(100) {
                0..=59 => g.range(8, 512) as u32,
                60..=79 => g.range(513, 8192) as u32,
                _ => g.pick(&[0, 1, 2, 4095, 4096, 8192, 8193, 1 << 16, 1 << 31, u32::MAX]),
            };
            let mut a = rkalloc_cache_create {
                obj_size,
                align: g.align(),
                flags: g.flags(RKALLOC_CACHE_RED_ZONE | RKALLOC_CACHE_POISON | RKALLOC_CACHE_DEBUG_CHECKS),
                ..Default::default()
            };
            let name: Vec<u8> = match g.below(100) {
                0..=84 => format!("fuzz-{}", cx.serial % 100_000).into_bytes(),
                85..=87 => Vec::new(),
                88..=90 => vec![b'a'; a.name.len()],
                91..=93 => b"fuzz cache".to_vec(),
                94..=96 => vec![b'f', 1, 0x7f, 0xff],
                _ => vec![b'n'; a.name.len() - 1],
            };
            for (dst, &s) in a.name.iter_mut().zip(&name) {
                *dst = s as _;
            }
            d.put(&a)
        }
        "CACHE_DESTROY" | "HEAP_RESET" | "HEAP_DESTROY" => {
            let want = if name == "CACHE_DESTROY" { &[Kind::Cache][..] } else { &[Kind::Heap][..] };
            let handle = d.handle(g, cx, want);
            d.put(&rkalloc_handle_op { handle, ..Default::default() })
        }
        "OBJ_ALLOC" => {
            let (cache, src) = g.handle(cx, &[Kind::Cache]);
            d.srcs.push(src);
            let obj = cx.tr.object_size(cache);
            let mut count = g.count();
            if count <= MB && u64::from(count) * obj > room {
                count = g.range(1, 4) as u32;
            }
            d.array_ptr = g.ptr();
            d.array_access = count as usize * 8;
            d.put(&rkalloc_batch { count, cache, ..Default::default() })
        }
        "OBJ_FREE" => {
            let objs = cx.tr.of(Kind::Object);
            let mut n = if objs.is_empty() { g.range(1, 3) as usize } else { g.range(1, objs.len().min(64) as u64) as usize };
            let start = if objs.is_empty() { 0 } else { g.below(objs.len()) };
            for i in 0..n {
                let h = match objs.get((start + i) % objs.len().max(1)) {
                    Some(o) if g.below(100) < 90 => {
                        d.srcs.push(Src::Live);
                        o.handle
                    }
                    _ => d.handle(g, cx, &[Kind::Object]),
                };
                d.array.extend_from_slice(&h.to_le_bytes());
            }
            if n > 1 && g.below(20) == 0 {
                // The same handle twice.
                let first: [u8; 8] = d.array[..8].try_into().unwrap_or_default();
                d.array[8..16].copy_from_slice(&first);
                d.notes.push("a handle twice");
            }
            let count = match g.below(100) {
                0..=89 => n as u32,
                90..=94 => {
                    // More than the array holds: the rest is canary bytes.
                    n += g.range(1, 4) as usize;
                    n as u32
                }
                _ => g.pick(&[0, MB + 1, 1 << 31, u32::MAX]),
            };
            d.array_ptr = g.ptr();
            d.array_access = count as usize * 8;
            let cache = if g.below(10) == 0 { g.u64() } else { 0 };
            d.put(&rkalloc_batch { count, cache, ..Default::default() })
        }
        "MALLOC" => {
            let bytes = g.size(env, 1, u64::from(RKALLOC_MAX_MALLOC), room);
            d.put(&rkalloc_malloc { bytes, ..Default::default() })
        }
        "HEAP_CREATE" => {
            let initial_bytes = match g.below(100) {
                0..=49 => 0,
                50..=79 => g.range(1, 256 << 10),
                _ => g.pick(&[1, env.page_size - 1, 4 << 20, (4 << 20) + 1, env.fd_cap + 1, 1 << 63, u64::MAX]),
            };
            let initial_bytes = if initial_bytes > room && initial_bytes <= env.fd_cap { 0 } else { initial_bytes };
            d.put(&rkalloc_heap_create { policy: g.policy(env), flags: g.flags(RKALLOC_HEAP_DEBUG), initial_bytes, ..Default::default() })
        }
        "HEAP_ALLOC" => {
            let heap = d.handle(g, cx, &[Kind::Heap]);
            let bytes = g.size(env, 1, u64::from(RKALLOC_MAX_HEAP_ALLOC), room);
            d.put(&rkalloc_heap_alloc { heap, bytes, ..Default::default() })
        }
        "ARENA_ALLOC" => {
            let bytes = g.size(env, 1, u64::from(RKALLOC_MAX_HEAP_ALLOC), room);
            d.put(&rkalloc_arena_alloc { bytes, align: g.align(), ..Default::default() })
        }
        "ARENA_RESET" => d.put(&rkalloc_arena_reset::default()),
        "BENCH" => d.put(&bench(g, env)),
        "REPLAY" => {
            let a = replay(g, env, d);
            d.put(&a)
        }
        "LIST" | "ALLOCATORS" => {
            let esz = if name == "LIST" { size_of::<rkalloc_list_entry>() } else { size_of::<rkalloc_allocator>() };
            let max = match g.below(100) {
                0..=14 => 0,
                15..=29 => 1,
                30..=59 => g.range(2, 16) as u32,
                60..=89 => g.range(17, 256) as u32,
                _ => g.pick(&[1023, 1024, 1 << 20, 1 << 31, u32::MAX]),
            };
            d.array_ptr = g.ptr();
            d.array_access = max as usize * esz;
            if name == "LIST" {
                d.put(&rkalloc_list { max, ..Default::default() })
            } else {
                d.put(&rkalloc_allocators { max, ..Default::default() })
            }
        }
        "CONFORM" => d.put(&conform(g, env)),
        _ => unreachable!("no generator for {name}"),
    }
}

/// A BENCH argument whose run stays short: at most a few thousand pairs,
/// and batch x bytes of at most 8 MiB when both are valid.
fn bench(g: &mut Gen, env: &Env) -> uapi::rkalloc_bench {
    let allocator = g.allocator(env);
    let (lo, hi) = env.allocators.get(allocator as usize).map_or((1, 4096), |a| (a.min, a.max));
    let bytes = g.size(env, lo, hi.min(64 << 10), u64::MAX);
    let pattern = if g.below(100) < 90 { g.below(5) as u32 } else { g.pick(&[5, 6, 1 << 31, u32::MAX]) };
    let mut batch = match g.below(100) {
        0..=79 => g.range(1, 64) as u32,
        _ => g.pick(&[0, 1, MB, MB + 1, u32::MAX]),
    };
    if (1..=MB).contains(&batch) && bytes <= u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) && u64::from(batch) * bytes > 8 << 20 {
        batch = ((8 << 20) / bytes.max(1)).clamp(1, 64) as u32;
    }
    let samples = match g.below(100) {
        0..=89 => g.range(1, 4) as u32,
        _ => g.pick(&[0, 1024, 1025, u32::MAX]),
    };
    let ops = match g.below(100) {
        0..=79 => g.range(1, 64),
        80..=89 => g.range(65, 512),
        _ => g.pick(&[0, (1 << 24) + 1, 1 << 40, u64::MAX]),
    };
    // Valid and large on both counts would run for seconds: keep it short.
    let mut ops =
        if (1..=1 << 24).contains(&ops) && (1..=1024).contains(&samples) { ops.min(4096 / u64::from(samples)).max(1) } else { ops };
    let mut samples = samples;
    if (1 << 20..=hi).contains(&bytes) {
        // Megabytes a pair (vmalloc, big page blocks): a handful of pairs.
        (ops, samples, batch) = (ops.min(2), samples.min(1), batch.min(1));
    }
    let flags = match g.below(100) {
        0..=74 => 0,
        75..=94 => uapi::RKALLOC_BENCH_LATENCY,
        _ => g.flags(uapi::RKALLOC_BENCH_LATENCY) | 2,
    };
    uapi::rkalloc_bench { allocator, pattern, batch, bytes, ops, samples, flags, ..Default::default() }
}

/// A REPLAY argument: a short trace, mostly valid, sometimes with one
/// defect the kernel must refuse before running anything.
fn replay(g: &mut Gen, env: &Env, d: &mut Draft) -> uapi::rkalloc_replay {
    use uapi::{RKALLOC_TRACE_ALLOC as A, RKALLOC_TRACE_FREE as F};
    let allocator = g.allocator(env);
    let (lo, hi) = env.allocators.get(allocator as usize).map_or((1, 4096), |a| (a.min.max(1), a.max.min(64 << 10)));
    let n = g.range(1, 16) as usize;
    let mut ops: Vec<uapi::rkalloc_trace_op> = Vec::with_capacity(n + 1);
    let mut live: Vec<u32> = Vec::new();
    let mut next = 0u32;
    for _ in 0..n {
        if !live.is_empty() && g.below(3) == 0 {
            let id = live.swap_remove(g.below(live.len()));
            ops.push(uapi::rkalloc_trace_op { op: F, id, size: 0 });
        } else {
            ops.push(uapi::rkalloc_trace_op { op: A, id: next, size: g.range(lo, hi.max(lo)) });
            live.push(next);
            next += 1;
        }
    }
    let mut max_id = next.max(1);
    if g.below(100) < 25 {
        let i = g.below(ops.len());
        let o = &mut ops[i];
        match g.below(8) {
            0 => *o = uapi::rkalloc_trace_op { op: F, id: next + 5, size: 0 },
            1 => o.id = max_id,
            2 => o.op = g.pick(&[2, 7, u32::MAX]),
            3 => *o = uapi::rkalloc_trace_op { op: A, id: o.id, size: 0 },
            4 => *o = uapi::rkalloc_trace_op { op: A, id: o.id, size: u64::from(uapi::RKALLOC_MAX_REPLAY_SIZE) + g.range(0, 1) },
            5 => *o = uapi::rkalloc_trace_op { op: F, id: o.id, size: g.range(1, 64) },
            6 => max_id = g.pick(&[0, uapi::RKALLOC_MAX_REPLAY_OPS + 1, u32::MAX]),
            _ => ops.push(ops[0]),
        }
    }
    for o in &ops {
        d.array.extend_from_slice(bytes_of(o));
    }
    let count = match g.below(100) {
        0..=89 => ops.len() as u32,
        90..=94 => ops.len() as u32 + g.range(1, 4) as u32,
        _ => g.pick(&[0, uapi::RKALLOC_MAX_REPLAY_OPS + 1, 1 << 31, u32::MAX]),
    };
    d.array_ptr = g.ptr();
    d.array_access = (count as usize).saturating_mul(size_of::<uapi::rkalloc_trace_op>());
    let flags = if g.below(20) == 0 { g.u32() } else { 0 };
    uapi::rkalloc_replay { allocator, count, max_id, flags, ..Default::default() }
}

/// A CONFORM argument whose run stays short.
fn conform(g: &mut Gen, env: &Env) -> uapi::rkalloc_conform {
    let allocator = g.allocator(env);
    let (amin, amax) = env.allocators.get(allocator as usize).map_or((1, 4096), |a| (a.min.max(1), a.max));
    let (mut lo, mut hi) = match g.below(100) {
        0..=49 => (0, 0),
        50..=79 => {
            let a = g.range(amin, amax.min(64 << 10));
            (a, g.range(a, amax.min(64 << 10)))
        }
        _ => g.pick(&[(2, 1), (amin, amax.saturating_add(1)), (0, amax), (amin, 0), (amax, amax), (1, u64::MAX), (u64::MAX, u64::MAX)]),
    };
    if g.below(10) == 0 {
        (lo, hi) = (lo.max(amin), hi.max(lo));
    }
    let mut ops = match g.below(100) {
        0..=89 => g.range(1, 64),
        _ => g.pick(&[0, (1 << 24) + 1, u64::MAX]),
    };
    let mut max_live = match g.below(100) {
        0..=89 => g.range(1, 16) as u32,
        _ => g.pick(&[0, MB, MB + 1, u32::MAX]),
    };
    if hi > 256 << 10 && hi <= amax {
        // Large blocks are filled and verified: few of them.
        ops = ops.min(8);
        max_live = max_live.min(2);
    }
    uapi::rkalloc_conform { allocator, ops, seed: g.u64(), lo, hi, max_live, ..Default::default() }
}

/// Why the header says a drafted call must fail, if it does: a parameter
/// outside the range the header documents for it ("EINVAL otherwise",
/// E2BIG). Only what the header states is checked; `array` is the user
/// array's content (REPLAY's ops).
pub fn invalid(name: &str, arg: &[u8], array: &[u8], env: &Env) -> Option<&'static str> {
    use uapi::*;
    let pow2 = |a: u32| a == 0 || (a.is_power_of_two() && a <= 4096);
    let alloc = |id: u32| env.allocators.get(id as usize);
    match name {
        "POOL_ALLOC" => (from_bytes::<rkalloc_pool_alloc>(arg).order > env.max_order).then_some("order above max_order"),
        "CACHE_CREATE" => {
            let a: rkalloc_cache_create = from_bytes(arg);
            if !(1..=8192).contains(&a.obj_size) {
                Some("obj_size not in 1..8192")
            } else if !pow2(a.align) {
                Some("align not 0 or a power of two up to 4096")
            } else if a.flags & !(RKALLOC_CACHE_RED_ZONE | RKALLOC_CACHE_POISON | RKALLOC_CACHE_DEBUG_CHECKS) != 0 {
                Some("unknown cache flags")
            } else if !a.name.contains(&0) {
                Some("name not NUL-terminated")
            } else {
                None
            }
        }
        "OBJ_ALLOC" | "OBJ_FREE" => {
            let c = from_bytes::<rkalloc_batch>(arg).count;
            (c == 0 || c > RKALLOC_MAX_BATCH).then_some("count not in 1..RKALLOC_MAX_BATCH")
        }
        "MALLOC" => (!(1..=u64::from(RKALLOC_MAX_MALLOC)).contains(&from_bytes::<rkalloc_malloc>(arg).bytes))
            .then_some("bytes not in 1..RKALLOC_MAX_MALLOC"),
        "HEAP_CREATE" => {
            let a: rkalloc_heap_create = from_bytes(arg);
            if a.policy >= env.nr_policies {
                Some("policy not below nr_policies")
            } else if a.flags & !RKALLOC_HEAP_DEBUG != 0 {
                Some("unknown heap flags")
            } else {
                None
            }
        }
        "HEAP_ALLOC" => (!(1..=u64::from(RKALLOC_MAX_HEAP_ALLOC)).contains(&from_bytes::<rkalloc_heap_alloc>(arg).bytes))
            .then_some("bytes not in 1..RKALLOC_MAX_HEAP_ALLOC"),
        "ARENA_ALLOC" => {
            let a: rkalloc_arena_alloc = from_bytes(arg);
            if !(1..=u64::from(RKALLOC_MAX_HEAP_ALLOC)).contains(&a.bytes) {
                Some("bytes not in 1..RKALLOC_MAX_HEAP_ALLOC")
            } else if !pow2(a.align) {
                Some("align not 0 or a power of two up to 4096")
            } else {
                None
            }
        }
        "BENCH" => {
            let b: rkalloc_bench = from_bytes(arg);
            match alloc(b.allocator) {
                None => Some("allocator not in the table"),
                Some(_) if b.pattern > RKALLOC_BENCH_CROSS_CPU => Some("unknown pattern"),
                Some(_) if !(1..=1 << 24).contains(&b.ops) => Some("ops not in 1..2^24"),
                Some(_) if !(1..=RKALLOC_MAX_SAMPLES).contains(&b.samples) => Some("samples not in 1..RKALLOC_MAX_SAMPLES"),
                Some(_) if b.pattern != RKALLOC_BENCH_PAIR && !(1..=RKALLOC_MAX_BATCH).contains(&b.batch) => {
                    Some("batch not in 1..RKALLOC_MAX_BATCH")
                }
                Some(a) if b.bytes < a.min || b.bytes > a.max => Some("bytes outside the allocator's range"),
                Some(a)
                    if a.flags & RKALLOC_ALLOCATOR_FREES_ALL != 0
                        && matches!(b.pattern, RKALLOC_BENCH_RANDOM_LIFE | RKALLOC_BENCH_CROSS_CPU) =>
                {
                    Some("an allocator that frees all at once with per-object lifetimes")
                }
                Some(_) => None,
            }
        }
        "CONFORM" => {
            let c: rkalloc_conform = from_bytes(arg);
            match alloc(c.allocator) {
                None => Some("allocator not in the table"),
                Some(_) if !(1..=1 << 24).contains(&c.ops) => Some("ops not in 1..2^24"),
                Some(_) if !(1..=RKALLOC_MAX_BATCH).contains(&c.max_live) => Some("max_live not in 1..RKALLOC_MAX_BATCH"),
                Some(_) if c.lo != 0 && c.hi != 0 && c.lo > c.hi => Some("lo above hi"),
                Some(a) if c.hi != 0 && c.hi > a.max => Some("hi above the allocator's max_bytes"),
                Some(_) => None,
            }
        }
        "REPLAY" => replay_invalid(&from_bytes(arg), array, env),
        _ => None,
    }
}

/// The header's checks of a REPLAY, where the ops the kernel reads are
/// all in `array` (else only the struct's fields are checked).
fn replay_invalid(r: &uapi::rkalloc_replay, array: &[u8], env: &Env) -> Option<&'static str> {
    use uapi::*;
    if r.count > RKALLOC_MAX_REPLAY_OPS {
        return Some("count above RKALLOC_MAX_REPLAY_OPS");
    }
    if r.count == 0 || r.max_id == 0 || r.max_id > RKALLOC_MAX_REPLAY_OPS {
        return Some("count or max_id 0, or max_id above RKALLOC_MAX_REPLAY_OPS");
    }
    let Some(a) = env.allocators.get(r.allocator as usize) else { return Some("allocator not in the table") };
    if a.flags & RKALLOC_ALLOCATOR_FREES_ALL != 0 {
        return Some("an allocator that frees all at once");
    }
    let esz = size_of::<rkalloc_trace_op>();
    let n = r.count as usize;
    if n * esz > array.len() {
        return None;
    }
    let mut live = vec![false; r.max_id as usize];
    for o in array[..n * esz].chunks_exact(esz).map(from_bytes::<rkalloc_trace_op>) {
        let Some(l) = live.get_mut(o.id as usize) else { return Some("an op's id at or above max_id") };
        match o.op {
            RKALLOC_TRACE_ALLOC if *l => return Some("an ALLOC of a live id"),
            RKALLOC_TRACE_ALLOC if o.size == 0 || o.size > u64::from(RKALLOC_MAX_REPLAY_SIZE) => {
                return Some("an ALLOC of 0 or more than RKALLOC_MAX_REPLAY_SIZE bytes")
            }
            RKALLOC_TRACE_ALLOC if o.size < a.min || o.size > a.max => return Some("a size the allocator cannot serve"),
            RKALLOC_TRACE_ALLOC => *l = true,
            RKALLOC_TRACE_FREE if !*l => return Some("a FREE of an id not live"),
            RKALLOC_TRACE_FREE if o.size != 0 => return Some("a FREE with a size"),
            RKALLOC_TRACE_FREE => *l = false,
            _ => return Some("an op that is neither ALLOC nor FREE"),
        }
    }
    None
}
