//! The run driver: a fresh run or a resumed one, epoch by epoch, with metrics, checkpoints,
//! interruption and divergence.
//!
//! **Run directory.** Locked for the life of the call and, for a fresh run, staged beside the
//! target until its first checkpoint ([`crate::rundir`]).
//!
//! **Determinism of resumption.** The state that evolves during training is the tensors
//! (parameters and spectral-norm vectors), Adam's moments and step, and the position
//! `(epoch, batch)`; epoch orders are pure functions of `(seed, epoch)`. A checkpoint stores all
//! of it, so resuming reproduces the uninterrupted run bit for bit; so does extending a finished
//! run (`RunOptions::epochs`), since nothing of an epoch depends on how many follow it.
//!
//! **Damage.** A `last` checkpoint that cannot be loaded (missing, unparsable, a tensor file
//! whose sha256 does not match) is replaced by `best` with a warning; a cut-short last line of
//! `metrics.jsonl` is dropped with a warning ([`crate::metrics::MetricsLog::reopen`]).
//!
//! **Divergence.** A non-finite loss or gradient norm ends the run with [`RunEnd::Diverged`]:
//! the weights before the failing step (finite, since the step was not taken) are saved as the
//! `last` checkpoint; if they are not finite either, the previous checkpoint is kept.
//!
//! Epochs are numbered from 1 in everything written (metrics, summary, checkpoints); the
//! StepLR schedule and the epoch orders take the 0-based index `epoch - 1`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use organics_data::{Batch, Batcher, DataCheck, Order};
use serde::{Deserialize, Serialize};

use super::Data;
use super::engine::Trainer;
use crate::checkpoint::{self, FORMAT, TrainingState};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::metrics::{EpochMetrics, MetricsLog, Numbering, Record, StepMetrics};
use crate::observe;
use crate::rundir::{Existing, RunDir};

/// Steps between flushes of `metrics.jsonl` (so a running job can be watched).
const METRICS_FLUSH_STEPS: u64 = 10;

/// Whether to draw progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// An indicatif bar per epoch (loss, accuracy, ETA) on standard error.
    #[default]
    Bar,
    /// Nothing on the terminal.
    Quiet,
}

/// Options of a run that are not part of the model's definition.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Progress display.
    pub progress: ProgressMode,
    /// Stop (with a checkpoint) once this many optimiser steps have been taken in total.
    pub stop_after_steps: Option<u64>,
    /// Set (e.g. by a signal handler) to finish the current step, checkpoint and stop.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// A fresh run's directory already holds something: refuse or replace.
    pub existing: Existing,
    /// Resuming: run to this many epochs in total (extends a finished run).
    pub epochs: Option<u64>,
    /// How [`run`] and [`resume`] check the MNIST files.
    pub data_check: DataCheck,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEnd {
    /// Every epoch ran.
    Finished,
    /// The interrupt flag was raised (a signal): checkpointed after the step under way.
    Interrupted,
    /// `stop_after_steps` was reached.
    StepLimit,
    /// The loss or the gradient norm became non-finite ([`RunSummary::divergence`]).
    Diverged,
}

/// The non-finite value that ended a diverged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// `"loss"` or `"gradient norm"`.
    pub what: String,
    /// Epoch (from 1).
    pub epoch: u64,
    /// The step that failed (global, from 1); the checkpoint holds the steps before it.
    pub step: u64,
    /// The value.
    pub value: f64,
    /// The `last` checkpoint holding the last finite state, if there is one (none when the
    /// weights were already non-finite before any checkpoint).
    pub checkpoint: Option<PathBuf>,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run directory.
    pub out_dir: PathBuf,
    /// How it ended.
    pub stopped: RunEnd,
    /// Trainable parameters.
    pub parameter_count: usize,
    /// Test accuracy after the last finished epoch.
    pub final_test_accuracy: Option<f64>,
    /// Test accuracy at the epoch of best validation accuracy, and that epoch.
    pub best: Option<BestEpoch>,
    /// Metrics of the epochs finished in this call (and before it, for a resumed run).
    pub epochs: Vec<EpochMetrics>,
    /// Mean seconds of training per finished epoch (evaluation excluded).
    pub seconds_per_epoch: Option<f64>,
    /// Global gradient norm of every step taken in this call.
    pub grad_norms: Vec<f64>,
    /// Steps taken in total.
    pub global_step: u64,
    /// For [`RunEnd::Diverged`]: what became non-finite, and where.
    pub divergence: Option<Divergence>,
    /// Warnings given on the way (also printed on standard error): a fallback to `best`, a
    /// dropped metrics line.
    pub warnings: Vec<String>,
}

