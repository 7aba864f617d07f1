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
