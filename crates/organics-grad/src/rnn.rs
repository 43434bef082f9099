//! The ORGaNICs RNN for sequential MNIST (docs/model.md#gated-rnn-cell): the Euler cell of [`crate::cell`] run
//! over `T` input steps from learned-free initial states, a linear readout of `y_T`, and
//! softmax cross-entropy.
//!
//! ```text
//! s_{t+1} = cell(x_t, s_t),  t = 0 … T−1;      logits = W_o y_T + c_o;      L = CE(logits, label).
//! ```
//!
//! Raw parameters and their names (a `state_dict`-like layout; our names, since the
//! reference code's module paths differ between versions):
//!
//! | name | shape | meaning | effective weight |
//! |---|---|---|---|
//! | `cell.W_zx` | `n x m` | input weights | as is |
//! | `cell.W_r` | `n x n` | raw recurrent weights | `I + SN(W_r)`, `SN(W_r)` or `W_r` ([`RecurrentMatrix`]) |
//! | `cell.W_bx0`, `cell.W_by0`, `cell.W_ba0` | `n x m`, `n x n`, `n x n` | `b0` gate | as is |
//! | `cell.W_bx1`, `cell.W_by1`, `cell.W_ba1` | `n x m`, `n x n`, `n x n` | `b1` gate | as is |
//! | `cell.log_W` | `n x n` | log normalisation weights | `exp` or `clamp(exp, 0, 1)` ([`NormWeights`]) |
//! | `cell.p_y`, `cell.p_a`, `cell.p_b0`, `cell.p_b1` | `1 x n` | time parameters (learned only) | `δ = max · sigmoid(p)` |
//! | `readout.weight`, `readout.bias` | `classes x n`, `1 x classes` | readout | as is |
//!
//! Non-trained buffers ([`RnnBuffers`]): `σ` (ones), the initial states `y0, a0, b0_0, b1_0`
//! (drawn once, shared by all sequences), and the spectral-norm vectors `u`, `v` of `W_r`.
//!
//! Initialisation ([`OrganicsRnn::new`], the values training starts from) follows the
//! NeurIPS-era code (docs/model.md#rnn-cell-as-trained), drawn in `f32` by [`crate::init`] from one ChaCha8 generator in
//! this order: `W_zx` kaiming-uniform, then divided by its largest singular value; raw `W_r = I`
//! with a seed for the spectral-norm vectors (spectral-norm variants) or an orthogonal matrix
//! ([`RecurrentMatrix::Free`]); gate weights `U(±1/√fan_in)`; `log W = −U(0,1)` off the
//! diagonal and `0` on it (`log max(U(0,1), 1e−8)` for [`NormWeights::ExpClamped`], as the HEAD
//! code); `p ~ N(0, 1)` (learned time constants only); `y0 = u/‖u‖`, `u ~ U(0,1)ⁿ`;
//! `a0 ~ U(0,1)ⁿ`; `b0_0 = 1`; `b1_0 ~ U(0,1)ⁿ`; readout as PyTorch's `nn.Linear` default.
//! This is the one definition of the model: organics-train trains it, holding these tensors
//! under PyTorch `state_dict` names for its checkpoints.

use crate::cell::{CellConfig, CellDims, NormWeights, RecurrentMatrix, TimeConstants};
use crate::cell_op::CellVars;
use crate::error::GradError;
use crate::init;
use crate::params::{ParamId, ParamSet};
use crate::scalar::Scalar;
use crate::spectral_norm::{PowerIteration, SpectralNorm};
use crate::tape::{Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The logistic function's value at 1: the factor of the frozen time parameters.
const SIGMOID_OF_ONE: f64 = 0.731_058_578_630_004_9;

/// Sizes and variant of an ORGaNICs RNN classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RnnConfig {
    /// Number of principal neurons `n` (and of modulatory ones).
    pub hidden: usize,
    /// Input dimension `m` per time step (1 for pixel-by-pixel MNIST).
    pub input: usize,
    /// Number of classes of the readout.
    pub classes: usize,
    /// Cell variant.
    pub cell: CellConfig,
}

impl RnnConfig {
    /// The sequential-MNIST model of docs/model.md#rnn-cell-as-trained with `hidden` units (128 or 64 in Table 2).
    #[must_use]
    pub fn smnist(hidden: usize) -> Self {
        Self {
            hidden,
            input: 1,
            classes: 10,
            cell: CellConfig::NEURIPS,
        }
    }

