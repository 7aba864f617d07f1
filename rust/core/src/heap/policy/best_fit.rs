// SPDX-License-Identifier: GPL-2.0
//! Best fit: the smallest block that is large enough.

use super::{
    Blocks, BlocksMut, FitPolicy, FreeBlock, HeapError, HeapFlags, Links, ListCheck, OneList,
};

/// The smallest block that is large enough; ties go to the first in list
/// order, and an exact fit ends the search early. O(free blocks) per
/// allocation.
#[derive(Debug)]
pub struct BestFit(OneList);

impl FitPolicy for BestFit {
    const NAME: &'static str = "best-fit";
    const SHORT: &'static str = "best";

    fn new(flags: HeapFlags) -> Self {
        BestFit(OneList::new(flags))
    }

    #[inline(always)]
    fn find(&mut self, h: &mut impl BlocksMut, n: u32) -> Result<Option<FreeBlock>, HeapError> {
        let mut best: Option<FreeBlock> = None;
        let mut w = h.walk(self.0.head, super::NIL);
        while let Some(f) = w.next(h)? {
            if f.size >= n && best.is_none_or(|b| f.size < b.size) {
                best = Some(f);
                if f.size == n {
                    break;
                }
            }
        }
        h.searched(w.seen);
        Ok(best)
    }

    super::one_list_rest!();
}
