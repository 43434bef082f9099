//! [`ParamSet::global_norm`] sums the squares in a fixed blocked order (blocks of
//! [`NORM_BLOCK`] entries, eight lanes a block), so that the blocks can run in parallel and
//! the additions need not wait on each other. These tests check that the result does not
//! depend on where it runs, and that it is `sqrt(Σ x²)` within the rounding that order allows.

use organics_grad::ParamSet;
use organics_grad::params::NORM_BLOCK;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tensors whose lengths cut blocks and lanes everywhere (one entry, fewer than eight, exactly
/// one block, one block and a few, many blocks and a short one), values spread over 24 binary
/// orders of magnitude so that the order of the additions matters to the last bits.
fn awkward_set(seed: u64) -> ParamSet<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut set = ParamSet::new();
    for (k, len) in [
        1,
        7,
        8,
        NORM_BLOCK - 1,
        NORM_BLOCK,
        NORM_BLOCK + 3,
        64 * NORM_BLOCK + 5,
    ]
    .into_iter()
    .enumerate()
    {
        let data = (0..len)
            .map(|_| {
                let scale = 2f32.powi(rng.random_range(-12..12));
                (rng.random::<f32>() * 2.0 - 1.0) * scale
            })
            .collect();
        set.push(&format!("t{k}"), len, 1, data);
    }
    set
}

/// `Σ x²` to within one rounding: the squares of `f32` values are exact in `f64` (a 24-bit
/// significand squared fits in 53 bits), and a compensated (Neumaier) sum of non-negative
/// terms is correct to about one unit in the last place.
fn reference_sum_of_squares(set: &ParamSet<f32>) -> f64 {
    let (mut sum, mut carry) = (0.0f64, 0.0f64);
    for t in set.tensors() {
        for &x in &t.data {
            let term = f64::from(x) * f64::from(x);
            let next = sum + term;
            carry += if sum >= term {
                (sum - next) + term
            } else {
                (term - next) + sum
            };
            sum = next;
        }
    }
    sum + carry
}

#[test]
fn the_norm_is_the_same_to_the_bit_on_any_pool() {
    let set = awkward_set(11);
    let here = set.global_norm();
    for threads in [1, 2, 3, 5] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let there = pool.install(|| set.global_norm());
        assert_eq!(
            here.to_bits(),
            there.to_bits(),
            "{threads} threads: {there} against {here} off the pool"
        );
    }
}

#[test]
fn the_norm_is_sqrt_of_the_sum_of_squares_within_the_rounding_of_its_order() {
    for seed in 0..4 {
        let set = awkward_set(seed);
        let exact = reference_sum_of_squares(&set);
        let n = set.num_scalars();
        let blocks: usize = set
            .tensors()
            .iter()
            .map(|t| t.data.len().div_ceil(NORM_BLOCK))
            .sum();
        // Every partial sum of non-negative terms is at most the total, so each addition
        // errs by at most u·Σx² (u = 2⁻⁵³). The longest chain of additions any square goes
        // through: NORM_BLOCK / 8 in its lane, 3 combining the lanes, one per block after.
        // The square root halves a relative error and adds one rounding of its own.
        let chain = NORM_BLOCK / 8 + 3 + blocks;
        let u = f64::EPSILON / 2.0;
        let bound = (chain as f64 / 2.0 + 1.0) * u;
        let norm = set.global_norm();
        let rel = (norm - exact.sqrt()).abs() / exact.sqrt();
        assert!(
            rel <= bound,
            "seed {seed}: relative error {rel:e} over the bound {bound:e} ({n} entries)"
        );
    }
}
