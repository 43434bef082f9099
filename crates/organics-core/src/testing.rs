//! Canonical test problems with analytic answers, shared by tests and benchmarks.
//!
//! [`Oscillator`]: the harmonic oscillator `ẋ₁ = x₂`, `ẋ₂ = −ω² x₁` with
//! `x(t) = (cos ωt, −ω sin ωt)` from `x(0) = (1, 0)`, plus a forced logistic component
//! `u̇ = u (1 − u)` with `u(t) = u₀ eᵗ / (1 − u₀ + u₀ eᵗ)`, so the problem is nonlinear.

use crate::dynamics::VectorField;

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
}
