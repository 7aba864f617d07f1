// SPDX-License-Identifier: GPL-2.0
//! What every policy shares: the regions, boundary tags read and written
//! with validation, and doubly linked free lists threaded through the free
//! blocks.
//!
//! Policies and the shared operations reach the regions through two
//! traits: [`Blocks`] to read (and validate) and [`BlocksMut`] to write. An
//! operation runs on an [`Op`] view of the heap, whose DEBUG switch is a
//! constant, so the code made for a heap without DEBUG carries none of its
//! checks; a [`View`] serves the read-only check, statistics and lookups. A policy keeps its list heads itself and changes its lists
//! only through [`BlocksMut::push`], [`BlocksMut::link_after`] and
//! [`BlocksMut::unlink`], which validate what they follow before writing.
//!
//! Offsets and sizes inside a region are `u32` (regions are at most
//! 1 GiB), so an offset plus a few bytes cannot wrap and a bounds check is
//! one compare.
//!
//! # Corruption
//!
//! Every access is bounds checked and every walk is bounded by the number
//! of free blocks, so no content of the region bytes can make the heap
//! panic or loop forever. Without DEBUG a link followed on the hot path
//! must name an in-bounds, block-aligned offset holding a plain free tag
//! that fits ([`Blocks::step`]); footers, start-map bits and check values of
//! those blocks are verified under DEBUG and by the heap's check. A damaged
//! byte found is a [`HeapError::CorruptTag`].

use core::marker::PhantomData;

use super::layout::{
    check24, encode, key, load, map_bit, put_bit, store, unkey, Tag, ALIGN32, ALLOCATED,
    CHECK_SHIFT, LOW_MASK, MIN32, NEXT, NIL, PREV, SIZE_MASK, SLACK_SHIFT, TAG32,
};
use super::stats::Counters;
use super::HeapError;

/// What a heap can take as a region: bytes it may read and write (pool
/// pages in the kernel, a `Vec<u8>` or a boxed buffer on the host).
pub trait RegionMem: AsRef<[u8]> + AsMut<[u8]> {}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RegionMem for T {}

/// An owned region and its block area `[start, end)`.
///
/// # Invariants
///
/// `start` and `end` come from `area(mem.len())`: both are 8 mod 16 and
/// `start + MIN_BLOCK <= end <= mem.len() <= MAX_REGION_BYTES`.
pub struct Region<M> {
    pub(super) mem: M,
    pub(super) start: u32,
    pub(super) end: u32,
}

/// A free block: where it is and how large (tags included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeBlock {
    /// Region index.
    pub region: u32,
    /// Offset of the block's header in the region.
    pub offset: u32,
    /// Whole block size in bytes.
    pub size: u32,
}

impl FreeBlock {
    /// The link word naming this block.
    #[inline(always)]
    pub fn key(&self) -> u64 {
        key(self.region, self.offset)
    }
}

/// The list links of a free block: link words of its neighbours in its
/// list, or `NIL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Links {
    /// The previous block, `NIL` at the head.
    pub prev: u64,
    /// The next block, `NIL` at the tail.
    pub next: u64,
}

/// The error for damaged metadata at `off` of region `r`.
#[inline]
pub(super) fn corrupt(r: u32, off: u32) -> HeapError {
    HeapError::CorruptTag {
        region: r,
        offset: off,
    }
}

/// The heap's regions to read, with validation.
pub trait Blocks {
    /// Whether every block read is fully validated (DEBUG).
    fn debug(&self) -> bool;

    /// The bytes of region `r` and its block area `[start, end)`, with
    /// `end <= bytes.len()`.
    fn area(&self, r: u32) -> Option<(&[u8], u32, u32)>;

    /// The running totals.
    fn counters(&self) -> &Counters;

    /// The word at `off` of region `r`.
    #[inline(always)]
    fn rd(&self, r: u32, off: u32) -> Option<u64> {
        load(self.area(r)?.0, off)
    }

    /// Reads and validates the block at `b` of region `r`: alignment,
    /// start-map bit, tag bits and check value, size within the block area,
    /// footer equal to header.
    fn block(&self, r: u32, b: u32) -> Result<Tag, HeapError> {
        let (mem, start, end) = self.area(r).ok_or(corrupt(r, b))?;
        if b < start || b >= end || b % ALIGN32 != TAG32 || !map_bit(mem, b + TAG32) {
            return Err(corrupt(r, b));
        }
        tags(self.debug(), mem, end, r, b)
    }

