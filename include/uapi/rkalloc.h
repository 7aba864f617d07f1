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
 *    open, the module cannot be unloaded (delete_module fails; 7.2 answers
 *    EWOULDBLOCK, "in use").
 *  - A call that fails changes nothing: what it allocated is freed, what
 *    it freed is not, and no handle is made or lost. This holds when the
 *    copy of the result back to userspace fails too (EFAULT). Statistics
 *    and the per-CPU caches inside the module are not part of this
 *    promise (CHECK and POOL_SHRINK drain per-CPU lists before they look).
 *  - Commands that can run long (BENCH, REPLAY, CONFORM, CHECK,
 *    POOL_SHRINK) stop at a fatal signal (SIGKILL): they free what they
 *    made and return EINTR.
 *  - Allocators are named by their index in the module's allocator table
 *    (RKALLOC_IOC_ALLOCATORS), fit policies by their index in its policy
 *    table (the policy field of that table's heap entries). Neither is a
 *    fixed list: a module may add allocators and policies.
 *
 * Errors common to every command
 *  ENOTTY  unknown command
 *  EFAULT  the argument (or a user array it points to) is not accessible
 *  EINVAL  bad size field, non-zero reserved field, or a bad parameter
 *          (order, size, policy); a handle from another fd; a handle that
 *          was already freed (double free); a handle of the wrong kind
 *  ENOENT  a handle this fd never had
 *  ENOMEM  the allocator, or the per-fd cap (module parameter fd_cap_kib),
 *          has no room, or the kernel had no memory for the call itself
 *  E2BIG   a batch larger than RKALLOC_MAX_BATCH
 *  EINTR   a fatal signal stopped a long command (see above)
 *  EUCLEAN an invariant checker found damage (CHECK, CONFORM), or a debug
 *          heap whose boundary tags are damaged (until its reset)
 * The exact list of each command is the "errors:" table at the end.
 */
#ifndef _UAPI_RKALLOC_H
#define _UAPI_RKALLOC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define RKALLOC_ABI_VERSION	2
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
	__u32 nr_allocators;	/* out: entries of RKALLOC_IOC_ALLOCATORS */
	__u64 pool_pages;	/* out: pages the pool holds from the kernel */
	__u64 pool_free_pages;	/* out: of those, free */
	__u64 fd_bytes;		/* out: bytes this fd holds */
	__u64 fd_cap_bytes;	/* out: the per-fd cap */
	__u32 nr_policies;	/* out: fit policies (HEAP_CREATE's policy is below it) */
	__u32 reserved;
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
 * RKALLOC_IOC_HEAP_CREATE: policy below rkalloc_info.nr_policies (the
 * policy field of the heap entries of RKALLOC_IOC_ALLOCATORS names them),
 * flags RKALLOC_HEAP_*, initial_bytes rounded up to pages (0: one 64 KiB
 * region); out handle.
 * RKALLOC_IOC_HEAP_ALLOC: bytes 1..RKALLOC_MAX_HEAP_ALLOC from heap.
 * RKALLOC_IOC_HEAP_RESET frees every block of the heap; HEAP_DESTROY frees
 * the heap and its blocks. Blocks are freed with RKALLOC_IOC_FREE.
 */
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
 * After a reset the arena keeps its largest region for the next
 * allocations, as a heap's reset keeps its largest region: it stays
 * counted in rkalloc_info.fd_bytes until the fd is closed.
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
 * The allocator table, RKALLOC_IOC_ALLOCATORS: every allocator BENCH,
 * REPLAY and CONFORM can run, rkalloc's own and the kernel's, in one
 * table whose index is the allocator's id. The caller passes a user array
 * of max entries (0 asks for the count only); the module writes
 * min(max, count) entries and sets count to the total. EFAULT when the
 * entries written do not fit in writable user memory; count is then not
 * written. /sys/kernel/debug/rkalloc/allocators shows the same table.
 */
#define RKALLOC_CLASS_PAGES	1	/* blocks of 2^order pages; sizes round up */
#define RKALLOC_CLASS_OBJECTS	2	/* a cache of one object size (the size asked) */
#define RKALLOC_CLASS_MALLOC	3	/* any size in its range, kmalloc-style */
#define RKALLOC_CLASS_HEAP	4	/* variable blocks in regions, found by a fit policy */
#define RKALLOC_CLASS_ARENA	5	/* bump allocation, freed all at once */

#define RKALLOC_ALLOCATOR_KERNEL	0x1	/* the kernel's own allocator */
#define RKALLOC_ALLOCATOR_FREES_ALL	0x2	/* frees only all at once (a reset) */
#define RKALLOC_ALLOCATOR_OWN_FRAG	0x4	/* reports its own fragmentation */
#define RKALLOC_ALLOCATOR_CHECKED	0x8	/* has an invariant checker */
#define RKALLOC_NO_POLICY	0xffffffffu

struct rkalloc_allocator {
	__u32 id;		/* index in the table */
	__u32 class;		/* RKALLOC_CLASS_* */
	__u32 flags;		/* RKALLOC_ALLOCATOR_* */
	__u32 policy;		/* heaps: their HEAP_CREATE policy; else RKALLOC_NO_POLICY */
	__u64 min_bytes;	/* smallest request it serves */
	__u64 max_bytes;	/* largest request it serves */
	char name[RKALLOC_NAME_LEN];	/* e.g. "rk_pool", "kmalloc"; NUL-terminated */
	char peer[RKALLOC_NAME_LEN];	/* the kernel allocator it is compared with, or "" */
	char policy_name[RKALLOC_NAME_LEN];	/* heaps: e.g. "best-fit"; else "" */
};

struct rkalloc_allocators {
	__u32 size;
	__u32 max;		/* in: entries the user array has room for */
	__u64 entries;		/* user pointer to struct rkalloc_allocator[max] */
	__u32 count;		/* out: entries there are in total */
	__u32 reserved;
};

/*
 * RKALLOC_IOC_BENCH: time alloc+free pairs of one allocator in the kernel.
 * Each of `samples` samples times `ops` alloc+free pairs (with warm-up
 * first); results are per pair, in picoseconds, from ktime (wall clock, or
 * guest instructions under QEMU -icount shift=0). allocator is an id of
 * the allocator table, pattern an RKALLOC_BENCH_* value, bytes the
 * allocation size (page allocators: the smallest order holding it).
 * batch: objects held at once for BATCH, BATCH_RANDOM, RANDOM_LIFE and
 * CROSS_CPU (1..RKALLOC_MAX_BATCH). EINVAL for a bad allocator, pattern, or
 * a size outside the allocator's [min_bytes, max_bytes], or (CROSS_CPU)
 * when only one CPU is online; ENOMEM when the allocator fails during the
 * run (counted in failures); EINTR at a fatal signal.
 * An allocator that frees all at once (RKALLOC_ALLOCATOR_FREES_ALL): a
 * PAIR is an allocation and a reset, a BATCH or BATCH_RANDOM is batch
 * allocations and one reset; RANDOM_LIFE and CROSS_CPU are EINVAL for it.
 *
 * mean_ps, median_ps, min_ps and max_ps are over the samples' means. With
 * RKALLOC_BENCH_LATENCY in flags, a further pass of the same pattern times
 * every allocation and every free on its own (ops pairs, at most 2^16),
 * and the lat_* outputs are percentiles of those single operations, with
 * the cost of reading the clock (lat_overhead_ps) taken off; without it
 * they are 0.
 */
#define RKALLOC_BENCH_PAIR		0	/* hot alloc+free pair */
#define RKALLOC_BENCH_BATCH		1	/* alloc batch, free in order */
#define RKALLOC_BENCH_BATCH_RANDOM	2	/* alloc batch, free in random order */
#define RKALLOC_BENCH_RANDOM_LIFE	3	/* replace a random live object */
#define RKALLOC_BENCH_CROSS_CPU		4	/* alloc here, free on another CPU */
#define RKALLOC_MAX_SAMPLES		1024
#define RKALLOC_BENCH_LATENCY		0x1	/* in flag: time single operations too */

struct rkalloc_bench {
	__u32 size;
	__u32 allocator;	/* id in the allocator table */
	__u32 pattern;
	__u32 batch;
	__u64 bytes;
	__u64 ops;		/* pairs per sample, 1..2^24 */
	__u32 samples;		/* 1..RKALLOC_MAX_SAMPLES */
	__u32 cpu;		/* out: CPU the run started on */
	__u64 total_ns;		/* out */
	__u64 mean_ps;		/* out: per pair, mean of the samples */
	__u64 median_ps;	/* out: median sample */
	__u64 min_ps;		/* out: fastest sample */
	__u64 max_ps;		/* out: slowest sample */
	__u64 failures;		/* out */
	__u32 flags;		/* in: RKALLOC_BENCH_LATENCY */
	__u32 reserved;
	__u64 alloc_p50_ps;	/* out, LATENCY: one allocation */
	__u64 alloc_p99_ps;
	__u64 free_p50_ps;	/* out, LATENCY: one free */
	__u64 free_p99_ps;
	__u64 lat_overhead_ps;	/* out, LATENCY: the clock's own cost, taken off */
};

/*
 * RKALLOC_IOC_CONFORM: the conformance run every allocator of the table
 * gets. ops random steps (1..2^24) each allocate a random size in [lo, hi]
 * (0, 0: the allocator's own min_bytes..max_bytes, at most 64 KiB) or free
 * a random live block, with at most max_live (1..RKALLOC_MAX_BATCH) live.
 * Every block is filled with a pattern of its own when allocated and
 * verified before it is freed, so overlapping or corrupted blocks show.
 * The run also asks for 0 bytes and for max_bytes + 1 (both must be
 * refused), runs the allocator's checker if it has one, and frees what is
 * left. Returns 0, or EUCLEAN when a block was corrupted, a bad size was
 * served or the checker failed (the counts say which); EINVAL for a bad
 * allocator or range, EINTR at a fatal signal. An allocator that frees all
 * at once is reset instead of freeing single blocks.
 */
struct rkalloc_conform {
	__u32 size;
	__u32 allocator;	/* id in the allocator table */
	__u64 ops;
	__u64 seed;
	__u64 lo;		/* in: smallest size, or 0 */
	__u64 hi;		/* in: largest size, or 0 */
	__u32 max_live;
	__u32 reserved;
	__u64 allocs;		/* out: allocations served */
	__u64 frees;		/* out */
	__u64 failures;		/* out: allocations the allocator refused (no memory) */
	__u64 corrupt_blocks;	/* out: blocks whose pattern changed while live */
	__u64 bad_sizes;	/* out: out-of-range requests that were served */
	__u64 check_failures;	/* out: checker reports */
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
 *          bytes; an unknown allocator, or one whose size range does not
 *          hold every size of the trace (rkctl: "cannot serve"), or one
 *          that frees all at once
 *  ENOMEM  the trace's peak of live requested bytes is above the per-fd
 *          cap, or no kernel memory for the copy of the trace
 *  EINTR   a fatal signal (what the run allocated is freed)
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
	__u32 allocator;	/* id in the allocator table */
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
	__u32 policy;		/* heaps: their policy; caches: 0 */
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
#define RKALLOC_IOC_ALLOCATORS	_IOWR(RKALLOC_IOC_MAGIC, 0x16, struct rkalloc_allocators)
#define RKALLOC_IOC_CONFORM	_IOWR(RKALLOC_IOC_MAGIC, 0x17, struct rkalloc_conform)

/*
 * The errnos each command can return besides 0; rkctl's fuzzer accepts no
 * other, and reads this table (keep the format: one "errors:" line per
 * command). Any command answers ENOTTY when the size encoded in its
 * command number is not its struct's.
 *
 * errors: INFO          EFAULT EINVAL ENOTTY
 * errors: POOL_ALLOC    EFAULT EINVAL ENOMEM ENOTTY
 * errors: FREE          EFAULT EINVAL ENOENT ENOTTY EUCLEAN
 * errors: FILL          EFAULT EINVAL ENOENT ENOTTY EUCLEAN
 * errors: VERIFY        EFAULT EINVAL ENOENT ENOTTY EUCLEAN
 * errors: CHECK         EFAULT EINVAL EINTR ENOMEM ENOTTY EUCLEAN
 * errors: POOL_SHRINK   EFAULT EINVAL EINTR ENOTTY
 * errors: POOL_STATS    EFAULT EINVAL ENOTTY
 * errors: CACHE_CREATE  EFAULT EINVAL ENOMEM ENOTTY
 * errors: CACHE_DESTROY EBUSY EFAULT EINVAL ENOENT ENOTTY
 * errors: OBJ_ALLOC     E2BIG EFAULT EINVAL ENOENT ENOMEM ENOTTY
 * errors: OBJ_FREE      E2BIG EFAULT EINVAL ENOENT ENOMEM ENOTTY
 * errors: MALLOC        EFAULT EINVAL ENOMEM ENOTTY
 * errors: HEAP_CREATE   EFAULT EINVAL ENOMEM ENOTTY
 * errors: HEAP_ALLOC    EFAULT EINVAL ENOENT ENOMEM ENOTTY EUCLEAN
 * errors: HEAP_RESET    EFAULT EINVAL ENOENT ENOMEM ENOTTY
 * errors: HEAP_DESTROY  EFAULT EINVAL ENOENT ENOMEM ENOTTY
 * errors: ARENA_ALLOC   EFAULT EINVAL ENOMEM ENOTTY
 * errors: ARENA_RESET   EFAULT EINVAL ENOMEM ENOTTY
 * errors: BENCH         EFAULT EINVAL EINTR ENOMEM ENOTTY
 * errors: REPLAY        E2BIG EFAULT EINVAL EINTR ENOMEM ENOTTY
 * errors: LIST          EFAULT EINVAL ENOMEM ENOTTY
 * errors: ALLOCATORS    EFAULT EINVAL ENOMEM ENOTTY
 * errors: CONFORM       EFAULT EINVAL EINTR ENOMEM ENOTTY EUCLEAN
 */

#endif /* _UAPI_RKALLOC_H */
