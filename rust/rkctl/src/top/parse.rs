//! Parsers of the text files under `/sys/kernel/debug/rkalloc/` (formats in
//! rust/kmod/debugfs.rs, slab.rs, heap.rs and arena.rs): `info` and
//! `pool` (`key: value` lines, and per-order `orderN: key value ...`
//! lines), `buddyinfo` (`/proc/buddyinfo`'s line), `slabinfo`
//! (`/proc/slabinfo` 2.1) and `heaps` / `arenas` (a `# ` header naming the
//! columns, then one line per heap or arena).
//!
//! Every figure is read by its name, never by its position: a module that
//! adds, removes or reorders columns still parses, and a figure that is
//! gone is an error naming it.
use anyhow::{bail, Context, Result};
use std::{collections::BTreeMap, path::Path};

/// `key: value` lines (`info`, and the head of `pool`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyed {
    /// The values by key.
    pub values: BTreeMap<String, String>,
}

impl Keyed {
    /// Parses `key: value` lines; other lines are left to the caller
    /// (returned with their 1-based numbers).
    fn parse_lines(text: &str) -> (Self, Vec<(usize, &str)>) {
        let mut k = Keyed::default();
        let mut rest = Vec::new();
        for (i, l) in text.lines().enumerate() {
            match l.split_once(':') {
                Some((key, v)) if !key.contains(char::is_whitespace) && !key.starts_with("order") => {
                    k.values.insert(key.to_string(), v.trim().to_string());
                }
                _ if l.trim().is_empty() => {}
                _ => rest.push((i + 1, l)),
            }
        }
        (k, rest)
    }

    /// Parses a whole `key: value` file.
    pub fn parse(text: &str) -> Result<Self> {
        let (k, rest) = Self::parse_lines(text);
        if let Some((n, l)) = rest.first() {
            bail!("line {n}: `{l}` is not `key: value`");
        }
        Ok(k)
    }

    /// The number under `key`.
    pub fn num(&self, key: &str) -> Result<u64> {
        let v = self.values.get(key).with_context(|| format!("no `{key}`"))?;
        v.parse().with_context(|| format!("`{key}: {v}` is not a number"))
    }
}

/// The `pool` file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// The `key: value` lines.
    pub head: Keyed,
    /// Per order (index = order): its `key value` pairs.
    pub orders: Vec<BTreeMap<String, u64>>,
}

impl Pool {
    /// Parses a `key: value` file.
    pub fn parse(text: &str) -> Result<Self> {
        let (head, rest) = Keyed::parse_lines(text);
        let mut orders: Vec<BTreeMap<String, u64>> = Vec::new();
        for (n, l) in rest {
            let (o, kv) = l.split_once(':').with_context(|| format!("pool line {n}: `{l}`"))?;
            let o: usize =
                o.strip_prefix("order").and_then(|o| o.parse().ok()).with_context(|| format!("pool line {n}: `{o}` is not orderN"))?;
            if o != orders.len() {
                bail!("pool line {n}: order{o} out of sequence");
            }
            let w: Vec<&str> = kv.split_whitespace().collect();
            if !w.len().is_multiple_of(2) {
                bail!("pool line {n}: `{kv}` is not `key value` pairs");
            }
            let mut m = BTreeMap::new();
            for p in w.chunks(2) {
                m.insert(p[0].to_string(), p[1].parse().with_context(|| format!("pool line {n}: {} = `{}`", p[0], p[1]))?);
            }
            orders.push(m);
        }
        Ok(Pool { head, orders })
    }

    /// The number under `key`.
    pub fn num(&self, key: &str) -> Result<u64> {
        self.head.num(key).context("pool")
    }
}

/// `buddyinfo`: free blocks per order.
pub fn buddyinfo(text: &str) -> Result<Vec<u64>> {
    let l = text.lines().find(|l| !l.trim().is_empty()).context("buddyinfo is empty")?;
    let w: Vec<&str> = l.split_whitespace().collect();
    // "Node 0, zone rkalloc c0 c1 ..."
    let z = w.iter().position(|&t| t == "zone").context("buddyinfo: no `zone`")?;
    w.get(z + 2..)
        .context("buddyinfo: no counts")?
        .iter()
        .map(|t| t.parse().with_context(|| format!("buddyinfo: `{t}` is not a count")))
        .collect()
}

/// One cache of `slabinfo`, its figures by the header's names
/// (`active_objs`, `num_objs`, `objsize`, `objperslab`, `pagesperslab`,
/// `limit`, `batchcount`, `sharedfactor`, `active_slabs`, `num_slabs`,
/// `sharedavail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slab {
    /// The cache's name.
    pub name: String,
    /// Its figures by the header's names.
    pub figures: BTreeMap<String, u64>,
}

impl Slab {
    /// The figure `key` (0 when absent, as /proc/slabinfo readers do).
    pub fn get(&self, key: &str) -> u64 {
        self.figures.get(key).copied().unwrap_or(0)
    }

    /// Bytes of its slabs: num_slabs x pagesperslab x page size.
    pub fn cache_bytes(&self, page: u64) -> u64 {
        self.get("num_slabs") * self.get("pagesperslab") * page
    }
}