    /// Follows a list link, fully validated: it must name a valid free
    /// block. For the heap's check, statistics and DEBUG.
    fn node(&self, k: u64) -> Result<FreeBlock, HeapError> {
        let (r, b) = unkey(k);
        let t = self.block(r, b)?;
        if t.allocated {
            return Err(corrupt(r, b));
        }
        Ok(FreeBlock {
            region: r,
            offset: b,
            size: t.size,
        })
    }

    /// One step of a list walk: the free block that link `k` names and its
    /// next link. Under DEBUG the block is fully validated
    /// ([`Blocks::node`]); otherwise it must lie in a block area at a block
    /// offset and hold a plain free tag that fits there, which keeps every
    /// later access in bounds: a forged link costs at most a wrong block,
    /// never a panic.
    #[inline(always)]
    fn step(&self, k: u64) -> Result<(FreeBlock, u64), HeapError> {
        if self.debug() {
            let f = self.node(k)?;
            let next = self.rd(f.region, f.offset + NEXT);
            return Ok((f, next.ok_or(corrupt(f.region, f.offset + NEXT))?));
        }
        let (r, b) = unkey(k);
        let (mem, start, end) = self.area(r).ok_or(corrupt(r, b))?;
        if b < start || b >= end || b % ALIGN32 != TAG32 {
            return Err(corrupt(r, b));
        }
        let w = load(mem, b).ok_or(corrupt(r, b))?;
        let size = (w & SIZE_MASK) as u32;
        // Without DEBUG a free tag is its size and nothing else.
        if w & !SIZE_MASK != 0 || size < MIN32 || size > end - b {
            return Err(corrupt(r, b));
        }
        let next = load(mem, b + NEXT).ok_or(corrupt(r, b + NEXT))?;
        let f = FreeBlock {
            region: r,
            offset: b,
            size,
        };
        Ok((f, next))
    }

    /// A walk along a list from link `from` up to (not including) `stop`.
    #[inline(always)]
    fn walk(&self, from: u64, stop: u64) -> Walk {
        Walk {
            k: from,
            stop,
            seen: 0,
        }
    }

    /// The `(prev, next)` links of free block `f`, unchecked.
    #[inline(always)]
    fn links(&self, f: FreeBlock) -> Result<Links, HeapError> {
        let (r, b) = (f.region, f.offset);
        let (n, p) = (b.wrapping_add(NEXT), b.wrapping_add(PREV));
        let mem = self.area(r).ok_or(corrupt(r, n))?.0;
        let next = load(mem, n).ok_or(corrupt(r, n))?;
        let prev = load(mem, p).ok_or(corrupt(r, p))?;
        Ok(Links { prev, next })
    }
}

/// The tag of block `b` of region `r` (bytes `mem`, block area ending at
/// `end`), for callers that have checked the offset (block area, alignment,
/// start map): tag bits and check value, size within the block area,
/// footer equal to header.
#[inline(always)]
pub(super) fn tags(debug: bool, mem: &[u8], end: u32, r: u32, b: u32) -> Result<Tag, HeapError> {
    let w = load(mem, b).ok_or(corrupt(r, b))?;
    let low = w & LOW_MASK;
    let check = if debug { check24(b, low) } else { 0 };
    let size = (low & SIZE_MASK) as u32;
    let t = Tag {
        size,
        allocated: low & ALLOCATED != 0,
        slack: (low >> SLACK_SHIFT) as u32,
    };
    let sane = w >> CHECK_SHIFT == check
        && low & (u64::from(ALIGN32) - 1) & !ALLOCATED == 0
        && size >= MIN32
        && size <= end - b
        && if t.allocated {
            t.slack < size - 2 * TAG32
        } else {
            t.slack == 0
        };
    if !sane {
        return Err(corrupt(r, b));
    }
    let f = b + size - TAG32;
    if load(mem, f) != Some(w) {
        return Err(corrupt(r, f));
    }
    Ok(t)
}

/// The tag of the allocated block at `b` of region `r`, for callers that
/// have checked the offset: [`tags`], when the block must be allocated.
/// The common case, a sane allocated tag whose footer agrees, is one fused
/// test; anything else goes to [`tags`], which tells damage
/// ([`HeapError::CorruptTag`]) from a free block (`Ok` with `allocated`
/// false).
#[inline(always)]
pub(super) fn alloc_tag(
    debug: bool,
    mem: &[u8],
    end: u32,
    r: u32,
    b: u32,
) -> Result<Tag, HeapError> {
    if let Some(w) = load(mem, b) {
        let size = (w & SIZE_MASK) as u32;
        let slack = ((w & LOW_MASK) >> SLACK_SHIFT) as u32;
        let check = if debug { check24(b, w & LOW_MASK) } else { 0 };
        // The allocated bit set, the three bits above it clear, the check
        // value right; the size a block's within the block area; the slack
        // inside the payload.
        if w & (u64::from(ALIGN32) - 1) == ALLOCATED
            && w >> CHECK_SHIFT == check
            && size >= MIN32
            && size <= end - b
            && slack < size - 2 * TAG32
            && load(mem, b + size - TAG32) == Some(w)
        {
            return Ok(Tag {
                size,
                allocated: true,
                slack,
            });
        }
    }
    tags(debug, mem, end, r, b)
}

