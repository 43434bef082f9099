//! Errors of the command line, each printed as one line.

use organics_core::CoreError;
use organics_core::params::SpecError;
use organics_data::DataError;
use std::path::PathBuf;

/// Everything the binary can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The circuit file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The circuit file is invalid.
    #[error("{path}: {source}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// The offending field.
        source: SpecError,
    },
    /// A command-line value is malformed.
    #[error("{flag}: {reason}")]
    BadArg {
        /// The flag.
        flag: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A numerical option or method does not fit the circuit.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A computation ran but did not succeed; its report was printed.
    #[error("{0}")]
    Failed(String),
    /// A stability analysis failed.
    #[error(transparent)]
    Lyapunov(#[from] organics_lyapunov::LyapunovError),
    /// Data could not be fetched, verified or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Training, evaluation or certification failed.
    #[error(transparent)]
    Train(#[from] organics_train::TrainError),
    /// The requested output would not fit in memory; says how much it needs.
    #[error("{0}")]
    TooLarge(String),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

impl CliError {
    /// 1 for a computation that ran and failed (a solve that did not converge, a numerical
    /// failure, output that could not be written), 2 for invalid input.
    pub fn exit_code(&self) -> u8 {
        use organics_lyapunov::LyapunovError as L;
        let failed = match self {
            CliError::Failed(_) | CliError::Output(_) => true,
            CliError::Data(DataError::FetchFailed { .. }) => true,
            CliError::Train(e) => !e.is_invalid_input(),
            CliError::Core(e) | CliError::Lyapunov(L::Core(e)) => !e.is_invalid_input(),
            CliError::Lyapunov(
                L::NotSettled { .. }
                | L::EigenNoConvergence { .. }
                | L::NonFiniteJacobian { .. }
                | L::NoCycle { .. }
                | L::Draw { .. },
            ) => true,
            _ => false,
        };
        if failed { 1 } else { 2 }
    }

    /// Whether the reader of standard output went away (`| head`): not an error of ours.
    pub fn is_closed_pipe(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