/// `slabinfo` (version 2.1): the `# name <a> <b> ... : tunables ... :
/// slabdata ...` header names each column of the lines below, token by
/// token, so the lines are read by those names.
pub fn slabinfo(text: &str) -> Result<Vec<Slab>> {
    let mut lines = text.lines().enumerate();
    let (_, v) = lines.next().context("slabinfo is empty")?;
    if v.trim() != "slabinfo - version: 2.1" {
        bail!("slabinfo: `{v}` is not version 2.1");
    }
    let (_, h) = lines.next().context("slabinfo: no header")?;
    let cols: Vec<&str> = h.strip_prefix('#').context("slabinfo: the header does not start with #")?.split_whitespace().collect();
    if cols.first() != Some(&"name") {
        bail!("slabinfo: the header's first column is not `name`");
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        if l.trim().is_empty() {
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.len() != cols.len() {
            bail!("slabinfo line {}: {} fields, the header has {}", i + 1, w.len(), cols.len());
        }
        let mut figures = BTreeMap::new();
        for (c, t) in cols.iter().zip(&w).skip(1) {
            if let Some(name) = c.strip_prefix('<').and_then(|c| c.strip_suffix('>')) {
                figures.insert(name.to_string(), t.parse().with_context(|| format!("slabinfo line {}: {name} = `{t}`", i + 1))?);
            } else if c != t {
                bail!("slabinfo line {}: `{t}` where the header has `{c}`", i + 1);
            }
        }
        out.push(Slab { name: w[0].to_string(), figures });
    }
    Ok(out)
}

/// A file whose first line is `# ` and the column names (`heaps`,
/// `arenas`), read by column name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, as many fields as columns each.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses a `# `-headed file.
    pub fn parse(text: &str) -> Result<Self> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, h) = lines.next().context("empty file: no `# ` header line")?;
        let columns: Vec<String> = h
            .strip_prefix('#')
            .context("the first line is not a `# ` header naming the columns")?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if columns.is_empty() {
            bail!("the header names no column");
        }
        let mut rows = Vec::new();
        for (i, l) in lines {
            let w: Vec<String> = l.split_whitespace().map(str::to_string).collect();
            if w.len() != columns.len() {
                bail!("line {}: {} fields, the header names {} columns", i + 1, w.len(), columns.len());
            }
            rows.push(w);
        }
        Ok(Table { columns, rows })
    }

    /// The index of column `name`.
    pub fn col(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).with_context(|| format!("no column `{name}` (columns: {})", self.columns.join(" ")))
    }

    /// Row `r`'s value in column `name`.
    pub fn get<'a>(&'a self, r: &'a [String], name: &str) -> Result<&'a str> {
        Ok(&r[self.col(name)?])
    }

    /// Row `r`'s number in column `name`.
    pub fn num(&self, r: &[String], name: &str) -> Result<u64> {
        let v = self.get(r, name)?;
        v.parse().with_context(|| format!("column {name}: `{v}` is not a number"))
    }

    /// The rows keyed by their `id` column.
    pub fn by_id(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let c = self.col("id")?;
        Ok(self.rows.iter().map(|r| (r[c].clone(), r.clone())).collect())
    }
}

/// Everything `top` and the fuzzer read, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `info`.
    pub info: Keyed,
    /// `pool`.
    pub pool: Pool,
    /// `buddyinfo`: free blocks per order.
    pub buddy: Vec<u64>,
    /// `slabinfo`.
    pub slabs: Vec<Slab>,
    /// `heaps`.
    pub heaps: Table,
    /// `arenas`.
    pub arenas: Table,
}

/// Reads a debugfs file, saying how to fix it when it cannot.
fn read(dir: &Path, name: &str) -> Result<String> {
    let p = dir.join(name);
    std::fs::read_to_string(&p).with_context(|| format!("cannot read {} (is debugfs mounted and rkalloc loaded?)", p.display()))
}