/// The heap's regions to write: what an operation needs on top of
/// [`Blocks`].
pub trait BlocksMut: Blocks {
    /// The bytes of region `r`, to write.
    fn bytes_mut(&mut self, r: u32) -> Option<&mut [u8]>;

    /// The running totals, to update.
    fn counters_mut(&mut self) -> &mut Counters;

    /// Stores the word `v` at `off` of region `r`.
    #[inline(always)]
    fn wr(&mut self, r: u32, off: u32, v: u64) -> Result<(), HeapError> {
        self.bytes_mut(r)
            .and_then(|mem| store(mem, off, v))
            .ok_or(corrupt(r, off))
    }

    /// Sets or clears the start-map bit of payload offset `p` of region `r`.
    #[inline(always)]
    fn set_bit(&mut self, r: u32, p: u32, on: bool) -> Result<(), HeapError> {
        self.bytes_mut(r)
            .and_then(|mem| put_bit(mem, p, on))
            .ok_or(corrupt(r, p))
    }

    /// Writes both tags of block `b` (of `size` bytes, inside the block
    /// area) of region `r`.
    #[inline(always)]
    fn write_tags(
        &mut self,
        r: u32,
        b: u32,
        size: u32,
        allocated: bool,
        slack: u32,
    ) -> Result<(), HeapError> {
        let w = encode(self.debug(), b, size, allocated, slack);
        let f = b + size - TAG32;
        let mem = self.bytes_mut(r).ok_or(corrupt(r, b))?;
        store(mem, b, w).ok_or(corrupt(r, b))?;
        store(mem, f, w).ok_or(corrupt(r, f))
    }

    /// Counts `n` blocks examined by an allocation's search.
    #[inline(always)]
    fn searched(&mut self, n: u64) {
        let c = self.counters_mut();
        c.search_steps = c.search_steps.wrapping_add(n);
    }

    /// The first block of at least `n` bytes on the list from `from` up to
    /// (not including) `stop`, counting the blocks examined as search
    /// steps.
    #[inline]
    fn first_fit(&mut self, from: u64, stop: u64, n: u32) -> Result<Option<FreeBlock>, HeapError> {
        let mut w = self.walk(from, stop);
        let found = loop {
            match w.next(self)? {
                Some(f) if f.size >= n => break Some(f),
                Some(_) => {}
                None => break None,
            }
        };
        self.searched(w.seen);
        Ok(found)
    }

    /// Unlinks free block `f` from the list whose head is `head` and
    /// returns the links it had. Both neighbours must point back at it
    /// (and, under DEBUG, be valid free blocks), which is checked before
    /// anything is written.
    #[inline(always)]
    fn unlink(&mut self, head: &mut u64, f: FreeBlock) -> Result<Links, HeapError> {
        let me = f.key();
        let (r, b) = (f.region, f.offset);
        let links = self.links(f)?;
        let Links { prev, next } = links;
        let (pr, pb) = unkey(prev);
        let (nr, nb) = unkey(next);
        if prev == NIL {
            if *head != me {
                return Err(corrupt(r, b.wrapping_add(PREV)));
            }
        } else {
            if self.debug() {
                self.node(prev)?;
            }
            if self.rd(pr, pb.wrapping_add(NEXT)) != Some(me) {
                return Err(corrupt(r, b.wrapping_add(PREV)));
            }
        }
        if next != NIL {
            if self.debug() {
                self.node(next)?;
            }
            // Checked and rewritten through one lookup of its region (often
            // another region than `f`'s): the last check, so a failure
            // still leaves everything unwritten.
            let np = nb.wrapping_add(PREV);
            let mem = self.bytes_mut(nr).ok_or(corrupt(r, b.wrapping_add(NEXT)))?;
            if load(mem, np) != Some(me) {
                return Err(corrupt(r, b.wrapping_add(NEXT)));
            }
            store(mem, np, prev).ok_or(corrupt(nr, np))?;
        }
        if prev == NIL {
            *head = next;
        } else {
            // In bounds: read just above.
            self.wr(pr, pb.wrapping_add(NEXT), next)?;
        }
        Ok(links)
    }

