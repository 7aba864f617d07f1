// SPDX-License-Identifier: GPL-2.0
//! `/sys/kernel/debug/rkalloc/map`: the pool's occupancy, one byte per page,
//! for `rkctl map` to draw.
//!
//! # Format (version 1)
//!
//! A 32-byte header, all integers little-endian:
//!
//! | offset | size | field                                                  |
//! |--------|------|--------------------------------------------------------|
//! | 0      | 8    | magic `"RKMAP\0\0\0"`                                  |
//! | 8      | 4    | version, 1                                             |
//! | 12     | 4    | header bytes, 32 (the page bytes start here)           |
//! | 16     | 4    | page count: chunk count * pages per chunk              |
//! | 20     | 4    | chunk count: the pool's chunk slots (`pool_max_mb`)    |
//! | 24     | 4    | pages per chunk, 1024 (4 MiB of 4 KiB pages)           |
//! | 28     | 4    | online pages: pages of online chunks (`total_pages`)   |
//!
//! then one byte per page, chunk slot after chunk slot:
//!
//! - `0xff`: the page's chunk slot is offline (not taken from the kernel);
//! - `0xfe`: free in the buddy;
//! - `0xfd`: cached on a per-CPU list (free for users, allocated for the
//!   buddy);
//! - otherwise a page of a block a user holds: the owner class in the high
//!   nibble (0 other, 1 pool user, 2 slab, 3 `rk_malloc` large, 4 heap
//!   region, 5 arena region: [`crate::pool::tag`]) and the block's order in
//!   the low nibble. Every page of a block carries its block's byte.
//!
//! Each `read` takes a fresh snapshot, chunk by chunk under the pool lock;
//! the header and the pages of one large read describe one moment per
//! chunk, not the whole pool at once.

use crate::{
    mm::pool::Pool,
    rkcore::buddy::{CHUNK_PAGES, MAX_ORDER},
    state::Shared,
};
use kernel::{
    debugfs::BinaryWriter,
    fs::file,
    prelude::*,
    sync::Arc,
    uaccess::UserSliceWriter,
};

/// The first 8 bytes of the file.
pub(crate) const MAGIC: [u8; 8] = *b"RKMAP\0\0\0";
/// The format version.
pub(crate) const VERSION: u32 = 1;
/// Bytes before the first page byte.
pub(crate) const HEADER_BYTES: usize = 32;

/// The whole file for `pool`: header and page bytes.
pub(crate) fn snapshot(pool: &Pool) -> Result<KVVec<u8>> {
    let chunks = pool.max_chunks();
    // `max_chunks <= MAX_CHUNKS_LIMIT`, so the page count fits in a u32.
    let pages = chunks.checked_mul(CHUNK_PAGES).ok_or(EINVAL)?;
    let len = HEADER_BYTES.checked_add(pages as usize).ok_or(EINVAL)?;
    let mut buf = KVVec::from_elem(0u8, len, GFP_KERNEL)?;
    let mut online = 0u32;
    for (c, out) in buf[HEADER_BYTES..].chunks_exact_mut(CHUNK_PAGES as usize).enumerate() {
        if pool.map_chunk_into(c as u32, out) {
            online += CHUNK_PAGES;
        }
    }
    let h = &mut buf[..HEADER_BYTES];
    h[0..8].copy_from_slice(&MAGIC);
    for (i, v) in [VERSION, HEADER_BYTES as u32, pages, chunks, 1 << MAX_ORDER, online].iter().enumerate() {
        h[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    Ok(buf)
}

/// The debugfs file's data: the module state whose pool it maps.
pub(crate) struct MapFile(pub(crate) Arc<Shared>);

impl BinaryWriter for MapFile {
    fn write_to_slice(&self, writer: &mut UserSliceWriter, offset: &mut file::Offset) -> Result<usize> {
        let buf = snapshot(&self.0.pool)?;
        writer.write_slice_file(&buf, offset)
    }
}

#[cfg(rkalloc_kunit)]
#[kunit_tests(rkalloc_map)]
mod tests {
    use super::*;
    use crate::mm::pool::{tag, PoolConfig, MAP_CACHED, MAP_FREE, MAP_OFFLINE};

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    /// A known layout: a heap region of order 5, a slab of order 4, one
    /// pool-user page (whose per-CPU refill caches 31 more), the rest free,
    /// and a second, offline chunk slot. Then frees change the bytes.
    #[test]
    fn bytes_of_a_known_layout() -> Result {
        let p = Pool::new(PoolConfig::private(1, 2))?;
        // On one CPU, so that the per-CPU refill is the one this test sees.
        let mut blocks = KVec::new();
        let rc = crate::sys::run_on_cpu(0, || {
            let r = (|| -> Result {
                blocks.push(p.alloc_tagged(5, tag::HEAP)?, GFP_KERNEL)?;
                blocks.push(p.alloc_tagged(4, tag::SLAB)?, GFP_KERNEL)?;
                blocks.push(p.alloc_tagged(0, tag::USER)?, GFP_KERNEL)?;
                Ok(())
            })();
            match r {
                Ok(()) => 0,
                Err(e) => e.to_errno(),
            }
        })?;
        assert_eq!(rc, 0);
        let (heap, slab, user) = (blocks[0], blocks[1], blocks[2]);
        let m = snapshot(&p)?;
        assert_eq!(m.len(), HEADER_BYTES + 2 * CHUNK_PAGES as usize);
        assert_eq!(&m[..8], &MAGIC);
        assert_eq!(u32_at(&m, 8), VERSION);
        assert_eq!(u32_at(&m, 12), HEADER_BYTES as u32);
        assert_eq!(u32_at(&m, 16), 2 * CHUNK_PAGES);
        assert_eq!(u32_at(&m, 20), 2);
        assert_eq!(u32_at(&m, 24), CHUNK_PAGES);
        assert_eq!(u32_at(&m, 28), CHUNK_PAGES);
        let pages = &m[HEADER_BYTES..];
        let at = |pfn: u32| pages[pfn as usize];
        for i in 0..32 {
            assert_eq!(at(heap.pfn + i), 0x45);
        }
        for i in 0..16 {
            assert_eq!(at(slab.pfn + i), 0x24);
        }
        assert_eq!(at(user.pfn), 0x10);
        let count = |b: u8| pages[..CHUNK_PAGES as usize].iter().filter(|x| **x == b).count();
        assert_eq!(count(MAP_CACHED), 31);
        assert_eq!(count(MAP_FREE), CHUNK_PAGES as usize - 32 - 16 - 32);
        assert!(pages[CHUNK_PAGES as usize..].iter().all(|x| *x == MAP_OFFLINE));

        // Freed: the region's pages are free again, the user's page cached.
        p.free(heap.pfn, heap.order)?;
        p.free(user.pfn, user.order)?;
        let m = snapshot(&p)?;
        let pages = &m[HEADER_BYTES..];
        for i in 0..32 {
            assert_eq!(pages[(heap.pfn + i) as usize], MAP_FREE);
        }
        assert_eq!(pages[user.pfn as usize], MAP_CACHED);
        assert_eq!(pages[slab.pfn as usize], 0x24);
        p.free(slab.pfn, slab.order)?;
        Ok(())
    }
}
