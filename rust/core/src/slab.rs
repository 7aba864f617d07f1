// SPDX-License-Identifier: GPL-2.0
//! Slab cache bookkeeping, modelled on Linux SLUB.
//!
//! A slab is `2^order` contiguous pages carved into equal slots. This module
//! owns no memory: the glue hands each call the slab as a `&mut [u8]` and
//! keeps a small [`SlabState`] in its own slab descriptor. Objects are named
//! by their byte offset inside that slice.
//!
//! Slot layout (`stride` bytes, repeated `objects_per_slab` times from
//! offset 0; an optional allocation bitmap follows the last slot):
//!
//! ```text
//! plain:            [ object (freeptr stored inside while free) | pad ]
//! RED_ZONE/POISON:  [ left RZ | object | right RZ | freeptr (8) | pad ]
//! ```
//!
//! The free list lives inside the free objects, like SLUB's: each free slot
//! stores the offset of the next free object, XOR-ed with a secret and with
//! the byte-swapped location of the pointer itself (`SLAB_FREELIST_HARDENED`).
//! A forged or scribbled pointer therefore decodes to garbage, which is
//! caught by the range/alignment check instead of steering an allocation.
//!
//! Nothing here panics on any input: every memory access goes through
//! `get`/`get_mut` and all arithmetic is bounded by [`Layout`]'s limits
//! (slabs are at most `PAGE_SIZE << MAX_SLAB_ORDER` = 128 KiB).

use core::ops::{BitOr, Range};

use super::rng::Rng;

/// Page size the slab order is expressed in (the kernel's `PAGE_SIZE` on
/// every architecture the module targets).
pub const PAGE_SIZE: usize = 4096;

/// Largest object a slab cache accepts. Like SLUB's
/// `KMALLOC_MAX_CACHE_SIZE` (two pages): bigger requests waste less when they
/// are served by the page pool directly.
pub const MAX_OBJECT_SIZE: usize = 8192;

/// Largest alignment a slab cache accepts: one page.
pub const MAX_ALIGN: usize = PAGE_SIZE;

/// Highest order the SLUB-style search prefers (`PAGE_ALLOC_COSTLY_ORDER`).
pub const COSTLY_ORDER: u32 = 3;

/// Highest slab order ever chosen. Orders above [`COSTLY_ORDER`] are only
/// used when debug red zones or a large alignment make the stride so awkward
/// that no costly-order slab keeps the waste within 1/8. At order 5 a slab
/// holds at least eight of the largest possible strides (16 KiB), so the
/// bound always holds there.
pub const MAX_SLAB_ORDER: u32 = 5;

/// Default minimum number of objects per slab the order search aims for.
/// SLUB uses `4 * (fls(nr_cpus) + 1)`; 12 is its value for the two-CPU
/// guest. The glue may pass [`slub_min_objects`] of the running machine.
pub const DEFAULT_MIN_OBJECTS: u32 = 12;

/// Red zone byte of a free object (SLUB's `SLUB_RED_INACTIVE`).
pub const RED_INACTIVE: u8 = 0xbb;
/// Red zone byte of an allocated object (SLUB's `SLUB_RED_ACTIVE`).
pub const RED_ACTIVE: u8 = 0xcc;
/// Poison byte of a freed object (`POISON_FREE`).
pub const POISON_FREE: u8 = 0x6b;
/// Last byte of a poisoned object (`POISON_END`), so an off-by-one write at
/// the end of a freed object is told apart from a full overwrite.
pub const POISON_END: u8 = 0xa5;

/// End of the free list. Never a valid offset: slabs are at most 128 KiB.
const NIL: u32 = u32::MAX;

/// Bytes reserved for an out-of-object free pointer. Only four are used for
/// the link; the other four serve as scratch space while shuffling.
const FREEPTR_SLOT: u32 = 8;

/// Minimum slot alignment: the free pointer is read as an aligned word.
const MIN_ALIGN: u32 = 8;

/// Errors reported by slab operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// Bad cache parameters (size, alignment or flags); `EINVAL`.
    Invalid,
    /// The memory slice is shorter than [`Layout::slab_bytes`].
    ShortMemory,
    /// No free object left in this slab. Not a bug: move to another slab.
    Exhausted,
    /// The offset lies outside the object area of the slab.
    OutOfRange {
        /// The offending offset.
        offset: usize,
    },
    /// The offset is inside the object area but not at an object's start.
    Misaligned {
        /// The offending offset.
        offset: usize,
    },
    /// The object is already free (or the slab has no live object).
    DoubleFree {
        /// The object's offset.
        offset: usize,
    },
    /// A red zone around the object was overwritten. The object has been
    /// withdrawn from service (counted in [`SlabState::leaked`]).
    RedZone {
        /// The object's offset.
        offset: usize,
        /// Offset of the first clobbered byte.
        at: usize,
    },
    /// A free object was written to after it was freed (poison damaged).
    /// The object has been withdrawn from service.
    UseAfterFree {
        /// The object's offset.
        offset: usize,
        /// Offset of the first modified byte.
        at: usize,
    },
    /// The free pointer stored in the object at `offset` does not decode to
    /// a free object. The free list was cut there: that object and every
    /// free object behind it are withdrawn from service.
    CorruptFreePointer {
        /// Offset of the object holding the bad pointer.
        offset: usize,
    },
}

/// Debug options of a cache, combined with `|`. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// Guard bytes before and after each object, checked on alloc and free.
    pub const RED_ZONE: Flags = Flags(1 << 0);
    /// Fill freed objects with a pattern and check it on allocation.
    pub const POISON: Flags = Flags(1 << 1);
    /// Per-slab allocation bitmap: exact double/invalid free detection,
    /// free-pointer cross-checks and leak enumeration.
    pub const DEBUG_CHECKS: Flags = Flags(1 << 2);
    /// Every defined flag.
    pub const ALL: Flags = Flags(0b111);

    /// No flags.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The raw bits (for the ioctl ABI and reports).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Flags from raw bits; `None` if an undefined bit is set.
    pub const fn from_bits(bits: u32) -> Option<Flags> {
        if bits & !Self::ALL.0 == 0 {
            Some(Flags(bits))
        } else {
            None
        }
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// SLUB's default `min_objects` for a machine with `nr_cpus` CPUs:
/// `4 * (fls(nr_cpus) + 1)`.
pub const fn slub_min_objects(nr_cpus: u32) -> u32 {
    // fls() is at most 32, so this is at most 132.
    4 * (u32::BITS - nr_cpus.leading_zeros() + 1)
}

const fn align_up(x: u32, a: u32) -> u32 {
    // Callers keep x below 2^18 and a at most 4096: no overflow.
    (x + a - 1) & !(a - 1)
}

/// How objects of one cache are placed in a slab, and what that costs.
///
/// Computed once per cache; every slab of the cache shares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    obj_size: u32,
    align: u32,
    flags: Flags,
    stride: u32,
    /// Object start inside its slot (the left red zone's size).
    obj_offset: u32,
    /// End of the right red zone inside the slot.
    rz_end: u32,
    /// Free pointer location inside the slot.
    fp_offset: u32,
    order: u32,
    objects: u32,
    /// Allocation bitmap size in bytes (0 without `DEBUG_CHECKS`); it starts
    /// at `objects * stride`.
    bitmap_bytes: u32,
    waste: u32,
    /// `ceil(2^32 / stride)`: turns the offset-to-index division into a
    /// multiply, like SLUB's `reciprocal_size`.
    recip: u64,
}

