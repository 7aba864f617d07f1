// SPDX-License-Identifier: GPL-2.0
//! Segregated fit: LIFO lists of size classes, TLSF-like.

use super::{
    corrupt, inconsistent, largest_on, Blocks, BlocksMut, FitPolicy, FreeBlock, HeapError,
    HeapFlags, Invariant, Links, ListCheck, ALIGN32, NIL,
};

/// Segregated fit's size classes (TLSF's two-level scheme, flattened):
/// below [`LINEAR`] bytes one class per 16-byte step, so those classes are
/// exact; above, [`SUBCLASSES`] classes of equal width per power of two.
/// No block reaches `MAX_REGION_BYTES` (2^30), so the last class holds
/// `[7 << 27, 1 << 30)`.
const SUB_LOG2: u32 = 2;
const SUBCLASSES: u32 = 1 << SUB_LOG2;
const LINEAR_LOG2: u32 = 7;
const LINEAR: u32 = 1 << LINEAR_LOG2;
pub(super) const NCLASSES: usize = (LINEAR / ALIGN32 + (30 - LINEAR_LOG2) * SUBCLASSES) as usize;

/// Words of the non-empty-class bitmap.
const MAP_WORDS: usize = NCLASSES.div_ceil(64);

/// The size class of a block of `size` bytes (below 2^30: at most
/// `NCLASSES - 1`), computed.
#[inline(always)]
const fn class_of(size: u32) -> usize {
    if size < LINEAR {
        return (size / ALIGN32) as usize;
    }
    let log2 = size.ilog2();
    let sub = (size >> (log2 - SUB_LOG2)) & (SUBCLASSES - 1);
    (LINEAR / ALIGN32 + (log2 - LINEAR_LOG2) * SUBCLASSES + sub) as usize
}

/// The first class whose every block holds `n` bytes (a block size): `n`'s
/// own class if `n` is its smallest size, else the next one up (TLSF's
/// "mapping search": `n` rounded up to the next class boundary), computed.
#[inline(always)]
const fn fitting_of(n: u32) -> usize {
    if n < LINEAR {
        // Linear classes are exact: block sizes are multiples of 16.
        return class_of(n);
    }
    let width = 1u32 << (n.ilog2() - SUB_LOG2);
    class_of(n.saturating_add(width - 1))
}

/// Block sizes below this take their classes from the tables: one byte per
/// 16-byte size, half a kilobyte each.
const TABLED: u32 = 8192;

/// A table of [`class_of`] (or, with `fitting`, [`fitting_of`]) for every
/// block size below [`TABLED`], by size / 16.
const fn table(fitting: bool) -> [u8; (TABLED / ALIGN32) as usize] {
    let mut t = [0u8; (TABLED / ALIGN32) as usize];
    let mut i = 0;
    while i < t.len() {
        let size = i as u32 * ALIGN32;
        let c = if fitting {
            fitting_of(size)
        } else {
            class_of(size)
        };
        // Below NCLASSES, which is below 256.
        t[i] = c as u8;
        i += 1;
    }
    t
}

static CLASS: [u8; (TABLED / ALIGN32) as usize] = table(false);
static FITTING: [u8; (TABLED / ALIGN32) as usize] = table(true);

/// The size class of a block of `size` bytes (below 2^30: at most
/// `NCLASSES - 1`). Small sizes, the common ones, from a table: no
/// branches on the size, which a mixed workload would mispredict.
#[inline(always)]
pub(super) fn class(size: u32) -> usize {
    match CLASS.get((size / ALIGN32) as usize) {
        Some(&c) => c as usize,
        None => class_of(size),
    }
}

/// [`fitting_of`], small sizes from a table.
#[inline(always)]
pub(super) fn class_fitting(n: u32) -> usize {
    match FITTING.get((n / ALIGN32) as usize) {
        Some(&c) => c as usize,
        None => fitting_of(n),
    }
}

/// The smallest block size of class `c`: every block of class `c` or above
/// serves a request for that many bytes.
#[cfg(test)]
fn class_floor(c: usize) -> u32 {
    // Classes are below NCLASSES < 2^8.
    let c = c as u32;
    let linear = LINEAR / ALIGN32;
    if c < linear {
        return c * ALIGN32;
    }
    let log2 = LINEAR_LOG2 + (c - linear) / SUBCLASSES;
    let sub = (c - linear) % SUBCLASSES;
    (1 << log2) + (sub << (log2 - SUB_LOG2))
}

/// TLSF-like size classes (Masmano et al., 2004): exact classes per 16
/// bytes below 128 bytes, then four classes per power of two, each a LIFO
/// list, and a bitmap of the non-empty ones. A request whose block size is
/// above its class's floor first tries the head of its own class (with
/// LIFO classes, most often the block of that size freed last: without
/// this, a steady stream of one such size would leave every freed block
/// unused in its class and split larger ones, TLSF's known weakness with
/// wide classes). Otherwise it takes the head of the first non-empty class
/// whose every block fits, found with `trailing_zeros`; only when there is
/// none does it search the rest of its own class. Every operation is O(1)
/// apart from that fallback. The classes are LIFO whatever the flags say.
#[derive(Debug)]
pub struct SegregatedFit {
    heads: [u64; NCLASSES],
    /// Bit `k` set iff `heads[k]` is not empty.
    nonempty: [u64; MAP_WORDS],
}

impl SegregatedFit {
    #[inline(always)]
    fn head(&self, c: usize) -> u64 {
        self.heads.get(c).copied().unwrap_or(NIL)
    }

