// SPDX-License-Identifier: GPL-2.0
//! First fit: the first block in list order that is large enough.

use super::{
    Blocks, BlocksMut, FitPolicy, FreeBlock, HeapError, HeapFlags, Links, ListCheck, OneList,
};

/// The first block in list order (address order by default) that is large
/// enough. O(free blocks) per allocation.
#[derive(Debug)]
pub struct FirstFit(OneList);

impl FitPolicy for FirstFit {
    const NAME: &'static str = "first-fit";
    const SHORT: &'static str = "first";

    fn new(flags: HeapFlags) -> Self {
        FirstFit(OneList::new(flags))
    }

    #[inline(always)]
    fn find(&mut self, h: &mut impl BlocksMut, n: u32) -> Result<Option<FreeBlock>, HeapError> {
        h.first_fit(self.0.head, super::NIL, n)
    }

    super::one_list_rest!();
}
