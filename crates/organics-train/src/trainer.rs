//! The training driver: data-parallel mini-batch steps, Adam with StepLR, evaluation,
//! checkpoints, resumption and interruption.
//!
//! **Two gradient engines.** The one-layer ORGaNICs RNN (sMNIST, psMNIST, row-wise views) is
//! trained and evaluated by organics-grad's BPTT engine ([`crate::model::bptt::RnnEngine`], the
//! benchmarked path); every other model (fixed-point layers and autoencoder, LSTM, tanh RNN)
//! is recorded on tapes.
//!
//! **Data parallelism.** Both engines cut a batch of `B` rows into `threads` contiguous chunks
//! (tapes: `⌈B/threads⌉` rows, the last one shorter; BPTT: rows `⌊kB/threads⌋ .. ⌊(k+1)B/threads⌋`);
//! each chunk runs forward and backward on a worker of a private rayon pool of `threads`
//! threads, and the chunk gradients are summed in chunk order. The cut and the summation order
//! depend only on `B` and `threads`, so a run is bitwise reproducible for a fixed thread count
//! (not across thread counts: float addition is not associative).
//!
//! **Optimiser.** organics-grad's [`Optimizer`] (Adam with PyTorch's L2 weight decay and order
//! of operations) updates the trainable tensors ([`crate::params::ParamSet::trainable_mut`]) in
//! place; optional clipping is organics-grad's [`GradClip`] (PyTorch's `clip_grad_norm_`).
//!
//! **Determinism of resumption.** The state that evolves during training is the tensors
//! (parameters and spectral-norm vectors), Adam's moments and step, and the position
//! `(epoch, batch)`; epoch orders are pure functions of `(seed, epoch)`. A checkpoint stores all
//! of it, so `resume` reproduces the uninterrupted run bit for bit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use organics_data::{Batch, Batcher, Dataset, Mnist, Order, default_dir};
use organics_grad::optim::{GradClip, Optimizer};
use organics_grad::{GradError, Tape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, FORMAT, TrainingState};
use crate::config::{Clipping, TrainConfig};
use crate::error::TrainError;
use crate::metrics::{EpochMetrics, MetricsLog, Record, StepMetrics};
use crate::model::bptt::{RnnEngine, sequence};
use crate::model::{Arch, CLASSES, Chunk, Network};
use crate::observe;

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
    /// Set (e.g. by a Ctrl-C handler) to finish the current step, checkpoint and stop.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Why a run returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// Every epoch ran.
    Finished,
    /// The interrupt flag was raised.
    Interrupted,
    /// `stop_after_steps` was reached.
    StepLimit,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run directory.
    pub out_dir: PathBuf,
    /// Why it returned.
    pub stopped: StopReason,
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
}

/// The epoch of best validation accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// Epoch (0-based).
    pub epoch: u64,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// Its test accuracy.
    pub test_accuracy: f64,
}

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
    /// MNIST from `cfg.data_dir` (or the default directory), split 57 000 / 3 000 as
    /// `cfg.split` draws it, with the config's subsets applied.
    pub fn mnist(cfg: &TrainConfig) -> Result<Data, TrainError> {
        let dir = cfg.data_dir.clone().unwrap_or_else(default_dir);
        let mnist = Mnist::load(&dir)?;
        let split = mnist.split(cfg.split)?;
        Ok(Data {
            train: split.train,
            validation: split.validation,
            test: mnist.test,
        }
        .subsets(cfg))
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

/// The state of a training run in memory.
#[derive(Debug)]
pub struct Trainer {
    /// Resolved config.
    pub config: TrainConfig,
    /// The model.
    pub net: Network,
    /// Adam over the trainable tensors of `net.params` ([`checkpoint::adam`]).
    pub optimizer: Optimizer<f32>,
    /// Gradient of the last step (layout of [`crate::params::ParamSet::trainable`]).
    grads: organics_grad::ParamSet<f32>,
    /// The BPTT engine of the one-layer ORGaNICs RNN (`None`: tapes).
    engine: Option<RnnEngine>,
    labels: Vec<usize>,
    tapes: Vec<Tape<f32>>,
    pool: rayon::ThreadPool,
}

/// Result of one chunk's forward (and backward) pass on a tape.
struct ChunkResult {
    grads: Option<organics_grad::ParamSet<f32>>,
    loss_sum: f64,
    correct: usize,
}

fn argmax_correct(logits: &[f32], labels: &[usize]) -> usize {
    logits
        .chunks_exact(CLASSES)
        .zip(labels)
        .filter(|(row, l)| {
            let mut best = 0;
            for (k, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = k;
                }
            }
            best == **l
        })
        .count()
}

