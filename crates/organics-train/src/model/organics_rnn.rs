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
//! **One model.** The network is [`organics_grad::OrganicsRnn`]: its initialiser, its
//! parameter transforms and its BPTT engine ([`super::bptt`]) are the only ones. This module
//! registers that model's tensors in the [`StateDict`] under the reference PyTorch
//! `state_dict` names, which are what checkpoints read and write (and what a PyTorch user loads):
//!
//! | `state_dict` name (files) | organics-grad |
//! |---|---|
//! | `org.Wzx.weight` | `cell.W_zx` |
//! | `org.Wr.parametrizations.weight.original` (`paper`), `org.Wr.weight` (`head`) | `cell.W_r` |
//! | `org.Wbx0`, `org.Wby0`, `org.Wba0`, `org.Wbx1`, `org.Wby1`, `org.Wba1` | `cell.W_bx0`, …, `cell.W_ba1` |
//! | `org.log_Way` | `cell.log_W` |
//! | `org.param_dt_tauy`, `…taua`, `…taub0`, `…taub1` (learned) | `cell.p_y`, `cell.p_a`, `cell.p_b0`, `cell.p_b1` |
//! | the same, frozen at 1 (fixed) | none: [`TimeConstants::Fixed`] uses `sigmoid(1)` |
//! | `fc.weight`, `fc.bias` | `readout.weight`, `readout.bias` |
//! | `org.sigma`, `org.y0`, `org.a0`, `org.b0_0`, `org.b1_0` | [`RnnBuffers`] `sigma`, `y0`, `a0`, `b0_0`, `b1_0` |
//! | `org.Wr.parametrizations.weight.0._u`, `…._v` | [`RnnBuffers`] `spectral` (`u`, `v`) |
//!
//! The trainable tensors of the [`StateDict`] are the model's raw parameters in the model's
//! order ([`RnnIds::of`]), so they are the optimiser's layout and the engine's gradient layout
//! at once; the engine lends them (and the buffers) to organics-grad's model for a step by
//! swapping the storage in and out ([`OrganicsRnn::exchange`]), without copying values or
//! mapping gradients. Presets: `paper` is [`CellConfig::NEURIPS`], `head` is
//! [`CellConfig::HEAD`], each with [`TimeConstants::PAPER_LEARNED`] or
//! [`TimeConstants::PAPER_FIXED`].

use organics_grad::cell::{CellConfig, TimeConstants};
use organics_grad::rnn::{
    CellImpl, RnnBuffers, RnnConfig, RnnIds, record_readout, record_steps, record_weights,
};
use organics_grad::spectral_norm::SpectralNorm;
use organics_grad::{Tape, Var};

use super::CLASSES;
use super::fixed_point::SnHandles;
use crate::config::{CellPreset, TauMode};
use crate::error::TrainError;
use crate::params::{ParamId, Role, StateDict};

/// Names of the gate matrices in the `state_dict`, in the model's order.
const GATE_NAMES: [&str; 6] = [
    "org.Wbx0", "org.Wby0", "org.Wba0", "org.Wbx1", "org.Wby1", "org.Wba1",
];

/// Names of the time parameters in the `state_dict`, in the model's order.
const TAU_NAMES: [&str; 4] = [
    "org.param_dt_tauy",
    "org.param_dt_taua",
    "org.param_dt_taub0",
    "org.param_dt_taub1",
];

/// The ORGaNICs RNN's configuration and the [`StateDict`] handles of its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganicsRnn {
    /// Units `n`.
    pub units: usize,
    /// Input width `m`.
    pub inputs: usize,
    /// The model's configuration in organics-grad.
    pub config: RnnConfig,
    /// Ids of the raw parameters in the model's order.
    ids: RnnIds,
    /// The raw parameters in the state dict, in the model's order (the trainable tensors).
    theta: Vec<ParamId>,
    /// Spectral-norm state of `W_r` (`paper`).
    sn: Option<SnHandles>,
    sigma: ParamId,
    /// Time parameters: the trainable `θ` entries (learned) or frozen ones (fixed).
    tau: [ParamId; 4],
    /// `y0`, `a0`, `b0_0`, `b1_0`.
    init: [ParamId; 4],
}

