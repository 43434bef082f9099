//! The ORGaNICs RNN for sequential MNIST (docs/model.md#gated-rnn-cell): the Euler-discretised, gated, rectified
//! circuit of [`organics_grad::cell`] run over the sequence, with a linear readout of the final
//! membrane potential, `logits = W_out y_T + c`.
//!
//! Effective weights per preset:
//!
//! | | `paper` (docs/model.md#rnn-cell-as-trained) | `head` (docs/model.md#rnn-cell-as-trained) |
//! |---|---|---|
//! | `W_r` | `I + SN(W_r)`, `W_r` initialised to `I` | `W_r` free, orthogonal init |
//! | `W` | `exp(log W)`, `log W ~ U(−1,0)`, zero diagonal | `clamp(exp(log W), 0, 1)`, `W ~ U(0,1)`, unit diagonal |
//! | `z` | `W_zx x` | `⌊W_zx x⌋` |
//! | `ŷ` | `W_r ⌊y⌋` | `⌊W_r y⌋` |
//!
//! Both: `Δt/τ_k = max_k · sigmoid(p_k)` with maxima `0.02, 0.005, 0.1` and `p_k ~ N(0,1)`
//! learned, or `p_k = 1` frozen for fixed time constants; `σ = 1` fixed; `W_zx` drawn
//! kaiming-uniform and scaled to unit spectral norm; gate weights kaiming-uniform; initial state
//! (buffers drawn once) `y_0 = u/‖u‖`, `u ~ U(0,1)^n`, `a_0 ~ U(0,1)^n`, `b0_0 = 1`,
//! `b1_0 ~ U(0,1)^n`. Trainable parameters: `6n² + 3nm + 4n + 10n + 10` (100 490 at n = 128,
//! 25 674 at n = 64 for m = 1).
//!
//! **The same model in organics-grad.** Training and evaluation run this model through
//! [`organics_grad::OrganicsRnn`] and its BPTT engine ([`super::bptt`]); the tape recording of
//! [`OrganicsRnn::forward`] serves the observers and the gradient tests. The two describe the
//! same network under different names:
//!
//! | here (PyTorch `state_dict`) | organics-grad |
//! |---|---|
//! | `org.Wzx.weight` | `cell.W_zx` |
//! | `org.Wr.parametrizations.weight.original` (`paper`), `org.Wr.weight` (`head`) | `cell.W_r` |
//! | `org.Wbx0`, `org.Wby0`, `org.Wba0`, `org.Wbx1`, `org.Wby1`, `org.Wba1` | `cell.W_bx0`, …, `cell.W_ba1` |
//! | `org.log_Way` | `cell.log_W` |
//! | `org.param_dt_tauy`, `…taua`, `…taub0`, `…taub1` (learned) | `cell.p_y`, `cell.p_a`, `cell.p_b0`, `cell.p_b1` |
//! | the same, frozen at 1 (fixed) | none: [`TimeConstants::Fixed`] uses `sigmoid(1)` |
//! | `fc.weight`, `fc.bias` | `readout.weight`, `readout.bias` |
//! | `org.sigma`, `org.y0`, `org.a0`, `org.b0_0`, `org.b1_0` | [`organics_grad::rnn::RnnBuffers`] `sigma`, `y0`, `a0`, `b0_0`, `b1_0` |
//! | `org.Wr.parametrizations.weight.0._u`, `…._v` | [`organics_grad::rnn::RnnBuffers`] `spectral` (`u`, `v`) |
//!
//! Presets: `paper` is [`CellConfig::NEURIPS`], `head` is [`CellConfig::HEAD`], each with
//! [`TimeConstants::Learned`] or [`TimeConstants::Fixed`] at the maxima [`DT_TAU_MAX`].

use organics_grad::cell::{CellConfig, TimeConstants};
use organics_grad::rnn::{RnnConfig, RnnIds};
use organics_grad::spectral_norm::SpectralNorm;
use organics_grad::tape::CellVars;
use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use super::CLASSES;
use super::fixed_point::SnHandles;
use super::linear::Linear;
use crate::config::{CellPreset, TauMode};
use crate::error::TrainError;
use crate::params::{
    ParamId, ParamSet, Role, identity, kaiming_uniform, normal, orthogonal, unit_uniform,
};

/// Maxima of `Δt/τ` for `y`, `a` and the gains `b0`, `b1` (the paper runs, docs/model.md#rnn-cell-as-trained).
pub const DT_TAU_MAX: (f64, f64, f64) = (0.02, 0.005, 0.1);