fn chunk_ranges(batch: usize, threads: usize) -> Vec<(usize, usize)> {
    let size = batch.div_ceil(threads.max(1)).max(1);
    (0..batch)
        .step_by(size)
        .map(|s| (s, size.min(batch - s)))
        .collect()
}

impl Trainer {
    /// A freshly initialised trainer for `config` and inputs of `steps x input_dim`.
    pub fn new(
        config: &TrainConfig,
        steps: usize,
        input_dim: usize,
    ) -> Result<Trainer, TrainError> {
        config.validate()?;
        let net = Network::new(config, steps, input_dim);
        let optimizer = checkpoint::adam(config, &net.params);
        let grads = net.params.trainable().zeros_like();
        let engine = net.rnn_engine(config.threads)?;
        // Every worker computes with subnormals flushed (organics-ftz's docs): the forward and
        // backward passes, the clipping and the optimiser step all run on this pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .start_handler(|_| {
                organics_ftz::enable();
            })
            .build()
            .map_err(|e| TrainError::ThreadPool {
                threads: config.threads,
                message: e.to_string(),
            })?;
        let tapes = if engine.is_some() {
            Vec::new()
        } else {
            (0..config.threads).map(|_| Tape::new()).collect()
        };
        Ok(Trainer {
            config: config.clone(),
            net,
            optimizer,
            grads,
            engine,
            labels: Vec::new(),
            tapes,
            pool,
        })
    }

    /// The subnormal mode of each worker of the trainer's pool, as the workers read it back
    /// ([`organics_ftz::Mode::FlushToZero`] on x86-64 and AArch64).
    pub fn float_modes(&self) -> Vec<organics_ftz::Mode> {
        self.pool.broadcast(|_| organics_ftz::mode())
    }

    /// Sets every worker of the trainer's pool to `mode` (the pool starts in
    /// [`organics_ftz::Mode::FlushToZero`]; the benchmarks switch it to measure what that
    /// saves); returns the modes the workers read back.
    pub fn set_float_mode(&self, mode: organics_ftz::Mode) -> Vec<organics_ftz::Mode> {
        self.pool.broadcast(|_| organics_ftz::set(mode))
    }

    /// Whether training and evaluation run organics-grad's BPTT engine (the one-layer
    /// ORGaNICs RNN) rather than tapes.
    pub fn uses_bptt_engine(&self) -> bool {
        self.engine.is_some()
    }

    /// The gradient the last [`Self::step`] gave the optimiser (after clipping, if the config
    /// asks for it; layout of [`crate::params::ParamSet::trainable`]).
    pub fn last_gradient(&self) -> &organics_grad::ParamSet<f32> {
        &self.grads
    }

    fn run_chunks(
        &mut self,
        batch: &Batch,
        backward: bool,
    ) -> Result<Vec<ChunkResult>, TrainError> {
        let b = batch.size();
        let ranges = chunk_ranges(b, self.config.threads);
        let labels: Vec<usize> = batch.labels().iter().map(|&l| usize::from(l)).collect();
        let net = &self.net;
        let (steps, dim) = (batch.steps(), batch.input_dim());
        let inputs = batch.inputs();
        let tapes = &mut self.tapes[..ranges.len()];
        self.pool.install(|| {
            tapes
                .par_iter_mut()
                .zip(ranges.par_iter())
                .map(
                    |(tape, &(start, rows))| -> Result<ChunkResult, TrainError> {
                        tape.reset();
                        let vars = net.params.to_tape(tape);
                        let chunk = Chunk {
                            inputs,
                            batch: b,
                            start,
                            rows,
                            steps,
                            dim,
                        };
                        let lab = &labels[start..start + rows];
                        let fwd = net.forward(tape, &vars, &chunk, lab)?;
                        let loss = f64::from(tape.scalar(fwd.loss));
                        let correct = argmax_correct(tape.value(fwd.logits), lab);
                        let mut grads = None;
                        if backward {
                            let weighted = tape.scale(fwd.loss, rows as f32 / b as f32);
                            tape.backward(weighted)?;
                            let mut g = net.params.trainable().zeros_like();
                            net.params.gather_grads(tape, &vars, &mut g)?;
                            grads = Some(g);
                        }
                        Ok(ChunkResult {
                            grads,
                            loss_sum: loss * rows as f64,
                            correct,
                        })
                    },
                )
                .collect::<Result<Vec<_>, _>>()
        })
    }

    /// Mean loss and correct count of `batch`, with the gradient of the mean loss in
    /// `self.grads`: organics-grad's BPTT engine for the ORGaNICs RNN, tapes otherwise.
    fn loss_and_grad(&mut self, batch: &Batch) -> Result<(f64, usize), TrainError> {
        if let (Some(engine), Arch::Organics(rnn)) = (&mut self.engine, &self.net.arch) {
            self.labels.clear();
            self.labels
                .extend(batch.labels().iter().map(|&l| usize::from(l)));
            let (params, grads, labels) = (&mut self.net.params, &mut self.grads, &self.labels);
            let stats = self
                .pool
                .install(|| engine.loss_and_grad(rnn, params, &sequence(batch), labels, grads));
            let stats = stats.map_err(|e| match e {
                TrainError::Grad(GradError::NonFinite { value, .. }) => TrainError::NonFinite {
                    what: "loss",
                    epoch: 0,
                    step: self.optimizer.steps(),
                    value,
                },
                e => e,
            })?;
            return Ok((stats.loss, stats.correct));
        }
        self.pool.install(|| self.net.before_step());
        let results = self.run_chunks(batch, true)?;
        let (mut loss_sum, mut correct) = (0.0, 0);
        for (k, r) in results.into_iter().enumerate() {
            let g = r.grads.expect("backward pass requested");
            for (dst, src) in self.grads.tensors_mut().iter_mut().zip(g.tensors()) {
                if k == 0 {
                    dst.data.copy_from_slice(&src.data);
                } else {
                    organics_grad::linalg::add_assign(&mut dst.data, &src.data);
                }
            }
            loss_sum += r.loss_sum;
            correct += r.correct;
        }
        Ok((loss_sum / batch.size() as f64, correct))
    }

    /// One optimiser step on `batch` at learning rate `lr`; returns (mean loss, correct, grad
    /// norm before clipping).
    pub fn step(&mut self, batch: &Batch, lr: f64) -> Result<(f64, usize, f64), TrainError> {
        let (loss, correct) = self.loss_and_grad(batch)?;
        let clip = match self.config.clipping {
            Clipping::None => GradClip::Off,
            Clipping::GlobalNorm { max_norm } => GradClip::GlobalNorm(max_norm),
        };
        let grads = &mut self.grads;
        let norm = self.pool.install(|| clip.apply(grads));
        if !loss.is_finite() || !norm.is_finite() {
            return Err(TrainError::NonFinite {
                what: if loss.is_finite() {
                    "gradient norm"
                } else {
                    "loss"
                },
                epoch: 0,
                step: self.optimizer.steps(),
                value: if loss.is_finite() { norm } else { loss },
            });
        }
        let (optimizer, params, grads) = (&mut self.optimizer, &mut self.net.params, &self.grads);
        self.pool
            .install(|| optimizer.step(params.trainable_mut(), grads, lr))?;
        Ok((loss, correct, norm))
    }

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
            if let (Some(engine), Arch::Organics(rnn)) = (&mut self.engine, &self.net.arch) {
                self.labels.clear();
                self.labels
                    .extend(batch.labels().iter().map(|&l| usize::from(l)));
                let (params, labels) = (&self.net.params, &self.labels);
                let stats = self
                    .pool
                    .install(|| engine.evaluate(rnn, params, &sequence(batch), labels))?;
                loss += stats.loss * batch.size() as f64;
                correct += stats.correct;
            } else {
                for r in self.run_chunks(batch, false)? {
                    loss += r.loss_sum;
                    correct += r.correct;
                }
            }
        }
        let n = data.len().max(1);
        Ok(Evaluation {
            loss: loss / n as f64,
            accuracy: correct as f64 / n as f64,
            samples: data.len(),
        })
    }
}

