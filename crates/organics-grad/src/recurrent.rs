//! The PyTorch-style recurrent baselines of sequential MNIST (one layer of `nn.RNN` with
//! tanh, or of `nn.LSTM`, then a linear readout of `h_T`) and their BPTT engine
//! [`RecurrentBptt`], built like the ORGaNICs engine of [`crate::bptt`].
//!
//! **Model.** With `G` gate blocks of `n` units (`G = 1` tanh RNN, `G = 4` LSTM in the gate
//! order `i, f, g, o`), one GEMM pair gives every gate's pre-activation at once,
//!
//! $$ p_t = x_t W_{ih}^\top + h_{t-1} W_{hh}^\top + (b_{ih} + b_{hh}) \in \mathbb{R}^{G n}, $$
//!
//! and the element-wise cell of [`crate::recurrent_cell`] maps `p_t` and the state to the next
//! state (`h` for the tanh RNN, `[h | c]` for the LSTM), from `h_0 = c_0 = 0`. Then
//! `logits = h_T W_oᵀ + c_o` and the mean cross-entropy.
//!
//! **Parameters** ([`RecurrentSpec::check_params`]), by position in a [`ParamSet`], with the
//! shapes of PyTorch's `state_dict` (any names): `weight_ih_l0` (`Gn x m`), `weight_hh_l0`
//! (`Gn x n`), `bias_ih_l0` (`1 x Gn`), `bias_hh_l0` (`1 x Gn`), readout weight
//! (`classes x n`), readout bias (`1 x classes`).
//!
//! **VJP.** With `p̄_t` from the cell's VJP, `h̄_{t−1} = p̄_t W_hh` (one GEMM) plus the cell's
//! direct term (`c̄` for the LSTM), and the weight cotangents
//! `W̄_ih = Σ_t p̄_tᵀ x_t`, `W̄_hh = Σ_t p̄_tᵀ h_{t−1}`, `b̄_ih = b̄_hh = Σ_t Σ_rows p̄_t`,
//! the first two formed as one GEMM per block of [`BpttConfig::weight_grad_block`] steps.
//!
//! **Engine.** As [`crate::bptt::Bptt`]: the batch is cut into chunks of rows (one rayon task
//! each, gradients summed in chunk order at the end), every state and cache is stored
//! ([`Checkpointing::None`]) or every `k`-th state is kept and each segment recomputed
//! ([`Checkpointing::Every`]; bit-identical gradients when the interval is a multiple of the
//! weight-gradient block, so that each GEMM sums the same steps), and the element-wise loops run with the
//! configured [`crate::simd::InstructionSet`]. Memory per chunk of `r` rows with every state
//! stored: `(T + 1) · r · s + T · r · 4n` values (`s = n` or `2n`; the LSTM caches its four
//! gates).

use crate::bptt::{BatchStats, BpttConfig, Checkpointing, Readout, ensure, even_ranges};
use crate::error::GradError;
use crate::linalg::{Beta, Trans, View, ViewMut, gemm};
use crate::params::{ParamId, ParamSet};
use crate::recurrent_cell;
use crate::rnn::SequenceBatch;
use crate::scalar::Scalar;
use crate::simd::InstructionSet;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecurrentCell {
    /// `h' = tanh p` (PyTorch `nn.RNN`, `nonlinearity="tanh"`).
    Tanh,
    /// PyTorch `nn.LSTM` (gate order `i, f, g, o`).
    Lstm,
}

impl RecurrentCell {
    /// Gate blocks `G` of the pre-activation.
    #[must_use]
    pub const fn gates(self) -> usize {
        match self {
            Self::Tanh => 1,
            Self::Lstm => 4,
        }
    }

    /// Length of a state row: `n` (`h`) or `2n` (`[h | c]`).
    #[must_use]
    pub const fn state_width(self, n: usize) -> usize {
        match self {
            Self::Tanh => n,
            Self::Lstm => 2 * n,
        }
    }

    /// Length of a cache row: `0` or `4n` (the LSTM's gates `[i | f | g | o]`).
    #[must_use]
    pub const fn cache_width(self, n: usize) -> usize {
        match self {
            Self::Tanh => 0,
            Self::Lstm => 4 * n,
        }
    }
}

/// Sizes and cell of a recurrent classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurrentSpec {
    /// The cell.
    pub cell: RecurrentCell,
    /// Units `n`.
    pub hidden: usize,
    /// Input width `m` per step.
    pub input: usize,
    /// Classes of the readout.
    pub classes: usize,
}

