// SPDX-License-Identifier: GPL-2.0
//! Fragmentation figures.
//!
//! Two families:
//!
//! - The buddy indexes of `mm/vmstat.c`, computed from a buddyinfo row (free
//!   blocks per order) with the kernel's very integer arithmetic, so that the
//!   pool's figures read like `/sys/kernel/debug/extfrag/unusable_index` and
//!   `extfrag_index` and can be compared with the kernel's own zones.
//! - [`FragReport`], a byte-level summary that every rkalloc allocator (pool,
//!   slab, heap, arena) fills the same way, so that they can be compared side
//!   by side.
//!
//! No floating point: ratios are integer milli-units (1000 = 1.0) or
//! permille, as the kernel does.

use core::{fmt, num::NonZeroU64};

use super::buddy::{MAX_ORDER, NR_ORDERS};

/// The kernel's `struct contig_page_info`: what a buddyinfo row says about
/// requests of one order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContigInfo {
    /// Free pages in all blocks.
    pub free_pages: u64,
    /// Free blocks of any order.
    pub free_blocks_total: u64,
    /// Free blocks of the requested order that the free blocks of that order
    /// or larger could be split into.
    pub free_blocks_suitable: u64,
}

impl ContigInfo {
    /// Pages in the suitable blocks, `free_blocks_suitable << order`; none
    /// for an order past `MAX_ORDER`, which no block can serve (and which
    /// would overflow the shift).
    fn usable_pages(&self, order: u32) -> u64 {
        if order > MAX_ORDER {
            0
        } else {
            self.free_blocks_suitable << order
        }
    }
}

/// `fill_contig_page_info()`: sums a buddyinfo row (`free[o]` = free blocks
/// of order `o`) for requests of `suitable_order`.
///
/// Only the first [`NR_ORDERS`] entries count, as in a buddyinfo row; the
/// sums cannot overflow (at most `NR_ORDERS * u32::MAX << MAX_ORDER`).
pub fn contig_info(free: &[u32], suitable_order: u32) -> ContigInfo {
    let mut info = ContigInfo::default();
    for (order, &blocks) in (0u32..).zip(free.iter().take(NR_ORDERS)) {
        let blocks = u64::from(blocks);
        info.free_blocks_total += blocks;
        info.free_pages += blocks << order;
        if order >= suitable_order {
            info.free_blocks_suitable += blocks << (order - suitable_order);
        }
    }
    info
}

/// `unusable_free_index()`: the share of free memory, in milli-units, that
/// cannot serve a request of `order` because it sits in smaller blocks.
///
/// 0 means no fragmentation, 1000 all of it unusable; no free memory at all
/// counts as wholly unusable (1000), as in the kernel.
pub fn unusable_index(free: &[u32], order: u32) -> i32 {
    let info = contig_info(free, order);
    if info.free_pages == 0 {
        return 1000;
    }
    // usable <= free_pages by construction, and the product stays below
    // 2^53: no overflow.
    let unusable = (info.free_pages - info.usable_pages(order)) * 1000 / info.free_pages;
    // At most 1000.
    unusable as i32
}

/// `__fragmentation_index()`: for a request of `order` that would fail, in
/// milli-units, whether it fails for lack of memory (towards 0) or because
/// of fragmentation (towards 1000).
///
/// -1000 means the request would succeed; 0 is also returned when nothing at
/// all is free and, as in the kernel, for an order above `MAX_ORDER`. With
/// very few free blocks the kernel's formula can give values between -1000
/// and 0 (one free page, order 1: -500); they are returned unchanged.
pub fn extfrag_index(free: &[u32], order: u32) -> i32 {
    if order > MAX_ORDER {
        return 0;
    }
    let info = contig_info(free, order);
    if info.free_blocks_total == 0 {
        return 0;
    }
    if info.free_blocks_suitable != 0 {
        return -1000;
    }
    let requested = 1u64 << order;
    // No suitable block means every block is smaller than `requested`, so
    // free_pages < total * requested and the quotient is below 2000.
    let q = (1000 + info.free_pages * 1000 / requested) / info.free_blocks_total;
    1000i32.saturating_sub(i32::try_from(q).unwrap_or(i32::MAX))
}

/// `extfrag_for_order()`: the percentage (0..=100) of free pages that sit in
/// blocks smaller than `order`; 0 when nothing is free.
pub fn extfrag_for_order(free: &[u32], order: u32) -> u32 {
    let info = contig_info(free, order);
    if info.free_pages == 0 {
        return 0;
    }
    // At most 100.
    ((info.free_pages - info.usable_pages(order)) * 100 / info.free_pages) as u32
}