/// The epoch of best validation accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// Epoch (from 1).
    pub epoch: u64,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// Its test accuracy.
    pub test_accuracy: f64,
}

/// Trains a fresh model of `config` on MNIST, writing the run to `out_dir`.
pub fn run(
    config: &TrainConfig,
    out_dir: &Path,
    progress: ProgressMode,
) -> Result<RunSummary, TrainError> {
    let data = Data::mnist(config, DataCheck::Sha256)?;
    run_with(
        config,
        &data,
        out_dir,
        &RunOptions {
            progress,
            ..RunOptions::default()
        },
    )
}

/// Trains a fresh model of `config` on `data` (already cut to the config's subsets).
pub fn run_with(
    config: &TrainConfig,
    data: &Data,
    out_dir: &Path,
    opts: &RunOptions,
) -> Result<RunSummary, TrainError> {
    config.validate()?;
    let shape = config.view.shape(data.train.rows(), data.train.cols())?;
    let trainer = Trainer::new(config, shape.steps, shape.input_dim)?;
    let mut run_dir = RunDir::create(out_dir, opts.existing)?;
    let cfg_path = run_dir.path().join("config.json");
    std::fs::write(&cfg_path, config.to_json()).map_err(TrainError::io(&cfg_path))?;
    let state = TrainingState {
        format: FORMAT,
        epoch: 0,
        batch_in_epoch: 0,
        global_step: 0,
        finished: false,
        best: None,
        train_seconds: 0.0,
        parameter_count: trainer.net.parameter_count(),
        config: config.clone(),
        sha256: Default::default(),
    };
    let log = MetricsLog::create(&run_dir.path().join("metrics.jsonl"))?;
    let start = Start {
        trainer,
        state,
        sums: EpochSums::default(),
        log,
        epochs: Vec::new(),
        warnings: Vec::new(),
    };
    drive(start, data, &mut run_dir, opts)
}

/// Continues the run in `out_dir` from its last checkpoint, on MNIST.
pub fn resume(out_dir: &Path, opts: &RunOptions) -> Result<RunSummary, TrainError> {
    let run_dir = RunDir::open(out_dir)?;
    // The config (for the data's subsets) from `last`, or from `best` if `last` is unreadable.
    let read =
        |which| checkpoint::resolve(run_dir.path(), which).and_then(|d| checkpoint::read_state(&d));
    let state = read("last").or_else(|last_err| read("best").map_err(|_| last_err))?;
    let data = Data::mnist(&state.config, opts.data_check)?;
    resume_in(run_dir, &data, opts)
}

fn all_finite(params: &crate::params::StateDict) -> bool {
    params
        .ids()
        .all(|id| params.get(id).data.iter().all(|v| v.is_finite()))
}

/// Loads checkpoint `dir` into a fresh trainer: model, Adam, and the sums of the epoch under
/// way.
fn load_checkpoint(
    dir: &Path,
    state: &TrainingState,
    data: &Data,
) -> Result<(Trainer, EpochSums), TrainError> {
    let shape = state
        .config
        .view
        .shape(data.train.rows(), data.train.cols())?;
    let mut trainer = Trainer::new(&state.config, shape.steps, shape.input_dim)?;
    checkpoint::load_model(dir, state, &mut trainer.net.params)?;
    trainer.optimizer = checkpoint::load_optimizer(dir, state, &trainer.net.params, &state.config)?;
    let sums = read_epoch_sums(dir)?;
    Ok((trainer, sums))
}

fn warn(warnings: &mut Vec<String>, text: String) {
    eprintln!("warning: {text}");
    warnings.push(text);
}

/// Continues the run in `out_dir` from its last checkpoint (or its best, if the last cannot be
/// loaded), on `data`; [`RunOptions::epochs`] extends it.
pub fn resume_with(
    out_dir: &Path,
    data: &Data,
    opts: &RunOptions,
) -> Result<RunSummary, TrainError> {
    resume_in(RunDir::open(out_dir)?, data, opts)
}