/// Object count, metadata and waste of one candidate slab order.
struct Fit {
    objects: u32,
    meta: u32,
    waste: u32,
    slab: u32,
}

fn fit(stride: u32, order: u32, bitmap: bool) -> Fit {
    let slab = (PAGE_SIZE as u32) << order;
    let (objects, meta) = if bitmap {
        // n slots plus ceil(n / 8) bitmap bytes must fit. Start from the
        // real-valued bound and step down at most once for the rounding.
        let mut n = slab * 8 / (stride * 8 + 1);
        while n > 0 && n * stride + n.div_ceil(8) > slab {
            n -= 1;
        }
        (n, n.div_ceil(8))
    } else {
        (slab / stride, 0)
    };
    Fit {
        objects,
        meta,
        waste: slab - objects * stride - meta,
        slab,
    }
}

/// SLUB's `calculate_order` with `slub_max_order = COSTLY_ORDER`, except
/// that instead of accepting 1/4 or 1/2 waste it goes past the costly order,
/// so the waste never exceeds 1/8 of the slab.
fn choose_order(stride: u32, bitmap: bool, min_objects: u32) -> Option<Fit> {
    let max_objects = fit(stride, COSTLY_ORDER, bitmap).objects.max(1);
    let want = min_objects.clamp(1, max_objects);
    // get_order(want * stride); want * stride <= 8 * 32 KiB, no overflow.
    let bytes = want * stride;
    let mut min_order = 0;
    while ((PAGE_SIZE as u32) << min_order) < bytes && min_order < COSTLY_ORDER {
        min_order += 1;
    }
    for fraction in [16, 8] {
        for order in min_order..=COSTLY_ORDER {
            let f = fit(stride, order, bitmap);
            if f.objects > 0 && f.waste <= f.slab / fraction {
                return Some(f);
            }
        }
    }
    (COSTLY_ORDER + 1..=MAX_SLAB_ORDER)
        .map(|order| fit(stride, order, bitmap))
        .find(|f| f.objects > 0 && f.waste <= f.slab / 8)
}

impl Layout {
    /// Layout for objects of `size` bytes aligned to `align`, using
    /// [`DEFAULT_MIN_OBJECTS`].
    ///
    /// Fails with [`SlabError::Invalid`] if `size` is 0 or above
    /// [`MAX_OBJECT_SIZE`], or `align` is not a power of two up to
    /// [`MAX_ALIGN`].
    pub fn new(size: usize, align: usize, flags: Flags) -> Result<Layout, SlabError> {
        Self::with_min_objects(size, align, flags, DEFAULT_MIN_OBJECTS)
    }

    /// Like [`Layout::new`], aiming for at least `min_objects` per slab
    /// (capped by what an order-[`COSTLY_ORDER`] slab holds), like SLUB's
    /// `slab_min_objects`.
    pub fn with_min_objects(
        size: usize,
        align: usize,
        flags: Flags,
        min_objects: u32,
    ) -> Result<Layout, SlabError> {
        if size == 0 || size > MAX_OBJECT_SIZE || !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(SlabError::Invalid);
        }
        // Both fit in u32 after the checks above.
        let size = size as u32;
        let align = (align as u32).max(MIN_ALIGN);
        let red = flags.contains(Flags::RED_ZONE);
        let poison = flags.contains(Flags::POISON);

        // The left red zone is `align` bytes so the object stays aligned
        // (SLUB's red_left_pad); the right one is at least one word.
        let obj_offset = if red { align } else { 0 };
        let obj_end = obj_offset + size;
        let rz_end = if red {
            align_up(obj_end, 8) + 8
        } else {
            obj_end
        };
        let (fp_offset, used) = if red || poison {
            // Poison must cover the whole object and red zones must stay
            // intact, so the free pointer moves behind them (as in SLUB).
            let fp = align_up(rz_end, 8);
            (fp, fp + FREEPTR_SLOT)
        } else {
            // Mid-object, away from the edges that small overflows from
            // neighbours hit first (SLUB does the same). The slot is at
            // least 8 bytes past this point, see `tests::freeptr_fits`.
            ((size / 2) & !7, align_up(size, 8))
        };
        let stride = align_up(used, align);
        let bitmap = flags.contains(Flags::DEBUG_CHECKS);
        let f = choose_order(stride, bitmap, min_objects).ok_or(SlabError::Invalid)?;
        let order = f.slab.trailing_zeros() - PAGE_SIZE.trailing_zeros();
        Ok(Layout {
            obj_size: size,
            align,
            flags,
            stride,
            obj_offset,
            rz_end,
            fp_offset,
            order,
            objects: f.objects,
            bitmap_bytes: f.meta,
            waste: f.waste,
            recip: (1u64 << 32).div_ceil(u64::from(stride)),
        })
    }

    /// Usable object size in bytes, as requested.
    pub fn obj_size(&self) -> usize {
        self.obj_size as usize
    }

    /// Effective alignment of objects (at least 8).
    pub fn align(&self) -> usize {
        self.align as usize
    }

    /// The cache's debug flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Distance between consecutive objects: object, red zones, out-of-line
    /// free pointer and alignment padding.
    pub fn stride(&self) -> usize {
        self.stride as usize
    }

    /// Per-object overhead: `stride - obj_size`.
    pub fn overhead_per_object(&self) -> usize {
        (self.stride - self.obj_size) as usize
    }

    /// Slab order: a slab is `2^order` pages.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Pages per slab (`pagesperslab` in slabinfo).
    pub fn pages_per_slab(&self) -> usize {
        1 << self.order
    }

    /// Bytes per slab; the glue must hand over at least this much memory.
    pub fn slab_bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// Objects per slab (`objperslab` in slabinfo).
    pub fn objects_per_slab(&self) -> usize {
        self.objects as usize
    }

    /// Unused bytes at the end of each slab. At most 1/8 of the slab.
    pub fn waste_per_slab(&self) -> usize {
        self.waste as usize
    }

    /// Bytes of in-slab metadata (the `DEBUG_CHECKS` allocation bitmap),
    /// stored after the last object.
    pub fn metadata_bytes_per_slab(&self) -> usize {
        self.bitmap_bytes as usize
    }

    /// Offset of object number `index` (0-based, in address order), or
    /// `None` if the slab has no such object.
    pub fn object_offset(&self, index: usize) -> Option<usize> {
        if index < self.objects as usize {
            Some(index * self.stride as usize + self.obj_offset as usize)
        } else {
            None
        }
    }

    /// Index of the object starting at `offset`.
    pub fn object_index(&self, offset: usize) -> Result<usize, SlabError> {
        let off = u32::try_from(offset).map_err(|_| SlabError::OutOfRange { offset })?;
        self.index_of(off).map(|i| i as usize)
    }

    fn index_of(&self, off: u32) -> Result<u32, SlabError> {
        let offset = off as usize;
        // objects * stride <= 128 KiB: no overflow.
        if off >= self.objects * self.stride {
            return Err(SlabError::OutOfRange { offset });
        }
        let rel = off
            .checked_sub(self.obj_offset)
            .ok_or(SlabError::Misaligned { offset })?;
        // Exact for rel < 2^17 and stride < 2^15 (both guaranteed): the
        // reciprocal's rounding error stays below one unit.
        let idx = ((u64::from(rel) * self.recip) >> 32) as u32;
        if idx * self.stride != rel {
            return Err(SlabError::Misaligned { offset });
        }
        Ok(idx)
    }

    fn slot(&self, idx: u32) -> u32 {
        idx * self.stride
    }

    fn obj_at(&self, idx: u32) -> u32 {
        idx * self.stride + self.obj_offset
    }

    fn fp_at(&self, idx: u32) -> u32 {
        idx * self.stride + self.fp_offset
    }

    fn object_range(&self, idx: u32) -> Range<usize> {
        let start = self.obj_at(idx) as usize;
        start..start + self.obj_size as usize
    }

    fn left_rz(&self, idx: u32) -> Range<usize> {
        let slot = self.slot(idx) as usize;
        slot..slot + self.obj_offset as usize
    }

    fn right_rz(&self, idx: u32) -> Range<usize> {
        let slot = self.slot(idx) as usize;
        slot + (self.obj_offset + self.obj_size) as usize..slot + self.rz_end as usize
    }

    fn bitmap_start(&self) -> usize {
        (self.objects * self.stride) as usize
    }

    fn has(&self, f: Flags) -> bool {
        self.flags.contains(f)
    }
}

