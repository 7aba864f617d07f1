//! `rkctl map`: the pool's occupancy, one cell per page, from the binary
//! debugfs file `/sys/kernel/debug/rkalloc/map` (or a saved copy of it).
//!
//! The format (see rust/kmod/map.rs and README.md): a 32-byte little-endian
//! header (`"RKMAP\0\0\0"`, version 1, header bytes, page count, chunk
//! count, pages per chunk, online pages), then one byte per page: 0xff
//! offline, 0xfe free, 0xfd cached on a per-CPU list, else owner class << 4
//! | block order.
use anyhow::{bail, Context, Result};
use crate::canvas::{self, Picture};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use std::{collections::BTreeMap, path::Path};

/// Default path of the kernel's map.
pub const DEBUGFS_MAP: &str = "/sys/kernel/debug/rkalloc/map";
/// The map file's magic.
const MAGIC: &[u8; 8] = b"RKMAP\0\0\0";
/// The map format this rkctl reads.
const VERSION: u32 = 1;
/// Bytes of the map's header.
const HEADER_BYTES: usize = 32;
/// Page byte: chunk slot offline.
pub const OFFLINE: u8 = 0xff;
/// Page byte: free in the buddy.
pub const FREE: u8 = 0xfe;
/// Page byte: cached on a per-CPU list.
pub const CACHED: u8 = 0xfd;
/// Owner classes by the high nibble of an allocated page's byte.
pub const OWNERS: [&str; 6] = ["other", "pool", "slab", "malloc-large", "heap", "arena"];
/// Orders the pool has (0..=10).
const NR_ORDERS: usize = 11;

/// A decoded map.
#[derive(Debug)]
pub struct Map {
    pub chunks: u32,
    pub pages_per_chunk: u32,
    pub online_pages: u32,
    /// One byte per page, chunk slot after chunk slot.
    pub pages: Vec<u8>,
}

/// Decodes and validates the file's bytes.
pub fn decode(b: &[u8]) -> Result<Map> {
    if b.len() < HEADER_BYTES || &b[..8] != MAGIC {
        bail!("not an rkalloc map (no RKMAP header)");
    }
    let u = |i: usize| u32::from_le_bytes(b[8 + 4 * i..12 + 4 * i].try_into().unwrap());
    let (version, header, pages, chunks, per_chunk, online) = (u(0), u(1), u(2), u(3), u(4), u(5));
    if version != VERSION {
        bail!("map version {version}, this rkctl reads version {VERSION}");
    }
    if header as usize != HEADER_BYTES {
        bail!("map header of {header} bytes, expected {HEADER_BYTES}");
    }
    if per_chunk == 0 || chunks.checked_mul(per_chunk) != Some(pages) {
        bail!("map header inconsistent: {pages} pages != {chunks} chunks * {per_chunk}");
    }
    if b.len() - HEADER_BYTES != pages as usize {
        bail!("map has {} page bytes, header says {pages}", b.len() - HEADER_BYTES);
    }
    let m = Map { chunks, pages_per_chunk: per_chunk, online_pages: online, pages: b[HEADER_BYTES..].to_vec() };
    let counted = m.pages.iter().filter(|&&p| p != OFFLINE).count();
    if counted != online as usize {
        bail!("map header says {online} online pages, the page bytes {counted}");
    }
    Ok(m)
}

/// What a page byte means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Offline,
    Free,
    Cached,
    Used { owner: u8, order: u8 },
}

impl Cell {
    /// The meaning of page byte `b`.
    pub fn of(b: u8) -> Cell {
        match b {
            OFFLINE => Cell::Offline,
            FREE => Cell::Free,
            CACHED => Cell::Cached,
            b => Cell::Used { owner: b >> 4, order: b & 0xf },
        }
    }
}

