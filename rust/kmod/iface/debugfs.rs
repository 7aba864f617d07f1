// SPDX-License-Identifier: GPL-2.0
//! Views under `/sys/kernel/debug/rkalloc/`.
//!
//! Every file formats straight from the live counters when read, in the
//! format of its kernel counterpart where one exists: `buddyinfo` as
//! `/proc/buddyinfo`, `extfrag/*` as `/sys/kernel/debug/extfrag/*`. Two
//! files act: reading `check` runs the invariant checkers, and writing
//! `shrink` gives free pool memory back to the kernel.

use super::{map, uapi};
use crate::{
    alloc::Class,
    rkcore::{
        buddy::NR_ORDERS,
        frag::{extfrag_index, unusable_index, Milli},
    },
    state::Shared,
    sys::{self, fault::FailDir},
};
use core::fmt;
use kernel::{debugfs::Dir, prelude::*, sync::Arc, uaccess::UserSliceReader};

type View = Pin<KBox<kernel::debugfs::File<Arc<Shared>>>>;

/// The directories and their files; dropping this removes them.
pub(crate) struct Files {
    _files: KVec<View>,
    /// The binary occupancy map (format in [`map`]).
    _map: Pin<KBox<kernel::debugfs::File<map::MapFile>>>,
    /// `fail/`: before `_dir`, whose removal would take it along.
    _fail: FailDir,
    _extfrag: Dir,
    _dir: Dir,
}

impl Files {
    /// Creates `/sys/kernel/debug/rkalloc/` and its files.
    pub(crate) fn new(shared: &Arc<Shared>) -> Result<Self> {
        let dir = Dir::new(c"rkalloc");
        let extfrag = dir.subdir(c"extfrag");
        let mut files = KVec::new();
        // A macro, not a closure: debugfs wants each callback as its own
        // zero-sized function item, not a function pointer.
        macro_rules! add {
            ($d:expr, $name:expr, $show:expr) => {
                files.push(
                    KBox::pin_init($d.read_callback_file($name, shared.clone(), &$show), GFP_KERNEL)?,
                    GFP_KERNEL,
                )?
            };
        }
        add!(&dir, c"info", show_info);
        add!(&dir, c"pool", show_pool);
        add!(&dir, c"buddyinfo", show_buddyinfo);
        add!(&dir, c"check", show_check);
        add!(&dir, c"heaps", show_heaps);
        add!(&dir, c"arenas", show_arenas);
        add!(&dir, c"slabinfo", show_slabinfo);
        add!(&dir, c"slabstats", show_slabstats);
        add!(&dir, c"allocators", show_allocators);
        add!(&extfrag, c"extfrag_index", show_extfrag);
        add!(&extfrag, c"unusable_index", show_unusable);
        files.push(
            KBox::pin_init(dir.write_callback_file(c"shrink", shared.clone(), &write_shrink), GFP_KERNEL)?,
            GFP_KERNEL,
        )?;
        let map = KBox::pin_init(dir.read_binary_file(c"map", map::MapFile(shared.clone())), GFP_KERNEL)?;
        Ok(Self {
            _files: files,
            _map: map,
            _fail: FailDir::new()?,
            _extfrag: extfrag,
            _dir: dir,
        })
    }
}

fn show_info(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "abi_version: {}", uapi::RKALLOC_ABI_VERSION)?;
    writeln!(f, "page_size: {}", crate::mm::pool::PAGE_SIZE)?;
    writeln!(f, "max_order: {}", crate::rkcore::buddy::MAX_ORDER)?;
    writeln!(f, "cpus_online: {}", sys::num_online_cpus())?;
    writeln!(f, "pool_max_chunks: {}", s.pool.max_chunks())?;
    writeln!(f, "fd_cap_bytes: {}", s.fd_cap_bytes)?;
    writeln!(f, "nr_caches: {}", s.kmalloc.registry().len())?;
    writeln!(f, "nr_allocators: {}", s.allocators.len())?;
    writeln!(f, "nr_policies: {}", crate::alloc::rk_heap::nr_policies())?;
    writeln!(f, "open_fds: {}", s.open_fds.load(core::sync::atomic::Ordering::Relaxed))
}

fn show_pool(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let st = s.pool.stats();
    writeln!(f, "total_pages: {}", st.total_pages)?;
    writeln!(f, "free_pages: {}", st.free_pages)?;
    writeln!(f, "pcp_pages: {}", st.pcp_pages)?;
    writeln!(f, "used_pages: {}", st.total_pages - st.free_pages)?;
    writeln!(f, "high_water_pages: {}", st.high_water_pages)?;
    writeln!(f, "max_pages: {}", u64::from(s.pool.max_chunks()) << crate::rkcore::buddy::MAX_ORDER)?;
    writeln!(f, "chunks_grown: {}", st.chunks_grown)?;
    writeln!(f, "chunks_shrunk: {}", st.chunks_shrunk)?;
    writeln!(f, "grow_failures: {}", st.grow_failures)?;
    writeln!(f, "bad_frees: {}", st.bad_frees)?;
    let fr = s.pool.frag();
    writeln!(f, "largest_free_bytes: {}", fr.largest_free_bytes)?;
    writeln!(f, "external_frag_permille: {}", fr.external_permille())?;
    writeln!(f, "metadata_bytes: {}", fr.metadata_bytes)?;
    for o in 0..NR_ORDERS {
        let (pa, pf) = if o < st.pcp_allocs.len() {
            (st.pcp_allocs[o], st.pcp_frees[o])
        } else {
            (0, 0)
        };
        let (high, batch) = s.pool.pcp_limits(o);
        writeln!(
            f,
            "order{}: free {} allocs {} frees {} pcp_allocs {} pcp_frees {} pcp_high {} pcp_batch {} splits {} merges {} failures {}",
            o,
            st.nr_free[o],
            st.buddy.allocs[o],
            st.buddy.frees[o],
            pa,
            pf,
            high,
            batch,
            st.buddy.splits[o],
            st.buddy.merges[o],
            st.buddy.failures[o]
        )?;
    }
    Ok(())
}

