// SPDX-License-Identifier: GPL-2.0
//! Fragmentation figures against values worked out by hand from the
//! formulas of `mm/vmstat.c` (integer division truncates, as `div_u64`).

use rkalloc_core::buddy::NR_ORDERS;
use rkalloc_core::frag::{
    contig_info, extfrag_for_order, extfrag_index, unusable_index, ContigInfo, FragReport, Milli,
};

/// A buddyinfo row from (order, blocks) pairs.
fn row(pairs: &[(usize, u32)]) -> [u32; NR_ORDERS] {
    let mut r = [0; NR_ORDERS];
    for &(order, n) in pairs {
        r[order] = n;
    }
    r
}

#[test]
fn nothing_free() {
    let free = [0; NR_ORDERS];
    for order in 0..=10 {
        // No free memory: all of it "unusable", and no fragmentation index.
        assert_eq!(unusable_index(&free, order), 1000);
        assert_eq!(extfrag_index(&free, order), 0);
        assert_eq!(extfrag_for_order(&free, order), 0);
    }
}

#[test]
fn one_whole_chunk() {
    let free = row(&[(10, 1)]);
    for order in 0..=10 {
        assert_eq!(unusable_index(&free, order), 0, "order {order}");
        assert_eq!(extfrag_index(&free, order), -1000, "order {order}");
        assert_eq!(extfrag_for_order(&free, order), 0);
    }
}

/// Half the pages free as single pages (the pessimistic test's state).
#[test]
fn checkerboard_of_single_pages() {
    let free = row(&[(0, 512)]);
    assert_eq!(unusable_index(&free, 0), 0);
    assert_eq!(extfrag_index(&free, 0), -1000);
    // free_pages 512, suitable 0: 512 * 1000 / 512.
    assert_eq!(unusable_index(&free, 1), 1000);
    // 1000 - (1000 + 512000 / 2) / 512 = 1000 - 257000 / 512 = 1000 - 501.
    assert_eq!(extfrag_index(&free, 1), 499);
    // 1000 - (1000 + 512000 / 4) / 512 = 1000 - 129000 / 512 = 1000 - 251.
    assert_eq!(extfrag_index(&free, 2), 749);
    // 1000 - (1000 + 512000 / 1024) / 512 = 1000 - 1500 / 512 = 1000 - 2.
    assert_eq!(extfrag_index(&free, 10), 998);
    assert_eq!(extfrag_for_order(&free, 1), 100);
}

/// Three single pages, two order-1 and one order-2 block: 11 pages in 6
/// blocks.
#[test]
fn mixed_row() {
    let free = row(&[(0, 3), (1, 2), (2, 1)]);
    assert_eq!(
        contig_info(&free, 1),
        ContigInfo {
            free_pages: 11,
            free_blocks_total: 6,
            free_blocks_suitable: 2 + 2,
        }
    );
    assert_eq!(unusable_index(&free, 0), 0);
    // (11 - 4 * 2) * 1000 / 11 = 3000 / 11.
    assert_eq!(unusable_index(&free, 1), 272);
    // (11 - 1 * 4) * 1000 / 11 = 7000 / 11.
    assert_eq!(unusable_index(&free, 2), 636);
    assert_eq!(unusable_index(&free, 3), 1000);
    assert_eq!(extfrag_index(&free, 2), -1000);
    // 1000 - (1000 + 11000 / 8) / 6 = 1000 - 2375 / 6 = 1000 - 395.
    assert_eq!(extfrag_index(&free, 3), 605);
    // 1000 - (1000 + 11000 / 16) / 6 = 1000 - 1687 / 6 = 1000 - 281.
    assert_eq!(extfrag_index(&free, 4), 719);
    // (11 - 8) * 100 / 11.
    assert_eq!(extfrag_for_order(&free, 1), 27);
    assert_eq!(extfrag_for_order(&free, 3), 100);
}

/// The kernel's formula goes negative with very few blocks; kept as is.
#[test]
fn few_blocks_give_negative_index() {
    let free = row(&[(0, 1)]);
    // 1000 - (1000 + 1000 / 2) / 1.
    assert_eq!(extfrag_index(&free, 1), -500);
}

