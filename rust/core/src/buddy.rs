// SPDX-License-Identifier: GPL-2.0
//! Binary buddy page allocator, environment-free.
//!
//! The allocator manages a pool made of *chunks*: each chunk is one naturally
//! aligned block of `1 << MAX_ORDER` pages, which the kernel glue obtains with
//! `alloc_pages(MAX_PAGE_ORDER)` and hands over with [`Buddy::add_chunk`].
//! Pages are named by a `pfn` that indexes the pool's own page space
//! (`chunk << MAX_ORDER | page`), not the machine's: the glue translates.
//!
//! The algorithm is the one of `mm/page_alloc.c` (`__rmqueue_smallest` and
//! `__free_one_page`): take the smallest free block that fits and split it
//! down, and on free merge with the buddy (`pfn ^ (1 << order)`) while the
//! buddy is a free block of the same order. A merge stops at `MAX_ORDER`, so
//! it never crosses a chunk boundary: chunks are not contiguous in memory.
//!
//! All bookkeeping lives in a caller-provided slice of [`PageMeta`], one per
//! page, so the allocator itself never allocates. Free lists are doubly linked
//! through that slice by `u32` pfn, which makes every list operation O(1) and
//! every `alloc`/`free` O(1) per order.
//!
//! Every public entry point validates its arguments first and reports misuse
//! (double free, wrong order, foreign pfn) as a [`BuddyError`] without
//! changing anything, because in the kernel a panic is an oops.

use core::fmt;

/// The block orders, defined with the page geometry in [`super::page`].
pub use super::page::{MAX_ORDER, NR_ORDERS};

/// Pages in one chunk.
pub const CHUNK_PAGES: u32 = 1 << MAX_ORDER;

/// Most chunks one pool can address: the pfn of every page must fit a `u32`
/// and stay below `u32::MAX`, which marks the end of a free list.
pub const MAX_CHUNKS_LIMIT: u32 = u32::MAX >> MAX_ORDER;

/// End-of-list marker in the free lists; never a valid pfn (see
/// [`MAX_CHUNKS_LIMIT`]).
const NIL: u32 = u32::MAX;

// The last pfn of the largest pool stays clear of NIL.
const _: () = assert!(((MAX_CHUNKS_LIMIT - 1) << MAX_ORDER) + (CHUNK_PAGES - 1) < NIL);
// The per-order bitmap of non-empty lists is a `u16`.
const _: () = assert!(NR_ORDERS <= 16);
// The metadata array costs this much per 4 KiB page; keep it small.
const _: () = assert!(core::mem::size_of::<PageMeta>() <= 12);

/// Why a buddy operation was refused. A refused operation changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuddyError {
    /// The order is larger than [`MAX_ORDER`].
    InvalidOrder,
    /// The pfn or chunk index lies beyond the pool's metadata.
    OutOfRange,
    /// The pfn is not the head of an allocated block: a tail page, a free
    /// block (which includes a double free) or a misaligned pfn.
    NotAllocated,
    /// The pfn heads an allocated block of a different order.
    WrongOrder,
    /// No free block of the requested order or larger.
    NoMemory,
    /// The chunk still holds allocated pages.
    Busy,
    /// The chunk is not part of the pool.
    ChunkOffline,
    /// The chunk is already part of the pool.
    ChunkOnline,
}

impl BuddyError {
    /// A short human-readable description, for kernel log messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            BuddyError::InvalidOrder => "order larger than MAX_ORDER",
            BuddyError::OutOfRange => "pfn or chunk out of range",
            BuddyError::NotAllocated => "not the head of an allocated block",
            BuddyError::WrongOrder => "block was allocated with another order",
            BuddyError::NoMemory => "no free block large enough",
            BuddyError::Busy => "chunk has allocated pages",
            BuddyError::ChunkOffline => "chunk is offline",
            BuddyError::ChunkOnline => "chunk is already online",
        }
    }
}

impl fmt::Display for BuddyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a page's metadata says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not the first page of a block (or a page of an offline chunk).
    Tail,
    /// First page of a free block, linked on the free list of its order.
    Free,
    /// First page of an allocated block.
    Allocated,
}

/// Per-page bookkeeping: free-list links and, for the first page of a block,
/// its state and order. The caller provides one per page and must not touch
/// them while a [`Buddy`] owns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageMeta {
    /// Next free block of the same order, or [`NIL`]; meaningful on free heads.
    next: u32,
    /// Previous free block of the same order, or [`NIL`].
    prev: u32,
    /// Kind and order in one byte, so that the hot paths test both with one
    /// compare: `0..=15` is a free head of that order, `16..=31` an allocated
    /// head of order `state - 16`, anything else a tail (see
    /// [`PageMeta::kind`]). Every byte value decodes to something, so
    /// [`Buddy::check`] needs no extra case; orders above `MAX_ORDER` are
    /// representable and reported as [`CheckErrorKind::BadOrder`].
    state: u8,
    /// Set on the first page of an online chunk only. Storing it here rather
    /// than in a bitmap keeps [`Buddy`] free of any size limit of its own.
    online: bool,
}

/// `PageMeta::state` of a free head of `order` (`order <= 15`).
#[inline(always)]
const fn free_state(order: u32) -> u8 {
    order as u8
}

/// `PageMeta::state` of an allocated head of `order` (`order <= 15`).
#[inline(always)]
const fn allocated_state(order: u32) -> u8 {
    ALLOCATED_BASE | order as u8
}

/// First `PageMeta::state` of an allocated head.
const ALLOCATED_BASE: u8 = 16;

/// The canonical `PageMeta::state` of a tail page.
const TAIL_STATE: u8 = u8::MAX;

impl PageMeta {
    /// The state of a page that belongs to no block: an offline chunk's page.
    pub const EMPTY: PageMeta = PageMeta {
        next: NIL,
        prev: NIL,
        state: TAIL_STATE,
        online: false,
    };

    /// Head or tail, and whether the block is free.
    #[inline(always)]
    fn kind(&self) -> Kind {
        match self.state {
            0..ALLOCATED_BASE => Kind::Free,
            ALLOCATED_BASE..32 => Kind::Allocated,
            _ => Kind::Tail,
        }
    }

    /// Block order; meaningful on heads only.
    #[inline(always)]
    fn order(&self) -> u32 {
        u32::from(self.state & (ALLOCATED_BASE - 1))
    }
}

impl Default for PageMeta {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// What [`Buddy::page_state`] reports about one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    /// The page is not part of an online chunk (or is out of range).
    Offline,
    /// The page heads a free block of `order`.
    Free {
        /// Block order.
        order: u32,
    },
    /// The page heads an allocated block of `order`.
    Allocated {
        /// Block order.
        order: u32,
    },
    /// The page lies inside a block whose head is a lower pfn.
    Tail,
}

