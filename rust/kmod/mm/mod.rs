// SPDX-License-Identifier: GPL-2.0
//! The allocators on kernel memory. Everything here takes its pages from
//! the [`pool`] (which takes them from the kernel), and reaches the kernel
//! only through [`crate::sys`] and the algorithms only through
//! [`crate::rkcore`]:
//!
//! ```text
//!   slab (caches, size classes)   heap (fit policies)   arena    catalog
//!                 \                    \                  /      (lists heaps, arenas)
//!                  \                    region (a pool block lent whole)
//!                   \                  /
//!                    pool (buddy + per-CPU lists) <- __get_free_pages(MAX_PAGE_ORDER)
//! ```

pub(crate) mod arena;
pub(crate) mod catalog;
pub(crate) mod heap;
pub(crate) mod pool;
pub(crate) mod region;
pub(crate) mod slab;
