//! The static models trained without a tape: [`FusedStatic`] runs the one-layer ORGaNICs
//! model with `W_r = I` and the MLP baseline on organics-grad's fused engine
//! ([`organics_grad::static_net`]), which reads the weights where they lie in the
//! [`StateDict`] and writes the gradient straight into the trainer's buffer.
//!
//! The engine computes the same loss as the tape recording of [`super::Network::forward`]
//! (the tests compare every gradient tensor); the models with a learned `W_r` (the two-layer
//! model) stay on tapes. [`crate::config::StaticPath`] chooses between the two for the models
//! the engine covers.

use organics_data::Batch;
use organics_grad::BatchStats;
use organics_grad::simd::InstructionSet;
use organics_grad::static_net::{StaticBody as EngineBody, StaticEngine, StaticSpec};

use super::autoencoder::HIDDEN;
use super::fixed_point::{A_EPS, SIGMA, Z_NORM_EPS};
use super::{CLASSES, StaticBody, StaticNet};
use crate::error::TrainError;
use crate::params::StateDict;

/// organics-grad's static engine and the sizes of the network it trains.
#[derive(Debug)]
pub struct FusedStatic {
    spec: StaticSpec,
    engine: StaticEngine<f32>,
}

impl FusedStatic {
    /// The engine's sizes of `net` for `features`-pixel images, or `None` for a network it
    /// does not cover (two layers, or a learned `W_r`).
    pub fn spec(net: &StaticNet, params: &StateDict, features: usize) -> Option<StaticSpec> {
        let units = |id: crate::params::ParamId| params.get(id).rows;
        let body = match &net.body {
            StaticBody::Organics(layers) => match layers.as_slice() {
                [layer] if layer.w_r.is_none() => EngineBody::ClosedForm {
                    units: layer.units,
                    sigma: f64::from(SIGMA),
                    eps: f64::from(A_EPS),
                    norm_eps: f64::from(Z_NORM_EPS),
                },
                _ => return None,
            },
            StaticBody::Mlp(hidden) => EngineBody::Relu {
                units: units(hidden.weight),
            },
        };
        Some(StaticSpec {
            input: features,
            hidden: HIDDEN,
            code: net.autoencoder.code_width(params),
            body,
            classes: CLASSES,
        })
    }

    /// The engine for `spec`, cutting batches into `chunks` row blocks; checks that the
    /// trainable tensors of `params` have the engine's layout.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for `chunks = 0`; [`TrainError::Grad`] for a layout
    /// that is not the engine's.
    pub fn new(spec: StaticSpec, params: &StateDict, chunks: usize) -> Result<Self, TrainError> {
        super::check_chunks(chunks)?;
        spec.check_params(params.trainable())?;
        Ok(Self {
            spec,
            engine: StaticEngine::new(chunks, InstructionSet::Detect)?,
        })
    }

    /// One training forward and backward pass on `batch`: `∂L/∂θ` into `grads` (overwritten;
    /// layout of [`StateDict::trainable`]).
    ///
    /// # Errors
    /// [`TrainError::Grad`] for a batch that does not fit the model or a non-finite loss
    /// ([`organics_grad::GradError::NonFinite`]).
    pub fn loss_and_grad(
        &mut self,
        params: &StateDict,
        batch: &Batch,
        labels: &[usize],
        grads: &mut organics_grad::ParamSet<f32>,
    ) -> Result<BatchStats, TrainError> {
        Ok(self.engine.loss_and_grad(
            &self.spec,
            params.trainable(),
            batch.inputs(),
            labels,
            grads,
        )?)
    }

    /// Loss and accuracy of a batch (forward only).
    ///
    /// # Errors
    /// As [`Self::loss_and_grad`], but for a non-finite loss, which is returned.
    pub fn evaluate(
        &mut self,
        params: &StateDict,
        batch: &Batch,
        labels: &[usize],
    ) -> Result<BatchStats, TrainError> {
        Ok(self
            .engine
            .evaluate(&self.spec, params.trainable(), batch.inputs(), labels)?)
    }

    /// The global L2 norm of the gradient the last [`Self::loss_and_grad`] wrote, formed by
    /// the engine as it wrote each part ([`StaticEngine::grad_norm`]).
    pub fn grad_norm(&self) -> f64 {
        self.engine.grad_norm()
    }
}
