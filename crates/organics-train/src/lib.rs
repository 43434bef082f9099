//! # organics-train
//!
//! The `organics` command-line binary: steady states, simulations and data management for
//! ORGaNICs circuits (see the contract in `docs/architecture.md`). The training driver grows
//! here as the gradient crate lands.
//!
//! | module | object |
//! |---|---|
//! | [`json`] | the JSON shapes the command line prints |
//! | [`config`] | the typed training configuration and the paper's presets |
//! | [`params`] | named tensors (PyTorch `state_dict` names) over organics-grad's `StateDict`, and initialisers |
//! | [`model`] | fixed-point ORGaNICs layers, autoencoder, ORGaNICs RNN (and its BPTT engine), LSTM, tanh RNN |
//! | [`trainer`] | the gradient engine, the run driver (resumption, signals, divergence), evaluation |
//! | [`rundir`] | run directories: the lock, no silent overwrite, staging until the first checkpoint |
//! | [`checkpoint`] | safetensors checkpoints and the training state |
//! | [`metrics`] | per-step and per-epoch JSONL metrics |
//! | [`observe`] | stability observers (Jacobian spectra, hidden trajectories) |
//! | [`error`] | [`TrainError`] |
//!
//! Training from code (what `cargo xtask reproduce` calls):
//!
//! ```no_run
//! use organics_train::{ModelKind, ProgressMode, Task, TrainConfig, run};
//! let mut cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
//! cfg.epochs = 2;
//! let summary = run(&cfg, std::path::Path::new("target/runs/mnist"), ProgressMode::Quiet)?;
//! println!("test accuracy {:?}", summary.final_test_accuracy);
//! # Ok::<(), organics_train::TrainError>(())
//! ```

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod json;
pub mod metrics;
pub mod model;
pub mod observe;
pub mod params;
pub mod rundir;
pub mod trainer;

pub use config::{
    CellPreset, Clipping, FixedPointSolver, FixedPointSystem, ModelKind, StaticPath,
    StaticRecurrence, Task, TauMode, TrainConfig,
};
pub use error::TrainError;
pub use rundir::Existing;
pub use trainer::{
    Data, EvalReport, ProgressMode, RunEnd, RunOptions, RunSummary, evaluate_checkpoint, resume,
    resume_with, run, run_with,
};
