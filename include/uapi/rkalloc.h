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

/*
 * Slab caches.
 * RKALLOC_IOC_CACHE_CREATE: obj_size 1..8192, align a power of two up to
 * 4096 (0 means 8), flags RKALLOC_CACHE_*; out handle. EINVAL otherwise.
 * RKALLOC_IOC_CACHE_DESTROY: EBUSY while objects of the cache are live.
 */
#define RKALLOC_CACHE_RED_ZONE		0x1	/* red zones around objects */
#define RKALLOC_CACHE_POISON		0x2	/* poison freed objects */
#define RKALLOC_CACHE_DEBUG_CHECKS	0x4	/* double/invalid free checks */
struct rkalloc_cache_create {
	__u32 size;
	__u32 obj_size;
	__u32 align;
	__u32 flags;
	char name[RKALLOC_NAME_LEN];	/* NUL-terminated */
	__u64 handle;		/* out */
};

/* RKALLOC_IOC_CACHE_DESTROY, RKALLOC_IOC_HEAP_DESTROY, RKALLOC_IOC_HEAP_RESET */
struct rkalloc_handle_op {
	__u32 size;
	__u32 reserved;
	__u64 handle;
};

/*
 * RKALLOC_IOC_OBJ_ALLOC: count (1..RKALLOC_MAX_BATCH) objects from the cache
 * named by cache; their handles are written to the user array handles.
 * All or nothing: on failure nothing stays allocated.
 * RKALLOC_IOC_OBJ_FREE: frees the count handles of the user array; every
 * handle is checked first, so a bad one (EINVAL/ENOENT) frees nothing.
 * E2BIG for count > RKALLOC_MAX_BATCH, EINVAL for count 0.
 */
struct rkalloc_batch {
	__u32 size;
	__u32 count;
	__u64 cache;		/* OBJ_ALLOC only */
	__u64 handles;		/* user pointer to __u64[count] */
};

/*
 * RKALLOC_IOC_MALLOC: rk_malloc(bytes), bytes 1..RKALLOC_MAX_MALLOC; sizes
 * above 8192 go straight to the pool. Freed with RKALLOC_IOC_FREE.
 */
#define RKALLOC_MAX_MALLOC	(4u << 20)
struct rkalloc_malloc {
	__u32 size;
	__u32 reserved;
	__u64 bytes;
	__u64 handle;		/* out */
};

/*
 * Heaps: variable-size blocks with boundary tags, searched by a policy.
 * RKALLOC_IOC_HEAP_CREATE: policy RKALLOC_POLICY_*, flags RKALLOC_HEAP_*,
 * initial_bytes rounded up to pages (0: one 64 KiB region); out handle.
 * RKALLOC_IOC_HEAP_ALLOC: bytes 1..RKALLOC_MAX_HEAP_ALLOC from heap.
 * RKALLOC_IOC_HEAP_RESET frees every block of the heap; HEAP_DESTROY frees
 * the heap and its blocks. Blocks are freed with RKALLOC_IOC_FREE.
 */
#define RKALLOC_POLICY_FIRST_FIT	0
#define RKALLOC_POLICY_NEXT_FIT		1
#define RKALLOC_POLICY_BEST_FIT		2
#define RKALLOC_POLICY_SEGREGATED_FIT	3
#define RKALLOC_HEAP_DEBUG		0x1	/* check values in boundary tags */
#define RKALLOC_MAX_HEAP_ALLOC		(1u << 20)
struct rkalloc_heap_create {
	__u32 size;
	__u32 policy;
	__u32 flags;
	__u32 reserved;
	__u64 initial_bytes;
	__u64 handle;		/* out */
};

struct rkalloc_heap_alloc {
	__u32 size;
	__u32 reserved;
	__u64 heap;
	__u64 bytes;
	__u64 handle;		/* out */
};

/*
 * The fd's arena: RKALLOC_IOC_ARENA_ALLOC bumps (bytes 1..RKALLOC_MAX_HEAP_ALLOC,
 * align a power of two up to 4096, 0 means 8); RKALLOC_IOC_ARENA_RESET frees
 * every arena allocation of the fd at once and says what it gave back.
 */
