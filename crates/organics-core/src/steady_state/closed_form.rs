//! The closed-form steady state for W_r = I (docs/model.md#closed-form-steady-state).
//!
//! Main model (Eq. 16), with `c = b ⊙ z`:
//!
//! ```text
//! a_s = b0² σ² + W c²,      y_s = c / √a_s,      ⌊y_s⌋² = ⌊c⌋² / (b0² σ² + W c²)
//! ```
//!
//! Rectified model (Eq. 102): neurons with `z_i ≤ 0` rest at `y_i = c_i` (their rectified
//! output is zero), the others are normalised:
//!
//! ```text
//! a_s = b0² σ² + W ⌊c⌋²,    y_s,i = c_i / √a_s,i  if z_i > 0,   y_s,i = c_i  otherwise
//! ```

use super::{SteadyStateReport, StopReason};
use crate::error::CoreError;
use crate::params::{Circuit, Model, mat_vec};

/// The exact steady state of a circuit with W_r = I.
///
/// # Errors
/// [`CoreError::NotApplicable`] unless W_r is the identity.
pub fn closed_form(circuit: &Circuit) -> Result<SteadyStateReport, CoreError> {
    if !circuit.w_r().is_identity() {
        return Err(CoreError::NotApplicable {
            method: "closed-form",
            reason: "the closed form needs w_r = identity; use the iterative method or simulate"
                .into(),
        });
    }
    let n = circuit.n();
    let rectified = circuit.model() == Model::Rectified;
    let c: Vec<f64> = circuit
        .b()
        .iter()
        .zip(circuit.z())
        .map(|(b, z)| b * z)
        .collect();
    let drive: Vec<f64> = c
        .iter()
        .map(|&ci| {
            if rectified {
                ci.max(0.0).powi(2)
            } else {
                ci * ci
            }
        })
        .collect();
    let mut a = vec![0.0; n];
    mat_vec(circuit.w(), &drive, &mut a);
    for (ai, s) in a.iter_mut().zip(circuit.b0_sigma_sq()) {
        *ai += s;
    }
    let y: Vec<f64> = (0..n)
        .map(|i| {
            if rectified && circuit.z()[i] <= 0.0 {
                c[i]
            } else {
                c[i] / a[i].sqrt()
            }
        })
        .collect();
    let mut x = y;
    x.extend_from_slice(&a);
    Ok(SteadyStateReport::new(
        circuit,
        &x,
        0,
        StopReason::Converged,
        "closed-form",
    ))
}
