// SPDX-License-Identifier: GPL-2.0
//! The one pseudo-random generator of rkalloc: SplitMix64.
//!
//! Everything that needs cheap, repeatable randomness uses it: the slab's
//! shuffled free lists, the heap's and the slab's tests, the host benchmark's
//! traces, and the kernel glue's benchmark and KUnit tests. It is not for
//! anything an adversary may try to predict.
//!
//! SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014; the generator of Java's `SplittableRandom`, and
//! the one Vigna recommends for seeding xoshiro) adds a Weyl constant to a
//! 64-bit counter and hashes it. It has a period of 2^64, passes BigCrush,
//! takes any seed (0 included) and costs a handful of instructions: no
//! division, no floating point, no state beyond one word.

/// A SplitMix64 generator.
///
/// The sequence depends only on the seed, on every target, so a test or a
/// trace made from a seed is the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// The Weyl increment: 2^64 divided by the golden ratio, odd.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// A generator seeded with `seed`; every value, 0 included, is a good
    /// seed.
    pub const fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number uniform in `0..n`, or 0 if `n` is 0.
    ///
    /// Lemire's multiply-shift (the high word of a 64 x 64-bit product):
    /// no division, and a bias below `n / 2^64`, far below anything a test
    /// or a benchmark could see.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// [`Rng::below`] for indexes: a number uniform in `0..n`, or 0 if `n`
    /// is 0.
    #[inline]
    pub fn index(&mut self, n: usize) -> usize {
        // Lossless both ways: usize has at most 64 bits, and the result is
        // below `n`.
        self.below(n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference outputs of SplitMix64 from seed 0, as published with
    /// the algorithm (Vigna's splitmix64.c gives the same).
    #[test]
    fn matches_the_reference_sequence() {
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
        let mut r = Rng::new(1234567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(7);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.index(0), 0);
        assert_eq!(r.below(1), 0);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let x = r.below(10);
            assert!(x < 10);
            seen[x as usize] += 1;
        }
        // Each value about 1000 times; 800 is more than 6 sigma away.
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        for _ in 0..1000 {
            assert!(r.below(u64::MAX) < u64::MAX);
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
