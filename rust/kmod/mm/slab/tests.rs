// SPDX-License-Identifier: GPL-2.0
//! KUnit suite `rkalloc_slab`: caches, magazines, debug checks, size
//! classes, the shrinker.

use super::*;

#[kunit_tests(rkalloc_slab)]
mod suite {
    use super::*;
    use crate::mm::pool::PoolConfig;

    fn pool(max_chunks: u32) -> Result<Arc<Pool>> {
        Pool::new(PoolConfig::private(1, max_chunks))
    }

    use crate::rkcore::rng::Rng;

    fn pattern(k: usize, j: usize) -> u8 {
        ((k.wrapping_mul(0x9e37_79b9) >> 7) as u8) ^ (j as u8).wrapping_mul(31) ^ (k as u8)
    }

    fn write_pattern(p: *mut u8, len: usize, k: usize) {
        for j in 0..len {
            // SAFETY: `p` is a live object of at least `len` bytes owned by
            // the test.
            unsafe { p.add(j).write(pattern(k, j)) };
        }
    }

    fn pattern_ok(p: *mut u8, len: usize, k: usize) -> bool {
        // SAFETY: as in `write_pattern`.
        (0..len).all(|j| unsafe { p.add(j).read() } == pattern(k, j))
    }

    fn used_pages(p: &Pool) -> u64 {
        let s = p.stats();
        s.total_pages - s.free_pages
    }

    /// Fill a cache across several slabs with a distinct pattern in every
    /// object, then free in random order, checking each object first: any
    /// overlap between objects, or with the bookkeeping, breaks a pattern.
    #[test]
    fn fill_and_free_in_random_order() -> Result {
        let p = pool(4)?;
        for (size, align, flags) in [
            (200, 8, Flags::empty()),
            (64, 64, Flags::empty()),
            (24, 8, Flags::ALL),
            (1000, 16, Flags::RED_ZONE | Flags::POISON),
        ] {
            let c = Cache::new(&p, b"test-fill", size, align, flags)?;
            let n = c.layout().objects_per_slab() * 5 + 3;
            let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
            for k in 0..n {
                let o = c.alloc()?.as_ptr();
                assert_eq!(o as usize % c.layout().align(), 0);
                write_pattern(o, size, k);
                objs.push((o, k), GFP_KERNEL)?;
            }
            assert!(c.stats().nr_slabs >= 5);
            let mut rng = Rng::new(0x1234_5678_9abc_def1u64 ^ size as u64);
            while !objs.is_empty() {
                let i = (rng.next_u64() % objs.len() as u64) as usize;
                let (o, k) = objs[i];
                assert!(pattern_ok(o, size, k));
                let _ = objs.remove(i);
                c.free(NonNull::new(o).ok_or(EINVAL)?)?;
            }
            assert_eq!(c.check(), 0);
            let st = c.stats();
            assert_eq!(st.violations, 0);
            assert!(st.empty_slabs <= c.keep_empty);
            c.shrink();
            assert_eq!(c.stats().nr_slabs, 0);
            assert_eq!(c.stats().active_objs, 0);
            c.destroy()?;
        }
        assert_eq!(used_pages(&p), 0);
        p.check()?;
        Ok(())
    }

    /// Bulk alloc and free; a bulk allocation that cannot complete is
    /// rolled back entirely.
    #[test]
    fn bulk_alloc_and_free() -> Result {
        let p = pool(1)?;
        let c = Cache::new(&p, b"test-bulk", 96, 8, Flags::empty())?;
        let mut objs = KVec::from_elem(ptr::null_mut::<u8>(), 1000, GFP_KERNEL)?;
        c.alloc_bulk(&mut objs)?;
        for (k, &o) in objs.iter().enumerate() {
            assert!(!o.is_null());
            write_pattern(o, 96, k);
        }
        for (k, &o) in objs.iter().enumerate() {
            assert!(pattern_ok(o, 96, k));
        }
        assert!(c.stats().active_objs >= 1000);
        c.free_bulk(&objs)?;
        c.shrink();
        assert_eq!(c.stats().active_objs, 0);
        // One 4 MiB chunk holds 512 objects of 8 KiB: 600 cannot succeed.
        let big = Cache::new(&p, b"test-bulk-8k", 8192, 8, Flags::empty())?;
        let mut many = KVec::from_elem(ptr::null_mut::<u8>(), 600, GFP_KERNEL)?;
        assert_eq!(big.alloc_bulk(&mut many).err(), Some(ENOMEM));
        big.shrink();
        c.shrink();
        assert_eq!(big.stats().active_objs, 0);
        assert_eq!(used_pages(&p), 0);
        // And a bulk that fits still works after the failure.
        let mut some = KVec::from_elem(ptr::null_mut::<u8>(), 100, GFP_KERNEL)?;
        big.alloc_bulk(&mut some)?;
        big.free_bulk(&some)?;
        big.destroy()?;
        c.destroy()?;
        Ok(())
    }

