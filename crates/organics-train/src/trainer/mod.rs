//! Training: the gradient engine, the run driver and evaluation, one module each.
//!
//! | module | job |
//! |---|---|
//! | [`engine`] | [`Trainer`]: the model, Adam, the worker pool; BPTT engine or tapes; one step |
//! | [`driver`] | fresh and resumed runs: epochs, metrics, checkpoints, signals, divergence |
//! | [`evaluation`] | loss and accuracy over a dataset; loading and evaluating a checkpoint |
//!
//! [`Data`] is the training, validation and test sets a run uses.

use std::path::Path;

use organics_data::{DataCheck, Dataset, Mnist, default_dir};

use crate::config::TrainConfig;
use crate::error::TrainError;

pub mod driver;
pub mod engine;
pub mod evaluation;
pub mod phases;

pub use driver::{
    BestEpoch, Divergence, ProgressMode, RunEnd, RunOptions, RunSummary, resume, resume_with, run,
    run_with,
};
pub use engine::Trainer;
pub use evaluation::{EvalReport, Evaluation, Loaded, evaluate_checkpoint, load};
pub use phases::{PhaseTiming, StepTimes};

/// Training, validation and test sets.
#[derive(Debug, Clone)]
pub struct Data {
    /// Training samples.
    pub train: Dataset,
    /// Validation samples.
    pub validation: Dataset,
    /// Test samples.
    pub test: Dataset,
}

impl Data {
    /// MNIST from `cfg.data_dir` (or the default directory), checked as `check` says, split
    /// 57 000 / 3 000 as `cfg.split` draws it, with the config's subsets applied.
    pub fn mnist(cfg: &TrainConfig, check: DataCheck) -> Result<Data, TrainError> {
        let dir = cfg.data_dir.clone().unwrap_or_else(default_dir);
        let mnist = Mnist::load_checked(&dir, check)?;
        let split = mnist.split(cfg.split)?;
        Ok(Data {
            train: split.train,
            validation: split.validation,
            test: mnist.test,
        }
        .subsets(cfg))
    }

    /// The data a checkpoint (or a run directory's best checkpoint) was trained on, for
    /// evaluating it: its config's split, from `data_dir` when given, one training sample and
    /// `eval_subset` validation and test samples (all when `None`).
    pub fn for_checkpoint(
        path: &Path,
        data_dir: Option<&Path>,
        eval_subset: Option<usize>,
        check: DataCheck,
    ) -> Result<Data, TrainError> {
        let dir = crate::checkpoint::resolve(path, "best")?;
        let mut cfg = crate::checkpoint::read_state(&dir)?.config;
        if let Some(d) = data_dir {
            cfg.data_dir = Some(d.to_path_buf());
        }
        cfg.train_subset = Some(1);
        cfg.eval_subset = eval_subset;
        Self::mnist(&cfg, check)
    }

    /// Applies `train_subset` and `eval_subset`.
    pub fn subsets(self, cfg: &TrainConfig) -> Data {
        let cut = |d: Dataset, n: Option<usize>| match n {
            Some(n) if n < d.len() => d.subset(n),
            _ => d,
        };
        Data {
            train: cut(self.train, cfg.train_subset),
            validation: cut(self.validation, cfg.eval_subset),
            test: cut(self.test, cfg.eval_subset),
        }
    }
}