/// `/proc/buddyinfo`'s line: `seq_printf("Node %d, zone %8s ")`, then
/// `"%6lu "` per order.
fn show_buddyinfo(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "Node 0, zone {:>8} ", "rkalloc")?;
    for n in s.pool.free_counts() {
        write!(f, "{:>6} ", n)?;
    }
    writeln!(f)
}

fn show_extfrag(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let free = s.pool.free_counts();
    write!(f, "Node 0, zone {:>8} ", "rkalloc")?;
    for o in 0..NR_ORDERS as u32 {
        write!(f, "{:>6} ", Milli(extfrag_index(&free, o)))?;
    }
    writeln!(f)
}

fn show_unusable(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let free = s.pool.free_counts();
    write!(f, "Node 0, zone {:>8} ", "rkalloc")?;
    for o in 0..NR_ORDERS as u32 {
        write!(f, "{} ", Milli(unusable_index(&free, o)))?;
    }
    writeln!(f)
}

fn show_check(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match s.pool.check() {
        Ok(r) => writeln!(
            f,
            "pool: ok ({} chunks, {} free blocks, {} free pages, {} allocated blocks, {} allocated pages)",
            r.online_chunks, r.free_blocks.iter().sum::<u32>(), r.free_pages, r.allocated_blocks, r.allocated_pages
        ),
        Err(_) => writeln!(f, "pool: FAILED (details in the kernel log)"),
    }?;
    match s.catalog.check() {
        (n, 0) => writeln!(f, "heaps: ok ({} heaps)", n),
        (n, bad) => writeln!(f, "heaps: FAILED ({} of {} heaps, details in the kernel log)", bad, n),
    }?;
    match s.kmalloc.check() {
        0 => writeln!(f, "slabs: ok ({} caches)", s.kmalloc.registry().len()),
        bad => writeln!(f, "slabs: FAILED ({} problems, details in the kernel log)", bad),
    }
}

/// `/proc/slabinfo` version 2.1 (`slab_show` in mm/slab_common.c): the
/// header, then one line per cache, size classes included.
fn show_slabinfo(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("slabinfo - version: 2.1\n")?;
    f.write_str("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>")?;
    f.write_str(" : tunables <limit> <batchcount> <sharedfactor>")?;
    f.write_str(" : slabdata <active_slabs> <num_slabs> <sharedavail>\n")?;
    s.kmalloc.registry().for_each(|c| c.slabinfo_line(f))
}

/// One line per cache: its name, then `key=value` counters (fast and slow
/// paths, refills, flushes, slabs, debug violations, layout and waste).
fn show_slabstats(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    s.kmalloc.registry().for_each(|c| c.stats_line(f))
}

/// The allocator table: a header naming the columns, then one line per
/// allocator (what `RKALLOC_IOC_ALLOCATORS` returns).
fn show_allocators(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "# id name class origin min_bytes max_bytes frees peer policy")?;
    for (id, d) in s.allocators.iter() {
        let class = match d.class {
            Class::Pages => "pages",
            Class::Objects => "objects",
            Class::Malloc => "malloc",
            Class::Heap => "heap",
            Class::Arena => "arena",
        };
        let dash = c"-";
        writeln!(
            f,
            "{} {} {} {} {} {} {} {} {}",
            id,
            d.name.to_str().unwrap_or("?"),
            class,
            if d.kernel { "kernel" } else { "rkalloc" },
            d.min_bytes,
            d.max_bytes,
            if d.frees_all { "all-at-once" } else { "one-by-one" },
            d.peer.unwrap_or(dash).to_str().unwrap_or("?"),
            d.policy.as_ref().map_or("-", |(_, n)| n.to_str().unwrap_or("?")),
        )?;
    }
    Ok(())
}

/// One line per live heap of any fd: policy, sizes, fragmentation and
/// operation counts (columns named by the first line).
fn show_heaps(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    s.catalog.show_heaps(f)
}

/// One line per fd's arena: sizes, what resets gave back.
fn show_arenas(s: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    s.catalog.show_arenas(f)
}

fn write_shrink(s: &Arc<Shared>, _r: &mut UserSliceReader) -> Result {
    // Slab caches first: their empty slabs and per-CPU objects pin pool
    // pages.
    let slab_pages = s.kmalloc.shrink();
    pr_debug!("shrink: slab caches gave back {} pages\n", slab_pages);
    let pages = s.pool.shrink();
    pr_info!("shrink: gave {} pages back to the kernel\n", pages);
    Ok(())
}
