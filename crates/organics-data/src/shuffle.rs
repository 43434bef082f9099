//! Seeded permutations: the one source of randomness in this crate.
//!
//! A permutation `π` of `{0, …, n−1}` is drawn by the Fisher–Yates shuffle
//!
//! $$ \text{for } i = n-1, \dots, 1:\quad j \sim \mathcal U\{0, \dots, i\},\quad
//!    \text{swap}(\pi_i, \pi_j), $$
//!
//! starting from the identity. The uniform integers come from a ChaCha8 stream with an
//! unbiased bounded draw (Lemire's widening multiply with rejection), written here so that the
//! result depends only on the ChaCha8 key stream and this file, not on how `rand` maps words to
//! ranges in a given release.
//!
//! Each use gets its own ChaCha8 key: the 32-byte seed is
//! `seed (8 bytes LE) ‖ stream (8 bytes LE) ‖ purpose tag (16 bytes)`, so the training split,
//! the pixel permutation and the epoch shuffles never share a stream even when they share the
//! user's seed (the paper uses 73 for both the split and the permutation).
//!
//! **These permutations are not PyTorch's.** The paper draws its split with
//! `random_split(generator = manual_seed(73))` and its pixel permutation with
//! `torch.randperm(784, generator = manual_seed(73))`, both on torch's Mersenne-Twister-based
//! generator. We use ChaCha8, so seed 73 gives a different (equally random) split and
//! permutation. Results are comparable in distribution, not sample for sample.
//!
//! ```
//! use organics_data::shuffle::{permutation, Purpose};
//!
//! let p = permutation(784, Purpose::PixelPermutation, 73, 0);
//! let mut sorted = p.clone();
//! sorted.sort_unstable();
//! assert!(sorted.iter().enumerate().all(|(i, &v)| v as usize == i));
//! assert_eq!(p, permutation(784, Purpose::PixelPermutation, 73, 0));
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a permutation is for; each purpose keys its own ChaCha8 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The train/validation split of a dataset.
    Split,
    /// The fixed pixel permutation of permuted-sequential MNIST.
    PixelPermutation,
    /// The order of samples within one epoch (`stream` is the epoch).
    EpochShuffle,
}

impl Purpose {
    fn tag(self) -> &'static [u8; 16] {
        match self {
            Purpose::Split => b"organics:split\0\0",
            Purpose::PixelPermutation => b"organics:pixperm",
            Purpose::EpochShuffle => b"organics:epoch\0\0",
        }
    }
}

/// The ChaCha8 generator for `purpose`, `seed` and `stream` (see the module doc for the key).
pub fn rng(purpose: Purpose, seed: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&stream.to_le_bytes());
    key[16..].copy_from_slice(purpose.tag());
    ChaCha8Rng::from_seed(key)
}

/// A uniform integer in `0..=bound` (unbiased).
fn uniform_inclusive(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    if bound == u64::MAX {
        return rng.next_u64();
    }
    let range = bound + 1;
    // Lemire: the high word of x * range is uniform once the low word clears the threshold.
    let threshold = range.wrapping_neg() % range;
    loop {
        let wide = u128::from(rng.next_u64()) * u128::from(range);
        if (wide as u64) >= threshold {
            return (wide >> 64) as u64;
        }
    }
}

/// Shuffles `items` in place with Fisher–Yates driven by `rng`.
pub fn shuffle_in_place<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = uniform_inclusive(rng, i as u64) as usize;
        items.swap(i, j);
    }
}

/// A permutation of `0..len` for `purpose`, `seed` and `stream`, as `u32` indices.
///
/// # Panics
/// If `len` exceeds `u32::MAX` (no dataset here comes close).
pub fn permutation(len: usize, purpose: Purpose, seed: u64, stream: u64) -> Vec<u32> {
    let len = u32::try_from(len).expect("permutation length fits in u32");
    let mut p: Vec<u32> = (0..len).collect();
    shuffle_in_place(&mut p, &mut rng(purpose, seed, stream));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_draw_is_in_range_and_hits_every_value() {
        let mut r = rng(Purpose::Split, 1, 0);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            let v = uniform_inclusive(&mut r, 6);
            seen[v as usize] += 1;
        }
        // Each of the 7 values expects 1000 hits, standard deviation ~29; 800 is ~7 sigma away.
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }

    #[test]
    fn shuffle_positions_are_uniform() {
        // Over many shuffles of 0..4, element 0 should land in each position ~1/4 of the time.
        let mut counts = [0usize; 4];
        let mut r = rng(Purpose::EpochShuffle, 5, 0);
        for _ in 0..8000 {
            let mut v = [0, 1, 2, 3];
            shuffle_in_place(&mut v, &mut r);
            counts[v.iter().position(|&x| x == 0).unwrap()] += 1;
        }
        // Expected 2000 each, sd ~39; 1750 is > 6 sigma away.
        assert!(counts.iter().all(|&c| c > 1750), "{counts:?}");
    }

    #[test]
    fn purposes_streams_and_seeds_give_different_permutations() {
        let base = permutation(100, Purpose::Split, 73, 0);
        assert_ne!(base, permutation(100, Purpose::PixelPermutation, 73, 0));
        assert_ne!(base, permutation(100, Purpose::Split, 74, 0));
        assert_ne!(base, permutation(100, Purpose::Split, 73, 1));
        assert_eq!(base, permutation(100, Purpose::Split, 73, 0));
    }
}
