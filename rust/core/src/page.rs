// SPDX-License-Identifier: GPL-2.0
//! Page geometry: the page size, the block orders, and the order that holds
//! a number of bytes.
//!
//! The kernel glue asserts at build time that these agree with the kernel
//! it is built for (`PAGE_SIZE`, `MAX_PAGE_ORDER`); the buddy allocator and
//! every user of page orders take them from here.

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// Largest block order, as x86's `MAX_PAGE_ORDER`; a buddy chunk is a block
/// of this order (4 MiB with 4 KiB pages).
pub const MAX_ORDER: u32 = 10;

/// Number of block orders, `0..=MAX_ORDER` (the kernel's `NR_PAGE_ORDERS`).
pub const NR_ORDERS: usize = MAX_ORDER as usize + 1;

/// The smallest page order whose block holds `bytes` bytes, or `None` for
/// 0 bytes (not a request: allocators built on orders refuse it) and above
/// [`MAX_ORDER`].
///
/// A handful of instructions (the bits of `bytes - 1` less the page shift),
/// as the benchmark harness calls it for every page allocation.
#[inline]
pub const fn order_for(bytes: usize) -> Option<u32> {
    if bytes == 0 {
        return None;
    }
    let bits = usize::BITS - (bytes - 1).leading_zeros();
    let order = bits.saturating_sub(PAGE_SHIFT);
    if order <= MAX_ORDER {
        Some(order)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order by its definition: the pages needed, rounded up to a power
    /// of two.
    fn reference(bytes: usize) -> Option<u32> {
        if bytes == 0 {
            return None;
        }
        let pages = bytes.div_ceil(PAGE_SIZE);
        let order = pages.checked_next_power_of_two()?.trailing_zeros();
        (order <= MAX_ORDER).then_some(order)
    }

    #[test]
    fn orders_at_every_boundary() {
        assert_eq!(order_for(0), None);
        assert_eq!(order_for(1), Some(0));
        assert_eq!(order_for(PAGE_SIZE), Some(0));
        assert_eq!(order_for(PAGE_SIZE + 1), Some(1));
        assert_eq!(order_for(PAGE_SIZE << MAX_ORDER), Some(MAX_ORDER));
        assert_eq!(order_for((PAGE_SIZE << MAX_ORDER) + 1), None);
        assert_eq!(order_for(usize::MAX), None);
        for order in 0..=MAX_ORDER + 2 {
            let block = PAGE_SIZE << order;
            for bytes in [block - 1, block, block + 1, block / 2 + 1] {
                assert_eq!(order_for(bytes), reference(bytes), "{bytes}");
            }
        }
    }

    #[test]
    fn matches_the_definition_on_a_sweep() {
        let mut bytes = 0usize;
        while bytes < (PAGE_SIZE << (MAX_ORDER + 1)) {
            assert_eq!(order_for(bytes), reference(bytes), "{bytes}");
            bytes += 97;
        }
    }
}
