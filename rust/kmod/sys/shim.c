// SPDX-License-Identifier: GPL-2.0
/*
 * rkalloc's C shim; see shim.h. Each function wraps a kernel inline
 * function or macro that 7.2's Rust bindings lack, so that the Rust side
 * (rust/kmod/sys/, one file per facility) can call it behind a safe
 * function. Nothing else in the module calls C.
 */
#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fault-inject.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <linux/stop_machine.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>
#include "shim.h"

#define CREATE_TRACE_POINTS
#include "rk_trace.h"

/* --- memory (sys/mem.rs) --- */

const size_t rk_kmalloc_max_size = KMALLOC_MAX_SIZE;
const unsigned int rk_page_shift = PAGE_SHIFT;
const unsigned int rk_max_page_order = MAX_PAGE_ORDER;

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

/* --- CPUs and tasks (sys/cpu.rs) --- */

/*
 * The Rust side disables and enables preemption inline on x86-64 and UML
 * (sys/cpu.rs); these are its fallback elsewhere. rk_preempt_resched() is
 * the rare tail of its inline preempt_enable(), called when the count fell
 * to zero with a reschedule pending: it runs the kernel's own
 * preempt_enable() from that count (modules may not use
 * preempt_check_resched()), which reschedules exactly when and how this
 * kernel's preempt_enable() would (dynamic preemption included).
 */
void rk_preempt_disable(void) { preempt_disable(); }
void rk_preempt_enable(void) { preempt_enable(); }
void rk_preempt_resched(void)
{
	preempt_disable();
	preempt_enable();
}
unsigned int rk_smp_processor_id(void) { return smp_processor_id(); }
unsigned int rk_num_online_cpus(void) { return num_online_cpus(); }
unsigned int rk_nr_cpu_ids(void) { return nr_cpu_ids; }
bool rk_cpu_online(unsigned int cpu) { return cpu < nr_cpu_ids && cpu_online(cpu); }
bool rk_cpu_possible(unsigned int cpu) { return cpu < nr_cpu_ids && cpu_possible(cpu); }
void rk_cond_resched(void) { cond_resched(); }
bool rk_fatal_signal_pending(void) { return fatal_signal_pending(current); }
/*
 * Runs fn(arg) in a worker bound to cpu and waits for it, like
 * smp_call_on_cpu(), but on the module's own WQ_MEM_RECLAIM workqueue: the
 * pool's shrinker drains other CPUs' page lists this way, and reclaim may
 * wait only for workqueues that have a rescuer (as drain_all_pages() uses
 * mm_percpu_wq).
 */
static struct workqueue_struct *rk_wq;
/*
 * Calls made from reclaim (the pool's shrinker) run on a queue of their own,
 * whose works never allocate memory: reclaim waits for them, so a work that
 * allocated (and could enter reclaim) would close a cycle, and lockdep
 * tracks works by queue and by INIT_WORK_ONSTACK call site.
 */
static struct workqueue_struct *rk_reclaim_wq;

struct rk_call {
	struct work_struct work;
	int (*fn)(void *);
	void *arg;
	int ret;
};

static void rk_call_work(struct work_struct *work)
{
	struct rk_call *c = container_of(work, struct rk_call, work);

	c->ret = c->fn(c->arg);
}

int rk_wq_init(void)
{
	rk_wq = alloc_workqueue("rkalloc", WQ_MEM_RECLAIM | WQ_PERCPU, 0);
	if (!rk_wq)
		return -ENOMEM;
	rk_reclaim_wq = alloc_workqueue("rkalloc_reclaim", WQ_MEM_RECLAIM | WQ_PERCPU, 0);
	if (!rk_reclaim_wq) {
		destroy_workqueue(rk_wq);
		rk_wq = NULL;
		return -ENOMEM;
	}
	return 0;
}

