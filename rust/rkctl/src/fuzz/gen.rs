//! What the fuzzer knows of the module and of its fds' live handles, and
//! the generator of values (boundaries, handles, user pointers) it fills
//! arguments with.
use super::mem::Ptr;
use crate::uapi;
use rand::{rngs::SmallRng, Rng, SeedableRng};

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
pub(super) const KINDS: usize = 7;
/// Memory a FREE takes.
pub(super) const FREEABLE: &[Kind] = &[Kind::Pool, Kind::Object, Kind::Malloc, Kind::HeapBlock];
/// Memory FILL and VERIFY take.
pub(super) const MEMORY: &[Kind] = &[Kind::Pool, Kind::Object, Kind::Malloc, Kind::HeapBlock, Kind::Arena];

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
pub(super) const MAX_TRACKED: usize = 256;
/// Most freed handles the fuzzer remembers.
pub(super) const MAX_STALE: usize = 64;

impl Tracked {
    /// Live handles of kind `k`.
    pub(super) fn of(&self, k: Kind) -> &[Held] {
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
pub(super) const KIND_OF: [Kind; KINDS] = [Kind::Pool, Kind::Object, Kind::Malloc, Kind::HeapBlock, Kind::Arena, Kind::Cache, Kind::Heap];

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
pub(super) const MB: u32 = uapi::RKALLOC_MAX_BATCH;

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
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if lo >= hi {
            lo
        } else {
            self.rng.gen_range(lo..=hi)
        }
    }

    /// One of `v` (not empty).
    pub(super) fn pick<T: Copy>(&mut self, v: &[T]) -> T {
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

