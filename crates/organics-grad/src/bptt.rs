//! Backpropagation through time for [`OrganicsRnn`], with gradient checkpointing and data
//! parallelism over the batch.
//!
//! **BPTT.** The forward pass runs `s_{t+1} = cell(x_t, s_t)` for `t = 0..T−1`; the backward
//! pass runs the cell's VJP ([`crate::cell::backward_step`]) from `t = T−1` down to 0,
//!
//! ```text
//! s̄_t = (∂s_{t+1}/∂s_t)ᵀ s̄_{t+1},      θ̄ += (∂s_{t+1}/∂θ)ᵀ s̄_{t+1},
//! ```
//!
//! with weight-gradient GEMMs batched over blocks of consecutive steps (one GEMM with
//! `block · rows` inner dimension instead of `block` small ones).
//!
//! **Checkpointing.** With [`Checkpointing::Every`]`(k)` the forward pass keeps only
//! `s_0, s_k, s_{2k}, …` (`⌈T/k⌉` states); the backward pass recomputes each segment of `k`
//! steps from its checkpoint (storing its `k + 1` states and caches) before running through it
//! backwards. Memory is `O(T/k + k)` states instead of `O(T)`, at the cost of one extra
//! forward pass. The recomputed states are bit-identical to the first pass (same kernel, same
//! inputs), so the gradients are *identical* to [`Checkpointing::None`].
//!
//! **Data parallelism.** The batch is split into `C` contiguous chunks of rows; each chunk
//! runs the whole sequence forward, the readout and loss, and the whole backward pass on its
//! own buffers (one rayon task per chunk, no synchronisation per step), and the per-chunk
//! weight gradients are summed once at the end, in chunk order.
//!
//! *Summation-order bound.* For a fixed `C` the result does not depend on the number of
//! threads at all (each chunk's arithmetic is fixed and the final sum is ordered). Changing
//! `C` only regroups the sum over batch rows `g = Σ_b g_b` (inside the weight-gradient GEMMs
//! and in the final chunk sum), so by the standard bound for floating-point summation of `B`
//! terms, element-wise
//!
//! ```text
//! |g⁽ᶜ⁾ − g⁽¹⁾| ≤ 2 γ_B Σ_b |g_b|,      γ_B = B u / (1 − B u),
//! ```
//!
//! with `u` the unit roundoff (`2^{-24}` in `f32`), and the forward pass of each row is
//! unaffected by the split (rows never interact).

use crate::cell::{
    self, CellDims, CellWeightGrads, CellWeights, StepRecord, StepScratch, WeightGradBlock,
};
use crate::error::GradError;
use crate::linalg::{Beta, Trans, View, ViewMut, gemm};
use crate::params::ParamSet;
use crate::phases::{Phase, PhaseTimes, PhaseTiming};
use crate::rnn::{OrganicsRnn, Prepared, SequenceBatch};
use crate::scalar::Scalar;
use crate::simd::InstructionSet;
use crate::spectral_norm::PowerIteration;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How many states the forward pass keeps for the backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Checkpointing {
    /// Keep every state and cache (`O(T)` memory, no recomputation).
    None,
    /// Keep every `k`-th state and recompute segments (`O(T/k + k)` memory, one extra forward).
    Every(usize),
}

/// How the batch is split into chunks (one rayon task each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chunks {
    /// One chunk per thread of the current rayon pool.
    PerThread,
    /// A fixed number of chunks, so that results do not depend on the thread count.
    Fixed(usize),
}

impl Chunks {
    /// How many chunks a batch of `batch ≥ 1` rows is cut into: at least 1, at most `batch`.
    pub(crate) fn count(self, batch: usize) -> usize {
        match self {
            Self::PerThread => rayon::current_num_threads(),
            Self::Fixed(c) => c,
        }
        .clamp(1, batch)
    }
}

/// Cuts `0 .. n` into `parts` near-equal ranges `⌊in/p⌋ .. ⌊(i+1)n/p⌋`, as `(start, len)`:
/// the engines' cut of a batch into chunks (and the static engine's of a layer's units).
pub(crate) fn even_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts)
        .map(|i| (i * n / parts, (i + 1) * n / parts - i * n / parts))
        .collect()
}