/// Figures of a map.
#[derive(Serialize, Debug, PartialEq)]
pub struct Summary {
    pub chunks: u32,
    pub online_chunks: u32,
    pub online_pages: u64,
    pub free_pages: u64,
    pub cached_pages: u64,
    pub used_pages: u64,
    /// Used pages per owner class (by the names of `OWNERS`).
    pub used_by_owner: BTreeMap<String, u64>,
    /// Used pages per block order.
    pub used_by_order: Vec<u64>,
    /// Free blocks of the buddy per order (as buddyinfo): each run of free
    /// pages split into maximal aligned power-of-two blocks, which is what
    /// a fully merged buddy holds.
    pub free_blocks: Vec<u64>,
    /// Pages of the largest free block.
    pub largest_free_block_pages: u64,
}

/// Adds the aligned blocks covering free pages `[start, end)` of a chunk.
fn free_run(start: usize, end: usize, hist: &mut [u64; NR_ORDERS]) {
    let mut p = start;
    while p < end {
        let mut o = 0;
        while o + 1 < NR_ORDERS && p.is_multiple_of(2 << o) && p + (2 << o) <= end {
            o += 1;
        }
        hist[o] += 1;
        p += 1 << o;
    }
}

/// Computes the summary of `m`.
pub fn summarize(m: &Map) -> Summary {
    let per = m.pages_per_chunk as usize;
    let mut free_blocks = [0u64; NR_ORDERS];
    let (mut free, mut cached, mut used) = (0u64, 0u64, 0u64);
    let mut by_owner = [0u64; 16];
    let mut by_order = [0u64; 16];
    let mut online_chunks = 0;
    for chunk in m.pages.chunks(per) {
        if chunk.iter().any(|&b| b != OFFLINE) {
            online_chunks += 1;
        }
        let mut run = None;
        for (i, &b) in chunk.iter().enumerate() {
            match Cell::of(b) {
                Cell::Free => {
                    free += 1;
                    run.get_or_insert(i);
                    continue;
                }
                Cell::Cached => cached += 1,
                Cell::Used { owner, order } => {
                    used += 1;
                    by_owner[owner as usize] += 1;
                    by_order[order as usize] += 1;
                }
                Cell::Offline => {}
            }
            if let Some(s) = run.take() {
                free_run(s, i, &mut free_blocks);
            }
        }
        if let Some(s) = run.take() {
            free_run(s, chunk.len(), &mut free_blocks);
        }
    }
    let largest = (0..NR_ORDERS).rev().find(|&o| free_blocks[o] != 0).map_or(0, |o| 1u64 << o);
    Summary {
        chunks: m.chunks,
        online_chunks,
        online_pages: u64::from(m.online_pages),
        free_pages: free,
        cached_pages: cached,
        used_pages: used,
        used_by_owner: OWNERS.iter().enumerate().map(|(i, n)| (n.to_string(), by_owner[i])).collect(),
        used_by_order: by_order[..NR_ORDERS].to_vec(),
        free_blocks: free_blocks.to_vec(),
        largest_free_block_pages: largest,
    }
}

/// What the cells' colours show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Owner,
    Order,
}

/// Colours of used pages by owner class.
const OWNER_COLOURS: [RGBColor; 6] = [
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Colour of a used page by its block's order.
fn order_colour(order: u8) -> RGBColor {
    // Light to dark blue-violet as blocks grow.
    let t = f64::from(order.min(10)) / 10.0;
    RGBColor((200.0 - 170.0 * t) as u8, (220.0 - 200.0 * t) as u8, (120.0 + 100.0 * t) as u8)
}

/// Colour of a cell, pages coloured `by` owner or order.
fn colour(c: Cell, by: By) -> RGBColor {
    match c {
        Cell::Offline => RGBColor(225, 225, 225),
        Cell::Free => WHITE,
        Cell::Cached => RGBColor(255, 236, 140),
        Cell::Used { owner, order } => match by {
            By::Owner => OWNER_COLOURS.get(owner as usize).copied().unwrap_or(BLACK),
            By::Order => order_colour(order),
        },
    }
}

/// Pixels per page cell.
const CELL: i32 = 5;
/// Chunks side by side.
const CHUNKS_PER_ROW: usize = 8;

/// Draws `m` into `out` (an .svg or .png file): each chunk a square of
/// cells (a 4 MiB chunk: 32 x 32 pages), row-major; offline chunks as grey
/// squares.
pub fn draw(m: &Map, by: By, out: &Path) -> Result<()> {
    let per = m.pages_per_chunk as usize;
    let side = (per as f64).sqrt().ceil() as usize;
    let square = side as i32 * CELL;
    let cols = CHUNKS_PER_ROW.min(m.chunks.max(1) as usize);
    let rows = (m.chunks as usize).div_ceil(cols).max(1);
    let w = (cols as i32 * (square + GAP) + GAP).max(640);
    let h = rows as i32 * (square + GAP) + GAP + LEGEND_H + 30;
    canvas::render(out, (w as u32, h as u32), &MapPicture { m, by, per, side, square, cols, h })
}

/// Pixels between chunks.
const GAP: i32 = 12;
/// Pixels of the legend.
const LEGEND_H: i32 = 60;

/// The map as a picture, with its layout.
struct MapPicture<'a> {
    m: &'a Map,
    by: By,
    per: usize,
    side: usize,
    square: i32,
    cols: usize,
    h: i32,
}

