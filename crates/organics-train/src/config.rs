//! The typed training configuration [`TrainConfig`]: task, model, optimiser, schedule, data and
//! diagnostics, serialised as JSON next to every run.
//!
//! Presets follow the paper (docs/model.md#sequential-mnist-training for sequential MNIST, docs/model.md#static-mnist-training for static MNIST):
//!
//! | task | lr | weight decay | StepLR | batch | epochs |
//! |---|---|---|---|---|---|
//! | `mnist` | 1e-3 | 1e-5 | every 100 epochs, γ = 0.8 | 256 | 200 |
//! | `smnist`, `psmnist` | 1e-2 | 1e-5 | every 30 epochs, γ = 0.8 | 256 | 300 |
//!
//! Adam uses PyTorch's L2 semantics (`g ← g + λ θ` before the moments) and no gradient clipping
//! unless [`Clipping::GlobalNorm`] is chosen. Every random choice (initialisation, epoch order)
//! derives from [`TrainConfig::seed`].

use std::path::{Path, PathBuf};

use organics_data::{SplitDraw, View};
use organics_grad::optim::StepLr;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// The learning problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Static MNIST (Table 1): the 784-pixel image at once.
    Mnist,
    /// Sequential MNIST (Table 2): one pixel per step.
    Smnist,
    /// Permuted sequential MNIST (Table 2): one pixel per step in a fixed random order.
    Psmnist,
}

impl Task {
    /// Whether the task feeds a sequence to a recurrent model.
    pub fn is_sequential(self) -> bool {
        !matches!(self, Task::Mnist)
    }

    /// The paper's view of the images for this task.
    pub fn default_view(self) -> View {
        match self {
            Task::Mnist => View::Static,
            Task::Smnist => View::Sequential,
            Task::Psmnist => View::paper_permuted(),
        }
    }
}

/// The network architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Static MNIST: autoencoder + one fixed-point ORGaNICs layer; sequential: the ORGaNICs RNN.
    Organics,
    /// Static MNIST: autoencoder + two fixed-point ORGaNICs layers (`hidden` → `hidden2`).
    #[serde(rename = "organics-2layer")]
    Organics2Layer,
    /// Static MNIST: autoencoder + a ReLU hidden layer of `hidden` units.
    Mlp,
    /// Sequential MNIST: a one-layer LSTM.
    Lstm,
    /// Sequential MNIST: a one-layer tanh RNN.
    Rnn,
}

/// `W_r` of a fixed-point ORGaNICs layer (docs/model.md#static-fixed-point-layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaticRecurrence {
    /// `W_r = I`: closed-form steady state (docs/model.md#closed-form-steady-state).
    Identity,
    /// Learned `W_r`, spectrally normalised to `‖W_r‖₂ = 1`, iterative steady state (docs/model.md#iterative-algorithm).
    SpectralNorm,
}

/// Which linear system the iterative steady state solves for `y` (docs/model.md#iterative-algorithm, #legacy-iteration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixedPointSystem {
    /// `(I − W_r + diag(√a) W_r) y = b ⊙ z`: the true fixed point (default).
    SqrtA,
    /// `(I − W_r + diag(a) W_r) y = b ⊙ z`: the authors' `ff.py` (legacy, to reproduce it).
    LegacyDiagA,
}

/// How the fixed-point layers solve their per-sample linear systems
/// `(I − W_r + diag(d) W_r) y = b ⊙ z` (docs/model.md#solving-the-layers-linear-systems).
/// Both solve them to the accuracy of `f32`; they differ in speed and in rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixedPointSolver {
    /// Gaussian elimination with partial pivoting of every sample's system (interleaved LU;
    /// the runs whose `config.json` predates this field).
    Lu,
    /// Sweeps `y ← b ⊙ z − (d − 1) ⊙ (W_r y)` from the previous iterate, one GEMM for the
    /// batch per sweep, each sample stopped at `8 ε` (`f32`); LU for a sample whose sweeps do
    /// not converge within `n + 8` (default).
    Sweeps,
}

/// Variant of the ORGaNICs RNN cell (docs/model.md#rnn-cell-as-trained, #rnn-cell-as-trained).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellPreset {
    /// The NeurIPS-era cell used for Table 2 (docs/model.md#rnn-cell-as-trained).
    Paper,
    /// The post-NeurIPS cell of the reference repository's HEAD (docs/model.md#rnn-cell-as-trained).
    Head,
}

/// Whether the RNN's time constants are learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TauMode {
    /// `Δt/τ = max · sigmoid(p)` with learned `p` (Table 2 "ORGaNICs").
    Learned,
    /// `p` frozen at 1 (Table 2 "fixed time constants").
    Fixed,
}

