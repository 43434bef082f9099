//! The LSTM baseline (PyTorch `nn.LSTM`, one layer, gate order `i, f, g, o`):
//!
//! $$ [i\,f\,g\,o] = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh},\quad
//!    c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh g,\quad
//!    h_t = \sigma(o) \odot \tanh c_t, $$
//!
//! from `h_0 = c_0 = 0`, with the readout `logits = W_out h_T + c`. Every weight and bias is
//! drawn `U(±1/√n)` (PyTorch's default). Names: `lstm.weight_ih_l0`, `lstm.weight_hh_l0`,
//! `lstm.bias_ih_l0`, `lstm.bias_hh_l0`, `fc.weight`, `fc.bias`.

use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use super::linear::Linear;
use crate::params::{ParamId, ParamSet, Role, uniform};

/// Handles of the LSTM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lstm {
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

impl Lstm {
    /// Registers the LSTM and its readout.
    pub fn new(params: &mut ParamSet, rng: &mut ChaCha8Rng, inputs: usize, units: usize) -> Lstm {
        let n = units;
        let k = 1.0 / (n as f32).sqrt();
        let w_ih = params.add(
            "lstm.weight_ih_l0",
            4 * n,
            inputs,
            uniform(rng, 4 * n * inputs, k),
            Role::Trainable,
        );
        let w_hh = params.add(
            "lstm.weight_hh_l0",
            4 * n,
            n,
            uniform(rng, 4 * n * n, k),
            Role::Trainable,
        );
        let b_ih = params.add_vector("lstm.bias_ih_l0", uniform(rng, 4 * n, k), Role::Trainable);
        let b_hh = params.add_vector("lstm.bias_hh_l0", uniform(rng, 4 * n, k), Role::Trainable);
        let fc = Linear::new(params, rng, "fc", n, 10);
        Lstm {
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
        let zeros = vec![0.0f32; rows * n];
        let mut h = tape.constant(rows, n, &zeros);
        let mut c = tape.constant(rows, n, &zeros);
        let bias = tape.add(vars[self.b_ih.0], vars[self.b_hh.0]);
        observe(0, tape.value(h));
        for t in 0..steps {
            let x = tape.constant(rows, self.inputs, step(t));
            let gx = tape.linear(x, vars[self.w_ih.0]);
            let gh = tape.linear(h, vars[self.w_hh.0]);
            let g = tape.add(gx, gh);
            let g = tape.add(g, bias);
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