fn read_u32(mem: &[u8], at: u32) -> Option<u32> {
    let bytes = mem.get(at as usize..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*bytes))
}

fn write_u32(mem: &mut [u8], at: u32, v: u32) -> Option<()> {
    *mem.get_mut(at as usize..)?.first_chunk_mut::<4>()? = v.to_le_bytes();
    Some(())
}

fn fill(mem: &mut [u8], r: Range<usize>, byte: u8) {
    if let Some(s) = mem.get_mut(r) {
        s.fill(byte);
    }
}

/// `Err(first mismatching offset)` unless all of `r` holds `byte`.
fn check(mem: &[u8], r: Range<usize>, byte: u8) -> Result<(), usize> {
    let start = r.start;
    match mem.get(r) {
        Some(s) => match s.iter().position(|&b| b != byte) {
            Some(p) => Err(start + p),
            None => Ok(()),
        },
        None => Err(start),
    }
}

fn poison(mem: &mut [u8], r: Range<usize>) {
    if let Some((last, body)) = mem.get_mut(r).and_then(|s| s.split_last_mut()) {
        body.fill(POISON_FREE);
        *last = POISON_END;
    }
}

fn check_poison(mem: &[u8], r: Range<usize>) -> Result<(), usize> {
    let Some(s) = mem.get(r.clone()) else {
        return Err(r.start);
    };
    let Some((last, body)) = s.split_last() else {
        return Ok(());
    };
    if let Some(p) = body.iter().position(|&b| b != POISON_FREE) {
        return Err(r.start + p);
    }
    if *last != POISON_END {
        return Err(r.end - 1);
    }
    Ok(())
}

/// Per-slab bookkeeping, kept by the glue in its slab descriptor.
///
/// INVARIANT: `inuse + free + leaked == objects_per_slab`, and `head` is
/// `NIL` exactly when `free == 0`, otherwise the index of a free object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabState {
    head: u32,
    free: u32,
    inuse: u32,
    leaked: u32,
    secret: u32,
}

impl SlabState {
    /// Formats `mem` as an empty slab whose free list runs in address order.
    ///
    /// `secret` hardens the stored free pointers; the glue passes a random
    /// value per cache (or per slab).
    pub fn init(layout: &Layout, mem: &mut [u8], secret: u32) -> Result<SlabState, SlabError> {
        Self::init_with(layout, mem, secret, None)
    }

    /// Like [`SlabState::init`], but the free list visits objects in an
    /// order shuffled from `seed` (SLUB's `SLAB_FREELIST_RANDOM`), so heap
    /// overflows cannot predict their neighbour.
    pub fn init_shuffled(
        layout: &Layout,
        mem: &mut [u8],
        secret: u32,
        seed: u64,
    ) -> Result<SlabState, SlabError> {
        Self::init_with(layout, mem, secret, Some(seed))
    }

    fn init_with(
        layout: &Layout,
        mem: &mut [u8],
        secret: u32,
        seed: Option<u64>,
    ) -> Result<SlabState, SlabError> {
        if mem.len() < layout.slab_bytes() {
            return Err(SlabError::ShortMemory);
        }
        let n = layout.objects;
        for i in 0..n {
            if layout.has(Flags::RED_ZONE) {
                fill(mem, layout.left_rz(i), RED_INACTIVE);
                fill(mem, layout.right_rz(i), RED_INACTIVE);
            }
            if layout.has(Flags::POISON) {
                poison(mem, layout.object_range(i));
            }
        }
        let start = layout.bitmap_start();
        fill(mem, start..start + layout.bitmap_bytes as usize, 0);

        let mut st = SlabState {
            head: 0,
            free: n,
            inuse: 0,
            leaked: 0,
            secret,
        };
        match seed {
            None => {
                for i in 0..n {
                    let next = if i + 1 < n { i + 1 } else { NIL };
                    st.link(layout, mem, i, next);
                }
            }
            Some(seed) => st.head = st.shuffle(layout, mem, seed),
        }
        Ok(st)
    }

    /// Builds a random free list without extra memory: each slot's 8-byte
    /// free pointer area holds `perm[i]` in its first word and, after the
    /// second pass, the successor in its second word.
    fn shuffle(&mut self, layout: &Layout, mem: &mut [u8], seed: u64) -> u32 {
        let n = layout.objects;
        if n == 0 {
            return NIL;
        }
        let perm = |i: u32| layout.fp_at(i);
        let succ = |i: u32| layout.fp_at(i) + 4;
        for i in 0..n {
            write_u32(mem, perm(i), i);
        }
        // Fisher-Yates.
        let mut rng = Rng::new(seed);
        for i in (1..n).rev() {
            // Below i + 1 <= n, a u32.
            let j = rng.below(u64::from(i) + 1) as u32;
            let (a, b) = (read_u32(mem, perm(i)), read_u32(mem, perm(j)));
            if let (Some(a), Some(b)) = (a, b) {
                write_u32(mem, perm(i), b);
                write_u32(mem, perm(j), a);
            }
        }
        // Clamp so a value that could only come from a logic error still
        // names a real slot.
        let at = |mem: &[u8], k: u32| read_u32(mem, perm(k)).unwrap_or(k).min(n - 1);
        let head = at(mem, 0);
        for k in 0..n {
            let next = if k + 1 < n { at(mem, k + 1) } else { NIL };
            write_u32(mem, succ(at(mem, k)), next);
        }
        for i in 0..n {
            let next = read_u32(mem, succ(i)).unwrap_or(NIL);
            self.link(layout, mem, i, next);
        }
        head
    }

