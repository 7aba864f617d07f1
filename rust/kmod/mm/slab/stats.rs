// SPDX-License-Identifier: GPL-2.0
//! A cache's figures: counters, the snapshot behind slabinfo and
//! slabstats, and their lines.

use super::*;

/// The slow-path and debug counters of a cache.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) slow_allocs: AtomicU64,
    pub(super) slow_frees: AtomicU64,
    /// Magazines filled from the slabs.
    pub(super) refills: AtomicU64,
    /// Magazines emptied into the slabs.
    pub(super) flushes: AtomicU64,
    /// Magazines traded with the barn.
    pub(super) exchanges: AtomicU64,
    pub(super) slabs_allocated: AtomicU64,
    pub(super) slabs_freed: AtomicU64,
    pub(super) violations: AtomicU64,
    pub(super) leaks_reported: AtomicU64,
}

/// A snapshot of a cache for slabinfo and slabstats.
pub(crate) struct CacheStats {
    pub(crate) obj_size: usize,
    pub(crate) stride: usize,
    pub(crate) align: usize,
    pub(crate) flags: u32,
    pub(crate) order: u32,
    pub(crate) objects_per_slab: usize,
    pub(crate) waste_per_slab: usize,
    /// Descriptor plus in-slab bitmap, per slab.
    pub(crate) metadata_per_slab: usize,
    /// Objects per magazine (0: no magazines, a debug cache).
    pub(crate) magazine_size: u32,
    pub(crate) magazines: usize,
    pub(crate) nr_slabs: usize,
    /// Slabs with at least one object in use.
    pub(crate) active_slabs: usize,
    pub(crate) empty_slabs: usize,
    /// Objects in use, those parked on per-CPU arrays included (as SLUB
    /// counts its per-CPU slabs and sheaves).
    pub(crate) active_objs: usize,
    /// Free objects in the CPUs' magazines.
    pub(crate) cpu_cached: usize,
    /// Free objects in the barn's full magazines.
    pub(crate) barn_cached: usize,
    pub(crate) quarantined_objs: usize,
    pub(crate) fast_allocs: u64,
    pub(crate) fast_frees: u64,
    pub(crate) slow_allocs: u64,
    pub(crate) slow_frees: u64,
    pub(crate) refills: u64,
    pub(crate) flushes: u64,
    pub(crate) exchanges: u64,
    pub(crate) slabs_allocated: u64,
    pub(crate) slabs_freed: u64,
    pub(crate) violations: u64,
    pub(crate) leaks_reported: u64,
}

impl CacheStats {
    /// Slab bytes per object not used by the object itself, in
    /// thousandths: `(slab bytes - objects * object size) / objects`, as
    /// SLUB's `/sys/kernel/slab/<cache>/` figures give it (padding, red
    /// zones, the debug bitmap and the slab's tail). The descriptor, which
    /// SLUB keeps in `struct page`, is `metadata_per_slab`.
    pub(crate) fn waste_per_object_milli(&self) -> u64 {
        let slab = PAGE_SIZE << self.order;
        let used = self.objects_per_slab * self.obj_size;
        let n = self.objects_per_slab.max(1) as u64;
        (slab.saturating_sub(used) as u64 * 1000) / n
    }
}

