/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rkalloc's C shim: out-of-line wrappers for kernel inline functions and
 * macros that 7.2's Rust bindings lack. Only rust/kmod/sys.rs calls these,
 * each behind a safe Rust function. Keep the prototypes here and in sys.rs
 * in step.
 */
#ifndef RKALLOC_SHIM_H
#define RKALLOC_SHIM_H

#include <linux/types.h>

struct page;

void *rk_page_address(struct page *page);
struct page *rk_virt_to_page(const void *addr);
struct page *rk_alloc_pages(gfp_t gfp, unsigned int order);
void *rk_vmalloc(unsigned long size);
void rk_vfree(const void *addr);
void *rk_kvmalloc(size_t size);
void rk_kvfree(const void *addr);
void *rk_kmalloc(size_t size);
void rk_kfree(const void *addr);
u64 rk_ktime_ns(void);
void rk_preempt_disable(void);
void rk_preempt_enable(void);
unsigned int rk_smp_processor_id(void);
unsigned int rk_num_online_cpus(void);
unsigned int rk_nr_cpu_ids(void);
bool rk_cpu_online(unsigned int cpu);
void rk_cond_resched(void);
unsigned long rk_local_irq_save(void);
void rk_local_irq_restore(unsigned long flags);
int rk_call_on_cpu(unsigned int cpu, int (*fn)(void *), void *arg);
void rk_kmemleak_not_leak(const void *ptr);
unsigned int rk_uapi_cmd(unsigned int index);


void __percpu *rk_alloc_percpu(size_t size, size_t align);
void rk_free_percpu(void __percpu *ptr);
void *rk_per_cpu_ptr(void __percpu *ptr, unsigned int cpu);
bool rk_cpu_possible(unsigned int cpu);
struct kmem_cache;
struct kmem_cache *rk_kmem_cache_create(const char *name, unsigned int size, unsigned int align);
void rk_kmem_cache_destroy(struct kmem_cache *s);
void rk_set_page_private(const void *addr, unsigned long v);
unsigned long rk_page_private(const void *addr);
void *rk_get_cpu_ptr(void __percpu *ptr);
void rk_put_cpu_ptr(void);
#endif