/// Event counters per order, since creation or the last
/// [`Buddy::reset_stats`]. Counters wrap rather than overflow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuddyStats {
    /// Successful allocations, by requested order.
    pub allocs: [u64; NR_ORDERS],
    /// Successful frees, by order of the freed block.
    pub frees: [u64; NR_ORDERS],
    /// Blocks of this order split into two halves to serve a smaller request.
    pub splits: [u64; NR_ORDERS],
    /// Pairs of free buddies of this order merged into one block of the
    /// next order.
    pub merges: [u64; NR_ORDERS],
    /// Allocations of this order refused with [`BuddyError::NoMemory`].
    pub failures: [u64; NR_ORDERS],
}

impl BuddyStats {
    /// All counters zero.
    pub const ZERO: BuddyStats = BuddyStats {
        allocs: [0; NR_ORDERS],
        frees: [0; NR_ORDERS],
        splits: [0; NR_ORDERS],
        merges: [0; NR_ORDERS],
        failures: [0; NR_ORDERS],
    };
}

/// Adds one to a statistics counter. Wrapping, because a counter that ran
/// for centuries must not oops the kernel.
#[inline(always)]
fn bump(counter: &mut u64) {
    *counter = counter.wrapping_add(1);
}

/// Index of `pfn` in the metadata slice.
#[inline(always)]
fn ix(pfn: u32) -> usize {
    pfn as usize
}

/// Length of the metadata slice a pool of `max_chunks` chunks needs, or
/// `None` when that many chunks cannot be addressed.
pub const fn meta_len(max_chunks: u32) -> Option<usize> {
    if max_chunks > MAX_CHUNKS_LIMIT {
        return None;
    }
    Some((max_chunks as usize) << MAX_ORDER)
}

/// The per-order free lists. Kept apart from the metadata so that the hot
/// paths can borrow both at once.
struct FreeLists {
    /// First free block of each order, or [`NIL`].
    heads: [u32; NR_ORDERS],
    /// Length of each list.
    nr_free: [u32; NR_ORDERS],
    /// Bit `o` set iff list `o` is not empty, so that `alloc` finds the
    /// smallest usable order with one `trailing_zeros` instead of a scan.
    nonempty: u16,
}

impl FreeLists {
    const EMPTY: FreeLists = FreeLists {
        heads: [NIL; NR_ORDERS],
        nr_free: [0; NR_ORDERS],
        nonempty: 0,
    };

    /// Marks `pfn` as a free block of `order` and puts it at the front of its
    /// list: the most recently freed block is the most likely cache-hot.
    ///
    /// `pfn` is a block head in an online chunk and `order <= MAX_ORDER`.
    #[inline(always)]
    fn push(&mut self, meta: &mut [PageMeta], pfn: u32, order: u32) {
        let o = order as usize;
        let head = self.heads[o];
        let m = &mut meta[ix(pfn)];
        m.state = free_state(order);
        m.prev = NIL;
        m.next = head;
        if head != NIL {
            meta[ix(head)].prev = pfn;
        }
        self.heads[o] = pfn;
        // Bounded by the number of pages, which fits a u32 (MAX_CHUNKS_LIMIT).
        self.nr_free[o] += 1;
        self.nonempty |= 1 << o;
    }

    /// Takes the first block off the list of `order`, which must not be empty.
    #[inline(always)]
    fn pop(&mut self, meta: &mut [PageMeta], order: u32) -> u32 {
        let o = order as usize;
        let pfn = self.heads[o];
        let next = meta[ix(pfn)].next;
        self.heads[o] = next;
        if next != NIL {
            meta[ix(next)].prev = NIL;
        } else {
            self.nonempty &= !(1 << o);
        }
        self.nr_free[o] -= 1;
        pfn
    }

    /// Takes the free block `pfn` of `order` off its list, wherever it is.
    #[inline(always)]
    fn unlink(&mut self, meta: &mut [PageMeta], pfn: u32, order: u32) {
        let o = order as usize;
        let PageMeta { prev, next, .. } = meta[ix(pfn)];
        if prev == NIL {
            self.heads[o] = next;
            if next == NIL {
                self.nonempty &= !(1 << o);
            }
        } else {
            meta[ix(prev)].next = next;
        }
        if next != NIL {
            meta[ix(next)].prev = prev;
        }
        self.nr_free[o] -= 1;
    }
}

/// A buddy allocator over up to `meta.len() >> MAX_ORDER` chunks.
///
/// `M` is the metadata storage: a slice, array or vector of [`PageMeta`], one
/// per page. It must return the same slice on every call to `as_ref` and
/// `as_mut`.
pub struct Buddy<M>
where
    M: AsRef<[PageMeta]> + AsMut<[PageMeta]>,
{
    /// One entry per page of every chunk slot.
    // INVARIANT: `meta.len() >= max_chunks << MAX_ORDER`; a page of an
    // offline chunk is `Kind::Tail`; the pages of an online chunk are covered
    // exactly once by the blocks headed by its `Free` and `Allocated` pages;
    // `online` is set only on the first page of online chunks.
    meta: M,
    /// Chunk slots the metadata covers.
    max_chunks: u32,
    /// Chunk slots currently online.
    online_chunks: u32,
    /// Free lists; the `Free` heads are exactly the members.
    lists: FreeLists,
    /// Sum over free blocks of their size in pages.
    free_pages: u64,
    stats: BuddyStats,
}