/// How `W_r` is parametrised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecurrentWeight {
    /// `I + SN(W_r)`.
    IdentityPlusSn(SnHandles),
    /// `W_r` as is.
    Free(ParamId),
}

/// Handles of the ORGaNICs RNN.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganicsRnn {
    /// Units `n`.
    pub units: usize,
    /// Input width `m`.
    pub inputs: usize,
    /// Cell variant.
    pub cell: CellConfig,
    w_zx: ParamId,
    w_r: RecurrentWeight,
    gates: [ParamId; 6],
    log_w: ParamId,
    sigma: ParamId,
    tau: [ParamId; 4],
    init: [ParamId; 4],
    fc: Linear,
}

impl OrganicsRnn {
    /// Registers the cell (`org.*`) and readout (`fc.*`).
    pub fn new(
        params: &mut ParamSet,
        rng: &mut ChaCha8Rng,
        inputs: usize,
        units: usize,
        preset: CellPreset,
        tau: TauMode,
    ) -> OrganicsRnn {
        let n = units;
        let (max_y, max_a, max_b) = DT_TAU_MAX;
        let time_constants = match tau {
            TauMode::Learned => TimeConstants::Learned {
                max_y,
                max_a,
                max_b,
            },
            TauMode::Fixed => TimeConstants::Fixed {
                max_y,
                max_a,
                max_b,
            },
        };
        let base = match preset {
            CellPreset::Paper => CellConfig::NEURIPS,
            CellPreset::Head => CellConfig::HEAD,
        };
        let cell = CellConfig {
            time_constants,
            ..base
        };
        // W_zx: kaiming uniform, then divided by its largest singular value.
        let mut w_zx = kaiming_uniform(rng, n, inputs);
        let smax = largest_singular_value(&w_zx, n, inputs);
        if smax > 0.0 {
            w_zx.iter_mut().for_each(|v| *v /= smax);
        }
        let w_zx = params.add("org.Wzx.weight", n, inputs, w_zx, Role::Trainable);
        let w_r = match preset {
            CellPreset::Paper => {
                let seed = rand::RngExt::random::<u64>(rng);
                RecurrentWeight::IdentityPlusSn(SnHandles::new(
                    params,
                    "org.Wr",
                    n,
                    identity(n),
                    seed,
                ))
            }
            CellPreset::Head => RecurrentWeight::Free(params.add(
                "org.Wr.weight",
                n,
                n,
                orthogonal(rng, n),
                Role::Trainable,
            )),
        };
        let mut gate = |name: &str, fan_in: usize| {
            params.add(
                name,
                n,
                fan_in,
                kaiming_uniform(rng, n, fan_in),
                Role::Trainable,
            )
        };
        let gates = [
            gate("org.Wbx0", inputs),
            gate("org.Wby0", n),
            gate("org.Wba0", n),
            gate("org.Wbx1", inputs),
            gate("org.Wby1", n),
            gate("org.Wba1", n),
        ];
        let mut log_w = match preset {
            CellPreset::Paper => unit_uniform(rng, n * n)
                .into_iter()
                .map(|u| -u)
                .collect::<Vec<f32>>(),
            CellPreset::Head => unit_uniform(rng, n * n)
                .into_iter()
                .map(|u| u.max(1e-8).ln())
                .collect(),
        };
        for i in 0..n {
            log_w[i * n + i] = 0.0;
        }
        let log_w = params.add("org.log_Way", n, n, log_w, Role::Trainable);
        let sigma = params.add_vector("org.sigma", vec![1.0; n], Role::Frozen);
        let tau_names = [
            "org.param_dt_tauy",
            "org.param_dt_taua",
            "org.param_dt_taub0",
            "org.param_dt_taub1",
        ];
        let tau = tau_names.map(|name| match tau {
            TauMode::Learned => params.add_vector(name, normal(rng, n), Role::Trainable),
            TauMode::Fixed => params.add_vector(name, vec![1.0; n], Role::Frozen),
        });
        let u = unit_uniform(rng, n);
        let norm = u
            .iter()
            .map(|v| v * v)
            .sum::<f32>()
            .sqrt()
            .max(f32::MIN_POSITIVE);
        let y0 = u.iter().map(|v| v / norm).collect();
        let a0 = unit_uniform(rng, n);
        let b1_0 = unit_uniform(rng, n);
        let init = [
            params.add_vector("org.y0", y0, Role::Buffer),
            params.add_vector("org.a0", a0, Role::Buffer),
            params.add_vector("org.b0_0", vec![1.0; n], Role::Buffer),
            params.add_vector("org.b1_0", b1_0, Role::Buffer),
        ];
        let fc = Linear::new(params, rng, "fc", n, CLASSES);
        OrganicsRnn {
            units,
            inputs,
            cell,
            w_zx,
            w_r,
            gates,
            log_w,
            sigma,
            tau,
            init,
            fc,
        }
    }