/// Settings of the BPTT engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpttConfig {
    /// Checkpointing policy.
    pub checkpointing: Checkpointing,
    /// Batch split.
    pub chunks: Chunks,
    /// Number of consecutive steps whose weight gradients are formed by one GEMM. It fixes
    /// the order in which the weight gradients are summed, so runs are bit-identical only for
    /// the same block. The default, 4, made the sMNIST training step about 7 % faster than
    /// 16 did (docs/performance.md, "sMNIST step: prefetching the stored states"); engines
    /// up to 2026-12-05 used 16 ([`BpttConfig::LEGACY_WEIGHT_GRAD_BLOCK`]).
    pub weight_grad_block: usize,
    /// Vector instruction set of the cell's element-wise loops (results are bit-identical
    /// for every choice; see [`crate::simd`]).
    #[serde(default)]
    pub instruction_set: InstructionSet,
}

impl BpttConfig {
    /// The weight-gradient block of every engine up to 2026-12-05 (and of the runs they
    /// trained).
    pub const LEGACY_WEIGHT_GRAD_BLOCK: usize = 16;
}

impl Default for BpttConfig {
    fn default() -> Self {
        Self {
            checkpointing: Checkpointing::None,
            chunks: Chunks::PerThread,
            weight_grad_block: 4,
            instruction_set: InstructionSet::Detect,
        }
    }
}

/// Loss and accuracy of one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchStats {
    /// Mean cross-entropy over the batch.
    pub loss: f64,
    /// Number of rows whose arg-max logit equals the label.
    pub correct: usize,
    /// Batch size.
    pub batch: usize,
}

/// Reusable buffers of one chunk of rows.
#[derive(Debug, Default)]
struct ChunkWork<S> {
    start: usize,
    rows: usize,
    states: Vec<S>,
    caches: Vec<S>,
    ckpts: Vec<S>,
    ping: Vec<S>,
    pong: Vec<S>,
    g_a: Vec<S>,
    g_b: Vec<S>,
    blk_x: Vec<S>,
    blk_dp: Vec<S>,
    blk_dyhat: Vec<S>,
    blk_du: Vec<S>,
    blk_r: Vec<S>,
    blk_v: Vec<S>,
    readout: Readout<S>,
    scratch: StepScratch<S>,
    grads: Option<CellWeightGrads<S>>,
}

/// The readout `logits = y W_oᵀ + c_o` of a chunk's last hidden state, its summed
/// cross-entropy, and its VJP (shared by every BPTT engine of this crate).
#[derive(Debug, Default)]
pub(crate) struct Readout<S> {
    /// `rows x classes`.
    pub(crate) logits: Vec<S>,
    probs: Vec<S>,
    dlogits: Vec<S>,
    /// `W̄_o` (`classes x n`).
    pub(crate) g_w: Vec<S>,
    /// `c̄_o` (`classes`).
    pub(crate) g_b: Vec<S>,
    /// Summed loss over the chunk's rows (0 without labels).
    pub(crate) loss: S,
    /// Rows whose arg-max logit is the label.
    pub(crate) correct: usize,
}

impl<S: Scalar> Readout<S> {
    /// Logits of `y` (`rows x n`, any row stride), and with `labels` the summed loss and the
    /// number correct.
    pub(crate) fn forward(&mut self, y: View<'_, S>, w: &[S], b: &[S], labels: Option<&[usize]>) {
        let (rows, n, classes) = (y.rows, y.cols, b.len());
        ensure(&mut self.logits, rows * classes);
        gemm(
            ViewMut::new(&mut self.logits, rows, classes),
            Beta::Overwrite,
            y,
            Trans::No,
            View::new(w, classes, n),
            Trans::Yes,
        );
        for row in self.logits.chunks_exact_mut(classes) {
            crate::linalg::add_assign(row, b);
        }
        self.loss = S::ZERO;
        self.correct = 0;
        if let Some(labels) = labels {
            ensure(&mut self.probs, rows * classes);
            let (sum, correct) =
                crate::loss::softmax_xent_sum(&self.logits, classes, labels, &mut self.probs);
            self.loss = sum;
            self.correct = correct;
        }
    }

