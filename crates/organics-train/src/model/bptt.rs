//! The ORGaNICs RNN classifier trained through organics-grad's BPTT engine: [`RnnEngine`]
//! keeps an [`organics_grad::OrganicsRnn<f32>`] and an [`organics_grad::Bptt<f32>`] alive across
//! steps and runs every training step and evaluation of the one-layer ORGaNICs RNN
//! (sequential, permuted and row-wise views) on them.
//!
//! A step computes, for the batch `B` and the model's parameters `θ` (this crate's
//! [`StateDict`], the source of truth),
//!
//! $$ L(\theta) = \frac{1}{|B|}\sum_{b \in B} \mathrm{CE}\big(W_o\, y_T^{(b)} + c_o,\ \ell_b\big),
//!    \qquad \nabla_\theta L, $$
//!
//! by BPTT through the fused Euler cell ([`organics_grad::bptt`]), after one spectral-norm power
//! iteration on `W_r` (training mode). The parameters and buffers live in the [`StateDict`];
//! for a step the engine lends them to organics-grad's model ([`OrganicsRnn::exchange`], a swap
//! of storage, no copy), runs [`organics_grad::Bptt::loss_and_grad`] with the caller's gradient
//! buffer (the trainable layout is the model's parameter layout, so no mapping is needed), and
//! takes them back; the engine's buffers are reused, so nothing of size `T` is allocated per
//! step.
//!
//! The batch is cut into `chunks` contiguous row blocks ([`Chunks::Fixed`]), one rayon task
//! each, and the chunk gradients are summed once in chunk order, so a run is bitwise
//! reproducible for a fixed chunk count (the trainer uses its thread count).
//!
//! The LSTM and tanh-RNN baselines run the same way on organics-grad's [`RecurrentBptt`]
//! ([`BaselineEngine`]), their fused cells in place of the ORGaNICs cell.

use organics_data::Batch;
use organics_grad::bptt::{BatchStats, Bptt, BpttConfig, Checkpointing, Chunks};
use organics_grad::spectral_norm::PowerIteration;
use organics_grad::{OrganicsRnn as GradRnn, RecurrentBptt, RecurrentSpec, SequenceBatch};

use super::organics_rnn::OrganicsRnn;
use crate::error::TrainError;
use crate::params::StateDict;

/// organics-grad's model (holding the tensors only while lent) and BPTT engine for one
/// [`OrganicsRnn`], with reusable buffers.
#[derive(Debug)]
pub struct RnnEngine {
    model: GradRnn<f32>,
    bptt: Bptt<f32>,
}

/// The time-major batch buffer of `batch` as organics-grad's [`SequenceBatch`].
pub fn sequence(batch: &Batch) -> SequenceBatch<'_, f32> {
    SequenceBatch {
        data: batch.inputs(),
        steps: batch.steps(),
        batch: batch.size(),
        input: batch.input_dim(),
    }
}

impl RnnEngine {
    /// The engine for `rnn`, cutting batches into `chunks` row blocks and forming the weight
    /// gradients of `weight_grad_block` steps per GEMM ([`BpttConfig::weight_grad_block`]).
    ///
    /// # Errors
    /// [`TrainError::FrozenValue`] if fixed time parameters of `params` are not 1;
    /// [`TrainError::InvalidConfig`] for `chunks = 0`; [`TrainError::Grad`] if organics-grad
    /// rejects the configuration.
    ///
    /// # Panics
    /// If the trainable tensors of `params` do not have the model's layout (a bug in
    /// [`OrganicsRnn::new`]).
    pub fn new(
        rnn: &OrganicsRnn,
        params: &StateDict,
        chunks: usize,
        weight_grad_block: usize,
    ) -> Result<Self, TrainError> {
        super::check_chunks(chunks)?;
        rnn.check_frozen_tau(params)?;
        let model = GradRnn::<f32>::new(rnn.config, 0)?;
        for (a, b) in params
            .trainable()
            .tensors()
            .iter()
            .zip(model.params.tensors())
        {
            assert_eq!(
                (a.rows, a.cols),
                (b.rows, b.cols),
                "{} and {} differ in shape",
                a.name,
                b.name
            );
        }
        assert_eq!(
            params.trainable().len(),
            model.params.len(),
            "the trainable tensors are the model's raw parameters"
        );
        let bptt = Bptt::new(BpttConfig {
            checkpointing: Checkpointing::None,
            chunks: Chunks::Fixed(chunks),
            weight_grad_block,
            ..BpttConfig::default()
        })?;
        Ok(Self { model, bptt })
    }

