#![allow(dead_code, missing_docs, clippy::all)]
//! TEMPORARY: the heap before the policy trait (commit da7b4c6), as the
//! reference of the equivalence test. Removed once the refactor is done.
// SPDX-License-Identifier: GPL-2.0
//! A variable-size heap with pluggable free-list fit policies.
//!
//! One implementation serves the four classic policies of [`Policy`]; they
//! differ only in which free block a request is carved from. Everything
//! else (block layout, splitting, coalescing, checking) is shared, so a
//! comparison between policies measures the policy and nothing else.
//!
//! # Region layout
//!
//! The heap owns up to `R` regions, byte buffers handed in by the caller
//! (`M: AsRef<[u8]> + AsMut<[u8]>`: pool pages in the kernel, a `Vec<u8>` in
//! tests). All metadata lives inside the region bytes; the heap itself keeps
//! only list heads and counters, so it needs no allocation.
//!
//! ```text
//! 0            start-8  start                                     end   len
//! | start map  | pad    | hdr | payload ... | ftr | hdr | ... | ftr | tail |
//!                       ^ block offsets are 8 mod 16, payloads 0 mod 16
//! ```
//!
//! - The *start map* is a bitmap with one bit per 16-byte granule, set for
//!   every payload that begins a block. It costs 1/128 of the region and
//!   makes [`Heap::free`] exact: a pointer into the middle of a payload, or
//!   one whose bytes were crafted to look like a header, is rejected without
//!   trusting any byte the caller could have written.
//! - Every block has an 8-byte header and an identical 8-byte footer (the
//!   boundary tags): block size, an allocated bit, the slack between the
//!   payload and the size that was asked for (so `requested_bytes` can be
//!   kept exactly), and with [`HeapFlags::DEBUG`] a 24-bit check value over
//!   all of it and the block's offset. The footer lets [`Heap::free`] find
//!   the left neighbour in O(1), so coalescing is immediate and O(1).
//! - A free block keeps its list links in its first payload bytes: `next` at
//!   +8 and `prev` at +16, each a `(region << 32) | offset` word. Hence
//!   [`MIN_BLOCK`] is 32 bytes.
//!
//! Payload offsets are multiples of [`ALIGN`] (16) from the region start;
//! the kernel's regions are page aligned, so the addresses are too.
//!
//! # Free lists and policies
//!
//! First, next and best fit share one doubly linked list, kept in address
//! order (region index, then offset) by default: address-ordered first fit
//! is the classic form and is known to fragment little (Johnstone and
//! Wilson, 1998), and it gives next fit's roving pointer and best fit's
//! ties a meaning. Their searches stay O(free blocks): that is what the
//! comparison is about. A freed block that merges with a free neighbour
//! takes that neighbour's list position, which is already its place in
//! address order, so only a free without a free neighbour walks the list
//! to its insertion point; [`HeapFlags::LIFO`] pushes it at the head
//! instead. Both walks are counted ([`HeapStats::search_steps`],
//! [`HeapStats::insert_steps`]).
//!
//! Segregated fit works like TLSF (Masmano et al., 2004): exact classes
//! per 16 bytes below 128 bytes, then four classes per power of two, each a
//! LIFO list, and a bitmap of the non-empty ones. A request takes the head
//! of the first non-empty class whose every block fits, found with
//! `trailing_zeros`; only when there is none does it search its own class.
//! Every operation is O(1) apart from that fallback.
//!
//! A request is carved from the *tail* of the chosen block (as K&R's
//! malloc does): the remainder keeps its offset, its header and its list
//! position, so a split rewrites two tags and relinks nothing (except when
//! segregated fit moves the remainder to a smaller class).
//!
//! # Corruption
//!
//! Every access is bounds checked and every walk is bounded by the number
//! of free blocks, so no content of the region bytes can make the heap
//! panic or loop forever. A freed pointer is always validated in full
//! (start map, header equal to footer). The hot path otherwise trusts the
//! heap's own invariants: a list link must name an in-bounds block with a
//! plausible free tag, and an unlink's neighbours must point back, but
//! footers, start-map bits and check values of the blocks it walks are
//! verified only with [`HeapFlags::DEBUG`] and by [`Heap::check`], which
//! validates everything. The first corruption found is returned once as
//! [`HeapError::CorruptTag`]; the heap then refuses further allocations and
//! frees with [`HeapError::Poisoned`], because handing out memory from a
//! damaged heap would spread the damage. Inputs are different: a bad size,
//! pointer or region returns an error and changes nothing at all.
//!
//! Without DEBUG, [`Heap::free`] on unordered lists and [`Heap::alloc`]
//! under segregated fit first try a fast path that borrows the one region
//! involved together with the list heads and counters. It validates the
//! same things as the general path and, when a list link it would write
//! through names another region (or anything fails), hands over to the
//! general path before its first write. Otherwise it performs the general
//! path's reads and writes in the same order, so results, figures, lists
//! and errors are identical (a differential test checks this).

use crate::frag::FragReport;

/// Payload alignment, in bytes, relative to the region start.
pub const ALIGN: usize = 16;

/// Size of one boundary tag (header or footer).
const TAG: usize = 8;

/// Smallest block: two tags plus the two free-list links.
pub const MIN_BLOCK: usize = 32;

/// Default number of region slots of a [`Heap`].
pub const MAX_REGIONS: usize = 32;

/// Largest region a heap accepts. Offsets stay far below `u32::MAX`, so the
/// offset arithmetic has headroom even on 32-bit targets.
pub const MAX_REGION_BYTES: usize = 1 << 30;

/// Largest request any region could ever serve; larger ones are
/// [`HeapError::Invalid`] rather than [`HeapError::NoMemory`].
pub const MAX_ALLOC: usize = max_alloc_in(MAX_REGION_BYTES);

/// Segregated fit's size classes (TLSF's two-level scheme, flattened):
/// below [`LINEAR`] bytes one class per [`ALIGN`] step, so those classes are
/// exact; above, [`SUBCLASSES`] classes of equal width per power of two.
/// No block reaches `MAX_REGION_BYTES` (2^30), so the last class holds
/// `[7 << 27, 1 << 30)`.
const SUB_LOG2: u32 = 2;
const SUBCLASSES: usize = 1 << SUB_LOG2;
const LINEAR_LOG2: u32 = 7;
const LINEAR: usize = 1 << LINEAR_LOG2;
const NCLASSES: usize = LINEAR / ALIGN + (30 - LINEAR_LOG2 as usize) * SUBCLASSES;

/// Words of the non-empty-class bitmap.
const MAP_WORDS: usize = NCLASSES.div_ceil(64);

/// The null link.
const NIL: u64 = u64::MAX;

/// Tag bits: `size | ALLOCATED` in the low 32 bits, the slack in bits
/// 32..40 and the check value in bits 40..64.
const ALLOCATED: u64 = 1;
const SIZE_MASK: u64 = 0xffff_fff0;
const SLACK_SHIFT: u32 = 32;
const CHECK_SHIFT: u32 = 40;
const LOW_MASK: u64 = (1 << CHECK_SHIFT) - 1;

/// Offsets of the list links inside a free block.
const NEXT: usize = 8;
const PREV: usize = 16;

/// Where an allocation lives: a region index and the byte offset of the
/// payload inside that region. The glue turns it into an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ptr {
    /// Region index, as returned by `add_region`.
    pub region: u32,
    /// Byte offset of the first payload byte from the region start.
    pub offset: u32,
}

/// How a free block is chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The first block in list order that is large enough.
    FirstFit,
    /// Like first fit, but the search resumes where the previous one stopped
    /// and wraps around (Knuth's roving pointer).
    NextFit,
    /// The smallest block that is large enough; ties go to the first in
    /// list order. An exact fit stops the search early.
    BestFit,
    /// TLSF-like size classes, each a LIFO list: the head of the first
    /// non-empty class whose every block fits, else first fit within the
    /// request's own class.
    SegregatedFit,
}

impl Policy {
    /// Every policy, in declaration order.
    pub const ALL: [Policy; 4] = [
        Policy::FirstFit,
        Policy::NextFit,
        Policy::BestFit,
        Policy::SegregatedFit,
    ];

    /// A short name for debugfs and reports.
    pub const fn name(self) -> &'static str {
        match self {
            Policy::FirstFit => "first-fit",
            Policy::NextFit => "next-fit",
            Policy::BestFit => "best-fit",
            Policy::SegregatedFit => "segregated-fit",
        }
    }
}

/// Heap options, a set of bits so that they can cross an ioctl unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapFlags(u32);

impl HeapFlags {
    /// No options: address-ordered lists (but for segregated fit), no check
    /// values.
    pub const NONE: HeapFlags = HeapFlags(0);
    /// Write a check value into every tag and fully validate every block
    /// the heap reads (check value, footer, start map), so that a changed
    /// tag is found even when it still looks plausible.
    pub const DEBUG: HeapFlags = HeapFlags(1);
    /// Insert freed blocks at the head of their list (O(1) free) instead of
    /// in address order. Segregated fit's classes are always LIFO.
    pub const LIFO: HeapFlags = HeapFlags(2);
    /// Every defined bit.
    pub const ALL: HeapFlags = HeapFlags(3);

    /// The flags of `bits`, or `None` if an undefined bit is set.
    pub const fn from_bits(bits: u32) -> Option<HeapFlags> {
        if bits & !Self::ALL.0 == 0 {
            Some(HeapFlags(bits))
        } else {
            None
        }
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: HeapFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: HeapFlags) -> HeapFlags {
        HeapFlags(self.0 | other.0)
    }
}

