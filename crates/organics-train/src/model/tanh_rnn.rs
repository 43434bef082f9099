//! The vanilla tanh-RNN baseline (PyTorch `nn.RNN`, one layer):
//!
//! $$ h_t = \tanh\big(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}\big),\qquad h_0 = 0, $$
//!
//! with the readout `logits = W_out h_T + c`. The weights are [`RecurrentWeights`] with one
//! gate block (`U(±1/√n)`), named `rnn.weight_ih_l0`, `rnn.weight_hh_l0`, `rnn.bias_ih_l0`,
//! `rnn.bias_hh_l0`; the readout `fc.*`.
//!
//! Training and evaluation run on organics-grad's fused cell and BPTT engine
//! ([`organics_grad::RecurrentBptt`], through [`super::bptt::BaselineEngine`]), which reads
//! these tensors in place; the tape recording below ([`TanhRnn::forward`]) is the reference the
//! gradient tests compare the engine against, and serves the observers.

use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use super::CLASSES;
use super::linear::Linear;
use super::recurrent::RecurrentWeights;
use crate::params::StateDict;

/// Handles of the tanh RNN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TanhRnn {
    /// Input and recurrent weights (one block).
    pub cell: RecurrentWeights,
    fc: Linear,
}

impl TanhRnn {
    /// Registers the RNN and its readout.
    pub fn new(
        params: &mut StateDict,
        rng: &mut ChaCha8Rng,
        inputs: usize,
        units: usize,
    ) -> TanhRnn {
        let cell = RecurrentWeights::new(params, rng, "rnn", inputs, units, 1);
        let fc = Linear::new(params, rng, "fc", units, CLASSES);
        TanhRnn { cell, fc }
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
        let n = self.cell.units;
        let mut h = tape.constant(rows, n, &vec![0.0f32; rows * n]);
        let bias = self.cell.bias(tape, vars);
        observe(0, tape.value(h));
        for t in 0..steps {
            let g = self.cell.pre_activation(tape, vars, step(t), h, bias);
            h = tape.tanh(g);
            observe(t + 1, tape.value(h));
        }
        self.fc.forward(tape, vars, h)
    }
}
