//! Spectral-norm parametrisation `W ↦ W / σ(W)`, as PyTorch's
//! `torch.nn.utils.parametrizations.spectral_norm` computes it.
//!
//! Two persistent unit vectors `u ∈ ℝ^rows`, `v ∈ ℝ^cols` estimate the leading singular pair.
//! One power iteration (done in training mode before each forward pass, outside the
//! differentiated graph) is
//!
//! ```text
//! u ← W v / max(‖W v‖, ε),      v ← Wᵀ u / max(‖Wᵀ u‖, ε),      ε = 10⁻¹²,
//! ```
//!
//! and the parametrised weight is
//!
//! ```text
//! W̄ = W / σ,      σ = uᵀ W v .
//! ```
//!
//! The gradient treats `u` and `v` as constants (PyTorch computes them under `no_grad`) but
//! differentiates through `σ`:
//!
//! ```text
//! ∂L/∂W = G / σ − (⟨G, W⟩ / σ²) u vᵀ,      G = ∂L/∂W̄.
//! ```
//!
//! At construction `u`, `v` are drawn from N(0, 1), normalised, and refined by 15 power
//! iterations, as PyTorch does when the parametrisation is registered.

use crate::scalar::Scalar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// The `ε` of PyTorch's `F.normalize` inside the power iteration.
pub const NORMALIZE_EPS: f64 = 1e-12;

/// Power iterations performed when the parametrisation is created (PyTorch's value).
pub const INITIAL_POWER_ITERATIONS: usize = 15;

/// Whether a forward pass refines the singular-vector estimate first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerIteration {
    /// Training mode: one power iteration, then normalise (PyTorch's `n_power_iterations = 1`).
    Update,
    /// Evaluation mode, and gradient checks: use `u`, `v` as they are.
    Frozen,
}

/// Persistent singular-vector estimates of one spectrally normalised `rows x cols` matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SpectralNorm<S: Scalar> {
    /// Rows of the matrix.
    pub rows: usize,
    /// Columns of the matrix.
    pub cols: usize,
    /// Left singular-vector estimate (length `rows`).
    pub u: Vec<S>,
    /// Right singular-vector estimate (length `cols`).
    pub v: Vec<S>,
}

impl<S: Scalar> SpectralNorm<S> {
    /// Random unit `u`, `v` (seeded), refined by [`INITIAL_POWER_ITERATIONS`] iterations on `w`.
    ///
    /// # Panics
    /// If `w.len() != rows * cols`.
    #[track_caller]
    pub fn new(w: &[S], rows: usize, cols: usize, seed: u64) -> Self {
        assert_eq!(w.len(), rows * cols, "spectral norm: weight length");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut draw = |len: usize| -> Vec<S> {
            let mut x: Vec<S> = (0..len)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    S::from_f64(z)
                })
                .collect();
            normalize(&mut x);
            x
        };
        let u = draw(rows);
        let v = draw(cols);
        let mut sn = Self { rows, cols, u, v };
        for _ in 0..INITIAL_POWER_ITERATIONS {
            sn.power_iteration(w);
        }
        sn
    }

    /// One power iteration: `u ← normalize(W v)`, then `v ← normalize(Wᵀ u)`.
    ///
    /// # Panics
    /// If `w.len() != rows * cols`.
    #[track_caller]
    pub fn power_iteration(&mut self, w: &[S]) {
        assert_eq!(
            w.len(),
            self.rows * self.cols,
            "spectral norm: weight length"
        );
        for i in 0..self.rows {
            self.u[i] = crate::linalg::dot(&w[i * self.cols..(i + 1) * self.cols], &self.v);
        }
        normalize(&mut self.u);
        self.v.iter_mut().for_each(|x| *x = S::ZERO);
        for i in 0..self.rows {
            crate::linalg::axpy(
                &mut self.v,
                self.u[i],
                &w[i * self.cols..(i + 1) * self.cols],
            );
        }
        normalize(&mut self.v);
    }

    /// `σ = uᵀ W v`.
    #[must_use]
    pub fn sigma(&self, w: &[S]) -> S {
        let mut s = S::ZERO;
        for i in 0..self.rows {
            s += self.u[i] * crate::linalg::dot(&w[i * self.cols..(i + 1) * self.cols], &self.v);
        }
        s
    }

    /// Writes `W / σ` into `out` and returns `σ`.
    #[track_caller]
    pub fn forward(&self, w: &[S], out: &mut [S]) -> S {
        let sigma = self.sigma(w);
        for (o, &x) in out.iter_mut().zip(w) {
            *o = x / sigma;
        }
        sigma
    }

    /// Accumulates `∂L/∂W` into `gw` given `g = ∂L/∂(W/σ)` (see the module equation).
    #[track_caller]
    pub fn backward(&self, w: &[S], sigma: S, g: &[S], gw: &mut [S]) {
        vjp(w, &self.u, &self.v, sigma, g, gw);
    }
}

/// The spectral-norm VJP with explicit `u`, `v`, `σ` (shared by the tape and the BPTT engine).
pub(crate) fn vjp<S: Scalar>(w: &[S], u: &[S], v: &[S], sigma: S, g: &[S], gw: &mut [S]) {
    let cols = v.len();
    let inner = crate::linalg::dot(g, w);
    let coef = inner / (sigma * sigma);
    for (i, &ui) in u.iter().enumerate() {
        for j in 0..cols {
            let k = i * cols + j;
            gw[k] += g[k] / sigma - coef * ui * v[j];
        }
    }
}

fn normalize<S: Scalar>(x: &mut [S]) {
    let norm = crate::linalg::dot(x, x)
        .sqrt()
        .max(S::from_f64(NORMALIZE_EPS));
    x.iter_mut().for_each(|e| *e /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_iteration_finds_the_largest_singular_value_of_a_diagonal_matrix() {
        // diag(3, -5, 1) padded to 3 x 4: singular values 5, 3, 1.
        let mut w = vec![0.0f64; 12];
        w[0] = 3.0;
        w[5] = -5.0;
        w[10] = 1.0;
        let sn = SpectralNorm::new(&w, 3, 4, 7);
        // 15 iterations with ratio (3/5)^2 per iteration: error ~ 0.36^15 ~ 2e-7 relative.
        assert!(
            (sn.sigma(&w) - 5.0).abs() < 1e-5,
            "sigma = {}",
            sn.sigma(&w)
        );
    }
}
