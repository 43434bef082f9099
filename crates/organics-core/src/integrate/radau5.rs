//! Radau IIA of order 5: a three-stage implicit collocation method, L-stable, for stiff runs
//! (time constants that span orders of magnitude), with the Jacobian of the vector field
//! ([`VectorField::jacobian`]; the circuit's is analytic) and step-size control.
//!
//! One step of length h from `(t, x)` solves for the stage increments `Z_i ≈ x(t + c_i h) − x`:
//!
//! ```text
//! Z_i = h Σ_j a_ij f(t + c_j h, x + Z_j),   i = 1, 2, 3;        x_new = x + Z_3
//!
//! c = ((4 − √6)/10, (4 + √6)/10, 1)
//! A = [ (88 − 7√6)/360      (296 − 169√6)/1800   (−2 + 3√6)/225 ]
//!     [ (296 + 169√6)/1800  (88 + 7√6)/360       (−2 − 3√6)/225 ]
//!     [ (16 − √6)/36        (16 + √6)/36         1/9            ]
//! ```
//!
//! (the weights are the last row of A: the method is stiffly accurate, and its stability
//! function R(z) → 0 as z → −∞, which is L-stability). The stage equations are solved by
//! simplified Newton with the Jacobian `J = ∂f/∂x` frozen at `(t, x)`:
//!
//! ```text
//! (I₃ₘ − h A ⊗ J) ΔZ = −Z + h (A ⊗ I) F(Z),     Z ← Z + ΔZ
//! ```
//!
//! The 3m × 3m matrix is factored once per step attempt (LU with partial pivoting; the
//! classical eigen-transform of A into one real and one complex m × m system would be ~5 times
//! cheaper, which matters only for m in the hundreds). Newton stops when its contraction
//! `θ = ‖ΔZ_k‖ / ‖ΔZ_{k−1}‖` predicts a remaining error `θ/(1 − θ) ‖ΔZ_k‖` below κ = 0.03 of
//! the tolerance (Hairer & Wanner's choice); it fails (the step is halved) when θ ≥ 1 or after
//! seven iterations.
//!
//! **Error estimate.** With γ₀ the real eigenvalue of A (γ₀ = (6 + 81^{1/3} − 9^{1/3})/30),
//! an embedded solution of order 3 gives
//!
//! ```text
//! err = (I − h γ₀ J)⁻¹ [ γ₀ h f(t, x) + γ₀ Σ_i d_i Z_i ],   d = (−(13 + 7√6)/3, (−13 + 7√6)/3, −1/3)
//! ```
//!
//! where `d` solves `Σ d_i c_i = −1`, `Σ d_i c_i² = Σ d_i c_i³ = 0` (so the bracket vanishes
//! for cubic solutions; `(I − hγ₀J)⁻¹` damps the stiff components). After a rejection the
//! estimate is recomputed with `f(t, x + err)` in place of `f(t, x)` (Hairer & Wanner IV.8).
//! A step is accepted when the weighted RMS of `err / (atol + rtol·max(|x|, |x_new|))` is
//! ≤ 1; the next step is `h · clamp(0.9 err^(−1/4), 0.2, 8)` (local error ∝ h⁴).
//!
//! [`StepControl::Fixed`] takes steps of one length with Newton iterated to rounding level:
//! the convergence-order test uses it (global error ∝ h⁵).

use super::{Stepper, check_positive};
use crate::dynamics::VectorField;
use crate::error::CoreError;
use faer::Mat;
use faer::linalg::solvers::Solve;

const SQ6: f64 = 2.449_489_742_783_178;

/// Collocation nodes c.
pub const C: [f64; 3] = [(4.0 - SQ6) / 10.0, (4.0 + SQ6) / 10.0, 1.0];
/// The Runge–Kutta matrix A (row i: stage i).
pub const A: [[f64; 3]; 3] = [
    [
        (88.0 - 7.0 * SQ6) / 360.0,
        (296.0 - 169.0 * SQ6) / 1800.0,
        (-2.0 + 3.0 * SQ6) / 225.0,
    ],
    [
        (296.0 + 169.0 * SQ6) / 1800.0,
        (88.0 + 7.0 * SQ6) / 360.0,
        (-2.0 - 3.0 * SQ6) / 225.0,
    ],
    [(16.0 - SQ6) / 36.0, (16.0 + SQ6) / 36.0, 1.0 / 9.0],
];
/// Weights of the embedded error estimate (see the module docs).
pub const D: [f64; 3] = [
    -(13.0 + 7.0 * SQ6) / 3.0,
    (-13.0 + 7.0 * SQ6) / 3.0,
    -1.0 / 3.0,
];

/// γ₀, the real eigenvalue of A.
pub fn gamma0() -> f64 {
    (6.0 + 81f64.cbrt() - 9f64.cbrt()) / 30.0
}