void rk_wq_exit(void)
{
	destroy_workqueue(rk_reclaim_wq);
	rk_reclaim_wq = NULL;
	destroy_workqueue(rk_wq);
	rk_wq = NULL;
}

/*
 * Runs fn(arg) on @cpu and waits for it, with CPU hotplug held off. In
 * reclaim (@in_reclaim), the hotplug lock is only tried: a hotplug
 * operation holds it for writing while it allocates memory, which may
 * enter reclaim and call rkalloc's shrinker, so waiting for it there could
 * deadlock (lockdep: fs_reclaim -> cpu_hotplug_lock). -EBUSY then. In
 * reclaim, fn runs on rk_reclaim_wq and must not allocate.
 */
int rk_call_on_cpu(unsigned int cpu, int (*fn)(void *), void *arg, bool in_reclaim)
{
	struct rk_call c = { .fn = fn, .arg = arg, .ret = -ENXIO };

	if (!in_reclaim)
		cpus_read_lock();
	else if (!cpus_read_trylock())
		return -EBUSY;
	if (cpu >= nr_cpu_ids || !cpu_online(cpu)) {
		cpus_read_unlock();
		return -ENXIO;
	}
	/* Two call sites: two lockdep classes for the two kinds of work. */
	if (in_reclaim) {
		INIT_WORK_ONSTACK(&c.work, rk_call_work);
		queue_work_on(cpu, rk_reclaim_wq, &c.work);
	} else {
		INIT_WORK_ONSTACK(&c.work, rk_call_work);
		queue_work_on(cpu, rk_wq, &c.work);
	}
	flush_work(&c.work);
	destroy_work_on_stack(&c.work);
	cpus_read_unlock();
	return c.ret;
}
int rk_stop_machine(int (*fn)(void *), void *arg)
{
	return stop_machine(fn, arg, NULL);
}

#ifdef RKALLOC_KUNIT
/* KUnit: a kernel thread bound to one CPU, to load a structure while a test checks it. */
struct task_struct *rk_kthread_start(int (*fn)(void *), void *arg, unsigned int cpu)
{
	struct task_struct *t = kthread_create(fn, arg, "rkalloc-test/%u", cpu);

	if (IS_ERR(t))
		return NULL;
	kthread_bind(t, cpu);
	wake_up_process(t);
	return t;
}
int rk_kthread_stop(struct task_struct *t) { return kthread_stop(t); }
bool rk_kthread_should_stop(void) { return kthread_should_stop(); }
#endif

/* --- per-CPU memory (sys/percpu.rs) --- */

void __percpu *rk_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
}
void rk_free_percpu(void __percpu *ptr) { free_percpu(ptr); }
void *rk_per_cpu_ptr(void __percpu *ptr, unsigned int cpu) { return per_cpu_ptr(ptr, cpu); }
/* What per_cpu_ptr() adds for cpu (the shim fallback of this_cpu_ptr()). */
unsigned long rk_per_cpu_offset(unsigned int cpu)
{
#ifdef CONFIG_SMP
	return per_cpu_offset(cpu);
#else
	return 0;
#endif
}

/* --- the kernel's slab allocator (sys/slub.rs) --- */

/* A comparison cache, unmerged so that it is really its own cache. */
struct kmem_cache *rk_kmem_cache_create(const char *name, unsigned int size, unsigned int align)
{
	return kmem_cache_create(name, size, align, SLAB_NO_MERGE, NULL);
}
void rk_kmem_cache_destroy(struct kmem_cache *s) { kmem_cache_destroy(s); }

/* --- odds and ends (sys/misc.rs) --- */

u64 rk_ktime_ns(void) { return ktime_get_ns(); }

#ifdef RKALLOC_KUNIT
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
		RKALLOC_IOC_ALLOCATORS,
		RKALLOC_IOC_CONFORM,
	};

	return index < ARRAY_SIZE(cmds) ? cmds[index] : 0;
}
#endif

/* --- fault injection (sys/fault.rs) --- */