/// Trains a fresh model of `config` on MNIST, writing the run to `out_dir`.
pub fn run(
    config: &TrainConfig,
    out_dir: &Path,
    progress: ProgressMode,
) -> Result<RunSummary, TrainError> {
    let data = Data::mnist(config)?;
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
    std::fs::create_dir_all(out_dir).map_err(TrainError::io(out_dir))?;
    let cfg_path = out_dir.join("config.json");
    std::fs::write(&cfg_path, config.to_json()).map_err(TrainError::io(&cfg_path))?;
    let shape = config.view.shape(data.train.rows(), data.train.cols())?;
    let trainer = Trainer::new(config, shape.steps, shape.input_dim)?;
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
    let _ = std::fs::remove_file(out_dir.join(observe::OBSERVERS_FILE));
    drive(
        trainer,
        state,
        EpochSums::default(),
        data,
        out_dir,
        opts,
        None,
    )
}

/// Continues the run in `out_dir` from its last checkpoint, on MNIST.
pub fn resume(out_dir: &Path, opts: &RunOptions) -> Result<RunSummary, TrainError> {
    let dir = checkpoint::resolve(out_dir, "last")?;
    let state = checkpoint::read_state(&dir)?;
    let data = Data::mnist(&state.config)?;
    resume_with(out_dir, &data, opts)
}

