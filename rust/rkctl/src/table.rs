//! The module's allocator table (`RKALLOC_IOC_ALLOCATORS`) and its fit
//! policies, as rkctl uses them.
//!
//! rkctl knows no allocator and no policy by id or by name: bench, replay,
//! stress, heap and errors take everything from this table, so an
//! allocator or a policy the module adds gets its bench rows, replay rows,
//! stress and conformance runs without a change here. What rkctl does with
//! an allocator follows from its class, flags and size range alone.
use crate::{error, uapi};
use serde::{Deserialize, Serialize};
use std::{ffi::c_char, fmt::Write as _};

/// What kind of allocator an entry is (`RKALLOC_CLASS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllocatorClass {
    /// Blocks of 2^order pages; sizes round up.
    Pages,
    /// A cache of one object size.
    Objects,
    /// Any size in its range, kmalloc-style.
    Malloc,
    /// Variable blocks in regions, found by a fit policy.
    Heap,
    /// Bump allocation, freed all at once.
    Arena,
    /// A class this rkctl does not know (a newer module): listed, run by
    /// conformance and replay, but given no bench rows.
    Unknown(u32),
}

impl AllocatorClass {
    /// The class of an `RKALLOC_CLASS_*` value.
    pub fn of(class: u32) -> Self {
        match class {
            uapi::RKALLOC_CLASS_PAGES => Self::Pages,
            uapi::RKALLOC_CLASS_OBJECTS => Self::Objects,
            uapi::RKALLOC_CLASS_MALLOC => Self::Malloc,
            uapi::RKALLOC_CLASS_HEAP => Self::Heap,
            uapi::RKALLOC_CLASS_ARENA => Self::Arena,
            n => Self::Unknown(n),
        }
    }

    /// The name rkctl shows.
    pub fn name(self) -> String {
        match self {
            Self::Pages => "pages".into(),
            Self::Objects => "objects".into(),
            Self::Malloc => "malloc".into(),
            Self::Heap => "heap".into(),
            Self::Arena => "arena".into(),
            Self::Unknown(n) => format!("class-{n}"),
        }
    }
}

/// A fit policy: its `HEAP_CREATE` id and its name (e.g. `best-fit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: u32,
    pub name: String,
}

/// One entry of the allocator table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocator {
    /// Its index in the table, the id BENCH, REPLAY and CONFORM take.
    pub id: u32,
    pub class: AllocatorClass,
    /// `RKALLOC_ALLOCATOR_*`.
    pub flags: u32,
    /// Smallest request it serves.
    pub min_bytes: u64,
    /// Largest request it serves.
    pub max_bytes: u64,
    pub name: String,
    /// The table name of the kernel allocator it is compared with.
    pub peer: Option<String>,
    /// Heaps: their policy.
    pub policy: Option<Policy>,
}

