//! The state a fuzz run must leave behind: once every fd the fuzzer opened
//! is closed, what it made must be gone.
//!
//! Both snapshots are taken right after a POOL_SHRINK, which drains every
//! slab cache's per-CPU magazines and barn, gives every empty slab back to
//! the pool, drains the pool's per-CPU lists and gives every wholly free
//! chunk back to the kernel. After it, the module holds exactly what its
//! live allocations pin, so these must be back to their baseline:
//!
//! - `info` open_fds: every fd of the fuzzer is closed (its control fd is
//!   open in both snapshots);
//! - `pool` used_pages and total_pages: the same blocks are allocated, and
//!   the chunks left are exactly those holding them;
//! - `buddyinfo`: free blocks per order are a function of the allocated
//!   blocks once every free buddy is merged (the checker's invariant), so
//!   they come back too: a difference is a block lost or a merge missed;
//! - `pool` bad_frees must not grow: every free reaches the pool through
//!   a handle the fd checked, so the pool never sees a bad one (a stats
//!   reset may lower it);
//! - `slabinfo`: the same caches by name (the fuzzer's are destroyed with
//!   their fd), and for each, active_objs, num_objs, active_slabs and
//!   num_slabs (after the shrink, a cache holds the slabs its live objects
//!   pin and no other);
//! - `heaps` and `arenas`: the same rows, column for column (other fds'
//!   heaps and arenas cannot be touched through the fuzzer's fds, whose
//!   handles name only their own).
//!
//! Not compared: high water marks and the allocation, split, merge and
//! failure counters (they only grow, and the fuzzer may reset them),
//! chunks grown and shrunk, pcp_pages (0 after a shrink anyway),
//! fragmentation figures derived from the above, and the slabinfo
//! tunables.
//!
//! This holds when the fuzzer is the module's only user during the run.
use crate::top::parse::Snapshot;
use std::collections::BTreeMap;

/// The differences between `before` and `after` that must not be.
pub fn compare(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut v = Vec::new();
    let mut same = |what: &str, a: Option<u64>, b: Option<u64>| {
        if a != b {
            v.push(format!("{what}: {} before, {} after", show(a), show(b)));
        }
    };
    same("info open_fds", before.info.num("open_fds").ok(), after.info.num("open_fds").ok());
    for k in ["used_pages", "total_pages"] {
        same(&format!("pool {k}"), before.pool.num(k).ok(), after.pool.num(k).ok());
    }
    let orders = before.buddy.len().max(after.buddy.len());
    for o in 0..orders {
        same(&format!("buddyinfo order {o} free blocks"), before.buddy.get(o).copied(), after.buddy.get(o).copied());
    }
    match (before.pool.num("bad_frees"), after.pool.num("bad_frees")) {
        (Ok(a), Ok(b)) if b > a => v.push(format!("pool bad_frees grew from {a} to {b}")),
        (Ok(_), Ok(_)) => {}
        _ => v.push("pool bad_frees: not readable".into()),
    }
    // Caches by name; a name may repeat, so pair them in order.
    let group = |s: &Snapshot| {
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in s.slabs.iter().enumerate() {
            m.entry(c.name.clone()).or_default().push(i);
        }
        m
    };
    let (gb, ga) = (group(before), group(after));
    for (name, ib) in &gb {
        let ia = ga.get(name).map_or(&[][..], |v| v.as_slice());
        if ia.len() != ib.len() {
            v.push(format!("slabinfo {name}: {} caches before, {} after", ib.len(), ia.len()));
        }
        for (&b, &a) in ib.iter().zip(ia) {
            for k in ["active_objs", "num_objs", "active_slabs", "num_slabs"] {
                let (x, y) = (before.slabs[b].get(k), after.slabs[a].get(k));
                if x != y {
                    v.push(format!("slabinfo {name} {k}: {x} before, {y} after"));
                }
            }
        }
    }
    for (name, ia) in &ga {
        if !gb.contains_key(name) {
            v.push(format!("slabinfo {name}: {} caches left that were not there before", ia.len()));
        }
    }
    for (what, b, a) in [("heaps", &before.heaps, &after.heaps), ("arenas", &before.arenas, &after.arenas)] {
        match (b.by_id(), a.by_id()) {
            (Ok(rb), Ok(ra)) => {
                for (id, row) in &ra {
                    match rb.get(id) {
                        None => v.push(format!("{what}: id {id} left behind ({})", row.join(" "))),
                        Some(r) if r != row || b.columns != a.columns => {
                            v.push(format!("{what}: id {id} changed: `{}` before, `{}` after", r.join(" "), row.join(" ")))
                        }
                        Some(_) => {}
                    }
                }
                for id in rb.keys().filter(|id| !ra.contains_key(*id)) {
                    v.push(format!("{what}: id {id} of another user is gone"));
                }
            }
            _ => v.push(format!("{what}: no id column")),
        }
    }
    v
}