impl Snapshot {
    /// Reads `dir` (e.g. /sys/kernel/debug/rkalloc).
    pub fn read(dir: &Path) -> Result<Self> {
        let ctx = |f: &str| format!("{}/{f}", dir.display());
        Ok(Snapshot {
            info: Keyed::parse(&read(dir, "info")?).with_context(|| ctx("info"))?,
            pool: Pool::parse(&read(dir, "pool")?).with_context(|| ctx("pool"))?,
            buddy: buddyinfo(&read(dir, "buddyinfo")?).with_context(|| ctx("buddyinfo"))?,
            slabs: slabinfo(&read(dir, "slabinfo")?).with_context(|| ctx("slabinfo"))?,
            heaps: Table::parse(&read(dir, "heaps")?).with_context(|| ctx("heaps"))?,
            arenas: Table::parse(&read(dir, "arenas")?).with_context(|| ctx("arenas"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/debugfs");

    fn fixture() -> Snapshot {
        Snapshot::read(Path::new(FIX)).unwrap()
    }

    #[test]
    fn reads_the_captured_files() {
        let s = fixture();
        assert_eq!(s.info.num("abi_version").unwrap(), 2);
        assert_eq!(s.pool.num("total_pages").unwrap(), 16384);
        assert_eq!(s.pool.num("used_pages").unwrap(), s.pool.num("total_pages").unwrap() - s.pool.num("free_pages").unwrap());
        assert_eq!(s.pool.orders.len(), 11);
        assert_eq!(s.pool.orders[0]["pcp_allocs"], 5120);
        assert_eq!(s.pool.orders[10]["free"], 14);
        assert_eq!(s.buddy.len(), 11);
        // buddyinfo and the pool's per-order free counts are one fact.
        for (o, &n) in s.buddy.iter().enumerate() {
            assert_eq!(n, s.pool.orders[o]["free"], "order {o}");
        }
        let k = s.slabs.iter().find(|c| c.name == "rkmalloc-64").unwrap();
        assert_eq!(
            (k.get("active_objs"), k.get("num_objs"), k.get("objsize"), k.get("objperslab"), k.get("pagesperslab")),
            (70, 128, 64, 64, 1)
        );
        assert_eq!((k.get("limit"), k.get("active_slabs"), k.get("num_slabs"), k.get("sharedavail")), (32, 2, 2, 0));
        assert_eq!(s.slabs.len(), 14);
        let h = s.heaps.by_id().unwrap();
        let r = &h["3"];
        assert_eq!(s.heaps.get(r, "policy").unwrap(), "best-fit");
        assert_eq!(s.heaps.num(r, "external_permille").unwrap(), 187);
        assert_eq!(s.heaps.get(r, "state").unwrap(), "ok");
        let a = s.arenas.by_id().unwrap();
        assert_eq!(s.arenas.num(&a["1"], "live").unwrap(), 12);
    }

    #[test]
    fn reads_files_captured_in_the_guest() {
        // The v2 module's files, read during `rkctl stress -t 1` in the
        // QEMU guest (one heap, one arena live).
        let s = Snapshot::read(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/debugfs-guest"))).unwrap();
        assert_eq!((s.info.num("abi_version").unwrap(), s.info.num("nr_allocators").unwrap()), (2, 14));
        let (total, free) = (s.pool.num("total_pages").unwrap(), s.pool.num("free_pages").unwrap());
        assert_eq!(s.pool.num("used_pages").unwrap(), total - free);
        // buddyinfo counts the buddy's free blocks; free_pages adds the
        // per-CPU lists.
        let buddy: u64 = s.buddy.iter().enumerate().map(|(o, n)| n << o).sum();
        assert_eq!(buddy + s.pool.num("pcp_pages").unwrap(), free);
        // The 13 size classes and the stress thread's own cache.
        assert_eq!(s.slabs.iter().filter(|c| c.name.starts_with("rkmalloc-")).count(), 13);
        assert_eq!(s.slabs.len(), 14);
        assert!(s.slabs.iter().all(|c| c.get("num_objs") == c.get("num_slabs") * c.get("objperslab")));
        assert_eq!(s.heaps.rows.len(), 1);
        assert_eq!(s.heaps.get(&s.heaps.rows[0], "policy").unwrap(), "first-fit");
        assert_eq!(s.arenas.num(&s.arenas.rows[0], "live").unwrap(), 182);
    }

    #[test]
    fn columns_are_read_by_name_not_position() {
        let t = Table::parse("# id b a\n1 20 10\n").unwrap();
        assert_eq!(t.num(&t.rows[0], "a").unwrap(), 10);
        assert_eq!(t.num(&t.rows[0], "b").unwrap(), 20);
        let e = t.num(&t.rows[0], "c").unwrap_err().to_string();
        assert!(e.contains("no column `c`"), "{e}");
        // A slabinfo whose tunables and slabdata were swapped still reads.
        let s = slabinfo(
            "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : slabdata <active_slabs> <num_slabs> <sharedavail> : tunables <limit> <batchcount> <sharedfactor>\n\
             x 1 2 3 4 5 : slabdata 6 7 8 : tunables 9 10 11\n",
        )
        .unwrap();
        assert_eq!((s[0].get("num_slabs"), s[0].get("limit")), (7, 9));
    }

    #[test]
    fn refuses_malformed_files() {
        assert!(Table::parse("id a\n1 2\n").unwrap_err().to_string().contains("header"));
        assert!(Table::parse("# id a\n1 2 3\n").unwrap_err().to_string().contains("line 2: 3 fields"));
        assert!(slabinfo("slabinfo - version: 2.0\n").is_err());
        assert!(slabinfo("slabinfo - version: 2.1\n# name <a>\nx y\n").unwrap_err().to_string().contains("a = `y`"));
        assert!(Pool::parse("total_pages: 1\norder1: free 0\n").unwrap_err().to_string().contains("out of sequence"));
        assert!(Pool::parse("order0: free\n").unwrap_err().to_string().contains("pairs"));
        assert!(buddyinfo("Node 0, zone rkalloc 1 x\n").is_err());
        assert!(Keyed::parse("a: 1\nb c\n").is_err());
        assert!(Keyed::parse("a: x\n").unwrap().num("a").is_err());
    }
}