impl Picture for MapPicture<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let MapPicture { m, by, per, side, square, cols, h } = *self;
        let gap = GAP;
        root.fill(&WHITE)?;
        let s = summarize(m);
        root.draw(&Text::new(
            format!(
                "rkalloc pool: {} online pages, {} used, {} free, {} per-CPU; largest free block {} pages (by {})",
                s.online_pages,
                s.used_pages,
                s.free_pages,
                s.cached_pages,
                s.largest_free_block_pages,
                if by == By::Owner { "owner" } else { "order" }
            ),
            (gap, 8),
            ("sans-serif", 14).into_font(),
        ))?;
        for (c, chunk) in m.pages.chunks(per).enumerate() {
            let x0 = gap + (c % cols) as i32 * (square + gap);
            let y0 = 30 + (c / cols) as i32 * (square + gap);
            if chunk.iter().all(|&b| b == OFFLINE) {
                root.draw(&Rectangle::new([(x0, y0), (x0 + square, y0 + square)], colour(Cell::Offline, by).filled()))?;
                continue;
            }
            root.draw(&Rectangle::new([(x0 - 1, y0 - 1), (x0 + square, y0 + square)], BLACK.stroke_width(1)))?;
            // One rectangle per run of equal cells in a row keeps the file small.
            for (r, row) in chunk.chunks(side).enumerate() {
                let mut i = 0;
                while i < row.len() {
                    let mut j = i + 1;
                    while j < row.len() && row[j] == row[i] {
                        j += 1;
                    }
                    let y = y0 + r as i32 * CELL;
                    let rect = [(x0 + i as i32 * CELL, y), (x0 + j as i32 * CELL, y + CELL)];
                    root.draw(&Rectangle::new(rect, colour(Cell::of(row[i]), by).filled()))?;
                    i = j;
                }
            }
        }
        // Legend.
        let mut items: Vec<(String, RGBColor)> =
            vec![("free".into(), colour(Cell::Free, by)), ("per-CPU".into(), colour(Cell::Cached, by)), ("offline".into(), colour(Cell::Offline, by))];
        match by {
            By::Owner => items.extend(OWNERS.iter().enumerate().map(|(i, n)| (n.to_string(), OWNER_COLOURS[i]))),
            By::Order => items.extend((0..NR_ORDERS as u8).map(|o| (format!("o{o}"), order_colour(o)))),
        }
        let ly = h - LEGEND_H;
        for (i, (name, col)) in items.iter().enumerate() {
            let x = gap + (i % 7) as i32 * 88;
            let y = ly + (i / 7) as i32 * 20;
            root.draw(&Rectangle::new([(x, y), (x + 12, y + 12)], col.filled()))?;
            root.draw(&Rectangle::new([(x, y), (x + 12, y + 12)], BLACK.stroke_width(1)))?;
            root.draw(&Text::new(name.clone(), (x + 16, y), ("sans-serif", 12).into_font()))?;
        }
        Ok(())
    }
}

