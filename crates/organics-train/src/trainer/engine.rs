//! The gradient engine of a run: [`Trainer`] holds the model, Adam and the worker pool, and
//! takes optimiser steps.
//!
//! **Engines and tapes.** The one-layer ORGaNICs RNN (sMNIST, psMNIST, row-wise views) is
//! trained and evaluated by organics-grad's BPTT engine ([`crate::model::bptt::RnnEngine`],
//! the benchmarked path), the LSTM and tanh RNN by its recurrent BPTT engine
//! ([`crate::model::bptt::BaselineEngine`]), the one-layer static model with `W_r = I` and the
//! MLP by its fused static engine ([`crate::model::fused::FusedStatic`], unless the config's
//! [`crate::StaticPath`] asks for tapes); the two-layer static model is recorded on tapes.
//!
//! **Data parallelism.** Every path cuts a batch of `B` rows into `threads` contiguous chunks
//! (tapes: `⌈B/threads⌉` rows, the last one shorter; engines: rows
//! `⌊kB/threads⌋ .. ⌊(k+1)B/threads⌋`); each chunk runs forward and backward on a worker of a
//! private rayon pool of `threads` threads, and the chunk gradients are summed in chunk order
//! (the fused static engine instead splits each weight gradient's output units across the
//! workers, over the whole batch). The cut and the summation order depend only on `B` and
//! `threads`, so a run is bitwise reproducible for a fixed thread count (not across thread
//! counts: float addition is not associative). The whole step (passes, gradient sum, norm,
//! Adam) runs on the pool, entered once per step from the caller.
//!
//! **Optimiser.** organics-grad's [`Optimizer`] (Adam with PyTorch's L2 weight decay and order
//! of operations) updates the trainable tensors ([`crate::params::StateDict::trainable_mut`]) in
//! place; optional clipping is organics-grad's [`GradClip`] (PyTorch's `clip_grad_norm_`).
//! The step's gradient norm (reported in `metrics.jsonl`) is organics-grad's
//! [`organics_grad::ParamSet::global_norm`], summed in blocks on the pool in an order that does
//! not depend on the thread count (for the models on tapes, formed by the gradient sum as it
//! writes each block, [`crate::params::StateDict::sum_grads`], with the same bits; the fused
//! static engine forms it as it writes each part, in an order fixed by the thread count); a step
//! whose loss or norm is not finite (the norm is finite exactly when every gradient is) is
//! refused before Adam touches the weights.

use organics_data::Batch;
use organics_grad::optim::{GradClip, Optimizer};
use organics_grad::{GradError, Tape, Var};
use rayon::prelude::*;

use crate::checkpoint;
use crate::config::{Clipping, TrainConfig};
use crate::error::TrainError;
use crate::model::bptt::{BaselineEngine, RnnEngine, sequence};
use crate::model::fused::FusedStatic;
use crate::model::{Arch, CLASSES, Chunk, Network};
use crate::trainer::phases::{PhaseTiming, StepTimes};
use std::time::{Duration, Instant};

/// The state of a training run in memory.
#[derive(Debug)]
pub struct Trainer {
    /// Resolved config.
    pub config: TrainConfig,
    /// The model.
    pub net: Network,
    /// Adam over the trainable tensors of `net.params` ([`checkpoint::adam`]).
    pub optimizer: Optimizer<f32>,
    /// Gradient of the last step (layout of [`crate::params::StateDict::trainable`]).
    grads: organics_grad::ParamSet<f32>,
    /// The BPTT engine of the one-layer ORGaNICs RNN (`None`: tapes).
    engine: Option<RnnEngine>,
    /// The BPTT engine of the LSTM or tanh RNN (`None`: another model).
    baseline: Option<BaselineEngine>,
    /// The fused engine of a static model it covers (`None`: another model, or tapes asked
    /// for by [`TrainConfig::static_path`]).
    fused: Option<FusedStatic>,
    labels: Vec<usize>,
    tapes: Vec<Tape<f32>>,
    /// Shared with [`Self::step`]'s closure, which runs the whole step on one of its workers.
    pool: std::sync::Arc<rayon::ThreadPool>,
    /// The phase times of the steps so far (`None`: timing off, no clock read).
    times: Option<StepTimes>,
}

/// Result of one chunk's forward (and backward) pass on a tape.
struct ChunkResult {
    /// The chunk tape's variables of the parameters (their gradients, after a backward pass).
    vars: Vec<Var>,
    loss_sum: f64,
    correct: usize,
    /// Parameter copy, forward and backward times (zero unless the step is timed).
    times: [Duration; 3],
}