/// A NUL-terminated name field (all of it when it has no NUL, which
/// [`validate`] reports).
fn cstr(field: &[c_char]) -> String {
    let bytes: Vec<u8> = field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether a name field holds its terminating NUL.
fn has_nul(field: &[c_char]) -> bool {
    field.contains(&0)
}

impl Allocator {
    /// The entry as the kernel wrote it.
    pub fn from_uapi(e: &uapi::rkalloc_allocator) -> Self {
        let peer = cstr(&e.peer);
        Allocator {
            id: e.id,
            class: AllocatorClass::of(e.class),
            flags: e.flags,
            min_bytes: e.min_bytes,
            max_bytes: e.max_bytes,
            name: cstr(&e.name),
            peer: (!peer.is_empty()).then_some(peer),
            policy: (e.policy != uapi::RKALLOC_NO_POLICY).then(|| Policy { id: e.policy, name: cstr(&e.policy_name) }),
        }
    }

    /// The kernel's own allocator (a baseline).
    pub fn is_kernel(&self) -> bool {
        self.flags & uapi::RKALLOC_ALLOCATOR_KERNEL != 0
    }

    /// Frees only all at once (a reset): no per-object lifetimes.
    pub fn frees_all(&self) -> bool {
        self.flags & uapi::RKALLOC_ALLOCATOR_FREES_ALL != 0
    }

    /// Reports its own fragmentation (REPLAY's `RKALLOC_REPLAY_OWN_FRAG`).
    pub fn own_frag(&self) -> bool {
        self.flags & uapi::RKALLOC_ALLOCATOR_OWN_FRAG != 0
    }

    /// Serves a request of `bytes`.
    pub fn serves(&self, bytes: u64) -> bool {
        (self.min_bytes..=self.max_bytes).contains(&bytes)
    }
}

/// What is wrong with a table the module returned, against the header's
/// rules; empty when it is sound. `raw` is the table as written (to see
/// its name fields' NULs), `nr_policies` from `rkalloc_info`.
pub fn validate(raw: &[uapi::rkalloc_allocator], nr_policies: u32) -> Vec<String> {
    let mut bad = Vec::new();
    let t: Vec<Allocator> = raw.iter().map(Allocator::from_uapi).collect();
    for (i, (r, a)) in raw.iter().zip(&t).enumerate() {
        let who = format!("entry {i} ({})", a.name);
        if a.id as usize != i {
            bad.push(format!("{who}: id {} is not its index", a.id));
        }
        if !has_nul(&r.name) || !has_nul(&r.peer) || !has_nul(&r.policy_name) {
            bad.push(format!("{who}: a name field without its NUL"));
        }
        if a.name.is_empty() {
            bad.push(format!("{who}: empty name"));
        }
        if t.iter().filter(|b| b.name == a.name).count() > 1 {
            bad.push(format!("{who}: name used twice"));
        }
        if let AllocatorClass::Unknown(n) = a.class {
            bad.push(format!("{who}: class {n} is not in the header"));
        }
        let known = uapi::RKALLOC_ALLOCATOR_KERNEL
            | uapi::RKALLOC_ALLOCATOR_FREES_ALL
            | uapi::RKALLOC_ALLOCATOR_OWN_FRAG
            | uapi::RKALLOC_ALLOCATOR_CHECKED;
        if a.flags & !known != 0 {
            bad.push(format!("{who}: unknown flags {:#x}", a.flags & !known));
        }
        if a.min_bytes == 0 || a.min_bytes > a.max_bytes {
            bad.push(format!("{who}: size range {}..={} (0 is never a request)", a.min_bytes, a.max_bytes));
        }
        match &a.peer {
            Some(p) if p == &a.name => bad.push(format!("{who}: its own peer")),
            Some(p) if !t.iter().any(|b| &b.name == p) => bad.push(format!("{who}: peer {p} is not in the table")),
            Some(p) if !t.iter().any(|b| &b.name == p && b.is_kernel()) => {
                bad.push(format!("{who}: peer {p} is not a kernel allocator"))
            }
            _ => {}
        }
        match (&a.class, &a.policy) {
            (AllocatorClass::Heap, None) => bad.push(format!("{who}: a heap without a policy")),
            (AllocatorClass::Heap, Some(p)) if p.id >= nr_policies => {
                bad.push(format!("{who}: policy {} not below nr_policies {nr_policies}", p.id))
            }
            (AllocatorClass::Heap, Some(p)) if p.name.is_empty() => bad.push(format!("{who}: policy {} has no name", p.id)),
            (AllocatorClass::Heap, _) => {}
            (_, Some(p)) => bad.push(format!("{who}: policy {} on an allocator that is not a heap", p.id)),
            (_, None) if r.policy_name[0] != 0 => bad.push(format!("{who}: a policy name without a policy")),
            _ => {}
        }
    }
    let named = policies(&t);
    for id in 0..nr_policies {
        if !named.iter().any(|p| p.id == id) {
            bad.push(format!("policy {id} (below nr_policies {nr_policies}) has no heap in the table"));
        }
    }
    for p in &named {
        if named.iter().filter(|q| q.id == p.id).count() > 1 || named.iter().filter(|q| q.name == p.name).count() > 1 {
            bad.push(format!("policy {} ({}): two names for one id or two ids for one name", p.id, p.name));
        }
    }
    bad
}

/// The fit policies the table's heaps name, by id, each once.
pub fn policies(t: &[Allocator]) -> Vec<Policy> {
    let mut v: Vec<Policy> = t.iter().filter_map(|a| a.policy.clone()).collect();
    v.sort_by(|a, b| (a.id, &a.name).cmp(&(b.id, &b.name)));
    v.dedup();
    v
}

/// The short form of a policy name: without its `-fit` (`best-fit` ->
/// `best`).
pub fn short_policy(name: &str) -> &str {
    name.strip_suffix("-fit").unwrap_or(name)
}

/// A policy named by the user: a name of the table (`best-fit`), its short
/// form (`best`), or a number, which goes to the kernel as it is (so that
/// `create:9=EINVAL` can test the kernel's check). Names compare by their
/// short forms, so `best-fit` also finds a policy the module calls `best`.
pub fn parse_policy(word: &str, policies: &[Policy]) -> anyhow::Result<u32> {
    if let Some(p) = policies.iter().find(|p| short_policy(&p.name) == short_policy(word)) {
        return Ok(p.id);
    }
    if let Ok(n) = word.parse::<u32>() {
        return Ok(n);
    }
    let names: Vec<String> = policies
        .iter()
        .map(|p| if short_policy(&p.name) == p.name { p.name.clone() } else { format!("{} ({})", p.name, short_policy(&p.name)) })
        .collect();
    Err(error::usage(format!(
        "unknown policy {word:?}: the module has {}, or give a policy id",
        if names.is_empty() { "no policies".to_string() } else { names.join(", ") }
    )))
}

/// The entries named by `names` (table names), in the order given; every
/// entry when `names` is empty. An unknown name is a usage error that
/// lists the table's names.
pub fn select<'a>(t: &'a [Allocator], names: &[String]) -> anyhow::Result<Vec<&'a Allocator>> {
    if names.is_empty() {
        return Ok(t.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            t.iter().find(|a| &a.name == n).ok_or_else(|| error::usage(format!("unknown allocator {n:?} (the module has: {})", names_of(t))))
        })
        .collect()
}

