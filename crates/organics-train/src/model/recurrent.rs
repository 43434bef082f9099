//! The weights shared by PyTorch-style recurrent layers (`nn.RNN`, `nn.LSTM`): `G` gate blocks
//! of `n` units each, with the pre-activation
//!
//! $$ g_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh} \in \mathbb{R}^{G n}, $$
//!
//! `W_ih` (`Gn x m`), `W_hh` (`Gn x n`), `b_ih`, `b_hh` (`Gn`), all drawn `U(±1/√n)` in that
//! order (PyTorch's default initialisation), named `{prefix}.weight_ih_l0`,
//! `{prefix}.weight_hh_l0`, `{prefix}.bias_ih_l0`, `{prefix}.bias_hh_l0`. The tanh RNN has
//! `G = 1`, the LSTM `G = 4` (gate order `i, f, g, o`).

use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use crate::params::{ParamId, Role, StateDict, uniform};

/// Handles of one recurrent layer's input and recurrent weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrentWeights {
    /// Units `n`.
    pub units: usize,
    /// Input width `m`.
    pub inputs: usize,
    w_ih: ParamId,
    w_hh: ParamId,
    b_ih: ParamId,
    b_hh: ParamId,
}

impl RecurrentWeights {
    /// Registers `{prefix}.weight_ih_l0`, `{prefix}.weight_hh_l0`, `{prefix}.bias_ih_l0`,
    /// `{prefix}.bias_hh_l0` for `gates` blocks of `units` units, drawn in that order.
    pub fn new(
        params: &mut StateDict,
        rng: &mut ChaCha8Rng,
        prefix: &str,
        inputs: usize,
        units: usize,
        gates: usize,
    ) -> RecurrentWeights {
        let rows = gates * units;
        let k = 1.0 / (units as f32).sqrt();
        let w_ih = params.add(
            &format!("{prefix}.weight_ih_l0"),
            rows,
            inputs,
            uniform(rng, rows * inputs, k),
            Role::Trainable,
        );
        let w_hh = params.add(
            &format!("{prefix}.weight_hh_l0"),
            rows,
            units,
            uniform(rng, rows * units, k),
            Role::Trainable,
        );
        let b_ih = params.add_vector(
            &format!("{prefix}.bias_ih_l0"),
            uniform(rng, rows, k),
            Role::Trainable,
        );
        let b_hh = params.add_vector(
            &format!("{prefix}.bias_hh_l0"),
            uniform(rng, rows, k),
            Role::Trainable,
        );
        RecurrentWeights {
            units,
            inputs,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }

    /// `b_ih + b_hh`, recorded once per sequence.
    pub fn bias(&self, tape: &mut Tape<f32>, vars: &[Var]) -> Var {
        tape.add(vars[self.b_ih.0], vars[self.b_hh.0])
    }

    /// `g_t` for the input rows `x` (`rows x m`, row-major) and the previous state `h`, with
    /// `bias` from [`Self::bias`].
    pub fn pre_activation(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        x: &[f32],
        h: Var,
        bias: Var,
    ) -> Var {
        let rows = tape.shape(h).0;
        let x = tape.constant(rows, self.inputs, x);
        let gx = tape.linear(x, vars[self.w_ih.0]);
        let gh = tape.linear(h, vars[self.w_hh.0]);
        let g = tape.add(gx, gh);
        tape.add(g, bias)
    }
}
