/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rkalloc's tracepoints, rkalloc:rk_alloc and rkalloc:rk_free, next to the
 * kernel's kmem:kmalloc and kmem:kfree for perf, ftrace and bpftrace:
 *
 *   perf record -e rkalloc:rk_alloc -e rkalloc:rk_free -a -- rkctl stress
 *   echo 1 > /sys/kernel/tracing/events/rkalloc/enable
 *
 * A block is named by `id`, a keyed hash of its address that is stable for
 * one load of the module, never by the address. `allocator` is the
 * allocator or cache; `order` is the page order for page blocks and -1 for
 * objects; `gfp_flags` is what rkalloc would take from the kernel with if
 * it had to grow (it runs in process context only). The Rust side tests the
 * tracepoint's static key inline and calls the shim only when an event is
 * on, so an event that is off costs a patched-out jump.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM rkalloc

#if !defined(_RK_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _RK_TRACE_H

#include <linux/tracepoint.h>
#include <trace/events/mmflags.h>

TRACE_EVENT(rk_alloc,
	TP_PROTO(const char *allocator, u64 id, size_t bytes, int order, gfp_t gfp_flags),
	TP_ARGS(allocator, id, bytes, order, gfp_flags),
	TP_STRUCT__entry(
		__string(allocator, allocator)
		__field(u64, id)
		__field(size_t, bytes)
		__field(int, order)
		__field(unsigned long, gfp_flags)
	),
	TP_fast_assign(
		__assign_str(allocator);
		__entry->id = id;
		__entry->bytes = bytes;
		__entry->order = order;
		__entry->gfp_flags = (__force unsigned long)gfp_flags;
	),
	TP_printk("allocator=%s id=%016llx bytes=%zu order=%d gfp_flags=%s",
		  __get_str(allocator), __entry->id, __entry->bytes, __entry->order,
		  show_gfp_flags(__entry->gfp_flags))
);

TRACE_EVENT(rk_free,
	TP_PROTO(const char *allocator, u64 id, size_t bytes, int order),
	TP_ARGS(allocator, id, bytes, order),
	TP_STRUCT__entry(
		__string(allocator, allocator)
		__field(u64, id)
		__field(size_t, bytes)
		__field(int, order)
	),
	TP_fast_assign(
		__assign_str(allocator);
		__entry->id = id;
		__entry->bytes = bytes;
		__entry->order = order;
	),
	TP_printk("allocator=%s id=%016llx bytes=%zu order=%d",
		  __get_str(allocator), __entry->id, __entry->bytes, __entry->order)
);

#endif /* _RK_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE rk_trace
#include <trace/define_trace.h>
