//! Metrics of a run, one JSON object per line in `metrics.jsonl`:
//!
//! - `{"type":"step","epoch","step","global_step","loss","grad_norm","lr","seconds"}` after every optimiser
//!   step (`loss` is the batch's training loss, `grad_norm` the global L2 norm of the gradient
//!   before any clipping);
//! - `{"type":"epoch", "epoch", "global_step", "lr", "train_loss", "train_accuracy", "val_loss",
//!   "val_accuracy", "test_loss", "test_accuracy", "seconds"}` after every epoch.
//!
//! Epochs and steps within an epoch are numbered from 1 (as in the progress line, `eval` and
//! `state.json`); runs written by checkpoint format 1 numbered both from 0 and are renumbered
//! when resumed ([`Numbering`]).
//!
//! Every line carries `global_step`, the optimiser steps taken when it was written; resuming from
//! a checkpoint at step `s` drops the lines written after `s`, so the file reads as one run. A
//! last line cut short (a process killed while writing it) is dropped on resumption with a
//! warning; a malformed line anywhere else is an error.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// One optimiser step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// Epoch (from 1).
    pub epoch: u64,
    /// Batch within the epoch (from 1).
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
    /// Epoch (from 1).
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

/// How the epochs of an existing metrics file are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// From 1 (checkpoint format 2 onwards).
    FromOne,
    /// From 0, epochs and steps within an epoch (checkpoint format 1): renumbered on reopening.
    FromZero,
}

/// A metrics file reopened for a resumed run.
#[derive(Debug)]
pub struct Reopened {
    /// The log, holding exactly `kept`.
    pub log: MetricsLog,
    /// The records up to the checkpoint, numbered from 1.
    pub kept: Vec<Record>,
    /// What was dropped besides the lines after the checkpoint (a cut-short last line).
    pub warning: Option<String>,
}

impl MetricsLog {
    /// Starts a fresh, empty file at `path`.
    pub fn create(path: &Path) -> Result<MetricsLog, TrainError> {
        Self::write_all(path, &[])
    }

    /// Reopens `path` for a run resumed from a checkpoint taken after `keep_through` steps:
    /// lines written later are dropped, a cut-short last line too, and `numbering` is made
    /// [`Numbering::FromOne`]. A missing file counts as empty.
    pub fn reopen(
        path: &Path,
        keep_through: u64,
        numbering: Numbering,
    ) -> Result<Reopened, TrainError> {
        let (records, warning) = if path.exists() {
            read_lenient(path)?
        } else {
            (Vec::new(), None)
        };
        let kept: Vec<Record> = records
            .into_iter()
            .filter(|r| r.global_step() <= keep_through)
            .map(|mut r| {
                if numbering == Numbering::FromZero {
                    match &mut r {
                        Record::Step(s) => {
                            s.epoch += 1;
                            s.step += 1;
                        }
                        Record::Epoch(e) => e.epoch += 1,
                    }
                }
                r
            })
            .collect();
        let log = Self::write_all(path, &kept)?;
        Ok(Reopened { log, kept, warning })
    }

    fn write_all(path: &Path, records: &[Record]) -> Result<MetricsLog, TrainError> {
        let mut text = String::new();
        for r in records {
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

fn parse_lines(path: &Path, text: &str) -> Vec<(usize, Result<Record, TrainError>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let r = serde_json::from_str(l)
                .map_err(|e| TrainError::checkpoint(path, format!("line {}: {e}", i + 1)));
            (i + 1, r)
        })
        .collect()
}

/// Reads every record of a metrics file.
pub fn read(path: &Path) -> Result<Vec<Record>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    parse_lines(path, &text)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// Reads every record of a metrics file, dropping a last line that does not parse (with a
/// warning saying so).
fn read_lenient(path: &Path) -> Result<(Vec<Record>, Option<String>), TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let mut lines = parse_lines(path, &text);
    let mut warning = None;
    if let Some((n, Err(e))) = lines.last() {
        warning = Some(format!(
            "{}: dropped line {n}, cut short ({e})",
            path.display()
        ));
        lines.pop();
    }
    let records = lines
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Result<_, _>>()?;
    Ok((records, warning))
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