impl<M> Buddy<M>
where
    M: AsRef<[PageMeta]> + AsMut<[PageMeta]>,
{
    /// Creates an allocator whose chunk slots are all offline.
    ///
    /// There is one slot per `1 << MAX_ORDER` entries of `meta` (at most
    /// [`MAX_CHUNKS_LIMIT`]); a trailing partial slot is ignored. Every entry
    /// is reset, so `meta` may hold anything.
    pub fn new(mut meta: M) -> Self {
        let slots = meta.as_ref().len() >> MAX_ORDER;
        let max_chunks = u32::try_from(slots)
            .unwrap_or(MAX_CHUNKS_LIMIT)
            .min(MAX_CHUNKS_LIMIT);
        for m in meta.as_mut().iter_mut() {
            *m = PageMeta::EMPTY;
        }
        Buddy {
            meta,
            max_chunks,
            online_chunks: 0,
            lists: FreeLists::EMPTY,
            free_pages: 0,
            stats: BuddyStats::ZERO,
        }
    }

    /// Number of chunk slots.
    #[inline]
    pub fn max_chunks(&self) -> u32 {
        self.max_chunks
    }

    /// Number of chunk slots currently online.
    #[inline]
    pub fn online_chunks(&self) -> u32 {
        self.online_chunks
    }

    /// Checks that `chunk` is a valid slot and returns its first pfn.
    #[inline]
    fn chunk_base(&self, chunk: u32) -> Result<u32, BuddyError> {
        if chunk >= self.max_chunks {
            return Err(BuddyError::OutOfRange);
        }
        Ok(chunk << MAX_ORDER)
    }

    /// Brings chunk slot `chunk` online as one free `MAX_ORDER` block.
    pub fn add_chunk(&mut self, chunk: u32) -> Result<(), BuddyError> {
        let base = self.chunk_base(chunk)?;
        let meta = self.meta.as_mut();
        if meta[ix(base)].online {
            return Err(BuddyError::ChunkOnline);
        }
        // All pages of an offline chunk are already clean tails (invariant),
        // so only the head needs writing: O(1).
        meta[ix(base)].online = true;
        self.lists.push(meta, base, MAX_ORDER);
        self.online_chunks += 1;
        self.free_pages += u64::from(CHUNK_PAGES);
        Ok(())
    }

    /// Takes chunk slot `chunk` offline, so that the glue can give its pages
    /// back to the kernel. Refused with [`BuddyError::Busy`] unless the whole
    /// chunk is one free `MAX_ORDER` block.
    pub fn remove_chunk(&mut self, chunk: u32) -> Result<(), BuddyError> {
        let base = self.chunk_base(chunk)?;
        let meta = self.meta.as_mut();
        let head = meta[ix(base)];
        if !head.online {
            return Err(BuddyError::ChunkOffline);
        }
        if head.state != free_state(MAX_ORDER) {
            return Err(BuddyError::Busy);
        }
        self.lists.unlink(meta, base, MAX_ORDER);
        // A wholly free chunk has tails everywhere but at its head, so
        // resetting the head restores the offline invariant.
        meta[ix(base)] = PageMeta::EMPTY;
        self.online_chunks -= 1;
        self.free_pages -= u64::from(CHUNK_PAGES);
        Ok(())
    }

    /// Whether chunk slot `chunk` is online (false when out of range).
    #[inline]
    pub fn chunk_online(&self, chunk: u32) -> bool {
        match self.chunk_base(chunk) {
            Ok(base) => self.meta.as_ref()[ix(base)].online,
            Err(_) => false,
        }
    }

    /// Whether chunk slot `chunk` is online and wholly free, that is, whether
    /// [`Buddy::remove_chunk`] would succeed.
    #[inline]
    pub fn chunk_is_free(&self, chunk: u32) -> bool {
        match self.chunk_base(chunk) {
            Ok(base) => {
                let head = self.meta.as_ref()[ix(base)];
                head.online && head.state == free_state(MAX_ORDER)
            }
            Err(_) => false,
        }
    }

    /// Allocates a block of `1 << order` pages and returns the pfn of its
    /// first page, which is aligned to the block size.
    ///
    /// The block comes from the smallest free block of at least `order`,
    /// split down as needed; the upper halves go back on the free lists.
    #[inline]
    pub fn alloc(&mut self, order: u32) -> Result<u32, BuddyError> {
        if order > MAX_ORDER {
            return Err(BuddyError::InvalidOrder);
        }
        let usable = u32::from(self.lists.nonempty) >> order;
        if usable == 0 {
            bump(&mut self.stats.failures[order as usize]);
            return Err(BuddyError::NoMemory);
        }
        let mut cur = order + usable.trailing_zeros();
        let meta = self.meta.as_mut();
        let pfn = self.lists.pop(meta, cur);
        while cur > order {
            bump(&mut self.stats.splits[cur as usize]);
            cur -= 1;
            self.lists.push(meta, pfn + (1 << cur), cur);
        }
        meta[ix(pfn)].state = allocated_state(order);
        self.free_pages -= 1 << order;
        bump(&mut self.stats.allocs[order as usize]);
        Ok(pfn)
    }

    /// Frees the block of `1 << order` pages at `pfn`, merging it with its
    /// buddy for as long as the buddy is free and of the same order.
    ///
    /// Refuses, changing nothing: an order above `MAX_ORDER`
    /// ([`BuddyError::InvalidOrder`]), a pfn beyond the pool
    /// ([`BuddyError::OutOfRange`]) or in an offline chunk
    /// ([`BuddyError::ChunkOffline`]), a pfn that does not head an allocated
    /// block, as in a double free ([`BuddyError::NotAllocated`]), and an
    /// order other than the one allocated ([`BuddyError::WrongOrder`]).
    #[inline]
    pub fn free(&mut self, pfn: u32, order: u32) -> Result<(), BuddyError> {
        if order > MAX_ORDER {
            return Err(BuddyError::InvalidOrder);
        }
        let base = self.chunk_base(pfn >> MAX_ORDER)?;
        let meta = self.meta.as_mut();
        // One compare accepts the common case. Only an allocated head has an
        // allocated state, and allocated heads exist in online chunks only
        // (invariant), so the chunk's flag need not be read on this path.
        if meta[ix(pfn)].state != allocated_state(order) {
            return Err(Self::free_refusal(meta, base, pfn));
        }
        // Validated: from here on nothing can fail.
        self.free_pages += 1 << order;
        bump(&mut self.stats.frees[order as usize]);
        let mut head = pfn;
        let mut cur = order;
        // Stopping below MAX_ORDER keeps merges inside the chunk: the buddy
        // of a MAX_ORDER block would be another, unrelated, chunk.
        while cur < MAX_ORDER {
            let buddy = head ^ (1 << cur);
            if meta[ix(buddy)].state != free_state(cur) {
                break;
            }
            self.lists.unlink(meta, buddy, cur);
            // The upper half's head becomes a tail of the merged block.
            meta[ix(head | buddy)].state = TAIL_STATE;
            head &= buddy;
            bump(&mut self.stats.merges[cur as usize]);
            cur += 1;
        }
        self.lists.push(meta, head, cur);
        Ok(())
    }

    /// Why `free` refuses `pfn` in chunk `base` whose state is not that of an
    /// allocated head of the given order: in the order of precedence of the
    /// checks, an offline chunk, then not an allocated head, then a head of
    /// another order. Out of line: only misuse gets here.
    #[cold]
    #[inline(never)]
    fn free_refusal(meta: &[PageMeta], base: u32, pfn: u32) -> BuddyError {
        if !meta[ix(base)].online {
            BuddyError::ChunkOffline
        } else if meta[ix(pfn)].kind() != Kind::Allocated {
            BuddyError::NotAllocated
        } else {
            BuddyError::WrongOrder
        }
    }

    /// Number of free blocks of `order` (0 for an invalid order), as in one
    /// column of `/proc/buddyinfo`.
    #[inline]
    pub fn nr_free(&self, order: u32) -> u32 {
        match self.lists.nr_free.get(order as usize) {
            Some(n) => *n,
            None => 0,
        }
    }

    /// Number of free blocks of every order, as a line of `/proc/buddyinfo`;
    /// the input of the `super::frag` indexes.
    #[inline]
    pub fn free_counts(&self) -> [u32; NR_ORDERS] {
        self.lists.nr_free
    }

    /// Order of the largest free block, if any.
    #[inline]
    pub fn largest_free_order(&self) -> Option<u32> {
        match self.lists.nonempty {
            0 => None,
            mask => Some(15 - mask.leading_zeros()),
        }
    }

    /// Pages in online chunks.
    #[inline]
    pub fn total_pages(&self) -> u64 {
        u64::from(self.online_chunks) << MAX_ORDER
    }

    /// Pages in free blocks.
    #[inline]
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Pages in allocated blocks.
    #[inline]
    pub fn allocated_pages(&self) -> u64 {
        self.total_pages() - self.free_pages
    }

    /// Event counters.
    #[inline]
    pub fn stats(&self) -> &BuddyStats {
        &self.stats
    }

    /// Zeroes the event counters; the allocator state is untouched.
    pub fn reset_stats(&mut self) {
        self.stats = BuddyStats::ZERO;
    }

    /// State of page `pfn`: the head of a free or allocated block, a tail
    /// page inside a block, or offline (which includes out of range).
    pub fn page_state(&self, pfn: u32) -> PageState {
        let base = match self.chunk_base(pfn >> MAX_ORDER) {
            Ok(base) => base,
            Err(_) => return PageState::Offline,
        };
        let meta = self.meta.as_ref();
        if !meta[ix(base)].online {
            return PageState::Offline;
        }
        let m = meta[ix(pfn)];
        let order = m.order();
        match m.kind() {
            Kind::Tail => PageState::Tail,
            Kind::Free => PageState::Free { order },
            Kind::Allocated => PageState::Allocated { order },
        }
    }

    /// The block containing page `pfn`: its head pfn and the head's state
    /// (`Free` or `Allocated`); `None` for an offline page. O(`MAX_ORDER`).
    pub fn block_of(&self, pfn: u32) -> Option<(u32, PageState)> {
        // The head of the containing block is `pfn` rounded down to the
        // block's order; rounding to any smaller order lands on a tail of the
        // same block, so the first head met going up is the one.
        for order in 0..=MAX_ORDER {
            let head = pfn & !((1 << order) - 1);
            match self.page_state(head) {
                PageState::Offline => return None,
                PageState::Tail => {}
                state => return Some((head, state)),
            }
        }
        None
    }

    /// Verifies every invariant of the allocator in O(pages) and reports
    /// the totals, or the first violation found with its place.
    ///
    /// Checked: offline chunks hold no blocks; the blocks of each online
    /// chunk are aligned, within their chunk, and cover every page exactly
    /// once; no two free buddies of the same order are left unmerged; each
    /// free list, walked forward with its back links verified at every step,
    /// holds exactly the free blocks of its order, in agreement with the
    /// per-order counts and the non-empty bitmap; free plus allocated pages
    /// make up the total. Never panics, whatever the metadata holds.
    pub fn check(&self) -> Result<CheckReport, CheckError> {
        use CheckErrorKind as K;
        let meta = self.meta.as_ref();
        let get = |pfn: u32| -> Result<PageMeta, CheckError> {
            meta.get(ix(pfn))
                .copied()
                .ok_or(CheckError::new(K::MetaTooShort, pfn, 0))
        };

        let mut report = CheckReport::EMPTY;
        for chunk in 0..self.max_chunks {
            let base = chunk << MAX_ORDER;
            let head = get(base)?;
            if !head.online {
                for pfn in base..base + CHUNK_PAGES {
                    let m = get(pfn)?;
                    if m.kind() != Kind::Tail || m.online {
                        return Err(CheckError::new(K::OfflinePageInUse, pfn, m.order()));
                    }
                }
                continue;
            }
            report.online_chunks += 1;
            let mut pfn = base;
            while pfn < base + CHUNK_PAGES {
                let m = get(pfn)?;
                let order = m.order();
                if m.kind() == Kind::Tail {
                    return Err(CheckError::new(K::UncoveredPage, pfn, 0));
                }
                if pfn != base && m.online {
                    return Err(CheckError::new(K::StrayOnlineFlag, pfn, order));
                }
                if order > MAX_ORDER {
                    return Err(CheckError::new(K::BadOrder, pfn, order));
                }
                let size = 1u32 << order;
                // Alignment within an aligned chunk also keeps the block
                // inside the chunk.
                if pfn & (size - 1) != 0 {
                    return Err(CheckError::new(K::Misaligned, pfn, order));
                }
                for tail in pfn + 1..pfn + size {
                    let t = get(tail)?;
                    if t.kind() != Kind::Tail || t.online {
                        return Err(CheckError::new(K::Overlap, tail, order));
                    }
                }
                if m.kind() == Kind::Free {
                    report.free_blocks[order as usize] += 1;
                    report.free_pages += u64::from(size);
                    if order < MAX_ORDER {
                        let b = get(pfn ^ size)?;
                        if b.kind() == Kind::Free && b.order() == order {
                            return Err(CheckError::new(K::UnmergedBuddies, pfn, order));
                        }
                    }
                } else {
                    report.allocated_blocks += 1;
                    report.allocated_pages += u64::from(size);
                }
                pfn += size;
            }
        }
        if report.online_chunks != self.online_chunks {
            return Err(CheckError::new(K::ChunkCountMismatch, 0, 0));
        }

        let mut mask = 0u16;
        for order in 0..=MAX_ORDER {
            let o = order as usize;
            let want = report.free_blocks[o];
            if self.lists.nr_free[o] != want {
                return Err(CheckError::new(
                    K::CountMismatch,
                    self.lists.heads[o],
                    order,
                ));
            }
            let mut prev = NIL;
            let mut cur = self.lists.heads[o];
            let mut len = 0u32;
            while cur != NIL {
                // A walk longer than the block count means a cycle or a
                // block listed twice; stop before looping forever.
                if len == want {
                    return Err(CheckError::new(K::CountMismatch, cur, order));
                }
                let chunk = cur >> MAX_ORDER;
                if chunk >= self.max_chunks || !get(chunk << MAX_ORDER)?.online {
                    return Err(CheckError::new(K::ListBroken, cur, order));
                }
                let m = get(cur)?;
                if m.kind() != Kind::Free || m.order() != order || m.prev != prev {
                    return Err(CheckError::new(K::ListBroken, cur, order));
                }
                len += 1;
                prev = cur;
                cur = m.next;
            }
            // Distinct free heads of this order, `want` of them, each visited
            // once (back links rule out revisits): the list is exactly them.
            if len != want {
                return Err(CheckError::new(K::CountMismatch, prev, order));
            }
            if want != 0 {
                mask |= 1 << o;
            }
        }
        if mask != self.lists.nonempty {
            return Err(CheckError::new(K::MaskMismatch, 0, 0));
        }
        if report.free_pages != self.free_pages
            || report.free_pages + report.allocated_pages != self.total_pages()
        {
            return Err(CheckError::new(K::PageCountMismatch, 0, 0));
        }
        Ok(report)
    }
}