/// A value in milli-units, displayed with three decimals as `mm/vmstat.c`
/// prints its indexes: `0.000`, `0.875`, `-1.000`.
///
/// Width and alignment flags apply to the whole number, so `{:>6}` gives
/// the kernel's `%2d.%03d` column for the values the indexes take. Where the
/// kernel would print a negative fraction as `0.-500` this prints `-0.500`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Milli(pub i32);

impl fmt::Display for Milli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Longest output: "-2147483.648", 12 bytes. Built backwards.
        let mut buf = [0u8; 16];
        let mut at = buf.len();
        let mut push = |c: u8| {
            at -= 1;
            buf[at] = c;
        };
        let abs = self.0.unsigned_abs();
        let frac = abs % 1000;
        push(b'0' + (frac % 10) as u8);
        push(b'0' + (frac / 10 % 10) as u8);
        push(b'0' + (frac / 100) as u8);
        push(b'.');
        let mut int = abs / 1000;
        loop {
            push(b'0' + (int % 10) as u8);
            int /= 10;
            if int == 0 {
                break;
            }
        }
        if self.0 < 0 {
            push(b'-');
        }
        // Only ASCII digits, '.' and '-' were written.
        match core::str::from_utf8(&buf[at..]) {
            Ok(s) => f.pad(s),
            Err(_) => Err(fmt::Error),
        }
    }
}

/// `part * 1000 / whole` for `part <= whole`, `whole != 0`, without
/// overflow for any `u64` inputs and without 128-bit division (which the
/// kernel does not link).
fn permille(part: u64, whole: u64) -> u32 {
    // Dividing by a `NonZeroU64` needs no division-by-zero panic, whose
    // call kernel 7.2's objtool does not know as noreturn (it then warns
    // that the function falls through to the next).
    let Some(w) = NonZeroU64::new(whole) else {
        return 0;
    };
    let r = match part.checked_mul(1000) {
        Some(p) => p / w,
        // Both exceed 2^54 here, so dropping 10 low bits costs nothing
        // visible and leaves `whole >> 10` non-zero.
        None => NonZeroU64::new(whole >> 10).map_or(0, |w| (part >> 10) * 1000 / w),
    };
    // At most 1000 because part <= whole.
    r as u32
}

/// A byte-level picture of one allocator's memory, which every rkalloc
/// allocator fills the same way so that they compare side by side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragReport {
    /// Bytes the callers asked for, summed over live allocations.
    pub requested_bytes: u64,
    /// Bytes actually reserved for those allocations (rounded up to size
    /// classes, objects, pages or alignment).
    pub handed_out_bytes: u64,
    /// Bytes spent on the allocator's own bookkeeping (headers, page
    /// metadata, slab descriptors).
    pub metadata_bytes: u64,
    /// Bytes free for future allocations.
    pub free_bytes: u64,
    /// Bytes in the largest free extent: the largest request that can be
    /// served without new memory.
    pub largest_free_bytes: u64,
}

impl FragReport {
    /// All zero.
    pub const EMPTY: FragReport = FragReport {
        requested_bytes: 0,
        handed_out_bytes: 0,
        metadata_bytes: 0,
        free_bytes: 0,
        largest_free_bytes: 0,
    };

    /// Internal fragmentation: bytes handed out beyond what was requested.
    pub fn internal_bytes(&self) -> u64 {
        self.handed_out_bytes.saturating_sub(self.requested_bytes)
    }

    /// Internal fragmentation as permille of the bytes handed out; 0 when
    /// nothing is handed out.
    pub fn internal_permille(&self) -> u32 {
        if self.handed_out_bytes == 0 {
            return 0;
        }
        permille(self.internal_bytes(), self.handed_out_bytes)
    }

    /// Everything spent beyond the requests: internal fragmentation plus
    /// metadata.
    pub fn overhead_bytes(&self) -> u64 {
        self.internal_bytes().saturating_add(self.metadata_bytes)
    }

    /// External fragmentation in permille: `1000 - largest_free * 1000 /
    /// free`, the share of free memory outside the largest free extent. 0
    /// when nothing is free, and 0 when all free memory is one extent.
    pub fn external_permille(&self) -> u32 {
        if self.free_bytes == 0 {
            return 0;
        }
        // A largest extent above the total is a filler's mistake; treat it
        // as unfragmented rather than underflow.
        let largest = self.largest_free_bytes.min(self.free_bytes);
        1000 - permille(largest, self.free_bytes)
    }

    /// Whether a request of `size` bytes fits in the largest free extent.
    /// A zero-byte request always fits.
    pub fn can_serve(&self, size: u64) -> bool {
        size <= self.largest_free_bytes
    }
}