impl OrganicsRnn {
    /// The model of `preset` and `tau` initialised by [`organics_grad::OrganicsRnn::new`]
    /// from `seed`, its tensors registered in `params` under the `state_dict` names.
    ///
    /// # Errors
    /// [`TrainError::Grad`] for sizes organics-grad rejects (zero units or inputs).
    pub fn new(
        params: &mut StateDict,
        seed: u64,
        inputs: usize,
        units: usize,
        preset: CellPreset,
        tau: TauMode,
    ) -> Result<OrganicsRnn, TrainError> {
        let n = units;
        let base = match preset {
            CellPreset::Paper => CellConfig::NEURIPS,
            CellPreset::Head => CellConfig::HEAD,
        };
        let time_constants = match tau {
            TauMode::Learned => TimeConstants::PAPER_LEARNED,
            TauMode::Fixed => TimeConstants::PAPER_FIXED,
        };
        let config = RnnConfig {
            hidden: units,
            input: inputs,
            classes: CLASSES,
            cell: CellConfig {
                time_constants,
                ..base
            },
        };
        let model = organics_grad::OrganicsRnn::<f32>::new(config, seed)?;
        let ids = *model.ids();
        let mut raw = model.params.tensors().iter().map(|t| t.data.clone());
        let mut next = || raw.next().expect("the model's raw parameters");
        let buffers = model.buffers;
        let mut theta = Vec::new();
        theta.push(params.add("org.Wzx.weight", n, inputs, next(), Role::Trainable));
        let w_r = next();
        let sn = match (preset, buffers.spectral) {
            (CellPreset::Paper, Some(state)) => {
                let sn = SnHandles::register(params, "org.Wr", n, w_r, state);
                theta.push(sn.weight);
                Some(sn)
            }
            _ => {
                theta.push(params.add("org.Wr.weight", n, n, w_r, Role::Trainable));
                None
            }
        };
        for name in GATE_NAMES {
            let data = next();
            let cols = data.len() / n;
            theta.push(params.add(name, n, cols, data, Role::Trainable));
        }
        theta.push(params.add("org.log_Way", n, n, next(), Role::Trainable));
        let sigma = params.add_vector("org.sigma", buffers.sigma, Role::Frozen);
        let tau = TAU_NAMES.map(|name| match tau {
            TauMode::Learned => {
                let id = params.add_vector(name, next(), Role::Trainable);
                theta.push(id);
                id
            }
            TauMode::Fixed => params.add_vector(name, vec![1.0; n], Role::Frozen),
        });
        let init = [
            params.add_vector("org.y0", buffers.y0, Role::Buffer),
            params.add_vector("org.a0", buffers.a0, Role::Buffer),
            params.add_vector("org.b0_0", buffers.b0_0, Role::Buffer),
            params.add_vector("org.b1_0", buffers.b1_0, Role::Buffer),
        ];
        theta.push(params.add("fc.weight", CLASSES, n, next(), Role::Trainable));
        theta.push(params.add_vector("fc.bias", next(), Role::Trainable));
        Ok(OrganicsRnn {
            units,
            inputs,
            config,
            ids,
            theta,
            sn,
            sigma,
            tau,
            init,
        })
    }

    /// Spectral-norm state of `W_r`, if any (updated once per training step).
    pub fn spectral_norm(&self) -> Option<SnHandles> {
        self.sn
    }

    /// Checks that frozen time parameters hold 1, the value organics-grad's
    /// [`TimeConstants::Fixed`] assumes.
    ///
    /// # Errors
    /// [`TrainError::FrozenValue`] naming the first other value (a hand-edited checkpoint).
    pub fn check_frozen_tau(&self, params: &StateDict) -> Result<(), TrainError> {
        if matches!(self.config.cell.time_constants, TimeConstants::Fixed { .. }) {
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

    /// Swaps the storage of the raw parameters and buffers between `params` and organics-grad's
    /// `model` (of this model's [`Self::config`]): called once, it lends the tensors to `model`
    /// for a step or an evaluation; called again, it gives them back. No value is copied.
    ///
    /// # Panics
    /// If `model` was not built for this configuration (a bug: the engine builds it).
    pub fn exchange(&self, model: &mut organics_grad::OrganicsRnn<f32>, params: &mut StateDict) {
        assert_eq!(
            (model.config(), model.ids()),
            (&self.config, &self.ids),
            "organics-grad's model has another configuration"
        );
        std::mem::swap(&mut model.params, params.trainable_mut());
        let b = &mut model.buffers;
        for (dst, id) in [
            (&mut b.sigma, self.sigma),
            (&mut b.y0, self.init[0]),
            (&mut b.a0, self.init[1]),
            (&mut b.b0_0, self.init[2]),
            (&mut b.b1_0, self.init[3]),
        ] {
            std::mem::swap(dst, &mut params.tensor_mut(id).data);
        }
        if let (Some(sn), Some(SpectralNorm { u, v, .. })) = (self.sn, &mut b.spectral) {
            std::mem::swap(u, &mut params.tensor_mut(sn.u).data);
            std::mem::swap(v, &mut params.tensor_mut(sn.v).data);
        }
    }

    /// The buffers as organics-grad holds them (copies of `n`-vectors, for the tape).
    fn buffers(&self, params: &StateDict) -> RnnBuffers<f32> {
        let v = |id: ParamId| params.data(id).to_vec();
        RnnBuffers {
            sigma: v(self.sigma),
            y0: v(self.init[0]),
            a0: v(self.init[1]),
            b0_0: v(self.init[2]),
            b1_0: v(self.init[3]),
            spectral: self.sn.map(|sn| sn.state(params)),
        }
    }

    /// Records the sequence on a tape (`step(t)` is the `rows x m` input of step `t`) through
    /// organics-grad's recording of the model and returns the logits; `observe` sees every
    /// state (`rows x 4n`, including the initial one). `vars` are the handles of
    /// [`StateDict::to_tape`].
    #[allow(clippy::too_many_arguments)]
    pub fn forward<'a>(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        params: &StateDict,
        rows: usize,
        steps: usize,
        step: impl Fn(usize) -> &'a [f32],
        observe: impl FnMut(usize, &[f32]),
    ) -> Var {
        let theta: Vec<Var> = self.theta.iter().map(|id| vars[id.0]).collect();
        let buffers = self.buffers(params);
        let cell_vars = record_weights(tape, &self.config, &self.ids, &theta, &buffers);
        let init = [&buffers.y0[..], &buffers.a0, &buffers.b0_0, &buffers.b1_0].concat();
        let y = record_steps(
            tape,
            &self.config.cell,
            &cell_vars,
            &init,
            rows,
            steps,
            step,
            CellImpl::Fused,
            observe,
        );
        record_readout(tape, &self.ids, &theta, y)
    }
}
