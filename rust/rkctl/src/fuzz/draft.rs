//! Filling one command's argument (a draft), and the header's certainties:
//! arguments that must fail.
use super::gen::*;
use super::mem::Ptr;
use super::spec::*;
use crate::uapi;
use std::mem::size_of;

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

