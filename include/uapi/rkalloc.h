/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * rkalloc: the /dev/rkalloc ioctl contract.
 *
 * This header is the one source of truth for the ABI. The kernel module and
 * rkctl both check their Rust definitions against it at build time (sizes and
 * offsets), and a C or Python program can use it alone.
 *
 * Conventions
 *  - Every argument struct starts with __u32 size, which the caller sets to
 *    sizeof(the struct) as it knows it. The module rejects a size it does
 *    not know with EINVAL, so structs can grow in later ABI versions.
 *  - All reserved and pad fields must be zero (EINVAL otherwise).
 *  - Userspace never sees a kernel address. Allocations are named by opaque
 *    per-fd handles (__u64). A handle is valid only on the fd that made it.
 *  - Everything an fd holds is freed when the fd is closed. While any fd is
 *    open, the module cannot be unloaded (rmmod fails with EBUSY).
 *  - A call that fails changes nothing.
 *
 * Errors common to every command
 *  ENOTTY  unknown command
 *  EFAULT  the argument (or a user array it points to) is not accessible
 *  EINVAL  bad size field, non-zero reserved field, or a bad parameter
 *          (order, size, policy); a handle from another fd; a handle that
 *          was already freed (double free); a handle of the wrong kind
 *  ENOENT  a handle this fd never had
 *  ENOMEM  the allocator, or the per-fd cap (module parameter fd_cap_kib),
 *          has no room
 *  E2BIG   a batch larger than RKALLOC_MAX_BATCH
 */
#ifndef _UAPI_RKALLOC_H
#define _UAPI_RKALLOC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define RKALLOC_ABI_VERSION	1
#define RKALLOC_IOC_MAGIC	0xB7
#define RKALLOC_MAX_BATCH	4096
#define RKALLOC_NAME_LEN	32

/* RKALLOC_IOC_INFO: module and pool description. */
struct rkalloc_info {
	__u32 size;
	__u32 abi_version;	/* out: RKALLOC_ABI_VERSION */
	__u32 page_size;	/* out: PAGE_SIZE */
	__u32 max_order;	/* out: highest order the pool serves */
	__u32 nr_cpus;		/* out: CPUs online */
	__u32 nr_caches;	/* out: slab caches, size classes included */
	__u32 nr_heaps;		/* out: heaps held by this fd */
	__u32 reserved;
	__u64 pool_pages;	/* out: pages the pool holds from the kernel */
	__u64 pool_free_pages;	/* out: of those, free */
	__u64 fd_bytes;		/* out: bytes this fd holds */
	__u64 fd_cap_bytes;	/* out: the per-fd cap */
};

/* The allocation kinds a handle can name. */
enum rkalloc_kind {
	RKALLOC_KIND_POOL = 1,	/* pool block of 2^order pages */
	RKALLOC_KIND_OBJECT = 2,	/* object of a slab cache */
	RKALLOC_KIND_MALLOC = 3,	/* rk_malloc() memory */
	RKALLOC_KIND_HEAP_BLOCK = 4,	/* block of a fit-policy heap */
	RKALLOC_KIND_ARENA = 5,	/* arena allocation */
	RKALLOC_KIND_CACHE = 16,	/* a slab cache (not memory) */
	RKALLOC_KIND_HEAP = 17,	/* a heap (not memory) */
};

/*
 * RKALLOC_IOC_POOL_ALLOC: in order (0..max_order), out handle.
 * EINVAL for an order above max_order.
 */
struct rkalloc_pool_alloc {
	__u32 size;
	__u32 order;
	__u64 handle;
};

/*
 * RKALLOC_IOC_FREE: free any memory handle (pool block, object, malloc,
 * heap block). Arena allocations are freed only by RKALLOC_IOC_ARENA_RESET
 * (EINVAL here). EINVAL for a double free, ENOENT for an unknown handle.
 */
struct rkalloc_free {
	__u32 size;
	__u32 reserved;
	__u64 handle;
};

/*
 * RKALLOC_IOC_FILL / RKALLOC_IOC_VERIFY: write, or check, a pattern derived
 * from (pattern, byte offset) over the whole allocation. VERIFY returns 0 and
 * sets mismatches to the number of differing bytes and first_mismatch to the
 * offset of the first (or ~0 when none). Together they let userspace prove
 * that live allocations never overlap and are never corrupted.
 */
struct rkalloc_pattern {
	__u32 size;
	__u32 pattern;
	__u64 handle;
	__u64 bytes;		/* out: bytes written or checked */
	__u64 mismatches;	/* out, VERIFY only */
	__u64 first_mismatch;	/* out, VERIFY only */
};

/*
 * RKALLOC_IOC_CHECK: run every allocator's invariant checker. Returns 0, or
 * EUCLEAN when a violation was found (details in the kernel log).
 */
struct rkalloc_check {
	__u32 size;
	__u32 reserved;
	__u64 violations;	/* out */
};

/*
 * RKALLOC_IOC_POOL_SHRINK: give wholly free pool blocks back to the kernel
 * (after draining the per-CPU lists). out: pages released.
 */
struct rkalloc_pool_shrink {
	__u32 size;
	__u32 reserved;
	__u64 released_pages;	/* out */
};

/* Per-order pool counters, as in /sys/kernel/debug/rkalloc/pool. */
#define RKALLOC_NR_ORDERS	11
struct rkalloc_pool_stats {
	__u32 size;
	__u32 flags;		/* in: RKALLOC_STATS_RESET resets after reading */
	__u64 total_pages;
	__u64 free_pages;
	__u64 pcp_pages;	/* cached on per-CPU lists */
	__u64 high_water_pages;
	__u64 chunks_grown;
	__u64 chunks_shrunk;
	__u64 nr_free[RKALLOC_NR_ORDERS];
	__u64 allocs[RKALLOC_NR_ORDERS];
	__u64 frees[RKALLOC_NR_ORDERS];
	__u64 splits[RKALLOC_NR_ORDERS];
	__u64 merges[RKALLOC_NR_ORDERS];
	__u64 failures[RKALLOC_NR_ORDERS];
};
#define RKALLOC_STATS_RESET	1

#define RKALLOC_IOC_INFO	_IOWR(RKALLOC_IOC_MAGIC, 0x00, struct rkalloc_info)
#define RKALLOC_IOC_POOL_ALLOC	_IOWR(RKALLOC_IOC_MAGIC, 0x01, struct rkalloc_pool_alloc)
#define RKALLOC_IOC_FREE	_IOW(RKALLOC_IOC_MAGIC, 0x02, struct rkalloc_free)
#define RKALLOC_IOC_FILL	_IOWR(RKALLOC_IOC_MAGIC, 0x03, struct rkalloc_pattern)
#define RKALLOC_IOC_VERIFY	_IOWR(RKALLOC_IOC_MAGIC, 0x04, struct rkalloc_pattern)
#define RKALLOC_IOC_CHECK	_IOWR(RKALLOC_IOC_MAGIC, 0x05, struct rkalloc_check)
#define RKALLOC_IOC_POOL_SHRINK	_IOWR(RKALLOC_IOC_MAGIC, 0x06, struct rkalloc_pool_shrink)
#define RKALLOC_IOC_POOL_STATS	_IOWR(RKALLOC_IOC_MAGIC, 0x07, struct rkalloc_pool_stats)

#endif /* _UAPI_RKALLOC_H */
