//! The paper's iterative algorithm for the steady state with a general W_r (spec §B.3, Fig. 4).
//!
//! Alternate a linear solve for `y` with one fixed-point sweep for `a`:
//!
//! ```text
//! repeat K times:
//!     y ← solve( I − diag(1 − √a) W_r ,  b ⊙ z )
//!     a ← b0² σ² + W (a ⊙ y²)
//! ```
//!
//! Start (as in the authors' notebook, with λ = σ_max(W_r) and d(a) = λ − λ² + λ²√a):
//! `a⁻¹ = (b0 σ)²`, `a⁰ = (b0 σ)² + W[(a⁻¹ / d(a⁻¹))² ⊙ (W_r (b ⊙ z))²]`,
//! `y⁰ = W_r (b ⊙ z) / d(a⁰)`. The notebook writes `b0 ⊙ z` inside `W_r(·)`; we use `b ⊙ z`,
//! which only changes the starting point.
//!
//! # The legacy variant
//!
//! [`LinearSystem::LegacyDiagA`] reproduces the authors' `ff.py`, which solves
//! `(I − W_r + diag(a) W_r) y = b ⊙ z` — `diag(a)` instead of `diag(√a)` — and adds 1e−10 to
//! `a`, starting from `a = (σ b0)² + W (W_r (b z))²`, `y = W_r (b z) / √a`.
//! **Its answer is not a fixed point of the circuit**: with W_r = I it returns `y = b z / a`
//! instead of `b z / √a`. It exists only to reproduce numbers computed with that code
//! (spec §B.4); its report's residual shows how far from a fixed point it lands.

use super::{SteadyStateReport, StopReason};
use crate::error::CoreError;
use crate::params::{Circuit, Model, mat_vec};
use faer::Mat;
use faer::linalg::solvers::Solve;

/// Which linear system the y-update solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LinearSystem {
    /// `(I − diag(1 − √a) W_r) y = b z`: the fixed-point equation (spec §B.2). The default.
    #[default]
    SqrtA,
    /// `(I − W_r + diag(a) W_r) y = b z`: the authors' `ff.py`; not a fixed point (spec §B.4).
    LegacyDiagA,
}

/// When [`iterative`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IterationStop {
    /// As soon as the scaled residual is below `tol` (then `iterations` is only a cap). The
    /// default: more iterations cannot improve an answer at machine precision.
    #[default]
    AtTolerance,
    /// Always all `iterations` (the paper's Fig. 4, which plots the error per iteration).
    Full,
}

/// Options of [`iterative`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IterativeOptions {
    /// Iterations K (the paper's Fig. 4 uses 15; the authors' code 10): the most it runs.
    pub iterations: usize,
    /// Whether to stop early at the tolerance.
    pub stop: IterationStop,
    /// The linear system of the y-update.
    pub system: LinearSystem,
    /// The report says `Converged` when the final scaled residual is below this.
    pub tol: f64,
}

impl Default for IterativeOptions {
    fn default() -> Self {
        Self {
            iterations: 15,
            stop: IterationStop::AtTolerance,
            system: LinearSystem::SqrtA,
            tol: 1e-8,
        }
    }
}

/// The outcome of [`iterative`]: the report and the state after every iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct IterativeReport {
    /// The final state and its residual.
    pub report: SteadyStateReport,
    /// `trace[k]` is `[y; a]` after iteration k (`trace[0]` is the starting point).
    pub trace: Vec<Vec<f64>>,
}

/// Largest singular value of a matrix.
pub(crate) fn spectral_norm(m: &Mat<f64>) -> Result<f64, CoreError> {
    let sv = m.singular_values().map_err(|_| CoreError::Singular {
        solver: "singular values of w_r",
        iteration: 0,
    })?;
    Ok(sv.into_iter().fold(0.0, f64::max))
}