/// Positions of the parameters in the [`ParamSet`] (module docs).
const W_IH: ParamId = ParamId(0);
const W_HH: ParamId = ParamId(1);
const B_IH: ParamId = ParamId(2);
const B_HH: ParamId = ParamId(3);
const RO_W: ParamId = ParamId(4);
const RO_B: ParamId = ParamId(5);

impl RecurrentSpec {
    /// `(rows, cols)` of the six parameters, in order (module docs).
    #[must_use]
    pub fn shapes(&self) -> [(usize, usize); 6] {
        let gn = self.cell.gates() * self.hidden;
        [
            (gn, self.input),
            (gn, self.hidden),
            (1, gn),
            (1, gn),
            (self.classes, self.hidden),
            (1, self.classes),
        ]
    }

    /// Checks sizes and the layout of `params` (six tensors of [`Self::shapes`]).
    ///
    /// # Errors
    /// [`GradError::InvalidConfig`] for a zero size, [`GradError::UnknownParameter`] for a
    /// wrong tensor count, [`GradError::ShapeMismatch`] naming the first misshapen tensor.
    pub fn check_params<S: Scalar>(&self, params: &ParamSet<S>) -> Result<(), GradError> {
        crate::params::check_sizes(&[
            ("hidden", self.hidden),
            ("input", self.input),
            ("classes", self.classes),
        ])?;
        params.check_shapes(
            &self.shapes(),
            "the recurrent model",
            "weight_ih, weight_hh, bias_ih, bias_hh, readout weight, readout bias",
        )
    }

    /// Checks a batch (and labels) against the sizes.
    ///
    /// # Errors
    /// [`GradError::WrongLength`], [`GradError::EmptyInput`], [`GradError::LabelOutOfRange`].
    pub fn check_batch<S: Scalar>(
        &self,
        batch: &SequenceBatch<'_, S>,
        labels: Option<&[usize]>,
    ) -> Result<(), GradError> {
        if batch.input != self.input {
            return Err(GradError::WrongLength {
                what: "input dimension per step",
                expected: self.input,
                found: batch.input,
            });
        }
        if batch.batch == 0 {
            return Err(GradError::EmptyInput { what: "batch" });
        }
        if batch.steps == 0 {
            return Err(GradError::EmptyInput {
                what: "sequence (0 time steps)",
            });
        }
        let need = batch.steps * batch.batch * batch.input;
        if batch.data.len() != need {
            return Err(GradError::WrongLength {
                what: "sequence data (steps x batch x input)",
                expected: need,
                found: batch.data.len(),
            });
        }
        if let Some(labels) = labels {
            if labels.len() != batch.batch {
                return Err(GradError::WrongLength {
                    what: "labels",
                    expected: batch.batch,
                    found: labels.len(),
                });
            }
            crate::loss::check_labels(labels, self.classes)?;
        }
        Ok(())
    }
}

/// The weights one step reads: `W_ih` (`Gn x m`), `W_hh` (`Gn x n`) and `b_ih + b_hh` (`Gn`).
#[derive(Debug, Clone, Copy)]
pub struct StepWeights<'a, S> {
    /// `W_ih`.
    pub w_ih: &'a [S],
    /// `W_hh`.
    pub w_hh: &'a [S],
    /// `b_ih + b_hh`.
    pub bias: &'a [S],
}

/// Per-step scratch (the pre-activations) and the instruction set of the element-wise loops.
#[derive(Debug, Clone, Default)]
pub struct StepScratch<S> {
    p: Vec<S>,
    isa: InstructionSet,
}

impl<S: Scalar> StepScratch<S> {
    /// Empty scratch whose element-wise loops run with `isa` (bit-identical results for every
    /// choice, see [`crate::simd`]).
    #[must_use]
    pub fn with_instruction_set(isa: InstructionSet) -> Self {
        Self { p: Vec::new(), isa }
    }
}