    /// After [`Self::forward`] with `labels`: the gradients of `(summed loss) / batch` into
    /// [`Self::g_w`], [`Self::g_b`], and `ȳ` into `g_y` (overwritten).
    pub(crate) fn backward(
        &mut self,
        y: View<'_, S>,
        w: &[S],
        labels: &[usize],
        batch: usize,
        g_y: ViewMut<'_, S>,
    ) {
        let (rows, n) = (y.rows, y.cols);
        let classes = self.logits.len() / rows;
        ensure(&mut self.dlogits, rows * classes);
        self.dlogits.iter_mut().for_each(|x| *x = S::ZERO);
        crate::loss::softmax_xent_backward(
            &self.probs,
            classes,
            labels,
            S::ONE / S::from_f64(batch as f64),
            &mut self.dlogits,
        );
        ensure(&mut self.g_w, classes * n);
        ensure(&mut self.g_b, classes);
        gemm(
            ViewMut::new(&mut self.g_w, classes, n),
            Beta::Overwrite,
            View::new(&self.dlogits, rows, classes),
            Trans::Yes,
            y,
            Trans::No,
        );
        self.g_b.iter_mut().for_each(|x| *x = S::ZERO);
        for row in self.dlogits.chunks_exact(classes) {
            crate::linalg::add_assign(&mut self.g_b, row);
        }
        gemm(
            g_y,
            Beta::Overwrite,
            View::new(&self.dlogits, rows, classes),
            Trans::No,
            View::new(w, classes, n),
            Trans::No,
        );
    }
}

pub(crate) fn ensure<S: Scalar>(v: &mut Vec<S>, len: usize) {
    if v.len() != len {
        v.clear();
        v.resize(len, S::ZERO);
    }
}

/// The BPTT engine: buffers reused across calls (allocation only when sizes change).
#[derive(Debug, Default)]
pub struct Bptt<S: Scalar> {
    config: BpttConfig,
    timing: PhaseTiming,
    chunks: Vec<ChunkWork<S>>,
    prepared: Prepared<S>,
    total: Option<CellWeightGrads<S>>,
    ro_w: Vec<S>,
    ro_b: Vec<S>,
}

/// Everything a chunk task reads.
struct Shared<'a, S> {
    cfg: &'a crate::cell::CellConfig,
    w: CellWeights<'a, S>,
    batch: SequenceBatch<'a, S>,
    labels: Option<&'a [usize]>,
    init: &'a [S],
    ro_w: &'a [S],
    ro_b: &'a [S],
    seg: usize,
    checkpointing: Checkpointing,
    block: usize,
}

