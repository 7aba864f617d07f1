// SPDX-License-Identifier: GPL-2.0
//! Next fit: first fit from where the previous search stopped.

use super::{
    Blocks, BlocksMut, FitPolicy, FreeBlock, HeapError, HeapFlags, Links, ListCheck, OneList, NIL,
};

/// Like first fit, but the search resumes where the previous one stopped
/// and wraps around (Knuth's roving pointer). O(free blocks) per
/// allocation.
#[derive(Debug)]
pub struct NextFit {
    list: OneList,
    /// The free block where the next search starts (`NIL`: the head): the
    /// block the last allocation was carved from, or its successor when it
    /// was taken whole or merged away.
    rover: u64,
}

impl FitPolicy for NextFit {
    const NAME: &'static str = "next-fit";
    const SHORT: &'static str = "next";

    fn new(flags: HeapFlags) -> Self {
        NextFit {
            list: OneList::new(flags),
            rover: NIL,
        }
    }

    #[inline(always)]
    fn find(&mut self, h: &mut impl BlocksMut, n: u32) -> Result<Option<FreeBlock>, HeapError> {
        let head = self.list.head;
        let start = if self.rover != NIL { self.rover } else { head };
        let found = match h.first_fit(start, NIL, n)? {
            Some(f) => Some(f),
            None => h.first_fit(head, start, n)?,
        };
        if let Some(f) = found {
            // A split keeps the block (the remainder) where it is; taking
            // it whole moves the rover on, in `remove`.
            self.rover = f.key();
        }
        Ok(found)
    }

    #[inline(always)]
    fn insert(
        &mut self,
        h: &mut impl BlocksMut,
        f: FreeBlock,
        near: Option<Links>,
    ) -> Result<(), HeapError> {
        self.list.insert(h, f, near)
    }

    /// A removed block hands the rover on to its successor: a block taken
    /// whole, or absorbed by a merge (the search then resumes after the
    /// merged block).
    #[inline(always)]
    fn remove(&mut self, h: &mut impl BlocksMut, f: FreeBlock) -> Result<Links, HeapError> {
        let links = self.list.remove(h, f)?;
        if self.rover == f.key() {
            self.rover = links.next;
        }
        Ok(links)
    }

    /// A shrunk block keeps its offset, so its place in address order.
    #[inline(always)]
    fn shrink(&mut self, _: &mut impl BlocksMut, _: FreeBlock, _: u32) -> Result<(), HeapError> {
        Ok(())
    }

    fn check(&self, h: &impl Blocks, lists: &mut ListCheck) -> Result<(), HeapError> {
        self.list.check(h, lists)?;
        if self.rover != NIL {
            h.node(self.rover)?;
        }
        Ok(())
    }

    fn largest_free(&self, h: &impl Blocks) -> usize {
        self.list.largest_free(h)
    }
}