/// The table's names, comma-separated.
pub fn names_of(t: &[Allocator]) -> String {
    t.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// A size as rkctl prints it: bytes, or KiB/MiB/GiB when exact.
pub fn human(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The table as text, like `/sys/kernel/debug/rkalloc/allocators`: a
/// header line, then one line per allocator.
pub fn render(t: &[Allocator]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:>3} {:<18} {:<8} {:>9} {:>9} {:<6} {:<8} {:<14} policy", "id", "name", "class", "min", "max", "frees", "owner", "peer");
    for a in t {
        let _ = writeln!(
            s,
            "{:>3} {:<18} {:<8} {:>9} {:>9} {:<6} {:<8} {:<14} {}",
            a.id,
            a.name,
            a.class.name(),
            human(a.min_bytes),
            human(a.max_bytes),
            if a.frees_all() { "all" } else { "each" },
            if a.is_kernel() { "kernel" } else { "rkalloc" },
            a.peer.as_deref().unwrap_or("-"),
            a.policy.as_ref().map_or("-".to_string(), |p| format!("{} {}", p.id, p.name)),
        );
    }
    s
}

/// A table like the one the module is expected to publish, for the tests
/// of everything that derives from the table.
#[cfg(test)]
pub mod synthetic {
    use super::*;

    /// An entry.
    pub fn entry(name: &str, class: AllocatorClass, flags: u32, range: (u64, u64), peer: &str, policy: Option<(u32, &str)>) -> Allocator {
        Allocator {
            id: 0,
            class,
            flags,
            min_bytes: range.0,
            max_bytes: range.1,
            name: name.into(),
            peer: (!peer.is_empty()).then(|| peer.into()),
            policy: policy.map(|(id, n)| Policy { id, name: n.into() }),
        }
    }

    /// Numbers the entries by their index.
    pub fn numbered(mut v: Vec<Allocator>) -> Vec<Allocator> {
        for (i, a) in v.iter_mut().enumerate() {
            a.id = i as u32;
        }
        v
    }

    /// rkalloc's allocators and the kernel's, four policies.
    pub fn table() -> Vec<Allocator> {
        use AllocatorClass::*;
        let k = uapi::RKALLOC_ALLOCATOR_KERNEL;
        let heap = uapi::RKALLOC_ALLOCATOR_OWN_FRAG | uapi::RKALLOC_ALLOCATOR_CHECKED;
        let mib = 1u64 << 20;
        numbered(vec![
            entry("rk_pool", Pages, uapi::RKALLOC_ALLOCATOR_CHECKED, (1, 4 * mib), "alloc_pages", None),
            entry("alloc_pages", Pages, k, (1, 4 * mib), "", None),
            entry("kmem_cache", Objects, k, (1, 8192), "", None),
            entry("kmalloc", Malloc, k, (1, 4 * mib), "", None),
            entry("vmalloc", Malloc, k, (1, 64 * mib), "kmalloc", None),
            entry("kvmalloc", Malloc, k, (1, 64 * mib), "kmalloc", None),
            entry("rk_slab", Objects, uapi::RKALLOC_ALLOCATOR_CHECKED, (1, 8192), "kmem_cache", None),
            entry("rk_malloc", Malloc, uapi::RKALLOC_ALLOCATOR_CHECKED, (1, 4 * mib), "kmalloc", None),
            entry("heap_first", Heap, heap, (1, mib), "kmalloc", Some((0, "first-fit"))),
            entry("heap_next", Heap, heap, (1, mib), "kmalloc", Some((1, "next-fit"))),
            entry("heap_best", Heap, heap, (1, mib), "kmalloc", Some((2, "best-fit"))),
            entry("heap_segregated", Heap, heap, (1, mib), "kmalloc", Some((3, "segregated-fit"))),
            entry("rk_arena", Arena, uapi::RKALLOC_ALLOCATOR_FREES_ALL, (1, mib), "kmalloc", None),
        ])
    }

    /// The table with a new page allocator and a fifth policy added, as a
    /// module might add them.
    pub fn extended() -> Vec<Allocator> {
        let mut t = table();
        t.push(entry("rk_pages2", AllocatorClass::Pages, 0, (4096, 32768), "alloc_pages", None));
        t.push(entry(
            "heap_worst",
            AllocatorClass::Heap,
            uapi::RKALLOC_ALLOCATOR_OWN_FRAG,
            (1, 1 << 20),
            "kmalloc",
            Some((4, "worst-fit")),
        ));
        numbered(t)
    }

    /// The kernel's view of `t`.
    pub fn raw(t: &[Allocator]) -> Vec<uapi::rkalloc_allocator> {
        let put = |d: &mut [c_char], s: &str| {
            for (d, b) in d.iter_mut().zip(s.bytes()) {
                *d = b as c_char;
            }
        };
        t.iter()
            .map(|a| {
                let mut e = uapi::rkalloc_allocator {
                    id: a.id,
                    class: match a.class {
                        AllocatorClass::Pages => uapi::RKALLOC_CLASS_PAGES,
                        AllocatorClass::Objects => uapi::RKALLOC_CLASS_OBJECTS,
                        AllocatorClass::Malloc => uapi::RKALLOC_CLASS_MALLOC,
                        AllocatorClass::Heap => uapi::RKALLOC_CLASS_HEAP,
                        AllocatorClass::Arena => uapi::RKALLOC_CLASS_ARENA,
                        AllocatorClass::Unknown(n) => n,
                    },
                    flags: a.flags,
                    policy: a.policy.as_ref().map_or(uapi::RKALLOC_NO_POLICY, |p| p.id),
                    min_bytes: a.min_bytes,
                    max_bytes: a.max_bytes,
                    ..Default::default()
                };
                put(&mut e.name, &a.name);
                put(&mut e.peer, a.peer.as_deref().unwrap_or(""));
                put(&mut e.policy_name, a.policy.as_ref().map_or("", |p| &p.name));
                e
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::synthetic::*;
    use super::*;

    #[test]
    fn entries_decode() {
        let t = table();
        let raw = raw(&t);
        let back: Vec<Allocator> = raw.iter().map(Allocator::from_uapi).collect();
        assert_eq!(back, t);
        let heap = &back[10];
        assert_eq!(heap.policy, Some(Policy { id: 2, name: "best-fit".into() }));
        assert!(heap.own_frag() && !heap.is_kernel() && !heap.frees_all());
        assert!(back[12].frees_all());
        assert_eq!(back[1].peer, None);
        assert_eq!(AllocatorClass::of(99), AllocatorClass::Unknown(99));
    }

    #[test]
    fn a_sound_table_validates() {
        assert_eq!(validate(&raw(&table()), 4), Vec::<String>::new());
        assert_eq!(validate(&raw(&extended()), 5), Vec::<String>::new());
    }

    #[test]
    fn broken_tables_are_named() {
        let has = |v: Vec<String>, what: &str| assert!(v.iter().any(|s| s.contains(what)), "{what} not in {v:?}");
        // Four policies, but the module says five.
        has(validate(&raw(&table()), 5), "policy 4 (below nr_policies 5) has no heap");
        has(validate(&raw(&table()), 3), "policy 3 not below nr_policies 3");
        let mut t = table();
        t[0].peer = Some("nonesuch".into());
        has(validate(&raw(&t), 4), "peer nonesuch is not in the table");
        let mut t = table();
        t[6].peer = Some("rk_pool".into());
        has(validate(&raw(&t), 4), "not a kernel allocator");
        let mut t = table();
        t[3].min_bytes = 0;
        has(validate(&raw(&t), 4), "size range 0..=");
        let mut t = table();
        t[2].id = 7;
        has(validate(&raw(&t), 4), "id 7 is not its index");
        let mut t = table();
        t[4].name = "kmalloc".into();
        has(validate(&raw(&t), 4), "name used twice");
        let mut r = raw(&table());
        r[0].name.fill(b'x' as c_char);
        has(validate(&r, 4), "without its NUL");
        let mut r = raw(&table());
        r[0].policy = 1;
        has(validate(&r, 4), "not a heap");
        let mut r = raw(&table());
        r[0].flags |= 0x100;
        has(validate(&r, 4), "unknown flags 0x100");
    }

    #[test]
    fn policies_come_from_the_heaps() {
        let p = policies(&extended());
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["first-fit", "next-fit", "best-fit", "segregated-fit", "worst-fit"]);
        assert_eq!(p[4].id, 4);
    }

    #[test]
    fn policy_names_parse() {
        let p = policies(&extended());
        assert_eq!(parse_policy("best-fit", &p).unwrap(), 2);
        assert_eq!(parse_policy("best", &p).unwrap(), 2);
        assert_eq!(parse_policy("segregated", &p).unwrap(), 3);
        // The fifth policy, added by the module, by both names.
        assert_eq!(parse_policy("worst-fit", &p).unwrap(), 4);
        assert_eq!(parse_policy("worst", &p).unwrap(), 4);
        // Raw ids pass through, even out of range (the kernel checks).
        assert_eq!(parse_policy("9", &p).unwrap(), 9);
        let e = parse_policy("fastest-fit", &p).unwrap_err();
        assert_eq!(error::classify(&e), error::Class::Usage);
        let msg = e.to_string();
        assert!(msg.contains("unknown policy \"fastest-fit\""), "{msg}");
        assert!(msg.contains("first-fit (first)") && msg.contains("worst-fit (worst)"), "{msg}");
        // A module that names its policies without "-fit".
        let bare = [Policy { id: 0, name: "first".into() }, Policy { id: 1, name: "tlsf".into() }];
        assert_eq!(parse_policy("first-fit", &bare).unwrap(), 0);
        assert_eq!(parse_policy("tlsf", &bare).unwrap(), 1);
        assert!(parse_policy("tlsf-fit", &bare).is_ok());
        assert!(parse_policy("fit", &bare).is_err());
        // Without the table's worst-fit, its name is unknown.
        assert!(parse_policy("worst", &policies(&table())).is_err());
    }

    #[test]
    fn selection_by_name() {
        let t = table();
        let s = select(&t, &["rk_slab".into(), "kmalloc".into()]).unwrap();
        assert_eq!(s.iter().map(|a| a.id).collect::<Vec<_>>(), [6, 3]);
        assert_eq!(select(&t, &[]).unwrap().len(), t.len());
        let e = select(&t, &["heap_worst".into()]).unwrap_err();
        assert_eq!(error::classify(&e), error::Class::Usage);
        assert!(e.to_string().contains("the module has: rk_pool, alloc_pages"), "{e}");
    }

    #[test]
    fn rendering() {
        let s = render(&table());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 14);
        assert!(lines[0].split_whitespace().eq(["id", "name", "class", "min", "max", "frees", "owner", "peer", "policy"]));
        assert!(lines[1].split_whitespace().eq(["0", "rk_pool", "pages", "1", "4MiB", "each", "rkalloc", "alloc_pages", "-"]));
        assert!(lines[11].split_whitespace().eq(["10", "heap_best", "heap", "1", "1MiB", "each", "rkalloc", "kmalloc", "2", "best-fit"]));
        assert!(lines[13].contains(" all "));
        assert_eq!(human(8192), "8KiB");
        assert_eq!(human(1000), "1000");
        assert_eq!(human(3 << 20), "3MiB");
    }
}
