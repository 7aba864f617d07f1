// SPDX-License-Identifier: GPL-2.0
//! An in-place heapsort for `u64`.
//!
//! core's `sort_unstable` compiles, in the kernel module, to a quicksort
//! that objtool flags ("falls through to next function") because of how its
//! panic paths are laid out; a few lines of heapsort avoid that and keep
//! O(n log n) for the batch sizes the device accepts.

/// Sorts `v` ascending.
pub fn sort_u64(v: &mut [u64]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn sorts_edge_cases() {
        let mut v = [5u64, 1, 9, 1, 0, u64::MAX, 7, 3, 3, 2];
        sort_u64(&mut v);
        assert_eq!(v, [0, 1, 1, 2, 3, 3, 5, 7, 9, u64::MAX]);
        let mut e: [u64; 0] = [];
        sort_u64(&mut e);
        let mut one = [7u64];
        sort_u64(&mut one);
        assert_eq!(one, [7]);
    }

    #[test]
    fn sorts_like_std() {
        let mut s = 12345u64;
        for n in 0..200 {
            let mut x: Vec<u64> = (0..n)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    s >> 40
                })
                .collect();
            let mut y = x.clone();
            sort_u64(&mut x);
            y.sort_unstable();
            assert_eq!(x, y);
        }
    }
}
