//! One entry point that picks a steady-state route, as the command line's `--method` does.
//!
//! | [`Method`] | route |
//! |---|---|
//! | `Auto` | closed form when W_r = I; else the iterative algorithm (main model) or a simulation (rectified model), each followed by Newton polish; a simulation also when the iterative route's polish fails |
//! | `ClosedForm` | [`super::closed_form()`] (W_r = I only) |
//! | `Iterative` | [`super::iterative()`] with at most K iterations, stopping at its tolerance, no polish (the paper's algorithm as is) |
//! | `Simulate` | [`crate::integrate::settle`] with Dormand–Prince from 0.01 in every variable, then Newton polish — only if the simulation came to rest; otherwise the report says [`StopReason::NotSettled`] with the range the state still moved in |
//!
//! None of these judges stability (see [the module docs](super)): the iterative route can land
//! on a fixed point that does not attract (with `w_r = 2` and small `b0σ` the one-neuron circuit
//! has a saddle the iteration finds, docs/model.md § Phase plane), and Newton converges to
//! whichever fixed point is near. `organics_lyapunov::steady_state` judges the answer and, for
//! `Auto`, replaces a fixed point that does not attract by the simulated one.

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
            if polished.converged() {
                return Ok(SteadyStateReport {
                    iterations: start.iterations + polished.iterations,
                    method: "iterative+newton",
                    ..polished
                });
            }
            // The iteration can fail for large ‖W_r‖ (docs/model.md § Iterative algorithm); the
            // state the circuit settles to, if any, comes from simulation.
            simulate_then_polish(circuit)
        }
        Method::Auto => simulate_then_polish(circuit),
    }
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
    match settled.reason {
        StopReason::Converged => {}
        // Polishing the last state of a run that never came to rest would hand over whatever
        // fixed point Newton lands on (typically an unstable one the orbit circles).
        StopReason::MaxIterations => {
            return Ok(SteadyStateReport {
                range: settled.range,
                ..SteadyStateReport::new(
                    circuit,
                    &settled.state,
                    settled.steps,
                    StopReason::NotSettled,
                    "simulate",
                )
            });
        }
        reason => {
            return Ok(SteadyStateReport::new(
                circuit,
                &settled.state,
                settled.steps,
                reason,
                "simulate",
            ));
        }
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
