// SPDX-License-Identifier: GPL-2.0
//! Worst fit: the largest free block.

use super::{
    Blocks, BlocksMut, FitPolicy, FreeBlock, HeapError, HeapFlags, Links, ListCheck, OneList, NIL,
};

/// The largest free block, whatever the request; ties go to the first in
/// list order. The idea (Knuth's exercise, Shore 1975) is that carving
/// from the largest block leaves remainders large enough to be useful,
/// where best fit leaves slivers; in practice it breaks up the large
/// blocks that large requests need. O(free blocks) per allocation.
#[derive(Debug)]
pub struct WorstFit(OneList);

impl FitPolicy for WorstFit {
    const NAME: &'static str = "worst-fit";
    const SHORT: &'static str = "worst";

    fn new(flags: HeapFlags) -> Self {
        WorstFit(OneList::new(flags))
    }

    #[inline(always)]
    fn find(&mut self, h: &mut impl BlocksMut, n: u32) -> Result<Option<FreeBlock>, HeapError> {
        let mut worst: Option<FreeBlock> = None;
        let mut w = h.walk(self.0.head, NIL);
        while let Some(f) = w.next(h)? {
            if worst.is_none_or(|b| f.size > b.size) {
                worst = Some(f);
            }
        }
        h.searched(w.seen);
        Ok(worst.filter(|f| f.size >= n))
    }

    super::one_list_rest!();
}
