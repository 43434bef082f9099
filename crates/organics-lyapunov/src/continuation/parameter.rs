//! The continuation parameter: which number of the circuit moves, and the scaled residual
//! `G(x, p) = T f(x; p)` with its derivatives (see the [parent module](super)).

use crate::error::LyapunovError;
use faer::Mat;
use organics_core::params::CircuitParts;
use organics_core::{Circuit, Recurrence};

/// The parameter a branch is followed in.
///
/// The scales multiply the circuit's own matrix or vector (value 1 is the circuit as given);
/// the others set that quantity of every neuron to the parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameter {
    /// `W_r → p W_r` (`w_r`). For a one-neuron circuit with `w_r = "identity"` this is w_r itself.
    WrScale,
    /// `W → p W` (`w`).
    WScale,
    /// `b_i = p` (`b`).
    B,
    /// `b0_i = p` (`b0`).
    B0,
    /// `σ_i = p` (`sigma`).
    Sigma,
    /// `z → p z` (`z`).
    ZScale,
    /// `τ_y,i = p` (`tau_y`): fixed points do not move, their stability does.
    TauY,
    /// `τ_a,i = p` (`tau_a`).
    TauA,
}

impl Parameter {
    /// Every parameter, in the order of the command line's list.
    pub const ALL: [Parameter; 8] = [
        Parameter::WrScale,
        Parameter::WScale,
        Parameter::B,
        Parameter::B0,
        Parameter::Sigma,
        Parameter::ZScale,
        Parameter::TauY,
        Parameter::TauA,
    ];

    /// The command line's name: `w_r`, `w`, `b`, `b0`, `sigma`, `z`, `tau_y`, `tau_a`.
    pub fn name(self) -> &'static str {
        match self {
            Parameter::WrScale => "w_r",
            Parameter::WScale => "w",
            Parameter::B => "b",
            Parameter::B0 => "b0",
            Parameter::Sigma => "sigma",
            Parameter::ZScale => "z",
            Parameter::TauY => "tau_y",
            Parameter::TauA => "tau_a",
        }
    }

    /// The parameter with this name, if any.
    pub fn from_name(name: &str) -> Option<Parameter> {
        Parameter::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the parameter must stay positive (every one but the scales of W_r and z).
    fn positive(self) -> bool {
        !matches!(self, Parameter::WrScale | Parameter::ZScale)
    }

    /// Check that `p` is an admissible value.
    ///
    /// # Errors
    /// [`LyapunovError::BadOption`] for a non-finite value, or a value ≤ 0 for a parameter
    /// that must be positive (w, b, b0, σ, τ_y, τ_a).
    pub fn check(self, p: f64) -> Result<(), LyapunovError> {
        if !p.is_finite() {
            return Err(LyapunovError::BadOption {
                option: self.name(),
                value: p,
                reason: "must be finite",
            });
        }
        if self.positive() && p <= 0.0 {
            return Err(LyapunovError::BadOption {
                option: self.name(),
                value: p,
                reason: "must be > 0 (b, b0, sigma, tau_y, tau_a and the scale of W are positive)",
            });
        }
        Ok(())
    }

    /// The circuit `base` with this parameter set to `p`.
    ///
    /// # Errors
    /// As [`Circuit::new`] (a value the circuit rejects).
    pub fn circuit_at(self, base: &Circuit, p: f64) -> Result<Circuit, LyapunovError> {
        let mut parts: CircuitParts = base.parts().clone();
        let n = base.n();
        match self {
            Parameter::WrScale => {
                parts.w_r = match base.w_r() {
                    Recurrence::Identity => Recurrence::Scaled(p),
                    Recurrence::Scaled(s) => Recurrence::Scaled(p * s),
                    Recurrence::Dense(m) => {
                        Recurrence::Dense(Mat::from_fn(n, n, |i, j| p * m[(i, j)]))
                    }
                }
            }
            Parameter::WScale => {
                let w = base.w();
                parts.w = Mat::from_fn(n, n, |i, j| p * w[(i, j)]);
            }
            Parameter::B => parts.b = vec![p; n],
            Parameter::B0 => parts.b0 = vec![p; n],
            Parameter::Sigma => parts.sigma = vec![p; n],
            Parameter::ZScale => parts.z = base.z().iter().map(|z| p * z).collect(),
            Parameter::TauY => parts.tau_y = vec![p; n],
            Parameter::TauA => parts.tau_a = vec![p; n],
        }
        Ok(Circuit::new(parts)?)
    }
}

/// The scaled residual `G = T f(x)` of a circuit, `T = diag(τ_y, τ_a)`.
pub(crate) fn scaled_residual(circuit: &Circuit, x: &[f64]) -> Vec<f64> {
    let n = circuit.n();
    let mut g = vec![0.0; 2 * n];
    circuit.rhs(x, &mut g);
    for i in 0..n {
        g[i] *= circuit.tau_y()[i];
        g[n + i] *= circuit.tau_a()[i];
    }
    g
}

/// `∂G/∂x = T J` (the analytic Jacobian of organics-core with rows scaled by τ).
pub(crate) fn scaled_jacobian(circuit: &Circuit, x: &[f64]) -> Mat<f64> {
    let n = circuit.n();
    let mut j = circuit.jacobian(x);
    for c in 0..2 * n {
        for i in 0..n {
            j[(i, c)] *= circuit.tau_y()[i];
            j[(n + i, c)] *= circuit.tau_a()[i];
        }
    }
    j
}

/// `∂G/∂p` at `(x, p)`, by the three-point formula
/// `G_p = (−3 G(p) + 4 G(p + h) − G(p + 2h)) / (2h)`, which is exact (up to rounding) for
/// polynomials of degree ≤ 2 in `p`: `G` is affine in the scales of W_r, W, z and in b,
/// quadratic in b0 and σ (through `b0² σ²`), and independent of τ (so `G_p = 0` there, and the
/// formula returns rounding noise of `T (F / T)`, which is why τ is special-cased). The vector
/// field is evaluated, never re-derived. `h = max(|p|, 1)` keeps every evaluation point
/// admissible (`p + h > 0` whenever `p > 0`).
pub(crate) fn parameter_derivative(
    param: Parameter,
    base: &Circuit,
    x: &[f64],
    p: f64,
) -> Result<Vec<f64>, LyapunovError> {
    if matches!(param, Parameter::TauY | Parameter::TauA) {
        return Ok(vec![0.0; x.len()]);
    }
    let h = p.abs().max(1.0);
    let g0 = scaled_residual(&param.circuit_at(base, p)?, x);
    let g1 = scaled_residual(&param.circuit_at(base, p + h)?, x);
    let g2 = scaled_residual(&param.circuit_at(base, p + 2.0 * h)?, x);
    Ok((0..x.len())
        .map(|i| (-3.0 * g0[i] + 4.0 * g1[i] - g2[i]) / (2.0 * h))
        .collect())
}
