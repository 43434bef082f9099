//! Evaluation: loss and accuracy of a model over a dataset, and of a saved checkpoint
//! (`organics eval`).

use std::path::{Path, PathBuf};

use organics_data::{Batcher, Dataset, Order};
use serde::{Deserialize, Serialize};

use super::Data;
use super::engine::Trainer;
use crate::checkpoint::{self, TrainingState};
use crate::error::TrainError;

/// Loss and accuracy over a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss per sample.
    pub loss: f64,
    /// Fraction classified correctly.
    pub accuracy: f64,
    /// Samples.
    pub samples: usize,
}

impl Trainer {
    /// Loss and accuracy over `data` (in order, batches of the config's size).
    pub fn evaluate(&mut self, data: &Dataset) -> Result<Evaluation, TrainError> {
        let batcher = Batcher::new(
            data,
            self.config.view,
            self.config.batch_size,
            Order::InOrder,
        )?;
        let mut epoch = batcher.epoch(0);
        let (mut loss, mut correct) = (0.0, 0);
        while let Some(batch) = epoch.next_batch() {
            let (l, c) = self.forward_batch(batch)?;
            loss += l;
            correct += c;
        }
        let n = data.len().max(1);
        Ok(Evaluation {
            loss: loss / n as f64,
            accuracy: correct as f64 / n as f64,
            samples: data.len(),
        })
    }
}

/// A trained model loaded from a checkpoint.
#[derive(Debug)]
pub struct Loaded {
    /// The trainer holding the model (and its optimiser state).
    pub trainer: Trainer,
    /// The checkpoint's training state.
    pub state: TrainingState,
    /// The checkpoint directory.
    pub dir: PathBuf,
}

/// Loads a checkpoint (`path`: a checkpoint directory, or a run directory, then its `best`).
pub fn load(path: &Path, rows: usize, cols: usize) -> Result<Loaded, TrainError> {
    let dir = checkpoint::resolve(path, "best")?;
    let state = checkpoint::read_state(&dir)?;
    let shape = state.config.view.shape(rows, cols)?;
    let mut trainer = Trainer::new(&state.config, shape.steps, shape.input_dim)?;
    checkpoint::load_model(&dir, &state, &mut trainer.net.params)?;
    Ok(Loaded {
        trainer,
        state,
        dir,
    })
}

/// Report of `organics eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The checkpoint directory.
    pub checkpoint: PathBuf,
    /// Epochs finished when it was written.
    pub epoch: u64,
    /// Trainable parameters.
    pub parameter_count: usize,
    /// Validation set.
    pub validation: Evaluation,
    /// Test set.
    pub test: Evaluation,
}

/// Evaluates a checkpoint on the validation and test sets of `data`.
pub fn evaluate_checkpoint(path: &Path, data: &Data) -> Result<EvalReport, TrainError> {
    let mut loaded = load(path, data.test.rows(), data.test.cols())?;
    let validation = loaded.trainer.evaluate(&data.validation)?;
    let test = loaded.trainer.evaluate(&data.test)?;
    Ok(EvalReport {
        checkpoint: loaded.dir,
        epoch: loaded.state.epoch,
        parameter_count: loaded.state.parameter_count,
        validation,
        test,
    })
}
