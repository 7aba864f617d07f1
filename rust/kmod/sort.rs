// SPDX-License-Identifier: GPL-2.0
//! An in-place heapsort for `u64`.
//!
//! core's `sort_unstable` compiles, in this module, to a quicksort that
//! objtool flags ("falls through to next function") because of how its
//! panic paths are laid out; a few lines of heapsort avoid that and keep
//! O(n log n) for the batch sizes the device accepts.

use kernel::prelude::*;

/// Sorts `v` ascending.
pub(crate) fn sort_u64(v: &mut [u64]) {
    let n = v.len();
    for start in (0..n / 2).rev() {
        sift_down(v, start, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

fn sift_down(v: &mut [u64], mut root: usize, end: usize) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && v[child] < v[child + 1] {
            child += 1;
        }
        if v[root] >= v[child] {
            return;
        }
        v.swap(root, child);
        root = child;
    }
}

#[kunit_tests(rkalloc_sort)]
mod tests {
    use super::*;

    #[test]
    fn sorts() {
        let mut v = [5u64, 1, 9, 1, 0, u64::MAX, 7, 3, 3, 2];
        sort_u64(&mut v);
        assert_eq!(v, [0, 1, 1, 2, 3, 3, 5, 7, 9, u64::MAX]);
        let mut e: [u64; 0] = [];
        sort_u64(&mut e);
        let mut x = [0u64; 97];
        let mut s = 12345u64;
        for y in x.iter_mut() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *y = s >> 33;
        }
        sort_u64(&mut x);
        assert!(x.windows(2).all(|w| w[0] <= w[1]));
    }
}