fn resume_in(
    mut run_dir: RunDir,
    data: &Data,
    opts: &RunOptions,
) -> Result<RunSummary, TrainError> {
    let out_dir = run_dir.target().to_path_buf();
    let mut warnings = Vec::new();
    let loaded = checkpoint::resolve(run_dir.path(), "last").and_then(|dir| {
        let (state, format) = checkpoint::read_state_with_format(&dir)?;
        let (trainer, sums) = load_checkpoint(&dir, &state, data)?;
        Ok((trainer, state, sums, format))
    });
    let (trainer, mut state, sums, format) = match loaded {
        Ok(l) => l,
        Err(last_err) => {
            let dir = checkpoint::resolve(run_dir.path(), "best").map_err(|_| {
                TrainError::checkpoint(
                    run_dir.path(),
                    format!("last checkpoint unusable ({last_err}) and no best checkpoint"),
                )
            })?;
            let (state, format) = checkpoint::read_state_with_format(&dir)?;
            let (trainer, sums) = load_checkpoint(&dir, &state, data)?;
            warn(
                &mut warnings,
                format!(
                    "the last checkpoint cannot be used ({last_err}); resuming from the best checkpoint instead (end of epoch {}, step {}): the steps after it are run again",
                    state.epoch, state.global_step
                ),
            );
            (trainer, state, sums, format)
        }
    };
    if let Some(n) = opts.epochs {
        let started = state.epoch + u64::from(state.batch_in_epoch > 0);
        if n < started.max(1) {
            return Err(TrainError::InvalidConfig {
                field: "epochs",
                value: n.to_string(),
                reason: "fewer epochs than the run has already started",
            });
        }
        state.config.epochs = n;
        state.finished = state.epoch >= n;
    }
    if state.finished {
        return Err(TrainError::AlreadyFinished {
            path: out_dir,
            epochs: state.config.epochs,
        });
    }
    let mut trainer = trainer;
    trainer.config = state.config.clone();
    if opts.epochs.is_some() {
        let cfg_path = run_dir.path().join("config.json");
        std::fs::write(&cfg_path, state.config.to_json()).map_err(TrainError::io(&cfg_path))?;
    }
    let numbering = if format == 1 {
        Numbering::FromZero
    } else {
        Numbering::FromOne
    };
    let reopened = MetricsLog::reopen(
        &run_dir.path().join("metrics.jsonl"),
        state.global_step,
        numbering,
    )?;
    if let Some(w) = reopened.warning {
        warn(&mut warnings, w);
    }
    let epochs = reopened
        .kept
        .into_iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(e),
            Record::Step(_) => None,
        })
        .collect();
    let start = Start {
        trainer,
        state,
        sums,
        log: reopened.log,
        epochs,
        warnings,
    };
    drive(start, data, &mut run_dir, opts)
}

/// Running sums of the current epoch's training loss and accuracy (saved with a mid-epoch
/// checkpoint so that the epoch's metrics survive an interruption).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct EpochSums {
    loss: f64,
    correct: u64,
    seen: u64,
    seconds: f64,
}

const EPOCH_SUMS_FILE: &str = "epoch_sums.json";

fn read_epoch_sums(dir: &Path) -> Result<EpochSums, TrainError> {
    let p = dir.join(EPOCH_SUMS_FILE);
    if !p.exists() {
        return Ok(EpochSums::default());
    }
    let text = std::fs::read_to_string(&p).map_err(TrainError::io(&p))?;
    serde_json::from_str(&text).map_err(|e| TrainError::checkpoint(&p, e.to_string()))
}

/// Writes the `last` checkpoint and commits a staged run directory.
fn save_last(
    run_dir: &mut RunDir,
    trainer: &Trainer,
    state: &TrainingState,
    sums: &EpochSums,
) -> Result<(), TrainError> {
    let dir = run_dir.path().join("checkpoints").join("last");
    checkpoint::save(&dir, &trainer.net.params, &trainer.optimizer, state)?;
    let p = dir.join(EPOCH_SUMS_FILE);
    std::fs::write(&p, serde_json::to_string(sums).expect("sums serialise"))
        .map_err(TrainError::io(&p))?;
    run_dir.commit()
}

