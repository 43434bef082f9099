//! The crate's error type.

use organics_core::CoreError;
use std::path::PathBuf;

/// Every failure organics-lyapunov reports. Each variant carries its numbers and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LyapunovError {
    /// An error of the circuit layer (invalid circuit, steady state that did not converge, ...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The circuit never came to rest in simulation: there is no steady state to analyse.
    #[error(
        "the circuit did not come to rest in {steps} simulation steps (not-settled): its state still moves over a range up to {width:.3e} wide; it oscillates or drifts, so it has no steady state to analyse"
    )]
    NotSettled {
        /// Simulation steps taken.
        steps: usize,
        /// The widest range `max − min` of a variable over the last tenth of the run.
        width: f64,
    },
    /// faer's eigensolver reached its iteration limit.
    #[error(
        "eigen-decomposition of the {dim} x {dim} Jacobian did not converge (QR iteration limit); the Jacobian may be badly scaled or contain huge entries"
    )]
    EigenNoConvergence {
        /// Dimension of the matrix.
        dim: usize,
    },
    /// The matrix handed to the eigensolver is not square.
    #[error("{what}: expected a square matrix, found {rows} x {cols}")]
    NotSquare {
        /// What the matrix is.
        what: &'static str,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// The Jacobian has a NaN or infinite entry.
    #[error(
        "Jacobian entry ({row}, {col}) is not finite ({value}); the state is outside the finite range of the model"
    )]
    NonFiniteJacobian {
        /// Row of the entry.
        row: usize,
        /// Column of the entry.
        col: usize,
        /// The value.
        value: f64,
    },
    /// A state vector has the wrong length.
    #[error("state: expected length 2n = {expected}, found {found}")]
    StateLength {
        /// 2n.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A phase-plane tool was given a circuit with more than one neuron.
    #[error(
        "{what} needs a one-neuron circuit (n = 1, the 2-D phase plane); this circuit has n = {n}"
    )]
    NotPlanar {
        /// The tool.
        what: &'static str,
        /// The circuit's n.
        n: usize,
    },
    /// A construction that only exists for some circuits was asked for another.
    #[error("{what}: {reason}")]
    NotApplicable {
        /// The construction, e.g. `damped-oscillator form`.
        what: &'static str,
        /// Why it does not apply.
        reason: &'static str,
    },
    /// A run that does not settle showed no periodic orbit, or shooting did not converge.
    #[error("no limit cycle: {reason}")]
    NoCycle {
        /// What was seen, with its numbers.
        reason: String,
    },
    /// An option is out of range.
    #[error("{option} = {value}: {reason}")]
    BadOption {
        /// The option.
        option: &'static str,
        /// The value given.
        value: f64,
        /// What it must satisfy.
        reason: &'static str,
    },
    /// A figure file name does not end in `.svg` or `.png`.
    #[error("{}: unsupported figure format; the file name must end in .svg or .png", path.display())]
    FigureFormat {
        /// The file asked for.
        path: PathBuf,
    },
    /// The drawing backend failed (file not writable, font missing, ...).
    #[error("drawing {}: {message}", path.display())]
    Draw {
        /// The figure file.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
    /// A directory for figures could not be created.
    #[error("creating {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
}

impl LyapunovError {
    /// Whether the error is the caller's input (a bad circuit, option, state or file name: exit
    /// status 2 of the command line) rather than a computation that ran and failed (a circuit
    /// that never rests, a solve that did not converge, an eigensolver failure, a figure that
    /// could not be drawn: exit status 1).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            LyapunovError::Core(e) => e.is_invalid_input(),
            LyapunovError::NotSettled { .. }
            | LyapunovError::EigenNoConvergence { .. }
            | LyapunovError::NonFiniteJacobian { .. }
            | LyapunovError::Draw { .. }
            | LyapunovError::Io { .. } => false,
            _ => true,
        }
    }
}