#ifdef CONFIG_FAULT_INJECTION
/*
 * rkalloc's fail points, with failslab's semantics (fault_attr:
 * probability, interval, times, space, verbose, task-filter), under
 * /sys/kernel/debug/rkalloc/fail/<name>/. Indexed like sys::fault::Point.
 */
static DECLARE_FAULT_ATTR(rk_fail_pool_grow);
static DECLARE_FAULT_ATTR(rk_fail_pcp_refill);
static DECLARE_FAULT_ATTR(rk_fail_slab_refill);
static DECLARE_FAULT_ATTR(rk_fail_heap_grow);
static DECLARE_FAULT_ATTR(rk_fail_arena_grow);
static struct fault_attr *const rk_fail_attrs[] = {
	&rk_fail_pool_grow, &rk_fail_pcp_refill, &rk_fail_slab_refill,
	&rk_fail_heap_grow, &rk_fail_arena_grow,
};
static const char *const rk_fail_names[] = {
	"pool_grow", "pcp_refill", "slab_refill", "heap_grow", "arena_grow",
};
static struct dentry *rk_fail_dir;

bool rk_should_fail(unsigned int point, size_t size)
{
	if (point >= ARRAY_SIZE(rk_fail_attrs))
		return false;
	return should_fail(rk_fail_attrs[point], size);
}

/* KUnit: make every call of a point fail (times -1, probability 100), or none. */
void rk_fail_force(unsigned int point, bool on)
{
	struct fault_attr *a;

	if (point >= ARRAY_SIZE(rk_fail_attrs))
		return;
	a = rk_fail_attrs[point];
	a->verbose = 0;
	a->interval = 1;
	atomic_set(&a->times, on ? -1 : 1);
	a->probability = on ? 100 : 0;
}

/* Creates rkalloc/fail/ under the module's debugfs directory (made in Rust). */
int rk_fail_debugfs_create(void)
{
#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS
	struct dentry *parent = debugfs_lookup("rkalloc", NULL);
	unsigned int i;

	if (IS_ERR_OR_NULL(parent))
		return -ENOENT;
	rk_fail_dir = debugfs_create_dir("fail", parent);
	dput(parent);
	if (IS_ERR(rk_fail_dir))
		return PTR_ERR(rk_fail_dir);
	for (i = 0; i < ARRAY_SIZE(rk_fail_attrs); i++) {
		/* Quiet by default: a stack dump per failure floods a serial console. */
		rk_fail_attrs[i]->verbose = 0;
		if (IS_ERR(fault_create_debugfs_attr(rk_fail_names[i], rk_fail_dir,
						     rk_fail_attrs[i]))) {
			debugfs_remove(rk_fail_dir);
			rk_fail_dir = NULL;
			return -ENOMEM;
		}
	}
#endif
	return 0;
}

void rk_fail_debugfs_remove(void)
{
	debugfs_remove(rk_fail_dir);
	rk_fail_dir = NULL;
}
#endif /* CONFIG_FAULT_INJECTION */

/* --- tracepoints (sys/trace.rs, rk_trace.h) --- */

/*
 * Events name a block by a keyed hash of its address, never the address:
 * the same block gives the same id within one load of the module, and the
 * id says nothing about where kernel memory is.
 */
static siphash_key_t rk_trace_key;

void rk_trace_init(void)
{
	get_random_bytes(&rk_trace_key, sizeof(rk_trace_key));
}

static u64 rk_trace_id(const void *addr)
{
	return siphash_1u64((u64)(unsigned long)addr, &rk_trace_key);
}

void rk_trace_alloc(const char *allocator, const void *addr, size_t bytes, int order)
{
	trace_rk_alloc(allocator, rk_trace_id(addr), bytes, order, GFP_KERNEL);
}

void rk_trace_free(const char *allocator, const void *addr, size_t bytes, int order)
{
	trace_rk_free(allocator, rk_trace_id(addr), bytes, order);
}
