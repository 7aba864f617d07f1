/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rkalloc's C shim: out-of-line wrappers for kernel inline functions and
 * macros that 7.2's Rust bindings lack. Only rust/kmod/sys/ calls these,
 * each behind a safe Rust function, and each Rust file declares the ones
 * it uses. Keep the prototypes here and there in step.
 */
#ifndef RKALLOC_SHIM_H
#define RKALLOC_SHIM_H

#include <linux/types.h>

struct kmem_cache;

/* sys/mem.rs */
extern const size_t rk_kmalloc_max_size;
extern const unsigned int rk_page_shift;
extern const unsigned int rk_max_page_order;
void rk_set_page_private(const void *addr, unsigned long v);
unsigned long rk_page_private(const void *addr);

/* sys/cpu.rs */
void rk_preempt_disable(void);
void rk_preempt_enable(void);
void rk_preempt_resched(void);
unsigned int rk_smp_processor_id(void);
unsigned int rk_num_online_cpus(void);
unsigned int rk_nr_cpu_ids(void);
bool rk_cpu_online(unsigned int cpu);
bool rk_cpu_possible(unsigned int cpu);
void rk_cond_resched(void);
bool rk_fatal_signal_pending(void);
int rk_wq_init(void);
void rk_wq_exit(void);
int rk_call_on_cpu(unsigned int cpu, int (*fn)(void *), void *arg, bool in_reclaim);
int rk_stop_machine(int (*fn)(void *), void *arg);
struct task_struct;
struct task_struct *rk_kthread_start(int (*fn)(void *), void *arg, unsigned int cpu);
int rk_kthread_stop(struct task_struct *t);
bool rk_kthread_should_stop(void);

/* sys/percpu.rs */
void __percpu *rk_alloc_percpu(size_t size, size_t align);
void rk_free_percpu(void __percpu *ptr);
void *rk_per_cpu_ptr(void __percpu *ptr, unsigned int cpu);
unsigned long rk_per_cpu_offset(unsigned int cpu);

/* sys/slub.rs */
struct kmem_cache *rk_kmem_cache_create(const char *name, unsigned int size, unsigned int align);
void rk_kmem_cache_destroy(struct kmem_cache *s);

/* sys/misc.rs */
u64 rk_ktime_ns(void);
unsigned int rk_uapi_cmd(unsigned int index);

/* sys/fault.rs (CONFIG_FAULT_INJECTION only) */
bool rk_should_fail(unsigned int point, size_t size);
void rk_fail_force(unsigned int point, bool on);
int rk_fail_debugfs_create(void);
void rk_fail_debugfs_remove(void);

/* sys/trace.rs */
void rk_trace_init(void);
void rk_trace_alloc(const char *allocator, const void *addr, size_t bytes, int order);
void rk_trace_free(const char *allocator, const void *addr, size_t bytes, int order);

#endif
