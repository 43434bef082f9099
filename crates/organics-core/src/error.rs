//! The crate's error type.

/// Every failure organics-core reports. Each variant names the offending field and its numbers.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum CoreError {
    /// A vector or matrix has the wrong size.
    #[error("{field}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// The field, e.g. `tau_y` or `w_r`.
        field: String,
        /// What was expected, e.g. `length 3` or `3 x 3`.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A value that must be strictly positive is not.
    #[error("{field}[{index}] = {value}: must be > 0")]
    NonPositive {
        /// The field.
        field: String,
        /// Index of the first offending entry (flattened row-major for matrices).
        index: usize,
        /// The value found.
        value: f64,
    },
    /// A normalisation weight is negative.
    #[error("{field}[{row}][{col}] = {value}: normalisation weights must be >= 0")]
    Negative {
        /// The field.
        field: String,
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The value found.
        value: f64,
    },
    /// A value is NaN or infinite.
    #[error("{field}[{index}] is not finite ({value})")]
    NonFinite {
        /// The field.
        field: String,
        /// Index of the first offending entry (flattened row-major for matrices).
        index: usize,
        /// The value found.
        value: f64,
    },
    /// The circuit has no neurons.
    #[error("z: the input drive is empty; a circuit needs at least one neuron")]
    Empty,
    /// A method was asked for a circuit it does not apply to.
    #[error("{method}: {reason}")]
    NotApplicable {
        /// The method, e.g. `closed-form`.
        method: &'static str,
        /// Why it does not apply and what to use instead.
        reason: String,
    },
    /// An integrator or solver option is out of range.
    #[error("{option} = {value}: {reason}")]
    BadOption {
        /// The option, e.g. `dt`.
        option: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy.
        reason: &'static str,
    },
    /// An adaptive integrator's step size fell below the rounding level of the time: a numerical
    /// failure of the run (a stiff or singular problem), not a bad option.
    #[error(
        "adaptive step size underflowed at t = {t} (step {step:.3e}); the problem may be stiff or singular (try euler with a small dt)"
    )]
    StepSizeUnderflow {
        /// The time reached.
        t: f64,
        /// The rejected step size.
        step: f64,
    },
    /// A linear system in a solver was singular.
    #[error("{solver}: singular linear system at iteration {iteration}")]
    Singular {
        /// The solver.
        solver: &'static str,
        /// Iteration at which it happened.
        iteration: usize,
    },
    /// A steady-state solve did not converge (see [`crate::SteadyStateReport::into_result`]).
    #[error(
        "{method} did not converge: residual {residual:.3e} > tolerance {tolerance:.1e} after {iterations} iterations ({reason}); try more iterations or another method"
    )]
    NotConverged {
        /// The method.
        method: String,
        /// Final scaled residual.
        residual: f64,
        /// Requested tolerance.
        tolerance: f64,
        /// Iterations done.
        iterations: usize,
        /// The stop reason.
        reason: String,
    },
}

impl CoreError {
    /// Whether the error is the caller's input (a bad circuit, option or method): exit status 2
    /// of the command line. The others (a singular system, a non-converged solve, a step size
    /// that underflowed) are computations that ran and failed: exit status 1.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            CoreError::StepSizeUnderflow { .. }
                | CoreError::Singular { .. }
                | CoreError::NotConverged { .. }
        )
    }
}
