//! The dimensionality-reduction autoencoder of the static-MNIST models (docs/model.md#static-fixed-point-layer), trained
//! jointly with the classifier:
//!
//! $$ \text{code} = \sigma_{\text{sig}}\big(L_3\,\text{relu}(L_2\,\text{relu}(L_1 x))\big),\qquad
//!    \hat x = \sigma_{\text{sig}}\big(L_6\,\text{relu}(L_5\,\text{relu}(L_4\,\text{code}))\big), $$
//!
//! with widths 784 → 360 → 120 → `code` and back, and the reconstruction loss
//! `mean((x − x̂)²)`. Tensor names match the reference `autoencoder.encoder.{0,2,4}` and
//! `autoencoder.decoder.{0,2,4}`.

use organics_grad::tape::Activation;
use organics_grad::{Tape, Var};
use rand_chacha::ChaCha8Rng;

use super::linear::Linear;
use crate::params::StateDict;

/// Widths of the hidden layers of the encoder (and, reversed, the decoder).
pub const HIDDEN: [usize; 2] = [360, 120];

/// The six affine layers of the autoencoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autoencoder {
    encoder: [Linear; 3],
    decoder: [Linear; 3],
}

/// The code and the reconstruction of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Encoded {
    /// `batch x code` values in (0, 1).
    pub code: Var,
    /// `batch x input` reconstruction in (0, 1).
    pub reconstruction: Var,
}

impl Autoencoder {
    /// Registers the encoder and decoder for `input`-pixel images and a `code`-wide code.
    pub fn new(
        params: &mut StateDict,
        rng: &mut ChaCha8Rng,
        input: usize,
        code: usize,
    ) -> Autoencoder {
        let [h1, h2] = HIDDEN;
        let encoder = [
            Linear::new(params, rng, "autoencoder.encoder.0", input, h1),
            Linear::new(params, rng, "autoencoder.encoder.2", h1, h2),
            Linear::new(params, rng, "autoencoder.encoder.4", h2, code),
        ];
        let decoder = [
            Linear::new(params, rng, "autoencoder.decoder.0", code, h2),
            Linear::new(params, rng, "autoencoder.decoder.2", h2, h1),
            Linear::new(params, rng, "autoencoder.decoder.4", h1, input),
        ];
        Autoencoder { encoder, decoder }
    }

    /// Width of the code (the rows of the encoder's last weight).
    pub fn code_width(&self, params: &StateDict) -> usize {
        params.get(self.encoder[2].weight).rows
    }

    /// Encodes and decodes a `batch x input` value.
    pub fn forward(&self, tape: &mut Tape<f32>, vars: &[Var], x: Var) -> Encoded {
        let code = Self::stack(&self.encoder, tape, vars, x);
        let reconstruction = Self::stack(&self.decoder, tape, vars, code);
        Encoded {
            code,
            reconstruction,
        }
    }

    /// The code alone.
    pub fn encode(&self, tape: &mut Tape<f32>, vars: &[Var], x: Var) -> Var {
        Self::stack(&self.encoder, tape, vars, x)
    }

    fn stack(layers: &[Linear; 3], tape: &mut Tape<f32>, vars: &[Var], x: Var) -> Var {
        let h = layers[0].forward_act(tape, vars, x, Activation::Relu);
        let h = layers[1].forward_act(tape, vars, h, Activation::Relu);
        layers[2].forward_act(tape, vars, h, Activation::Sigmoid)
    }
}
