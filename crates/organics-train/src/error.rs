//! The crate's error type, [`TrainError`]: every failure of configuration, data, numerics and
//! checkpoints, each variant naming the field or file and carrying the numbers involved.

use std::path::PathBuf;

use organics_core::CoreError;
use organics_data::DataError;
use organics_grad::GradError;

/// Everything training, evaluation and certification can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A configuration field has an invalid value.
    #[error("config field `{field}`: {value} ({reason})")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// The value given, as text.
        value: String,
        /// What is required.
        reason: &'static str,
    },
    /// A configuration file could not be parsed.
    #[error("{path}: invalid config: {message}")]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the field and line).
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A checkpoint is missing a part, is corrupt, or does not match the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint tensor has the wrong shape for the model.
    #[error("checkpoint {path}: tensor {name:?} has shape {found:?}, the model needs {expected:?}")]
    CheckpointShape {
        /// The checkpoint file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Shape the model needs.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// The loss or a gradient became NaN or infinite.
    #[error("non-finite {what} at epoch {epoch}, step {step} (value {value})")]
    NonFinite {
        /// Which quantity.
        what: &'static str,
        /// Epoch (from 1).
        epoch: u64,
        /// Global step.
        step: u64,
        /// The value.
        value: f64,
    },
    /// A frozen tensor does not hold the value the training engine assumes (e.g. the fixed
    /// time parameters of the ORGaNICs RNN, which organics-grad takes to be 1).
    #[error("tensor {name:?}: entry {index} is {value}, but this frozen tensor must be {expected}")]
    FrozenValue {
        /// Tensor name.
        name: String,
        /// First offending entry.
        index: usize,
        /// Its value.
        value: f32,
        /// The value required.
        expected: f32,
    },
    /// `--resume` was given a run whose training already finished.
    #[error("run {path} already finished all {epochs} epochs (extend it with --epochs N)")]
    AlreadyFinished {
        /// The run directory.
        path: PathBuf,
        /// Configured epochs.
        epochs: u64,
    },
    /// A fresh run was pointed at a directory that already holds something.
    #[error(
        "run directory {dir} exists; pass --overwrite to replace it (the old run stays until the new one's first checkpoint), or --resume {dir} to continue it"
    )]
    RunExists {
        /// The run directory.
        dir: PathBuf,
    },
    /// Another process holds the run directory's lock.
    #[error("run directory {dir} is in use: its lock {lock} is held by {holder}")]
    RunLocked {
        /// The run directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder, as it wrote itself into the lock file (pid, host, start time).
        holder: String,
    },
    /// Data loading failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A tape operation failed.
    #[error(transparent)]
    Grad(#[from] GradError),
    /// Circuit analysis failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An eigenvalue computation failed.
    #[error("eigenvalues of a {n} x {n} Jacobian did not converge")]
    Eigen {
        /// Matrix size.
        n: usize,
    },
    /// A signal (SIGINT, SIGTERM, SIGHUP) arrived during a long computation that stopped early.
    #[error("interrupted by a signal during {during}")]
    Interrupted {
        /// The computation that stopped.
        during: &'static str,
    },
    /// The worker thread pool could not be built.
    #[error("thread pool with {threads} threads: {message}")]
    ThreadPool {
        /// Requested threads.
        threads: usize,
        /// Why.
        message: String,
    },
}

impl TrainError {
    /// A [`TrainError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }

    /// A [`TrainError::Checkpoint`] for `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> TrainError {
        TrainError::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Whether the error means bad input (exit status 2) rather than a failed computation.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            TrainError::NonFinite { .. } | TrainError::Eigen { .. } | TrainError::ThreadPool { .. }
        )
    }
}