    /// Links free block `f` in at the head of the list whose head is
    /// `head`.
    #[inline(always)]
    fn push(&mut self, head: &mut u64, f: FreeBlock) -> Result<(), HeapError> {
        let me = f.key();
        let old = *head;
        let (r, b) = (f.region, f.offset);
        let (hr, hb) = unkey(old);
        let (n, p) = (b.wrapping_add(NEXT), b.wrapping_add(PREV));
        let mem = self.bytes_mut(r).ok_or(corrupt(r, n))?;
        store(mem, n, old).ok_or(corrupt(r, n))?;
        store(mem, p, NIL).ok_or(corrupt(r, p))?;
        if old != NIL {
            let hp = hb.wrapping_add(PREV);
            // Most heads share the block's region: no second lookup.
            if hr == r {
                store(mem, hp, me).ok_or(corrupt(r, hp))?;
            } else {
                self.wr(hr, hp, me)?;
            }
        }
        *head = me;
        Ok(())
    }

    /// Links free block `f` in after the list member `pred` (`NIL`: at the
    /// head) of the list whose head is `head`. `pred` must have been
    /// validated ([`Blocks::step`]) since the list last changed.
    #[inline]
    fn link_after(&mut self, head: &mut u64, pred: u64, f: FreeBlock) -> Result<(), HeapError> {
        if pred == NIL {
            return self.push(head, f);
        }
        let me = f.key();
        let (pr, pb) = unkey(pred);
        let pn = pb.wrapping_add(NEXT);
        let next = self.rd(pr, pn).ok_or(corrupt(pr, pn))?;
        self.wr(f.region, f.offset.wrapping_add(NEXT), next)?;
        self.wr(f.region, f.offset.wrapping_add(PREV), pred)?;
        self.wr(pr, pn, me)?;
        if next != NIL {
            let (nr, nb) = unkey(next);
            self.wr(nr, nb.wrapping_add(PREV), me)?;
        }
        Ok(())
    }

    /// The member of the address-ordered list from `head` after which the
    /// block with link `me` belongs: the last one ordered before it, or
    /// `NIL` for the head. Validates the members up to the insertion
    /// point and counts them as insertion steps.
    #[inline]
    fn pred_in_order(&mut self, head: u64, me: u64) -> Result<u64, HeapError> {
        let (mut pred, mut k, mut seen) = (NIL, head, 0u64);
        let limit = self.counters().free_blocks;
        while k != NIL {
            let (f, next) = self.step(k)?;
            if k >= me {
                break;
            }
            seen += 1;
            if seen > limit {
                return Err(corrupt(f.region, f.offset + NEXT));
            }
            pred = k;
            k = next;
        }
        let c = self.counters_mut();
        c.insert_steps = c.insert_steps.wrapping_add(seen);
        Ok(pred)
    }
}

/// A walk along a free list, bounded by the number of free blocks (only a
/// cycle makes a list longer), from [`Blocks::walk`].
#[derive(Debug)]
pub struct Walk {
    k: u64,
    stop: u64,
    /// Blocks returned so far.
    pub seen: u64,
}

impl Walk {
    /// The next block, validated by [`Blocks::step`], or `None` at the end.
    #[inline(always)]
    pub fn next(&mut self, h: &(impl Blocks + ?Sized)) -> Result<Option<FreeBlock>, HeapError> {
        if self.k == NIL || self.k == self.stop {
            return Ok(None);
        }
        let (f, next) = h.step(self.k)?;
        self.seen += 1;
        if self.seen > h.counters().free_blocks {
            return Err(corrupt(f.region, f.offset + NEXT));
        }
        self.k = next;
        Ok(Some(f))
    }
}

/// The regions of a heap, its counters and its DEBUG switch: everything
/// but the policy. Its methods see it unsized (`Regions<M>`, any number of
/// region slots).
pub struct Regions<M, S: ?Sized = [Option<Region<M>>]> {
    pub(super) debug: bool,
    /// Tests set it to run every operation on the general path, to compare
    /// it with the fast path.
    #[cfg(test)]
    pub(super) general: bool,
    pub(super) c: Counters,
    pub(super) _mem: PhantomData<M>,
    /// Region slots, `[Option<Region<M>>; R]` in a heap.
    pub(super) regions: S,
}

impl<M: RegionMem> Regions<M> {
    /// A view of the heap for one operation, with DEBUG as `D`.
    #[inline(always)]
    pub(super) fn op<const D: bool>(&mut self) -> Op<'_, M, D> {
        Op {
            regions: &mut self.regions,
            c: &mut self.c,
        }
    }
}

