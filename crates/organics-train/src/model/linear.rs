//! The affine layer `y = x Wᵀ + b` (PyTorch `nn.Linear`), with `W` stored `out x in`.

use organics_grad::tape::Activation;
use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use crate::params::{ParamId, Role, StateDict, kaiming_uniform, uniform};

/// Handles of one affine layer's weight and bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// `out x in` weight.
    pub weight: ParamId,
    /// Length-`out` bias.
    pub bias: ParamId,
}

impl Linear {
    /// Registers `{prefix}.weight` and `{prefix}.bias` with PyTorch's default initialisation.
    pub fn new(
        params: &mut StateDict,
        rng: &mut ChaCha8Rng,
        prefix: &str,
        inputs: usize,
        outputs: usize,
    ) -> Linear {
        let weight = params.add(
            &format!("{prefix}.weight"),
            outputs,
            inputs,
            kaiming_uniform(rng, outputs, inputs),
            Role::Trainable,
        );
        let bias = params.add_vector(
            &format!("{prefix}.bias"),
            uniform(rng, outputs, 1.0 / (inputs as f32).sqrt()),
            Role::Trainable,
        );
        Linear { weight, bias }
    }

    /// `x Wᵀ + b` for a `batch x in` value `x`.
    pub fn forward(&self, tape: &mut Tape<f32>, vars: &[Var], x: Var) -> Var {
        let h = tape.linear(x, vars[self.weight.0]);
        tape.add(h, vars[self.bias.0])
    }

    /// `f(x Wᵀ + b)`: the bias and the activation as one tape node ([`Tape::bias_act`]; the
    /// same values and gradients as [`Self::forward`] followed by the activation).
    pub fn forward_act(&self, tape: &mut Tape<f32>, vars: &[Var], x: Var, f: Activation) -> Var {
        let h = tape.linear(x, vars[self.weight.0]);
        tape.bias_act(h, vars[self.bias.0], f)
    }
}