/// Newton's stopping fraction κ of the tolerance (Hairer & Wanner's 0.03).
const KAPPA: f64 = 0.03;
/// Most simplified-Newton iterations before the step is halved.
const MAX_NEWTON: usize = 7;

/// How the step length is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepControl {
    /// One step length; Newton iterated until its correction stops shrinking.
    Fixed {
        /// The step.
        dt: f64,
    },
    /// Error-controlled steps.
    Adaptive {
        /// Relative tolerance.
        rtol: f64,
        /// Absolute tolerance.
        atol: f64,
        /// First trial step.
        h0: f64,
    },
}

/// Radau IIA order 5; see the module docs. Holds its buffers, so the dimension's matrices are
/// allocated once.
#[derive(Debug, Clone)]
pub struct Radau5 {
    control: StepControl,
    h: f64,
    /// Whether the last attempt was rejected (the error estimate is then refined).
    last_rejected: bool,
    /// Steps accepted so far.
    pub accepted: usize,
    /// Step attempts rejected so far (error too large or Newton failed).
    pub rejected: usize,
    /// Simplified-Newton iterations so far.
    pub newton_iterations: usize,
    /// LU factorisations of the 3m × 3m stage matrix so far.
    pub factorisations: usize,
    jac: Mat<f64>,
    z: Vec<f64>,
    f: Vec<f64>,
    xs: Vec<f64>,
}

impl Radau5 {
    /// Adaptive steps with tolerances `rtol`, `atol` and first trial step `h0`.
    ///
    /// # Errors
    /// [`CoreError::BadOption`] unless all three are finite and positive.
    pub fn adaptive(rtol: f64, atol: f64, h0: f64) -> Result<Self, CoreError> {
        check_positive("rtol", rtol)?;
        check_positive("atol", atol)?;
        check_positive("dt", h0)?;
        Ok(Self::with(StepControl::Adaptive { rtol, atol, h0 }, h0))
    }

    /// Steps of length `dt` (no error control).
    ///
    /// # Errors
    /// [`CoreError::BadOption`] unless `dt` is finite and positive.
    pub fn fixed(dt: f64) -> Result<Self, CoreError> {
        check_positive("dt", dt)?;
        Ok(Self::with(StepControl::Fixed { dt }, dt))
    }

    fn with(control: StepControl, h: f64) -> Self {
        Self {
            control,
            h,
            last_rejected: false,
            accepted: 0,
            rejected: 0,
            newton_iterations: 0,
            factorisations: 0,
            jac: Mat::zeros(0, 0),
            z: Vec::new(),
            f: Vec::new(),
            xs: Vec::new(),
        }
    }

    /// The step length the next step will try.
    pub fn current_step(&self) -> f64 {
        self.h
    }

    /// The error weights `1 / (atol + rtol |x_i|)` (all 1e14 / (1 + |x_i|) in fixed mode, so
    /// that Newton runs to rounding level).
    fn weight(&self, xi: f64) -> f64 {
        match self.control {
            StepControl::Adaptive { rtol, atol, .. } => 1.0 / (atol + rtol * xi.abs()),
            StepControl::Fixed { .. } => 1.0 / (1e-14 * (1.0 + xi.abs())),
        }
    }

    /// Solve the stage equations for step `h` into `z`; false when Newton fails to converge.
    fn newton<F: VectorField + ?Sized>(&mut self, f: &F, t: f64, x: &[f64], h: f64) -> bool {
        let m = x.len();
        let big = Mat::from_fn(3 * m, 3 * m, |r, c| {
            let (bi, i) = (r / m, r % m);
            let (bj, j) = (c / m, c % m);
            let id = if r == c { 1.0 } else { 0.0 };
            id - h * A[bi][bj] * self.jac[(i, j)]
        });
        let lu = big.partial_piv_lu();
        self.factorisations += 1;
        self.z.clear();
        self.z.resize(3 * m, 0.0);
        self.f.resize(3 * m, 0.0);
        self.xs.resize(m, 0.0);
        let mut previous = f64::INFINITY;
        let fixed = matches!(self.control, StepControl::Fixed { .. });
        for k in 0..if fixed { 50 } else { MAX_NEWTON } {
            self.newton_iterations += 1;
            for s in 0..3 {
                for i in 0..m {
                    self.xs[i] = x[i] + self.z[s * m + i];
                }
                f.eval(t + C[s] * h, &self.xs, &mut self.f[s * m..(s + 1) * m]);
            }
            let rhs = Mat::from_fn(3 * m, 1, |r, _| {
                let (s, i) = (r / m, r % m);
                let hf: f64 = (0..3).map(|j| A[s][j] * self.f[j * m + i]).sum();
                -self.z[r] + h * hf
            });
            let dz = lu.solve(&rhs);
            let mut norm2 = 0.0;
            for r in 0..3 * m {
                self.z[r] += dz[(r, 0)];
                let e = dz[(r, 0)] * self.weight(x[r % m]);
                norm2 += e * e;
            }
            let norm = (norm2 / (3 * m) as f64).sqrt();
            if !norm.is_finite() {
                return false;
            }
            if fixed {
                // Rounding level: the correction is below 1e-14 relative, or stopped shrinking.
                if norm <= 1.0 {
                    return true;
                }
                if k > 0 && norm >= previous {
                    // Stopped shrinking: at rounding level (corrections below 1e-8 relative)
                    // that is convergence; above it, divergence.
                    return norm <= 1e6;
                }
            } else if k > 0 {
                let theta = norm / previous;
                if theta >= 1.0 {
                    return false;
                }
                if theta / (1.0 - theta) * norm <= KAPPA {
                    return true;
                }
            } else if norm <= 1e-3 * KAPPA {
                // A first correction this small cannot hide a remaining error above κ.
                return true;
            }
            previous = norm;
        }
        fixed
    }