/// One forward step for `rows` rows: reads `x` (`rows x m`) and `state` (`rows x s`), writes
/// `next` (`rows x s`) and `cache` (`rows x` [`RecurrentCell::cache_width`]).
///
/// # Panics
/// If a buffer is too short.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn forward_step<S: Scalar>(
    spec: &RecurrentSpec,
    w: &StepWeights<'_, S>,
    rows: usize,
    x: &[S],
    state: &[S],
    next: &mut [S],
    cache: &mut [S],
    scratch: &mut StepScratch<S>,
) {
    let (n, m, cell) = (spec.hidden, spec.input, spec.cell);
    let (gn, sw) = (cell.gates() * n, cell.state_width(n));
    ensure_len(&mut scratch.p, rows * gn);
    let p = &mut scratch.p[..rows * gn];
    gemm(
        ViewMut::new(p, rows, gn),
        Beta::Overwrite,
        View::new(x, rows, m),
        Trans::No,
        View::new(w.w_ih, gn, m),
        Trans::Yes,
    );
    gemm(
        ViewMut::new(p, rows, gn),
        Beta::Accumulate,
        View::strided(state, rows, n, sw),
        Trans::No,
        View::new(w.w_hh, gn, n),
        Trans::Yes,
    );
    match cell {
        RecurrentCell::Tanh => {
            recurrent_cell::tanh_forward(scratch.isa, rows, n, p, w.bias, next);
        }
        RecurrentCell::Lstm => {
            recurrent_cell::lstm_forward(scratch.isa, rows, n, p, w.bias, state, cache, next);
        }
    }
}

/// One backward step: from `g_next = ∂L/∂next` writes `∂L/∂state` into `g_state`
/// (overwritten), `p̄` into `dp` (`rows x Gn`, for the weight gradients) and adds
/// `Σ_rows p̄` to `db` (`Gn`).
///
/// # Panics
/// If a buffer is too short.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn backward_step<S: Scalar>(
    spec: &RecurrentSpec,
    w: &StepWeights<'_, S>,
    rows: usize,
    state: &[S],
    next: &[S],
    cache: &[S],
    g_next: &[S],
    g_state: &mut [S],
    dp: &mut [S],
    db: &mut [S],
    scratch: &StepScratch<S>,
) {
    let (n, cell) = (spec.hidden, spec.cell);
    let (gn, sw) = (cell.gates() * n, cell.state_width(n));
    let dp = &mut dp[..rows * gn];
    match cell {
        RecurrentCell::Tanh => {
            recurrent_cell::tanh_backward(scratch.isa, rows, n, g_next, next, dp, db);
        }
        RecurrentCell::Lstm => recurrent_cell::lstm_backward(
            scratch.isa,
            rows,
            n,
            g_next,
            state,
            next,
            cache,
            dp,
            g_state,
            db,
        ),
    }
    // h̄ = p̄ W_hh (the LSTM's c̄ half was written by the kernel).
    gemm(
        ViewMut::strided(g_state, rows, n, sw),
        Beta::Overwrite,
        View::new(dp, rows, gn),
        Trans::No,
        View::new(w.w_hh, gn, n),
        Trans::No,
    );
}

/// `W̄_ih += p̄ᵀ x` and `W̄_hh += p̄ᵀ h` for `k` stacked rows (a block of consecutive steps):
/// `dp` is `k x Gn`, `x` is `k x m`, `states` holds the `k` state rows the steps started from
/// (row stride `s`; `h` is each row's first `n` values).
#[track_caller]
pub fn accumulate_weight_grads<S: Scalar>(
    spec: &RecurrentSpec,
    k: usize,
    dp: &[S],
    x: &[S],
    states: &[S],
    g_ih: &mut [S],
    g_hh: &mut [S],
) {
    let (n, m, cell) = (spec.hidden, spec.input, spec.cell);
    let (gn, sw) = (cell.gates() * n, cell.state_width(n));
    gemm(
        ViewMut::new(g_ih, gn, m),
        Beta::Accumulate,
        View::new(dp, k, gn),
        Trans::Yes,
        View::new(x, k, m),
        Trans::No,
    );
    gemm(
        ViewMut::new(g_hh, gn, n),
        Beta::Accumulate,
        View::new(dp, k, gn),
        Trans::Yes,
        View::strided(states, k, n, sw),
        Trans::No,
    );
}

