// SPDX-License-Identifier: GPL-2.0
//! The bytes of a region: block area, boundary tags, list links and the
//! start map, and the one-word loads and stores everything else uses.
//!
//! ```text
//! 0            start-8  start                                     end   len
//! | start map  | pad    | hdr | payload ... | ftr | hdr | ... | ftr | tail |
//!                       ^ block offsets are 8 mod 16, payloads 0 mod 16
//! ```
//!
//! A tag is one little-endian word: `size | ALLOCATED` in the low 32 bits,
//! the slack (payload bytes beyond the request) in bits 32..40 and, with
//! [`super::HeapFlags::DEBUG`], a 24-bit check value in bits 40..64. A free
//! block's tag is its size alone (plus the check value). A free block
//! keeps its list links at [`NEXT`] and [`PREV`]: each the [`key`] of a
//! free block or [`NIL`].

use super::{ALIGN, MAX_REGION_ALLOC, MAX_REGION_BYTES, MIN_BLOCK};

/// Size of one boundary tag (header or footer).
pub(super) const TAG: usize = 8;

/// [`TAG`], [`ALIGN`] and [`MIN_BLOCK`] for the `u32` offsets and sizes
/// inside regions (which are at most [`MAX_REGION_BYTES`] long).
pub(super) const TAG32: u32 = TAG as u32;
pub(super) const ALIGN32: u32 = ALIGN as u32;
pub(super) const MIN32: u32 = MIN_BLOCK as u32;

/// The null link.
pub(super) const NIL: u64 = u64::MAX;

/// Tag bits.
pub(super) const ALLOCATED: u64 = 1;
pub(super) const SIZE_MASK: u64 = 0xffff_fff0;
pub(super) const SLACK_SHIFT: u32 = 32;
pub(super) const CHECK_SHIFT: u32 = 40;
pub(super) const LOW_MASK: u64 = (1 << CHECK_SHIFT) - 1;

/// Offsets of the list links inside a free block.
pub(super) const NEXT: u32 = 8;
pub(super) const PREV: u32 = 16;

/// The block area `[start, end)` of a region of `len` bytes, or `None` if
/// the region is too small or too large.
pub(super) const fn area(len: usize) -> Option<(u32, u32)> {
    match layout(len) {
        // Both below MAX_REGION_BYTES = 2^30.
        Some((start, end)) => Some((start as u32, end as u32)),
        None => None,
    }
}

/// [`area`] in `usize`.
pub(super) const fn layout(len: usize) -> Option<(usize, usize)> {
    if len > MAX_REGION_BYTES || len < TAG {
        return None;
    }
    let start = map_bytes(len).next_multiple_of(ALIGN) + TAG;
    // The last block must end 8 mod 16 as well, so the next header would
    // again precede an aligned payload.
    let end = (len - TAG) / ALIGN * ALIGN + TAG;
    if end < start || end - start < MIN_BLOCK {
        return None;
    }
    Some((start, end))
}

/// Bytes of the start map: one bit for each granule of the region.
pub(super) const fn map_bytes(len: usize) -> usize {
    len / ALIGN / 8 + 1
}

/// The block size that serves a request of `size` bytes.
#[inline(always)]
pub(super) const fn block_size(size: usize) -> Option<u32> {
    if size == 0 || size > MAX_REGION_ALLOC {
        return None;
    }
    let n = (size + 2 * TAG).next_multiple_of(ALIGN);
    // At most MAX_REGION_BYTES.
    Some(if n < MIN_BLOCK { MIN32 } else { n as u32 })
}

/// The link word naming block `b` of region `r`.
#[inline(always)]
pub(super) const fn key(r: u32, b: u32) -> u64 {
    ((r as u64) << 32) | b as u64
}

/// The region and block offset a link word names.
#[inline(always)]
pub(super) const fn unkey(k: u64) -> (u32, u32) {
    ((k >> 32) as u32, k as u32)
}