/// The region in `slot` as [`Blocks::area`] gives it.
#[inline(always)]
pub(super) fn area_of<M: RegionMem>(slot: &Option<Region<M>>) -> Option<(&[u8], u32, u32)> {
    let reg = slot.as_ref()?;
    let mem = reg.mem.as_ref();
    // Always true (the region's invariant); it lets the compiler drop the
    // bounds checks of offsets already checked against `end`.
    if reg.end as usize > mem.len() {
        return None;
    }
    Some((mem, reg.start, reg.end))
}

/// The heap to read: for its check, statistics and lookups.
pub struct View<'a, M> {
    regions: &'a [Option<Region<M>>],
    c: &'a Counters,
    debug: bool,
}

impl<M: RegionMem> Regions<M> {
    /// A view of the heap to read.
    #[inline(always)]
    pub(super) fn view(&self) -> View<'_, M> {
        View {
            regions: &self.regions,
            c: &self.c,
            debug: self.debug,
        }
    }
}

impl<M: RegionMem> Blocks for View<'_, M> {
    #[inline(always)]
    fn debug(&self) -> bool {
        self.debug
    }

    #[inline(always)]
    fn area(&self, r: u32) -> Option<(&[u8], u32, u32)> {
        area_of(self.regions.get(r as usize)?)
    }

    #[inline(always)]
    fn counters(&self) -> &Counters {
        self.c
    }
}

/// The heap as one operation sees it: its regions and counters borrowed,
/// with DEBUG fixed at `D`.
pub struct Op<'a, M, const D: bool> {
    pub(super) regions: &'a mut [Option<Region<M>>],
    pub(super) c: &'a mut Counters,
}

impl<M: RegionMem, const D: bool> Blocks for Op<'_, M, D> {
    #[inline(always)]
    fn debug(&self) -> bool {
        D
    }

    #[inline(always)]
    fn area(&self, r: u32) -> Option<(&[u8], u32, u32)> {
        area_of(self.regions.get(r as usize)?)
    }

    #[inline(always)]
    fn counters(&self) -> &Counters {
        self.c
    }
}

impl<M: RegionMem, const D: bool> BlocksMut for Op<'_, M, D> {
    #[inline(always)]
    fn bytes_mut(&mut self, r: u32) -> Option<&mut [u8]> {
        match self.regions.get_mut(r as usize) {
            Some(Some(reg)) => Some(reg.mem.as_mut()),
            _ => None,
        }
    }

    #[inline(always)]
    fn counters_mut(&mut self) -> &mut Counters {
        self.c
    }
}

/// What a policy's lists must satisfy, checked by [`ListCheck::list`] for
/// the heap's check.
#[derive(Debug)]
pub struct ListCheck {
    /// Free blocks in the regions: no list may be longer.
    pub(super) limit: u64,
    /// Blocks found on the lists so far.
    pub(super) listed: u64,
}

impl ListCheck {
    /// Checks the list from `head`: every member a valid free block that
    /// `belongs` (by size) to this list, every back link right, in address
    /// order if `ordered`; counts the members.
    pub fn list(
        &mut self,
        h: &impl Blocks,
        head: u64,
        ordered: bool,
        belongs: impl Fn(u32) -> bool,
    ) -> Result<(), HeapError> {
        use super::stats::{inconsistent, Invariant};
        let (mut prev, mut k) = (NIL, head);
        while k != NIL {
            let f = h.node(k)?;
            let (r, b) = (f.region, f.offset);
            self.listed += 1;
            if self.listed > self.limit {
                return Err(inconsistent(r, b, Invariant::ListsTooLong));
            }
            if !belongs(f.size) {
                return Err(inconsistent(r, b, Invariant::WrongClass));
            }
            if h.rd(r, b + PREV) != Some(prev) {
                return Err(inconsistent(r, b, Invariant::BackLink));
            }
            if ordered && prev != NIL && prev >= k {
                return Err(inconsistent(r, b, Invariant::NotOrdered));
            }
            prev = k;
            k = h.rd(r, b + NEXT).unwrap_or(NIL);
        }
        Ok(())
    }
}

/// Payload bytes of the largest block on the list from `head`; a damaged
/// list just ends the walk early.
pub fn largest_on(h: &impl Blocks, head: u64) -> usize {
    let (mut best, mut k, mut seen) = (0, head, 0u64);
    while k != NIL && seen < h.counters().free_blocks {
        let Ok(f) = h.node(k) else { break };
        best = best.max(f.size - 2 * TAG32);
        seen += 1;
        k = h.rd(f.region, f.offset + NEXT).unwrap_or(NIL);
    }
    best as usize
}