struct rkalloc_arena_alloc {
	__u32 size;
	__u32 align;
	__u64 bytes;
	__u64 handle;		/* out */
};

struct rkalloc_arena_reset {
	__u32 size;
	__u32 reserved;
	__u64 bytes_reclaimed;		/* out */
	__u64 allocations_reclaimed;	/* out */
};

/*
 * RKALLOC_IOC_BENCH: time alloc+free pairs of one allocator in the kernel.
 * Each of `samples` samples times `ops` alloc+free pairs (with warm-up
 * first); results are per pair, in picoseconds, from ktime (wall clock, or
 * guest instructions under QEMU -icount shift=0). allocator is an
 * RKALLOC_ALLOC_* value, pattern an RKALLOC_BENCH_* value, bytes the
 * allocation size (orders for page allocators: the smallest holding it).
 * batch: objects held at once for BATCH, BATCH_RANDOM, RANDOM_LIFE and
 * CROSS_CPU (1..RKALLOC_MAX_BATCH). EINVAL for a bad allocator, pattern or
 * size, or (CROSS_CPU) when only one CPU is online; ENOMEM when the
 * allocator fails during the run (counted in failures).
 * RKALLOC_ALLOC_RK_ARENA frees only all at once: a PAIR is an allocation
 * and a reset, a BATCH or BATCH_RANDOM is batch allocations and one reset;
 * RANDOM_LIFE and CROSS_CPU are EINVAL for it.
 */
#define RKALLOC_ALLOC_RK_POOL		0
#define RKALLOC_ALLOC_PAGES		1	/* alloc_pages */
#define RKALLOC_ALLOC_KMEM_CACHE	2	/* SLUB, SLAB_NO_MERGE cache */
#define RKALLOC_ALLOC_KMALLOC		3
#define RKALLOC_ALLOC_VMALLOC		4
#define RKALLOC_ALLOC_KVMALLOC		5
#define RKALLOC_ALLOC_RK_SLAB		6	/* rkalloc slab cache */
#define RKALLOC_ALLOC_RK_MALLOC		7
#define RKALLOC_ALLOC_RK_HEAP_FIRST	8
#define RKALLOC_ALLOC_RK_HEAP_NEXT	9
#define RKALLOC_ALLOC_RK_HEAP_BEST	10
#define RKALLOC_ALLOC_RK_HEAP_SEGREGATED 11
#define RKALLOC_ALLOC_RK_ARENA		12
#define RKALLOC_NR_ALLOCATORS		13

#define RKALLOC_BENCH_PAIR		0	/* hot alloc+free pair */
#define RKALLOC_BENCH_BATCH		1	/* alloc batch, free in order */
#define RKALLOC_BENCH_BATCH_RANDOM	2	/* alloc batch, free in random order */
#define RKALLOC_BENCH_RANDOM_LIFE	3	/* replace a random live object */
#define RKALLOC_BENCH_CROSS_CPU		4	/* alloc here, free on another CPU */
#define RKALLOC_MAX_SAMPLES		1024

struct rkalloc_bench {
	__u32 size;
	__u32 allocator;
	__u32 pattern;
	__u32 batch;
	__u64 bytes;
	__u64 ops;		/* pairs per sample, 1..2^24 */
	__u32 samples;		/* 1..RKALLOC_MAX_SAMPLES */
	__u32 cpu;		/* out: CPU the run started on */
	__u64 total_ns;		/* out */
	__u64 mean_ps;		/* out: per pair */
	__u64 p50_ps;		/* out */
	__u64 p99_ps;		/* out */
	__u64 min_ps;		/* out */
	__u64 max_ps;		/* out */
	__u64 failures;		/* out */
};