/// Time since `since` when timing (`since` is `Some`), else zero; and the time now, if timing.
fn lap(since: Option<Instant>) -> (Duration, Option<Instant>) {
    match since {
        Some(t) => {
            let now = Instant::now();
            (now - t, Some(now))
        }
        None => (Duration::ZERO, None),
    }
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

/// The class labels of `batch` as `usize`, into a reused buffer.
fn set_labels(labels: &mut Vec<usize>, batch: &Batch) {
    labels.clear();
    labels.extend(batch.labels().iter().map(|&l| usize::from(l)));
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
        let engine = net.rnn_engine(config.threads, config.weight_grad_block)?;
        let baseline = net.baseline_engine(config.threads, config.weight_grad_block)?;
        let fused = net.fused_static(config.static_path, config.threads)?;
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
        let tapes = if engine.is_some() || baseline.is_some() || fused.is_some() {
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
            baseline,
            fused,
            labels: Vec::new(),
            tapes,
            pool: std::sync::Arc::new(pool),
            times: None,
        })
    }

    /// Switches the timing of [`Self::step`]'s phases on (keeping the sums so far) or off
    /// (dropping them); see [`crate::trainer::phases`]. The timing changes no value.
    pub fn set_phase_timing(&mut self, timing: PhaseTiming) {
        match timing {
            PhaseTiming::Off => self.times = None,
            PhaseTiming::On => {
                self.times.get_or_insert_with(StepTimes::default);
            }
        }
    }

    /// The phase times summed since timing was switched on or last taken (zero when off);
    /// the sums then start again.
    pub fn take_phase_times(&mut self) -> StepTimes {
        self.times.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Adds `f`'s change to the phase times, when timing.
    fn charge(&mut self, f: impl FnOnce(&mut StepTimes)) {
        if let Some(t) = &mut self.times {
            f(t);
        }
    }

    /// The time now, when timing.
    fn now(&self) -> Option<Instant> {
        self.times.as_ref().map(|_| Instant::now())
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

    /// Whether training and evaluation run one of organics-grad's BPTT engines (the one-layer
    /// ORGaNICs RNN, the LSTM, the tanh RNN) rather than tapes.
    pub fn uses_bptt_engine(&self) -> bool {
        self.engine.is_some() || self.baseline.is_some()
    }

    /// Whether training and evaluation record tapes (the static models that organics-grad's
    /// fused engine does not cover, or all of them with [`crate::StaticPath::Tape`]).
    pub fn uses_tapes(&self) -> bool {
        !self.tapes.is_empty()
    }

    /// The gradient the last [`Self::step`] gave the optimiser (after clipping, if the config
    /// asks for it; layout of [`crate::params::StateDict::trainable`]).
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
        let timed = self.times.is_some() && backward;
        let tapes = &mut self.tapes[..ranges.len()];
        self.pool.install(|| {
            tapes
                .par_iter_mut()
                .zip(ranges.par_iter())
                .map(
                    |(tape, &(start, rows))| -> Result<ChunkResult, TrainError> {
                        let clock = timed.then(Instant::now);
                        tape.reset();
                        let vars = net.params.to_tape(tape);
                        let (copy, clock) = lap(clock);
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
                        let (forward, clock) = lap(clock);
                        if backward {
                            let weighted = tape.scale(fwd.loss, rows as f32 / b as f32);
                            tape.backward(weighted)?;
                        }
                        let (backward, _) = lap(clock);
                        Ok(ChunkResult {
                            vars,
                            loss_sum: loss * rows as f64,
                            correct,
                            times: [copy, forward, backward],
                        })
                    },
                )
                .collect::<Result<Vec<_>, _>>()
        })
    }

    /// Mean loss and correct count of `batch`, with the gradient of the mean loss in
    /// `self.grads`: organics-grad's engines for the models they cover, tapes otherwise; and,
    /// for tapes and the fused static engine, the gradient's global norm, formed as the
    /// gradient is written.
    fn loss_and_grad(&mut self, batch: &Batch) -> Result<(f64, usize, Option<f64>), TrainError> {
        let organics = matches!(self.net.arch, Arch::Organics(_)) && self.engine.is_some();
        if organics || self.baseline.is_some() || self.fused.is_some() {
            set_labels(&mut self.labels, batch);
            let (params, grads, labels) = (&mut self.net.params, &mut self.grads, &self.labels);
            let (engine, baseline, arch) = (&mut self.engine, &mut self.baseline, &self.net.arch);
            let fused = &mut self.fused;
            let start = self.times.as_ref().map(|_| Instant::now());
            let stats = self.pool.install(|| match (engine, baseline, fused, arch) {
                (Some(engine), _, _, Arch::Organics(rnn)) => {
                    engine.loss_and_grad(rnn, params, &sequence(batch), labels, grads)
                }
                (_, Some(baseline), _, _) => {
                    baseline.loss_and_grad(params, &sequence(batch), labels, grads)
                }
                (_, _, Some(fused), _) => fused.loss_and_grad(params, batch, labels, grads),
                _ => unreachable!("checked above"),
            });
            let (passes, _) = lap(start);
            self.charge(|t| t.passes += passes);
            let stats = stats.map_err(|e| match e {
                TrainError::Grad(GradError::NonFinite { value, .. }) => TrainError::NonFinite {
                    what: "loss",
                    epoch: 0,
                    step: self.optimizer.steps(),
                    value,
                },
                e => e,
            })?;
            // The fused static engine forms the norm as it writes the gradient.
            let norm = self.fused.as_ref().map(FusedStatic::grad_norm);
            return Ok((stats.loss, stats.correct, norm));
        }
        let start = self.now();
        self.pool.install(|| self.net.before_step());
        let results = self.run_chunks(batch, true)?;
        let (passes, start) = lap(start);
        let (mut loss_sum, mut correct) = (0.0, 0);
        // The chunks' gradients summed in chunk order, straight from their tapes, in one pass
        // on the pool.
        let (params, grads) = (&self.net.params, &mut self.grads);
        let parts: Vec<(&Tape<f32>, &[Var])> = self
            .tapes
            .iter()
            .zip(&results)
            .map(|(tape, r)| (tape, r.vars.as_slice()))
            .collect();
        let norm = self.pool.install(|| params.sum_grads(&parts, grads))?;
        let (sum, _) = lap(start);
        self.charge(|t| {
            t.passes += passes;
            t.gradient_sum += sum;
            for r in &results {
                let [copy, forward, backward] = r.times;
                t.chunk_copy += copy;
                t.chunk_forward += forward;
                t.chunk_backward += backward;
            }
        });
        for r in &results {
            loss_sum += r.loss_sum;
            correct += r.correct;
        }
        Ok((loss_sum / batch.size() as f64, correct, Some(norm)))
    }

    /// One optimiser step on `batch` at learning rate `lr`; returns (mean loss, correct, grad
    /// norm before clipping).
    pub fn step(&mut self, batch: &Batch, lr: f64) -> Result<(f64, usize, f64), TrainError> {
        // The whole step runs on one worker of the pool, so the phases' own `install`s run
        // inline: the calling thread hands work over and waits once per step instead of once
        // per phase (five for a tape model: a futex wake and wait each).
        let pool = std::sync::Arc::clone(&self.pool);
        let start = self.now();
        let result = pool.install(|| self.step_on_pool(batch, lr));
        let (step, _) = lap(start);
        self.charge(|t| {
            t.steps += 1;
            t.step += step;
        });
        result
    }

    /// [`Self::step`]'s body, called on a worker of the pool.
    fn step_on_pool(&mut self, batch: &Batch, lr: f64) -> Result<(f64, usize, f64), TrainError> {
        let (loss, correct, known_norm) = self.loss_and_grad(batch)?;
        let clip = match self.config.clipping {
            Clipping::None => GradClip::Off,
            Clipping::GlobalNorm { max_norm } => GradClip::GlobalNorm(max_norm),
        };
        let start = self.now();
        let grads = &mut self.grads;
        // The models on tapes and the fused static engine have the norm already: the
        // gradient sum, or the engine, forms it as it writes the gradient.
        let norm = self.pool.install(|| match known_norm {
            Some(norm) => clip.apply_with_norm(grads, norm),
            None => clip.apply(grads),
        });
        let (norm_time, start) = lap(start);
        self.charge(|t| t.norm += norm_time);
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
        let (update, _) = lap(start);
        self.charge(|t| t.optimizer += update);
        Ok((loss, correct, norm))
    }

    /// Summed loss and correct count of `batch` under the current weights (no gradient).
    pub(super) fn forward_batch(&mut self, batch: &Batch) -> Result<(f64, usize), TrainError> {
        if let (Some(engine), Arch::Organics(rnn)) = (&mut self.engine, &self.net.arch) {
            set_labels(&mut self.labels, batch);
            let (params, labels) = (&mut self.net.params, &self.labels);
            let stats = self
                .pool
                .install(|| engine.evaluate(rnn, params, &sequence(batch), labels))?;
            return Ok((stats.loss * batch.size() as f64, stats.correct));
        }
        if let Some(fused) = &mut self.fused {
            set_labels(&mut self.labels, batch);
            let (params, labels) = (&self.net.params, &self.labels);
            let stats = self
                .pool
                .install(|| fused.evaluate(params, batch, labels))?;
            return Ok((stats.loss * batch.size() as f64, stats.correct));
        }
        if let Some(baseline) = &mut self.baseline {
            set_labels(&mut self.labels, batch);
            let (params, labels) = (&self.net.params, &self.labels);
            let stats = self
                .pool
                .install(|| baseline.evaluate(params, &sequence(batch), labels))?;
            return Ok((stats.loss * batch.size() as f64, stats.correct));
        }
        let (mut loss, mut correct) = (0.0, 0);
        for r in self.run_chunks(batch, false)? {
            loss += r.loss_sum;
            correct += r.correct;
        }
        Ok((loss, correct))
    }
}