/// Run the iterative algorithm for at most `opts.iterations` iterations (all of them with
/// [`IterationStop::Full`]).
///
/// # Errors
/// [`CoreError::NotApplicable`] for the rectified model (its y-equation is not linear in y),
/// [`CoreError::BadOption`] for zero iterations.
pub fn iterative(circuit: &Circuit, opts: IterativeOptions) -> Result<IterativeReport, CoreError> {
    if circuit.model() != Model::Main {
        return Err(CoreError::NotApplicable {
            method: "iterative",
            reason: "the iterative algorithm is defined for the main model; use simulate for the rectified model".into(),
        });
    }
    if opts.iterations == 0 {
        return Err(CoreError::BadOption {
            option: "iterations",
            value: 0.0,
            reason: "must be >= 1",
        });
    }
    let n = circuit.n();
    let wr = circuit.w_r().to_dense(n);
    let c: Vec<f64> = circuit
        .b()
        .iter()
        .zip(circuit.z())
        .map(|(b, z)| b * z)
        .collect();
    let s2 = circuit.b0_sigma_sq();
    let mut wr_c = vec![0.0; n];
    mat_vec(&wr, &c, &mut wr_c);
    let mut tmp = vec![0.0; n];
    let legacy_eps = match opts.system {
        LinearSystem::SqrtA => 0.0,
        // ff.py adds 1e-10 to a in every update.
        LinearSystem::LegacyDiagA => 1e-10,
    };

    // Starting point.
    let (mut y, mut a) = match opts.system {
        LinearSystem::SqrtA => {
            let lam = spectral_norm(&wr)?;
            let d = |a: f64| lam - lam * lam + lam * lam * a.sqrt();
            let drive: Vec<f64> = (0..n)
                .map(|i| (s2[i] / d(s2[i])).powi(2) * wr_c[i] * wr_c[i])
                .collect();
            mat_vec(circuit.w(), &drive, &mut tmp);
            let a0: Vec<f64> = (0..n).map(|i| s2[i] + tmp[i]).collect();
            let y0: Vec<f64> = (0..n).map(|i| wr_c[i] / d(a0[i])).collect();
            (y0, a0)
        }
        LinearSystem::LegacyDiagA => {
            let drive: Vec<f64> = wr_c.iter().map(|v| v * v).collect();
            mat_vec(circuit.w(), &drive, &mut tmp);
            let a0: Vec<f64> = (0..n).map(|i| s2[i] + tmp[i] + legacy_eps).collect();
            let y0: Vec<f64> = (0..n).map(|i| wr_c[i] / a0[i].sqrt()).collect();
            (y0, a0)
        }
    };
    let concat = |y: &[f64], a: &[f64]| {
        let mut x = y.to_vec();
        x.extend_from_slice(a);
        x
    };
    let mut trace = vec![concat(&y, &a)];
    let rhs = Mat::from_fn(n, 1, |i, _| c[i]);
    let mut reason = None;
    for k in 1..=opts.iterations {
        let m = Mat::from_fn(n, n, |i, j| {
            let gate = match opts.system {
                LinearSystem::SqrtA => 1.0 - a[i].max(0.0).sqrt(),
                LinearSystem::LegacyDiagA => 1.0 - a[i],
            };
            f64::from(u8::from(i == j)) - gate * wr[(i, j)]
        });
        let sol = m.partial_piv_lu().solve(&rhs);
        for i in 0..n {
            y[i] = sol[(i, 0)];
        }
        let drive: Vec<f64> = (0..n).map(|i| a[i] * y[i] * y[i]).collect();
        mat_vec(circuit.w(), &drive, &mut tmp);
        for i in 0..n {
            a[i] = s2[i] + tmp[i] + legacy_eps;
        }
        let x = concat(&y, &a);
        let done = opts.stop == IterationStop::AtTolerance && circuit.residual(&x) < opts.tol;
        trace.push(x);
        if y.iter().chain(&a).any(|v| !v.is_finite()) {
            reason = Some((StopReason::NonFinite, k));
            break;
        }
        if done {
            reason = Some((StopReason::Converged, k));
            break;
        }
    }
    let x = trace.last().cloned().unwrap_or_default();
    let (reason, iterations) = reason.unwrap_or((StopReason::MaxIterations, opts.iterations));
    let mut report = SteadyStateReport::new(
        circuit,
        &x,
        iterations,
        reason,
        match opts.system {
            LinearSystem::SqrtA => "iterative",
            LinearSystem::LegacyDiagA => "iterative-legacy-diag-a",
        },
    );
    if report.reason == StopReason::MaxIterations && report.residual < opts.tol {
        report.reason = StopReason::Converged;
    }
    Ok(IterativeReport { report, trace })
}