fn progress_bar(
    mode: ProgressMode,
    len: u64,
    pos: u64,
    epoch: u64,
    epochs: u64,
) -> indicatif::ProgressBar {
    match mode {
        ProgressMode::Quiet => indicatif::ProgressBar::hidden(),
        ProgressMode::Bar => {
            let bar = indicatif::ProgressBar::new(len);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
            )
            .expect("static template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("epoch {epoch}/{epochs}"));
            bar.set_position(pos);
            bar
        }
    }
}

/// Where [`drive`] starts: a fresh run or a loaded checkpoint.
struct Start {
    trainer: Trainer,
    state: TrainingState,
    sums: EpochSums,
    log: MetricsLog,
    /// Epoch records before the start.
    epochs: Vec<EpochMetrics>,
    warnings: Vec<String>,
}

/// What [`drive`] accumulates besides the training state.
struct Progress {
    epochs: Vec<EpochMetrics>,
    grad_norms: Vec<f64>,
    warnings: Vec<String>,
}

#[allow(clippy::too_many_lines)]
fn drive(
    start: Start,
    data: &Data,
    run_dir: &mut RunDir,
    opts: &RunOptions,
) -> Result<RunSummary, TrainError> {
    let Start {
        mut trainer,
        mut state,
        mut sums,
        mut log,
        epochs,
        warnings,
    } = start;
    state.format = FORMAT;
    let mut done = Progress {
        epochs,
        grad_norms: Vec::new(),
        warnings,
    };
    let cfg = trainer.config.clone();
    let batcher = Batcher::new(
        &data.train,
        cfg.view,
        cfg.batch_size,
        Order::Shuffled { seed: cfg.seed },
    )?;
    let mut buffer = Batch::new();
    let stop_now = |state: &TrainingState| -> Option<RunEnd> {
        if opts
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
        {
            Some(RunEnd::Interrupted)
        } else if opts
            .stop_after_steps
            .is_some_and(|s| state.global_step >= s)
        {
            Some(RunEnd::StepLimit)
        } else {
            None
        }
    };
    while state.epoch < cfg.epochs {
        // `index` orders the batches and sets the learning rate; `epoch` is what is written.
        let index = state.epoch;
        let epoch = index + 1;
        let lr = cfg.lr_at(index);
        let mut ep = batcher.epoch_reusing(index, std::mem::take(&mut buffer));
        for _ in 0..state.batch_in_epoch {
            ep.next_batch();
        }
        let bar = progress_bar(
            opts.progress,
            batcher.num_batches() as u64,
            state.batch_in_epoch,
            epoch,
            cfg.epochs,
        );
        let t0 = Instant::now();
        let base_seconds = sums.seconds;
        while let Some(batch) = ep.next_batch() {
            let t_step = Instant::now();
            let (loss, correct, norm) = match trainer.step(batch, lr) {
                Ok(r) => r,
                Err(TrainError::NonFinite { what, value, .. }) => {
                    bar.abandon();
                    log.flush()?;
                    sums.seconds = base_seconds + t0.elapsed().as_secs_f64();
                    let last = run_dir.target().join("checkpoints").join("last");
                    let checkpoint = if all_finite(&trainer.net.params) {
                        save_last(run_dir, &trainer, &state, &sums)?;
                        Some(last)
                    } else {
                        checkpoint::resolve(run_dir.path(), "last")
                            .ok()
                            .map(|_| last)
                    };
                    let divergence = Divergence {
                        what: what.to_string(),
                        epoch,
                        step: state.global_step + 1,
                        value,
                        checkpoint,
                    };
                    let mut s = summary(run_dir, RunEnd::Diverged, &trainer, &state, done);
                    s.divergence = Some(divergence);
                    return Ok(s);
                }
                Err(e) => return Err(e),
            };
            sums.loss += loss * batch.size() as f64;
            sums.correct += correct as u64;
            sums.seen += batch.size() as u64;
            state.global_step += 1;
            state.batch_in_epoch += 1;
            log.write(&Record::Step(StepMetrics {
                epoch,
                step: state.batch_in_epoch,
                global_step: state.global_step,
                loss,
                grad_norm: norm,
                lr,
                seconds: t_step.elapsed().as_secs_f64(),
            }))?;
            if state.global_step.is_multiple_of(METRICS_FLUSH_STEPS) {
                log.flush()?;
            }
            done.grad_norms.push(norm);
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.4} acc {:.3}",
                sums.loss / sums.seen as f64,
                sums.correct as f64 / sums.seen as f64
            ));
            if let Some(reason) = stop_now(&state) {
                sums.seconds = base_seconds + t0.elapsed().as_secs_f64();
                bar.abandon();
                log.flush()?;
                save_last(run_dir, &trainer, &state, &sums)?;
                return Ok(summary(run_dir, reason, &trainer, &state, done));
            }
        }
        buffer = ep.into_buffer();
        let seconds = base_seconds + t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let val = trainer.evaluate(&data.validation)?;
        let test = trainer.evaluate(&data.test)?;
        let m = EpochMetrics {
            epoch,
            global_step: state.global_step,
            lr,
            train_loss: sums.loss / sums.seen.max(1) as f64,
            train_accuracy: sums.correct as f64 / sums.seen.max(1) as f64,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            seconds,
        };
        if opts.progress == ProgressMode::Bar {
            eprintln!(
                "epoch {epoch}/{}: train loss {:.4} acc {:.4} | val {:.4} | test {:.4} | {:.1} s",
                cfg.epochs,
                m.train_loss,
                m.train_accuracy,
                m.val_accuracy,
                m.test_accuracy,
                seconds
            );
        }
        log.write(&Record::Epoch(m.clone()))?;
        log.flush()?;
        state.train_seconds += seconds;
        if cfg.observe_every > 0 && epoch.is_multiple_of(cfg.observe_every) {
            // A signal during the observers stops them; the epoch is still checkpointed below
            // and the run then ends as interrupted, without this epoch's observer record.
            match observe::run_observers(
                &trainer.net,
                data,
                &cfg,
                epoch,
                state.global_step,
                run_dir.path(),
                opts.interrupt.as_deref(),
            ) {
                Err(TrainError::Interrupted { during }) => {
                    eprintln!("epoch {epoch}: {during} interrupted; no observer record written")
                }
                other => other?,
            }
        }
        done.epochs.push(m.clone());
        state.epoch = epoch;
        state.batch_in_epoch = 0;
        state.finished = state.epoch >= cfg.epochs;
        sums = EpochSums::default();
        if state.best.is_none_or(|(v, _)| m.val_accuracy > v) {
            state.best = Some((m.val_accuracy, epoch));
            let dir = run_dir.path().join("checkpoints").join("best");
            checkpoint::save(&dir, &trainer.net.params, &trainer.optimizer, &state)?;
        }
        save_last(run_dir, &trainer, &state, &sums)?;
        // A run that has finished every epoch reports `Finished`, even if the interrupt
        // arrived during its last evaluation (resuming it would be refused).
        if !state.finished
            && let Some(reason) = stop_now(&state)
        {
            return Ok(summary(run_dir, reason, &trainer, &state, done));
        }
    }
    Ok(summary(run_dir, RunEnd::Finished, &trainer, &state, done))
}

fn summary(
    run_dir: &RunDir,
    stopped: RunEnd,
    trainer: &Trainer,
    state: &TrainingState,
    done: Progress,
) -> RunSummary {
    let Progress {
        epochs,
        grad_norms,
        warnings,
    } = done;
    let best = state.best.and_then(|(v, e)| {
        epochs.iter().find(|m| m.epoch == e).map(|m| BestEpoch {
            epoch: e,
            val_accuracy: v,
            test_accuracy: m.test_accuracy,
        })
    });
    let seconds_per_epoch = if epochs.is_empty() {
        None
    } else {
        Some(epochs.iter().map(|m| m.seconds).sum::<f64>() / epochs.len() as f64)
    };
    RunSummary {
        out_dir: run_dir.target().to_path_buf(),
        stopped,
        parameter_count: trainer.net.parameter_count(),
        final_test_accuracy: epochs.last().map(|m| m.test_accuracy),
        best,
        epochs,
        seconds_per_epoch,
        grad_norms,
        global_step: state.global_step,
        divergence: None,
        warnings,
    }
}