impl<S: Scalar> Bptt<S> {
    /// An engine with the given settings.
    ///
    /// # Errors
    /// [`GradError::InvalidConfig`] if a checkpoint interval, chunk count or block size is 0.
    pub fn new(config: BpttConfig) -> Result<Self, GradError> {
        if let Checkpointing::Every(0) = config.checkpointing {
            return Err(GradError::InvalidConfig {
                field: "checkpointing.every",
                value: 0.0,
                reason: "checkpoint interval must be at least 1",
            });
        }
        if let Chunks::Fixed(0) = config.chunks {
            return Err(GradError::InvalidConfig {
                field: "chunks",
                value: 0.0,
                reason: "need at least one chunk",
            });
        }
        if config.weight_grad_block == 0 {
            return Err(GradError::InvalidConfig {
                field: "weight_grad_block",
                value: 0.0,
                reason: "must be at least 1",
            });
        }
        Ok(Self {
            config,
            ..Self::default()
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &BpttConfig {
        &self.config
    }

    fn split(&mut self, batch: usize) {
        let c = self.config.chunks.count(batch);
        self.chunks.resize_with(c, ChunkWork::default);
        for (ch, (start, rows)) in self.chunks.iter_mut().zip(even_ranges(batch, c)) {
            (ch.start, ch.rows) = (start, rows);
            ch.scratch.set_instruction_set(self.config.instruction_set);
            ch.scratch.watch.set(self.timing);
        }
    }

    /// Switches the timing of the passes' phases on or off ([`crate::phases`]); off (the
    /// default) reads no clock. Switching off drops the sums so far.
    pub fn set_phase_timing(&mut self, timing: PhaseTiming) {
        self.timing = timing;
        for ch in &mut self.chunks {
            ch.scratch.watch.set(timing);
        }
    }

    /// The phase times of every pass since the last call (or since timing was switched on),
    /// summed over chunks; zero while timing is off. The sums are then reset.
    pub fn take_phase_times(&mut self) -> PhaseTimes {
        let mut total = PhaseTimes::default();
        for ch in &mut self.chunks {
            total.add(&ch.scratch.watch.take());
        }
        total
    }

    /// One training forward and backward pass: optionally refines the spectral-norm vectors
    /// (`power`), then writes `∂(mean loss)/∂θ` for every raw parameter into `grads`
    /// (overwritten; it must have the layout of `model.params`, e.g. from
    /// [`ParamSet::zeros_like`]).
    ///
    /// # Errors
    /// Bad batch or labels (see [`OrganicsRnn::check_batch`]), a `grads` layout mismatch, or
    /// [`GradError::NonFinite`] if the loss is not finite.
    pub fn loss_and_grad(
        &mut self,
        model: &mut OrganicsRnn<S>,
        batch: &SequenceBatch<'_, S>,
        labels: &[usize],
        power: PowerIteration,
        grads: &mut ParamSet<S>,
    ) -> Result<BatchStats, GradError> {
        model.check_batch(batch, Some(labels))?;
        model.params.check_same_layout(grads)?;
        model.power_iteration(power);
        model.prepare(&mut self.prepared);
        self.split(batch.batch);
        let stats = self.run(model, batch, Some(labels), true);
        if !stats.loss.is_finite() {
            return Err(GradError::NonFinite {
                what: "training loss",
                value: stats.loss,
            });
        }
        // Sum chunk gradients in chunk order.
        let dims = model.config().dims();
        let classes = model.config().classes;
        let total = self
            .total
            .get_or_insert_with(|| CellWeightGrads::zeros(dims));
        if total.wx.len() != 3 * dims.n * dims.m || total.wr.len() != dims.n * dims.n {
            *total = CellWeightGrads::zeros(dims);
        }
        total.clear();
        ensure(&mut self.ro_w, classes * dims.n);
        ensure(&mut self.ro_b, classes);
        self.ro_w.iter_mut().for_each(|x| *x = S::ZERO);
        self.ro_b.iter_mut().for_each(|x| *x = S::ZERO);
        for ch in &self.chunks {
            if let Some(g) = &ch.grads {
                total.add(g);
            }
            crate::linalg::add_assign(&mut self.ro_w, &ch.readout.g_w);
            crate::linalg::add_assign(&mut self.ro_b, &ch.readout.g_b);
        }
        model.raw_grads(&self.prepared, total, &self.ro_w, &self.ro_b, grads);
        Ok(stats)
    }

    /// Forward pass only (no power iteration, no gradient): loss and accuracy of a batch.
    ///
    /// # Errors
    /// Bad batch or labels (see [`OrganicsRnn::check_batch`]).
    pub fn evaluate(
        &mut self,
        model: &OrganicsRnn<S>,
        batch: &SequenceBatch<'_, S>,
        labels: &[usize],
    ) -> Result<BatchStats, GradError> {
        model.check_batch(batch, Some(labels))?;
        model.prepare(&mut self.prepared);
        self.split(batch.batch);
        Ok(self.run(model, batch, Some(labels), false))
    }

    /// Forward pass only: writes the logits (`batch x classes`, row-major) into `out`.
    ///
    /// # Errors
    /// Bad batch (see [`OrganicsRnn::check_batch`]) or a wrong `out` length.
    pub fn logits(
        &mut self,
        model: &OrganicsRnn<S>,
        batch: &SequenceBatch<'_, S>,
        out: &mut [S],
    ) -> Result<(), GradError> {
        model.check_batch(batch, None)?;
        let classes = model.config().classes;
        if out.len() != batch.batch * classes {
            return Err(GradError::WrongLength {
                what: "logits output",
                expected: batch.batch * classes,
                found: out.len(),
            });
        }
        model.prepare(&mut self.prepared);
        self.split(batch.batch);
        self.run(model, batch, None, false);
        for ch in &self.chunks {
            out[ch.start * classes..(ch.start + ch.rows) * classes]
                .copy_from_slice(&ch.readout.logits);
        }
        Ok(())
    }

    fn run(
        &mut self,
        model: &OrganicsRnn<S>,
        batch: &SequenceBatch<'_, S>,
        labels: Option<&[usize]>,
        train: bool,
    ) -> BatchStats {
        let cfgm = model.config();
        let dims = cfgm.dims();
        let p = &self.prepared;
        let init = model.initial_state();
        let seg = match self.config.checkpointing {
            Checkpointing::None => batch.steps,
            Checkpointing::Every(k) => k.min(batch.steps),
        };
        let shared = Shared {
            cfg: &cfgm.cell,
            w: CellWeights {
                dims,
                wx: &p.wx,
                wr: &p.wr,
                wg: &p.wg,
                w: &p.w,
                dt: &p.dt,
                sigma2: &p.sigma2,
            },
            batch: *batch,
            labels,
            init: &init,
            ro_w: model.params.data(model.ids().readout_w),
            ro_b: model.params.data(model.ids().readout_b),
            seg,
            checkpointing: self.config.checkpointing,
            block: self.config.weight_grad_block.min(seg),
        };
        let sh = &shared;
        if self.chunks.len() == 1 {
            self.chunks[0].run(sh, train);
        } else {
            self.chunks.par_iter_mut().for_each(|ch| ch.run(sh, train));
        }
        let mut loss = 0.0;
        let mut correct = 0;
        for ch in &self.chunks {
            loss += ch.readout.loss.to_f64();
            correct += ch.readout.correct;
        }
        BatchStats {
            loss: loss / batch.batch as f64,
            correct,
            batch: batch.batch,
        }
    }
}

impl<S: Scalar> ChunkWork<S> {
    fn run(&mut self, sh: &Shared<'_, S>, train: bool) {
        self.scratch.watch.restart();
        self.pass(sh, train);
        self.scratch.watch.lap(Phase::Other);
    }

    fn pass(&mut self, sh: &Shared<'_, S>, train: bool) {
        let CellDims { n, m } = sh.w.dims;
        let rows = self.rows;
        let sw = cell::state_width(n);
        let cw = cell::cache_width(n);
        let t_steps = sh.batch.steps;
        let rs = rows * sw;
        let rc = rows * cw;
        let store_all = train && sh.checkpointing == Checkpointing::None;

        // ---- forward ----
        ensure(&mut self.ping, rs);
        ensure(&mut self.pong, rs);
        for b in 0..rows {
            self.ping[b * sw..(b + 1) * sw].copy_from_slice(sh.init);
        }
        if store_all {
            ensure(&mut self.states, (t_steps + 1) * rs);
            ensure(&mut self.caches, t_steps * rc);
            self.states[..rs].copy_from_slice(&self.ping);
            for t in 0..t_steps {
                let (done, rest) = self.states.split_at_mut((t + 1) * rs);
                cell::forward_step(
                    sh.cfg,
                    &sh.w,
                    rows,
                    sh.batch.step_rows(t, self.start, rows),
                    &done[t * rs..],
                    &mut rest[..rs],
                    &mut self.caches[t * rc..(t + 1) * rc],
                    &mut self.scratch,
                );
            }
            self.ping.copy_from_slice(&self.states[t_steps * rs..]);
        } else {
            let nseg = t_steps.div_ceil(sh.seg);
            if train {
                ensure(&mut self.ckpts, nseg * rs);
            }
            ensure(
                &mut self.caches,
                rc.max(if train { sh.seg * rc } else { 0 }),
            );
            for t in 0..t_steps {
                if train && t % sh.seg == 0 {
                    let s = t / sh.seg;
                    self.ckpts[s * rs..(s + 1) * rs].copy_from_slice(&self.ping);
                }
                cell::forward_step(
                    sh.cfg,
                    &sh.w,
                    rows,
                    sh.batch.step_rows(t, self.start, rows),
                    &self.ping,
                    &mut self.pong,
                    &mut self.caches[..rc],
                    &mut self.scratch,
                );
                std::mem::swap(&mut self.ping, &mut self.pong);
            }
        }
        // `ping` holds s_T.

        // ---- readout and loss ----
        let y_t = View::strided(&self.ping, rows, n, sw);
        let labels = sh.labels.map(|l| &l[self.start..self.start + rows]);
        self.readout.forward(y_t, sh.ro_w, sh.ro_b, labels);
        let Some(labels) = labels else { return };
        if !train {
            return;
        }

        // ---- backward: readout ----
        ensure(&mut self.g_a, rs);
        ensure(&mut self.g_b, rs);
        self.g_a.iter_mut().for_each(|x| *x = S::ZERO);
        self.readout.backward(
            y_t,
            sh.ro_w,
            labels,
            sh.batch.batch,
            ViewMut::strided(&mut self.g_a, rows, n, sw),
        );

        // ---- backward through time ----
        let grads = self
            .grads
            .get_or_insert_with(|| CellWeightGrads::zeros(sh.w.dims));
        if grads.wx.len() != 3 * n * m || grads.wr.len() != n * n {
            *grads = CellWeightGrads::zeros(sh.w.dims);
        }
        grads.clear();
        let blk = sh.block;
        ensure(&mut self.blk_x, blk * rows * m);
        ensure(&mut self.blk_dp, blk * rows * 3 * n);
        ensure(&mut self.blk_dyhat, blk * rows * n);
        ensure(&mut self.blk_du, blk * rows * n);
        ensure(&mut self.blk_r, blk * rows * n);
        ensure(&mut self.blk_v, blk * rows * n);
        if !store_all {
            ensure(&mut self.states, (sh.seg + 1) * rs);
        }
        let nseg = t_steps.div_ceil(sh.seg);
        for s in (0..nseg).rev() {
            let s0 = s * sh.seg;
            let len = sh.seg.min(t_steps - s0);
            // States and caches of this segment, local index j = t − s0.
            let (st_base, ca_base) = if store_all {
                (s0 * rs, s0 * rc)
            } else {
                (0, 0)
            };
            if !store_all {
                self.states[..rs].copy_from_slice(&self.ckpts[s * rs..(s + 1) * rs]);
                for j in 0..len {
                    let (done, rest) = self.states.split_at_mut((j + 1) * rs);
                    cell::forward_step(
                        sh.cfg,
                        &sh.w,
                        rows,
                        sh.batch.step_rows(s0 + j, self.start, rows),
                        &done[j * rs..],
                        &mut rest[..rs],
                        &mut self.caches[j * rc..(j + 1) * rc],
                        &mut self.scratch,
                    );
                }
            }
            for j in (0..len).rev() {
                let t = s0 + j;
                let slot = j % blk;
                let x = sh.batch.step_rows(t, self.start, rows);
                self.blk_x[slot * rows * m..(slot + 1) * rows * m].copy_from_slice(x);
                let rec = StepRecord {
                    dp: &mut self.blk_dp[slot * rows * 3 * n..(slot + 1) * rows * 3 * n],
                    dyhat: &mut self.blk_dyhat[slot * rows * n..(slot + 1) * rows * n],
                    du: &mut self.blk_du[slot * rows * n..(slot + 1) * rows * n],
                    r: &mut self.blk_r[slot * rows * n..(slot + 1) * rows * n],
                    v: &mut self.blk_v[slot * rows * n..(slot + 1) * rows * n],
                };
                let st = &self.states[st_base + j * rs..st_base + (j + 1) * rs];
                let ca = &self.caches[ca_base + j * rc..ca_base + (j + 1) * rc];
                cell::backward_step(
                    sh.cfg,
                    &sh.w,
                    rows,
                    x,
                    st,
                    ca,
                    &self.g_a,
                    &mut self.g_b,
                    rec,
                    &mut grads.dt,
                    &mut grads.sigma2,
                    None,
                    &mut self.scratch,
                );
                std::mem::swap(&mut self.g_a, &mut self.g_b);
                if slot == 0 {
                    let bl = blk.min(len - j);
                    let r = bl * rows;
                    let block = WeightGradBlock {
                        rows: r,
                        x: &self.blk_x[..r * m],
                        states: &self.states[st_base + j * rs..st_base + (j + bl) * rs],
                        dp: &self.blk_dp[..r * 3 * n],
                        dyhat: &self.blk_dyhat[..r * n],
                        du: &self.blk_du[..r * n],
                        r: &self.blk_r[..r * n],
                        v: &self.blk_v[..r * n],
                    };
                    self.scratch.watch.lap(Phase::Other);
                    cell::accumulate_weight_grads(sh.cfg, sh.w.dims, &block, grads);
                    self.scratch.watch.lap(Phase::WeightGradGemm);
                }
            }
        }
    }
}

/// GEMM floating-point operations of one training step as executed (forward, recomputation
/// when checkpointing, backward with weight gradients, readout), summed over chunks of
/// `chunk_rows` rows.
#[must_use]
pub fn train_step_flops(
    dims: CellDims,
    classes: usize,
    steps: usize,
    chunk_rows: &[usize],
    checkpointing: Checkpointing,
) -> f64 {
    let forward_passes = match checkpointing {
        Checkpointing::None => 1.0,
        Checkpointing::Every(k) if k >= steps => 1.0,
        Checkpointing::Every(_) => 2.0,
    };
    chunk_rows
        .iter()
        .map(|&r| {
            let per_step = forward_passes * cell::forward_step_flops(dims, r)
                + cell::backward_step_flops(dims, r);
            let readout = 3.0 * crate::linalg::gemm_flops(r, dims.n, classes);
            steps as f64 * per_step + readout
        })
        .sum()
}