/// Why a heap operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapError {
    /// Bad input: a zero or impossibly large size, a pointer that is not a
    /// live payload start of this heap (including a double free), or a
    /// region buffer that is too small or too large. Nothing was changed.
    Invalid,
    /// No free block fits; add a region and retry. Only the failure and
    /// search-step counters changed.
    NoMemory,
    /// Every region slot is in use.
    RegionsFull,
    /// A boundary tag, start-map bit or list link at `offset` of `region`
    /// does not hold what the heap wrote there. Returned once; the heap is
    /// poisoned afterwards.
    CorruptTag {
        /// Region index of the damaged metadata.
        region: u32,
        /// Byte offset of the damaged metadata in that region.
        offset: u32,
    },
    /// An earlier operation found corruption; allocations and frees are
    /// refused. See [`Heap::corruption`].
    Poisoned,
    /// [`Heap::check`] found a broken invariant near `offset` of `region`.
    Inconsistent {
        /// Region index (0 for heap-wide counters).
        region: u32,
        /// Byte offset near the problem (0 for heap-wide counters).
        offset: u32,
        /// Which invariant is broken.
        what: &'static str,
    },
}

/// One block, as seen by [`Heap::for_each_block`] and [`Heap::locate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Region index.
    pub region: u32,
    /// Offset of the block's header in the region.
    pub offset: u32,
    /// Whole block size in bytes, tags included.
    pub size: u32,
    /// Whether the block is handed out.
    pub allocated: bool,
    /// Bytes the caller asked for; 0 for a free block.
    pub requested: u32,
}

impl BlockInfo {
    /// The payload's location (valid as an allocation only if `allocated`).
    pub const fn payload(&self) -> Ptr {
        Ptr {
            region: self.region,
            // A block never ends beyond MAX_REGION_BYTES, so this cannot wrap.
            offset: self.offset.wrapping_add(TAG as u32),
        }
    }

    /// Usable payload bytes: the block minus its two tags.
    pub const fn payload_bytes(&self) -> u32 {
        self.size.saturating_sub(2 * TAG as u32)
    }
}

/// A snapshot of a heap's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// The fit policy.
    pub policy: Policy,
    /// The options.
    pub flags: HeapFlags,
    /// Regions in use.
    pub regions: u32,
    /// Bytes of all regions.
    pub total_bytes: u64,
    /// Payload bytes of allocated blocks (handed out).
    pub used_bytes: u64,
    /// Bytes asked for by live allocations; `used - requested` is internal
    /// fragmentation.
    pub requested_bytes: u64,
    /// Tags of every block plus each region's start map, padding and tail.
    pub overhead_bytes: u64,
    /// Payload bytes of free blocks: what could be handed out without a new
    /// region. `used + overhead + free == total`.
    pub free_bytes: u64,
    /// Payload bytes of the largest free block: the largest request that
    /// can succeed now.
    pub largest_free_bytes: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Live allocations.
    pub live_allocs: u64,
    /// Successful allocations since creation.
    pub allocs: u64,
    /// Successful frees since creation.
    pub frees: u64,
    /// Allocations that failed with [`HeapError::NoMemory`].
    pub failures: u64,
    /// Free blocks examined by allocation searches.
    pub search_steps: u64,
    /// Free blocks walked to find address-ordered insertion points.
    pub insert_steps: u64,
}

/// The largest request a fresh region of `region_bytes` bytes can serve; 0
/// if the heap would reject such a region. Lets the glue pick a region size
/// after [`HeapError::NoMemory`].
pub const fn max_alloc_in(region_bytes: usize) -> usize {
    match layout(region_bytes) {
        Some((start, end)) => end - start - 2 * TAG,
        None => 0,
    }
}

/// The block area `[start, end)` of a region of `len` bytes, or `None` if
/// the region is too small or too large.
const fn layout(len: usize) -> Option<(usize, usize)> {
    if len > MAX_REGION_BYTES || len < TAG {
        return None;
    }
    let start = round_up(map_bytes(len), ALIGN) + TAG;
    // The last block must end 8 mod 16 as well, so the next header would
    // again precede an aligned payload.
    let end = (len - TAG) / ALIGN * ALIGN + TAG;
    if end < start || end - start < MIN_BLOCK {
        return None;
    }
    Some((start, end))
}

/// Bytes of the start map: one bit for each granule of the region.
const fn map_bytes(len: usize) -> usize {
    len / ALIGN / 8 + 1
}

const fn round_up(x: usize, align: usize) -> usize {
    x.next_multiple_of(align)
}

/// The block size that serves a request of `size` bytes.
#[inline]
const fn block_size(size: usize) -> Option<usize> {
    if size == 0 || size > MAX_ALLOC {
        return None;
    }
    let n = round_up(size + 2 * TAG, ALIGN);
    Some(if n < MIN_BLOCK { MIN_BLOCK } else { n })
}

/// The segregated size class of a block of `size` bytes.
#[inline]
fn class(size: usize) -> usize {
    if size < LINEAR {
        return size / ALIGN;
    }
    let log2 = (usize::BITS - 1).saturating_sub(size.leading_zeros());
    let sub = (size >> (log2 - SUB_LOG2)) & (SUBCLASSES - 1);
    let c = LINEAR / ALIGN + (log2 - LINEAR_LOG2) as usize * SUBCLASSES + sub;
    c.min(NCLASSES - 1)
}

/// The smallest block size of class `c`: every block of class `c` or above
/// serves a request for that many bytes.
#[inline]
fn class_floor(c: usize) -> usize {
    let linear = LINEAR / ALIGN;
    if c < linear {
        return c * ALIGN;
    }
    let log2 = LINEAR_LOG2 as usize + (c - linear) / SUBCLASSES;
    let sub = (c - linear) % SUBCLASSES;
    (1 << log2) + (sub << (log2 - SUB_LOG2 as usize))
}

/// The link word naming block `b` of region `r`.
#[inline]
fn key(r: usize, b: usize) -> u64 {
    ((r as u64) << 32) | b as u64
}

#[inline]
fn unkey(k: u64) -> (usize, usize) {
    ((k >> 32) as usize, (k & 0xffff_ffff) as usize)
}