    /// Stores the hardened pointer "next free after `idx` is `next`".
    fn link(&self, layout: &Layout, mem: &mut [u8], idx: u32, next: u32) {
        // Callers pass an index below `objects` or NIL; anything else would
        // only come from a logic error and must not overflow `obj_at`.
        let raw = if next < layout.objects {
            layout.obj_at(next)
        } else {
            NIL
        };
        let at = layout.fp_at(idx);
        write_u32(mem, at, raw ^ self.secret ^ at.swap_bytes());
    }

    fn bit(layout: &Layout, mem: &[u8], idx: u32) -> bool {
        let byte = mem.get(layout.bitmap_start() + (idx / 8) as usize);
        byte.is_some_and(|b| b & (1 << (idx % 8)) != 0)
    }

    fn set_bit(layout: &Layout, mem: &mut [u8], idx: u32, on: bool) {
        if let Some(b) = mem.get_mut(layout.bitmap_start() + (idx / 8) as usize) {
            if on {
                *b |= 1 << (idx % 8);
            } else {
                *b &= !(1 << (idx % 8));
            }
        }
    }

    /// Drops the rest of the free list after a corrupt pointer was found in
    /// object `idx`: nothing behind it can be trusted.
    fn cut(&mut self, layout: &Layout, idx: u32) -> SlabError {
        self.leaked = self.leaked.saturating_add(self.free);
        self.free = 0;
        self.head = NIL;
        SlabError::CorruptFreePointer {
            offset: layout.obj_at(idx) as usize,
        }
    }

    /// Takes one object from the free list and returns its offset.
    ///
    /// [`SlabError::Exhausted`] and [`SlabError::ShortMemory`] change
    /// nothing. [`SlabError::CorruptFreePointer`], [`SlabError::RedZone`]
    /// and [`SlabError::UseAfterFree`] withdraw the damaged object(s) from
    /// service (counted in [`SlabState::leaked`]); the caller reports and
    /// may simply retry.
    pub fn alloc(&mut self, layout: &Layout, mem: &mut [u8]) -> Result<usize, SlabError> {
        if mem.len() < layout.slab_bytes() {
            return Err(SlabError::ShortMemory);
        }
        if self.free == 0 {
            return Err(SlabError::Exhausted);
        }
        let idx = self.head;
        if idx >= layout.objects {
            // Only reachable if the glue mixed up states and layouts.
            return Err(self.cut(layout, 0));
        }
        let at = layout.fp_at(idx);
        let Some(stored) = read_u32(mem, at) else {
            return Err(self.cut(layout, idx));
        };
        let raw = stored ^ self.secret ^ at.swap_bytes();
        let next = if raw == NIL {
            NIL
        } else {
            match layout.index_of(raw) {
                Ok(n) => n,
                Err(_) => return Err(self.cut(layout, idx)),
            }
        };
        // The list length must agree with the count, and with the bitmap a
        // pointer to a live object is caught before it is handed out twice.
        let last = self.free == 1;
        if (next == NIL) != last
            || next == idx
            || (next != NIL && layout.has(Flags::DEBUG_CHECKS) && Self::bit(layout, mem, next))
        {
            return Err(self.cut(layout, idx));
        }
        self.head = next;
        self.free -= 1;

        let offset = layout.obj_at(idx) as usize;
        if layout.has(Flags::POISON) {
            if let Err(at) = check_poison(mem, layout.object_range(idx)) {
                self.leaked = self.leaked.saturating_add(1);
                // Inactive zones make a later free of it a double free.
                if layout.has(Flags::RED_ZONE) {
                    fill(mem, layout.left_rz(idx), RED_INACTIVE);
                    fill(mem, layout.right_rz(idx), RED_INACTIVE);
                }
                return Err(SlabError::UseAfterFree { offset, at });
            }
        }
        if layout.has(Flags::RED_ZONE) {
            let (l, r) = (layout.left_rz(idx), layout.right_rz(idx));
            if let Err(at) = check(mem, l.clone(), RED_INACTIVE)
                .and_then(|()| check(mem, r.clone(), RED_INACTIVE))
            {
                self.leaked = self.leaked.saturating_add(1);
                fill(mem, l, RED_INACTIVE);
                fill(mem, r, RED_INACTIVE);
                return Err(SlabError::RedZone { offset, at });
            }
            fill(mem, l, RED_ACTIVE);
            fill(mem, r, RED_ACTIVE);
        }
        if layout.has(Flags::DEBUG_CHECKS) {
            Self::set_bit(layout, mem, idx, true);
        }
        // Bounded by the invariant sum, which never exceeds `objects`.
        self.inuse = self.inuse.saturating_add(1);
        Ok(offset)
    }

    /// Returns the object at `offset` to the free list.
    ///
    /// [`SlabError::OutOfRange`], [`SlabError::Misaligned`],
    /// [`SlabError::DoubleFree`] and [`SlabError::ShortMemory`] change
    /// nothing. [`SlabError::RedZone`] means the caller overflowed the
    /// object: it counts as freed but is withdrawn from service (never
    /// reused, counted in [`SlabState::leaked`]) so the evidence stays.
    ///
    /// Without `DEBUG_CHECKS` (or `RED_ZONE`), only freeing the most
    /// recently freed object again, or freeing into a slab without live
    /// objects, is recognised as a double free.
    pub fn free(
        &mut self,
        layout: &Layout,
        mem: &mut [u8],
        offset: usize,
    ) -> Result<(), SlabError> {
        if mem.len() < layout.slab_bytes() {
            return Err(SlabError::ShortMemory);
        }
        let idx = layout.object_index(offset)? as u32;
        let double = SlabError::DoubleFree { offset };
        if self.inuse == 0 || idx == self.head {
            return Err(double);
        }
        if layout.has(Flags::DEBUG_CHECKS) && !Self::bit(layout, mem, idx) {
            return Err(double);
        }
        if layout.has(Flags::RED_ZONE) {
            let (l, r) = (layout.left_rz(idx), layout.right_rz(idx));
            if let Err(at) =
                check(mem, l.clone(), RED_ACTIVE).and_then(|()| check(mem, r.clone(), RED_ACTIVE))
            {
                // Untouched inactive zones mean the object is already free.
                if check(mem, l.clone(), RED_INACTIVE).is_ok()
                    && check(mem, r.clone(), RED_INACTIVE).is_ok()
                {
                    return Err(double);
                }
                // Reported with `at`; restore the zones (as SLUB does) so a
                // second free of this object reads as a double free.
                fill(mem, l, RED_INACTIVE);
                fill(mem, r, RED_INACTIVE);
                Self::set_bit(layout, mem, idx, false);
                self.inuse -= 1;
                self.leaked = self.leaked.saturating_add(1);
                return Err(SlabError::RedZone { offset, at });
            }
            fill(mem, l, RED_INACTIVE);
            fill(mem, r, RED_INACTIVE);
        }
        if layout.has(Flags::POISON) {
            poison(mem, layout.object_range(idx));
        }
        if layout.has(Flags::DEBUG_CHECKS) {
            Self::set_bit(layout, mem, idx, false);
        }
        self.link(layout, mem, idx, self.head);
        self.head = idx;
        self.free = self.free.saturating_add(1);
        self.inuse -= 1;
        Ok(())
    }

