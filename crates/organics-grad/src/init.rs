//! Seeded initialisers of every model in the workspace (PyTorch's defaults, drawn from
//! ChaCha8 instead of torch's generator), in `f32`: the values the trained models start from.
//!
//! - `kaiming_uniform(a = √5)` of an `out x in` weight: `U(−1/√in, 1/√in)`;
//! - a `Linear` bias: `U(−1/√in, 1/√in)`;
//! - `orthogonal` (gain 1): Gram–Schmidt on Gaussian rows;
//! - [`largest_singular_value`]: power iteration on `AᵀA` in `f64`, used to scale an input
//!   matrix to unit spectral norm at initialisation.
//!
//! Each sampler consumes the generator in a fixed order, so a model's initial values are a
//! function of its seed alone.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Power iterations of [`largest_singular_value`]: the ratio of the two largest squared
/// singular values of a random `n x m` matrix is well below 1 for the shapes used, so 200
/// iterations converge to `f32` precision.
pub const SINGULAR_VALUE_ITERATIONS: usize = 200;

/// `U(−bound, bound)` samples.
pub fn uniform(rng: &mut ChaCha8Rng, len: usize, bound: f32) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound)
        .collect()
}

/// PyTorch's `kaiming_uniform_(a = √5)` for an `out x fan_in` weight: `U(±1/√fan_in)`.
pub fn kaiming_uniform(rng: &mut ChaCha8Rng, out: usize, fan_in: usize) -> Vec<f32> {
    uniform(rng, out * fan_in, 1.0 / (fan_in as f32).sqrt())
}

/// Standard normal samples (drawn in `f64`, rounded to `f32`).
pub fn normal(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            z as f32
        })
        .collect()
}

/// `U(0, 1)` samples.
pub fn unit_uniform(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random::<f32>()).collect()
}

/// The `n x n` identity, row-major.
#[must_use]
pub fn identity(n: usize) -> Vec<f32> {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        m[i * n + i] = 1.0;
    }
    m
}

/// A random `n x n` orthogonal matrix (Gram–Schmidt on Gaussian rows, in f64), as PyTorch's
/// `orthogonal_` with gain 1 draws one.
pub fn orthogonal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    while q.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
        // Two Gram–Schmidt passes keep the rows orthogonal to working precision.
        for _ in 0..2 {
            for u in &q {
                let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                for (vi, ui) in v.iter_mut().zip(u) {
                    *vi -= d * ui;
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    q.into_iter().flatten().map(|x| x as f32).collect()
}

/// Largest singular value of a row-major `rows x cols` matrix: [`SINGULAR_VALUE_ITERATIONS`]
/// power iterations on `AᵀA` from the all-ones vector, in `f64`; `0` for a matrix that maps
/// the iterate to zero.
#[must_use]
pub fn largest_singular_value(a: &[f32], rows: usize, cols: usize) -> f32 {
    let mut v = vec![1.0f64; cols];
    let mut sigma = 0.0f64;
    for _ in 0..SINGULAR_VALUE_ITERATIONS {
        let av: Vec<f64> = (0..rows)
            .map(|i| (0..cols).map(|j| f64::from(a[i * cols + j]) * v[j]).sum())
            .collect();
        let atav: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| f64::from(a[i * cols + j]) * av[i]).sum())
            .collect();
        let norm = atav.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        v = atav.into_iter().map(|x| x / norm).collect();
        sigma = norm.sqrt();
    }
    sigma as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn largest_singular_value_of_a_scaled_orthogonal_matrix_is_its_scale() {
        // Q orthogonal: every singular value of 3Q is 3; the power iteration converges in one
        // step (AᵀA = 9I). Tolerance: f32 rounding of the entries of 3Q, relative ~1e-7.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let q: Vec<f32> = orthogonal(&mut rng, 5)
            .into_iter()
            .map(|x| 3.0 * x)
            .collect();
        assert!((largest_singular_value(&q, 5, 5) - 3.0).abs() < 1e-5);
        // A rank-one 2 x 3 matrix u vᵀ has the single singular value ‖u‖‖v‖ = √5 · √14.
        let (u, v) = ([1.0f32, 2.0], [1.0f32, 2.0, 3.0]);
        let a: Vec<f32> = u
            .iter()
            .flat_map(|&x| v.iter().map(move |&y| x * y))
            .collect();
        let want = (5.0f32 * 14.0).sqrt();
        assert!((largest_singular_value(&a, 2, 3) - want).abs() < 1e-5 * want);
    }
}