/// The little-endian word at `off` of `mem`, if it lies wholly inside:
/// one bounds check and one load.
#[inline]
fn load(mem: &[u8], off: usize) -> Option<u64> {
    let bytes = mem.get(off..off.checked_add(TAG)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Stores `v` little-endian at `off` of `mem`; `None` (and no change) if
/// the word does not lie wholly inside.
#[inline]
fn store(mem: &mut [u8], off: usize, v: u64) -> Option<()> {
    let dst: &mut [u8; TAG] = mem.get_mut(off..off.checked_add(TAG)?)?.try_into().ok()?;
    *dst = v.to_le_bytes();
    Some(())
}

/// Whether the start map in `mem` marks payload offset `p`.
#[inline]
fn map_bit(mem: &[u8], p: usize) -> bool {
    let byte = mem.get(p / ALIGN / 8).copied().unwrap_or(0);
    (byte >> (p / ALIGN % 8)) & 1 != 0
}

/// The 24-bit check value of a tag with low bits `low` for the block at
/// offset `b`: a multiplicative hash, so a single changed bit anywhere
/// changes it, and a tag copied to another offset does not verify.
#[inline]
fn check24(b: usize, low: u64) -> u64 {
    let x = (low ^ ((b as u64) << 24).rotate_left(17) ^ 0x5eed_a110_c0de_cafe)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x >> CHECK_SHIFT
}

/// A decoded, validated boundary tag.
#[derive(Debug, Clone, Copy)]
struct Tag {
    size: usize,
    allocated: bool,
    slack: usize,
}

/// The list links of a free block.
#[derive(Debug, Clone, Copy)]
struct Links {
    prev: u64,
    next: u64,
}

/// An owned region and its block area.
struct Region<M> {
    mem: M,
    start: usize,
    end: usize,
}

/// Running totals, kept so that [`Heap::stats`] is O(1) apart from the
/// largest free block, and cross-checked by [`Heap::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    regions: u64,
    total: u64,
    region_overhead: u64,
    alloc_blocks: u64,
    alloc_payload: u64,
    requested: u64,
    free_blocks: u64,
    free_payload: u64,
    allocs: u64,
    frees: u64,
    failures: u64,
    search_steps: u64,
    insert_steps: u64,
}

impl Counters {
    const ZERO: Counters = Counters {
        regions: 0,
        total: 0,
        region_overhead: 0,
        alloc_blocks: 0,
        alloc_payload: 0,
        requested: 0,
        free_blocks: 0,
        free_payload: 0,
        allocs: 0,
        frees: 0,
        failures: 0,
        search_steps: 0,
        insert_steps: 0,
    };
}

/// Counter updates saturate: the values are bounded by the regions' sizes
/// as long as the tags are intact, and a forged tag must not turn into an
/// overflow panic. [`Heap::check`] reports any drift.
#[inline]
fn add(c: &mut u64, v: usize) {
    *c = c.saturating_add(v as u64);
}

#[inline]
fn sub(c: &mut u64, v: usize) {
    *c = c.saturating_sub(v as u64);
}

/// A variable-size heap over at most `R` caller-provided regions.
pub struct Heap<M, const R: usize = MAX_REGIONS> {
    policy: Policy,
    flags: HeapFlags,
    regions: [Option<Region<M>>; R],
    /// List heads; only `heads[0]` is used unless the policy is segregated.
    heads: [u64; NCLASSES],
    /// Bit `k` set iff `heads[k]` is not empty, so segregated fit finds the
    /// next non-empty class with a `trailing_zeros` per word.
    nonempty: [u64; MAP_WORDS],
    /// Next fit's roving pointer: the free block where the next search
    /// starts, or `NIL` for the list head.
    rover: u64,
    corrupt: Option<Ptr>,
    c: Counters,
    /// Whether `free` may try [`Heap::free_fast`] (unordered lists, no
    /// DEBUG, no rover), and `alloc` [`Heap::alloc_fast`] (that and
    /// segregated fit). Fixed at creation; tests clear them to compare the
    /// fast paths with the general path.
    pub(crate) fast_free: bool,
    pub(crate) fast_alloc: bool,
}

impl<M: AsRef<[u8]> + AsMut<[u8]>, const R: usize> Heap<M, R> {
    /// An empty heap; add memory with [`Heap::add_region`].
    pub const fn new(policy: Policy, flags: HeapFlags) -> Self {
        let fast_free = !flags.contains(HeapFlags::DEBUG)
            && (matches!(policy, Policy::SegregatedFit) || flags.contains(HeapFlags::LIFO))
            && !matches!(policy, Policy::NextFit);
        Self {
            policy,
            flags,
            regions: [const { None }; R],
            heads: [NIL; NCLASSES],
            nonempty: [0; MAP_WORDS],
            rover: NIL,
            corrupt: None,
            c: Counters::ZERO,
            fast_free,
            fast_alloc: fast_free && matches!(policy, Policy::SegregatedFit),
        }
    }

    /// The fit policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The options.
    pub fn flags(&self) -> HeapFlags {
        self.flags
    }

    /// Where corruption was first found, if it was.
    pub fn corruption(&self) -> Option<Ptr> {
        self.corrupt
    }

    /// The buffer of region `index`, to turn a [`Ptr`] into an address.
    pub fn region(&self, index: u32) -> Option<&M> {
        self.slot(index as usize).map(|reg| &reg.mem)
    }

    /// The buffer of region `index`, to read and write payloads. Writing
    /// outside live payloads damages the heap's metadata; the heap then
    /// reports [`HeapError::CorruptTag`] but never misbehaves otherwise.
    pub fn region_mut(&mut self, index: u32) -> Option<&mut M> {
        match self.regions.get_mut(index as usize) {
            Some(Some(reg)) => Some(&mut reg.mem),
            _ => None,
        }
    }

    /// Adds `mem` as a new region, wholly free, and returns its index (the
    /// lowest free slot). On error `mem` is dropped and nothing changes.
    ///
    /// [`HeapError::Invalid`] if the buffer is shorter than a start map plus
    /// one [`MIN_BLOCK`] or longer than [`MAX_REGION_BYTES`].
    pub fn add_region(&mut self, mut mem: M) -> Result<u32, HeapError> {
        if self.corrupt.is_some() {
            return Err(HeapError::Poisoned);
        }
        let (start, end) = layout(mem.as_ref().len()).ok_or(HeapError::Invalid)?;
        let r = self
            .regions
            .iter()
            .position(Option::is_none)
            .ok_or(HeapError::RegionsFull)?;
        let index = u32::try_from(r).map_err(|_| HeapError::RegionsFull)?;
        let size = end - start;
        let list = self.list_of(size);
        let mut steps = 0;
        let pred = self.find_pred(list, key(r, start), &mut steps);
        self.c.insert_steps = self.c.insert_steps.saturating_add(steps);
        let pred = pred.map_err(|e| self.latch(e))?;

        // A recycled buffer may hold anything: clear the start map and pad.
        let len = mem.as_ref().len();
        if let Some(head) = mem.as_mut().get_mut(..start) {
            head.fill(0);
        }
        if let Some(slot) = self.regions.get_mut(r) {
            *slot = Some(Region { mem, start, end });
        }
        let done = self
            .set_bit(r, start + TAG, true)
            .and_then(|()| self.write_tags(r, start, size, false, 0))
            .and_then(|()| self.link_after(list, r, start, pred));
        done.map_err(|e| self.latch(e))?;

        add(&mut self.c.regions, 1);
        add(&mut self.c.total, len);
        add(&mut self.c.region_overhead, len - size);
        add(&mut self.c.free_blocks, 1);
        add(&mut self.c.free_payload, size - 2 * TAG);
        Ok(index)
    }

    /// Takes region `index` back, only if it is one wholly free block;
    /// otherwise (or if the heap is poisoned) returns `None` and changes
    /// nothing.
    pub fn remove_region(&mut self, index: u32) -> Option<M> {
        if self.corrupt.is_some() {
            return None;
        }
        let r = index as usize;
        let (start, end) = {
            let reg = self.slot(r)?;
            (reg.start, reg.end)
        };
        let t = match self.block(r, start) {
            Ok(t) => t,
            Err(e) => {
                self.latch(e);
                return None;
            }
        };
        if t.allocated || t.size != end - start {
            return None;
        }
        let list = self.list_of(t.size);
        let done = self
            .unlink_check(list, r, start)
            .and_then(|links| self.unlink(list, r, start, links).map(|_| ()));
        if let Err(e) = done {
            self.latch(e);
            return None;
        }
        let reg = self.regions.get_mut(r)?.take()?;
        let len = reg.mem.as_ref().len();
        sub(&mut self.c.regions, 1);
        sub(&mut self.c.total, len);
        sub(&mut self.c.region_overhead, len.saturating_sub(t.size));
        sub(&mut self.c.free_blocks, 1);
        sub(&mut self.c.free_payload, t.size - 2 * TAG);
        Some(reg.mem)
    }

    /// Allocates `size` bytes with [`ALIGN`]-aligned offset.
    ///
    /// [`HeapError::Invalid`] for 0 or more than [`MAX_ALLOC`];
    /// [`HeapError::NoMemory`] when no free block fits.
    pub fn alloc(&mut self, size: usize) -> Result<Ptr, HeapError> {
        if self.corrupt.is_some() {
            return Err(HeapError::Poisoned);
        }
        let n = block_size(size).ok_or(HeapError::Invalid)?;
        if self.fast_alloc {
            match self.alloc_fast(n, size) {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(e) => return Err(self.latch(e)),
            }
        }
        self.alloc_general(n, size)
    }

    /// [`Heap::alloc`] of an `n`-byte block without the fast path.
    #[inline]
    fn alloc_general(&mut self, n: usize, size: usize) -> Result<Ptr, HeapError> {
        let mut steps = 0;
        let found = self.find(n, &mut steps);
        self.c.search_steps = self.c.search_steps.saturating_add(steps);
        match found {
            Err(e) => Err(self.latch(e)),
            Ok(None) => {
                self.c.failures = self.c.failures.saturating_add(1);
                Err(HeapError::NoMemory)
            }
            Ok(Some((r, b, free))) => self.take(r, b, free, n, size).map_err(|e| self.latch(e)),
        }
    }

    /// Frees the allocation at `ptr` and merges it with free neighbours.
    ///
    /// [`HeapError::Invalid`] if `ptr` is not the payload start of a live
    /// allocation of this heap (double frees included); nothing changes.
    pub fn free(&mut self, ptr: Ptr) -> Result<(), HeapError> {
        if self.corrupt.is_some() {
            return Err(HeapError::Poisoned);
        }
        if self.fast_free {
            match self.free_fast(ptr) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => return Err(self.latch(e)),
            }
        }
        self.free_general(ptr)
    }

    /// [`Heap::free`] without the fast path.
    #[inline]
    fn free_general(&mut self, ptr: Ptr) -> Result<(), HeapError> {
        let (r, b, t) = self.resolve(ptr).map_err(|e| self.latch(e))?;
        self.release(r, b, t).map_err(|e| self.latch(e))
    }

    /// Validates that `ptr` is a live allocation and describes its block.
    pub fn locate(&self, ptr: Ptr) -> Result<BlockInfo, HeapError> {
        let (r, b, t) = self.resolve(ptr)?;
        Ok(self.info(r, b, t))
    }

    /// Calls `f` for every block of every region in address order. Stops
    /// with the error at the first damaged tag.
    pub fn for_each_block(&self, mut f: impl FnMut(BlockInfo)) -> Result<(), HeapError> {
        for r in 0..R {
            let Some(reg) = self.slot(r) else { continue };
            let (mut b, end) = (reg.start, reg.end);
            while b < end {
                let t = self.block(r, b)?;
                f(self.info(r, b, t));
                // block() guarantees b + size <= end.
                b += t.size;
            }
        }
        Ok(())
    }

    /// The current figures. O(free blocks) for the largest free block (only
    /// the highest non-empty class under segregated fit); a damaged list
    /// just ends that walk early.
    pub fn stats(&self) -> HeapStats {
        let c = &self.c;
        HeapStats {
            policy: self.policy,
            flags: self.flags,
            regions: c.regions as u32,
            total_bytes: c.total,
            used_bytes: c.alloc_payload,
            requested_bytes: c.requested,
            overhead_bytes: self.overhead(),
            free_bytes: c.free_payload,
            largest_free_bytes: self.largest_free(),
            free_blocks: c.free_blocks,
            live_allocs: c.alloc_blocks,
            allocs: c.allocs,
            frees: c.frees,
            failures: c.failures,
            search_steps: c.search_steps,
            insert_steps: c.insert_steps,
        }
    }

    /// The byte-level summary shared by every rkalloc allocator: tags and
    /// start maps are metadata, free block payloads are free.
    pub fn frag(&self) -> FragReport {
        FragReport {
            requested_bytes: self.c.requested,
            handed_out_bytes: self.c.alloc_payload,
            metadata_bytes: self.overhead(),
            free_bytes: self.c.free_payload,
            largest_free_bytes: self.largest_free(),
        }
    }

    /// Verifies every invariant: tags valid and headers equal to footers,
    /// blocks tiling each block area exactly, start map bits exactly at
    /// block starts, no two adjacent free blocks, the free lists holding
    /// exactly the free blocks (in their class, address ordered unless
    /// LIFO or segregated, with consistent back links), and the counters.
    pub fn check(&self) -> Result<(), HeapError> {
        let mut n = Counters::ZERO;
        for r in 0..R {
            let Some(reg) = self.slot(r) else { continue };
            let len = reg.mem.as_ref().len();
            add(&mut n.regions, 1);
            add(&mut n.total, len);
            add(
                &mut n.region_overhead,
                len.saturating_sub(reg.end - reg.start),
            );
            let (mut b, mut prev_free, mut blocks) = (reg.start, false, 0u64);
            while b < reg.end {
                let t = self.block(r, b)?;
                if t.allocated {
                    add(&mut n.alloc_blocks, 1);
                    add(&mut n.alloc_payload, t.size - 2 * TAG);
                    add(&mut n.requested, t.size - 2 * TAG - t.slack);
                } else {
                    if prev_free {
                        return Err(inconsistent(r, b, "adjacent free blocks"));
                    }
                    add(&mut n.free_blocks, 1);
                    add(&mut n.free_payload, t.size - 2 * TAG);
                }
                prev_free = !t.allocated;
                blocks += 1;
                b += t.size;
            }
            let map = reg.mem.as_ref().get(..map_bytes(len)).unwrap_or(&[]);
            let bits: u64 = map.iter().map(|x| u64::from(x.count_ones())).sum();
            if bits != blocks {
                return Err(inconsistent(r, 0, "start map bit without a block"));
            }
        }

        let mut listed = 0u64;
        for list in 0..NCLASSES {
            let head = self.heads[list];
            if self.is_nonempty(list) != (head != NIL) {
                return Err(inconsistent(0, 0, "non-empty class mask"));
            }
            if list > 0 && head != NIL && self.policy != Policy::SegregatedFit {
                return Err(inconsistent(0, 0, "class list used without segregated fit"));
            }
            let (mut prev, mut k) = (NIL, head);
            while k != NIL {
                let (r, b, t) = self.node(k)?;
                listed += 1;
                if listed > n.free_blocks {
                    return Err(inconsistent(r, b, "free lists longer than free blocks"));
                }
                if self.list_of(t.size) != list {
                    return Err(inconsistent(r, b, "free block in the wrong class"));
                }
                if self.rd(r, b + PREV) != Some(prev) {
                    return Err(inconsistent(r, b, "broken back link"));
                }
                if self.ordered() && prev != NIL && prev >= k {
                    return Err(inconsistent(r, b, "free list not address ordered"));
                }
                prev = k;
                k = self.rd(r, b + NEXT).unwrap_or(NIL);
            }
        }
        if listed != n.free_blocks {
            return Err(inconsistent(0, 0, "free block missing from the lists"));
        }
        if self.rover != NIL {
            if self.policy != Policy::NextFit {
                return Err(inconsistent(0, 0, "rover without next fit"));
            }
            self.node(self.rover)?;
        }
        let mut want = self.c;
        (want.allocs, want.frees, want.failures) = (0, 0, 0);
        (want.search_steps, want.insert_steps) = (0, 0);
        if n != want {
            return Err(inconsistent(0, 0, "counters disagree with the blocks"));
        }
        Ok(())
    }

    // ---- internals -------------------------------------------------------

    fn slot(&self, r: usize) -> Option<&Region<M>> {
        self.regions.get(r)?.as_ref()
    }

    fn overhead(&self) -> u64 {
        let blocks = self.c.alloc_blocks.saturating_add(self.c.free_blocks);
        let tags = blocks.saturating_mul(2 * TAG as u64);
        self.c.region_overhead.saturating_add(tags)
    }

    fn list_of(&self, size: usize) -> usize {
        match self.policy {
            Policy::SegregatedFit => class(size),
            _ => 0,
        }
    }

    /// Whether free lists are kept in address order: the default for the
    /// single list of first, next and best fit. Segregated fit's classes
    /// are always LIFO, which keeps every one of its operations O(1).
    fn ordered(&self) -> bool {
        self.policy != Policy::SegregatedFit && !self.flags.contains(HeapFlags::LIFO)
    }

    fn debug(&self) -> bool {
        self.flags.contains(HeapFlags::DEBUG)
    }

    fn is_nonempty(&self, list: usize) -> bool {
        let word = self.nonempty.get(list / 64).copied().unwrap_or(0);
        (word >> (list % 64)) & 1 != 0
    }

    fn mark(&mut self, list: usize, on: bool) {
        mark_in(&mut self.nonempty, list, on);
    }

    /// The first non-empty list at or above `list`.
    fn nonempty_from(&self, list: usize) -> Option<usize> {
        let mut i = list / 64;
        let mut word = self.nonempty.get(i)? & (u64::MAX << (list % 64));
        loop {
            if word != 0 {
                return Some(i * 64 + word.trailing_zeros() as usize);
            }
            i += 1;
            word = *self.nonempty.get(i)?;
        }
    }

    /// The last non-empty list.
    fn top_nonempty(&self) -> Option<usize> {
        let mut i = MAP_WORDS;
        while i > 0 {
            i -= 1;
            let word = self.nonempty.get(i).copied().unwrap_or(0);
            if word != 0 {
                return Some(i * 64 + 63 - word.leading_zeros() as usize);
            }
        }
        None
    }

    /// Records the first corruption, so it is reported once and the heap
    /// refuses to go on; passes every error through.
    fn latch(&mut self, e: HeapError) -> HeapError {
        if let HeapError::CorruptTag { region, offset } = e {
            self.corrupt = Some(Ptr { region, offset });
        }
        e
    }

    fn info(&self, r: usize, b: usize, t: Tag) -> BlockInfo {
        BlockInfo {
            region: r as u32,
            offset: b as u32,
            size: t.size as u32,
            allocated: t.allocated,
            requested: if t.allocated {
                (t.size - 2 * TAG - t.slack) as u32
            } else {
                0
            },
        }
    }

    #[inline]
    fn rd(&self, r: usize, off: usize) -> Option<u64> {
        load(self.slot(r)?.mem.as_ref(), off)
    }

    #[inline]
    fn wr(&mut self, r: usize, off: usize, v: u64) -> Result<(), HeapError> {
        match self.regions.get_mut(r) {
            Some(Some(reg)) => store(reg.mem.as_mut(), off, v).ok_or(corrupt(r, off)),
            _ => Err(corrupt(r, off)),
        }
    }

    #[inline]
    fn set_bit(&mut self, r: usize, p: usize, on: bool) -> Result<(), HeapError> {
        let byte = match self.regions.get_mut(r) {
            Some(Some(reg)) => reg.mem.as_mut().get_mut(p / ALIGN / 8),
            _ => None,
        };
        let byte = byte.ok_or(corrupt(r, p))?;
        let mask = 1u8 << (p / ALIGN % 8);
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
        Ok(())
    }

    #[inline]
    fn encode(&self, b: usize, size: usize, allocated: bool, slack: usize) -> u64 {
        let low = size as u64 | u64::from(allocated) | ((slack as u64) << SLACK_SHIFT);
        if self.flags.contains(HeapFlags::DEBUG) {
            low | (check24(b, low) << CHECK_SHIFT)
        } else {
            low
        }
    }

    #[inline]
    fn write_tags(
        &mut self,
        r: usize,
        b: usize,
        size: usize,
        allocated: bool,
        slack: usize,
    ) -> Result<(), HeapError> {
        let w = self.encode(b, size, allocated, slack);
        let f = b + size - TAG;
        let Some(Some(reg)) = self.regions.get_mut(r) else {
            return Err(corrupt(r, b));
        };
        let mem = reg.mem.as_mut();
        store(mem, b, w).ok_or(corrupt(r, b))?;
        store(mem, f, w).ok_or(corrupt(r, f))
    }

    /// Reads and validates the block at `b` of region `r`: alignment,
    /// start-map bit, tag bits and check value, size within the block area,
    /// footer equal to header.
    fn block(&self, r: usize, b: usize) -> Result<Tag, HeapError> {
        let reg = self.slot(r).ok_or(corrupt(r, b))?;
        if b < reg.start || b >= reg.end || b % ALIGN != TAG || !map_bit(reg.mem.as_ref(), b + TAG)
        {
            return Err(corrupt(r, b));
        }
        self.tags(r, reg, b)
    }

    /// The second half of [`Heap::block`], for callers that have checked
    /// the offset `b` (block area, alignment, start map) themselves: tag
    /// bits and check value, size within the block area, footer equal to
    /// header. `reg` is region `r`.
    #[inline]
    fn tags(&self, r: usize, reg: &Region<M>, b: usize) -> Result<Tag, HeapError> {
        let mem = reg.mem.as_ref();
        let w = load(mem, b).ok_or(corrupt(r, b))?;
        let low = w & LOW_MASK;
        let check = if self.flags.contains(HeapFlags::DEBUG) {
            check24(b, low)
        } else {
            0
        };
        let size = (low & SIZE_MASK) as usize;
        let t = Tag {
            size,
            allocated: low & ALLOCATED != 0,
            slack: (low >> SLACK_SHIFT) as usize,
        };
        let payload = size.saturating_sub(2 * TAG);
        let sane = w >> CHECK_SHIFT == check
            && low & (ALIGN as u64 - 1) & !ALLOCATED == 0
            && size >= MIN_BLOCK
            && size <= reg.end - b
            && if t.allocated {
                t.slack < payload
            } else {
                t.slack == 0
            };
        if !sane {
            return Err(corrupt(r, b));
        }
        let f = b + size - TAG;
        if load(mem, f) != Some(w) {
            return Err(corrupt(r, f));
        }
        Ok(t)
    }

    /// Follows a list link: it must name a valid free block. Fully
    /// validated, for [`Heap::check`] and under [`HeapFlags::DEBUG`].
    fn node(&self, k: u64) -> Result<(usize, usize, Tag), HeapError> {
        let (r, b) = unkey(k);
        let t = self.block(r, b)?;
        if t.allocated {
            return Err(corrupt(r, b));
        }
        Ok((r, b, t))
    }

    /// Follows a list link on the hot path. Under [`HeapFlags::DEBUG`] it
    /// is [`Heap::node`]; otherwise it trusts the heap's own invariants and
    /// checks only what keeps every later access in bounds: a block offset
    /// inside the block area, holding a free tag that fits there. The
    /// footer, start map and list membership are left to [`Heap::check`],
    /// so a forged link costs at most a wrong block, never a panic.
    #[inline]
    fn fnode(&self, k: u64) -> Result<(usize, usize, Tag), HeapError> {
        if self.debug() {
            return self.node(k);
        }
        let (r, b) = unkey(k);
        let reg = self.slot(r).ok_or(corrupt(r, b))?;
        if b < reg.start || b >= reg.end || b % ALIGN != TAG {
            return Err(corrupt(r, b));
        }
        let w = load(reg.mem.as_ref(), b).ok_or(corrupt(r, b))?;
        let size = (w & SIZE_MASK) as usize;
        // Without DEBUG a free tag is its size and nothing else.
        if w & !SIZE_MASK != 0 || size < MIN_BLOCK || size > reg.end - b {
            return Err(corrupt(r, b));
        }
        Ok((
            r,
            b,
            Tag {
                size,
                allocated: false,
                slack: 0,
            },
        ))
    }

    /// One step of a list walk: [`Heap::fnode`] of `k` and its next link,
    /// as `(region, offset, size, next)`, read with one region lookup. The
    /// link lies inside the block that `fnode` accepted, so reading it
    /// early never fails where a later read would not.
    #[inline(always)]
    fn walk(&self, k: u64) -> Result<(usize, usize, usize, u64), HeapError> {
        if self.debug() {
            let (r, b, t) = self.node(k)?;
            return Ok((r, b, t.size, self.next_of(r, b)?));
        }
        let (r, b) = unkey(k);
        let reg = self.slot(r).ok_or(corrupt(r, b))?;
        if b < reg.start || b >= reg.end || b % ALIGN != TAG {
            return Err(corrupt(r, b));
        }
        let mem = reg.mem.as_ref();
        let w = load(mem, b).ok_or(corrupt(r, b))?;
        let size = (w & SIZE_MASK) as usize;
        if w & !SIZE_MASK != 0 || size < MIN_BLOCK || size > reg.end - b {
            return Err(corrupt(r, b));
        }
        let next = load(mem, b + NEXT).ok_or(corrupt(r, b + NEXT))?;
        Ok((r, b, size, next))
    }

    /// The next link of free block `(r, b)`.
    fn next_of(&self, r: usize, b: usize) -> Result<u64, HeapError> {
        let off = b.saturating_add(NEXT);
        self.rd(r, off).ok_or(corrupt(r, off))
    }

    /// The prev link of free block `(r, b)`.
    fn prev_of(&self, r: usize, b: usize) -> Result<u64, HeapError> {
        let off = b.saturating_add(PREV);
        self.rd(r, off).ok_or(corrupt(r, off))
    }

    /// The live allocation whose payload starts at `ptr`, or Invalid.
    fn resolve(&self, ptr: Ptr) -> Result<(usize, usize, Tag), HeapError> {
        let (r, p) = (ptr.region as usize, ptr.offset as usize);
        let reg = self.slot(r).ok_or(HeapError::Invalid)?;
        // The start map decides what is a block, never the bytes in front
        // of `ptr`, which a caller could have written.
        if p % ALIGN != 0 || p < reg.start + TAG || p >= reg.end || !map_bit(reg.mem.as_ref(), p) {
            return Err(HeapError::Invalid);
        }
        // That is all of block()'s offset check for the header at p - TAG.
        let t = self.tags(r, reg, p - TAG)?;
        if !t.allocated {
            return Err(HeapError::Invalid);
        }
        Ok((r, p - TAG, t))
    }

    /// Walks a list from `from` up to (not including) `stop` and returns
    /// the first block of at least `n` bytes, as `(region, offset, size)`.
    fn first_fit(
        &self,
        from: u64,
        stop: u64,
        n: usize,
        steps: &mut u64,
    ) -> Result<Option<(usize, usize, usize)>, HeapError> {
        let mut k = from;
        let mut seen = 0u64;
        while k != NIL && k != stop {
            let (r, b, size, next) = self.walk(k)?;
            seen += 1;
            if seen > self.c.free_blocks {
                // Only a cycle makes a list longer than the free blocks.
                return Err(corrupt(r, b + NEXT));
            }
            if size >= n {
                *steps += seen;
                return Ok(Some((r, b, size)));
            }
            k = next;
        }
        *steps += seen;
        Ok(None)
    }

    fn head(&self, list: usize) -> u64 {
        self.heads.get(list).copied().unwrap_or(NIL)
    }

    /// The policy's choice of free block for a block of `n` bytes, as
    /// `(region, offset, size)`.
    fn find(&self, n: usize, steps: &mut u64) -> Result<Option<(usize, usize, usize)>, HeapError> {
        match self.policy {
            Policy::FirstFit => self.first_fit(self.heads[0], NIL, n, steps),
            Policy::NextFit => {
                let start = if self.rover != NIL {
                    self.rover
                } else {
                    self.heads[0]
                };
                match self.first_fit(start, NIL, n, steps)? {
                    Some(found) => Ok(Some(found)),
                    None => self.first_fit(self.heads[0], start, n, steps),
                }
            }
            Policy::BestFit => {
                let mut best: Option<(usize, usize, usize)> = None;
                let mut k = self.heads[0];
                let mut seen = 0u64;
                while k != NIL {
                    let (r, b, size, next) = self.walk(k)?;
                    seen += 1;
                    if seen > self.c.free_blocks {
                        return Err(corrupt(r, b + NEXT));
                    }
                    if size >= n && best.is_none_or(|(_, _, bs)| size < bs) {
                        best = Some((r, b, size));
                        if size == n {
                            break;
                        }
                    }
                    k = next;
                }
                *steps += seen;
                Ok(best)
            }
            Policy::SegregatedFit => {
                // Every block of class `c` or above fits when `n` is the
                // class's floor, else every block above it: take the head
                // of the first non-empty one, found in the bitmap.
                let c = class(n);
                let fits = if class_floor(c) == n { c } else { c + 1 };
                if let Some(c2) = self.nonempty_from(fits) {
                    let (r, b, t) = self.fnode(self.head(c2))?;
                    *steps += 1;
                    if t.size < n {
                        return Err(corrupt(r, b));
                    }
                    return Ok(Some((r, b, t.size)));
                }
                // Only blocks of the request's own class can still fit.
                self.first_fit(self.head(c), NIL, n, steps)
            }
        }
    }

    /// Hands out `n` bytes of the free block `(r, b)` of `free` bytes for a
    /// request of `size`.
    fn take(
        &mut self,
        r: usize,
        b: usize,
        free: usize,
        n: usize,
        size: usize,
    ) -> Result<Ptr, HeapError> {
        let rest = free - n;
        let a = if rest >= MIN_BLOCK {
            // Carve the tail: the remainder keeps its header offset and so
            // its list position, unless it drops to a smaller class (only
            // under segregated fit, whose classes are LIFO).
            let (old, new) = (self.list_of(free), self.list_of(rest));
            if old != new {
                let links = self.unlink_check(old, r, b)?;
                let mut steps = 0;
                let pred = self.find_pred(new, key(r, b), &mut steps);
                self.c.insert_steps = self.c.insert_steps.saturating_add(steps);
                let pred = pred?;
                self.unlink(old, r, b, links)?;
                self.write_tags(r, b, rest, false, 0)?;
                self.link_after(new, r, b, pred)?;
            } else {
                self.write_tags(r, b, rest, false, 0)?;
            }
            let a = b + rest;
            self.write_tags(r, a, n, true, n - 2 * TAG - size)?;
            self.set_bit(r, a + TAG, true)?;
            if self.policy == Policy::NextFit {
                self.rover = key(r, b);
            }
            sub(&mut self.c.free_payload, n);
            add(&mut self.c.alloc_payload, n - 2 * TAG);
            a
        } else {
            let list = self.list_of(free);
            let links = self.unlink_check(list, r, b)?;
            let next = self.unlink(list, r, b, links)?;
            self.write_tags(r, b, free, true, free - 2 * TAG - size)?;
            if self.policy == Policy::NextFit {
                self.rover = next;
            }
            sub(&mut self.c.free_blocks, 1);
            sub(&mut self.c.free_payload, free - 2 * TAG);
            add(&mut self.c.alloc_payload, free - 2 * TAG);
            b
        };
        add(&mut self.c.alloc_blocks, 1);
        add(&mut self.c.requested, size);
        self.c.allocs = self.c.allocs.saturating_add(1);
        Ok(Ptr {
            region: r as u32,
            offset: (a + TAG) as u32,
        })
    }

    /// The free neighbours of the allocated block `(r, b)` of `size` bytes:
    /// the left one's offset and size, the right one's size. Under
    /// [`HeapFlags::DEBUG`] both neighbours are fully validated; otherwise
    /// a free neighbour's header and footer must agree and fit.
    #[expect(clippy::type_complexity)]
    fn neighbours(
        &self,
        r: usize,
        b: usize,
        size: usize,
    ) -> Result<(Option<(usize, usize)>, Option<usize>), HeapError> {
        let reg = self.slot(r).ok_or(HeapError::Invalid)?;
        let (mem, start, end) = (reg.mem.as_ref(), reg.start, reg.end);
        let debug = self.debug();
        let left = if b > start {
            let w = load(mem, b - TAG).ok_or(corrupt(r, b - TAG))?;
            if w & ALLOCATED != 0 && !debug {
                None
            } else {
                let lsize = (w & SIZE_MASK) as usize;
                let lb = b
                    .checked_sub(lsize)
                    .filter(|&lb| lb >= start)
                    .ok_or(corrupt(r, b - TAG))?;
                let lt = if debug {
                    self.block(r, lb)?
                } else if w & !SIZE_MASK != 0 || lsize < MIN_BLOCK || load(mem, lb) != Some(w) {
                    return Err(corrupt(r, b - TAG));
                } else {
                    Tag {
                        size: lsize,
                        allocated: false,
                        slack: 0,
                    }
                };
                if lt.size != lsize {
                    return Err(corrupt(r, b - TAG));
                }
                (!lt.allocated).then_some((lb, lsize))
            }
        } else {
            None
        };
        let rb = b + size;
        let right = if rb >= end {
            None
        } else if debug {
            let rt = self.block(r, rb)?;
            (!rt.allocated).then_some(rt.size)
        } else {
            let w = load(mem, rb).ok_or(corrupt(r, rb))?;
            let rsize = (w & SIZE_MASK) as usize;
            if w & ALLOCATED != 0 {
                None
            } else if w & !SIZE_MASK != 0 || rsize < MIN_BLOCK || rsize > end - rb {
                return Err(corrupt(r, rb));
            } else {
                Some(rsize)
            }
        };
        Ok((left, right))
    }

    /// Frees the allocated block `(r, b)`, merging free neighbours. The
    /// links involved are validated before the first write.
    ///
    /// In an address-ordered list a merged block takes its neighbour's
    /// place, which is exactly its own (no free block lies between them),
    /// so only a free without a free neighbour walks the list. LIFO lists
    /// and segregated classes unlink the neighbours and push at the head,
    /// except that a neighbour already heading the merged block's list
    /// stays where it is, which gives the same list.
    fn release(&mut self, r: usize, b: usize, t: Tag) -> Result<(), HeapError> {
        let (left, right) = self.neighbours(r, b, t.size)?;
        let rb = b + t.size;
        let ms = left.map_or(b, |(lb, _)| lb);
        let msize = left.map_or(0, |(_, s)| s) + t.size + right.unwrap_or(0);
        let mut merged = 0;

        if self.ordered() {
            let rover_absorbed = self.policy == Policy::NextFit
                && (left.is_some() && self.rover == key(r, ms)
                    || right.is_some() && self.rover == key(r, rb));
            match (left, right) {
                (None, None) => {
                    let mut steps = 0;
                    let pred = self.find_pred(0, key(r, b), &mut steps);
                    self.c.insert_steps = self.c.insert_steps.saturating_add(steps);
                    let pred = pred?;
                    self.link_after(0, r, b, pred)?;
                }
                (Some(_), None) => {}
                (Some(_), Some(_)) => {
                    let links = self.unlink_check(0, r, rb)?;
                    self.unlink(0, r, rb, links)?;
                }
                (None, Some(_)) => {
                    let links = self.unlink_check(0, r, rb)?;
                    self.replace(0, r, b, links)?;
                }
            }
            self.write_tags(r, ms, msize, false, 0)?;
            if rover_absorbed {
                // As if both had been unlinked and the merged block put
                // back: the search resumes after it.
                self.rover = self.next_of(r, ms)?;
            }
        } else {
            let lv = match left {
                Some((lb, lsize)) => {
                    let list = self.list_of(lsize);
                    Some((list, lb, self.unlink_check(list, r, lb)?))
                }
                None => None,
            };
            let rlist = match right {
                Some(rsize) => {
                    let list = self.list_of(rsize);
                    self.unlink_check(list, r, rb)?;
                    Some(list)
                }
                None => None,
            };
            // The merged block belongs at the head of its list. A neighbour
            // that already heads that list takes the merged block's place
            // instead of being unlinked for it to be pushed back: the same
            // list, fewer writes. Not if the rover points at it, which an
            // unlink would move on.
            let mlist = self.list_of(msize);
            let mut placed = false;
            if let Some((list, lb, links)) = lv {
                let k = key(r, lb);
                if list == mlist && self.head(list) == k && self.rover != k {
                    placed = true;
                } else {
                    self.unlink(list, r, lb, links)?;
                }
            }
            if let Some(list) = rlist {
                // Both were valid list members, so unlinking the left one
                // left these (re-read) links valid.
                let links = self.links(r, rb)?;
                let k = key(r, rb);
                if !placed
                    && list == mlist
                    && links.prev == NIL
                    && self.head(list) == k
                    && self.rover != k
                {
                    self.replace(list, r, ms, links)?;
                    placed = true;
                } else {
                    self.unlink(list, r, rb, links)?;
                }
            }
            self.write_tags(r, ms, msize, false, 0)?;
            if !placed {
                self.link_after(mlist, r, ms, NIL)?;
            }
        }
        if let Some((_, lsize)) = left {
            self.set_bit(r, b + TAG, false)?;
            merged += lsize - 2 * TAG;
        }
        if let Some(rsize) = right {
            self.set_bit(r, rb + TAG, false)?;
            merged += rsize - 2 * TAG;
        }

        let payload = t.size - 2 * TAG;
        sub(&mut self.c.alloc_blocks, 1);
        sub(&mut self.c.alloc_payload, payload);
        sub(&mut self.c.requested, payload - t.slack);
        sub(
            &mut self.c.free_blocks,
            usize::from(left.is_some()) + usize::from(right.is_some()),
        );
        add(&mut self.c.free_blocks, 1);
        add(&mut self.c.free_payload, msize - 2 * TAG - merged);
        self.c.frees = self.c.frees.saturating_add(1);
        Ok(())
    }

    /// [`Heap::find`] and [`Heap::take`] of segregated fit without DEBUG,
    /// on the bytes of the chosen block's region, borrowed once together
    /// with the lists and counters.
    ///
    /// `Ok(None)`, with nothing changed, unless the first non-empty class
    /// that fits heads a plausible block and every link the operation
    /// writes through names that block's region: then the general path
    /// takes over and reports whatever it finds. Otherwise it performs the
    /// general path's reads and writes in the same order, so the result
    /// (and the error of a failing write) is the same.
    #[inline(always)]
    fn alloc_fast(&mut self, n: usize, size: usize) -> Result<Option<Ptr>, HeapError> {
        let c = class(n);
        let fits = if class_floor(c) == n { c } else { c + 1 };
        let Some(c2) = self.nonempty_from(fits) else {
            return Ok(None);
        };
        let Heap {
            regions,
            heads,
            nonempty,
            c: cnt,
            ..
        } = self;
        let me = heads.get(c2).copied().unwrap_or(NIL);
        let (r, b) = unkey(me);
        let Some(Some(reg)) = regions.get_mut(r) else {
            return Ok(None);
        };
        let (start, end) = (reg.start, reg.end);
        let mem = reg.mem.as_mut();
        // Always true (add_region's layout); it lets the compiler drop
        // bounds checks of offsets already checked against `end`.
        if end > mem.len() {
            return Ok(None);
        }
        // Heap::fnode, and the block must fit.
        let Some(free) = free_size(mem, start, end, b) else {
            return Ok(None);
        };
        if free < n {
            return Ok(None);
        }
        let rest = free - n;
        let split = rest >= MIN_BLOCK;
        let (old, new) = (class(free), class(rest));
        let links = if !split || old != new {
            match local_links(mem, heads, old, r, b) {
                Some(links) => links,
                None => return Ok(None),
            }
        } else {
            Links {
                prev: NIL,
                next: NIL,
            }
        };
        if split && old != new {
            // Heap::find_pred validates the head the remainder is pushed
            // in front of; an unlink from `old` leaves `heads[new]` alone.
            let head = heads.get(new).copied().unwrap_or(NIL);
            if head != NIL {
                let (hr, hb) = unkey(head);
                if hr != r || free_size(mem, start, end, hb).is_none() {
                    return Ok(None);
                }
            }
        }

        // Validated: from here on this is Heap::take, write for write.
        cnt.search_steps = cnt.search_steps.saturating_add(1);
        let a = if split {
            if old != new {
                local_unlink(mem, heads, nonempty, old, r, links)?;
                local_tags(mem, r, b, rest, false, 0)?;
                local_push(mem, heads, nonempty, new, r, b)?;
            } else {
                local_tags(mem, r, b, rest, false, 0)?;
            }
            let a = b + rest;
            local_tags(mem, r, a, n, true, n - 2 * TAG - size)?;
            local_bit(mem, r, a + TAG, true)?;
            sub(&mut cnt.free_payload, n);
            add(&mut cnt.alloc_payload, n - 2 * TAG);
            a
        } else {
            local_unlink(mem, heads, nonempty, old, r, links)?;
            local_tags(mem, r, b, free, true, free - 2 * TAG - size)?;
            sub(&mut cnt.free_blocks, 1);
            sub(&mut cnt.free_payload, free - 2 * TAG);
            add(&mut cnt.alloc_payload, free - 2 * TAG);
            b
        };
        add(&mut cnt.alloc_blocks, 1);
        add(&mut cnt.requested, size);
        cnt.allocs = cnt.allocs.saturating_add(1);
        Ok(Some(Ptr {
            region: r as u32,
            offset: (a + TAG) as u32,
        }))
    }

    /// [`Heap::resolve`] and [`Heap::release`] for unordered lists without
    /// DEBUG or rover, on the bytes of `ptr`'s region, borrowed once
    /// together with the lists and counters.
    ///
    /// `Ok(false)`, with nothing changed, unless `ptr` passes the full
    /// validation of [`Heap::resolve`], the neighbours pass that of
    /// [`Heap::neighbours`] and the unlink checks, and every link written
    /// through names `ptr`'s region (and a block-aligned offset): then the
    /// general path takes over and reports whatever it finds. Otherwise it
    /// performs the general path's reads and writes in the same order.
    #[inline(always)]
    fn free_fast(&mut self, ptr: Ptr) -> Result<bool, HeapError> {
        let seg = self.policy == Policy::SegregatedFit;
        let list_of = |size| if seg { class(size) } else { 0 };
        let Heap {
            regions,
            heads,
            nonempty,
            c: cnt,
            ..
        } = self;
        let (r, p) = (ptr.region as usize, ptr.offset as usize);
        let Some(Some(reg)) = regions.get_mut(r) else {
            return Ok(false);
        };
        let (start, end) = (reg.start, reg.end);
        let mem = reg.mem.as_mut();
        // Always true (add_region's layout); it lets the compiler drop
        // bounds checks of offsets already checked against `end`.
        if end > mem.len() {
            return Ok(false);
        }

        // Heap::resolve: the start map marks `p`, the header is a sane
        // allocated tag without check value and the footer equals it.
        if p % ALIGN != 0 || p < start + TAG || p >= end || !map_bit(mem, p) {
            return Ok(false);
        }
        let b = p - TAG;
        let Some(w) = load(mem, b) else {
            return Ok(false);
        };
        let size = (w & SIZE_MASK) as usize;
        let slack = ((w & LOW_MASK) >> SLACK_SHIFT) as usize;
        if w >> CHECK_SHIFT != 0
            || w & (ALIGN as u64 - 1) != ALLOCATED
            || size < MIN_BLOCK
            || size > end - b
            || slack >= size - 2 * TAG
            || load(mem, b + size - TAG) != Some(w)
        {
            return Ok(false);
        }

        // Heap::neighbours without DEBUG.
        let left = if b > start {
            let Some(lw) = load(mem, b - TAG) else {
                return Ok(false);
            };
            if lw & ALLOCATED != 0 {
                None
            } else {
                let lsize = (lw & SIZE_MASK) as usize;
                let lb = match b.checked_sub(lsize) {
                    Some(lb) if lb >= start => lb,
                    _ => return Ok(false),
                };
                if lw & !SIZE_MASK != 0 || lsize < MIN_BLOCK || load(mem, lb) != Some(lw) {
                    return Ok(false);
                }
                Some((lb, lsize))
            }
        } else {
            None
        };
        let rb = b + size;
        let right = if rb >= end {
            None
        } else {
            let Some(rw) = load(mem, rb) else {
                return Ok(false);
            };
            let rsize = (rw & SIZE_MASK) as usize;
            if rw & ALLOCATED != 0 {
                None
            } else if rw & !SIZE_MASK != 0 || rsize < MIN_BLOCK || rsize > end - rb {
                return Ok(false);
            } else {
                Some(rsize)
            }
        };
        let ms = left.map_or(b, |(lb, _)| lb);
        let msize = left.map_or(0, |(_, s)| s) + size + right.unwrap_or(0);

        // Heap::release's unlink checks, restricted to region `r`.
        let lv = match left {
            Some((lb, lsize)) => {
                let list = list_of(lsize);
                match local_links(mem, heads, list, r, lb) {
                    Some(links) => Some((list, lb, links)),
                    None => return Ok(false),
                }
            }
            None => None,
        };
        let rlist = match right {
            Some(rsize) => {
                let list = list_of(rsize);
                if local_links(mem, heads, list, r, rb).is_none() {
                    return Ok(false);
                }
                Some(list)
            }
            None => None,
        };
        // The final push writes the back link of `mlist`'s head. If that
        // head lies in another region, neither neighbour heads `mlist`, so
        // the unlinks leave it there: fall back. Otherwise the head at the
        // push is it or a link of region `r` the unlinks wrote.
        let mlist = list_of(msize);
        let mhead = heads.get(mlist).copied().unwrap_or(NIL);
        if mhead != NIL && unkey(mhead).0 != r {
            return Ok(false);
        }

        // Validated: from here on this is Heap::release, write for write.
        let mut placed = false;
        if let Some((list, lb, links)) = lv {
            let k = key(r, lb);
            if list == mlist && heads.get(list) == Some(&k) {
                placed = true;
            } else {
                local_unlink(mem, heads, nonempty, list, r, links)?;
            }
        }
        if let Some(list) = rlist {
            let (n, p) = (rb + NEXT, rb + PREV);
            let next = load(mem, n).ok_or(corrupt(r, n))?;
            let prev = load(mem, p).ok_or(corrupt(r, p))?;
            // The left unlink wrote only whole words at block-aligned link
            // offsets, and only its own validated links (of region `r`), so
            // these still name region `r`: a failure here is unreachable.
            for l in [prev, next] {
                if l != NIL && unkey(l).0 != r {
                    return Err(corrupt(r, p));
                }
            }
            let links = Links { prev, next };
            let k = key(r, rb);
            if !placed && list == mlist && prev == NIL && heads.get(list) == Some(&k) {
                // Heap::replace.
                let me = key(r, ms);
                let (n, p) = (ms + NEXT, ms + PREV);
                store(mem, n, next).ok_or(corrupt(r, n))?;
                store(mem, p, prev).ok_or(corrupt(r, p))?;
                local_relink(mem, heads, list, r, links, me, me)?;
                placed = true;
            } else {
                local_unlink(mem, heads, nonempty, list, r, links)?;
            }
        }
        local_tags(mem, r, ms, msize, false, 0)?;
        if !placed {
            local_push(mem, heads, nonempty, mlist, r, ms)?;
        }
        let mut merged = 0;
        if let Some((_, lsize)) = left {
            local_bit(mem, r, b + TAG, false)?;
            merged += lsize - 2 * TAG;
        }
        if let Some(rsize) = right {
            local_bit(mem, r, rb + TAG, false)?;
            merged += rsize - 2 * TAG;
        }

        let payload = size - 2 * TAG;
        sub(&mut cnt.alloc_blocks, 1);
        sub(&mut cnt.alloc_payload, payload);
        sub(&mut cnt.requested, payload - slack);
        sub(
            &mut cnt.free_blocks,
            usize::from(left.is_some()) + usize::from(right.is_some()),
        );
        add(&mut cnt.free_blocks, 1);
        add(&mut cnt.free_payload, msize - 2 * TAG - merged);
        cnt.frees = cnt.frees.saturating_add(1);
        Ok(true)
    }

    /// The node after which block key `me` goes in list `list`: the last
    /// one ordered before it, or `NIL` for the head (always for unordered
    /// lists). Validates the nodes around the insertion point.
    #[inline]
    fn find_pred(&self, list: usize, me: u64, steps: &mut u64) -> Result<u64, HeapError> {
        let head = self.head(list);
        if !self.ordered() {
            if head != NIL {
                self.fnode(head)?;
            }
            return Ok(NIL);
        }
        let (mut pred, mut k, mut seen) = (NIL, head, 0u64);
        while k != NIL {
            let (r, b, _, next) = self.walk(k)?;
            if k >= me {
                break;
            }
            seen += 1;
            if seen > self.c.free_blocks {
                return Err(corrupt(r, b + NEXT));
            }
            pred = k;
            k = next;
        }
        *steps += seen;
        Ok(pred)
    }

    /// The `(prev, next)` links of free block `(r, b)`, unchecked.
    #[inline]
    fn links(&self, r: usize, b: usize) -> Result<Links, HeapError> {
        let (n, p) = (b.saturating_add(NEXT), b.saturating_add(PREV));
        let mem = self.slot(r).ok_or(corrupt(r, n))?.mem.as_ref();
        let next = load(mem, n).ok_or(corrupt(r, n))?;
        let prev = load(mem, p).ok_or(corrupt(r, p))?;
        Ok(Links { prev, next })
    }

    /// Validates what unlinking free block `(r, b)` from `list` will touch:
    /// both neighbours point back at it (and, under DEBUG, are valid free
    /// blocks). Returns the links for [`Heap::unlink`].
    #[inline(always)]
    fn unlink_check(&self, list: usize, r: usize, b: usize) -> Result<Links, HeapError> {
        let me = key(r, b);
        let Links { prev, next } = self.links(r, b)?;
        if prev == NIL {
            if self.heads.get(list) != Some(&me) {
                return Err(corrupt(r, b + PREV));
            }
        } else {
            let (pr, pb) = unkey(prev);
            if self.debug() {
                self.node(prev)?;
            }
            if self.next_of(pr, pb).ok() != Some(me) {
                return Err(corrupt(r, b + PREV));
            }
        }
        if next != NIL {
            let (nr, nb) = unkey(next);
            if self.debug() {
                self.node(next)?;
            }
            if self.prev_of(nr, nb).ok() != Some(me) {
                return Err(corrupt(r, b + NEXT));
            }
        }
        Ok(Links { prev, next })
    }

    /// Unlinks free block `(r, b)` with links `links` from `list`, as
    /// validated by [`Heap::unlink_check`], and returns its successor.
    #[inline(always)]
    fn unlink(&mut self, list: usize, r: usize, b: usize, links: Links) -> Result<u64, HeapError> {
        let me = key(r, b);
        let Links { prev, next } = links;
        self.relink(list, prev, next, next, prev)?;
        if self.head(list) == NIL {
            self.mark(list, false);
        }
        if self.rover == me {
            self.rover = next;
        }
        Ok(next)
    }

    /// Puts free block `(r, b)` in place of the free block with links
    /// `links` in `list`, as validated by [`Heap::unlink_check`].
    fn replace(&mut self, list: usize, r: usize, b: usize, links: Links) -> Result<(), HeapError> {
        let me = key(r, b);
        let Links { prev, next } = links;
        self.wr(r, b + NEXT, next)?;
        self.wr(r, b + PREV, prev)?;
        self.relink(list, prev, next, me, me)
    }

    /// Points `prev`'s next link (or the head of `list`) at `to_next` and
    /// `next`'s prev link at `to_prev`.
    #[inline]
    fn relink(
        &mut self,
        list: usize,
        prev: u64,
        next: u64,
        to_next: u64,
        to_prev: u64,
    ) -> Result<(), HeapError> {
        if prev == NIL {
            if let Some(h) = self.heads.get_mut(list) {
                *h = to_next;
            }
        } else {
            let (pr, pb) = unkey(prev);
            self.wr(pr, pb.saturating_add(NEXT), to_next)?;
        }
        if next != NIL {
            let (nr, nb) = unkey(next);
            self.wr(nr, nb.saturating_add(PREV), to_prev)?;
        }
        Ok(())
    }

    /// Links free block `(r, b)` into `list` after `pred` (NIL: at the
    /// head). `pred` and its successor were validated by `find_pred`.
    #[inline]
    fn link_after(&mut self, list: usize, r: usize, b: usize, pred: u64) -> Result<(), HeapError> {
        if pred == NIL {
            return self.push(list, r, b);
        }
        let me = key(r, b);
        let (pr, pb) = unkey(pred);
        let next = self.next_of(pr, pb)?;
        self.wr(r, b + NEXT, next)?;
        self.wr(r, b + PREV, pred)?;
        self.relink(list, pred, next, me, me)?;
        self.mark(list, true);
        Ok(())
    }

    /// [`Heap::link_after`] at the head of `list`, with a single region
    /// lookup when the old head lies in the same region as `(r, b)`.
    #[inline]
    fn push(&mut self, list: usize, r: usize, b: usize) -> Result<(), HeapError> {
        let me = key(r, b);
        let head = self.head(list);
        let (hr, hb) = unkey(head);
        let (n, p) = (b + NEXT, b + PREV);
        let Some(Some(reg)) = self.regions.get_mut(r) else {
            return Err(corrupt(r, n));
        };
        let mem = reg.mem.as_mut();
        store(mem, n, head).ok_or(corrupt(r, n))?;
        store(mem, p, NIL).ok_or(corrupt(r, p))?;
        if head != NIL {
            let hp = hb.saturating_add(PREV);
            if hr == r {
                store(mem, hp, me).ok_or(corrupt(r, hp))?;
            } else {
                self.wr(hr, hp, me)?;
            }
        }
        if let Some(h) = self.heads.get_mut(list) {
            *h = me;
        }
        self.mark(list, true);
        Ok(())
    }

    /// Payload bytes of the largest free block.
    fn largest_free(&self) -> u64 {
        // Under segregated fit the largest block is in the highest
        // non-empty class.
        let lists = match (self.policy, self.top_nonempty()) {
            (Policy::SegregatedFit, Some(top)) => top..top + 1,
            _ => 0..1,
        };
        let mut best = 0;
        for list in lists {
            let (mut k, mut seen) = (self.heads.get(list).copied().unwrap_or(NIL), 0u64);
            while k != NIL && seen < self.c.free_blocks {
                let Ok((r, b, t)) = self.node(k) else { break };
                best = best.max(t.size - 2 * TAG);
                seen += 1;
                k = self.rd(r, b + NEXT).unwrap_or(NIL);
            }
        }
        best as u64
    }
}