    /// Walks the whole slab and checks it, like SLUB's `validate_slab`:
    /// free list length and pointers, and under the debug flags the
    /// bitmap, red zones and poison of free objects. Changes nothing.
    /// O(objects * object size); for debugfs and tests, not hot paths.
    pub fn validate(&self, layout: &Layout, mem: &[u8]) -> Result<(), SlabError> {
        if mem.len() < layout.slab_bytes() {
            return Err(SlabError::ShortMemory);
        }
        let total = self
            .inuse
            .checked_add(self.free)
            .and_then(|s| s.checked_add(self.leaked));
        if total != Some(layout.objects) {
            return Err(SlabError::Invalid);
        }
        let mut idx = self.head;
        for left in (0..self.free).rev() {
            if idx >= layout.objects {
                return Err(SlabError::Invalid);
            }
            let offset = layout.obj_at(idx) as usize;
            if layout.has(Flags::DEBUG_CHECKS) && Self::bit(layout, mem, idx) {
                return Err(SlabError::CorruptFreePointer { offset });
            }
            if layout.has(Flags::RED_ZONE) {
                check(mem, layout.left_rz(idx), RED_INACTIVE)
                    .and_then(|()| check(mem, layout.right_rz(idx), RED_INACTIVE))
                    .map_err(|at| SlabError::RedZone { offset, at })?;
            }
            if layout.has(Flags::POISON) {
                check_poison(mem, layout.object_range(idx))
                    .map_err(|at| SlabError::UseAfterFree { offset, at })?;
            }
            let at = layout.fp_at(idx);
            let stored = read_u32(mem, at).ok_or(SlabError::ShortMemory)?;
            let raw = stored ^ self.secret ^ at.swap_bytes();
            let corrupt = SlabError::CorruptFreePointer { offset };
            if raw == NIL {
                if left != 0 {
                    return Err(corrupt);
                }
                idx = NIL;
            } else {
                if left == 0 {
                    return Err(corrupt);
                }
                idx = layout.index_of(raw).map_err(|_| corrupt)?;
            }
        }
        if layout.has(Flags::DEBUG_CHECKS) {
            let start = layout.bitmap_start();
            let bits = mem.get(start..start + layout.bitmap_bytes as usize);
            let live: u32 = bits.map_or(0, |b| b.iter().map(|x| x.count_ones()).sum());
            if live != self.inuse {
                return Err(SlabError::Invalid);
            }
        }
        Ok(())
    }

    /// Objects currently allocated from this slab.
    pub fn inuse(&self) -> usize {
        self.inuse as usize
    }

    /// Objects on the free list, ready to be allocated.
    pub fn free_objects(&self) -> usize {
        self.free as usize
    }

    /// Objects withdrawn from service after corruption was detected. They
    /// are neither live nor allocatable.
    pub fn leaked(&self) -> usize {
        self.leaked as usize
    }

    /// No object can be allocated: the slab belongs on the full list.
    pub fn is_full(&self) -> bool {
        self.free == 0
    }

    /// No live object: the slab may go back to the page pool, unless
    /// [`SlabState::leaked`] is non-zero and the glue prefers to keep
    /// corrupted memory out of circulation.
    pub fn is_empty(&self) -> bool {
        self.inuse == 0
    }

    /// Offsets of all live objects, in address order, for reports on
    /// caches destroyed with objects outstanding. `None` without
    /// `DEBUG_CHECKS`, which alone keeps the needed bitmap.
    pub fn live_objects<'a>(&self, layout: &Layout, mem: &'a [u8]) -> Option<LiveObjects<'a>> {
        if !layout.has(Flags::DEBUG_CHECKS) {
            return None;
        }
        let start = layout.bitmap_start();
        let bitmap = mem.get(start..start + layout.bitmap_bytes as usize)?;
        Some(LiveObjects {
            bitmap,
            idx: 0,
            objects: layout.objects,
            stride: layout.stride,
            obj_offset: layout.obj_offset,
        })
    }
}

/// Iterator over live object offsets; see [`SlabState::live_objects`].
#[derive(Clone, Debug)]
pub struct LiveObjects<'a> {
    bitmap: &'a [u8],
    idx: u32,
    objects: u32,
    stride: u32,
    obj_offset: u32,
}