    /// The configuration of the same model in organics-grad.
    pub fn grad_config(&self) -> RnnConfig {
        RnnConfig {
            hidden: self.units,
            input: self.inputs,
            classes: CLASSES,
            cell: self.cell,
        }
    }

    fn w_r_id(&self) -> ParamId {
        match self.w_r {
            RecurrentWeight::IdentityPlusSn(sn) => sn.weight,
            RecurrentWeight::Free(id) => id,
        }
    }

    /// Every raw parameter of organics-grad's model (`ids`) with the tensor that holds it here
    /// (see the module table), in organics-grad's order.
    pub fn grad_pairs(&self, ids: &RnnIds) -> Vec<(ParamId, organics_grad::ParamId)> {
        let mut pairs = vec![
            (self.w_zx, ids.w_zx),
            (self.w_r_id(), ids.w_r),
            (self.gates[0], ids.w_bx0),
            (self.gates[1], ids.w_by0),
            (self.gates[2], ids.w_ba0),
            (self.gates[3], ids.w_bx1),
            (self.gates[4], ids.w_by1),
            (self.gates[5], ids.w_ba1),
            (self.log_w, ids.log_w),
        ];
        if let Some(tau) = ids.tau {
            pairs.extend(self.tau.iter().copied().zip(tau));
        }
        pairs.push((self.fc.weight, ids.readout_w));
        pairs.push((self.fc.bias, ids.readout_b));
        pairs
    }

    /// Checks that frozen time parameters hold 1, the value organics-grad's
    /// [`TimeConstants::Fixed`] assumes.
    fn check_frozen_tau(&self, params: &ParamSet) -> Result<(), TrainError> {
        if matches!(self.cell.time_constants, TimeConstants::Fixed { .. }) {
            for id in self.tau {
                if let Some((index, &value)) = params
                    .data(id)
                    .iter()
                    .enumerate()
                    .find(|(_, v)| v.to_bits() != 1f32.to_bits())
                {
                    return Err(TrainError::FrozenValue {
                        name: params.get(id).name.clone(),
                        index,
                        value,
                        expected: 1.0,
                    });
                }
            }
        }
        Ok(())
    }

    /// Builds organics-grad's model holding this model's current parameters and buffers: a
    /// freshly initialised model of the same configuration, overwritten by
    /// [`Self::copy_to_grad`].
    ///
    /// # Errors
    /// [`TrainError::FrozenValue`] if fixed time parameters are not 1 (a hand-edited
    /// checkpoint); [`TrainError::Grad`] if organics-grad rejects the configuration.
    pub fn to_grad(
        &self,
        params: &ParamSet,
    ) -> Result<organics_grad::OrganicsRnn<f32>, TrainError> {
        let mut model = organics_grad::OrganicsRnn::<f32>::new(self.grad_config(), 0)?;
        self.copy_to_grad(params, &mut model)?;
        Ok(model)
    }

    /// Copies this model's current parameters and buffers into `model` (of this model's
    /// [`Self::grad_config`]); no allocation.
    ///
    /// # Errors
    /// [`TrainError::FrozenValue`] as [`Self::to_grad`].
    pub fn copy_to_grad(
        &self,
        params: &ParamSet,
        model: &mut organics_grad::OrganicsRnn<f32>,
    ) -> Result<(), TrainError> {
        self.check_frozen_tau(params)?;
        let ids = *model.ids();
        for (here, there) in self.grad_pairs(&ids) {
            model
                .params
                .data_mut(there)
                .copy_from_slice(params.data(here));
        }
        let b = &mut model.buffers;
        for (dst, id) in [
            (&mut b.sigma, self.sigma),
            (&mut b.y0, self.init[0]),
            (&mut b.a0, self.init[1]),
            (&mut b.b0_0, self.init[2]),
            (&mut b.b1_0, self.init[3]),
        ] {
            dst.copy_from_slice(params.data(id));
        }
        if let (Some(sn), Some(dst)) = (self.spectral_norm(), &mut b.spectral) {
            dst.u.copy_from_slice(params.data(sn.u));
            dst.v.copy_from_slice(params.data(sn.v));
        }
        Ok(())
    }