    /// The cell sizes.
    #[must_use]
    pub fn dims(&self) -> CellDims {
        CellDims {
            n: self.hidden,
            m: self.input,
        }
    }
}

/// Ids of the raw parameters of an [`OrganicsRnn`] in its [`ParamSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnIds {
    /// `cell.W_zx`.
    pub w_zx: ParamId,
    /// `cell.W_r` (raw).
    pub w_r: ParamId,
    /// `cell.W_bx0`.
    pub w_bx0: ParamId,
    /// `cell.W_by0`.
    pub w_by0: ParamId,
    /// `cell.W_ba0`.
    pub w_ba0: ParamId,
    /// `cell.W_bx1`.
    pub w_bx1: ParamId,
    /// `cell.W_by1`.
    pub w_by1: ParamId,
    /// `cell.W_ba1`.
    pub w_ba1: ParamId,
    /// `cell.log_W`.
    pub log_w: ParamId,
    /// `cell.p_y`, `cell.p_a`, `cell.p_b0`, `cell.p_b1` (learned time constants only).
    pub tau: Option<[ParamId; 4]>,
    /// `readout.weight`.
    pub readout_w: ParamId,
    /// `readout.bias`.
    pub readout_b: ParamId,
}

/// Names of the time parameters, in the order of [`RnnIds::tau`].
pub const TAU_NAMES: [&str; 4] = ["cell.p_y", "cell.p_a", "cell.p_b0", "cell.p_b1"];

/// Names of the gate matrices, in parameter order.
pub const GATE_NAMES: [&str; 6] = [
    "cell.W_bx0",
    "cell.W_by0",
    "cell.W_ba0",
    "cell.W_bx1",
    "cell.W_by1",
    "cell.W_ba1",
];

impl RnnIds {
    /// The ids of a model with cell `cell`: the raw parameters in the order of the module
    /// table (`W_zx`, `W_r`, the six gates, `log W`, the four time parameters if learned, the
    /// readout). The order is the layout of parameters, gradients and optimiser moments.
    #[must_use]
    pub fn of(cell: &CellConfig) -> Self {
        let learned = matches!(cell.time_constants, TimeConstants::Learned { .. });
        let after_tau = if learned { 13 } else { 9 };
        Self {
            w_zx: ParamId(0),
            w_r: ParamId(1),
            w_bx0: ParamId(2),
            w_by0: ParamId(3),
            w_ba0: ParamId(4),
            w_bx1: ParamId(5),
            w_by1: ParamId(6),
            w_ba1: ParamId(7),
            log_w: ParamId(8),
            tau: learned.then_some([ParamId(9), ParamId(10), ParamId(11), ParamId(12)]),
            readout_w: ParamId(after_tau),
            readout_b: ParamId(after_tau + 1),
        }
    }
}

/// Non-trained state of an [`OrganicsRnn`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RnnBuffers<S: Scalar> {
    /// Semi-saturation `σ` (length `n`, ones).
    pub sigma: Vec<S>,
    /// Initial `y`.
    pub y0: Vec<S>,
    /// Initial `a`.
    pub a0: Vec<S>,
    /// Initial `b0`.
    pub b0_0: Vec<S>,
    /// Initial `b1`.
    pub b1_0: Vec<S>,
    /// Spectral-norm vectors of `W_r` (spectral-norm variants only).
    pub spectral: Option<SpectralNorm<S>>,
}

/// An ORGaNICs RNN classifier: configuration, raw parameters and buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganicsRnn<S: Scalar> {
    config: RnnConfig,
    /// Raw trainable parameters (see the module table for names).
    pub params: ParamSet<S>,
    /// Non-trained buffers.
    pub buffers: RnnBuffers<S>,
    ids: RnnIds,
}

/// A batch of sequences, time-major: `data[(t · batch + b) · input + i]`.
#[derive(Debug, Clone, Copy)]
pub struct SequenceBatch<'a, S> {
    /// The inputs, `steps x batch x input`.
    pub data: &'a [S],
    /// Number of time steps `T`.
    pub steps: usize,
    /// Number of sequences.
    pub batch: usize,
    /// Input dimension per step.
    pub input: usize,
}