// ---- single-region helpers of the fast paths ------------------------------
//
// They work on the bytes `mem` of region `r` and on the list heads and the
// non-empty mask borrowed apart from the rest of the heap, so the compiler
// keeps them in registers. Every link they follow was checked by
// `local_links` (or is a head) to name region `r`; they read and write
// exactly what the general `Heap` methods they mirror do, and fail with the
// same errors.

/// The size of the free block at `b` if [`Heap::fnode`] (without DEBUG)
/// accepts it: inside the block area, aligned, a plain free tag that fits.
#[inline(always)]
fn free_size(mem: &[u8], start: usize, end: usize, b: usize) -> Option<usize> {
    if b < start || b >= end || b % ALIGN != TAG {
        return None;
    }
    let w = load(mem, b)?;
    let size = (w & SIZE_MASK) as usize;
    if w & !SIZE_MASK != 0 || size < MIN_BLOCK || size > end - b {
        return None;
    }
    Some(size)
}

/// [`Heap::unlink_check`] without DEBUG of free block `(r, b)` in `list`,
/// or `None` if it fails or a neighbour is not a block-aligned offset of
/// region `r`.
#[inline(always)]
fn local_links(
    mem: &[u8],
    heads: &[u64; NCLASSES],
    list: usize,
    r: usize,
    b: usize,
) -> Option<Links> {
    let me = key(r, b);
    let next = load(mem, b.saturating_add(NEXT))?;
    let prev = load(mem, b.saturating_add(PREV))?;
    if prev == NIL {
        if heads.get(list) != Some(&me) {
            return None;
        }
    } else {
        let (pr, pb) = unkey(prev);
        if pr != r || pb % ALIGN != TAG || load(mem, pb.saturating_add(NEXT)) != Some(me) {
            return None;
        }
    }
    if next != NIL {
        let (nr, nb) = unkey(next);
        if nr != r || nb % ALIGN != TAG || load(mem, nb.saturating_add(PREV)) != Some(me) {
            return None;
        }
    }
    Some(Links { prev, next })
}

