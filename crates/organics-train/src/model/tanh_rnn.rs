//! The vanilla tanh-RNN baseline (PyTorch `nn.RNN`, one layer):
//!
//! $$ h_t = \tanh\big(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}\big),\qquad h_0 = 0, $$
//!
//! with the readout `logits = W_out h_T + c`. Weights and biases `U(±1/√n)`. Names:
//! `rnn.weight_ih_l0`, `rnn.weight_hh_l0`, `rnn.bias_ih_l0`, `rnn.bias_hh_l0`, `fc.*`.

use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use super::linear::Linear;
use crate::params::{ParamId, ParamSet, Role, uniform};

/// Handles of the tanh RNN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TanhRnn {
    /// Units `n`.
    pub units: usize,
    /// Input width `m`.
    pub inputs: usize,
    w_ih: ParamId,
    w_hh: ParamId,
    b_ih: ParamId,
    b_hh: ParamId,
    fc: Linear,
}

impl TanhRnn {
    /// Registers the RNN and its readout.
    pub fn new(
        params: &mut ParamSet,
        rng: &mut ChaCha8Rng,
        inputs: usize,
        units: usize,
    ) -> TanhRnn {
        let n = units;
        let k = 1.0 / (n as f32).sqrt();
        let w_ih = params.add(
            "rnn.weight_ih_l0",
            n,
            inputs,
            uniform(rng, n * inputs, k),
            Role::Trainable,
        );
        let w_hh = params.add(
            "rnn.weight_hh_l0",
            n,
            n,
            uniform(rng, n * n, k),
            Role::Trainable,
        );
        let b_ih = params.add_vector("rnn.bias_ih_l0", uniform(rng, n, k), Role::Trainable);
        let b_hh = params.add_vector("rnn.bias_hh_l0", uniform(rng, n, k), Role::Trainable);
        let fc = Linear::new(params, rng, "fc", n, 10);
        TanhRnn {
            units,
            inputs,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            fc,
        }
    }

    /// Runs the sequence and returns the logits; `observe` sees `h_t` (`rows x n`).
    pub fn forward<'a>(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        rows: usize,
        steps: usize,
        step: impl Fn(usize) -> &'a [f32],
        mut observe: impl FnMut(usize, &[f32]),
    ) -> Var {
        let n = self.units;
        let mut h = tape.constant(rows, n, &vec![0.0f32; rows * n]);
        let bias = tape.add(vars[self.b_ih.0], vars[self.b_hh.0]);
        observe(0, tape.value(h));
        for t in 0..steps {
            let x = tape.constant(rows, self.inputs, step(t));
            let gx = tape.linear(x, vars[self.w_ih.0]);
            let gh = tape.linear(h, vars[self.w_hh.0]);
            let g = tape.add(gx, gh);
            let g = tape.add(g, bias);
            h = tape.tanh(g);
            observe(t + 1, tape.value(h));
        }
        self.fc.forward(tape, vars, h)
    }
}
