// SPDX-License-Identifier: GPL-2.0
//! The heap's operations, shared by every policy: carving a request from
//! the block the policy chose, validating a freed pointer and merging it
//! with its free neighbours, adding and removing regions.
//!
//! Each is generic over the policy ([`FitPolicy`]) and over the view of the
//! regions ([`BlocksMut`]), so the policy's code and the DEBUG switch are
//! compiled into it: the heap matches on its policy and its DEBUG flag once
//! per operation and runs code made for that pair alone.
//!
//! A request is carved from the *tail* of the chosen block (as K&R's
//! malloc does): the remainder keeps its offset and its header, and the
//! policy decides whether it keeps its list position
//! ([`FitPolicy::shrink`]). A freed block's free neighbours leave their
//! lists and the merged block is inserted where the last of them was
//! ([`FitPolicy::insert`] with their links as the hint), so an
//! address-ordered list needs no walk unless the freed block has no free
//! neighbour.

use super::blocks::{
    alloc_tag, corrupt, Blocks, BlocksMut, FreeBlock, Links, Region, RegionMem, Regions,
};
use super::layout::{area, load, map_bit, Tag, ALIGN32, ALLOCATED, MIN32, SIZE_MASK, TAG32};
use super::policy::FitPolicy;
use super::{HeapError, Ptr};

/// [`super::Heap::alloc`] of a block of `n` bytes for `size` bytes (so
/// `size <= n - 2 * TAG`) under policy `p`.
#[inline(always)]
pub(super) fn alloc<P: FitPolicy>(
    h: &mut impl BlocksMut,
    p: &mut P,
    n: u32,
    size: usize,
) -> Result<Ptr, HeapError> {
    let f = find(h, p, n)?;
    take(h, p, f, n, size)
}

/// The policy's choice of free block for a block of `n` bytes;
/// [`HeapError::NoMemory`] (counted) if none fits.
#[inline(always)]
pub(super) fn find<P: FitPolicy>(
    h: &mut impl BlocksMut,
    p: &mut P,
    n: u32,
) -> Result<FreeBlock, HeapError> {
    match p.find(h, n)? {
        Some(f) => Ok(f),
        None => {
            let c = h.counters_mut();
            c.failures = c.failures.wrapping_add(1);
            Err(HeapError::NoMemory)
        }
    }
}

/// Hands out a block of `n` bytes for `size` bytes from the free block `f`
/// the policy chose.
#[inline(always)]
pub(super) fn take<P: FitPolicy>(
    h: &mut impl BlocksMut,
    p: &mut P,
    f: FreeBlock,
    n: u32,
    size: usize,
) -> Result<Ptr, HeapError> {
    // A policy must return a block that fits; one that does not is a
    // forged link it followed.
    let Some(rest) = f.size.checked_sub(n) else {
        return Err(corrupt(f.region, f.offset));
    };
    let (r, b) = (f.region, f.offset);
    // The request fits the payload: at most n - 2 * TAG bytes.
    let slack = n - 2 * TAG32 - size as u32;
    let (a, taken) = if rest >= MIN32 {
        // Carve the tail: the remainder keeps its header offset.
        p.shrink(h, f, rest)?;
        h.write_tags(r, b, rest, false, 0)?;
        let a = b + rest;
        h.write_tags(r, a, n, true, slack)?;
        h.set_bit(r, a + TAG32, true)?;
        (a, n)
    } else {
        p.remove(h, f)?;
        h.write_tags(r, b, f.size, true, slack + rest)?;
        let c = h.counters_mut();
        c.free_blocks = c.free_blocks.wrapping_sub(1);
        (b, f.size)
    };
    let c = h.counters_mut();
    // The taken block's payload is handed out (the free payload follows:
    // Counters::free_payload).
    let payload = u64::from(taken) - 2 * u64::from(TAG32);
    c.alloc_payload = c.alloc_payload.wrapping_add(payload);
    c.requested = c.requested.wrapping_add(size as u64);
    c.allocs = c.allocs.wrapping_add(1);
    Ok(Ptr {
        region: r,
        offset: a + TAG32,
    })
}

