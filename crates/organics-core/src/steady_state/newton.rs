//! Newton's method on the full 2n-dimensional system `f(x) = 0`, with the analytic Jacobian
//! ([`crate::jacobian`]) and a backtracking line search on the scaled residual:
//!
//! ```text
//! J(x_k) δ = −f(x_k),    x_{k+1} = x_k + α δ,   α ∈ {1, ½, ¼, …} first reducing max_i |f_i| τ_i
//! ```
//!
//! It converges quadratically from a nearby guess, so it is used to polish the answers of the
//! iterative algorithm or of a simulation to machine precision.

use super::{SteadyStateReport, StopReason};
use crate::dynamics::VectorField;
use crate::error::CoreError;
use crate::params::Circuit;
use faer::Mat;
use faer::linalg::solvers::Solve;

/// Options of [`newton_polish`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonOptions {
    /// Stop when the scaled residual is below this.
    pub tol: f64,
    /// Give up after this many Newton steps.
    pub max_iterations: usize,
}

impl Default for NewtonOptions {
    fn default() -> Self {
        // 1e-12 is about 1e4 ulps of an O(1) residual: reachable for n up to a few hundred.
        Self {
            tol: 1e-12,
            max_iterations: 50,
        }
    }
}

/// Newton's method from `x0 = [y; a]`.
///
/// # Errors
/// [`CoreError::DimensionMismatch`] if `x0` does not have length 2n. Failing to converge is
/// the report's [`StopReason`], not an error.
pub fn newton_polish(
    circuit: &Circuit,
    x0: &[f64],
    opts: NewtonOptions,
) -> Result<SteadyStateReport, CoreError> {
    let dim = circuit.dim();
    if x0.len() != dim {
        return Err(CoreError::DimensionMismatch {
            field: "initial state".into(),
            expected: format!("length {dim}"),
            found: format!("length {}", x0.len()),
        });
    }
    let mut x = x0.to_vec();
    let mut f = vec![0.0; dim];
    let mut trial = vec![0.0; dim];
    let mut jac = Mat::zeros(dim, dim);
    circuit.rhs(&x, &mut f);
    let mut res = circuit.scaled_norm(&f);
    for k in 0..opts.max_iterations {
        if !res.is_finite() {
            return Ok(SteadyStateReport::new(
                circuit,
                &x,
                k,
                StopReason::NonFinite,
                "newton",
            ));
        }
        if res < opts.tol {
            return Ok(SteadyStateReport::new(
                circuit,
                &x,
                k,
                StopReason::Converged,
                "newton",
            ));
        }
        circuit.jacobian_into(&x, jac.as_mut());
        let rhs = Mat::from_fn(dim, 1, |i, _| -f[i]);
        let delta = jac.partial_piv_lu().solve(&rhs);
        let mut alpha = 1.0;
        let mut improved = false;
        for _ in 0..30 {
            for i in 0..dim {
                trial[i] = x[i] + alpha * delta[(i, 0)];
            }
            circuit.rhs(&trial, &mut f);
            let r = circuit.scaled_norm(&f);
            if r.is_finite() && r < res {
                x.copy_from_slice(&trial);
                res = r;
                improved = true;
                break;
            }
            alpha *= 0.5;
        }
        if !improved {
            circuit.rhs(&x, &mut f);
            let reason = if res < opts.tol {
                StopReason::Converged
            } else {
                StopReason::Stalled
            };
            return Ok(SteadyStateReport::new(circuit, &x, k + 1, reason, "newton"));
        }
    }
    let reason = if res < opts.tol {
        StopReason::Converged
    } else {
        StopReason::MaxIterations
    };
    Ok(SteadyStateReport::new(
        circuit,
        &x,
        opts.max_iterations,
        reason,
        "newton",
    ))
}
