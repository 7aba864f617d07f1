// SPDX-License-Identifier: GPL-2.0
//! KUnit suites `rkalloc_conform` and `rkalloc_fault`. `rkalloc_conform`: every allocator of the table passes the
//! conformance run (`conform.rs`) on private memory, gives every page back
//! when it is dropped, and refuses what is outside its range; and a broken
//! allocator is caught, so the suite can fail.

use super::*;
use kernel::prelude::*;

#[kunit_tests(rkalloc_conform)]
mod suite {
    use super::*;
    use crate::{
        mm::{
            pool::{Pool, PoolConfig},
            slab::SizeClasses,
        },
        sys::KmemCache,
    };
    use conform::{Params, Report};
    use core::ptr::NonNull;
    use kernel::{str::CString, sync::Arc};

    /// Private memory for the allocators: a pool of 4 to 16 MiB, size
    /// classes on it, and a SLUB peer under a name of its own.
    struct Private {
        pool: Arc<Pool>,
        classes: SizeClasses,
        peer64: KmemCache,
    }

    impl Private {
        fn new() -> Result<Self> {
            let pool = Pool::new(PoolConfig::private(1, 4))?;
            let classes = SizeClasses::new(&pool)?;
            let peer64 = KmemCache::new(c"rkalloc_kunit_64", 64, 8)?;
            Ok(Self { pool, classes, peer64 })
        }

        fn env(&self) -> Env<'_> {
            Env { pool: &self.pool, classes: &self.classes, peer64: &self.peer64 }
        }

        /// Pages of the private pool in use once caches gave back what they
        /// keep.
        fn used_pages(&self) -> Result<u64> {
            self.classes.shrink();
            self.pool.shrink();
            Ok(self.pool.check()?.allocated_pages)
        }
    }

    /// A run of 10,000 steps over sizes up to 16 KiB (the whole range is
    /// probed at its ends by the run itself); `rkctl stress` runs longer
    /// ones through `RKALLOC_IOC_CONFORM`.
    fn params(seed: u64) -> Params {
        Params { ops: 10_000, seed, lo: 0, hi: 0, max_live: 256 }
    }

    fn params_for(d: &Descriptor, seed: u64) -> Params {
        Params { hi: d.max_bytes.min(16 << 10), ..params(seed) }
    }

    /// Every allocator in the table passes the run, and rkalloc's give every
    /// page back.
    #[test]
    fn every_allocator_conforms() -> Result {
        let m = Private::new()?;
        let table = Registry::new()?;
        assert!(table.len() >= 12);
        for (id, d) in table.iter() {
            let before = m.used_pages()?;
            let r = conform::run(m.env(), d, &params_for(d, u64::from(id) + 1))?;
            if r.failed() {
                pr_err!("conform: {} failed: {:?}\n", d.name(), r);
            }
            assert!(!r.failed());
            assert!(r.allocs > 500);
            assert_eq!(r.allocs, r.frees);
            assert_eq!(m.used_pages()?, before);
        }
        Ok(())
    }

    /// Sizes outside an allocator's range are refused before anything is
    /// made, and a range that is not the allocator's is EINVAL.
    #[test]
    fn ranges_are_enforced() -> Result {
        let m = Private::new()?;
        let table = Registry::new()?;
        for (_, d) in table.iter() {
            assert!(d.min_bytes >= 1 && d.min_bytes <= d.max_bytes);
            assert!(!d.serves(0));
            assert!(!d.serves(d.max_bytes + 1));
            assert_eq!(d.make(m.env(), d.max_bytes + 1).err(), Some(EINVAL));
            let bad = Params { lo: d.max_bytes + 1, hi: d.max_bytes + 1, ..params(1) };
            assert_eq!(conform::run(m.env(), d, &bad).err(), Some(EINVAL));
        }
        // kmalloc's range ends where kmalloc would warn.
        let km = table.iter().find(|(_, d)| d.name.to_bytes() == b"kmalloc").map(|(_, d)| d).ok_or(EINVAL)?;
        assert_eq!(km.max_bytes, crate::sys::mem::kmalloc_max_size());
        Ok(())
    }

    /// An allocator that hands out overlapping blocks (every block 32 bytes
    /// after the previous one, whatever its size) is caught.
    #[test]
    fn overlapping_blocks_are_caught() -> Result {
        struct Overlapping {
            buf: NonNull<u8>,
            next: core::sync::atomic::AtomicUsize,
        }
        // SAFETY: the buffer is owned by the instance; the test is single
        // threaded.
        unsafe impl Send for Overlapping {}
        // SAFETY: as above.
        unsafe impl Sync for Overlapping {}
        impl Allocator for Overlapping {
            fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
                if size == 0 || size > 256 {
                    return None;
                }
                let off = self.next.fetch_add(32, core::sync::atomic::Ordering::Relaxed) % 4096;
                // Within the 8 KiB buffer: off < 4096, size <= 256.
                NonNull::new(self.buf.as_ptr().wrapping_add(off))
            }
            unsafe fn free(&self, _p: NonNull<u8>, _size: usize) {}
        }
        impl Drop for Overlapping {
            fn drop(&mut self) {
                // SAFETY: allocated in `make` with kmalloc and not used again.
                unsafe { crate::sys::mem::kfree(self.buf.as_ptr()) };
            }
        }
        let m = Private::new()?;
        let d = Descriptor {
            name: CString::try_from(c"overlapping")?,
            class: Class::Malloc,
            kernel: false,
            peer: None,
            min_bytes: 1,
            max_bytes: 256,
            frees_all: false,
            own_frag: false,
            checked: false,
            policy: None,
            granted: api::granted_exact,
            make: |_, _, _| {
                let buf = NonNull::new(crate::sys::mem::kmalloc(8192)).ok_or(ENOMEM)?;
                Ok(KBox::new(Overlapping { buf, next: Default::default() }, GFP_KERNEL)?)
            },
        };
        let r: Report = conform::run(m.env(), &d, &params(7))?;
        assert!(r.corrupt_blocks > 0);
        assert!(r.failed());
        Ok(())
    }
}