/// [`Heap::relink`] inside region `r`.
#[inline(always)]
fn local_relink(
    mem: &mut [u8],
    heads: &mut [u64; NCLASSES],
    list: usize,
    r: usize,
    links: Links,
    to_next: u64,
    to_prev: u64,
) -> Result<(), HeapError> {
    let Links { prev, next } = links;
    if prev == NIL {
        if let Some(h) = heads.get_mut(list) {
            *h = to_next;
        }
    } else {
        let off = unkey(prev).1.saturating_add(NEXT);
        store(mem, off, to_next).ok_or(corrupt(r, off))?;
    }
    if next != NIL {
        let off = unkey(next).1.saturating_add(PREV);
        store(mem, off, to_prev).ok_or(corrupt(r, off))?;
    }
    Ok(())
}

/// [`Heap::unlink`] inside region `r` (no rover: the fast paths exclude
/// next fit, and no other policy ever sets it).
#[inline(always)]
fn local_unlink(
    mem: &mut [u8],
    heads: &mut [u64; NCLASSES],
    nonempty: &mut [u64; MAP_WORDS],
    list: usize,
    r: usize,
    links: Links,
) -> Result<(), HeapError> {
    local_relink(mem, heads, list, r, links, links.next, links.prev)?;
    if heads.get(list).copied().unwrap_or(NIL) == NIL {
        mark_in(nonempty, list, false);
    }
    Ok(())
}

