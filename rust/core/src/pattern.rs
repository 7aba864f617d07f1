// SPDX-License-Identifier: GPL-2.0
//! The fill pattern that proves allocations never overlap and are never
//! corrupted: every byte depends on the pattern's seed and its offset, so a
//! block written by someone else (an overlapping block, a stray write)
//! shows up when its owner verifies it. Used by `RKALLOC_IOC_FILL`/`VERIFY`
//! and by the conformance runs.

/// The byte at offset `i` of a block filled with `pattern`.
#[inline]
pub fn byte(pattern: u32, i: usize) -> u8 {
    let x = (i as u32).wrapping_mul(0x9e37_79b1) ^ pattern.wrapping_mul(0x85eb_ca6b);
    (x >> 24) as u8 ^ (x >> 8) as u8
}

/// Fills `mem` with `pattern`.
pub fn fill(mem: &mut [u8], pattern: u32) {
    for (i, b) in mem.iter_mut().enumerate() {
        *b = byte(pattern, i);
    }
}

/// Checks `mem` against `pattern`: the number of differing bytes and the
/// offset of the first (`u64::MAX` when none).
pub fn verify(mem: &[u8], pattern: u32) -> (u64, u64) {
    let mut n = 0u64;
    let mut first = u64::MAX;
    for (i, b) in mem.iter().enumerate() {
        if *b != byte(pattern, i) {
            if n == 0 {
                first = i as u64;
            }
            n += 1;
        }
    }
    (n, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_verifies_and_a_change_shows() {
        let mut m = [0u8; 300];
        fill(&mut m, 7);
        assert_eq!(verify(&m, 7), (0, u64::MAX));
        m[123] ^= 1;
        assert_eq!(verify(&m, 7), (1, 123));
    }

    #[test]
    fn patterns_differ_and_blocks_do_not_repeat() {
        // Two blocks with different patterns differ in most bytes, so an
        // overlap between them cannot go unseen.
        let (mut a, mut b) = ([0u8; 256], [0u8; 256]);
        fill(&mut a, 1);
        fill(&mut b, 2);
        let same = a.iter().zip(b.iter()).filter(|(x, y)| x == y).count();
        assert!(same < 16, "{same} equal bytes");
        assert!(verify(&b, 1).0 > 200);
    }
}
