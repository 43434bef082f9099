//! Steady states of the circuit: `f(y, a) = 0`.
//!
//! From `dy/dt = 0` and `da/dt = 0` of the main model (spec §B.2):
//!
//! ```text
//! (I − diag(1 − √a) W_r) y = b ⊙ z
//! a = b0² σ² + W (y² ⊙ a)
//! ```
//!
//! | route | applies to | module |
//! |---|---|---|
//! | closed form `a = b0²σ² + W (b z)²`, `y = b z / √a` | W_r = I, both models | [`closed_form()`] |
//! | the paper's iterative algorithm (and the authors' legacy `diag(a)` variant) | main model, any W_r | [`iterative()`] |
//! | Newton on the full 2n system with the analytic Jacobian | any circuit, from a nearby guess | [`newton`] |
//! | time integration to rest | any circuit | [`crate::integrate::settle`] |
//!
//! Every route returns a [`SteadyStateReport`]: the state, the scaled residual
//! `max_i |f_i| τ_i`, the iteration count and a [`StopReason`].
//!
//! **No stability verdict here.** A report says whether a fixed point was found, not whether
//! it attracts: that judgement (balanced eigenvalues, one tolerance) belongs to
//! organics-lyapunov, which depends on this crate and not the other way round. Callers that need
//! the state the circuit *rests* at use `organics_lyapunov::steady_state`, which attaches the
//! verdict and, for [`Method::Auto`], falls back to simulation when the fixed point found does
//! not attract.

pub mod closed_form;
pub mod iterative;
pub mod newton;
pub mod solve;

pub use closed_form::closed_form;
pub use iterative::{IterationStop, IterativeOptions, IterativeReport, LinearSystem, iterative};
pub use newton::{NewtonOptions, newton_polish};
pub use solve::{Method, REST_START, solve};

use crate::error::CoreError;
use crate::params::Circuit;

/// Why a solver or integrator stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The residual fell below the tolerance (or the answer is exact).
    Converged,
    /// The iteration or step budget ran out first.
    MaxIterations,
    /// The state or residual stopped being finite.
    NonFinite,
    /// Newton's line search could not reduce the residual any further.
    Stalled,
    /// A simulation used its whole step budget without coming to rest: the circuit oscillates
    /// (or drifts), so there is no steady state to report; the report's `range` says where the
    /// state was still moving.
    NotSettled,
}

impl StopReason {
    /// A short name for reports (`converged`, `max-iterations`, `non-finite`, `stalled`,
    /// `not-settled`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Converged => "converged",
            Self::MaxIterations => "max-iterations",
            Self::NonFinite => "non-finite",
            Self::Stalled => "stalled",
            Self::NotSettled => "not-settled",
        }
    }
}

/// The outcome of a steady-state computation.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyStateReport {
    /// Principal-neuron potentials.
    pub y: Vec<f64>,
    /// Modulator potentials.
    pub a: Vec<f64>,
    /// Scaled residual `max_i |f_i(y, a)| τ_i` at the answer.
    pub residual: f64,
    /// Iterations (or steps) used.
    pub iterations: usize,
    /// Why the solver stopped.
    pub reason: StopReason,
    /// The method that produced it (`closed-form`, `iterative`, `newton`, ...).
    pub method: &'static str,
    /// For [`StopReason::NotSettled`]: `[min, max]` of every variable of `[y; a]` over the last
    /// tenth of the simulation, the range the state still moved in.
    pub range: Option<Vec<[f64; 2]>>,
}

impl SteadyStateReport {
    /// Build a report for the state `[y; a]` of `circuit`, computing its residual.
    pub fn new(
        circuit: &Circuit,
        x: &[f64],
        iterations: usize,
        reason: StopReason,
        method: &'static str,
    ) -> Self {
        let n = circuit.n();
        Self {
            y: x[..n].to_vec(),
            a: x[n..].to_vec(),
            residual: circuit.residual(x),
            iterations,
            reason,
            method,
            range: None,
        }
    }

    /// The state `[y; a]`.
    pub fn state(&self) -> Vec<f64> {
        let mut x = self.y.clone();
        x.extend_from_slice(&self.a);
        x
    }

    /// Whether the solver converged.
    pub fn converged(&self) -> bool {
        self.reason == StopReason::Converged
    }

    /// The report if it converged, else [`CoreError::NotConverged`] with its numbers.
    ///
    /// # Errors
    /// [`CoreError::NotConverged`].
    pub fn into_result(self, tolerance: f64) -> Result<Self, CoreError> {
        if self.converged() {
            Ok(self)
        } else {
            Err(CoreError::NotConverged {
                method: self.method.to_string(),
                residual: self.residual,
                tolerance,
                iterations: self.iterations,
                reason: self.reason.name().to_string(),
            })
        }
    }
}