/// Totals found by [`Buddy::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckReport {
    /// Online chunks.
    pub online_chunks: u32,
    /// Free blocks per order, counted from the page metadata.
    pub free_blocks: [u32; NR_ORDERS],
    /// Pages in free blocks.
    pub free_pages: u64,
    /// Allocated blocks.
    pub allocated_blocks: u64,
    /// Pages in allocated blocks.
    pub allocated_pages: u64,
}

impl CheckReport {
    const EMPTY: CheckReport = CheckReport {
        online_chunks: 0,
        free_blocks: [0; NR_ORDERS],
        free_pages: 0,
        allocated_blocks: 0,
        allocated_pages: 0,
    };
}

/// Which invariant [`Buddy::check`] found broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckErrorKind {
    /// The metadata slice is shorter than the chunk slots need.
    MetaTooShort,
    /// A page of an offline chunk is marked as part of a block.
    OfflinePageInUse,
    /// A page of an online chunk belongs to no block.
    UncoveredPage,
    /// A page other than a chunk's first carries the online flag.
    StrayOnlineFlag,
    /// A block head records an order above `MAX_ORDER`.
    BadOrder,
    /// A block head is not aligned to its size.
    Misaligned,
    /// A page inside a block is itself a block head: blocks overlap.
    Overlap,
    /// A free block's buddy is free with the same order but not merged.
    UnmergedBuddies,
    /// A free-list entry is not a free head of that order in an online
    /// chunk, or its back link is wrong.
    ListBroken,
    /// A free list's length, its count and the free blocks disagree.
    CountMismatch,
    /// The non-empty bitmap disagrees with the lists.
    MaskMismatch,
    /// The online chunk count disagrees with the chunk flags.
    ChunkCountMismatch,
    /// Free and allocated pages do not add up to the totals.
    PageCountMismatch,
}

