// SPDX-License-Identifier: GPL-2.0
//! A variable-size heap with pluggable free-list fit policies.
//!
//! One implementation serves every policy of [`Policy`]; they differ only
//! in how they keep free blocks and which one a request is carved from
//! ([`policy`]: a [`policy::FitPolicy`] each, in one file, registered with
//! one line of the table). Everything else (block layout, splitting,
//! coalescing, regions, checking, statistics) is shared, so a comparison
//! between policies measures the policy and nothing else.
//!
//! # Files
//!
//! - `mod.rs`: the public API, [`Heap`];
//! - `layout.rs`: the bytes of a region: block area, boundary tags, links,
//!   start map;
//! - `blocks.rs`: the regions, tags read with validation, list primitives,
//!   behind the [`blocks::Blocks`] and [`blocks::BlocksMut`] traits;
//! - `ops.rs`: allocation, free with coalescing, adding and removing
//!   regions, generic over the policy and the view of the regions: the
//!   general path, and under DEBUG the only one;
//! - `fast.rs`: the fast path (the same operations on a view that borrows
//!   the operation's region once) and the differential test that pins it
//!   to the general path;
//! - `addrs.rs`: the regions by address, for frees by address;
//! - `stats.rs`: counters, [`HeapStats`] and the invariant check;
//! - `policy/`: the [`policy::FitPolicy`] trait and the table (`mod.rs`),
//!   one file per policy;
//! - `tests.rs`: unit tests.
//!
//! # Region layout
//!
//! The heap owns up to `R` regions, byte buffers handed in by the caller
//! (any [`blocks::RegionMem`]: pool pages in the kernel, a `Vec<u8>` in
//! tests). All metadata lives inside the region bytes; the heap itself
//! keeps only list heads and counters, so it needs no allocation.
//!
//! - The *start map* at the start of each region is a bitmap with one bit
//!   per 16-byte granule, set for every payload that begins a block. It
//!   costs 1/128 of the region and makes [`Heap::free`] exact: a pointer
//!   into the middle of a payload, or one whose bytes were crafted to look
//!   like a header, is rejected without trusting any byte the caller could
//!   have written.
//! - Every block has an 8-byte header and an identical 8-byte footer (the
//!   boundary tags): block size, an allocated bit, the slack between the
//!   payload and the size that was asked for (so `requested_bytes` is kept
//!   exactly), and with [`HeapFlags::DEBUG`] a 24-bit check value over all
//!   of it and the block's offset. The footer lets [`Heap::free`] find the
//!   left neighbour in O(1), so coalescing is immediate and O(1).
//! - A free block keeps its list links in its first payload bytes: `next`
//!   at +8 and `prev` at +16, each a `(region << 32) | offset` word. Hence
//!   [`MIN_BLOCK`] is 32 bytes.
//!
//! Payload offsets are multiples of [`ALIGN`] (16) from the region start;
//! the kernel's regions are page aligned, so the addresses are too.
//!
//! # Corruption
//!
//! Every access is bounds checked and every walk is bounded by the number
//! of free blocks, so no content of the region bytes can make the heap
//! panic or loop forever. A freed pointer is always validated in full
//! (start map, header equal to footer, and with DEBUG the check value).
//! Otherwise the heap trusts its own invariants: a list link must name an
//! in-bounds block with a plausible free tag, and an unlink's neighbours
//! must point back, but footers, start-map bits and check values of the
//! blocks it walks are verified only with [`HeapFlags::DEBUG`] and by
//! [`Heap::check`], which validates everything. The first corruption found
//! is returned once as [`HeapError::CorruptTag`]; the heap then refuses
//! further allocations and frees with [`HeapError::Poisoned`], because
//! handing out memory from a damaged heap would spread the damage. Inputs
//! are different: a bad size, pointer or region returns an error and
//! changes nothing at all.

mod addrs;
pub mod blocks;
mod fast;
mod layout;
mod ops;
pub mod policy;
pub mod stats;
#[cfg(test)]
mod tests;

use core::fmt;

use super::frag::FragReport;
use blocks::{Region, Regions};
use policy::Fit;

use blocks::{Blocks, RegionMem};
use stats::Invariant;

pub use policy::Policy;
pub use stats::HeapStats;

/// Default number of region slots of a [`Heap`].
pub const MAX_REGIONS: usize = 32;

