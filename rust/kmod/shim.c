// SPDX-License-Identifier: GPL-2.0
/*
 * rkalloc's C shim; see shim.h. Each function is a one-line wrapper, so the
 * Rust side can call kernel inline functions and macros.
 */
#include <linux/cpumask.h>
#include <linux/irqflags.h>
#include <linux/kmemleak.h>
#include <linux/mm.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>
#include "shim.h"

void *rk_page_address(struct page *page) { return page_address(page); }
struct page *rk_virt_to_page(const void *addr) { return virt_to_page(addr); }
struct page *rk_alloc_pages(gfp_t gfp, unsigned int order)
{
	return alloc_pages(gfp, order);
}
void *rk_vmalloc(unsigned long size) { return vmalloc(size); }
void rk_vfree(const void *addr) { vfree(addr); }
void *rk_kvmalloc(size_t size) { return kvmalloc(size, GFP_KERNEL); }
void rk_kvfree(const void *addr) { kvfree(addr); }
void *rk_kmalloc(size_t size) { return kmalloc(size, GFP_KERNEL); }
void rk_kfree(const void *addr) { kfree(addr); }
u64 rk_ktime_ns(void) { return ktime_get_ns(); }
void rk_preempt_disable(void) { preempt_disable(); }
void rk_preempt_enable(void) { preempt_enable(); }
unsigned int rk_smp_processor_id(void) { return smp_processor_id(); }
unsigned int rk_num_online_cpus(void) { return num_online_cpus(); }
unsigned int rk_nr_cpu_ids(void) { return nr_cpu_ids; }
bool rk_cpu_online(unsigned int cpu) { return cpu < nr_cpu_ids && cpu_online(cpu); }
void rk_cond_resched(void) { cond_resched(); }
unsigned long rk_local_irq_save(void)
{
	unsigned long flags;

	local_irq_save(flags);
	return flags;
}
void rk_local_irq_restore(unsigned long flags) { local_irq_restore(flags); }
int rk_call_on_cpu(unsigned int cpu, int (*fn)(void *), void *arg)
{
	return smp_call_on_cpu(cpu, fn, arg, false);
}
void rk_kmemleak_not_leak(const void *ptr) { kmemleak_not_leak(ptr); }

#include <uapi/rkalloc.h>
/* The header's command numbers, so KUnit can check the Rust side's. */
unsigned int rk_uapi_cmd(unsigned int index)
{
	static const unsigned int cmds[] = {
		RKALLOC_IOC_INFO,
		RKALLOC_IOC_POOL_ALLOC,
		RKALLOC_IOC_FREE,
		RKALLOC_IOC_FILL,
		RKALLOC_IOC_VERIFY,
		RKALLOC_IOC_CHECK,
		RKALLOC_IOC_POOL_SHRINK,
		RKALLOC_IOC_POOL_STATS,
		RKALLOC_IOC_CACHE_CREATE,
		RKALLOC_IOC_CACHE_DESTROY,
		RKALLOC_IOC_OBJ_ALLOC,
		RKALLOC_IOC_OBJ_FREE,
		RKALLOC_IOC_MALLOC,
		RKALLOC_IOC_HEAP_CREATE,
		RKALLOC_IOC_HEAP_ALLOC,
		RKALLOC_IOC_HEAP_RESET,
		RKALLOC_IOC_HEAP_DESTROY,
		RKALLOC_IOC_ARENA_ALLOC,
		RKALLOC_IOC_ARENA_RESET,
		RKALLOC_IOC_BENCH,
		RKALLOC_IOC_REPLAY,
		RKALLOC_IOC_LIST,
	};

	return index < ARRAY_SIZE(cmds) ? cmds[index] : 0;
}

#include <linux/percpu.h>
void __percpu *rk_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
}
void rk_free_percpu(void __percpu *ptr) { free_percpu(ptr); }
void *rk_per_cpu_ptr(void __percpu *ptr, unsigned int cpu) { return per_cpu_ptr(ptr, cpu); }
bool rk_cpu_possible(unsigned int cpu) { return cpu < nr_cpu_ids && cpu_possible(cpu); }

/* A comparison cache, unmerged so that it is really its own cache. */
struct kmem_cache *rk_kmem_cache_create(const char *name, unsigned int size, unsigned int align)
{
	return kmem_cache_create(name, size, align, SLAB_NO_MERGE, NULL);
}
void rk_kmem_cache_destroy(struct kmem_cache *s) { kmem_cache_destroy(s); }

/*
 * page->private of pages the caller allocated (pool pages): the slab layer
 * keeps its owner tags there. READ_ONCE/WRITE_ONCE because debug frees read
 * the tag of pages another cache may be retagging.
 */
void rk_set_page_private(const void *addr, unsigned long v)
{
	WRITE_ONCE(virt_to_page(addr)->private, v);
}
unsigned long rk_page_private(const void *addr) { return READ_ONCE(virt_to_page(addr)->private); }

/* preempt_disable() + this_cpu_ptr() in one call: the per-CPU fast paths. */
void *rk_get_cpu_ptr(void __percpu *ptr)
{
	preempt_disable();
	return this_cpu_ptr(ptr);
}
void rk_put_cpu_ptr(void) { preempt_enable(); }