/// A broken invariant: what, and where (`pfn` and `order`, 0 when the
/// violation has no single place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckError {
    /// The invariant.
    pub kind: CheckErrorKind,
    /// The page where it broke.
    pub pfn: u32,
    /// The order involved.
    pub order: u32,
}

impl CheckError {
    const fn new(kind: CheckErrorKind, pfn: u32, order: u32) -> Self {
        CheckError { kind, pfn, order }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buddy invariant {:?} broken at pfn {} order {}",
            self.kind, self.pfn, self.order
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::vec;
    use std::vec::Vec;

    type Pool = Buddy<Vec<PageMeta>>;

    /// A pool of `slots` chunk slots with the listed ones online.
    fn pool(slots: u32, online: &[u32]) -> Pool {
        let mut b = Buddy::new(vec![PageMeta::EMPTY; (slots as usize) << MAX_ORDER]);
        for &c in online {
            b.add_chunk(c).unwrap();
        }
        b.check().unwrap();
        b
    }

    /// Everything that makes up the allocator's state, to prove that a
    /// refused call changed nothing.
    #[derive(Debug, PartialEq)]
    struct Snapshot {
        meta: Vec<PageMeta>,
        heads: [u32; NR_ORDERS],
        counts: [u32; NR_ORDERS],
        nonempty: u16,
        free_pages: u64,
        online: u32,
        stats: BuddyStats,
        report: CheckReport,
    }

    fn snapshot(b: &Pool) -> Snapshot {
        Snapshot {
            meta: b.meta.clone(),
            heads: b.lists.heads,
            counts: b.free_counts(),
            nonempty: b.lists.nonempty,
            free_pages: b.free_pages(),
            online: b.online_chunks(),
            stats: b.stats().clone(),
            report: b.check().unwrap(),
        }
    }

    fn counts(pairs: &[(u32, u32)]) -> [u32; NR_ORDERS] {
        let mut c = [0; NR_ORDERS];
        for &(order, n) in pairs {
            c[order as usize] = n;
        }
        c
    }

    #[test]
    fn new_resets_metadata_and_starts_offline() {
        let garbage = PageMeta {
            next: 7,
            prev: 3,
            state: free_state(4),
            online: true,
        };
        // Three whole slots plus a partial one, which must be ignored.
        let mut b = Buddy::new(vec![garbage; 3 * 1024 + 5]);
        assert_eq!(b.max_chunks(), 3);
        assert_eq!(b.online_chunks(), 0);
        assert_eq!(b.total_pages(), 0);
        assert_eq!(b.free_counts(), [0; NR_ORDERS]);
        assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
        assert_eq!(b.stats().failures[0], 1);
        assert_eq!(b.page_state(0), PageState::Offline);
        assert_eq!(b.largest_free_order(), None);
        let r = b.check().unwrap();
        assert_eq!(
            (r.online_chunks, r.free_pages, r.allocated_pages),
            (0, 0, 0)
        );

        let mut empty = Buddy::new(Vec::new());
        assert_eq!(empty.max_chunks(), 0);
        assert_eq!(empty.add_chunk(0), Err(BuddyError::OutOfRange));
        assert_eq!(empty.free(0, 0), Err(BuddyError::OutOfRange));
        assert!(!empty.chunk_online(0));
        empty.check().unwrap();

        assert_eq!(meta_len(3), Some(3072));
        assert_eq!(meta_len(MAX_CHUNKS_LIMIT + 1), None);
    }

    #[test]
    fn chunk_lifecycle() {
        let mut b = pool(4, &[]);
        assert_eq!(b.remove_chunk(0), Err(BuddyError::ChunkOffline));
        assert_eq!(b.add_chunk(4), Err(BuddyError::OutOfRange));
        assert_eq!(b.add_chunk(u32::MAX), Err(BuddyError::OutOfRange));
        assert_eq!(b.remove_chunk(9), Err(BuddyError::OutOfRange));
        b.add_chunk(1).unwrap();
        assert_eq!(b.add_chunk(1), Err(BuddyError::ChunkOnline));
        assert!(b.chunk_online(1) && b.chunk_is_free(1));
        assert!(!b.chunk_online(0) && !b.chunk_is_free(0));
        assert!(!b.chunk_online(u32::MAX) && !b.chunk_is_free(u32::MAX));
        assert_eq!(b.total_pages(), 1024);
        assert_eq!(b.free_counts(), counts(&[(10, 1)]));

        let pfn = b.alloc(0).unwrap();
        assert_eq!(pfn, 1024);
        assert!(!b.chunk_is_free(1));
        let before = snapshot(&b);
        assert_eq!(b.remove_chunk(1), Err(BuddyError::Busy));
        assert_eq!(snapshot(&b), before);

        b.free(pfn, 0).unwrap();
        assert!(b.chunk_is_free(1));
        b.remove_chunk(1).unwrap();
        assert!(!b.chunk_online(1));
        assert_eq!(b.total_pages(), 0);
        assert_eq!(b.free_pages(), 0);
        assert_eq!(b.free_counts(), [0; NR_ORDERS]);
        assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
        assert_eq!(b.free(pfn, 0), Err(BuddyError::ChunkOffline));
        b.check().unwrap();
        // The slot can come back, clean.
        b.add_chunk(1).unwrap();
        assert_eq!(b.alloc(10), Ok(1024));
        b.check().unwrap();
    }

    #[test]
    fn split_and_merge_basics() {
        let mut b = pool(1, &[0]);
        assert_eq!(b.largest_free_order(), Some(10));
        assert_eq!(b.alloc(0), Ok(0));
        // One free block of each order 0..=9 is left behind by the splits.
        assert_eq!(b.free_counts(), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(b.largest_free_order(), Some(9));
        assert_eq!(b.free_pages(), 1023);
        assert_eq!(b.allocated_pages(), 1);
        assert_eq!(b.page_state(0), PageState::Allocated { order: 0 });
        assert_eq!(b.page_state(1), PageState::Free { order: 0 });
        assert_eq!(b.page_state(2), PageState::Free { order: 1 });
        assert_eq!(b.page_state(3), PageState::Tail);
        assert_eq!(b.page_state(512), PageState::Free { order: 9 });
        assert_eq!(b.page_state(1023), PageState::Tail);
        assert_eq!(b.stats().splits, [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        b.check().unwrap();

        // Smallest fitting block first, no further split.
        assert_eq!(b.alloc(0), Ok(1));
        assert_eq!(b.alloc(1), Ok(2));
        assert_eq!(b.stats().splits.iter().sum::<u64>(), 10);
        assert_eq!(b.free_counts(), [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        b.check().unwrap();

        // Buddy 0 is allocated: no merge.
        b.free(1, 0).unwrap();
        assert_eq!(b.free_counts(), [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        b.check().unwrap();
        // Merges with 1 into an order-1 block; buddy 2 is allocated.
        b.free(0, 0).unwrap();
        assert_eq!(b.free_counts(), [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(b.page_state(0), PageState::Free { order: 1 });
        assert_eq!(b.page_state(1), PageState::Tail);
        b.check().unwrap();
        // Now everything merges back into the chunk.
        b.free(2, 1).unwrap();
        assert_eq!(b.free_counts(), counts(&[(10, 1)]));
        assert_eq!(b.stats().merges, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(b.stats().allocs, counts64(&[(0, 2), (1, 1)]));
        assert_eq!(b.stats().frees, counts64(&[(0, 2), (1, 1)]));
        assert!(b.chunk_is_free(0));
        b.check().unwrap();
    }

    fn counts64(pairs: &[(u32, u64)]) -> [u64; NR_ORDERS] {
        let mut c = [0; NR_ORDERS];
        for &(order, n) in pairs {
            c[order as usize] = n;
        }
        c
    }

    #[test]
    fn bad_input_changes_nothing() {
        // Chunk 1 stays offline between two online ones. The last chunk
        // added is used first (LIFO lists), hence 2 before 0.
        let mut b = pool(3, &[2, 0]);
        let mut blocks = Vec::new();
        for order in [0, 3, 10] {
            blocks.push((b.alloc(order).unwrap(), order));
        }
        // The order-10 request must have taken the untouched chunk.
        assert_eq!(blocks, [(0, 0), (8, 3), (2048, 10)]);

        let cases: &[(u32, u32, BuddyError)] = &[
            (0, 11, BuddyError::InvalidOrder),
            (0, u32::MAX, BuddyError::InvalidOrder),
            (3 * 1024, 0, BuddyError::OutOfRange),
            (u32::MAX, 0, BuddyError::OutOfRange),
            (u32::MAX, 10, BuddyError::OutOfRange),
            (1024, 0, BuddyError::ChunkOffline),
            (1500, 3, BuddyError::ChunkOffline),
            // A free page, a free head of a larger block, a tail page of an
            // allocated block, a tail page of a free block, a misaligned pfn.
            (1, 0, BuddyError::NotAllocated),
            (16, 4, BuddyError::NotAllocated),
            (9, 0, BuddyError::NotAllocated),
            (2049, 0, BuddyError::NotAllocated),
            (17, 0, BuddyError::NotAllocated),
            (12, 2, BuddyError::NotAllocated),
            (0, 1, BuddyError::WrongOrder),
            (8, 0, BuddyError::WrongOrder),
            (8, 4, BuddyError::WrongOrder),
            (2048, 9, BuddyError::WrongOrder),
        ];
        for &(pfn, order, err) in cases {
            let before = snapshot(&b);
            assert_eq!(b.free(pfn, order), Err(err), "free({pfn}, {order})");
            assert_eq!(snapshot(&b), before, "free({pfn}, {order}) changed state");
        }

        let before = snapshot(&b);
        assert_eq!(b.alloc(11), Err(BuddyError::InvalidOrder));
        assert_eq!(b.alloc(u32::MAX), Err(BuddyError::InvalidOrder));
        assert_eq!(snapshot(&b), before);

        // Double free.
        b.free(8, 3).unwrap();
        let before = snapshot(&b);
        assert_eq!(b.free(8, 3), Err(BuddyError::NotAllocated));
        assert_eq!(snapshot(&b), before);

        b.free(0, 0).unwrap();
        b.free(2048, 10).unwrap();
        assert_eq!(b.free_counts(), counts(&[(10, 2)]));
        b.check().unwrap();
    }

    #[test]
    fn merges_never_cross_chunks() {
        // Adjacent slots: the order-10 buddy of chunk 0 would be chunk 1.
        let mut b = pool(2, &[0, 1]);
        let x = b.alloc(10).unwrap();
        let y = b.alloc(10).unwrap();
        assert_eq!(x ^ y, 1024);
        b.free(x, 10).unwrap();
        b.free(y, 10).unwrap();
        assert_eq!(b.free_counts(), counts(&[(10, 2)]));
        assert_eq!(b.stats().merges, [0; NR_ORDERS]);
        b.check().unwrap();

        // Page by page, in an order that interleaves the two chunks.
        let mut pages: Vec<u32> = (0..2048).map(|_| b.alloc(0).unwrap()).collect();
        assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
        pages.sort_by_key(|&p| (p.reverse_bits(), p));
        for (i, p) in pages.into_iter().enumerate() {
            b.free(p, 0).unwrap();
            if i % 256 == 255 {
                b.check().unwrap();
            }
        }
        assert_eq!(b.free_counts(), counts(&[(10, 2)]));
        assert!(b.chunk_is_free(0) && b.chunk_is_free(1));
        b.check().unwrap();

        // Next to an offline slot, nothing leaks over.
        let mut b = pool(2, &[0]);
        let pages: Vec<u32> = (0..1024).map(|_| b.alloc(0).unwrap()).collect();
        assert!(pages.iter().all(|&p| p < 1024));
        assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
        for p in pages {
            b.free(p, 0).unwrap();
        }
        assert_eq!(b.free_counts(), counts(&[(10, 1)]));
        assert_eq!(b.page_state(1024), PageState::Offline);
        b.check().unwrap();
    }

    #[test]
    fn pessimistic_every_other_page() {
        let mut b = pool(2, &[0, 1]);
        let mut pages: Vec<u32> = (0..2048).map(|_| b.alloc(0).unwrap()).collect();
        pages.sort_unstable();
        assert_eq!(pages, (0..2048).collect::<Vec<u32>>());
        for order in 0..=MAX_ORDER {
            assert_eq!(b.alloc(order), Err(BuddyError::NoMemory));
        }
        assert_eq!(b.free_pages(), 0);
        b.check().unwrap();

        for &p in pages.iter().filter(|&&p| p % 2 == 0) {
            b.free(p, 0).unwrap();
        }
        assert_eq!(b.free_counts(), counts(&[(0, 1024)]));
        assert_eq!(b.free_pages(), 1024);
        assert_eq!(b.allocated_pages(), 1024);
        let failures = b.stats().failures[1];
        assert_eq!(b.alloc(1), Err(BuddyError::NoMemory));
        assert_eq!(b.stats().failures[1], failures + 1);
        assert_eq!(
            super::super::frag::unusable_index(&b.free_counts(), 1),
            1000
        );
        b.check().unwrap();

        for &p in pages.iter().filter(|&&p| p % 2 == 1) {
            b.free(p, 0).unwrap();
        }
        assert_eq!(b.free_counts(), counts(&[(10, 2)]));
        b.check().unwrap();
        let x = b.alloc(10).unwrap();
        let y = b.alloc(10).unwrap();
        assert_eq!(x ^ y, 1024);
        assert_eq!(b.alloc(10), Err(BuddyError::NoMemory));
        assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
    }

    #[test]
    fn pessimistic_one_of_each_order() {
        let mut b = pool(1, &[0]);
        // Each order takes the free block the previous split left behind.
        let mut blocks = Vec::new();
        for order in 0..MAX_ORDER {
            let pfn = b.alloc(order).unwrap();
            assert_eq!(pfn, if order == 0 { 0 } else { 1 << order });
            blocks.push((pfn, order));
        }
        assert_eq!(b.free_counts(), counts(&[(0, 1)]));
        assert_eq!(b.alloc(0), Ok(1));
        for order in 0..=MAX_ORDER {
            assert_eq!(b.alloc(order), Err(BuddyError::NoMemory));
        }
        b.check().unwrap();

        // Freeing the small ones first merges one level per free.
        b.free(1, 0).unwrap();
        assert_eq!(b.free_counts(), counts(&[(0, 1)]));
        for &(pfn, order) in &blocks {
            b.free(pfn, order).unwrap();
            assert_eq!(
                b.page_state(0),
                PageState::Free { order: order + 1 },
                "after freeing order {order}"
            );
            assert_eq!(b.free_counts(), counts(&[(order + 1, 1)]));
            b.check().unwrap();
        }
    }

    #[test]
    fn optimistic_fill_with_every_order() {
        for order in 0..=MAX_ORDER {
            let mut b = pool(2, &[0, 1]);
            let n: u32 = 2048 >> order;
            let mut blocks: Vec<u32> = (0..n).map(|_| b.alloc(order).unwrap()).collect();
            assert_eq!(b.alloc(order), Err(BuddyError::NoMemory));
            assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
            assert_eq!(b.allocated_pages(), 2048);
            assert_eq!(b.check().unwrap().allocated_blocks, u64::from(n));
            blocks.sort_unstable();
            for (i, &p) in blocks.iter().enumerate() {
                assert_eq!(p, (i as u32) << order, "order {order}");
            }
            for p in blocks {
                b.free(p, order).unwrap();
            }
            assert_eq!(b.free_counts(), counts(&[(10, 2)]));
            b.check().unwrap();
        }

        // Largest first down to the smallest fills a chunk exactly.
        let mut b = pool(1, &[0]);
        let mut used = 0;
        for order in (0..MAX_ORDER).rev() {
            let p = b.alloc(order).unwrap();
            assert_eq!(p % (1 << order), 0);
            used += 1 << order;
        }
        assert_eq!(used, 1023);
        b.alloc(0).unwrap();
        assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
        assert_eq!(b.stats().splits.iter().sum::<u64>(), 10);
        b.check().unwrap();
    }

    /// Port of `gpu_test_buddy_alloc_pathological`: allocate one block of
    /// each order below the top plus a hole page, free the largest block and
    /// whittle down again, until the pool is left fragmented page by page.
    #[test]
    fn pathological_whittling() {
        let mut b = pool(1, &[0]);
        let mut blocks: VecDeque<(u32, u32)> = VecDeque::new();
        let mut holes = Vec::new();
        for top in (1..=MAX_ORDER).rev() {
            if let Some((pfn, order)) = blocks.pop_front() {
                b.free(pfn, order).unwrap();
            }
            for order in (0..top).rev() {
                let pfn = b
                    .alloc(order)
                    .unwrap_or_else(|e| panic!("order {order} top {top}: {e}"));
                blocks.push_back((pfn, order));
            }
            holes.push(b.alloc(0).unwrap());
            assert_eq!(b.alloc(top), Err(BuddyError::NoMemory), "top {top}");
            assert_eq!(b.free_pages(), 0);
            b.check().unwrap();
        }
        for &h in &holes {
            b.free(h, 0).unwrap();
        }
        // Ten single pages free, none of them next to its buddy.
        assert_eq!(b.free_counts(), counts(&[(0, MAX_ORDER)]));
        for order in 1..=MAX_ORDER {
            assert_eq!(b.alloc(order), Err(BuddyError::NoMemory));
        }
        b.check().unwrap();
        for (pfn, order) in blocks {
            b.free(pfn, order).unwrap();
        }
        assert_eq!(b.free_counts(), counts(&[(10, 1)]));
        b.check().unwrap();
    }

    /// Checkerboard at every order: half the memory free, yet nothing larger
    /// than the checker squares can be served.
    #[test]
    fn pathological_checkerboard() {
        for order in 0..MAX_ORDER {
            let mut b = pool(1, &[0]);
            let n: u32 = 1024 >> order;
            let blocks: Vec<u32> = (0..n).map(|_| b.alloc(order).unwrap()).collect();
            let (free, kept): (Vec<u32>, Vec<u32>) =
                blocks.iter().partition(|&&p| (p >> order) % 2 == 0);
            for &p in &free {
                b.free(p, order).unwrap();
            }
            assert_eq!(b.free_counts(), counts(&[(order, n / 2)]));
            assert_eq!(b.free_pages(), 512);
            for bigger in order + 1..=MAX_ORDER {
                assert_eq!(b.alloc(bigger), Err(BuddyError::NoMemory));
            }
            b.check().unwrap();
            // All of it is usable at the square size, and only there.
            let again: Vec<u32> = (0..n / 2).map(|_| b.alloc(order).unwrap()).collect();
            assert_eq!(b.alloc(0), Err(BuddyError::NoMemory));
            for p in again.into_iter().chain(kept) {
                b.free(p, order).unwrap();
            }
            assert_eq!(b.free_counts(), counts(&[(10, 1)]));
            b.check().unwrap();
        }
    }

    #[test]
    fn stats_count_and_reset() {
        let mut b = pool(1, &[0]);
        let a = b.alloc(2).unwrap();
        let c = b.alloc(2).unwrap();
        assert_eq!(b.alloc(MAX_ORDER), Err(BuddyError::NoMemory));
        assert_eq!(b.free(a, 3), Err(BuddyError::WrongOrder));
        b.free(a, 2).unwrap();
        b.free(c, 2).unwrap();
        let s = b.stats();
        assert_eq!(s.allocs, counts64(&[(2, 2)]));
        assert_eq!(s.frees, counts64(&[(2, 2)]));
        assert_eq!(s.failures, counts64(&[(10, 1)]));
        assert_eq!(
            s.splits,
            counts64(&[
                (3, 1),
                (4, 1),
                (5, 1),
                (6, 1),
                (7, 1),
                (8, 1),
                (9, 1),
                (10, 1)
            ])
        );
        assert_eq!(
            s.merges,
            counts64(&[
                (2, 1),
                (3, 1),
                (4, 1),
                (5, 1),
                (6, 1),
                (7, 1),
                (8, 1),
                (9, 1)
            ])
        );
        let counts_before = b.free_counts();
        b.reset_stats();
        assert_eq!(*b.stats(), BuddyStats::default());
        assert_eq!(b.free_counts(), counts_before);
        b.check().unwrap();
    }

    #[test]
    fn block_of_finds_the_head() {
        let mut b = pool(2, &[1]);
        let p = b.alloc(3).unwrap();
        assert_eq!(p, 1024);
        for pfn in p..p + 8 {
            assert_eq!(
                b.block_of(pfn),
                Some((p, PageState::Allocated { order: 3 }))
            );
        }
        assert_eq!(
            b.block_of(1024 + 8),
            Some((1032, PageState::Free { order: 3 }))
        );
        assert_eq!(b.block_of(2047), Some((1536, PageState::Free { order: 9 })));
        assert_eq!(b.block_of(5), None);
        assert_eq!(b.block_of(u32::MAX), None);
    }

    #[test]
    fn check_detects_corruption() {
        use CheckErrorKind as K;
        let fresh = || {
            let mut b = pool(2, &[0]);
            for _ in 0..5 {
                b.alloc(0).unwrap();
            }
            b.free(2, 0).unwrap();
            b.check().unwrap();
            b
        };
        let kind = |b: &Pool| b.check().unwrap_err().kind;

        let mut b = fresh();
        b.meta[1025].state = free_state(0);
        assert_eq!(kind(&b), K::OfflinePageInUse);

        let mut b = fresh();
        b.meta[9].state = allocated_state(0);
        assert_eq!(kind(&b), K::Overlap);

        let mut b = fresh();
        b.meta[16].state = TAIL_STATE;
        assert_eq!(kind(&b), K::UncoveredPage);

        let mut b = fresh();
        b.meta[16].state = free_state(11);
        assert_eq!(kind(&b), K::BadOrder);

        let mut b = fresh();
        b.meta[3].online = true;
        assert_eq!(kind(&b), K::StrayOnlineFlag);

        // Page 2 is a free order-0 block; page 3's buddy is allocated page 2
        // before, so free 3 by hand, next to free 2, without merging.
        let mut b = fresh();
        let meta = b.meta.as_mut_slice();
        b.lists.push(meta, 3, 0);
        b.free_pages += 1;
        assert_eq!(kind(&b), K::UnmergedBuddies);

        let mut b = fresh();
        let h = b.lists.heads[3];
        b.meta[ix(h)].prev = 0;
        assert_eq!(kind(&b), K::ListBroken);

        let mut b = fresh();
        let h = b.lists.heads[3];
        b.meta[ix(h)].next = h;
        assert!(b.check().is_err());

        let mut b = fresh();
        b.lists.nr_free[5] += 1;
        assert_eq!(kind(&b), K::CountMismatch);

        let mut b = fresh();
        b.lists.nonempty |= 1 << 10;
        assert_eq!(kind(&b), K::MaskMismatch);

        let mut b = fresh();
        b.free_pages += 1;
        assert_eq!(kind(&b), K::PageCountMismatch);

        let mut b = fresh();
        b.online_chunks += 1;
        assert_eq!(kind(&b), K::ChunkCountMismatch);
    }

    #[test]
    fn state_byte_decodes_every_value() {
        for s in 0..=u8::MAX {
            let m = PageMeta {
                state: s,
                ..PageMeta::EMPTY
            };
            let (kind, order) = (m.kind(), m.order());
            match s {
                0..=15 => assert_eq!((kind, order), (Kind::Free, u32::from(s))),
                16..=31 => assert_eq!((kind, order), (Kind::Allocated, u32::from(s) - 16)),
                _ => assert_eq!(kind, Kind::Tail),
            }
        }
        for order in 0..=MAX_ORDER {
            assert_ne!(free_state(order), allocated_state(order));
            assert_eq!(
                PageMeta {
                    state: allocated_state(order),
                    ..PageMeta::EMPTY
                }
                .order(),
                order
            );
        }
        assert_eq!(PageMeta::EMPTY.kind(), Kind::Tail);

        // An allocated head with an order above MAX_ORDER is caught too.
        let mut b = pool(1, &[0]);
        let p = b.alloc(4).unwrap();
        b.meta[ix(p)].state = allocated_state(12);
        assert_eq!(b.check().unwrap_err().kind, CheckErrorKind::BadOrder);
    }

    #[test]
    fn errors_and_states_print() {
        use std::string::ToString;
        assert_eq!(
            BuddyError::WrongOrder.to_string(),
            "block was allocated with another order"
        );
        let e = CheckError::new(CheckErrorKind::Overlap, 9, 3);
        assert_eq!(
            e.to_string(),
            "buddy invariant Overlap broken at pfn 9 order 3"
        );
        assert_eq!(PageMeta::default(), PageMeta::EMPTY);
    }
}