/// A figure, or "(missing)".
fn show(x: Option<u64>) -> String {
    x.map_or_else(|| "(missing)".into(), |x| x.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::parse::{slabinfo, Table};
    use std::path::Path;

    fn base() -> Snapshot {
        Snapshot::read(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/debugfs"))).unwrap()
    }

    #[test]
    fn identical_snapshots_pass() {
        assert_eq!(compare(&base(), &base()), Vec::<String>::new());
    }

    #[test]
    fn counters_that_only_grow_are_not_compared() {
        let b = base();
        let mut a = base();
        for k in ["high_water_pages", "chunks_grown", "chunks_shrunk", "pcp_pages", "external_frag_permille"] {
            a.pool.head.values.insert(k.into(), "999999".into());
        }
        a.pool.orders[0].insert("allocs".into(), 1 << 40);
        a.pool.head.values.insert("bad_frees".into(), "0".into());
        assert_eq!(compare(&b, &a), Vec::<String>::new());
    }

    #[test]
    fn what_must_come_back_is_caught() {
        let b = base();
        let mut a = base();
        a.pool.head.values.insert("used_pages".into(), "1518".into());
        a.buddy[0] += 1;
        a.pool.head.values.insert("bad_frees".into(), "4".into());
        a.info.values.insert("open_fds".into(), "2".into());
        let d = compare(&b, &a);
        assert_eq!(d.len(), 4, "{d:#?}");
        assert!(d.iter().any(|s| s.contains("pool used_pages: 1517 before, 1518 after")));
        assert!(d.iter().any(|s| s.contains("buddyinfo order 0")));
        assert!(d.iter().any(|s| s.contains("bad_frees grew from 3 to 4")));
        assert!(d.iter().any(|s| s.contains("open_fds")));
    }

    #[test]
    fn slab_and_heap_leftovers_are_caught() {
        let b = base();
        let mut a = base();
        // One object more in a size class, a fuzzer cache left, a heap
        // left, and a change to another user's arena.
        a.slabs.iter_mut().find(|c| c.name == "rkmalloc-64").unwrap().figures.insert("active_objs".into(), 71);
        a.slabs.extend(slabinfo("slabinfo - version: 2.1\n# name <active_objs>\nfuzz-99 1\n").unwrap());
        a.heaps = Table::parse(&format!(
            "# {}\n{}\n{}\n9 first-fit - 1 65536 0 65536 65536 0 0 0 0 64 0 1 1 0 1 1 0 0 0 0 ok\n",
            b.heaps.columns.join(" "),
            b.heaps.rows[0].join(" "),
            b.heaps.rows[1].join(" ")
        ))
        .unwrap();
        let mut r = a.arenas.rows[0].clone();
        let live = a.arenas.col("live").unwrap();
        r[live] = "13".into();
        a.arenas.rows[0] = r;
        let d = compare(&b, &a);
        assert!(d.iter().any(|s| s == "slabinfo rkmalloc-64 active_objs: 70 before, 71 after"), "{d:#?}");
        assert!(d.iter().any(|s| s.contains("slabinfo fuzz-99: 1 caches left")), "{d:#?}");
        assert!(d.iter().any(|s| s.starts_with("heaps: id 9 left behind")), "{d:#?}");
        assert!(d.iter().any(|s| s.starts_with("arenas: id 1 changed")), "{d:#?}");
        assert_eq!(d.len(), 4, "{d:#?}");
        // A cache gone that was there (another user's) is caught too.
        let mut a = base();
        a.slabs.retain(|c| c.name != "fuzz-17");
        assert_eq!(compare(&b, &a), vec!["slabinfo fuzz-17: 1 caches before, 0 after".to_string()]);
    }
}
