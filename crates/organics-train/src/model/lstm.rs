//! The LSTM baseline (PyTorch `nn.LSTM`, one layer, gate order `i, f, g, o`):
//!
//! $$ [i\,f\,g\,o] = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh},\quad
//!    c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh g,\quad
//!    h_t = \sigma(o) \odot \tanh c_t, $$
//!
//! from `h_0 = c_0 = 0`, with the readout `logits = W_out h_T + c`. The weights are
//! [`RecurrentWeights`] with four gate blocks (`U(±1/√n)`, PyTorch's default), named
//! `lstm.weight_ih_l0`, `lstm.weight_hh_l0`, `lstm.bias_ih_l0`, `lstm.bias_hh_l0`; the readout
//! `fc.weight`, `fc.bias`.
//!
//! Training and evaluation run on organics-grad's fused cell and BPTT engine
//! ([`organics_grad::RecurrentBptt`], through [`super::bptt::BaselineEngine`]), which reads
//! these tensors in place; the tape recording below ([`Lstm::forward`]) is the reference the
//! gradient tests compare the engine against, and serves the observers.

use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use super::CLASSES;
use super::linear::Linear;
use super::recurrent::RecurrentWeights;
use crate::params::StateDict;

/// Handles of the LSTM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lstm {
    /// Input and recurrent weights (four gate blocks).
    pub cell: RecurrentWeights,
    fc: Linear,
}

impl Lstm {
    /// Registers the LSTM and its readout.
    pub fn new(params: &mut StateDict, rng: &mut ChaCha8Rng, inputs: usize, units: usize) -> Lstm {
        let cell = RecurrentWeights::new(params, rng, "lstm", inputs, units, 4);
        let fc = Linear::new(params, rng, "fc", units, CLASSES);
        Lstm { cell, fc }
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
        let zeros = vec![0.0f32; rows * n];
        let mut h = tape.constant(rows, n, &zeros);
        let mut c = tape.constant(rows, n, &zeros);
        let bias = self.cell.bias(tape, vars);
        observe(0, tape.value(h));
        for t in 0..steps {
            let g = self.cell.pre_activation(tape, vars, step(t), h, bias);
            let gi = tape.slice_cols(g, 0, n);
            let gf = tape.slice_cols(g, n, n);
            let gg = tape.slice_cols(g, 2 * n, n);
            let go = tape.slice_cols(g, 3 * n, n);
            let i = tape.sigmoid(gi);
            let f = tape.sigmoid(gf);
            let gt = tape.tanh(gg);
            let o = tape.sigmoid(go);
            let fc = tape.mul(f, c);
            let ig = tape.mul(i, gt);
            c = tape.add(fc, ig);
            let tc = tape.tanh(c);
            h = tape.mul(o, tc);
            observe(t + 1, tape.value(h));
        }
        self.fc.forward(tape, vars, h)
    }
}