/// [`Heap::push`] of block `(r, b)` inside region `r`: the callers made
/// sure the head of `list` is empty or in region `r`.
#[inline(always)]
fn local_push(
    mem: &mut [u8],
    heads: &mut [u64; NCLASSES],
    nonempty: &mut [u64; MAP_WORDS],
    list: usize,
    r: usize,
    b: usize,
) -> Result<(), HeapError> {
    let me = key(r, b);
    let head = heads.get(list).copied().unwrap_or(NIL);
    let (hr, hb) = unkey(head);
    let (n, p) = (b + NEXT, b + PREV);
    store(mem, n, head).ok_or(corrupt(r, n))?;
    store(mem, p, NIL).ok_or(corrupt(r, p))?;
    if head != NIL {
        let hp = hb.saturating_add(PREV);
        if hr != r {
            // Unreachable, see the callers.
            return Err(corrupt(hr, hp));
        }
        store(mem, hp, me).ok_or(corrupt(r, hp))?;
    }
    if let Some(h) = heads.get_mut(list) {
        *h = me;
    }
    mark_in(nonempty, list, true);
    Ok(())
}

/// [`Heap::write_tags`] without DEBUG.
#[inline(always)]
fn local_tags(
    mem: &mut [u8],
    r: usize,
    b: usize,
    size: usize,
    allocated: bool,
    slack: usize,
) -> Result<(), HeapError> {
    let w = size as u64 | u64::from(allocated) | ((slack as u64) << SLACK_SHIFT);
    let f = b + size - TAG;
    store(mem, b, w).ok_or(corrupt(r, b))?;
    store(mem, f, w).ok_or(corrupt(r, f))
}

/// [`Heap::set_bit`] on region `r`'s bytes.
#[inline(always)]
fn local_bit(mem: &mut [u8], r: usize, p: usize, on: bool) -> Result<(), HeapError> {
    let byte = mem.get_mut(p / ALIGN / 8).ok_or(corrupt(r, p))?;
    let mask = 1u8 << (p / ALIGN % 8);
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    Ok(())
}

/// Sets or clears bit `list` of the non-empty mask.
#[inline(always)]
fn mark_in(nonempty: &mut [u64; MAP_WORDS], list: usize, on: bool) {
    if let Some(word) = nonempty.get_mut(list / 64) {
        let bit = 1u64 << (list % 64);
        if on {
            *word |= bit;
        } else {
            *word &= !bit;
        }
    }
}

#[inline]
fn corrupt(r: usize, off: usize) -> HeapError {
    HeapError::CorruptTag {
        region: r as u32,
        offset: off as u32,
    }
}

fn inconsistent(r: usize, off: usize, what: &'static str) -> HeapError {
    HeapError::Inconsistent {
        region: r as u32,
        offset: off as u32,
        what,
    }
}
