// SPDX-License-Identifier: GPL-2.0
//! Giving memory back: trimming empty slabs, draining the per-CPU
//! magazines and the barn, shrinking, destroying, and the invariant check.

use super::*;

impl Cache {
    /// Gives empty slabs beyond `keep_empty` back to the pool.
    pub(super) fn trim_locked(&self, l: &mut Lists) {
        while l.empty.len > self.keep_empty {
            let s = l.empty.head;
            // SAFETY: the head of the empty list is live and linked, and an
            // empty slab has no live object.
            unsafe { self.release(l, s) };
        }
    }

    /// Empties every CPU's array into the slabs. Process context (sleeps).
    pub(super) fn drain_cpus(&self) {
        if self.debug {
            return;
        }
        self.pcpu.for_each_cpu(|cc| {
            let mut l = self.lists.lock();
            self.flush_locked(&mut l, cc.main());
            self.flush_locked(&mut l, cc.spare());
        });
    }

    /// Empties the barn's full magazines into the slabs; they join its
    /// empty ones (or are freed when those are at their maximum).
    pub(super) fn drain_barn_locked(&self, l: &mut Lists) {
        while let Some(m) = l.barn.pop_full() {
            // SAFETY: the barn's magazines are live (invariant of `Barn`).
            self.flush_locked(l, unsafe { &*m });
            if let Err(m) = l.barn.push_empty(m) {
                // SAFETY: just emptied, and no longer referenced.
                unsafe { self.free_magazine(l, m) };
            }
        }
    }

    /// Drains the per-CPU magazines and the barn and gives every empty
    /// slab back to the pool. Returns the pages released. Process context
    /// (it sleeps, running on every CPU in turn).
    pub(crate) fn shrink(&self) -> usize {
        self.drain_cpus();
        self.release_empty()
    }

    /// Empties the barn and gives every empty slab back, but leaves the
    /// CPUs' magazines alone; never sleeps, so a shrinker's scan may call
    /// it. Returns the pages released.
    pub(crate) fn release_empty(&self) -> usize {
        let mut l = self.lists.lock();
        self.drain_barn_locked(&mut l);
        let mut pages = 0;
        while !l.empty.head.is_null() {
            let s = l.empty.head;
            // SAFETY: linked, hence live; empty, so no live object.
            pages += unsafe { self.release(&mut l, s) };
        }
        pages
    }

    /// Destroys the cache's contents: drains the magazines and, if no
    /// object is live, gives every slab back (quarantined objects too).
    /// EBUSY while objects are live; under `DEBUG_CHECKS` each leaked
    /// object is reported, as SLUB's `kmem_cache_destroy` does.
    ///
    /// The cache stays usable afterwards (it simply starts empty); owners
    /// drop it. Callers must not allocate from it concurrently.
    pub(crate) fn destroy(&self) -> Result {
        self.drain_cpus();
        let mut l = self.lists.lock();
        self.drain_barn_locked(&mut l);
        if l.inuse != 0 {
            if self.layout.flags().contains(Flags::DEBUG_CHECKS) {
                self.report_leaks(&l);
            } else {
                pr_err!(
                    "cache {}: destroy refused: {} objects still in use\n",
                    self.name(),
                    l.inuse
                );
            }
            return Err(EBUSY);
        }
        for list in [Which::Partial, Which::Full, Which::Empty] {
            while let Some(s) = l.list(list).map(|x| x.head).filter(|s| !s.is_null()) {
                // SAFETY: linked, hence live; `inuse` is 0, so no live object.
                unsafe { self.release(&mut l, s) };
            }
        }
        Ok(())
    }

    /// `pr_err`s up to 16 leaked objects (offsets only) and a total.
    pub(super) fn report_leaks(&self, l: &Lists) {
        let mut n = 0usize;
        l.for_each(|s| {
            // SAFETY: `s` is live and we hold the lock (`&Lists`); the bitmap
            // walk only reads.
            let mem = unsafe { self.mem(s) };
            if let Some(live) = s.state.live_objects(&self.layout, mem) {
                for off in live {
                    if n < 16 {
                        pr_err!(
                            "cache {}: leaked object at offset {} of slab {}\n",
                            self.name(),
                            off,
                            s.pfn
                        );
                    }
                    n += 1;
                }
            }
        });
        self.counters.leaks_reported.fetch_add(n as u64, Relaxed);
        pr_err!(
            "cache {}: destroy refused: {} objects still in use\n",
            self.name(),
            n
        );
    }

    /// Runs the core's `validate` on every slab and checks the counts.
    /// Returns the number of problems found (each reported).
    pub(crate) fn check(&self) -> usize {
        let l = self.lists.lock();
        let mut bad = 0;
        let mut inuse = 0;
        l.for_each(|s| {
            inuse += s.state.inuse();
            // SAFETY: live, under the lock; `validate` only reads.
            let mem = unsafe { self.mem(s) };
            if let Err(e) = s.state.validate(&self.layout, mem) {
                pr_err!(
                    "cache {}: check: slab {} fails validation: {:?}\n",
                    self.name(),
                    s.pfn,
                    e
                );
                bad += 1;
            }
            if s.on != s.which() {
                pr_err!(
                    "cache {}: check: slab {} on the wrong list\n",
                    self.name(),
                    s.pfn
                );
                bad += 1;
            }
        });
        if inuse != l.inuse {
            pr_err!(
                "cache {}: check: {} objects in use by the slabs, {} counted\n",
                self.name(),
                inuse,
                l.inuse
            );
            bad += 1;
        }
        bad
    }

}