/// Continues the run in `out_dir` from its last checkpoint, on `data`.
pub fn resume_with(
    out_dir: &Path,
    data: &Data,
    opts: &RunOptions,
) -> Result<RunSummary, TrainError> {
    let dir = checkpoint::resolve(out_dir, "last")?;
    let state = checkpoint::read_state(&dir)?;
    if state.finished {
        return Err(TrainError::AlreadyFinished {
            path: out_dir.to_path_buf(),
            epochs: state.config.epochs,
        });
    }
    let shape = state
        .config
        .view
        .shape(data.train.rows(), data.train.cols())?;
    let mut trainer = Trainer::new(&state.config, shape.steps, shape.input_dim)?;
    checkpoint::load_model(&dir, &state, &mut trainer.net.params)?;
    trainer.optimizer =
        checkpoint::load_optimizer(&dir, &state, &trainer.net.params, &state.config)?;
    let sums = read_epoch_sums(&dir)?;
    let g = state.global_step;
    drive(trainer, state, sums, data, out_dir, opts, Some(g))
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

fn save_last(
    out_dir: &Path,
    trainer: &Trainer,
    state: &TrainingState,
    sums: &EpochSums,
) -> Result<(), TrainError> {
    let dir = out_dir.join("checkpoints").join("last");
    checkpoint::save(&dir, &trainer.net.params, &trainer.optimizer, state)?;
    let p = dir.join(EPOCH_SUMS_FILE);
    std::fs::write(&p, serde_json::to_string(sums).expect("sums serialise"))
        .map_err(TrainError::io(&p))
}

fn previous_epochs(out_dir: &Path) -> Vec<EpochMetrics> {
    crate::metrics::read(&out_dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(e),
            Record::Step(_) => None,
        })
        .collect()
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
            bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
            bar.set_position(pos);
            bar
        }
    }
}