    /// One training forward and backward pass on `batch` (time-major, see [`sequence`]) with
    /// class `labels`: one power iteration on `W_r` (its vectors updated in `params`), then
    /// `∂L/∂θ` into `grads` (overwritten; layout of [`StateDict::trainable`]).
    ///
    /// # Errors
    /// [`TrainError::FrozenValue`] as [`Self::new`]; [`TrainError::Grad`] for a batch that
    /// does not fit the model, a `grads` layout mismatch, or a non-finite loss
    /// ([`organics_grad::GradError::NonFinite`]).
    pub fn loss_and_grad(
        &mut self,
        rnn: &OrganicsRnn,
        params: &mut StateDict,
        batch: &SequenceBatch<'_, f32>,
        labels: &[usize],
        grads: &mut organics_grad::ParamSet<f32>,
    ) -> Result<BatchStats, TrainError> {
        rnn.check_frozen_tau(params)?;
        rnn.exchange(&mut self.model, params);
        let stats = self.bptt.loss_and_grad(
            &mut self.model,
            batch,
            labels,
            PowerIteration::Update,
            grads,
        );
        rnn.exchange(&mut self.model, params);
        Ok(stats?)
    }

    /// Loss and accuracy of a batch (forward only, spectral-norm vectors as they are);
    /// `params` is only borrowed mutably to lend its tensors, and is unchanged.
    ///
    /// # Errors
    /// As [`Self::loss_and_grad`].
    pub fn evaluate(
        &mut self,
        rnn: &OrganicsRnn,
        params: &mut StateDict,
        batch: &SequenceBatch<'_, f32>,
        labels: &[usize],
    ) -> Result<BatchStats, TrainError> {
        rnn.check_frozen_tau(params)?;
        rnn.exchange(&mut self.model, params);
        let stats = self.bptt.evaluate(&self.model, batch, labels);
        rnn.exchange(&mut self.model, params);
        Ok(stats?)
    }
}

/// organics-grad's [`RecurrentBptt`] engine for the LSTM or tanh-RNN baseline: the six
/// trainable tensors of the [`StateDict`] (`{lstm,rnn}.weight_ih_l0`, `weight_hh_l0`,
/// `bias_ih_l0`, `bias_hh_l0`, `fc.weight`, `fc.bias`, in that order) are the engine's
/// parameter layout as they are, so a step reads them and writes the gradient without copies.
/// Chunks of rows as for [`RnnEngine`] (bitwise reproducible for a fixed chunk count).
#[derive(Debug)]
pub struct BaselineEngine {
    spec: RecurrentSpec,
    bptt: RecurrentBptt<f32>,
}

impl BaselineEngine {
    /// The engine for a baseline of `spec` whose tensors are in `params`, cutting batches into
    /// `chunks` row blocks and forming the weight gradients of `weight_grad_block` steps per
    /// GEMM.
    ///
    /// # Errors
    /// [`TrainError::InvalidConfig`] for `chunks = 0`; [`TrainError::Grad`] if the trainable
    /// tensors do not have the layout of `spec` (a checkpoint of another model).
    pub fn new(
        spec: RecurrentSpec,
        params: &StateDict,
        chunks: usize,
        weight_grad_block: usize,
    ) -> Result<Self, TrainError> {
        super::check_chunks(chunks)?;
        spec.check_params(params.trainable())?;
        let bptt = RecurrentBptt::new(BpttConfig {
            checkpointing: Checkpointing::None,
            chunks: Chunks::Fixed(chunks),
            weight_grad_block,
            ..BpttConfig::default()
        })?;
        Ok(Self { spec, bptt })
    }

    /// One training forward and backward pass: `∂L/∂θ` into `grads` (overwritten; layout of
    /// [`StateDict::trainable`]).
    ///
    /// # Errors
    /// [`TrainError::Grad`] for a batch that does not fit the model, a `grads` layout
    /// mismatch, or a non-finite loss ([`organics_grad::GradError::NonFinite`]).
    pub fn loss_and_grad(
        &mut self,
        params: &StateDict,
        batch: &SequenceBatch<'_, f32>,
        labels: &[usize],
        grads: &mut organics_grad::ParamSet<f32>,
    ) -> Result<BatchStats, TrainError> {
        Ok(self
            .bptt
            .loss_and_grad(&self.spec, params.trainable(), batch, labels, grads)?)
    }

    /// Loss and accuracy of a batch (forward only).
    ///
    /// # Errors
    /// As [`Self::loss_and_grad`].
    pub fn evaluate(
        &mut self,
        params: &StateDict,
        batch: &SequenceBatch<'_, f32>,
        labels: &[usize],
    ) -> Result<BatchStats, TrainError> {
        Ok(self
            .bptt
            .evaluate(&self.spec, params.trainable(), batch, labels)?)
    }
}