/// Payload alignment, in bytes, relative to the region start.
pub const ALIGN: usize = 16;

/// Smallest block: two tags plus the two free-list links.
pub const MIN_BLOCK: usize = 32;

/// Largest region a heap accepts. Offsets stay far below `u32::MAX`, so the
/// offset arithmetic has headroom even on 32-bit targets.
pub const MAX_REGION_BYTES: usize = 1 << 30;

/// The largest request the largest region ([`MAX_REGION_BYTES`]) could
/// serve: larger ones are [`HeapError::Invalid`] rather than
/// [`HeapError::NoMemory`]. (Not the kernel module's limit on heap
/// allocations, `RKALLOC_MAX_HEAP_ALLOC`, which is far smaller.)
pub const MAX_REGION_ALLOC: usize = max_alloc_in(MAX_REGION_BYTES);

/// The largest request a fresh region of `region_bytes` bytes can serve; 0
/// if the heap would reject such a region. Lets the glue pick a region size
/// after [`HeapError::NoMemory`].
pub const fn max_alloc_in(region_bytes: usize) -> usize {
    match layout::layout(region_bytes) {
        Some((start, end)) => end - start - 2 * layout::TAG,
        None => 0,
    }
}

/// Where an allocation lives: a region index and the byte offset of the
/// payload inside that region. The glue turns it into an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ptr {
    /// Region index, as returned by `add_region`.
    pub region: u32,
    /// Byte offset of the first payload byte from the region start.
    pub offset: u32,
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
        what: Invariant,
    },
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeapError::Invalid => f.write_str("invalid request"),
            HeapError::NoMemory => f.write_str("no free block fits"),
            HeapError::RegionsFull => f.write_str("every region slot in use"),
            HeapError::CorruptTag { region, offset } => {
                write!(f, "damaged metadata in region {region} at offset {offset}")
            }
            HeapError::Poisoned => f.write_str("heap poisoned by earlier corruption"),
            HeapError::Inconsistent {
                region,
                offset,
                what,
            } => write!(f, "{what} (region {region}, offset {offset})"),
        }
    }
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
            offset: self.offset.wrapping_add(layout::TAG as u32),
        }
    }

    /// Usable payload bytes: the block minus its two tags.
    pub const fn payload_bytes(&self) -> u32 {
        self.size.saturating_sub(2 * layout::TAG as u32)
    }

    fn new(r: u32, b: u32, t: layout::Tag) -> BlockInfo {
        BlockInfo {
            region: r,
            offset: b,
            size: t.size,
            allocated: t.allocated,
            requested: if t.allocated {
                t.size - 2 * layout::TAG32 - t.slack
            } else {
                0
            },
        }
    }
}

/// A variable-size heap over at most `R` caller-provided regions.
pub struct Heap<M, const R: usize = MAX_REGIONS> {
    flags: HeapFlags,
    /// Where corruption was first found.
    corrupt: Option<Ptr>,
    /// The policy and its lists.
    fit: Fit,
    /// The regions by address, for frees by address.
    addrs: addrs::Addrs<R>,
    blocks: Regions<M, [Option<Region<M>>; R]>,
}

impl<M: RegionMem, const R: usize> Heap<M, R> {
    /// An empty heap of `policy` with options `flags`; add memory with
    /// [`Heap::add_region`].
    pub fn new(policy: Policy, flags: HeapFlags) -> Self {
        Self {
            flags,
            corrupt: None,
            fit: Fit::new(policy, flags),
            addrs: addrs::Addrs::EMPTY,
            blocks: Regions {
                debug: flags.contains(HeapFlags::DEBUG),
                #[cfg(test)]
                general: false,
                c: stats::Counters::ZERO,
                _mem: core::marker::PhantomData,
                regions: [const { None }; R],
            },
        }
    }

    /// The fit policy.
    pub fn policy(&self) -> Policy {
        self.fit.policy()
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
        self.blocks
            .regions
            .get(index as usize)?
            .as_ref()
            .map(|reg| &reg.mem)
    }

    /// The buffer of region `index`, to read and write payloads. Writing
    /// outside live payloads damages the heap's metadata; the heap then
    /// reports [`HeapError::CorruptTag`] but never misbehaves otherwise.
    pub fn region_mut(&mut self, index: u32) -> Option<&mut M> {
        match self.blocks.regions.get_mut(index as usize) {
            Some(Some(reg)) => Some(&mut reg.mem),
            _ => None,
        }
    }