/// How the static models form their loss gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StaticPath {
    /// organics-grad's fused engine ([`organics_grad::static_net`]) for the models it covers,
    /// the one-layer ORGaNICs model with `W_r = I` and the MLP; the others on tapes (the
    /// preset).
    Fused,
    /// Every static model recorded on tapes, as the runs whose `config.json` predates this
    /// field were (the reference the engine is tested against).
    Tape,
}

/// Gradient clipping (off by default: the paper trains without it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Clipping {
    /// No clipping.
    None,
    /// Rescale the gradient so that its global L2 norm is at most `max_norm`.
    GlobalNorm {
        /// Largest allowed global norm.
        max_norm: f64,
    },
}

/// Everything that defines a training run. Saved as `config.json` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The problem.
    pub task: Task,
    /// The architecture.
    pub model: ModelKind,
    /// Units of the (first) hidden layer / recurrent cell.
    pub hidden: usize,
    /// Units of the second ORGaNICs layer (`organics-2layer` only).
    pub hidden2: usize,
    /// Width of the autoencoder's code, the input of the first static layer (40 in the paper).
    pub code_dim: usize,
    /// `W_r` of the fixed-point layers.
    pub static_recurrence: StaticRecurrence,
    /// Linear system of the iterative steady state.
    pub fixed_point_system: FixedPointSystem,
    /// Iterations of the iterative steady state (10 in the reference code).
    pub fixed_point_iterations: usize,
    /// How the iterative steady state solves its linear systems. Configs written before this
    /// field existed used LU, and read back as such.
    #[serde(default = "legacy_solver")]
    pub fixed_point_solver: FixedPointSolver,
    /// How the static models form their gradients. Configs written before this field existed
    /// used tapes, and read back as such, so a resumed run repeats to the bit.
    #[serde(default = "legacy_static_path")]
    pub static_path: StaticPath,
    /// ORGaNICs RNN cell variant.
    pub cell: CellPreset,
    /// Learned or fixed time constants of the RNN.
    pub tau: TauMode,
    /// How images are presented (defaults to the task's view; `downsampled14` for quick runs).
    pub view: View,
    /// How the 57 000 / 3 000 train/validation split is drawn: the paper's own (torch, seed 73;
    /// the preset) or a ChaCha8 draw. Configs written before this field existed used the
    /// ChaCha8 draw with seed 73, and read back as such.
    #[serde(default = "legacy_split")]
    pub split: SplitDraw,
    /// Number of epochs.
    pub epochs: u64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// L2 weight decay added to the gradient (PyTorch `Adam(weight_decay=…)`).
    pub weight_decay: f64,
    /// StepLR period in epochs.
    pub lr_step_epochs: u64,
    /// StepLR factor.
    pub lr_gamma: f64,
    /// Gradient clipping.
    pub clipping: Clipping,
    /// Seed of the initialisation and of the epoch shuffles.
    pub seed: u64,
    /// Worker threads for data parallelism (results are reproducible for a fixed count).
    pub threads: usize,
    /// Time steps whose weight gradients the BPTT engines of the recurrent models form with
    /// one GEMM. It fixes the order of the gradients' sums, so a run repeats to the bit only
    /// with the same value. Configs written before this field existed used 16, and read back
    /// as such; presets use organics-grad's default, 4 (faster: docs/performance.md).
    #[serde(default = "legacy_weight_grad_block")]
    pub weight_grad_block: usize,
    /// Train on the first `n` training samples only.
    pub train_subset: Option<usize>,
    /// Evaluate on the first `n` validation and test samples only.
    pub eval_subset: Option<usize>,
    /// Run the stability observers every `k` epochs (0: never).
    pub observe_every: u64,
    /// Test inputs the observers use.
    pub observe_samples: usize,
    /// MNIST directory (default: `$ORGANICS_DATA` or `~/.cache/organics/mnist`).
    pub data_dir: Option<PathBuf>,
}

/// The split of runs whose `config.json` predates the `split` field.
fn legacy_split() -> SplitDraw {
    SplitDraw::ChaCha8 {
        seed: organics_data::mnist::PAPER_SPLIT_SEED,
    }
}

/// The solver of runs whose `config.json` predates the `fixed_point_solver` field.
fn legacy_solver() -> FixedPointSolver {
    FixedPointSolver::Lu
}

/// How the runs whose `config.json` predates the `static_path` field formed gradients.
fn legacy_static_path() -> StaticPath {
    StaticPath::Tape
}

/// The weight-gradient block of runs whose `config.json` predates the `weight_grad_block`
/// field.
fn legacy_weight_grad_block() -> usize {
    organics_grad::BpttConfig::LEGACY_WEIGHT_GRAD_BLOCK
}