/// [`super::Heap::free`] under policy `p`: whether the freed block's
/// region is now one wholly free block (known from the merge, at no cost).
#[inline(always)]
pub(super) fn free<P: FitPolicy>(
    h: &mut impl BlocksMut,
    p: &mut P,
    ptr: Ptr,
) -> Result<bool, HeapError> {
    let (r, b, t) = resolve(h, ptr)?;
    let (left, right, area) = neighbours(h, r, b, t.size)?;
    let rb = b + t.size;
    // The merged block's list position is where its last free neighbour
    // was.
    let mut near: Option<Links> = None;
    let (mut ms, mut msize) = (b, t.size);
    if let Some(l) = left {
        near = Some(p.remove(h, l)?);
        (ms, msize) = (l.offset, msize + l.size);
    }
    if let Some(rt) = right {
        near = Some(p.remove(h, rt)?);
        msize += rt.size;
    }
    h.write_tags(r, ms, msize, false, 0)?;
    let merged = FreeBlock {
        region: r,
        offset: ms,
        size: msize,
    };
    p.insert(h, merged, near)?;
    let mut absorbed = 0u64;
    if left.is_some() {
        h.set_bit(r, b + TAG32, false)?;
        absorbed += 1;
    }
    if right.is_some() {
        h.set_bit(r, rb + TAG32, false)?;
        absorbed += 1;
    }

    // The freed payload becomes free, and so do the tags between the
    // merged blocks (Counters::free_payload).
    let payload = u64::from(t.size) - 2 * u64::from(TAG32);
    let c = h.counters_mut();
    c.alloc_payload = c.alloc_payload.wrapping_sub(payload);
    c.requested = c.requested.wrapping_sub(payload - u64::from(t.slack));
    c.free_blocks = c.free_blocks.wrapping_add(1).wrapping_sub(absorbed);
    c.frees = c.frees.wrapping_add(1);
    // The merged block lies in the block area: it is all of it iff it
    // starts at its start and is as long.
    let (start, end) = area;
    Ok(ms == start && msize == end - start)
}

/// The live allocation whose payload starts at `ptr`: its region, header
/// offset and tag; [`HeapError::Invalid`] if there is none.
#[inline(always)]
pub(super) fn resolve(h: &impl Blocks, ptr: Ptr) -> Result<(u32, u32, Tag), HeapError> {
    let (r, p) = (ptr.region, ptr.offset);
    let (mem, start, end) = h.area(r).ok_or(HeapError::Invalid)?;
    // The start map decides what is a block, never the bytes in front of
    // `ptr`, which a caller could have written.
    if p % ALIGN32 != 0 || p < start + TAG32 || p >= end || !map_bit(mem, p) {
        return Err(HeapError::Invalid);
    }
    // That is all of Blocks::block's offset check for the header at p - 8.
    let t = alloc_tag(h.debug(), mem, end, r, p - TAG32)?;
    if !t.allocated {
        return Err(HeapError::Invalid);
    }
    Ok((r, p - TAG32, t))
}

/// What [`neighbours`] finds: the left and right free neighbours, and the
/// block area.
type Around = (Option<FreeBlock>, Option<FreeBlock>, (u32, u32));