#[allow(clippy::too_many_lines)]
fn drive(
    mut trainer: Trainer,
    mut state: TrainingState,
    mut sums: EpochSums,
    data: &Data,
    out_dir: &Path,
    opts: &RunOptions,
    keep_through: Option<u64>,
) -> Result<RunSummary, TrainError> {
    let cfg = trainer.config.clone();
    let mut log = MetricsLog::open(&out_dir.join("metrics.jsonl"), keep_through)?;
    let mut epochs = previous_epochs(out_dir);
    let batcher = Batcher::new(
        &data.train,
        cfg.view,
        cfg.batch_size,
        Order::Shuffled { seed: cfg.seed },
    )?;
    let mut grad_norms = Vec::new();
    let mut buffer = Batch::new();
    let stop_now = |state: &TrainingState| -> Option<StopReason> {
        if opts
            .interrupt
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
        {
            Some(StopReason::Interrupted)
        } else if opts
            .stop_after_steps
            .is_some_and(|s| state.global_step >= s)
        {
            Some(StopReason::StepLimit)
        } else {
            None
        }
    };
    while state.epoch < cfg.epochs {
        let epoch = state.epoch;
        let lr = cfg.lr_at(epoch);
        let mut ep = batcher.epoch_reusing(epoch, std::mem::take(&mut buffer));
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
            let (loss, correct, norm) = trainer.step(batch, lr).map_err(|e| match e {
                TrainError::NonFinite {
                    what, step, value, ..
                } => TrainError::NonFinite {
                    what,
                    epoch,
                    step,
                    value,
                },
                e => e,
            })?;
            sums.loss += loss * batch.size() as f64;
            sums.correct += correct as u64;
            sums.seen += batch.size() as u64;
            state.global_step += 1;
            log.write(&Record::Step(StepMetrics {
                epoch,
                step: state.batch_in_epoch,
                global_step: state.global_step,
                loss,
                grad_norm: norm,
                lr,
                seconds: t_step.elapsed().as_secs_f64(),
            }))?;
            state.batch_in_epoch += 1;
            if state.global_step.is_multiple_of(METRICS_FLUSH_STEPS) {
                log.flush()?;
            }
            grad_norms.push(norm);
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
                save_last(out_dir, &trainer, &state, &sums)?;
                return Ok(summary(
                    out_dir, reason, &trainer, &state, epochs, grad_norms,
                ));
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
                "epoch {}/{}: train loss {:.4} acc {:.4} | val {:.4} | test {:.4} | {:.1} s",
                epoch + 1,
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
        if cfg.observe_every > 0 && (epoch + 1).is_multiple_of(cfg.observe_every) {
            observe::run_observers(&trainer.net, data, &cfg, epoch, state.global_step, out_dir)?;
        }
        epochs.push(m.clone());
        state.epoch += 1;
        state.batch_in_epoch = 0;
        state.finished = state.epoch >= cfg.epochs;
        sums = EpochSums::default();
        if state.best.is_none_or(|(v, _)| m.val_accuracy > v) {
            state.best = Some((m.val_accuracy, epoch));
            let dir = out_dir.join("checkpoints").join("best");
            checkpoint::save(&dir, &trainer.net.params, &trainer.optimizer, &state)?;
        }
        save_last(out_dir, &trainer, &state, &sums)?;
        // A run that has finished every epoch reports `Finished`, even if the interrupt
        // arrived during its last evaluation (resuming it would be refused).
        if !state.finished
            && let Some(reason) = stop_now(&state)
        {
            return Ok(summary(
                out_dir, reason, &trainer, &state, epochs, grad_norms,
            ));
        }
    }
    Ok(summary(
        out_dir,
        StopReason::Finished,
        &trainer,
        &state,
        epochs,
        grad_norms,
    ))
}

fn summary(
    out_dir: &Path,
    stopped: StopReason,
    trainer: &Trainer,
    state: &TrainingState,
    epochs: Vec<EpochMetrics>,
    grad_norms: Vec<f64>,
) -> RunSummary {
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
        out_dir: out_dir.to_path_buf(),
        stopped,
        parameter_count: trainer.net.parameter_count(),
        final_test_accuracy: epochs.last().map(|m| m.test_accuracy),
        best,
        epochs,
        seconds_per_epoch,
        grad_norms,
        global_step: state.global_step,
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