/*
 * RKALLOC_IOC_REPLAY: replay an allocation trace against one allocator in
 * the kernel (rkctl replay). ops points to count struct rkalloc_trace_op:
 * RKALLOC_TRACE_ALLOC allocates size bytes (1..RKALLOC_MAX_REPLAY_SIZE) under
 * the name id; RKALLOC_TRACE_FREE frees the live allocation named id (size
 * must be 0). Ids are 0..max_id-1 and may be reused once freed. What is
 * still live at the end is freed after the timing.
 *
 * The whole trace is copied in and checked before anything runs, so a bad
 * trace changes nothing:
 *  E2BIG   count > RKALLOC_MAX_REPLAY_OPS
 *  EINVAL  count or max_id 0, max_id > RKALLOC_MAX_REPLAY_OPS, non-zero
 *          reserved, an op code that is neither ALLOC nor FREE, an id >=
 *          max_id, an ALLOC of a live id, a FREE of an id not live, a FREE
 *          with a size, an ALLOC of 0 or more than RKALLOC_MAX_REPLAY_SIZE
 *          bytes; an unknown allocator, or one that cannot serve the
 *          trace's largest size (rkctl reports it as "cannot serve")
 *  ENOMEM  the trace's peak of live requested bytes is above the per-fd
 *          cap, or no kernel memory for the copy of the trace
 * An allocation the allocator refuses during the run is counted in
 * failures (its later FREE is skipped); the call still returns 0.
 *
 * Outputs. "At peak" is just after the first op at which the live requested
 * bytes reach their maximum, peak_live_bytes. total_ns is the time of the
 * ops alone (ktime; the sample at the peak and the final frees are not
 * timed). With RKALLOC_REPLAY_OWN_FRAG set in flags, the figures at peak are
 * the allocator's own fragmentation report (heaps): footprint = handed out +
 * metadata + free bytes it holds, internal = handed out - requested,
 * external = 1000 - largest free extent * 1000 / free bytes. Without it, the
 * allocator cannot tell (pages, slabs, kmalloc...): footprint is the bytes
 * it hands out for the live requests (page orders, object size, size class,
 * kmalloc_size_roundup, whole pages for vmalloc), internal = footprint -
 * requested, and external and metadata are 0.
 */
#define RKALLOC_TRACE_ALLOC		0
#define RKALLOC_TRACE_FREE		1
#define RKALLOC_MAX_REPLAY_OPS		(1u << 20)
#define RKALLOC_MAX_REPLAY_SIZE		(64u << 20)
#define RKALLOC_REPLAY_OWN_FRAG		0x1	/* out flag, see above */

struct rkalloc_trace_op {
	__u32 op;		/* RKALLOC_TRACE_ALLOC or RKALLOC_TRACE_FREE */
	__u32 id;		/* 0..max_id-1 */
	__u64 size;		/* ALLOC: bytes; FREE: 0 */
};

struct rkalloc_replay {
	__u32 size;
	__u32 allocator;	/* RKALLOC_ALLOC_* */
	__u64 ops;		/* user pointer to struct rkalloc_trace_op[count] */
	__u32 count;		/* 1..RKALLOC_MAX_REPLAY_OPS */
	__u32 max_id;		/* ids are below it, 1..RKALLOC_MAX_REPLAY_OPS */
	__u64 total_ns;		/* out: time of the ops */
	__u64 peak_live_bytes;	/* out: most requested bytes live at once */
	__u64 peak_footprint_bytes;	/* out: what the allocator held at peak */
	__u64 internal_bytes_at_peak;	/* out: handed out - requested */
	__u64 metadata_bytes_at_peak;	/* out: OWN_FRAG only, else 0 */
	__u32 external_permille_at_peak;	/* out: OWN_FRAG only, else 0 */
	__u32 failures;		/* out: allocations the allocator refused */
	__u32 flags;		/* out: RKALLOC_REPLAY_OWN_FRAG */
	__u32 reserved;
};

/*
 * RKALLOC_IOC_LIST: every slab cache (size classes included) and every heap
 * of every fd, as an array of entries. The caller passes a user array of
 * max entries (max may be 0 to ask for the count only); the module writes
 * min(max, count) entries and sets count to the total, so a caller whose
 * array was too small retries with max = count. No kernel address is
 * reported: handle names a cache or heap of the calling fd, and is 0 for
 * one the calling fd does not own (the size classes, other fds' objects).
 * EINVAL for a bad size field or a non-zero reserved field, EFAULT when
 * the entries that are written do not fit in writable user memory. On
 * failure count is not written.
 */