impl TrainConfig {
    /// The paper's settings for `task` and `model` (docs/model.md#sequential-mnist-training, #static-mnist-training).
    pub fn preset(task: Task, model: ModelKind) -> TrainConfig {
        let sequential = task.is_sequential();
        let (hidden, hidden2) = match model {
            ModelKind::Organics2Layer => (120, 60),
            _ if sequential => (128, 0),
            _ => (50, 0),
        };
        let static_recurrence = match model {
            ModelKind::Organics2Layer => StaticRecurrence::SpectralNorm,
            _ => StaticRecurrence::Identity,
        };
        TrainConfig {
            task,
            model,
            hidden,
            hidden2,
            code_dim: 40,
            static_recurrence,
            fixed_point_system: FixedPointSystem::SqrtA,
            fixed_point_iterations: 10,
            fixed_point_solver: FixedPointSolver::Sweeps,
            static_path: StaticPath::Fused,
            cell: CellPreset::Paper,
            tau: TauMode::Learned,
            view: task.default_view(),
            split: SplitDraw::Paper,
            epochs: if sequential { 300 } else { 200 },
            batch_size: 256,
            lr: if sequential { 1e-2 } else { 1e-3 },
            weight_decay: 1e-5,
            lr_step_epochs: if sequential { 30 } else { 100 },
            lr_gamma: 0.8,
            clipping: Clipping::None,
            seed: 0,
            threads: 2,
            weight_grad_block: organics_grad::BpttConfig::default().weight_grad_block,
            train_subset: None,
            eval_subset: None,
            observe_every: if sequential { 0 } else { 1 },
            observe_samples: 1000,
            data_dir: None,
        }
    }

    /// Reads a full config from a JSON file (unknown fields are errors).
    pub fn from_file(path: &Path) -> Result<TrainConfig, TrainError> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        let cfg: TrainConfig =
            serde_json::from_str(&text).map_err(|e| TrainError::ConfigParse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(cfg)
    }

