//! The damped-harmonic-oscillator form of the linearised circuit with W_r = I (docs/model.md#oscillator-form).
//!
//! At the normalisation fixed point (c = b ⊙ z, a_s = b0²σ² + W c², y_s = c / √a_s) write
//! `x = δy`. Eliminating `δa` from the linearised equations gives n coupled oscillators
//!
//! ```text
//! ẍ + B ẋ + K x = 0,
//! K = diag( r / (τ_y τ_a) ),
//! B = diag( r / τ_y + 1 / τ_a ) − T_a⁻¹ diag( c / (a_s τ_y) ) W diag( c τ_y ),
//! ```
//!
//! with `r = √a_s` (the gate). When τ_y is the same for every neuron the last term is the one of docs/model.md#oscillator-form,
//! `T_a⁻¹ diag(c / a_s) W diag(c)`: springs to ground, coupling only through an asymmetric
//! damping matrix. (Derivation: `τ_y ẋ = −r x − (c / 2a_s) δa` gives `δa` in terms of
//! `x, ẋ`; differentiating once more and substituting the `a`-equation, the `W diag(y_s²) δa`
//! and `W diag(2 a_s y_s) x` terms cancel except for `−2 W diag(c τ_y) ẋ`.) The formula is
//! polynomial in `c`, so it also holds for neurons with `c_i = 0`, where the elimination step
//! divides by zero.
//!
//! For the rectified model the neurons with `z_i ≤ 0` rest at `y = b z ≤ 0`, outside the reach
//! of the rectified recurrence: there `r_i = 1` and `c_i` is replaced by `⌊c_i⌋ = 0`.
//!
//! The companion matrix `C = [[0, I], [−K, −B]]` (state `[x; ẋ]`) has the same eigenvalues as
//! the Jacobian `J`, which the crate's tests check.

use crate::error::LyapunovError;
use faer::Mat;
use organics_core::steady_state::closed_form;
use organics_core::{Circuit, Model};

/// The matrices `K` (diagonal) and `B` of `ẍ + B ẋ + K x = 0`.
#[derive(Debug, Clone)]
pub struct OscillatorForm {
    /// Diagonal of the stiffness matrix K (1/time²).
    pub stiffness: Vec<f64>,
    /// The damping matrix B (1/time).
    pub damping: Mat<f64>,
}

impl OscillatorForm {
    /// Build the form at the closed-form fixed point of a circuit with W_r = I.
    ///
    /// # Errors
    /// [`LyapunovError::NotApplicable`] unless W_r = I.
    pub fn new(circuit: &Circuit) -> Result<Self, LyapunovError> {
        if !circuit.w_r().is_identity() {
            return Err(LyapunovError::NotApplicable {
                what: "damped-oscillator form",
                reason: "exists only for w_r = identity (docs/model.md#oscillator-form)",
            });
        }
        let ss = closed_form(circuit)?;
        let n = circuit.n();
        let rectified = circuit.model() == Model::Rectified;
        let (tau_y, tau_a, b, z) = (circuit.tau_y(), circuit.tau_a(), circuit.b(), circuit.z());
        let mut r = vec![0.0; n];
        let mut c = vec![0.0; n];
        for i in 0..n {
            let ci = b[i] * z[i];
            if rectified && z[i] <= 0.0 {
                r[i] = 1.0;
                c[i] = 0.0;
            } else {
                r[i] = ss.a[i].sqrt();
                c[i] = ci;
            }
        }
        let stiffness = (0..n).map(|i| r[i] / (tau_y[i] * tau_a[i])).collect();
        let w = circuit.w();
        let damping = Mat::from_fn(n, n, |i, j| {
            let coupling = c[i] / (ss.a[i] * tau_y[i] * tau_a[i]) * w[(i, j)] * c[j] * tau_y[j];
            let diag = if i == j {
                r[i] / tau_y[i] + 1.0 / tau_a[i]
            } else {
                0.0
            };
            diag - coupling
        });
        Ok(Self { stiffness, damping })
    }

    /// The companion matrix `[[0, I], [−K, −B]]` (2n × 2n) of the second-order system.
    pub fn companion(&self) -> Mat<f64> {
        let n = self.stiffness.len();
        Mat::from_fn(2 * n, 2 * n, |i, j| match (i < n, j < n) {
            (true, true) => 0.0,
            (true, false) => f64::from(u8::from(j - n == i)),
            (false, true) => {
                if i - n == j {
                    -self.stiffness[j]
                } else {
                    0.0
                }
            }
            (false, false) => -self.damping[(i - n, j - n)],
        })
    }
}