impl Cache {
    /// A snapshot of the cache's figures.
    pub(crate) fn stats(&self) -> CacheStats {
        let (mut fast_allocs, mut fast_frees, mut cpu_cached) = (0, 0, 0);
        for cpu in 0..sys::nr_cpu_ids() {
            // Only atomics are read, from magazines that live as long as
            // the cache; a racing update gives a stale but whole figure.
            if let Some(cc) = self.pcpu.get(cpu) {
                fast_allocs += cc.fast_allocs.load(Relaxed);
                fast_frees += cc.fast_frees.load(Relaxed);
                cpu_cached += cc.cached();
            }
        }
        let (
            nr_slabs,
            empty_slabs,
            active_objs,
            active_slabs,
            quarantined_objs,
            barn_cached,
            magazines,
        ) = {
            let l = self.lists.lock();
            let mut active = 0;
            let mut quarantined = 0;
            l.for_each(|s| {
                if s.state.inuse() != 0 {
                    active += 1;
                }
                quarantined += s.state.leaked();
            });
            (
                l.nr_slabs(),
                l.empty.len,
                l.inuse,
                active,
                quarantined,
                l.barn.objects(),
                l.magazines,
            )
        };
        let c = &self.counters;
        CacheStats {
            obj_size: self.layout.obj_size(),
            stride: self.layout.stride(),
            align: self.layout.align(),
            flags: self.layout.flags().bits(),
            order: self.layout.order(),
            objects_per_slab: self.layout.objects_per_slab(),
            waste_per_slab: self.layout.waste_per_slab(),
            metadata_per_slab: core::mem::size_of::<Slab>() + self.layout.metadata_bytes_per_slab(),
            magazine_size: if self.debug { 0 } else { self.mag_size },
            magazines,
            nr_slabs,
            active_slabs,
            empty_slabs,
            active_objs,
            cpu_cached,
            barn_cached,
            quarantined_objs,
            fast_allocs,
            fast_frees,
            slow_allocs: c.slow_allocs.load(Relaxed),
            slow_frees: c.slow_frees.load(Relaxed),
            refills: c.refills.load(Relaxed),
            flushes: c.flushes.load(Relaxed),
            exchanges: c.exchanges.load(Relaxed),
            slabs_allocated: c.slabs_allocated.load(Relaxed),
            slabs_freed: c.slabs_freed.load(Relaxed),
            violations: c.violations.load(Relaxed),
            leaks_reported: c.leaks_reported.load(Relaxed),
        }
    }

    /// The `/proc/slabinfo` 2.1 line of this cache (`cache_show` in
    /// mm/slab_common.c), `objsize` being the stride as SLUB's `s->size`.
    /// The tunables are SLAB's, which had the same layers: `limit` and
    /// `batchcount` are the magazine size (the per-CPU unit of transfer),
    /// `sharedfactor` the barn's magazines and `sharedavail` the objects in
    /// it.
    pub(crate) fn slabinfo_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.stats();
        let num_objs = st.nr_slabs * st.objects_per_slab;
        writeln!(
            f,
            "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
            self.name(),
            st.active_objs,
            num_objs,
            st.stride,
            st.objects_per_slab,
            1u32 << st.order,
            st.magazine_size,
            st.magazine_size,
            if st.magazine_size == 0 { 0 } else { BARN_MAX },
            st.active_slabs,
            st.nr_slabs,
            st.barn_cached
        )
    }

    /// One `slabstats` line: the cache's name, then `key=value` pairs.
    pub(crate) fn stats_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.stats();
        let w = s.waste_per_object_milli();
        writeln!(
            f,
            "{} object_size={} stride={} align={} flags={:#x} order={} objects_per_slab={} waste_per_slab={} \
             waste_per_object={}.{:03} metadata_per_slab={} magazine_size={} magazines={} slabs={} active_slabs={} \
             empty_slabs={} active_objs={} cpu_cached={} barn_cached={} quarantined={} fast_allocs={} fast_frees={} \
             slow_allocs={} slow_frees={} refills={} flushes={} exchanges={} slabs_allocated={} slabs_freed={} \
             violations={} leaks_reported={}",
            self.name(),
            s.obj_size,
            s.stride,
            s.align,
            s.flags,
            s.order,
            s.objects_per_slab,
            s.waste_per_slab,
            w / 1000,
            w % 1000,
            s.metadata_per_slab,
            s.magazine_size,
            s.magazines,
            s.nr_slabs,
            s.active_slabs,
            s.empty_slabs,
            s.active_objs,
            s.cpu_cached,
            s.barn_cached,
            s.quarantined_objs,
            s.fast_allocs,
            s.fast_frees,
            s.slow_allocs,
            s.slow_frees,
            s.refills,
            s.flushes,
            s.exchanges,
            s.slabs_allocated,
            s.slabs_freed,
            s.violations,
            s.leaks_reported
        )
    }
}
