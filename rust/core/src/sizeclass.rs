// SPDX-License-Identifier: GPL-2.0
//! kmalloc-style size classes.
//!
//! Requests are rounded up to one of [`CLASSES`], each served by its own
//! slab cache. The classes match kmalloc's (`kmalloc-8` .. `kmalloc-8k`,
//! including the 96 and 192 byte caches that cut the waste of the sizes
//! just above 64 and 128), so the two can be compared class by class.

/// Object sizes of the classes, ascending.
pub const CLASSES: [usize; 13] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];

/// Number of classes.
pub const NR_CLASSES: usize = CLASSES.len();

/// Largest size served by a class; bigger requests go to the page pool.
pub const MAX_CLASS_SIZE: usize = CLASSES[NR_CLASSES - 1];

// Every class must be a valid slab object size.
const _: () = assert!(MAX_CLASS_SIZE == super::slab::MAX_OBJECT_SIZE);

/// Class index for sizes 1..=192, indexed by `(size - 1) / 8`. Like
/// kmalloc's `size_index`: the 96 and 192 byte classes break the power of
/// two pattern, so small sizes use a table instead of arithmetic.
const SIZE_INDEX: [u8; 24] = [
    0, // 1..=8
    1, // 9..=16
    2, 2, // 17..=32
    3, 3, 3, 3, // 33..=64
    4, 4, 4, 4, // 65..=96
    5, 5, 5, 5, // 97..=128
    6, 6, 6, 6, 6, 6, 6, 6, // 129..=192
];

/// Index of the smallest class holding `size` bytes, in O(1); `None` for 0
/// and for sizes above [`MAX_CLASS_SIZE`].
pub fn class_index(size: usize) -> Option<usize> {
    if size == 0 || size > MAX_CLASS_SIZE {
        return None;
    }
    if size <= 192 {
        return SIZE_INDEX.get((size - 1) / 8).map(|&i| usize::from(i));
    }
    // Power-of-two classes from 256 (index 7, 2^8) up: index is
    // ceil(log2(size)) - 1. size - 1 >= 192, so the log is 8..=13.
    let ceil_log2 = usize::BITS - (size - 1).leading_zeros();
    Some(ceil_log2 as usize - 1)
}

/// Object size of class `index`, or `None` past the last class.
pub fn class_size(index: usize) -> Option<usize> {
    CLASSES.get(index).copied()
}

/// The size a request of `size` bytes is rounded up to (kmalloc's
/// `kmalloc_size_roundup`), or `None` if no class serves it.
pub fn round_up(size: usize) -> Option<usize> {
    class_index(size).and_then(class_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_the_smallest_fitting_class() {
        for size in 1..=MAX_CLASS_SIZE {
            let want = CLASSES.iter().position(|&c| c >= size);
            assert_eq!(class_index(size), want, "size {size}");
            let i = want.unwrap();
            assert!(CLASSES[i] >= size);
            assert!(i == 0 || CLASSES[i - 1] < size, "size {size}");
        }
    }

    #[test]
    fn out_of_range_sizes_have_no_class() {
        for size in [0, MAX_CLASS_SIZE + 1, 16384, usize::MAX / 2, usize::MAX] {
            assert_eq!(class_index(size), None, "size {size}");
            assert_eq!(round_up(size), None);
        }
    }

    #[test]
    fn boundaries() {
        let cases = [
            (1, 8),
            (8, 8),
            (9, 16),
            (64, 64),
            (65, 96),
            (96, 96),
            (97, 128),
            (129, 192),
            (192, 192),
            (193, 256),
            (257, 512),
            (4097, 8192),
            (8192, 8192),
        ];
        for (size, class) in cases {
            assert_eq!(round_up(size), Some(class), "size {size}");
        }
    }

    #[test]
    fn class_size_matches_table() {
        for (i, &c) in CLASSES.iter().enumerate() {
            assert_eq!(class_size(i), Some(c));
            assert_eq!(class_index(c), Some(i));
        }
        assert_eq!(class_size(NR_CLASSES), None);
        assert!(CLASSES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn every_class_has_a_slab_layout() {
        use super::super::slab::{Flags, Layout};
        for &c in &CLASSES {
            let l = Layout::new(c, 8, Flags::empty()).unwrap();
            assert_eq!(l.obj_size(), c);
            // Power-of-two and 96/192 classes pack without padding.
            assert_eq!(l.stride(), c);
        }
    }
}
