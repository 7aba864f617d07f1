// SPDX-License-Identifier: GPL-2.0
//! The fit-policy heaps (`mm::heap`): one allocator per policy of the
//! core's table (`heap_first`, `heap_best`, ...), each run on a private
//! heap, compared with `kmalloc`. A policy added to the core's table shows
//! up here, in the benchmark, the replay and rkctl without an edit.

use super::api::{granted_exact, Allocator, Class, Descriptor};
use crate::{
    mm::{heap::HeapObj, region::MAX_REQUEST},
    rkcore::{frag::FragReport, heap::{HeapFlags, Policy}},
};
use core::ptr::NonNull;
use kernel::{prelude::*, str::CString, sync::Arc};

/// Registers one heap allocator per fit policy.
pub(super) fn register(add: &mut dyn FnMut(Descriptor) -> Result) -> Result {
    for p in Policy::ALL {
        add(Descriptor {
            name: CString::try_from_fmt(fmt!("heap_{}", p.short_name()))?,
            class: Class::Heap,
            kernel: false,
            peer: Some(c"kmalloc"),
            min_bytes: 1,
            max_bytes: MAX_REQUEST,
            frees_all: false,
            own_frag: true,
            checked: true,
            policy: Some((p.index() as u32, CString::try_from_fmt(fmt!("{}", p.name()))?)),
            granted: granted_exact,
            make: |env, d, _| {
                let policy = d.policy.as_ref().and_then(|(i, _)| Policy::from_index(*i as usize)).ok_or(EINVAL)?;
                // A private heap, growing without a budget (up to its 32
                // regions), listed nowhere.
                let heap = HeapObj::new(env.pool, 0, policy, HeapFlags::NONE, 0, u64::MAX)?;
                Ok(KBox::new(RkHeap(heap), GFP_KERNEL)?)
            },
        })?;
    }
    Ok(())
}

/// Number of fit policies (what `RKALLOC_IOC_HEAP_CREATE` takes).
pub(crate) fn nr_policies() -> u32 {
    Policy::COUNT as u32
}

/// The policy with index `i`.
pub(crate) fn policy(i: u32) -> Option<Policy> {
    Policy::from_index(i as usize)
}

/// The index of `p` in the table.
pub(crate) fn policy_index(p: Policy) -> u32 {
    p.index() as u32
}

/// A heap as the benchmark and the replay see it: addresses in, addresses
/// out (one lock round trip each).
struct RkHeap(Arc<HeapObj>);

impl Allocator for RkHeap {
    fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        self.0.alloc_addr(size, u64::MAX).ok()
    }

    unsafe fn free(&self, p: NonNull<u8>, _size: usize) {
        let _ = self.0.free_addr(p);
    }

    fn frag(&self) -> Option<FragReport> {
        Some(self.0.view().frag())
    }

    fn check(&self) -> Result {
        self.0.check()
    }

    fn live(&self) -> Option<u64> {
        Some(self.0.view().live())
    }
}
