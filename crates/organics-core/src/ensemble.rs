//! Seeded random circuits.
//!
//! [`fig4`] draws the paper's Fig. 4 ensemble (docs/model.md#figures): for N principal neurons,
//! `b, b0, σ ~ U(0,1)^N`, `τ_y = τ_a = 2` (ms), `W ~ U(0,1)^{N×N}`, `z ~ N(0, I)` normalised to
//! `‖z‖ = 1`, and `W_r = G / σ_max(G)` with `G ~ N(0,1)^{N×N}` scaled to a chosen
//! largest singular value. [`theorem`] draws the hypotheses of the W_r = I stability theorem
//! over wide scales. Every draw takes an explicit seed (ChaCha8).

use crate::error::CoreError;
use crate::params::{Circuit, CircuitParts, Model, Recurrence};
use crate::steady_state::iterative::spectral_norm;
use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Draw from U(0,1) excluding 0, so that gains are strictly positive.
fn open_unit(rng: &mut ChaCha8Rng) -> f64 {
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            return u;
        }
    }
}

/// One circuit of the Fig. 4 ensemble with `n` neurons and `‖W_r‖₂ = wr_norm`.
///
/// # Errors
/// [`CoreError::Empty`] for `n = 0`; [`CoreError::Singular`] if the SVD fails.
pub fn fig4(model: Model, n: usize, wr_norm: f64, seed: u64) -> Result<Circuit, CoreError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let vec_u = |rng: &mut ChaCha8Rng| (0..n).map(|_| open_unit(rng)).collect::<Vec<_>>();
    let b = vec_u(&mut rng);
    let b0 = vec_u(&mut rng);
    let sigma = vec_u(&mut rng);
    let w = Mat::from_fn(n, n, |_, _| rng.random::<f64>());
    let g = Mat::from_fn(n, n, |_, _| StandardNormal.sample(&mut rng));
    let scale = if n == 0 {
        1.0
    } else {
        wr_norm / spectral_norm(&g)?
    };
    let w_r = Mat::from_fn(n, n, |i, j| g[(i, j)] * scale);
    let mut z: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    z.iter_mut().for_each(|v| *v /= norm);
    Circuit::new(CircuitParts {
        model,
        tau_y: vec![2.0; n],
        tau_a: vec![2.0; n],
        b,
        b0,
        sigma,
        w_r: Recurrence::Dense(w_r),
        w,
        z,
    })
}

/// A random circuit satisfying the hypotheses of the W_r = I theorem (docs/model.md#stability-theorem), across wide
/// scales: W entries ~ U(0,1)·10^U(−2,2) (with about a third of them zero, for sparse W),
/// z ~ N(0,1)·10^U(−2,2) (any sign), b, b0, σ ~ 10^U(−1,1), τ_y = 10^U(−1,1) and
/// τ_a = τ_y · 10^U(−2,2) (ratios from 1/100 to 100).
pub fn theorem(model: Model, n: usize, seed: u64) -> Result<Circuit, CoreError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let log_u =
        |rng: &mut ChaCha8Rng, lo: f64, hi: f64| 10f64.powf(lo + (hi - lo) * rng.random::<f64>());
    let w_scale = log_u(&mut rng, -2.0, 2.0);
    let z_scale = log_u(&mut rng, -2.0, 2.0);
    let w = Mat::from_fn(n, n, |_, _| {
        if rng.random::<f64>() < 1.0 / 3.0 {
            0.0
        } else {
            w_scale * rng.random::<f64>()
        }
    });
    let z: Vec<f64> = (0..n)
        .map(|_| {
            let g: f64 = StandardNormal.sample(&mut rng);
            z_scale * g
        })
        .collect();
    let mut per = |lo, hi| (0..n).map(|_| log_u(&mut rng, lo, hi)).collect::<Vec<_>>();
    let b = per(-1.0, 1.0);
    let b0 = per(-1.0, 1.0);
    let sigma = per(-1.0, 1.0);
    let tau_y = per(-1.0, 1.0);
    let ratio = per(-2.0, 2.0);
    let tau_a = tau_y.iter().zip(&ratio).map(|(t, r)| t * r).collect();
    Circuit::new(CircuitParts {
        model,
        tau_y,
        tau_a,
        b,
        b0,
        sigma,
        w_r: Recurrence::Identity,
        w,
        z,
    })
}