    /// Every size from 1 to 8192 maps to the smallest class that holds it,
    /// through `malloc`, and the memory is really that big.
    #[test]
    fn size_class_of_every_size() -> Result {
        let p = pool(4)?;
        let sc = SizeClasses::new(&p)?;
        for size in 1..=MAX_OBJECT_SIZE {
            let o = sc.malloc(size)?;
            let want = CLASSES.iter().copied().find(|&c| c >= size).ok_or(EINVAL)?;
            assert_eq!(sc.usable_size(o)?, want);
            let c = sc.owner(o)?.map_err(|_| EINVAL)?;
            assert_eq!(c.obj_size(), want);
            // SAFETY: `o` is `want >= size` bytes of our memory.
            unsafe { ptr::write_bytes(o.as_ptr(), 0x5a, size) };
            // SAFETY: as above.
            assert_eq!(unsafe { o.as_ptr().add(size - 1).read() }, 0x5a);
            sc.free(o)?;
        }
        for size in [8193, 12288, 16384, 100_000, PAGE_SIZE << LARGE_MAX_ORDER] {
            let o = sc.malloc(size)?;
            assert!(sc.usable_size(o)? >= size);
            assert_eq!(o.as_ptr() as usize % PAGE_SIZE, 0);
            // SAFETY: `o` is at least `size` bytes of our memory.
            unsafe { ptr::write_bytes(o.as_ptr(), 0xa5, size) };
            sc.free(o)?;
        }
        assert_eq!(sc.malloc(0).err(), Some(EINVAL));
        assert_eq!(
            sc.malloc((PAGE_SIZE << LARGE_MAX_ORDER) + 1).err(),
            Some(EINVAL)
        );
        assert_eq!(sc.registry().len(), NR_CLASSES);
        assert_eq!(sc.check(), 0);
        sc.shrink();
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// A red zone clobber and a double free are detected, counted and
    /// survived, and the object concerned is never handed out again.
    #[test]
    fn red_zone_and_double_free_are_caught() -> Result {
        let p = pool(4)?;
        for flags in [Flags::RED_ZONE, Flags::ALL] {
            let c = Cache::new(&p, b"test-redzone", 64, 8, flags)?;
            let o = c.alloc()?;
            // SAFETY: the right red zone follows the 64-byte object inside
            // its slot (`Flags::RED_ZONE`), so this writes slab memory;
            // lib/tests/slub_kunit.c's test_clobber_zone does the same.
            unsafe { o.as_ptr().add(64).write(0x12) };
            assert_eq!(c.free(o).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 1);
            assert_eq!(c.stats().quarantined_objs, 1);
            // Freeing it again is now a double free, also refused.
            assert_eq!(c.free(o).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 2);
            let n = c.layout().objects_per_slab() * 2;
            let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
            for _ in 0..n {
                let q = c.alloc()?;
                assert_ne!(q, o);
                objs.push(q, GFP_KERNEL)?;
            }
            for q in objs.drain_all() {
                c.free(q)?;
            }
            assert_eq!(c.stats().violations, 2);
            c.destroy()?;
        }
        for flags in [Flags::DEBUG_CHECKS, Flags::POISON | Flags::DEBUG_CHECKS] {
            let c = Cache::new(&p, b"test-double", 128, 8, flags)?;
            let a = c.alloc()?;
            let b = c.alloc()?;
            let d = c.alloc()?;
            c.free(a)?;
            c.free(b)?;
            // `a` is not the free list head: only the bitmap catches it.
            assert_eq!(c.free(a).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 1);
            // Invalid frees: inside an object, and memory of no slab.
            let inside = NonNull::new(d.as_ptr().wrapping_add(8)).ok_or(EINVAL)?;
            assert_eq!(c.free(inside).err(), Some(EINVAL));
            let foreign = [0u64; 4];
            let foreign = NonNull::new(foreign.as_ptr().cast_mut().cast::<u8>()).ok_or(EINVAL)?;
            assert_eq!(c.free(foreign).err(), Some(EINVAL));
            assert_eq!(c.stats().violations, 3);
            // Every object is still handed out at most once.
            let n = c.layout().objects_per_slab() + 5;
            let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
            for k in 0..n {
                let q = c.alloc()?;
                assert!(objs.iter().all(|&(x, _)| x != q));
                assert_ne!(q, d);
                write_pattern(q.as_ptr(), 128, k);
                objs.push((q, k), GFP_KERNEL)?;
            }
            for (q, k) in objs.drain_all() {
                assert!(pattern_ok(q.as_ptr(), 128, k));
                c.free(q)?;
            }
            c.free(d)?;
            assert_eq!(c.check(), 0);
            c.destroy()?;
        }
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// A write to a freed object (poison) and a scribbled free pointer are
    /// caught at allocation, counted, and the damaged object withdrawn.
    #[test]
    fn use_after_free_and_corrupt_free_pointer() -> Result {
        let p = pool(4)?;
        let c = Cache::new(&p, b"test-poison", 64, 8, Flags::POISON)?;
        let a = c.alloc()?;
        c.free(a)?;
        // SAFETY: `a` is freed but its slab is ours and alive: the write
        // lands in slab memory (that is what the test is about).
        unsafe { a.as_ptr().write(0) };
        let b = c.alloc()?;
        assert_ne!(a, b);
        assert_eq!(c.stats().violations, 1);
        c.free(b)?;
        c.destroy()?;

        let c = Cache::new(&p, b"test-freeptr", 64, 8, Flags::DEBUG_CHECKS)?;
        let a = c.alloc()?;
        let keep = c.alloc()?;
        c.free(a)?;
        // The free pointer lives inside the free object: scribble over it.
        // SAFETY: as above.
        unsafe { ptr::write_bytes(a.as_ptr(), 0xff, 64) };
        let b = c.alloc()?;
        assert_ne!(a, b);
        assert_ne!(keep, b);
        assert_eq!(c.stats().violations, 1);
        c.free(b)?;
        c.free(keep)?;
        c.destroy()?;
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Objects allocated on one CPU and freed on another go back correctly,
    /// through the other CPU's array and, on flush, to their slabs.
    #[test]
    fn free_on_another_cpu() -> Result {
        let p = pool(4)?;
        let first = (0..sys::nr_cpu_ids())
            .find(|&c| sys::cpu_online(c))
            .ok_or(EINVAL)?;
        let last = (0..sys::nr_cpu_ids())
            .rev()
            .find(|&c| sys::cpu_online(c))
            .ok_or(EINVAL)?;
        if first == last {
            pr_info!("free_on_another_cpu: one CPU online; both sides run on it\n");
        }
        for flags in [Flags::empty(), Flags::DEBUG_CHECKS] {
            let c = Cache::new(&p, b"test-xcpu", 48, 8, flags)?;
            let n = 700usize;
            // Addresses as integers: raw pointers may not cross threads.
            let mut objs = KVec::from_elem(0usize, n, GFP_KERNEL)?;
            let alloc_all = |objs: &mut KVec<usize>| -> i32 {
                for (k, o) in objs.iter_mut().enumerate() {
                    match c.alloc() {
                        Ok(p) => {
                            write_pattern(p.as_ptr(), 48, k);
                            *o = p.as_ptr() as usize;
                        }
                        Err(e) => return e.to_errno(),
                    }
                }
                0
            };
            let free_all = |objs: &KVec<usize>| -> i32 {
                for (k, &o) in objs.iter().enumerate() {
                    if !pattern_ok(o as *mut u8, 48, k) {
                        return -1;
                    }
                    let Some(p) = NonNull::new(o as *mut u8) else {
                        return -2;
                    };
                    if let Err(e) = c.free(p) {
                        return e.to_errno();
                    }
                }
                0
            };
            assert_eq!(sys::run_on_cpu(first, || alloc_all(&mut objs))?, 0);
            let before = c.stats().fast_frees;
            assert_eq!(sys::run_on_cpu(last, || free_all(&objs))?, 0);
            let st = c.stats();
            if flags == Flags::empty() {
                assert!(st.fast_frees > before);
                // More than two magazines' worth: some went to the barn.
                assert!(st.exchanges > 0);
            }
            assert_eq!(st.violations, 0);
            // The far CPU now reuses what was freed there.
            assert_eq!(sys::run_on_cpu(last, || alloc_all(&mut objs))?, 0);
            assert_eq!(sys::run_on_cpu(first, || free_all(&objs))?, 0);
            c.shrink();
            assert_eq!(c.stats().active_objs, 0);
            assert_eq!(c.check(), 0);
            c.destroy()?;
        }
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Destroy refuses with EBUSY while objects are live (and counts the
    /// leaks under DEBUG_CHECKS), then succeeds once they are freed.
    #[test]
    fn destroy_with_live_objects_refuses() -> Result {
        let p = pool(4)?;
        for flags in [Flags::empty(), Flags::DEBUG_CHECKS] {
            let c = Cache::new(&p, b"test-destroy", 256, 8, flags)?;
            let mut objs = KVec::new();
            for _ in 0..3 {
                objs.push(c.alloc()?, GFP_KERNEL)?;
            }
            assert_eq!(c.destroy().err(), Some(EBUSY));
            if flags == Flags::DEBUG_CHECKS {
                assert_eq!(c.stats().leaks_reported, 3);
            }
            // Still fully usable.
            let extra = c.alloc()?;
            c.free(extra)?;
            assert_eq!(c.destroy().err(), Some(EBUSY));
            for o in objs.drain_all() {
                c.free(o)?;
            }
            c.destroy()?;
            assert_eq!(c.stats().nr_slabs, 0);
        }
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Bad parameters give EINVAL and create nothing.
    #[test]
    fn bad_create_arguments() -> Result {
        let p = pool(4)?;
        let e = Some(EINVAL);
        assert_eq!(Cache::new(&p, b"x", 0, 8, Flags::empty()).err(), e);
        assert_eq!(
            Cache::new(&p, b"x", MAX_OBJECT_SIZE + 1, 8, Flags::empty()).err(),
            e
        );
        assert_eq!(Cache::new(&p, b"x", 64, 3, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"x", 64, 0, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"x", 64, 8192, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"", 64, 8, Flags::empty()).err(), e);
        assert_eq!(Cache::new(&p, b"has space", 64, 8, Flags::empty()).err(), e);
        assert_eq!(
            Cache::new(&p, &[b'a'; NAME_MAX + 1], 64, 8, Flags::empty()).err(),
            e
        );
        assert!(Cache::new(&p, &[b'a'; NAME_MAX], MAX_OBJECT_SIZE, 4096, Flags::ALL).is_ok());
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }

    /// Objects beyond what the magazines and the barn hold go back to their
    /// slabs, and empty slabs beyond a few go back to the pool at once;
    /// shrink returns the rest, magazines and barn included.
    #[test]
    fn empty_slabs_return_to_the_pool() -> Result {
        let p = pool(4)?;
        let c = Cache::new(&p, b"test-empty", 512, 8, Flags::empty())?;
        let per = c.layout().objects_per_slab();
        let n = per * 100;
        let mut objs = KVec::from_elem(ptr::null_mut::<u8>(), n, GFP_KERNEL)?;
        c.alloc_bulk(&mut objs)?;
        let st = c.stats();
        assert!(st.nr_slabs >= 100);
        assert_eq!(st.slabs_allocated as usize, st.nr_slabs);
        c.free_bulk(&objs)?;
        let st = c.stats();
        let cached = st.cpu_cached + st.barn_cached;
        // Every object in use now sits in a magazine, at most two per CPU
        // and a full barn; only the slabs those pin, plus a few empty ones,
        // are left.
        let most = (2 * sys::nr_cpu_ids() as usize + BARN_MAX) * st.magazine_size as usize;
        assert!(cached <= most);
        assert!(st.barn_cached > 0);
        assert_eq!(st.active_objs, cached);
        assert!(st.empty_slabs <= c.keep_empty);
        assert!(st.nr_slabs - st.empty_slabs <= cached);
        assert!(st.slabs_freed as usize + c.keep_empty + cached >= st.slabs_allocated as usize);
        assert!(st.slabs_freed > 0);
        // The shrinker's part alone: the barn empties, the CPUs keep theirs.
        c.release_empty();
        let st = c.stats();
        assert_eq!((st.barn_cached, st.empty_slabs), (0, 0));
        assert_eq!(st.active_objs, st.cpu_cached);
        let pages = c.shrink();
        assert!(pages > 0);
        let st = c.stats();
        assert_eq!(
            (st.nr_slabs, st.cpu_cached, st.barn_cached, st.active_objs),
            (0, 0, 0, 0)
        );
        assert_eq!(st.slabs_allocated, st.slabs_freed);
        assert_eq!(used_pages(&p), 0);
        Ok(())
    }
}
