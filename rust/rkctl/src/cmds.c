// SPDX-License-Identifier: GPL-2.0
/* The ioctl command numbers, computed by the header's own macros. */
#include <uapi/rkalloc.h>

const unsigned int rkctl_cmd_info = RKALLOC_IOC_INFO;
const unsigned int rkctl_cmd_pool_alloc = RKALLOC_IOC_POOL_ALLOC;
const unsigned int rkctl_cmd_free = RKALLOC_IOC_FREE;
const unsigned int rkctl_cmd_fill = RKALLOC_IOC_FILL;
const unsigned int rkctl_cmd_verify = RKALLOC_IOC_VERIFY;
const unsigned int rkctl_cmd_check = RKALLOC_IOC_CHECK;
const unsigned int rkctl_cmd_pool_shrink = RKALLOC_IOC_POOL_SHRINK;
const unsigned int rkctl_cmd_pool_stats = RKALLOC_IOC_POOL_STATS;
const unsigned int rkctl_cmd_cache_create = RKALLOC_IOC_CACHE_CREATE;
const unsigned int rkctl_cmd_cache_destroy = RKALLOC_IOC_CACHE_DESTROY;
const unsigned int rkctl_cmd_obj_alloc = RKALLOC_IOC_OBJ_ALLOC;
const unsigned int rkctl_cmd_obj_free = RKALLOC_IOC_OBJ_FREE;
const unsigned int rkctl_cmd_malloc = RKALLOC_IOC_MALLOC;
const unsigned int rkctl_cmd_heap_create = RKALLOC_IOC_HEAP_CREATE;
const unsigned int rkctl_cmd_heap_alloc = RKALLOC_IOC_HEAP_ALLOC;
const unsigned int rkctl_cmd_heap_reset = RKALLOC_IOC_HEAP_RESET;
const unsigned int rkctl_cmd_heap_destroy = RKALLOC_IOC_HEAP_DESTROY;
const unsigned int rkctl_cmd_arena_alloc = RKALLOC_IOC_ARENA_ALLOC;
const unsigned int rkctl_cmd_arena_reset = RKALLOC_IOC_ARENA_RESET;
const unsigned int rkctl_cmd_bench = RKALLOC_IOC_BENCH;
const unsigned int rkctl_cmd_replay = RKALLOC_IOC_REPLAY;
const unsigned int rkctl_cmd_list = RKALLOC_IOC_LIST;
const unsigned int rkctl_cmd_allocators = RKALLOC_IOC_ALLOCATORS;
const unsigned int rkctl_cmd_conform = RKALLOC_IOC_CONFORM;