/// Prints the summary as text.
pub fn print(s: &Summary) {
    println!(
        "pool map: {} of {} chunks online, {} pages: {} used, {} free, {} on per-CPU lists",
        s.online_chunks, s.chunks, s.online_pages, s.used_pages, s.free_pages, s.cached_pages
    );
    let owners: Vec<String> = OWNERS
        .iter()
        .filter_map(|k| s.used_by_owner.get(*k).filter(|n| **n != 0).map(|n| format!("{k} {n}")))
        .collect();
    println!("used pages by owner: {}", if owners.is_empty() { "none".into() } else { owners.join(", ") });
    println!("{:>5} {:>12} {:>12}", "order", "used pages", "free blocks");
    for o in 0..NR_ORDERS {
        println!("{:>5} {:>12} {:>12}", o, s.used_by_order[o], s.free_blocks[o]);
    }
    println!("largest free block: {} pages", s.largest_free_block_pages);
}

/// Reads a map file (debugfs or saved).
pub fn load(path: &Path) -> Result<(Vec<u8>, Map)> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let m = decode(&raw).with_context(|| format!("in {}", path.display()))?;
    Ok((raw, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(chunks: u32, per: u32, pages: &[u8]) -> Vec<u8> {
        let online = pages.iter().filter(|&&p| p != OFFLINE).count() as u32;
        let mut b = MAGIC.to_vec();
        for v in [VERSION, HEADER_BYTES as u32, chunks * per, chunks, per, online] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(pages);
        b
    }

    #[test]
    fn decodes_and_summarizes() {
        // Chunk 0 (16 pages): an order-2 slab, an order-0 pool page, one
        // cached page, then free pages 6..16: blocks 6-7 (o1), 8-15 (o3).
        let mut c0 = vec![0x22; 4];
        c0.push(0x10);
        c0.push(CACHED);
        c0.extend(std::iter::repeat_n(FREE, 10));
        let mut pages = c0.clone();
        pages.extend(std::iter::repeat_n(OFFLINE, 16));
        let m = decode(&file(2, 16, &pages)).unwrap();
        assert_eq!(m.chunks, 2);
        assert_eq!(Cell::of(0x22), Cell::Used { owner: 2, order: 2 });
        let s = summarize(&m);
        assert_eq!(s.online_chunks, 1);
        assert_eq!((s.used_pages, s.free_pages, s.cached_pages), (5, 10, 1));
        assert_eq!(s.used_by_owner["slab"], 4);
        assert_eq!(s.used_by_owner["pool"], 1);
        assert_eq!(s.used_by_owner["heap"], 0);
        assert_eq!(&s.free_blocks[..4], &[0, 1, 0, 1]);
        assert_eq!(s.largest_free_block_pages, 8);
        assert_eq!(s.used_by_order[2], 4);
    }

    #[test]
    fn free_runs_split_into_aligned_blocks() {
        let mut h = [0u64; NR_ORDERS];
        free_run(1, 1024, &mut h);
        // 1, 2-3, 4-7, ..., 512-1023: one block of each order 0..9.
        assert_eq!(&h[..10], &[1; 10]);
        let mut h = [0u64; NR_ORDERS];
        free_run(0, 1024, &mut h);
        assert_eq!(h[10], 1);
    }

    #[test]
    fn rejects_bad_files() {
        let ok = file(1, 4, &[FREE; 4]);
        assert!(decode(&ok).is_ok());
        assert!(decode(&ok[..ok.len() - 1]).is_err());
        let mut bad = ok.clone();
        bad[0] = b'X';
        assert!(decode(&bad).is_err());
        let mut bad = ok.clone();
        bad[8] = 2;
        assert!(decode(&bad).is_err());
        let mut bad = ok.clone();
        bad[28] = 3; // online pages disagree with the bytes
        assert!(decode(&bad).is_err());
        assert!(decode(b"RKMAP").is_err());
    }

    #[test]
    fn draws_an_svg() {
        let pages: Vec<u8> = (0..64u32).map(|i| if i < 8 { 0x13 } else if i < 40 { FREE } else { OFFLINE }).collect();
        let m = decode(&file(2, 32, &pages)).unwrap();
        let out = std::env::temp_dir().join(format!("rkctl-map-test-{}.svg", std::process::id()));
        draw(&m, By::Owner, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).ok();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("malloc-large"));
        assert!(svg.matches("<rect").count() > 4);
    }
}