/// The little-endian word at `off` of `mem`, if it lies wholly inside:
/// one bounds check and one load. (`off + 8` cannot wrap on a 64-bit
/// target; on a narrower one a wrapped range is empty, so `None`.)
#[inline(always)]
pub(super) fn load(mem: &[u8], off: u32) -> Option<u64> {
    let o = off as usize;
    let bytes = mem.get(o..o.wrapping_add(TAG))?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// Stores `v` little-endian at `off` of `mem`; `None` (and no change) if
/// the word does not lie wholly inside.
#[inline(always)]
pub(super) fn store(mem: &mut [u8], off: u32, v: u64) -> Option<()> {
    let o = off as usize;
    let dst: &mut [u8; TAG] = mem.get_mut(o..o.wrapping_add(TAG))?.try_into().ok()?;
    *dst = v.to_le_bytes();
    Some(())
}

/// Whether the start map in `mem` marks payload offset `p`.
#[inline(always)]
pub(super) fn map_bit(mem: &[u8], p: u32) -> bool {
    let byte = mem.get((p / ALIGN32 / 8) as usize).copied().unwrap_or(0);
    (byte >> (p / ALIGN32 % 8)) & 1 != 0
}

/// Sets or clears the start-map bit of payload offset `p` in `mem`; `None`
/// (and no change) if it lies outside.
#[inline(always)]
pub(super) fn put_bit(mem: &mut [u8], p: u32, on: bool) -> Option<()> {
    let byte = mem.get_mut((p / ALIGN32 / 8) as usize)?;
    let mask = 1u8 << (p / ALIGN32 % 8);
    if on {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    Some(())
}

/// The 24-bit check value of a tag with low bits `low` for the block at
/// offset `b`: a multiplicative hash, so a single changed bit anywhere
/// changes it, and a tag copied to another offset does not verify.
#[inline]
pub(super) fn check24(b: u32, low: u64) -> u64 {
    let x = (low ^ (u64::from(b) << 24).rotate_left(17) ^ 0x5eed_a110_c0de_cafe)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x >> CHECK_SHIFT
}

/// The tag word of block `b`: `size`, `allocated`, `slack`, and the check
/// value when `debug`.
#[inline(always)]
pub(super) fn encode(debug: bool, b: u32, size: u32, allocated: bool, slack: u32) -> u64 {
    let low = u64::from(size) | u64::from(allocated) | (u64::from(slack) << SLACK_SHIFT);
    if debug {
        low | (check24(b, low) << CHECK_SHIFT)
    } else {
        low
    }
}

/// A decoded, validated boundary tag (its fields are the heap's own).
#[derive(Debug, Clone, Copy)]
pub struct Tag {
    /// Whole block size, tags included.
    pub(super) size: u32,
    /// Whether the block is handed out.
    pub(super) allocated: bool,
    /// Payload bytes beyond the request (0 for a free block).
    pub(super) slack: u32,
}

#[cfg(test)]
mod tests {
    use super::super::max_alloc_in;
    use super::*;

    #[test]
    fn layout_bounds() {
        assert_eq!(layout(TAG - 1), None);
        assert_eq!(layout(MAX_REGION_BYTES + 1), None);
        let (start, end) = layout(4096).unwrap();
        assert_eq!((start % ALIGN, end % ALIGN), (TAG, TAG));
        assert!(end <= 4096 && start >= map_bytes(4096));
        assert_eq!(max_alloc_in(4096), end - start - 2 * TAG);
        assert_eq!(max_alloc_in(40), 0);
        assert_eq!(block_size(0), None);
        assert_eq!(block_size(1), Some(MIN32));
        assert_eq!(block_size(17), Some(48));
        assert_eq!(block_size(MAX_REGION_ALLOC + 1), None);
        assert_eq!(
            block_size(MAX_REGION_ALLOC),
            Some(area(MAX_REGION_BYTES).map(|(s, e)| e - s).unwrap())
        );
    }

    #[test]
    fn words_and_bits_stay_in_bounds() {
        let mut mem = [0u8; 24];
        assert_eq!(store(&mut mem, 16, 7), Some(()));
        assert_eq!(load(&mem, 16), Some(7));
        assert_eq!(store(&mut mem, 17, 7), None);
        assert_eq!(load(&mem, 17), None);
        assert_eq!(load(&mem, u32::MAX), None);
        assert_eq!(put_bit(&mut mem, 16 * 9, true), Some(()));
        assert!(map_bit(&mem, 16 * 9));
        assert_eq!(mem[1], 2);
        assert_eq!(put_bit(&mut mem, 16 * 8 * 24, true), None);
        assert!(!map_bit(&mem, u32::MAX));
        assert_eq!(unkey(key(3, 40)), (3, 40));
    }
}
