//! Metrics of a run, one JSON object per line in `metrics.jsonl`:
//!
//! - `{"type":"step","epoch","step","global_step","loss","grad_norm","lr","seconds"}` after every optimiser
//!   step (`loss` is the batch's training loss, `grad_norm` the global L2 norm of the gradient
//!   before any clipping);
//! - `{"type":"epoch", "epoch", "global_step", "lr", "train_loss", "train_accuracy", "val_loss",
//!   "val_accuracy", "test_loss", "test_accuracy", "seconds"}` after every epoch.
//!
//! Every line carries `global_step`, the optimiser steps taken when it was written; resuming from
//! a checkpoint at step `s` drops the lines written after `s`, so the file reads as one run.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// One optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Epoch (0-based).
    pub epoch: u64,
    /// Batch within the epoch (0-based).
    pub step: u64,
    /// Steps taken after this one.
    pub global_step: u64,
    /// Batch training loss.
    pub loss: f64,
    /// Global gradient L2 norm (before clipping).
    pub grad_norm: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall-clock seconds of the step (forward, backward, update).
    pub seconds: f64,
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (0-based).
    pub epoch: u64,
    /// Steps taken at the end of the epoch.
    pub global_step: u64,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's batches (weights changing during the epoch).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches.
    pub train_accuracy: f64,
    /// Validation loss.
    pub val_loss: f64,
    /// Validation accuracy.
    pub val_accuracy: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Wall-clock seconds of the epoch's training steps (evaluation excluded).
    pub seconds: f64,
}

/// A line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Record {
    /// A step.
    Step(StepMetrics),
    /// An epoch.
    Epoch(EpochMetrics),
}

impl Record {
    fn global_step(&self) -> u64 {
        match self {
            Record::Step(s) => s.global_step,
            Record::Epoch(e) => e.global_step,
        }
    }
}

/// Appends records to a JSONL file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl MetricsLog {
    /// Opens `path` for appending, first dropping lines written after `keep_through` steps
    /// (`None`: start a fresh file).
    pub fn open(path: &Path, keep_through: Option<u64>) -> Result<MetricsLog, TrainError> {
        let kept = match keep_through {
            Some(g) if path.exists() => read(path)?
                .into_iter()
                .filter(|r| r.global_step() <= g)
                .collect(),
            _ => Vec::new(),
        };
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).expect("record serialises"));
            text.push('\n');
        }
        std::fs::write(path, text).map_err(TrainError::io(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(TrainError::io(path))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file: std::io::BufWriter::new(file),
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &Record) -> Result<(), TrainError> {
        let line = serde_json::to_string(record).expect("record serialises");
        writeln!(self.file, "{line}").map_err(TrainError::io(&self.path))
    }

    /// Flushes to disk.
    pub fn flush(&mut self) -> Result<(), TrainError> {
        self.file.flush().map_err(TrainError::io(&self.path))
    }
}

/// Reads every record of a metrics file.
pub fn read(path: &Path) -> Result<Vec<Record>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::checkpoint(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// The global gradient norm of every step of a run, as `(global_step, grad_norm)`.
pub fn grad_norm_trace(out_dir: &Path) -> Result<Vec<(u64, f64)>, TrainError> {
    Ok(read(&out_dir.join("metrics.jsonl"))?
        .into_iter()
        .filter_map(|r| match r {
            Record::Step(s) => Some((s.global_step, s.grad_norm)),
            Record::Epoch(_) => None,
        })
        .collect())
}

/// The per-epoch metrics of a run.
pub fn epoch_metrics(out_dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    Ok(read(&out_dir.join("metrics.jsonl"))?
        .into_iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(e),
            Record::Step(_) => None,
        })
        .collect())
}