    /// The config as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a TrainConfig always serialises")
    }

    /// Checks every field; the error names the first offending one.
    pub fn validate(&self) -> Result<(), TrainError> {
        fn bad(field: &'static str, value: impl ToString, reason: &'static str) -> TrainError {
            TrainError::InvalidConfig {
                field,
                value: value.to_string(),
                reason,
            }
        }
        let sequential = self.task.is_sequential();
        match (sequential, self.model) {
            (true, ModelKind::Organics2Layer | ModelKind::Mlp) => {
                return Err(bad(
                    "model",
                    format!("{:?}", self.model),
                    "static-MNIST model; use organics, lstm or rnn for smnist/psmnist",
                ));
            }
            (false, ModelKind::Lstm | ModelKind::Rnn) => {
                return Err(bad(
                    "model",
                    format!("{:?}", self.model),
                    "sequential model; use organics, organics-2layer or mlp for mnist",
                ));
            }
            _ => {}
        }
        if self.hidden == 0 {
            return Err(bad("hidden", self.hidden, "must be at least 1"));
        }
        if self.model == ModelKind::Organics2Layer && self.hidden2 == 0 {
            return Err(bad("hidden2", self.hidden2, "must be at least 1"));
        }
        if !sequential && self.code_dim == 0 {
            return Err(bad("code_dim", self.code_dim, "must be at least 1"));
        }
        if self.weight_grad_block == 0 {
            return Err(bad(
                "weight_grad_block",
                self.weight_grad_block,
                "must be at least 1",
            ));
        }
        if self.fixed_point_iterations == 0 {
            return Err(bad(
                "fixed_point_iterations",
                self.fixed_point_iterations,
                "must be at least 1",
            ));
        }
        match (sequential, self.view) {
            (false, View::Static) => {}
            (false, v) => return Err(bad("view", v.name(), "static MNIST needs the static view")),
            (true, View::Static) => {
                return Err(bad(
                    "view",
                    "static",
                    "sequential tasks need a sequential view",
                ));
            }
            (true, _) => {}
        }
        if self.epochs == 0 {
            return Err(bad("epochs", self.epochs, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(bad("batch_size", self.batch_size, "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(bad("lr", self.lr, "must be positive and finite"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(bad(
                "weight_decay",
                self.weight_decay,
                "must be non-negative and finite",
            ));
        }
        if self.lr_step_epochs == 0 {
            return Err(bad(
                "lr_step_epochs",
                self.lr_step_epochs,
                "must be at least 1",
            ));
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0 && self.lr_gamma <= 1.0) {
            return Err(bad("lr_gamma", self.lr_gamma, "must lie in (0, 1]"));
        }
        if let Clipping::GlobalNorm { max_norm } = self.clipping
            && !(max_norm.is_finite() && max_norm > 0.0)
        {
            return Err(bad(
                "clipping.max_norm",
                max_norm,
                "must be positive and finite",
            ));
        }
        if self.threads == 0 {
            return Err(bad("threads", self.threads, "must be at least 1"));
        }
        if self.train_subset == Some(0) {
            return Err(bad("train_subset", 0, "must be at least 1"));
        }
        if self.eval_subset == Some(0) {
            return Err(bad("eval_subset", 0, "must be at least 1"));
        }
        if self.observe_every > 0 && self.observe_samples == 0 {
            return Err(bad(
                "observe_samples",
                0,
                "must be at least 1 when observers run",
            ));
        }
        Ok(())
    }

    /// The learning-rate schedule: [`StepLr`] with `η₀ = lr`, step `lr_step_epochs`, `γ = lr_gamma`.
    pub fn schedule(&self) -> StepLr {
        StepLr {
            base_lr: self.lr,
            step_size: usize::try_from(self.lr_step_epochs).unwrap_or(usize::MAX),
            gamma: self.lr_gamma,
        }
    }

    /// The learning rate of `epoch` under StepLR: `lr · γ^⌊epoch / step⌋`.
    pub fn lr_at(&self, epoch: u64) -> f64 {
        self.schedule()
            .lr(usize::try_from(epoch).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cfg` written as JSON without `field` (as a config.json from before the field existed)
    /// and read back.
    fn read_back_without(cfg: &TrainConfig, field: &str) -> TrainConfig {
        let mut value: serde_json::Value = serde_json::from_str(&cfg.to_json()).unwrap();
        value.as_object_mut().unwrap().remove(field);
        serde_json::from_value(value).unwrap()
    }

    /// The `config.json` of the committed run `models/<run>`.
    fn committed_config(run: &str) -> TrainConfig {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(run)
            .join("config.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn presets_use_the_papers_split_and_old_configs_keep_theirs() {
        let cfg = TrainConfig::preset(Task::Psmnist, ModelKind::Organics);
        assert_eq!(cfg.split, SplitDraw::Paper);
        assert_eq!(cfg.view, View::PaperPermutedSequential);
        // A config.json written before the `split` field existed: the same text without it
        // reads back with the ChaCha8 seed-73 split those runs trained on, so they resume as
        // they began.
        let old = read_back_without(&cfg, "split");
        assert_eq!(old.split, SplitDraw::ChaCha8 { seed: 73 });
        // And an old permuted view, `{"kind": "permuted-sequential", "seed": 73}`, stays the
        // ChaCha8 permutation.
        let view: View =
            serde_json::from_str(r#"{"kind":"permuted-sequential","seed":73}"#).unwrap();
        assert_eq!(view, View::PermutedSequential { seed: 73 });
    }

    #[test]
    fn presets_sweep_and_old_configs_factorise() {
        let cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics2Layer);
        assert_eq!(cfg.fixed_point_solver, FixedPointSolver::Sweeps);
        // A config.json written before the `fixed_point_solver` field existed (every committed
        // two-layer run): the same text without it reads back with the LU its run used.
        let old = read_back_without(&cfg, "fixed_point_solver");
        assert_eq!(old.fixed_point_solver, FixedPointSolver::Lu);
        // The committed two-layer run's own config.
        let committed = committed_config("mnist-organics-2layer");
        assert_eq!(committed.fixed_point_solver, FixedPointSolver::Lu);
    }

    #[test]
    fn presets_fuse_the_static_models_and_old_configs_use_tapes() {
        let cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
        assert_eq!(cfg.static_path, StaticPath::Fused);
        // A config.json written before the `static_path` field existed (every committed run):
        // the same text without it reads back with the tapes its run trained on.
        let old = read_back_without(&cfg, "static_path");
        assert_eq!(old.static_path, StaticPath::Tape);
        let committed = committed_config("mnist-organics-50");
        assert_eq!(committed.static_path, StaticPath::Tape);
    }

    #[test]
    fn presets_block_by_four_and_old_configs_by_sixteen() {
        let cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
        assert_eq!(cfg.weight_grad_block, 4);
        // A config.json written before the `weight_grad_block` field existed (every committed
        // run): the same text without it reads back with the 16 its run summed by.
        let old = read_back_without(&cfg, "weight_grad_block");
        assert_eq!(old.weight_grad_block, 16);
        // The committed sMNIST run's own config.
        let committed = committed_config("smnist-organics-128");
        assert_eq!(committed.weight_grad_block, 16);
        // Zero is refused with the field's name.
        let zero = TrainConfig {
            weight_grad_block: 0,
            ..cfg
        };
        let err = zero.validate().unwrap_err().to_string();
        assert!(err.contains("weight_grad_block"), "{err}");
    }
}