    /// Copies the spectral-norm vectors of `model` (refined by a training step's power
    /// iteration) back into this model's buffers.
    pub fn copy_spectral_from_grad(
        &self,
        model: &organics_grad::OrganicsRnn<f32>,
        params: &mut ParamSet,
    ) {
        if let (Some(sn), Some(SpectralNorm { u, v, .. })) =
            (self.spectral_norm(), &model.buffers.spectral)
        {
            params.data_mut(sn.u).copy_from_slice(u);
            params.data_mut(sn.v).copy_from_slice(v);
        }
    }

    /// Spectral-norm state of `W_r`, if any (updated once per training step).
    pub fn spectral_norm(&self) -> Option<SnHandles> {
        match self.w_r {
            RecurrentWeight::IdentityPlusSn(sn) => Some(sn),
            RecurrentWeight::Free(_) => None,
        }
    }

    /// The cell's effective weights on the tape.
    pub fn cell_vars(&self, tape: &mut Tape<f32>, vars: &[Var], params: &ParamSet) -> CellVars {
        let n = self.units;
        let w_r = match self.w_r {
            RecurrentWeight::IdentityPlusSn(sn) => {
                let s = sn.forward(tape, vars, params);
                let eye = tape.constant(n, n, &identity(n));
                tape.add(eye, s)
            }
            RecurrentWeight::Free(id) => vars[id.0],
        };
        let e = tape.exp(vars[self.log_w.0]);
        let w_norm = match self.cell.norm_weights {
            organics_grad::cell::NormWeights::Exp => e,
            organics_grad::cell::NormWeights::ExpClamped => tape.clamp(e, 0.0, 1.0),
        };
        let (max_y, max_a, max_b) = self.cell.time_constants.maxima();
        let maxima = [max_y, max_a, max_b, max_b];
        let mut dt = None;
        for (k, id) in self.tau.iter().enumerate() {
            let s = tape.sigmoid(vars[id.0]);
            let s = tape.scale(s, maxima[k] as f32);
            dt = Some(match dt {
                None => s,
                Some(prev) => tape.concat_cols(prev, s),
            });
        }
        let sigma2 = tape.square(vars[self.sigma.0]);
        CellVars {
            w_zx: vars[self.w_zx.0],
            w_bx0: vars[self.gates[0].0],
            w_by0: vars[self.gates[1].0],
            w_ba0: vars[self.gates[2].0],
            w_bx1: vars[self.gates[3].0],
            w_by1: vars[self.gates[4].0],
            w_ba1: vars[self.gates[5].0],
            w_r,
            w_norm,
            dt: dt.expect("four time-constant vectors"),
            sigma2,
        }
    }

    /// The initial state `[y_0 | a_0 | b0_0 | b1_0]` repeated over `rows` rows.
    pub fn initial_state(&self, tape: &mut Tape<f32>, params: &ParamSet, rows: usize) -> Var {
        let mut row = Vec::with_capacity(4 * self.units);
        for id in self.init {
            row.extend_from_slice(params.data(id));
        }
        let data: Vec<f32> = (0..rows).flat_map(|_| row.iter().copied()).collect();
        tape.constant(rows, 4 * self.units, &data)
    }

    /// Runs the sequence (`step(t)` is the `rows x m` input of step `t`) and returns the logits;
    /// `observe` sees every state (`rows x 4n`, including the initial one).
    pub fn forward<'a>(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        params: &ParamSet,
        rows: usize,
        steps: usize,
        step: impl Fn(usize) -> &'a [f32],
        mut observe: impl FnMut(usize, &[f32]),
    ) -> Var {
        let v = self.cell_vars(tape, vars, params);
        let mut state = self.initial_state(tape, params, rows);
        observe(0, tape.value(state));
        for t in 0..steps {
            let x = tape.constant(rows, self.inputs, step(t));
            state = tape.organics_cell(&self.cell, x, state, &v);
            observe(t + 1, tape.value(state));
        }
        let y = tape.slice_cols(state, 0, self.units);
        self.fc.forward(tape, vars, y)
    }
}

/// Largest singular value of a small row-major matrix (power iteration on `AᵀA`, f64).
fn largest_singular_value(a: &[f32], rows: usize, cols: usize) -> f32 {
    let mut v = vec![1.0f64; cols];
    let mut sigma = 0.0f64;
    for _ in 0..200 {
        let av: Vec<f64> = (0..rows)
            .map(|i| (0..cols).map(|j| f64::from(a[i * cols + j]) * v[j]).sum())
            .collect();
        let atav: Vec<f64> = (0..cols)
            .map(|j| (0..rows).map(|i| f64::from(a[i * cols + j]) * av[i]).sum())
            .collect();
        let norm = atav.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        v = atav.into_iter().map(|x| x / norm).collect();
        sigma = norm.sqrt();
    }
    sigma as f32
}