/// GEMM floating-point operations of one training step (forward, recomputation when
/// checkpointing, backward with weight gradients, readout) for chunks of `chunk_rows` rows.
#[must_use]
pub fn train_step_flops(
    spec: &RecurrentSpec,
    steps: usize,
    chunk_rows: &[usize],
    checkpointing: Checkpointing,
) -> f64 {
    use crate::linalg::gemm_flops;
    let forward_passes = match checkpointing {
        Checkpointing::None => 1.0,
        Checkpointing::Every(k) if k >= steps => 1.0,
        Checkpointing::Every(_) => 2.0,
    };
    let (n, m) = (spec.hidden, spec.input);
    let gn = spec.cell.gates() * n;
    chunk_rows
        .iter()
        .map(|&r| {
            let fwd = gemm_flops(r, m, gn) + gemm_flops(r, n, gn);
            let bwd = gemm_flops(r, gn, n) + gemm_flops(gn, r, m) + gemm_flops(gn, r, n);
            steps as f64 * (forward_passes * fwd + bwd) + 3.0 * gemm_flops(r, n, spec.classes)
        })
        .sum()
}

fn ensure_len<S: Scalar>(v: &mut Vec<S>, len: usize) {
    if v.len() < len {
        v.resize(len, S::ZERO);
    }
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
    readout: Readout<S>,
    scratch: StepScratch<S>,
    g_ih: Vec<S>,
    g_hh: Vec<S>,
    g_bias: Vec<S>,
}

/// Everything a chunk task reads.
struct Shared<'a, S> {
    spec: RecurrentSpec,
    w: StepWeights<'a, S>,
    batch: SequenceBatch<'a, S>,
    labels: Option<&'a [usize]>,
    ro_w: &'a [S],
    ro_b: &'a [S],
    seg: usize,
    checkpointing: Checkpointing,
    block: usize,
}

/// The BPTT engine of the recurrent baselines: buffers reused across calls.
#[derive(Debug, Default)]
pub struct RecurrentBptt<S: Scalar> {
    config: BpttConfig,
    chunks: Vec<ChunkWork<S>>,
    bias: Vec<S>,
}