    /// Adds `mem` as a new region, wholly free, and returns its index (the
    /// lowest free slot). On error `mem` is dropped and nothing changes.
    ///
    /// [`HeapError::Invalid`] if the buffer is shorter than a start map plus
    /// one [`MIN_BLOCK`] or longer than [`MAX_REGION_BYTES`].
    pub fn add_region(&mut self, mem: M) -> Result<u32, HeapError> {
        if self.corrupt.is_some() {
            return Err(HeapError::Poisoned);
        }
        if layout::area(mem.as_ref().len()).is_none() {
            return Err(HeapError::Invalid);
        }
        let slot = self.blocks.regions.iter().position(Option::is_none);
        let r = slot
            .and_then(|r| u32::try_from(r).ok())
            .ok_or(HeapError::RegionsFull)?;
        match self.fit.add_region(&mut self.blocks, r, mem) {
            Ok(()) => {
                if let Some(mem) = self.region(r) {
                    self.addrs.insert(mem.as_ref().as_ptr() as usize, r);
                }
                Ok(r)
            }
            Err(e) => Err(self.latch(e)),
        }
    }

    /// Empties the heap in place: every region is dropped (given back to
    /// whoever provided it), the lists, counters and any corruption report
    /// are cleared; the policy and flags stay. The same as assigning
    /// `Heap::new(self.policy(), self.flags())`, without building a second
    /// heap beside this one (a heap is a few KiB: the kernel's stack is
    /// small).
    pub fn clear(&mut self) {
        for slot in self.blocks.regions.iter_mut() {
            *slot = None;
        }
        self.fit = Fit::new(self.fit.policy(), self.flags);
        self.addrs = addrs::Addrs::EMPTY;
        self.blocks.c = stats::Counters::ZERO;
        self.corrupt = None;
    }

    /// Takes region `index` back, only if it is one wholly free block;
    /// otherwise (or if the heap is poisoned) returns `None` and changes
    /// nothing.
    pub fn remove_region(&mut self, index: u32) -> Option<M> {
        if self.corrupt.is_some() {
            return None;
        }
        match self.fit.remove_region(&mut self.blocks, index) {
            Ok(Some(mem)) => {
                self.addrs.remove(index);
                Some(mem)
            }
            Ok(None) => None,
            Err(e) => {
                self.latch(e);
                None
            }
        }
    }

    /// Allocates `size` bytes with [`ALIGN`]-aligned offset.
    ///
    /// [`HeapError::Invalid`] for 0 or more than [`MAX_REGION_ALLOC`];
    /// [`HeapError::NoMemory`] when no free block fits.
    #[inline]
    pub fn alloc(&mut self, size: usize) -> Result<Ptr, HeapError> {
        if self.corrupt.is_some() {
            return Err(HeapError::Poisoned);
        }
        let n = layout::block_size(size).ok_or(HeapError::Invalid)?;
        let r = self.fit.alloc(&mut self.blocks, n, size);
        r.map_err(|e| self.latch(e))
    }

    /// Frees the allocation at `ptr` and merges it with free neighbours.
    ///
    /// [`HeapError::Invalid`] if `ptr` is not the payload start of a live
    /// allocation of this heap (double frees included); nothing changes.
    #[inline]
    pub fn free(&mut self, ptr: Ptr) -> Result<(), HeapError> {
        self.free_emptied(ptr).map(|_| ())
    }

    /// [`Heap::free`], telling also whether `ptr`'s region is now one
    /// wholly free block, which [`Heap::remove_region`] would take back.
    /// The merge knows it, so a caller that gives empty regions back need
    /// not try every region it frees in.
    #[inline]
    pub fn free_emptied(&mut self, ptr: Ptr) -> Result<bool, HeapError> {
        if self.corrupt.is_some() {
            return Err(HeapError::Poisoned);
        }
        let r = self.fit.free(&mut self.blocks, ptr);
        r.map_err(|e| self.latch(e))
    }

