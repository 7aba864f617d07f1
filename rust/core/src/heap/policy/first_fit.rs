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

    #[inline(always)]
    fn insert(
        &mut self,
        h: &mut impl BlocksMut,
        f: FreeBlock,
        near: Option<Links>,
    ) -> Result<(), HeapError> {
        self.0.insert(h, f, near)
    }

    #[inline(always)]
    fn remove(&mut self, h: &mut impl BlocksMut, f: FreeBlock) -> Result<Links, HeapError> {
        self.0.remove(h, f)
    }

    /// A shrunk block keeps its offset, so its place in address order.
    #[inline(always)]
    fn shrink(&mut self, _: &mut impl BlocksMut, _: FreeBlock, _: u32) -> Result<(), HeapError> {
        Ok(())
    }

    fn check(&self, h: &impl Blocks, lists: &mut ListCheck) -> Result<(), HeapError> {
        self.0.check(h, lists)
    }

    fn largest_free(&self, h: &impl Blocks) -> usize {
        self.0.largest_free(h)
    }
}