    #[inline(always)]
    fn mark(&mut self, c: usize, on: bool) {
        if let Some(word) = self.nonempty.get_mut(c / 64) {
            let bit = 1u64 << (c % 64);
            if on {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    fn is_nonempty(&self, c: usize) -> bool {
        let word = self.nonempty.get(c / 64).copied().unwrap_or(0);
        (word >> (c % 64)) & 1 != 0
    }

    /// The first non-empty class at or above `c`.
    #[inline(always)]
    fn nonempty_from(&self, c: usize) -> Option<usize> {
        let mut i = c / 64;
        let mut word = self.nonempty.get(i)? & (u64::MAX << (c % 64));
        loop {
            if word != 0 {
                return Some(i * 64 + word.trailing_zeros() as usize);
            }
            i += 1;
            word = *self.nonempty.get(i)?;
        }
    }

    /// The last non-empty class.
    fn top_nonempty(&self) -> Option<usize> {
        let i = self.nonempty.iter().rposition(|&w| w != 0)?;
        let word = self.nonempty.get(i).copied().unwrap_or(0);
        Some(i * 64 + 63 - word.leading_zeros() as usize)
    }
}

impl FitPolicy for SegregatedFit {
    const NAME: &'static str = "segregated-fit";
    const SHORT: &'static str = "segregated";

    fn new(_: HeapFlags) -> Self {
        SegregatedFit {
            heads: [NIL; NCLASSES],
            nonempty: [0; MAP_WORDS],
        }
    }

    #[inline(always)]
    fn find(&mut self, h: &mut impl BlocksMut, n: u32) -> Result<Option<FreeBlock>, HeapError> {
        let fits = class_fitting(n);
        // Where the own class is not exact (`n` above its floor), its head
        // may fit all the same: the class is LIFO, so that is most often
        // the block of this very size freed last, and taking it whole
        // spares a split now and a merge later. One step, taken first.
        let own = class(n);
        let mut rest = self.head(own);
        if fits != own && rest != NIL {
            let (f, next) = h.step(rest)?;
            h.searched(1);
            if f.size >= n {
                return Ok(Some(f));
            }
            rest = next;
        }
        // Every block of class `fits` or above fits: take the head of the
        // first non-empty one, found in the bitmap.
        if let Some(c2) = self.nonempty_from(fits) {
            let (f, _) = h.step(self.head(c2))?;
            h.searched(1);
            if f.size < n {
                return Err(corrupt(f.region, f.offset));
            }
            return Ok(Some(f));
        }
        // Only the rest of the request's own class can still fit.
        h.first_fit(rest, NIL, n)
    }

    #[inline(always)]
    fn insert(
        &mut self,
        h: &mut impl BlocksMut,
        f: FreeBlock,
        _near: Option<Links>,
    ) -> Result<(), HeapError> {
        let c = class(f.size);
        let Some(head) = self.heads.get_mut(c) else {
            return Err(corrupt(f.region, f.offset));
        };
        h.push(head, f)?;
        self.mark(c, true);
        Ok(())
    }

    #[inline(always)]
    fn remove(&mut self, h: &mut impl BlocksMut, f: FreeBlock) -> Result<Links, HeapError> {
        let c = class(f.size);
        let Some(head) = self.heads.get_mut(c) else {
            return Err(corrupt(f.region, f.offset));
        };
        let links = h.unlink(head, f)?;
        if *head == NIL {
            self.mark(c, false);
        }
        Ok(links)
    }

    /// A block that stays in its class keeps its list position.
    #[inline(always)]
    fn shrink(&mut self, h: &mut impl BlocksMut, f: FreeBlock, size: u32) -> Result<(), HeapError> {
        if class(size) == class(f.size) {
            return Ok(());
        }
        self.remove(h, f)?;
        self.insert(h, FreeBlock { size, ..f }, None)
    }

    fn check(&self, h: &impl Blocks, lists: &mut ListCheck) -> Result<(), HeapError> {
        for c in 0..NCLASSES {
            let head = self.head(c);
            if self.is_nonempty(c) != (head != NIL) {
                return Err(inconsistent(0, 0, Invariant::ClassMask));
            }
            lists.list(h, head, false, |size| class(size) == c)?;
        }
        Ok(())
    }

    /// The largest block is in the highest non-empty class.
    fn largest_free(&self, h: &impl Blocks) -> usize {
        self.top_nonempty()
            .map_or(0, |top| largest_on(h, self.head(top)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{MAX_REGION_BYTES, MIN_BLOCK};
    use super::*;

    #[test]
    fn size_classes_partition_the_block_sizes() {
        let mut prev = class(MIN_BLOCK as u32);
        for size in (MIN_BLOCK as u32..1 << 20)
            .step_by(16)
            .chain([(1 << 30) - 16])
        {
            let c = class(size);
            assert!(c < NCLASSES);
            assert!(c == prev || c == prev + 1 || size == (1 << 30) - 16);
            assert!(
                class_floor(c) <= size && size < class_floor(c + 1),
                "{size}"
            );
            prev = c;
        }
        assert_eq!(class(MAX_REGION_BYTES as u32 - 16), NCLASSES - 1);
        for n in (MIN_BLOCK as u32..1 << 22)
            .step_by(16)
            .chain([(1 << 30) - 16])
        {
            let c = class(n);
            assert_eq!(c, class_of(n));
            let fits = if class_floor(c) == n { c } else { c + 1 };
            assert_eq!(class_fitting(n), fits, "{n}");
        }
        // The examples of the heap's tests.
        assert_eq!(class_floor(class(144)), 128);
        assert_eq!(class(304), class(272));
    }
}