impl<S: Scalar> SequenceBatch<'_, S> {
    /// Rows `start .. start + rows` of step `t` (`rows x input`).
    #[must_use]
    pub fn step_rows(&self, t: usize, start: usize, rows: usize) -> &[S] {
        let o = (t * self.batch + start) * self.input;
        &self.data[o..o + rows * self.input]
    }
}

/// Which implementation of the cell a tape-built model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellImpl {
    /// One fused operation per step ([`Tape::organics_cell`]).
    Fused,
    /// Primitive operations ([`crate::composed::organics_cell_composed`]).
    Composed,
}

/// The handles of a model recorded on a tape by [`OrganicsRnn::record`].
#[derive(Debug, Clone)]
pub struct RecordedModel {
    /// Mean cross-entropy (`1 x 1`).
    pub loss: Var,
    /// Logits (`batch x classes`).
    pub logits: Var,
    /// The leaf of each raw parameter, indexed by `ParamId.0`.
    pub params: Vec<Var>,
}

/// Effective (prepared) weights, computed once per forward pass from the raw parameters.
#[derive(Debug, Clone, Default)]
pub struct Prepared<S> {
    /// `[W_zx; W_bx0; W_bx1]`.
    pub wx: Vec<S>,
    /// Effective `W_r`.
    pub wr: Vec<S>,
    /// SN output `W_r / σ` (spectral-norm variants).
    pub wr_sn: Vec<S>,
    /// `σ(W_r)` of the spectral norm (1 when unused).
    pub wr_sigma: S,
    /// `[[W_by0, W_ba0]; [W_by1, W_ba1]]`.
    pub wg: Vec<S>,
    /// `exp(log W)` before clamping.
    pub w_exp: Vec<S>,
    /// Effective `W`.
    pub w: Vec<S>,
    /// `[δ_y | δ_a | δ_b0 | δ_b1]`.
    pub dt: Vec<S>,
    /// `sigmoid(p)` per unit (same layout as `dt`).
    pub dt_sigmoid: Vec<S>,
    /// `σ²`.
    pub sigma2: Vec<S>,
}

impl<S: Scalar> OrganicsRnn<S> {
    /// A freshly initialised model (see the module docs), seeded.
    ///
    /// # Errors
    /// [`GradError::InvalidConfig`] for zero sizes or non-positive time-constant maxima.
    pub fn new(config: RnnConfig, seed: u64) -> Result<Self, GradError> {
        validate(&config)?;
        let RnnConfig {
            hidden: n,
            input: m,
            classes,
            cell,
        } = config;
        // The draws, in this order, from one generator: W_zx, (the spectral-norm seed or the
        // orthogonal W_r), the six gate matrices, log W, (the time parameters), y0, a0, b1_0,
        // the readout. Values are drawn in f32 (the training precision) and widened to `S`.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rng = &mut rng;
        // W_zx: kaiming uniform, then divided by its largest singular value.
        let mut w_zx = init::kaiming_uniform(rng, n, m);
        let smax = init::largest_singular_value(&w_zx, n, m);
        if smax > 0.0 {
            w_zx.iter_mut().for_each(|v| *v /= smax);
        }
        let (w_r, sn_seed) = match cell.recurrence {
            RecurrentMatrix::IdentityPlusSpectralNorm | RecurrentMatrix::SpectralNorm => {
                (init::identity(n), Some(rng.random::<u64>()))
            }
            RecurrentMatrix::Free => (init::orthogonal(rng, n), None),
        };
        let mut gate = |fan_in: usize| init::kaiming_uniform(rng, n, fan_in);
        let gates = [gate(m), gate(n), gate(n), gate(m), gate(n), gate(n)];
        let mut log_w: Vec<f32> = match cell.norm_weights {
            NormWeights::Exp => init::unit_uniform(rng, n * n)
                .into_iter()
                .map(|u| -u)
                .collect(),
            NormWeights::ExpClamped => init::unit_uniform(rng, n * n)
                .into_iter()
                .map(|u| u.max(1e-8).ln())
                .collect(),
        };
        for i in 0..n {
            log_w[i * n + i] = 0.0;
        }
        let tau: Option<[Vec<f32>; 4]> = match cell.time_constants {
            TimeConstants::Learned { .. } => Some(std::array::from_fn(|_| init::normal(rng, n))),
            TimeConstants::Fixed { .. } => None,
        };
        let u = init::unit_uniform(rng, n);
        let norm = u
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        let y0: Vec<f32> = u.iter().map(|v| v / norm).collect();
        let a0 = init::unit_uniform(rng, n);
        let b1_0 = init::unit_uniform(rng, n);
        let ro_w = init::kaiming_uniform(rng, classes, n);
        let ro_b = init::uniform(rng, classes, 1.0 / (n as f32).sqrt());

        let widen =
            |v: Vec<f32>| -> Vec<S> { v.into_iter().map(|x| S::from_f64(f64::from(x))).collect() };
        let w_r = widen(w_r);
        let spectral = sn_seed.map(|seed| SpectralNorm::new(&w_r, n, n, seed));
        let mut p = ParamSet::new();
        p.push("cell.W_zx", n, m, widen(w_zx));
        p.push("cell.W_r", n, n, w_r);
        for (name, data) in GATE_NAMES.into_iter().zip(gates) {
            let cols = data.len() / n;
            p.push(name, n, cols, widen(data));
        }
        p.push("cell.log_W", n, n, widen(log_w));
        if let Some(tau) = tau {
            for (name, data) in TAU_NAMES.into_iter().zip(tau) {
                p.push(name, 1, n, widen(data));
            }
        }
        p.push("readout.weight", classes, n, widen(ro_w));
        p.push("readout.bias", 1, classes, widen(ro_b));
        let ids = RnnIds::of(&cell);
        debug_assert_eq!(p.find("readout.bias"), Some(ids.readout_b));
        let buffers = RnnBuffers {
            sigma: vec![S::ONE; n],
            y0: widen(y0),
            a0: widen(a0),
            b0_0: vec![S::ONE; n],
            b1_0: widen(b1_0),
            spectral,
        };
        Ok(Self {
            config,
            params: p,
            buffers,
            ids,
        })
    }