impl Iterator for LiveObjects<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.idx < self.objects {
            let byte = *self.bitmap.get((self.idx / 8) as usize)?;
            let bit = self.idx % 8;
            // Skip a whole empty byte at once: leak reports scan big slabs.
            if byte >> bit == 0 {
                self.idx = (self.idx / 8 + 1) * 8;
                continue;
            }
            let i = self.idx;
            self.idx += 1;
            if byte & (1 << bit) != 0 {
                return Some((i * self.stride + self.obj_offset) as usize);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    const DBG: Flags = Flags::DEBUG_CHECKS;
    const RZ: Flags = Flags::RED_ZONE;
    const PO: Flags = Flags::POISON;

    fn all_flags() -> impl Iterator<Item = Flags> {
        (0..=Flags::ALL.bits()).map(|b| Flags::from_bits(b).unwrap())
    }

    fn setup(size: usize, flags: Flags) -> (Layout, Vec<u8>, SlabState) {
        let l = Layout::new(size, 8, flags).unwrap();
        let mut mem = vec![0u8; l.slab_bytes()];
        let st = SlabState::init(&l, &mut mem, 0x1234_5678).unwrap();
        (l, mem, st)
    }

    /// Literal port of SLUB's calculate_order() (mm/slub.c) with
    /// slub_max_order = 3 and the given min_objects: (order, objects).
    fn slub_reference(size: u32, min_objects: u32) -> (u32, u32) {
        let order_objects = |o: u32| (4096u32 << o) / size;
        let get_order = |n: u32| (0..).find(|&o| 4096u32 << o >= n).unwrap();
        let max_objects = order_objects(3).max(1);
        let min_order = get_order(min_objects.min(max_objects) * size);
        for fraction in [16, 8, 4, 2] {
            let order = (min_order..=3)
                .find(|&o| (4096u32 << o) % size <= (4096u32 << o) / fraction)
                .unwrap_or(4);
            if order <= 3 {
                return (order, order_objects(order));
            }
        }
        let o = get_order(size);
        (o, order_objects(o))
    }

    #[test]
    fn rejects_invalid_parameters() {
        let f = Flags::empty();
        for (size, align) in [
            (0, 8),
            (MAX_OBJECT_SIZE + 1, 8),
            (usize::MAX, 8),
            (64, 0),
            (64, 3),
            (64, 24),
            (64, 8192),
            (64, usize::MAX),
        ] {
            assert_eq!(
                Layout::new(size, align, f),
                Err(SlabError::Invalid),
                "{size} {align}"
            );
        }
        assert!(Layout::new(MAX_OBJECT_SIZE, MAX_ALIGN, Flags::ALL).is_ok());
        assert!(Layout::new(1, 1, f).is_ok());
        assert_eq!(Flags::from_bits(1 << 3), None);
    }

    #[test]
    fn kmalloc_classes_match_slub() {
        // (size, order, objects) SLUB gives for kmalloc caches with
        // min_objects 12 (two CPUs), as in /proc/slabinfo.
        let want = [
            (8, 0, 512),
            (16, 0, 256),
            (32, 0, 128),
            (64, 0, 64),
            (96, 0, 42),
            (128, 0, 32),
            (192, 0, 21),
            (256, 0, 16),
            (512, 1, 16),
            (1024, 2, 16),
            (2048, 3, 16),
            (4096, 3, 8),
            (8192, 3, 4),
        ];
        for (size, order, objects) in want {
            let l = Layout::new(size, 8, Flags::empty()).unwrap();
            assert_eq!(
                (l.order(), l.objects_per_slab()),
                (order, objects),
                "size {size}"
            );
            assert_eq!(slub_reference(size as u32, 12), (order, objects as u32));
            assert_eq!(l.metadata_bytes_per_slab(), 0);
        }
        // With min_objects 8, 512 fits order 0 like on a one-CPU SLUB.
        let l = Layout::with_min_objects(512, 8, Flags::empty(), 8).unwrap();
        assert_eq!((l.order(), l.objects_per_slab()), (0, 8));
    }

    #[test]
    fn order_agrees_with_slub_whenever_slub_keeps_waste_within_an_eighth() {
        let mut beyond_costly = 0;
        for size in 1..=MAX_OBJECT_SIZE {
            for min_objects in [4, 12, 20] {
                let l = Layout::with_min_objects(size, 8, Flags::empty(), min_objects).unwrap();
                let stride = l.stride() as u32;
                let (so, sn) = slub_reference(stride, min_objects);
                let slub_waste = (4096u32 << so) - sn * stride;
                if slub_waste <= (4096u32 << so) / 8 {
                    assert_eq!(
                        (l.order(), l.objects_per_slab() as u32),
                        (so, sn),
                        "size {size}"
                    );
                } else {
                    // SLUB accepts up to 1/2 waste; we go to a higher order,
                    // which only odd sizes above a page ever need.
                    assert!(l.order() > so && size > PAGE_SIZE, "size {size}");
                    beyond_costly += 1;
                }
            }
        }
        // The escape hatch exists, but is the exception (~12% of sizes,
        // all between 4.5 and 8 KiB).
        assert!(beyond_costly > 0 && beyond_costly < 3 * MAX_OBJECT_SIZE / 6);
    }

    #[test]
    fn geometry_invariants_for_every_size_align_and_flag() {
        for flags in all_flags() {
            for align_log in 0..=12 {
                let align = 1usize << align_log;
                // Every size for small alignments; a sparser sweep above.
                let step = if align <= 8 { 1 } else { 7 };
                for size in (1..=MAX_OBJECT_SIZE).step_by(step).chain([MAX_OBJECT_SIZE]) {
                    check_geometry(&Layout::new(size, align, flags).unwrap(), size, align);
                }
            }
        }
    }

    fn check_geometry(l: &Layout, size: usize, align: usize) {
        let ctx = (size, align, l.flags());
        let slab = l.slab_bytes();
        assert!(l.objects_per_slab() >= 1, "{ctx:?}");
        assert!(l.order() <= MAX_SLAB_ORDER, "{ctx:?}");
        assert!(
            l.waste_per_slab() * 8 <= slab,
            "{ctx:?} waste {}",
            l.waste_per_slab()
        );
        assert_eq!(
            l.objects_per_slab() * l.stride() + l.metadata_bytes_per_slab() + l.waste_per_slab(),
            slab,
            "{ctx:?}"
        );
        assert_eq!(l.stride() % align.max(8), 0, "{ctx:?}");
        assert!(l.stride() < 1 << 15, "{ctx:?}");
        assert_eq!(l.overhead_per_object(), l.stride() - size);
        let obj = l.obj_offset as usize;
        assert_eq!(obj % align, 0, "{ctx:?}");
        let fp = l.fp_offset as usize;
        // The freeptr area (8 bytes incl. shuffle scratch) stays in the slot.
        assert!(
            fp.is_multiple_of(4) && fp + FREEPTR_SLOT as usize <= l.stride(),
            "{ctx:?}"
        );
        let debug = l.flags().contains(RZ) || l.flags().contains(PO);
        if debug {
            assert!(fp >= l.rz_end as usize && fp >= obj + size, "{ctx:?}");
        }
        if l.flags().contains(RZ) {
            assert!(obj >= 8 && l.rz_end as usize >= obj + size + 8, "{ctx:?}");
        }
        if l.flags().contains(DBG) {
            assert!(
                l.metadata_bytes_per_slab() * 8 >= l.objects_per_slab(),
                "{ctx:?}"
            );
        } else {
            assert_eq!(l.metadata_bytes_per_slab(), 0);
        }
        if l.flags() == Flags::empty() && align <= 8 {
            assert_eq!(l.stride(), size.next_multiple_of(8));
        }
    }

    #[test]
    fn offset_to_index_matches_division() {
        for flags in [Flags::empty(), Flags::ALL] {
            for size in (1..=MAX_OBJECT_SIZE).step_by(97).chain([8, 24, 4104, 8192]) {
                let l = Layout::new(size, 8, flags).unwrap();
                let (stride, obj) = (l.stride(), l.obj_offset as usize);
                let end = l.objects_per_slab() * stride;
                for off in (0..l.slab_bytes() + 16).chain([u32::MAX as usize, usize::MAX]) {
                    let want = if off >= end {
                        Err(SlabError::OutOfRange { offset: off })
                    } else if off < obj || (off - obj) % stride != 0 {
                        Err(SlabError::Misaligned { offset: off })
                    } else {
                        Ok((off - obj) / stride)
                    };
                    assert_eq!(l.object_index(off), want, "size {size} off {off}");
                }
            }
        }
    }

    #[test]
    fn fills_and_drains_in_address_order() {
        for flags in all_flags() {
            let (l, mut mem, mut st) = setup(40, flags);
            let n = l.objects_per_slab();
            assert!(st.is_empty() && !st.is_full());
            let mut got = Vec::new();
            for i in 0..n {
                let off = st.alloc(&l, &mut mem).unwrap();
                assert_eq!(Some(off), l.object_offset(i));
                assert_eq!(st.inuse(), i + 1);
                got.push(off);
            }
            assert!(st.is_full());
            assert_eq!(st.alloc(&l, &mut mem), Err(SlabError::Exhausted));
            st.validate(&l, &mem).unwrap();
            for &off in got.iter().rev() {
                st.free(&l, &mut mem, off).unwrap();
            }
            assert!(st.is_empty() && st.free_objects() == n && st.leaked() == 0);
            st.validate(&l, &mem).unwrap();
            // LIFO: the last freed object comes back first.
            assert_eq!(st.alloc(&l, &mut mem), Ok(got[0]));
        }
    }

    /// Runs `op` and asserts it failed with `want` without touching the
    /// state or the memory.
    fn assert_untouched(
        l: &Layout,
        mem: &mut Vec<u8>,
        st: &mut SlabState,
        want: SlabError,
        op: impl FnOnce(&Layout, &mut [u8], &mut SlabState) -> Result<usize, SlabError>,
    ) {
        let (before_mem, before_st) = (mem.clone(), *st);
        assert_eq!(op(l, mem, st), Err(want));
        assert_eq!(*st, before_st);
        assert!(*mem == before_mem, "memory changed on {want:?}");
    }

    #[test]
    fn error_paths_leave_everything_unchanged() {
        for flags in all_flags() {
            let (l, mut mem, mut st) = setup(64, flags);
            let a = st.alloc(&l, &mut mem).unwrap();
            let b = st.alloc(&l, &mut mem).unwrap();
            let c = st.alloc(&l, &mut mem).unwrap();
            st.free(&l, &mut mem, b).unwrap();
            let free = |off| {
                move |l: &Layout, m: &mut [u8], s: &mut SlabState| s.free(l, m, off).map(|()| 0)
            };
            let end = l.objects_per_slab() * l.stride();
            for off in [end, end + 1, l.slab_bytes(), usize::MAX] {
                let e = SlabError::OutOfRange { offset: off };
                assert_untouched(&l, &mut mem, &mut st, e, free(off));
            }
            for off in [a + 1, a + 8, c - 1] {
                let e = SlabError::Misaligned { offset: off };
                assert_untouched(&l, &mut mem, &mut st, e, free(off));
            }
            // `b` is the list head: caught even without debug flags.
            let e = SlabError::DoubleFree { offset: b };
            assert_untouched(&l, &mut mem, &mut st, e, free(b));
            let e = SlabError::ShortMemory;
            let mut short = mem[..mem.len() - 1].to_vec();
            assert_untouched(&l, &mut short, &mut st, e, free(a));
            assert_untouched(&l, &mut short, &mut st, e, |l, m, s| s.alloc(l, m));
            assert_eq!(
                SlabState::init(&l, &mut short, 0).err(),
                Some(SlabError::ShortMemory)
            );
            // A never-allocated object, not at the head.
            let never = l.object_offset(5).unwrap();
            if flags.contains(DBG) || flags.contains(RZ) {
                let e = SlabError::DoubleFree { offset: never };
                assert_untouched(&l, &mut mem, &mut st, e, free(never));
            }
            st.free(&l, &mut mem, a).unwrap();
            st.free(&l, &mut mem, c).unwrap();
            // No live object at all: any free is a double free.
            let e = SlabError::DoubleFree { offset: never };
            assert_untouched(&l, &mut mem, &mut st, e, free(never));
            st.validate(&l, &mem).unwrap();
        }
    }

    #[test]
    fn exhausted_changes_nothing() {
        let (l, mut mem, mut st) = setup(4096, Flags::ALL);
        while st.alloc(&l, &mut mem).is_ok() {}
        let e = SlabError::Exhausted;
        assert_untouched(&l, &mut mem, &mut st, e, |l, m, s| s.alloc(l, m));
    }

    #[test]
    fn double_free_of_non_head_object_is_detected_with_debug_checks() {
        for flags in [DBG, RZ, DBG | PO, RZ | PO] {
            let (l, mut mem, mut st) = setup(128, flags);
            let a = st.alloc(&l, &mut mem).unwrap();
            let b = st.alloc(&l, &mut mem).unwrap();
            let _c = st.alloc(&l, &mut mem).unwrap();
            st.free(&l, &mut mem, a).unwrap();
            st.free(&l, &mut mem, b).unwrap();
            let before = st;
            assert_eq!(
                st.free(&l, &mut mem, a),
                Err(SlabError::DoubleFree { offset: a })
            );
            assert_eq!(st, before);
            st.validate(&l, &mem).unwrap();
        }
    }

    #[test]
    fn right_red_zone_clobber_is_caught_and_object_quarantined() {
        // lib/tests/slub_kunit.c test_clobber_zone: p[64] = 0x12.
        for extra in [Flags::empty(), DBG, PO] {
            let (l, mut mem, mut st) = setup(64, RZ | extra);
            let p = st.alloc(&l, &mut mem).unwrap();
            mem[p + 64] = 0x12;
            assert_eq!(
                st.free(&l, &mut mem, p),
                Err(SlabError::RedZone {
                    offset: p,
                    at: p + 64
                })
            );
            assert_eq!((st.inuse(), st.leaked()), (0, 1));
            // Freeing it again is a double free, not a second red zone.
            let before = st;
            assert_eq!(
                st.free(&l, &mut mem, p),
                Err(SlabError::DoubleFree { offset: p })
            );
            assert_eq!(st, before);
            // Never handed out again.
            let mut seen = 0;
            while let Ok(q) = st.alloc(&l, &mut mem) {
                assert_ne!(q, p);
                seen += 1;
            }
            assert_eq!(seen, l.objects_per_slab() - 1);
            st.validate(&l, &mem).unwrap();
        }
    }

    #[test]
    fn left_red_zone_clobber_is_caught() {
        let (l, mut mem, mut st) = setup(24, RZ);
        let _a = st.alloc(&l, &mut mem).unwrap();
        let b = st.alloc(&l, &mut mem).unwrap();
        mem[b - 1] = 0;
        assert_eq!(
            st.free(&l, &mut mem, b),
            Err(SlabError::RedZone {
                offset: b,
                at: b - 1
            })
        );
    }

    #[test]
    fn red_zone_clobber_on_free_object_is_caught_at_alloc() {
        let (l, mut mem, mut st) = setup(32, RZ);
        let first = l.object_offset(0).unwrap();
        mem[first + 32] = 0;
        assert_eq!(
            st.alloc(&l, &mut mem),
            Err(SlabError::RedZone {
                offset: first,
                at: first + 32
            })
        );
        assert_eq!(st.leaked(), 1);
        // The caller retries and gets the next object.
        assert_eq!(
            st.alloc(&l, &mut mem),
            l.object_offset(1).ok_or(SlabError::Invalid)
        );
        // Writing exactly obj_size bytes never touches a red zone.
        let p = st.alloc(&l, &mut mem).unwrap();
        mem[p..p + 32].fill(0x5a);
        st.free(&l, &mut mem, p).unwrap();
    }

    #[test]
    fn poison_catches_use_after_free() {
        for extra in [Flags::empty(), RZ, DBG, RZ | DBG] {
            for (size, poke) in [(64, 0), (64, 63), (64, 31), (1, 0), (100, 99)] {
                let (l, mut mem, mut st) = setup(size, PO | extra);
                let p = st.alloc(&l, &mut mem).unwrap();
                mem[p..p + size].fill(0);
                st.free(&l, &mut mem, p).unwrap();
                assert_eq!(mem[p + size - 1], POISON_END);
                assert!(mem[p..p + size - 1].iter().all(|&b| b == POISON_FREE));
                st.validate(&l, &mem).unwrap();
                mem[p + poke] ^= 0xff;
                assert_eq!(
                    st.validate(&l, &mem),
                    Err(SlabError::UseAfterFree {
                        offset: p,
                        at: p + poke
                    })
                );
                assert_eq!(
                    st.alloc(&l, &mut mem),
                    Err(SlabError::UseAfterFree {
                        offset: p,
                        at: p + poke
                    })
                );
                assert_eq!(st.leaked(), 1);
                let q = st.alloc(&l, &mut mem).unwrap();
                assert_ne!(q, p);
                // A later free of the quarantined object is refused.
                assert!(
                    matches!(st.free(&l, &mut mem, p), Err(SlabError::DoubleFree { .. }))
                        || !extra.contains(DBG) && !extra.contains(RZ)
                );
            }
        }
    }

    #[test]
    fn never_allocated_objects_are_poisoned_and_red_zoned() {
        let (l, mem, _st) = setup(50, PO | RZ);
        for i in 0..l.objects_per_slab() as u32 {
            check_poison(&mem, l.object_range(i)).unwrap();
            check(&mem, l.left_rz(i), RED_INACTIVE).unwrap();
            check(&mem, l.right_rz(i), RED_INACTIVE).unwrap();
        }
    }

    #[test]
    fn corrupt_free_pointer_is_reported_not_followed() {
        // slub_kunit.c test_next_pointer: p[s->offset] = ~p[s->offset].
        for flags in all_flags() {
            let (l, mut mem, mut st) = setup(64, flags);
            let a = st.alloc(&l, &mut mem).unwrap();
            let b = st.alloc(&l, &mut mem).unwrap();
            let c = st.alloc(&l, &mut mem).unwrap();
            st.free(&l, &mut mem, a).unwrap();
            st.free(&l, &mut mem, b).unwrap();
            let fp = l.fp_at(l.index_of(b as u32).unwrap()) as usize;
            mem[fp] = !mem[fp];
            let before = (st, mem.clone());
            let e = SlabError::CorruptFreePointer { offset: b };
            assert_eq!(st.validate(&l, &mem), Err(e));
            assert_eq!((st, mem.clone()), before);
            assert_eq!(st.alloc(&l, &mut mem), Err(e));
            // b, a and every never-used object are written off.
            assert_eq!(st.leaked(), l.objects_per_slab() - 1);
            assert!(st.is_full());
            assert_eq!(st.alloc(&l, &mut mem), Err(SlabError::Exhausted));
            // Live objects can still be freed and reused.
            st.free(&l, &mut mem, c).unwrap();
            assert!(st.is_empty());
            assert_eq!(st.alloc(&l, &mut mem), Ok(c));
            st.validate(&l, &mem).unwrap();
        }
    }

    #[test]
    fn free_pointer_into_live_object_is_caught_with_debug_checks() {
        let (l, mut mem, mut st) = setup(64, DBG);
        let a = st.alloc(&l, &mut mem).unwrap();
        let b = st.alloc(&l, &mut mem).unwrap();
        st.free(&l, &mut mem, a).unwrap();
        // Forge a's pointer so that it names the live object b.
        let at = l.fp_at(0);
        let forged = (b as u32) ^ 0x1234_5678 ^ at.swap_bytes();
        mem[at as usize..at as usize + 4].copy_from_slice(&forged.to_le_bytes());
        assert_eq!(
            st.alloc(&l, &mut mem),
            Err(SlabError::CorruptFreePointer { offset: a })
        );
    }

    #[test]
    fn free_pointers_are_hardened() {
        let (l, mut mem, mut st) = setup(64, Flags::empty());
        // Stored words are neither plain offsets nor the same XOR mask.
        let raw = |mem: &[u8], i: u32| read_u32(mem, l.fp_at(i)).unwrap();
        assert_ne!(raw(&mem, 0), l.obj_at(1));
        assert_ne!(raw(&mem, 0) ^ raw(&mem, 1), l.obj_at(1) ^ l.obj_at(2));
        // Copying one free pointer over another is caught.
        let copy = raw(&mem, 1);
        write_u32(&mut mem, l.fp_at(0), copy);
        assert_eq!(
            st.alloc(&l, &mut mem),
            Err(SlabError::CorruptFreePointer { offset: 0 })
        );
        // A slab read with the wrong secret is rejected, not followed.
        let (l, mut mem, _) = setup(64, Flags::empty());
        let mut wrong = SlabState::init(&l, &mut vec![0; l.slab_bytes()], 7).unwrap();
        assert!(matches!(
            wrong.alloc(&l, &mut mem),
            Err(SlabError::CorruptFreePointer { .. })
        ));
    }

    #[test]
    fn shuffled_free_list_is_a_permutation() {
        for flags in [Flags::empty(), Flags::ALL] {
            let l = Layout::new(32, 8, flags).unwrap();
            let n = l.objects_per_slab();
            let mut orders = Vec::new();
            for seed in 0..4 {
                let mut mem = vec![0u8; l.slab_bytes()];
                let mut st = SlabState::init_shuffled(&l, &mut mem, 99, seed).unwrap();
                st.validate(&l, &mem).unwrap();
                let got: Vec<usize> = (0..n).map(|_| st.alloc(&l, &mut mem).unwrap()).collect();
                assert_eq!(st.alloc(&l, &mut mem), Err(SlabError::Exhausted));
                let set: BTreeSet<usize> = got.iter().copied().collect();
                let want: BTreeSet<usize> = (0..n).map(|i| l.object_offset(i).unwrap()).collect();
                assert_eq!(set, want);
                orders.push(got);
            }
            let sorted: Vec<usize> = (0..n).map(|i| l.object_offset(i).unwrap()).collect();
            assert!(orders.iter().all(|o| *o != sorted));
            assert_ne!(orders[0], orders[1]);
        }
        // A single-object slab shuffles to itself.
        let l = Layout::new(8192, 4096, Flags::ALL).unwrap();
        let mut mem = vec![0u8; l.slab_bytes()];
        let mut st = SlabState::init_shuffled(&l, &mut mem, 1, 5).unwrap();
        while st.alloc(&l, &mut mem).is_ok() {}
        assert_eq!(st.inuse(), l.objects_per_slab());
    }

    #[test]
    fn live_objects_lists_leaks() {
        let (l, mut mem, mut st) = setup(16, DBG);
        let offs: Vec<usize> = (0..40).map(|_| st.alloc(&l, &mut mem).unwrap()).collect();
        for (i, &o) in offs.iter().enumerate() {
            if i % 3 != 0 {
                st.free(&l, &mut mem, o).unwrap();
            }
        }
        let live: Vec<usize> = st.live_objects(&l, &mem).unwrap().collect();
        let want: Vec<usize> = offs.iter().copied().step_by(3).collect();
        assert_eq!(live, want);
        assert_eq!(live.len(), st.inuse());
        let (l, mem, st) = setup(16, Flags::empty());
        assert!(st.live_objects(&l, &mem).is_none());
    }

    #[test]
    fn min_objects_formula() {
        assert_eq!(slub_min_objects(0), 4);
        assert_eq!(slub_min_objects(1), 8);
        assert_eq!(slub_min_objects(2), 12);
        assert_eq!(slub_min_objects(3), 12);
        assert_eq!(slub_min_objects(8), 20);
        assert_eq!(slub_min_objects(u32::MAX), 132);
    }
}
