//! One entry point that picks a steady-state route, as the command line's `--method` does.
//!
//! | [`Method`] | route |
//! |---|---|
//! | `Auto` | closed form when W_r = I; else the iterative algorithm (main model) or a simulation (rectified model), each followed by Newton polish. If the iterative route lands on a fixed point that is not attracting (max Re λ(J) ≥ 0 — it happens: with w_r = 2 and small b0σ the 2-D circuit has a saddle the iteration finds, spec §C.5), the simulated steady state is returned instead |
//! | `ClosedForm` | [`super::closed_form()`] (W_r = I only) |
//! | `Iterative` | [`super::iterative()`] with K iterations, no polish (the paper's algorithm as is) |
//! | `Simulate` | [`crate::integrate::settle`] with Dormand–Prince from 0.01 in every variable, then Newton polish |

use super::{
    IterativeOptions, NewtonOptions, SteadyStateReport, StopReason, closed_form, iterative,
    newton_polish,
};
use crate::error::CoreError;
use crate::integrate::{DormandPrince, SettleOptions, settle};
use crate::params::{Circuit, Model};

/// How to find the steady state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Pick the best route for the circuit (see the module docs).
    Auto,
    /// The closed form (W_r = I).
    ClosedForm,
    /// The paper's iterative algorithm with this many iterations.
    Iterative(usize),
    /// Integrate to rest, then polish with Newton.
    Simulate,
}

/// The starting state of simulations: 0.01 in every variable, as in the paper's Fig. 4.
pub const REST_START: f64 = 0.01;

/// Find the steady state of `circuit` by `method`.
///
/// # Errors
/// [`CoreError::NotApplicable`] when the method does not apply to the circuit, and the errors
/// of the underlying routes. A route that runs but does not converge returns its report with
/// the [`StopReason`]; check [`SteadyStateReport::converged`].
pub fn solve(circuit: &Circuit, method: Method) -> Result<SteadyStateReport, CoreError> {
    match method {
        Method::ClosedForm => closed_form(circuit),
        Method::Iterative(k) => Ok(iterative(
            circuit,
            IterativeOptions {
                iterations: k,
                ..Default::default()
            },
        )?
        .report),
        Method::Simulate => simulate_then_polish(circuit),
        Method::Auto if circuit.w_r().is_identity() => closed_form(circuit),
        Method::Auto if circuit.model() == Model::Main => {
            let start = iterative(circuit, IterativeOptions::default())?.report;
            let polished = newton_polish(circuit, &start.state(), NewtonOptions::default())?;
            if polished.converged() && is_attracting(circuit, &polished.state()) {
                return Ok(SteadyStateReport {
                    iterations: start.iterations + polished.iterations,
                    method: "iterative+newton",
                    ..polished
                });
            }
            // The iteration can fail for large ‖W_r‖ (spec §B.3), or land on an unstable fixed
            // point; the state the circuit actually settles to comes from simulation.
            simulate_then_polish(circuit)
        }
        Method::Auto => simulate_then_polish(circuit),
    }
}

/// Whether every eigenvalue of the Jacobian at `x` has a negative real part. (Only a sanity
/// check of the route; organics-lyapunov reports stability with an explained tolerance.)
fn is_attracting(circuit: &Circuit, x: &[f64]) -> bool {
    circuit
        .jacobian(x)
        .eigenvalues()
        .is_ok_and(|ev| ev.iter().all(|l| l.re < 0.0))
}

fn simulate_then_polish(circuit: &Circuit) -> Result<SteadyStateReport, CoreError> {
    let x0 = vec![REST_START; 2 * circuit.n()];
    let tau_min = circuit
        .tau_y()
        .iter()
        .chain(circuit.tau_a())
        .fold(f64::INFINITY, |m, &t| m.min(t));
    // rtol 1e-10 and a stopping tolerance 1e-8 well above the jitter floor (see `settle`).
    let mut stepper = DormandPrince::new(1e-10, 1e-12, 0.05 * tau_min)?;
    let settled = settle(
        circuit,
        &mut stepper,
        &x0,
        SettleOptions {
            tol: 1e-8,
            max_steps: 1_000_000,
        },
    )?;
    if settled.reason == StopReason::NonFinite {
        return Ok(SteadyStateReport::new(
            circuit,
            &settled.state,
            settled.steps,
            settled.reason,
            "simulate",
        ));
    }
    let polished = newton_polish(circuit, &settled.state, NewtonOptions::default())?;
    if polished.converged() {
        Ok(SteadyStateReport {
            iterations: settled.steps + polished.iterations,
            method: "simulate+newton",
            ..polished
        })
    } else {
        Ok(SteadyStateReport::new(
            circuit,
            &settled.state,
            settled.steps,
            settled.reason,
            "simulate",
        ))
    }
}