struct rkalloc_list_entry {
	__u64 handle;		/* this fd's own cache or heap, else 0 */
	__u32 kind;		/* RKALLOC_KIND_CACHE or RKALLOC_KIND_HEAP */
	__u32 obj_size;		/* caches: object size; heaps: 0 */
	__u32 policy;		/* heaps: RKALLOC_POLICY_*; caches: 0 */
	__u32 flags;		/* RKALLOC_CACHE_* or RKALLOC_HEAP_* */
	__u64 bytes;		/* pool memory the cache or heap holds */
	char name[RKALLOC_NAME_LEN];	/* NUL-terminated */
};

struct rkalloc_list {
	__u32 size;
	__u32 max;		/* in: entries the user array has room for */
	__u64 entries;		/* user pointer to struct rkalloc_list_entry[max] */
	__u32 count;		/* out: entries there are in total */
	__u32 reserved;
};

#define RKALLOC_IOC_INFO	_IOWR(RKALLOC_IOC_MAGIC, 0x00, struct rkalloc_info)
#define RKALLOC_IOC_POOL_ALLOC	_IOWR(RKALLOC_IOC_MAGIC, 0x01, struct rkalloc_pool_alloc)
#define RKALLOC_IOC_FREE	_IOWR(RKALLOC_IOC_MAGIC, 0x02, struct rkalloc_free)
#define RKALLOC_IOC_FILL	_IOWR(RKALLOC_IOC_MAGIC, 0x03, struct rkalloc_pattern)
#define RKALLOC_IOC_VERIFY	_IOWR(RKALLOC_IOC_MAGIC, 0x04, struct rkalloc_pattern)
#define RKALLOC_IOC_CHECK	_IOWR(RKALLOC_IOC_MAGIC, 0x05, struct rkalloc_check)
#define RKALLOC_IOC_POOL_SHRINK	_IOWR(RKALLOC_IOC_MAGIC, 0x06, struct rkalloc_pool_shrink)
#define RKALLOC_IOC_POOL_STATS	_IOWR(RKALLOC_IOC_MAGIC, 0x07, struct rkalloc_pool_stats)

#define RKALLOC_IOC_CACHE_CREATE	_IOWR(RKALLOC_IOC_MAGIC, 0x08, struct rkalloc_cache_create)
#define RKALLOC_IOC_CACHE_DESTROY	_IOWR(RKALLOC_IOC_MAGIC, 0x09, struct rkalloc_handle_op)
#define RKALLOC_IOC_OBJ_ALLOC	_IOWR(RKALLOC_IOC_MAGIC, 0x0a, struct rkalloc_batch)
#define RKALLOC_IOC_OBJ_FREE	_IOWR(RKALLOC_IOC_MAGIC, 0x0b, struct rkalloc_batch)
#define RKALLOC_IOC_MALLOC	_IOWR(RKALLOC_IOC_MAGIC, 0x0c, struct rkalloc_malloc)
#define RKALLOC_IOC_HEAP_CREATE	_IOWR(RKALLOC_IOC_MAGIC, 0x0d, struct rkalloc_heap_create)
#define RKALLOC_IOC_HEAP_ALLOC	_IOWR(RKALLOC_IOC_MAGIC, 0x0e, struct rkalloc_heap_alloc)
#define RKALLOC_IOC_HEAP_RESET	_IOWR(RKALLOC_IOC_MAGIC, 0x0f, struct rkalloc_handle_op)
#define RKALLOC_IOC_HEAP_DESTROY	_IOWR(RKALLOC_IOC_MAGIC, 0x10, struct rkalloc_handle_op)
#define RKALLOC_IOC_ARENA_ALLOC	_IOWR(RKALLOC_IOC_MAGIC, 0x11, struct rkalloc_arena_alloc)
#define RKALLOC_IOC_ARENA_RESET	_IOWR(RKALLOC_IOC_MAGIC, 0x12, struct rkalloc_arena_reset)
#define RKALLOC_IOC_BENCH	_IOWR(RKALLOC_IOC_MAGIC, 0x13, struct rkalloc_bench)
#define RKALLOC_IOC_REPLAY	_IOWR(RKALLOC_IOC_MAGIC, 0x14, struct rkalloc_replay)
#define RKALLOC_IOC_LIST	_IOWR(RKALLOC_IOC_MAGIC, 0x15, struct rkalloc_list)

#endif /* _UAPI_RKALLOC_H */
