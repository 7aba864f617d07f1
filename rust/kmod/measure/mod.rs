// SPDX-License-Identifier: GPL-2.0
//! Measurements on the allocator table: the benchmark ([`bench`],
//! `RKALLOC_IOC_BENCH`) and the trace replay ([`replay`],
//! `RKALLOC_IOC_REPLAY`).

pub(crate) mod bench;
pub(crate) mod replay;
