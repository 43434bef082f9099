//! Baseline models built from tape primitives, with PyTorch's parameter names and default
//! initialisations: a multilayer perceptron, an LSTM and a vanilla tanh RNN.
//!
//! - Linear layer (`nn.Linear`): `y = x Wᵀ + b`, `W, b ~ U(±1/√in)`.
//! - MLP: linear layers with ReLU between them (none after the last).
//! - tanh RNN (`nn.RNN`): `h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)`.
//! - LSTM (`nn.LSTM`, gate order i, f, g, o):
//!
//! $$ [i\,f\,g\,o] = x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh},\quad
//!    c' = \sigma(f) c + \sigma(i) \tanh(g),\quad h' = \sigma(o) \tanh(c'). $$
//!
//! Recurrent weights are `U(±1/√hidden)`; states start at zero. Sequences are time-major
//! (`[T][batch][input]`, as [`crate::rnn::SequenceBatch`]). The whole unrolled sequence is
//! recorded on the tape (memory `O(T · batch · hidden)`).

use crate::params::{ParamId, ParamSet};
use crate::rnn::SequenceBatch;
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

fn uniform<S: Scalar>(rng: &mut ChaCha8Rng, len: usize, bound: f64) -> Vec<S> {
    (0..len)
        .map(|_| S::from_f64(bound * (2.0 * rng.random::<f64>() - 1.0)))
        .collect()
}

/// A linear layer `x Wᵀ + b` (`W`: `out x in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linear {
    /// `prefix.weight`.
    pub weight: ParamId,
    /// `prefix.bias` (`1 x out`).
    pub bias: ParamId,
}

impl Linear {
    /// Registers `prefix.weight` and `prefix.bias` with PyTorch's default initialisation.
    pub fn new<S: Scalar>(
        input: usize,
        output: usize,
        params: &mut ParamSet<S>,
        prefix: &str,
        seed: u64,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (input.max(1) as f64).sqrt();
        let weight = params.push(
            &format!("{prefix}weight"),
            output,
            input,
            uniform(&mut rng, output * input, bound),
        );
        let bias = params.push(
            &format!("{prefix}bias"),
            1,
            output,
            uniform(&mut rng, output, bound),
        );
        Self { weight, bias }
    }

    /// `x Wᵀ + b`.
    pub fn forward<S: Scalar>(&self, tape: &mut Tape<S>, vars: &[Var], x: Var) -> Var {
        let l = tape.linear(x, vars[self.weight.0]);
        tape.add(l, vars[self.bias.0])
    }
}

/// A multilayer perceptron with ReLU hidden activations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mlp {
    /// The layers, `prefix{k}.weight` / `prefix{k}.bias`.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// Layers of sizes `sizes[0] → sizes[1] → … → sizes[last]`.
    pub fn new<S: Scalar>(
        sizes: &[usize],
        params: &mut ParamSet<S>,
        prefix: &str,
        seed: u64,
    ) -> Self {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                Linear::new(
                    w[0],
                    w[1],
                    params,
                    &format!("{prefix}{k}."),
                    seed.wrapping_add(k as u64),
                )
            })
            .collect();
        Self { layers }
    }

    /// The network's output (no activation after the last layer).
    pub fn forward<S: Scalar>(&self, tape: &mut Tape<S>, vars: &[Var], x: Var) -> Var {
        let mut h = x;
        for (k, l) in self.layers.iter().enumerate() {
            h = l.forward(tape, vars, h);
            if k + 1 < self.layers.len() {
                h = tape.relu(h);
            }
        }
        h
    }
}

/// Which recurrence a [`RecurrentBaseline`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecurrentKind {
    /// `nn.RNN(nonlinearity="tanh")`.
    Tanh,
    /// `nn.LSTM`.
    Lstm,
}

/// A one-layer recurrent network (`weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurrentBaseline {
    /// Recurrence.
    pub kind: RecurrentKind,
    /// Hidden size.
    pub hidden: usize,
    /// `W_ih` (`gates·hidden x input`).
    pub w_ih: ParamId,
    /// `W_hh` (`gates·hidden x hidden`).
    pub w_hh: ParamId,
    /// `b_ih`.
    pub b_ih: ParamId,
    /// `b_hh`.
    pub b_hh: ParamId,
}

impl RecurrentBaseline {
    /// Registers the layer's parameters (`prefix` + PyTorch names), `U(±1/√hidden)`.
    pub fn new<S: Scalar>(
        kind: RecurrentKind,
        input: usize,
        hidden: usize,
        params: &mut ParamSet<S>,
        prefix: &str,
        seed: u64,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let g = match kind {
            RecurrentKind::Tanh => 1,
            RecurrentKind::Lstm => 4,
        };
        let bound = 1.0 / (hidden.max(1) as f64).sqrt();
        let w_ih = params.push(
            &format!("{prefix}weight_ih_l0"),
            g * hidden,
            input,
            uniform(&mut rng, g * hidden * input, bound),
        );
        let w_hh = params.push(
            &format!("{prefix}weight_hh_l0"),
            g * hidden,
            hidden,
            uniform(&mut rng, g * hidden * hidden, bound),
        );
        let b_ih = params.push(
            &format!("{prefix}bias_ih_l0"),
            1,
            g * hidden,
            uniform(&mut rng, g * hidden, bound),
        );
        let b_hh = params.push(
            &format!("{prefix}bias_hh_l0"),
            1,
            g * hidden,
            uniform(&mut rng, g * hidden, bound),
        );
        Self {
            kind,
            hidden,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }

    /// Runs the sequence from zero states; returns the last hidden state (`batch x hidden`).
    ///
    /// # Panics
    /// If the batch's input width differs from the layer's.
    #[track_caller]
    pub fn forward<S: Scalar>(
        &self,
        tape: &mut Tape<S>,
        vars: &[Var],
        seq: &SequenceBatch<'_, S>,
    ) -> Var {
        let h_n = self.hidden;
        let zeros = vec![S::ZERO; seq.batch * h_n];
        let mut h = tape.constant(seq.batch, h_n, &zeros);
        let mut c = h;
        for t in 0..seq.steps {
            let x = tape.constant(seq.batch, seq.input, seq.step_rows(t, 0, seq.batch));
            let xi = tape.linear(x, vars[self.w_ih.0]);
            let xi = tape.add(xi, vars[self.b_ih.0]);
            let hh = tape.linear(h, vars[self.w_hh.0]);
            let hh = tape.add(hh, vars[self.b_hh.0]);
            let pre = tape.add(xi, hh);
            match self.kind {
                RecurrentKind::Tanh => h = tape.tanh(pre),
                RecurrentKind::Lstm => {
                    let i = tape.slice_cols(pre, 0, h_n);
                    let f = tape.slice_cols(pre, h_n, h_n);
                    let g = tape.slice_cols(pre, 2 * h_n, h_n);
                    let o = tape.slice_cols(pre, 3 * h_n, h_n);
                    let (i, f, g, o) = (
                        tape.sigmoid(i),
                        tape.sigmoid(f),
                        tape.tanh(g),
                        tape.sigmoid(o),
                    );
                    let fc = tape.mul(f, c);
                    let ig = tape.mul(i, g);
                    c = tape.add(fc, ig);
                    let tc = tape.tanh(c);
                    h = tape.mul(o, tc);
                }
            }
        }
        h
    }
}
