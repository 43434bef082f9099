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
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(std::io::Error),
}

impl CliError {
    /// 1 for a computation that ran and failed, 2 for invalid input.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Data(DataError::FetchFailed { .. }) => 1,
            CliError::Train(e) if !e.is_invalid_input() => 1,
            _ => 2,
        }
    }
}
