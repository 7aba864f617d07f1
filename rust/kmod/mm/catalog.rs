// SPDX-License-Identifier: GPL-2.0
//! The catalog: every live heap and arena of every open file, for the
//! debugfs views and the invariant check. It sits above both (neither
//! knows it).

use super::{
    arena::{ArenaObj, ARENAS_HEADER},
    heap::{HeapObj, HEAPS_HEADER},
};
use core::{
    fmt,
    sync::atomic::{AtomicU32, Ordering::Relaxed},
};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Every live heap and arena, of every open file.
#[pin_data]
pub(crate) struct Catalog {
    next_id: AtomicU32,
    #[pin]
    heaps: Mutex<KVec<Arc<HeapObj>>>,
    #[pin]
    arenas: Mutex<KVec<Arc<ArenaObj>>>,
}

impl Catalog {
    /// An empty catalog.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Catalog {
                next_id: AtomicU32::new(1),
                heaps <- new_mutex!(KVec::new(), "rkalloc_heaps"),
                arenas <- new_mutex!(KVec::new(), "rkalloc_arenas"),
            }),
            GFP_KERNEL,
        )
    }

    /// A fresh number for a heap or an arena.
    pub(crate) fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Lists `heap`.
    pub(crate) fn add_heap(&self, heap: &Arc<HeapObj>) -> Result {
        self.heaps.lock().push(heap.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets `heap`.
    pub(crate) fn remove_heap(&self, heap: &Arc<HeapObj>) {
        self.heaps.lock().retain(|h| !Arc::ptr_eq(h, heap));
    }

    /// Lists `arena`.
    pub(crate) fn add_arena(&self, arena: &Arc<ArenaObj>) -> Result {
        self.arenas.lock().push(arena.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Forgets `arena`.
    pub(crate) fn remove_arena(&self, arena: &Arc<ArenaObj>) {
        self.arenas.lock().retain(|a| !Arc::ptr_eq(a, arena));
    }

    /// Calls `f` on every live heap of every fd, in creation order.
    pub(crate) fn for_each_heap(&self, mut f: impl FnMut(&Arc<HeapObj>) -> Result) -> Result {
        self.heaps.lock().iter().try_for_each(|h| f(h))
    }

    /// Checks every heap; returns (heaps checked, heaps failing).
    pub(crate) fn check(&self) -> (u64, u64) {
        let heaps = self.heaps.lock();
        let bad = heaps.iter().filter(|h| h.check().is_err()).count();
        (heaps.len() as u64, bad as u64)
    }

    /// The `heaps` file: a header, then one line per heap.
    pub(crate) fn show_heaps(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", HEAPS_HEADER)?;
        for h in self.heaps.lock().iter() {
            writeln!(f, "{}", h.view())?;
        }
        Ok(())
    }

    /// The `arenas` file: a header, then one line per arena.
    pub(crate) fn show_arenas(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", ARENAS_HEADER)?;
        for a in self.arenas.lock().iter() {
            writeln!(f, "{}", a.view())?;
        }
        Ok(())
    }
}

