//! Canonical test problems with analytic answers, shared by tests and benchmarks.
//!
//! [`Oscillator`]: the harmonic oscillator `ẋ₁ = x₂`, `ẋ₂ = −ω² x₁` with
//! `x(t) = (cos ωt, −ω sin ωt)` from `x(0) = (1, 0)`, plus a forced logistic component
//! `u̇ = u (1 − u)` with `u(t) = u₀ eᵗ / (1 − u₀ + u₀ eᵗ)`, so the problem is nonlinear.
//!
//! [`fig4_trial`]: one trial of the paper's Fig. 4 experiment (docs/model.md § Iterative
//! algorithm), shared by core's test of the algorithm and `cargo xtask reproduce`: a circuit of
//! the main-model ensemble ([`crate::ensemble::fig4`]), its true steady state (a Dormand–Prince
//! simulation from 0.01 in every variable, polished by Newton), and the Euclidean errors
//!
//! ```text
//! ε_y(k) = ‖y⁽ᵏ⁾ − y*‖₂,   ε_a(k) = ‖a⁽ᵏ⁾ − a*‖₂,   k = 0 … K
//! ```
//!
//! of the iterative algorithm and of its legacy `diag(a)` variant after every iteration.

use crate::dynamics::VectorField;
use crate::error::CoreError;
use crate::params::{Circuit, Model};
use crate::steady_state::{
    IterationStop, IterativeOptions, IterativeReport, LinearSystem, Method, SteadyStateReport,
    iterative, solve,
};

/// A three-dimensional problem with a closed-form solution; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Oscillator {
    /// Angular frequency ω.
    pub omega: f64,
    /// u(0) of the logistic component.
    pub u0: f64,
}

impl Oscillator {
    /// The initial state `(1, 0, u0)`.
    pub fn initial(&self) -> [f64; 3] {
        [1.0, 0.0, self.u0]
    }
    /// The exact state at time `t`.
    pub fn exact(&self, t: f64) -> [f64; 3] {
        let e = t.exp();
        [
            (self.omega * t).cos(),
            -self.omega * (self.omega * t).sin(),
            self.u0 * e / (1.0 - self.u0 + self.u0 * e),
        ]
    }
}

impl VectorField for Oscillator {
    fn dim(&self) -> usize {
        3
    }
    fn eval(&self, _t: f64, x: &[f64], dxdt: &mut [f64]) {
        dxdt[0] = x[1];
        dxdt[1] = -self.omega * self.omega * x[0];
        dxdt[2] = x[2] * (1.0 - x[2]);
    }
    fn jacobian(&self, _t: f64, x: &[f64], mut out: faer::MatMut<'_, f64>) {
        out.fill(0.0);
        out[(0, 1)] = 1.0;
        out[(1, 0)] = -self.omega * self.omega;
        out[(2, 2)] = 1.0 - 2.0 * x[2];
    }
}

/// One trial of the Fig. 4 experiment; see the module docs.
#[derive(Debug, Clone)]
pub struct Fig4Trial {
    /// The circuit drawn.
    pub circuit: Circuit,
    /// Its true steady state (simulation polished by Newton).
    pub truth: SteadyStateReport,
    /// The iterative algorithm run for all its iterations.
    pub iterative: IterativeReport,
    /// The legacy `diag(a)` variant run for all its iterations.
    pub legacy: IterativeReport,
}

/// The settings of a [`fig4_trial`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fig4Settings {
    /// Principal neurons N (the paper: 10).
    pub n: usize,
    /// Largest singular value of W_r (the paper: 1).
    pub wr_norm: f64,
    /// Iterations of the algorithm (the paper: 15).
    pub iterations: usize,
    /// Iterations of the legacy variant (the authors' code: 10).
    pub legacy_iterations: usize,
}

impl Default for Fig4Settings {
    fn default() -> Self {
        Self {
            n: 10,
            wr_norm: 1.0,
            iterations: 15,
            legacy_iterations: 10,
        }
    }
}

impl Fig4Trial {
    /// `(ε_y(k), ε_a(k))` of the algorithm for k = 0 … K.
    pub fn errors(&self) -> Vec<(f64, f64)> {
        self.errors_of(&self.iterative)
    }

    /// `(ε_y(k), ε_a(k))` of the legacy variant for k = 0 … K.
    pub fn legacy_errors(&self) -> Vec<(f64, f64)> {
        self.errors_of(&self.legacy)
    }

    fn errors_of(&self, run: &IterativeReport) -> Vec<(f64, f64)> {
        let n = self.circuit.n();
        run.trace
            .iter()
            .map(|x| (l2(&x[..n], &self.truth.y), l2(&x[n..], &self.truth.a)))
            .collect()
    }
}

fn l2(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The Fig. 4 trial of `seed`, or `None` when the simulation does not come to rest (there is
/// no true steady state to measure against).
///
/// # Errors
/// The errors of [`crate::ensemble::fig4`], [`solve()`] and [`iterative()`].
pub fn fig4_trial(settings: Fig4Settings, seed: u64) -> Result<Option<Fig4Trial>, CoreError> {
    let circuit = crate::ensemble::fig4(Model::Main, settings.n, settings.wr_norm, seed)?;
    let truth = solve(&circuit, Method::Simulate)?;
    if !truth.converged() {
        return Ok(None);
    }
    let run = |iterations, system| {
        iterative(
            &circuit,
            IterativeOptions {
                iterations,
                stop: IterationStop::Full,
                system,
                ..Default::default()
            },
        )
    };
    let it = run(settings.iterations, LinearSystem::SqrtA)?;
    let legacy = run(settings.legacy_iterations, LinearSystem::LegacyDiagA)?;
    Ok(Some(Fig4Trial {
        circuit,
        truth,
        iterative: it,
        legacy,
    }))
}
