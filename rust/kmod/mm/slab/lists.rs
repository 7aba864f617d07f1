// SPDX-License-Identifier: GPL-2.0
//! A cache's slabs: descriptors on partial, full and empty lists.

use super::*;


/// Which list a slab is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Which {
    /// Not linked (being created or released).
    None,
    /// Some objects free, some live or quarantined.
    Partial,
    /// No free object.
    Full,
    /// No live and no quarantined object: may go back to the pool.
    Empty,
}

/// A slab's descriptor, allocated with `KBox` and reached through the
/// lists and through `page->private` of each of its pages.
pub(super) struct Slab {
    pub(super) state: SlabState,
    /// The slab's memory: `layout.slab_bytes()` bytes of pool memory,
    /// aligned to their size.
    pub(super) base: NonNull<u8>,
    /// Pool pfn of the first page (for `Pool::free` and reports).
    pub(super) pfn: u32,
    pub(super) on: Which,
    /// Set when the core reported an inconsistency it cannot repair; the
    /// slab then stays on the full list until the cache goes away.
    pub(super) quarantined: bool,
    pub(super) prev: *mut Slab,
    pub(super) next: *mut Slab,
    /// The owning cache; it outlives the descriptor.
    pub(super) cache: *const Cache,
}

impl Slab {
    pub(super) fn which(&self) -> Which {
        if self.quarantined || self.state.is_full() {
            Which::Full
        } else if self.state.inuse() == 0 && self.state.leaked() == 0 {
            Which::Empty
        } else {
            Which::Partial
        }
    }
}

/// An intrusive doubly linked list of slab descriptors.
pub(super) struct SlabList {
    pub(super) head: *mut Slab,
    pub(super) len: usize,
}

impl SlabList {
    pub(super) const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            len: 0,
        }
    }

    /// # Safety
    ///
    /// `s` is a live descriptor on no list, and the caller holds the lock
    /// of the cache that owns this list and `s`.
    pub(super) unsafe fn push(&mut self, s: *mut Slab) {
        // SAFETY: `s` and the current head are live descriptors of this
        // cache, reached only under its lock (caller's contract).
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    ///
    /// `s` is a live descriptor linked on this list, under the cache's lock.
    pub(super) unsafe fn unlink(&mut self, s: *mut Slab) {
        // SAFETY: `s` and its neighbours are live descriptors linked on this
        // list, reached only under the lock (caller's contract).
        unsafe {
            let (prev, next) = ((*s).prev, (*s).next);
            if prev.is_null() {
                self.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*s).prev = ptr::null_mut();
            (*s).next = ptr::null_mut();
        }
        self.len -= 1;
    }
}

/// A cache's slabs, under its lock.
///
/// # Invariants
///
/// - Every slab of the cache is linked on exactly one list, the one its
///   `on` field names, and that is the list `Slab::which` picks (the lists
///   are updated whenever a slab's state changes).
/// - Every linked pointer came from `KBox::into_raw` in `Cache::new_slab`
///   and stays live until `Cache::release` unlinks and frees it.
/// - Every page of a linked slab has `page->private == slab | TAG_SLAB`.
/// - `inuse` is the sum of the slabs' `state.inuse()`: live objects plus
///   the free ones parked in magazines.
/// - `magazines` counts the cache's live magazines (per-CPU and barn).
pub(super) struct Lists {
    pub(super) partial: SlabList,
    pub(super) full: SlabList,
    pub(super) empty: SlabList,
    pub(super) inuse: usize,
    pub(super) barn: Barn,
    pub(super) magazines: usize,
}

// SAFETY: the descriptors the lists point to are owned by the cache and
// only reached under its lock, whichever thread holds it.
unsafe impl Send for Lists {}

impl Lists {
    pub(super) fn list(&mut self, w: Which) -> Option<&mut SlabList> {
        match w {
            Which::Partial => Some(&mut self.partial),
            Which::Full => Some(&mut self.full),
            Which::Empty => Some(&mut self.empty),
            Which::None => None,
        }
    }

    /// Moves `s` to the list its state calls for.
    ///
    /// # Safety
    ///
    /// `s` is a live descriptor of this cache, linked on the list named by
    /// its `on` field (or on none with `Which::None`).
    pub(super) unsafe fn relist(&mut self, s: *mut Slab) {
        // SAFETY: live descriptor, under the lock (caller's contract).
        let (from, to) = unsafe { ((*s).on, (*s).which()) };
        if from == to {
            return;
        }
        if let Some(l) = self.list(from) {
            // SAFETY: `s` is linked on `from` (caller's contract).
            unsafe { l.unlink(s) };
        }
        if let Some(l) = self.list(to) {
            // SAFETY: `s` was just unlinked (or never linked).
            unsafe { l.push(s) };
        }
        // SAFETY: as above.
        unsafe { (*s).on = to };
    }

    pub(super) fn nr_slabs(&self) -> usize {
        self.partial.len + self.full.len + self.empty.len
    }

    /// Calls `f` on every slab. `f` must not relink slabs.
    pub(super) fn for_each(&self, mut f: impl FnMut(&Slab)) {
        for l in [&self.partial, &self.full, &self.empty] {
            let mut s = l.head;
            while !s.is_null() {
                // SAFETY: linked descriptors are live (type invariant) and
                // the caller holds the lock (it has `&self`).
                let slab = unsafe { &*s };
                f(slab);
                s = slab.next;
            }
        }
    }
}