    /// Rebuilds a model from saved parameters and buffers (for example a checkpoint).
    ///
    /// # Errors
    /// [`GradError::UnknownParameter`] / [`GradError::ShapeMismatch`] if `params` does not
    /// have this configuration's layout; [`GradError::WrongLength`] for bad buffers.
    pub fn from_parts(
        config: RnnConfig,
        params: ParamSet<S>,
        buffers: RnnBuffers<S>,
    ) -> Result<Self, GradError> {
        let template = Self::new(config, 0)?;
        template.params.check_same_layout(&params)?;
        let n = config.hidden;
        for (what, v) in [
            ("sigma", &buffers.sigma),
            ("y0", &buffers.y0),
            ("a0", &buffers.a0),
            ("b0_0", &buffers.b0_0),
            ("b1_0", &buffers.b1_0),
        ] {
            if v.len() != n {
                return Err(GradError::WrongLength {
                    what,
                    expected: n,
                    found: v.len(),
                });
            }
        }
        match (&template.buffers.spectral, &buffers.spectral) {
            (Some(_), Some(sn))
                if sn.rows == n && sn.cols == n && sn.u.len() == n && sn.v.len() == n => {}
            (None, None) => {}
            (_, sn) => {
                return Err(GradError::WrongLength {
                    what: "spectral-norm vectors of cell.W_r",
                    expected: if template.buffers.spectral.is_some() {
                        n
                    } else {
                        0
                    },
                    found: sn.as_ref().map_or(0, |s| s.u.len()),
                });
            }
        }
        Ok(Self {
            config,
            params,
            buffers,
            ids: template.ids,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// Ids of the raw parameters.
    #[must_use]
    pub fn ids(&self) -> &RnnIds {
        &self.ids
    }

    /// The initial state row `[y0 | a0 | b0_0 | b1_0]`.
    #[must_use]
    pub fn initial_state(&self) -> Vec<S> {
        let b = &self.buffers;
        [&b.y0[..], &b.a0, &b.b0_0, &b.b1_0].concat()
    }

    /// Checks a batch against the configuration.
    ///
    /// # Errors
    /// [`GradError::WrongLength`], [`GradError::EmptyInput`], [`GradError::LabelOutOfRange`].
    pub fn check_batch(
        &self,
        batch: &SequenceBatch<'_, S>,
        labels: Option<&[usize]>,
    ) -> Result<(), GradError> {
        if batch.input != self.config.input {
            return Err(GradError::WrongLength {
                what: "input dimension per step",
                expected: self.config.input,
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
            crate::loss::check_labels(labels, self.config.classes)?;
        }
        Ok(())
    }

    /// Runs one spectral-norm power iteration on `W_r` if `power` is
    /// [`PowerIteration::Update`] (training mode) and the variant uses spectral norm.
    pub fn power_iteration(&mut self, power: PowerIteration) {
        if power == PowerIteration::Update {
            let w = self.params.data(self.ids.w_r);
            if let Some(sn) = &mut self.buffers.spectral {
                sn.power_iteration(w);
            }
        }
    }

    /// Computes the effective weights into `out` (buffers reused).
    pub fn prepare(&self, out: &mut Prepared<S>) {
        let RnnConfig {
            hidden: n,
            input: m,
            cell,
            ..
        } = self.config;
        let p = &self.params;
        let ids = &self.ids;
        out.wx.clear();
        out.wx.extend_from_slice(p.data(ids.w_zx));
        out.wx.extend_from_slice(p.data(ids.w_bx0));
        out.wx.extend_from_slice(p.data(ids.w_bx1));
        debug_assert_eq!(out.wx.len(), 3 * n * m);
        out.wg.clear();
        for (l, r) in [(ids.w_by0, ids.w_ba0), (ids.w_by1, ids.w_ba1)] {
            for i in 0..n {
                out.wg.extend_from_slice(&p.data(l)[i * n..(i + 1) * n]);
                out.wg.extend_from_slice(&p.data(r)[i * n..(i + 1) * n]);
            }
        }
        let raw = p.data(ids.w_r);
        out.wr.clear();
        out.wr_sn.clear();
        out.wr_sigma = S::ONE;
        match (&cell.recurrence, &self.buffers.spectral) {
            (RecurrentMatrix::Free, _) | (_, None) => out.wr.extend_from_slice(raw),
            (rec, Some(sn)) => {
                out.wr_sn.resize(n * n, S::ZERO);
                out.wr_sigma = sn.forward(raw, &mut out.wr_sn);
                out.wr.extend_from_slice(&out.wr_sn);
                if *rec == RecurrentMatrix::IdentityPlusSpectralNorm {
                    for i in 0..n {
                        out.wr[i * n + i] += S::ONE;
                    }
                }
            }
        }
        out.w_exp.clear();
        out.w_exp.extend(p.data(ids.log_w).iter().map(|&x| x.exp()));
        out.w.clear();
        out.w.extend(out.w_exp.iter().map(|&e| {
            let e = match cell.norm_weights {
                NormWeights::Exp => e,
                NormWeights::ExpClamped => e.min(S::ONE),
            };
            e.flush_subnormal()
        }));
        let (my, ma, mb) = cell.time_constants.maxima();
        let maxima = [my, ma, mb, mb];
        out.dt.clear();
        out.dt_sigmoid.clear();
        for (k, &mx) in maxima.iter().enumerate() {
            for i in 0..n {
                let s = match &ids.tau {
                    Some(t) => p.data(t[k])[i].sigmoid(),
                    None => S::from_f64(SIGMOID_OF_ONE),
                };
                out.dt_sigmoid.push(s);
                out.dt.push(S::from_f64(mx) * s);
            }
        }
        out.sigma2.clear();
        out.sigma2.extend(self.buffers.sigma.iter().map(|&s| s * s));
    }

    /// Maps gradients of the effective weights (and of the readout) back to the raw
    /// parameters, overwriting `out` (which must have the layout of [`Self::params`]).
    pub fn raw_grads(
        &self,
        prep: &Prepared<S>,
        g: &crate::cell::CellWeightGrads<S>,
        readout_w: &[S],
        readout_b: &[S],
        out: &mut ParamSet<S>,
    ) {
        let RnnConfig {
            hidden: n,
            input: m,
            cell,
            ..
        } = self.config;
        let ids = &self.ids;
        out.data_mut(ids.w_zx).copy_from_slice(&g.wx[..n * m]);
        out.data_mut(ids.w_bx0)
            .copy_from_slice(&g.wx[n * m..2 * n * m]);
        out.data_mut(ids.w_bx1).copy_from_slice(&g.wx[2 * n * m..]);
        for (blk, (l, r)) in [
            (0usize, (ids.w_by0, ids.w_ba0)),
            (1, (ids.w_by1, ids.w_ba1)),
        ] {
            for i in 0..n {
                let row = &g.wg[(blk * n + i) * 2 * n..(blk * n + i + 1) * 2 * n];
                out.data_mut(l)[i * n..(i + 1) * n].copy_from_slice(&row[..n]);
                out.data_mut(r)[i * n..(i + 1) * n].copy_from_slice(&row[n..]);
            }
        }
        {
            let raw = self.params.data(ids.w_r);
            let dst = out.data_mut(ids.w_r);
            match (&cell.recurrence, &self.buffers.spectral) {
                (RecurrentMatrix::Free, _) | (_, None) => dst.copy_from_slice(&g.wr),
                (_, Some(sn)) => {
                    dst.iter_mut().for_each(|x| *x = S::ZERO);
                    sn.backward(raw, prep.wr_sigma, &g.wr, dst);
                }
            }
        }
        {
            let dst = out.data_mut(ids.log_w);
            for k in 0..n * n {
                let e = prep.w_exp[k];
                let pass = match cell.norm_weights {
                    NormWeights::Exp => S::ONE,
                    NormWeights::ExpClamped => {
                        if e <= S::ONE {
                            S::ONE
                        } else {
                            S::ZERO
                        }
                    }
                };
                dst[k] = (g.w[k] * e * pass).flush_subnormal();
            }
        }
        if let Some(tau) = ids.tau {
            let (my, ma, mb) = cell.time_constants.maxima();
            let maxima = [my, ma, mb, mb];
            for k in 0..4 {
                let dst = out.data_mut(tau[k]);
                for i in 0..n {
                    let s = prep.dt_sigmoid[k * n + i];
                    dst[i] = g.dt[k * n + i] * S::from_f64(maxima[k]) * s * (S::ONE - s);
                }
            }
        }
        out.data_mut(ids.readout_w).copy_from_slice(readout_w);
        out.data_mut(ids.readout_b).copy_from_slice(readout_b);
    }

    /// Records the whole model (parameter transforms, `T` cell steps, readout, loss) on a
    /// tape, with the spectral-norm vectors as they are (call [`Self::power_iteration`] first
    /// to mimic a training forward). This is the full-tape reference for [`crate::bptt`].
    ///
    /// # Errors
    /// As [`Self::check_batch`].
    pub fn record(
        &self,
        tape: &mut Tape<S>,
        batch: &SequenceBatch<'_, S>,
        labels: &[usize],
        imp: CellImpl,
    ) -> Result<RecordedModel, GradError> {
        self.check_batch(batch, Some(labels))?;
        let params: Vec<Var> = self
            .params
            .tensors()
            .iter()
            .map(|t| tape.param(t.rows, t.cols, &t.data))
            .collect();
        let vars = record_weights(tape, &self.config, &self.ids, &params, &self.buffers);
        let y = record_steps(
            tape,
            &self.config.cell,
            &vars,
            &self.initial_state(),
            batch.batch,
            batch.steps,
            |t| batch.step_rows(t, 0, batch.batch),
            imp,
            |_, _| {},
        );
        let logits = record_readout(tape, &self.ids, &params, y);
        debug_assert_eq!(tape.shape(logits), (batch.batch, self.config.classes));
        let loss = tape.softmax_cross_entropy(logits, labels)?;
        Ok(RecordedModel {
            loss,
            logits,
            params,
        })
    }
}

/// Records the effective weights of the cell (the parameter transforms of the module table)
/// on a tape: `params` are the leaves of the raw parameters (indexed by `ParamId.0` of
/// `ids`), `buffers` supply `σ` and the spectral-norm vectors (used as they are).
pub fn record_weights<S: Scalar>(
    tape: &mut Tape<S>,
    config: &RnnConfig,
    ids: &RnnIds,
    params: &[Var],
    buffers: &RnnBuffers<S>,
) -> CellVars {
    let RnnConfig {
        hidden: n, cell, ..
    } = *config;
    let pv = |id: ParamId| params[id.0];
    let w_r = match (&cell.recurrence, &buffers.spectral) {
        (RecurrentMatrix::Free, _) | (_, None) => pv(ids.w_r),
        (rec, Some(sn)) => {
            let s = tape.spectral_norm(pv(ids.w_r), sn);
            if *rec == RecurrentMatrix::IdentityPlusSpectralNorm {
                let mut eye = vec![S::ZERO; n * n];
                for i in 0..n {
                    eye[i * n + i] = S::ONE;
                }
                let eye = tape.constant(n, n, &eye);
                tape.add(s, eye)
            } else {
                s
            }
        }
    };
    let w_exp = tape.exp(pv(ids.log_w));
    let w_norm = match cell.norm_weights {
        NormWeights::Exp => w_exp,
        NormWeights::ExpClamped => tape.clamp(w_exp, S::ZERO, S::ONE),
    };
    let (my, ma, mb) = cell.time_constants.maxima();
    let dt = match ids.tau {
        Some(tau) => {
            let mut parts = Vec::with_capacity(4);
            for (k, mx) in [my, ma, mb, mb].into_iter().enumerate() {
                let s = tape.sigmoid(pv(tau[k]));
                parts.push(tape.scale(s, S::from_f64(mx)));
            }
            let ya = tape.concat_cols(parts[0], parts[1]);
            let bb = tape.concat_cols(parts[2], parts[3]);
            tape.concat_cols(ya, bb)
        }
        None => {
            let v: Vec<S> = [my, ma, mb, mb]
                .iter()
                .flat_map(|&mx| std::iter::repeat_n(S::from_f64(mx * SIGMOID_OF_ONE), n))
                .collect();
            tape.constant(1, 4 * n, &v)
        }
    };
    let sigma2: Vec<S> = buffers.sigma.iter().map(|&s| s * s).collect();
    let sigma2 = tape.constant(1, n, &sigma2);
    CellVars {
        w_zx: pv(ids.w_zx),
        w_bx0: pv(ids.w_bx0),
        w_bx1: pv(ids.w_bx1),
        w_r,
        w_by0: pv(ids.w_by0),
        w_ba0: pv(ids.w_ba0),
        w_by1: pv(ids.w_by1),
        w_ba1: pv(ids.w_ba1),
        w_norm,
        dt,
        sigma2,
    }
}

/// Records `steps` cell steps on a tape from the initial state row `init` (`[y0 | a0 | b0_0 |
/// b1_0]`, repeated over `rows`); `step(t)` is the `rows x m` input of step `t`, and
/// `observe(t, state)` sees every state (`rows x 4n`, the initial one at `t = 0`). Returns
/// `y_T` (`rows x n`).
#[allow(clippy::too_many_arguments)]
pub fn record_steps<'a, S: Scalar>(
    tape: &mut Tape<S>,
    cell: &CellConfig,
    vars: &CellVars,
    init: &[S],
    rows: usize,
    steps: usize,
    step: impl Fn(usize) -> &'a [S],
    imp: CellImpl,
    mut observe: impl FnMut(usize, &[S]),
) -> Var {
    let n = init.len() / 4;
    let m = tape.shape(vars.w_zx).1;
    let data: Vec<S> = (0..rows).flat_map(|_| init.iter().copied()).collect();
    let mut state = tape.constant(rows, 4 * n, &data);
    observe(0, tape.value(state));
    for t in 0..steps {
        let x = tape.constant(rows, m, step(t));
        state = match imp {
            CellImpl::Fused => tape.organics_cell(cell, x, state, vars),
            CellImpl::Composed => {
                crate::composed::organics_cell_composed(tape, cell, x, state, vars)
            }
        };
        observe(t + 1, tape.value(state));
    }
    tape.slice_cols(state, 0, n)
}

/// Records the readout `W_o y + c_o` of `y` (`rows x n`) on a tape.
pub fn record_readout<S: Scalar>(tape: &mut Tape<S>, ids: &RnnIds, params: &[Var], y: Var) -> Var {
    let lin = tape.linear(y, params[ids.readout_w.0]);
    tape.add(lin, params[ids.readout_b.0])
}

fn validate(c: &RnnConfig) -> Result<(), GradError> {
    for (field, v) in [
        ("hidden", c.hidden),
        ("input", c.input),
        ("classes", c.classes),
    ] {
        if v == 0 {
            return Err(GradError::InvalidConfig {
                field,
                value: 0.0,
                reason: "must be at least 1",
            });
        }
    }
    let (my, ma, mb) = c.cell.time_constants.maxima();
    for (field, v) in [
        ("time_constants.max_y", my),
        ("time_constants.max_a", ma),
        ("time_constants.max_b", mb),
    ] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(GradError::InvalidConfig {
                field,
                value: v,
                reason: "Euler factor maximum must be positive and finite",
            });
        }
    }
    Ok(())
}