    /// Where in the heap the address `addr` is, if in one of its regions
    /// (whether it is a live allocation is for [`Heap::free`] or
    /// [`Heap::locate`] to decide). The addresses are those of the region
    /// buffers' bytes. O(log regions): a binary search of the regions by
    /// address.
    #[inline]
    pub fn ptr_of(&self, addr: *const u8) -> Option<Ptr> {
        let a = addr as usize;
        if let Some(p) = self.addrs.find(a).and_then(|r| self.ptr_in(r, a)) {
            return Some(p);
        }
        // Not in the region below it: in no region (or buffers moved).
        self.ptr_by_scan(a)
    }

    /// `addr` as a place in region `r`, if it lies there.
    #[inline(always)]
    fn ptr_in(&self, r: u32, addr: usize) -> Option<Ptr> {
        let mem = self.region(r)?.as_ref();
        let offset = addr.wrapping_sub(mem.as_ptr() as usize);
        // Below the region's length, at most 2^30: a u32.
        (offset < mem.len()).then_some(Ptr {
            region: r,
            offset: offset as u32,
        })
    }

    /// [`Heap::ptr_of`] by a scan of every region.
    #[cold]
    fn ptr_by_scan(&self, addr: usize) -> Option<Ptr> {
        (0..R as u32).find_map(|r| self.ptr_in(r, addr))
    }

    /// [`Heap::free`] of the allocation whose payload starts at address
    /// `addr` ([`Heap::ptr_of`]): [`HeapError::Invalid`] if there is none.
    #[inline]
    pub fn free_addr(&mut self, addr: *const u8) -> Result<(), HeapError> {
        let ptr = self.ptr_of(addr).ok_or(HeapError::Invalid)?;
        self.free(ptr)
    }

    /// Validates that `ptr` is a live allocation and describes its block.
    pub fn locate(&self, ptr: Ptr) -> Result<BlockInfo, HeapError> {
        let (r, b, t) = ops::resolve(&self.bl().view(), ptr)?;
        Ok(BlockInfo::new(r, b, t))
    }

    /// Calls `f` for every block of every region in address order. Stops
    /// with the error at the first damaged tag.
    pub fn for_each_block(&self, mut f: impl FnMut(BlockInfo)) -> Result<(), HeapError> {
        let h = self.bl().view();
        for (r, slot) in (0u32..).zip(self.blocks.regions.iter()) {
            let Some(reg) = slot else { continue };
            let (mut b, end) = (reg.start, reg.end);
            while b < end {
                let t = h.block(r, b)?;
                f(BlockInfo::new(r, b, t));
                // The tag's validation guarantees b + size <= end.
                b += t.size;
            }
        }
        Ok(())
    }

    /// The current figures. O(free blocks) for the largest free block (only
    /// the highest non-empty class under segregated fit); a damaged list
    /// just ends that walk early.
    pub fn stats(&self) -> HeapStats {
        let largest = self.fit.largest_free(self.bl());
        self.bl().stats(self.policy(), self.flags, largest)
    }

    /// The byte-level summary shared by every rkalloc allocator: tags and
    /// start maps are metadata, free block payloads are free.
    pub fn frag(&self) -> FragReport {
        let c = &self.blocks.c;
        FragReport {
            requested_bytes: c.requested,
            handed_out_bytes: c.alloc_payload,
            metadata_bytes: c.overhead(),
            free_bytes: c.free_payload(),
            largest_free_bytes: self.fit.largest_free(self.bl()) as u64,
        }
    }

    /// Verifies every invariant: tags valid and headers equal to footers,
    /// blocks tiling each block area exactly, start map bits exactly at
    /// block starts, no two adjacent free blocks, the free lists holding
    /// exactly the free blocks (in their class, address ordered where the
    /// policy keeps that order, with consistent back links), the policy's
    /// own state, and the counters.
    pub fn check(&self) -> Result<(), HeapError> {
        let (n, mut lists) = self.bl().check_blocks()?;
        self.fit.check(self.bl(), &mut lists)?;
        self.bl().check_totals(n, lists)
    }

    /// The regions and counters, as the policies see them.
    #[inline(always)]
    fn bl(&self) -> &Regions<M> {
        &self.blocks
    }

    /// Records the first corruption, so it is reported once and the heap
    /// refuses to go on; passes every error through.
    #[cold]
    fn latch(&mut self, e: HeapError) -> HeapError {
        if let HeapError::CorruptTag { region, offset } = e {
            self.corrupt = Some(Ptr { region, offset });
        }
        e
    }
}