/// The free neighbours of the allocated block `(r, b)` of `size` bytes,
/// and the block area `(start, end)` of region `r`. Under DEBUG both
/// neighbours are fully validated; otherwise a free neighbour's header and
/// footer must agree and fit.
#[inline(always)]
fn neighbours(h: &impl Blocks, r: u32, b: u32, size: u32) -> Result<Around, HeapError> {
    let (mem, start, end) = h.area(r).ok_or(HeapError::Invalid)?;
    let debug = h.debug();
    let free = |offset, size| FreeBlock {
        region: r,
        offset,
        size,
    };
    let left = if b > start {
        let w = load(mem, b - TAG32).ok_or(corrupt(r, b - TAG32))?;
        if w & ALLOCATED != 0 && !debug {
            None
        } else {
            let lsize = (w & SIZE_MASK) as u32;
            let lb = b
                .checked_sub(lsize)
                .filter(|&lb| lb >= start)
                .ok_or(corrupt(r, b - TAG32))?;
            let lt = if debug {
                h.block(r, lb)?
            } else if w & !SIZE_MASK != 0 || lsize < MIN32 || load(mem, lb) != Some(w) {
                return Err(corrupt(r, b - TAG32));
            } else {
                Tag {
                    size: lsize,
                    allocated: false,
                    slack: 0,
                }
            };
            if lt.size != lsize {
                return Err(corrupt(r, b - TAG32));
            }
            (!lt.allocated).then_some(free(lb, lsize))
        }
    } else {
        None
    };
    let rb = b + size;
    let right = if rb >= end {
        None
    } else if debug {
        let rt = h.block(r, rb)?;
        (!rt.allocated).then_some(free(rb, rt.size))
    } else {
        let w = load(mem, rb).ok_or(corrupt(r, rb))?;
        let rsize = (w & SIZE_MASK) as u32;
        if w & ALLOCATED != 0 {
            None
        } else if w & !SIZE_MASK != 0 || rsize < MIN32 || rsize > end - rb {
            return Err(corrupt(r, rb));
        } else {
            Some(free(rb, rsize))
        }
    };
    Ok((left, right, (start, end)))
}

/// [`super::Heap::add_region`] under policy `p`, in slot `r` (free). On
/// error `mem` is dropped and nothing changes, but for the corruption a
/// policy found in its lists.
pub(super) fn add_region<M: RegionMem, P: FitPolicy, const D: bool>(
    regions: &mut Regions<M>,
    p: &mut P,
    r: u32,
    mut mem: M,
) -> Result<(), HeapError> {
    let len = mem.as_ref().len();
    let (start, end) = area(len).ok_or(HeapError::Invalid)?;
    // A recycled buffer may hold anything: clear the start map and pad.
    if let Some(head) = mem.as_mut().get_mut(..start as usize) {
        head.fill(0);
    }
    let Some(slot) = regions.regions.get_mut(r as usize) else {
        return Err(HeapError::RegionsFull);
    };
    // INVARIANT: `start` and `end` come from `area(len)`.
    *slot = Some(Region { mem, start, end });
    let size = end - start;
    let f = FreeBlock {
        region: r,
        offset: start,
        size,
    };
    let mut h = regions.op::<D>();
    let done = h
        .set_bit(r, start + TAG32, true)
        .and_then(|()| h.write_tags(r, start, size, false, 0))
        .and_then(|()| p.insert(&mut h, f, None));
    if let Err(e) = done {
        // An insertion validates what it follows before it links, so the
        // lists cannot name the new block: drop the region again.
        if let Some(slot) = regions.regions.get_mut(r as usize) {
            *slot = None;
        }
        return Err(e);
    }
    let c = &mut regions.c;
    c.regions += 1;
    c.total += len as u64;
    c.region_overhead += (len - size as usize) as u64;
    c.free_blocks = c.free_blocks.wrapping_add(1);
    Ok(())
}

/// [`super::Heap::remove_region`] under policy `p`: `Ok(None)` if the
/// region is missing or not one wholly free block.
pub(super) fn remove_region<M: RegionMem, P: FitPolicy, const D: bool>(
    regions: &mut Regions<M>,
    p: &mut P,
    r: u32,
) -> Result<Option<M>, HeapError> {
    let mut h = regions.op::<D>();
    let Some((_, start, end)) = h.area(r) else {
        return Ok(None);
    };
    let t = h.block(r, start)?;
    if t.allocated || t.size != end - start {
        return Ok(None);
    }
    let f = FreeBlock {
        region: r,
        offset: start,
        size: t.size,
    };
    p.remove(&mut h, f)?;
    let Some(reg) = regions.regions.get_mut(r as usize).and_then(Option::take) else {
        return Ok(None);
    };
    let len = reg.mem.as_ref().len();
    let c = &mut regions.c;
    c.regions = c.regions.wrapping_sub(1);
    c.total = c.total.wrapping_sub(len as u64);
    c.region_overhead = c
        .region_overhead
        .wrapping_sub((len - t.size as usize) as u64);
    c.free_blocks = c.free_blocks.wrapping_sub(1);
    Ok(Some(reg.mem))
}