impl<S: Scalar> RecurrentBptt<S> {
    /// An engine with the given settings.
    ///
    /// # Errors
    /// As [`crate::Bptt::new`]: a zero checkpoint interval, chunk count or block size.
    pub fn new(config: BpttConfig) -> Result<Self, GradError> {
        crate::Bptt::<S>::new(config)?;
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

    /// One forward and backward pass: writes `∂(mean loss)/∂θ` for the six parameters into
    /// `grads` (overwritten; the layout of `params`).
    ///
    /// # Errors
    /// A bad layout or batch (see [`RecurrentSpec::check_params`],
    /// [`RecurrentSpec::check_batch`]), or [`GradError::NonFinite`] if the loss is not finite.
    pub fn loss_and_grad(
        &mut self,
        spec: &RecurrentSpec,
        params: &ParamSet<S>,
        batch: &SequenceBatch<'_, S>,
        labels: &[usize],
        grads: &mut ParamSet<S>,
    ) -> Result<BatchStats, GradError> {
        spec.check_params(params)?;
        spec.check_batch(batch, Some(labels))?;
        params.check_same_layout(grads)?;
        let stats = self.run(spec, params, batch, Some(labels), true);
        if !stats.loss.is_finite() {
            return Err(GradError::NonFinite {
                what: "training loss",
                value: stats.loss,
            });
        }
        grads.fill_zero();
        for ch in &self.chunks {
            crate::linalg::add_assign(grads.data_mut(W_IH), &ch.g_ih);
            crate::linalg::add_assign(grads.data_mut(W_HH), &ch.g_hh);
            crate::linalg::add_assign(grads.data_mut(B_IH), &ch.g_bias);
            crate::linalg::add_assign(grads.data_mut(RO_W), &ch.readout.g_w);
            crate::linalg::add_assign(grads.data_mut(RO_B), &ch.readout.g_b);
        }
        let db = grads.data(B_IH).to_vec();
        grads.data_mut(B_HH).copy_from_slice(&db);
        Ok(stats)
    }

    /// Forward pass only: loss and accuracy of a batch.
    ///
    /// # Errors
    /// As [`Self::loss_and_grad`].
    pub fn evaluate(
        &mut self,
        spec: &RecurrentSpec,
        params: &ParamSet<S>,
        batch: &SequenceBatch<'_, S>,
        labels: &[usize],
    ) -> Result<BatchStats, GradError> {
        spec.check_params(params)?;
        spec.check_batch(batch, Some(labels))?;
        Ok(self.run(spec, params, batch, Some(labels), false))
    }

    fn run(
        &mut self,
        spec: &RecurrentSpec,
        params: &ParamSet<S>,
        batch: &SequenceBatch<'_, S>,
        labels: Option<&[usize]>,
        train: bool,
    ) -> BatchStats {
        let c = self.config.chunks.count(batch.batch);
        self.chunks.resize_with(c, ChunkWork::default);
        for (ch, (start, rows)) in self.chunks.iter_mut().zip(even_ranges(batch.batch, c)) {
            (ch.start, ch.rows) = (start, rows);
            ch.scratch.isa = self.config.instruction_set;
        }
        self.bias.clear();
        self.bias.extend(
            params
                .data(B_IH)
                .iter()
                .zip(params.data(B_HH))
                .map(|(&a, &b)| a + b),
        );
        let seg = match self.config.checkpointing {
            Checkpointing::None => batch.steps,
            Checkpointing::Every(k) => k.min(batch.steps),
        };
        let shared = Shared {
            spec: *spec,
            w: StepWeights {
                w_ih: params.data(W_IH),
                w_hh: params.data(W_HH),
                bias: &self.bias,
            },
            batch: *batch,
            labels,
            ro_w: params.data(RO_W),
            ro_b: params.data(RO_B),
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
        let (mut loss, mut correct) = (0.0, 0);
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
        let spec = &sh.spec;
        let (n, m) = (spec.hidden, spec.input);
        let gn = spec.cell.gates() * n;
        let rows = self.rows;
        let sw = spec.cell.state_width(n);
        let cw = spec.cell.cache_width(n);
        let t_steps = sh.batch.steps;
        let (rs, rc) = (rows * sw, rows * cw);
        let store_all = train && sh.checkpointing == Checkpointing::None;

        // ---- forward ----
        ensure(&mut self.ping, rs);
        ensure(&mut self.pong, rs);
        self.ping.iter_mut().for_each(|v| *v = S::ZERO);
        if store_all {
            ensure(&mut self.states, (t_steps + 1) * rs);
            ensure(&mut self.caches, t_steps * rc);
            self.states[..rs].copy_from_slice(&self.ping);
            for t in 0..t_steps {
                let (done, rest) = self.states.split_at_mut((t + 1) * rs);
                forward_step(
                    spec,
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
                forward_step(
                    spec,
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

        // ---- readout and loss ----
        let h_t = View::strided(&self.ping, rows, n, sw);
        let labels = sh.labels.map(|l| &l[self.start..self.start + rows]);
        self.readout.forward(h_t, sh.ro_w, sh.ro_b, labels);
        let Some(labels) = labels else { return };
        if !train {
            return;
        }
        ensure(&mut self.g_a, rs);
        ensure(&mut self.g_b, rs);
        self.g_a.iter_mut().for_each(|x| *x = S::ZERO);
        self.readout.backward(
            h_t,
            sh.ro_w,
            labels,
            sh.batch.batch,
            ViewMut::strided(&mut self.g_a, rows, n, sw),
        );

        // ---- backward through time ----
        ensure(&mut self.g_ih, gn * m);
        ensure(&mut self.g_hh, gn * n);
        ensure(&mut self.g_bias, gn);
        for g in [&mut self.g_ih, &mut self.g_hh, &mut self.g_bias] {
            g.iter_mut().for_each(|x| *x = S::ZERO);
        }
        let blk = sh.block;
        ensure(&mut self.blk_x, blk * rows * m);
        ensure(&mut self.blk_dp, blk * rows * gn);
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
                    forward_step(
                        spec,
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
                let st = &self.states[st_base + j * rs..st_base + (j + 2) * rs];
                backward_step(
                    spec,
                    &sh.w,
                    rows,
                    &st[..rs],
                    &st[rs..],
                    &self.caches[ca_base + j * rc..ca_base + (j + 1) * rc],
                    &self.g_a,
                    &mut self.g_b,
                    &mut self.blk_dp[slot * rows * gn..(slot + 1) * rows * gn],
                    &mut self.g_bias,
                    &self.scratch,
                );
                std::mem::swap(&mut self.g_a, &mut self.g_b);
                if slot == 0 {
                    let k = blk.min(len - j) * rows;
                    accumulate_weight_grads(
                        spec,
                        k,
                        &self.blk_dp[..k * gn],
                        &self.blk_x[..k * m],
                        &self.states[st_base + j * rs..],
                        &mut self.g_ih,
                        &mut self.g_hh,
                    );
                }
            }
        }
    }
}