#[test]
fn out_of_range_inputs_do_not_panic() {
    let full = [u32::MAX; NR_ORDERS];
    for order in [0, 5, 10, 11, 63, 64, u32::MAX] {
        let u = unusable_index(&full, order);
        let e = extfrag_index(&full, order);
        let p = extfrag_for_order(&full, order);
        assert!((0..=1000).contains(&u), "order {order}: {u}");
        assert!((-1000..=1000).contains(&e), "order {order}: {e}");
        assert!(p <= 100);
    }
    // Past MAX_ORDER nothing is suitable; the kernel WARNs and returns 0.
    assert_eq!(unusable_index(&full, 11), 1000);
    assert_eq!(extfrag_index(&full, 11), 0);
    // Entries past a buddyinfo row are ignored; a short row is fine.
    let mut long = [0u32; 40];
    long[20] = 7;
    assert_eq!(unusable_index(&long, 0), 1000);
    assert_eq!(unusable_index(&[4], 0), 0);
    assert_eq!(unusable_index(&[], 0), 1000);
}

#[test]
fn milli_prints_like_the_kernel() {
    let s = |v: i32| Milli(v).to_string();
    assert_eq!(s(0), "0.000");
    assert_eq!(s(-1000), "-1.000");
    assert_eq!(s(875), "0.875");
    assert_eq!(s(1000), "1.000");
    assert_eq!(s(5), "0.005");
    assert_eq!(s(272), "0.272");
    assert_eq!(s(12_345), "12.345");
    assert_eq!(s(-500), "-0.500");
    assert_eq!(s(i32::MIN), "-2147483.648");
    assert_eq!(s(i32::MAX), "2147483.647");
    // The extfrag_index column, "%2d.%03d".
    assert_eq!(format!("{:>6}", Milli(875)), " 0.875");
    assert_eq!(format!("{:>6}", Milli(-1000)), "-1.000");
}

#[test]
fn frag_report() {
    let r = FragReport {
        requested_bytes: 700,
        handed_out_bytes: 1024,
        metadata_bytes: 64,
        free_bytes: 4096,
        largest_free_bytes: 512,
    };
    assert_eq!(r.internal_bytes(), 324);
    // 324 * 1000 / 1024.
    assert_eq!(r.internal_permille(), 316);
    assert_eq!(r.overhead_bytes(), 388);
    // 1000 - 512 * 1000 / 4096 = 1000 - 125.
    assert_eq!(r.external_permille(), 875);
    assert!(r.can_serve(0) && r.can_serve(512));
    assert!(!r.can_serve(513));

    let empty = FragReport::EMPTY;
    assert_eq!(empty, FragReport::default());
    assert_eq!(empty.internal_bytes(), 0);
    assert_eq!(empty.internal_permille(), 0);
    assert_eq!(empty.external_permille(), 0);
    assert!(empty.can_serve(0) && !empty.can_serve(1));

    let one_extent = FragReport {
        free_bytes: 8192,
        largest_free_bytes: 8192,
        ..FragReport::EMPTY
    };
    assert_eq!(one_extent.external_permille(), 0);

    // Huge values take the overflow-free path and stay exact enough.
    let huge = FragReport {
        requested_bytes: 0,
        handed_out_bytes: u64::MAX,
        free_bytes: u64::MAX,
        largest_free_bytes: u64::MAX / 4,
        metadata_bytes: u64::MAX,
    };
    assert_eq!(huge.internal_permille(), 1000);
    // Exactly: 1000 - floor((2^62 - 1) * 1000 / (2^64 - 1)) = 1000 - 249.
    assert_eq!(huge.external_permille(), 751);
    let quarter = FragReport {
        free_bytes: 1 << 62,
        largest_free_bytes: 1 << 60,
        ..FragReport::EMPTY
    };
    assert_eq!(quarter.external_permille(), 750);
    assert_eq!(huge.overhead_bytes(), u64::MAX);
    // A filler's mistake (largest > free) neither panics nor underflows.
    let wrong = FragReport {
        requested_bytes: 10,
        handed_out_bytes: 5,
        free_bytes: 10,
        largest_free_bytes: 20,
        ..FragReport::EMPTY
    };
    assert_eq!(wrong.external_permille(), 0);
    assert_eq!(wrong.internal_bytes(), 0);
}