    /// The weighted RMS error estimate of the step just solved (module docs).
    fn error<F: VectorField + ?Sized>(
        &mut self,
        f: &F,
        t: f64,
        x: &[f64],
        k1: &[f64],
        h: f64,
    ) -> f64 {
        let m = x.len();
        let g0 = gamma0();
        let e = Mat::from_fn(m, m, |i, j| {
            let id = if i == j { 1.0 } else { 0.0 };
            id - h * g0 * self.jac[(i, j)]
        });
        let lu = e.partial_piv_lu();
        let tail: Vec<f64> = (0..m)
            .map(|i| g0 * (0..3).map(|s| D[s] * self.z[s * m + i]).sum::<f64>())
            .collect();
        let rms = |v: &Mat<f64>, this: &Self| {
            let s: f64 = (0..m)
                .map(|i| {
                    let xn = x[i] + this.z[2 * m + i];
                    let w = this.weight(x[i].abs().max(xn.abs()));
                    (v[(i, 0)] * w).powi(2)
                })
                .sum();
            (s / m as f64).sqrt()
        };
        let rhs = Mat::from_fn(m, 1, |i, _| g0 * h * k1[i] + tail[i]);
        let mut err_vec = lu.solve(&rhs);
        let mut err = rms(&err_vec, self);
        if err >= 1.0 && (self.last_rejected || self.accepted == 0) {
            for i in 0..m {
                self.xs[i] = x[i] + err_vec[(i, 0)];
            }
            let mut fx = vec![0.0; m];
            f.eval(t, &self.xs, &mut fx);
            let rhs = Mat::from_fn(m, 1, |i, _| g0 * h * fx[i] + tail[i]);
            err_vec = lu.solve(&rhs);
            err = rms(&err_vec, self);
        }
        err
    }
}

impl Stepper for Radau5 {
    fn order(&self) -> u32 {
        5
    }
    fn name(&self) -> &'static str {
        "radau5"
    }
    fn step<F: VectorField + ?Sized>(
        &mut self,
        f: &F,
        t: f64,
        x: &mut [f64],
        k1: &[f64],
        h_max: f64,
    ) -> Result<f64, CoreError> {
        let m = x.len();
        if self.jac.nrows() != m {
            self.jac = Mat::zeros(m, m);
        }
        f.jacobian(t, x, self.jac.as_mut());
        loop {
            let h = match self.control {
                StepControl::Fixed { dt } => dt.min(h_max),
                StepControl::Adaptive { .. } => self.h.min(h_max),
            };
            if h < 1e-14 * t.abs().max(1.0) {
                return Err(CoreError::StepSizeUnderflow { t, step: h });
            }
            if !self.newton(f, t, x, h) {
                if matches!(self.control, StepControl::Fixed { .. }) {
                    return Err(CoreError::Singular {
                        solver: "radau5 (fixed step: Newton on the stage equations diverged; use a smaller dt)",
                        iteration: self.accepted,
                    });
                }
                self.rejected += 1;
                self.last_rejected = true;
                self.h = 0.5 * h;
                continue;
            }
            let StepControl::Adaptive { .. } = self.control else {
                for i in 0..m {
                    x[i] += self.z[2 * m + i];
                }
                self.accepted += 1;
                return Ok(h);
            };
            let err = self.error(f, t, x, k1, h);
            let factor = if err == 0.0 {
                8.0
            } else {
                (0.9 * err.powf(-0.25)).clamp(0.2, 8.0)
            };
            if err <= 1.0 {
                for i in 0..m {
                    x[i] += self.z[2 * m + i];
                }
                self.accepted += 1;
                self.last_rejected = false;
                // Only grow from a full step: a step cut short by h_max says nothing about h.
                if h >= self.h {
                    self.h *= factor;
                } else {
                    self.h = self.h.max(h * factor);
                }
                return Ok(h);
            }
            self.rejected += 1;
            self.last_rejected = true;
            self.h = if err.is_finite() {
                h * factor.min(1.0)
            } else {
                0.2 * h
            };
        }
    }
}