/// KUnit suite `rkalloc_fault`: the fail points (only on a kernel with
/// fault injection, the debug flavor; the suite does not exist elsewhere).
#[cfg(CONFIG_FAULT_INJECTION)]
#[kunit_tests(rkalloc_fault)]
mod fault {
    use super::*;
    use crate::mm::pool::{Pool, PoolConfig};

    /// Every fail point turns into ENOMEM for the caller and leaves
    /// nothing behind: the pool and every structure on it check clean and
    /// give every page back. Needs fault injection (the debug kernel).
    #[test]
    fn fail_points_give_enomem_and_leak_nothing() -> Result {
        use crate::{
            mm::{arena::ArenaObj, heap::HeapObj, slab::Cache},
            rkcore::{heap::{HeapFlags, Policy}, slab::Flags},
            sys::fault::Point,
        };
        // Starts empty, so that the first allocation must grow.
        let pool = Pool::new(PoolConfig::private(0, 2))?;
        let fails = |p: Point, f: &mut dyn FnMut() -> Result| -> Result {
            p.force(true);
            let r = f();
            p.force(false);
            assert_eq!(r.err(), Some(ENOMEM));
            Ok(())
        };
        fails(Point::PoolGrow, &mut || pool.alloc(0).map(|_| ()))?;
        assert_eq!(pool.stats().total_pages, 0);
        let b = pool.alloc(0)?;
        pool.free(b.pfn, b.order)?;
        // The CPU's list has what the first allocation refilled: empty it,
        // so the next order-0 allocation must refill, and fill the pool so
        // that it cannot grow around the failure either.
        pool.shrink();
        let big = pool.alloc(crate::rkcore::buddy::MAX_ORDER)?;
        fails(Point::PcpRefill, &mut || pool.alloc(0).map(|_| ()))?;
        pool.free(big.pfn, big.order)?;
        let cache = Cache::new(&pool, b"rk_fail", 64, 8, Flags::empty())?;
        fails(Point::SlabRefill, &mut || cache.alloc().map(|_| ()))?;
        let o = cache.alloc()?;
        cache.free(o)?;
        cache.destroy()?;
        drop(cache);
        let heap = HeapObj::new(&pool, 0, Policy::ALL[0], HeapFlags::NONE, 0, u64::MAX)?;
        // Larger than the first region: the heap must grow.
        fails(Point::HeapGrow, &mut || heap.alloc(512 << 10, u64::MAX).map(|_| ()))?;
        heap.check()?;
        drop(heap);
        let arena = ArenaObj::new(&pool, 0)?;
        fails(Point::ArenaGrow, &mut || arena.alloc(100, 0, u64::MAX).map(|_| ()))?;
        drop(arena);
        pool.shrink();
        let r = pool.check()?;
        assert_eq!(r.allocated_pages, 0);
        assert_eq!(pool.stats().total_pages, 0);
        Ok(())
    }
}
