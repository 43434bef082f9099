//! The ORGaNICs RNN classifier trained through organics-grad's BPTT engine: [`RnnEngine`]
//! keeps an [`organics_grad::OrganicsRnn<f32>`] and an [`organics_grad::Bptt<f32>`] alive across
//! steps and runs every training step and evaluation of the one-layer ORGaNICs RNN
//! (sequential, permuted and row-wise views) on them.
//!
//! A step computes, for the batch `B` and the model's parameters `θ` (this crate's
//! [`ParamSet`], the source of truth),
//!
//! $$ L(\theta) = \frac{1}{|B|}\sum_{b \in B} \mathrm{CE}\big(W_o\, y_T^{(b)} + c_o,\ \ell_b\big),
//!    \qquad \nabla_\theta L, $$
//!
//! by BPTT through the fused Euler cell ([`organics_grad::bptt`]), after one spectral-norm power
//! iteration on `W_r` (training mode). Per step the engine copies `θ` and the buffers into
//! organics-grad's model (about `6n² + 3nm` floats, ~100 k at n = 128), runs
//! [`organics_grad::Bptt::loss_and_grad`], copies the refined spectral-norm vectors back and
//! maps the gradient to this crate's trainable layout; the engine's buffers are reused, so
//! nothing of size `T` is allocated per step.
//!
//! The batch is cut into `chunks` contiguous row blocks ([`Chunks::Fixed`]), one rayon task
//! each, and the chunk gradients are summed once in chunk order, so a run is bitwise
//! reproducible for a fixed chunk count (the trainer uses its thread count).

use organics_data::Batch;
use organics_grad::bptt::{BatchStats, Bptt, BpttConfig, Checkpointing, Chunks};
use organics_grad::spectral_norm::PowerIteration;
use organics_grad::{OrganicsRnn as GradRnn, SequenceBatch};

use super::organics_rnn::OrganicsRnn;
use crate::error::TrainError;
use crate::params::ParamSet;

/// organics-grad's model and BPTT engine for one [`OrganicsRnn`], with reusable buffers.
#[derive(Debug)]
pub struct RnnEngine {
    model: GradRnn<f32>,
    bptt: Bptt<f32>,
    /// Gradients in organics-grad's layout.
    grads: organics_grad::ParamSet<f32>,
    /// For each of organics-grad's raw parameters (in its order), the position of the same
    /// tensor in this crate's trainable layout.
    slots: Vec<(organics_grad::ParamId, usize)>,
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
    /// The engine for `rnn` with the current values of `params`, cutting batches into
    /// `chunks` row blocks.
    ///
    /// # Errors
    /// As [`OrganicsRnn::to_grad`]; [`TrainError::InvalidConfig`] for `chunks = 0`.
    ///
    /// # Panics
    /// If organics-grad's trainable tensors and this crate's do not correspond one to one
    /// with equal shapes (a bug in the mapping of [`OrganicsRnn::grad_pairs`]).
    pub fn new(rnn: &OrganicsRnn, params: &ParamSet, chunks: usize) -> Result<Self, TrainError> {
        if chunks == 0 {
            return Err(TrainError::InvalidConfig {
                field: "threads",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        let model = rnn.to_grad(params)?;
        let trainable: Vec<_> = params.trainable_ids().collect();
        let mut slots = Vec::new();
        for (here, there) in rnn.grad_pairs(model.ids()) {
            let k = trainable
                .iter()
                .position(|&id| id == here)
                .unwrap_or_else(|| panic!("{} is not trainable", params.get(here).name));
            let (a, b) = (params.get(here), model.params.get(there));
            assert_eq!(
                (a.rows, a.cols),
                (b.rows, b.cols),
                "{} and {} differ in shape",
                a.name,
                b.name
            );
            slots.push((there, k));
        }
        assert_eq!(
            slots.len(),
            trainable.len(),
            "every trainable tensor maps to one of organics-grad's parameters"
        );
        let bptt = Bptt::new(BpttConfig {
            checkpointing: Checkpointing::None,
            chunks: Chunks::Fixed(chunks),
            ..BpttConfig::default()
        })?;
        Ok(Self {
            grads: model.params.zeros_like(),
            model,
            bptt,
            slots,
        })
    }

    /// organics-grad's model as of the last step or evaluation.
    pub fn model(&self) -> &GradRnn<f32> {
        &self.model
    }

    /// One training forward and backward pass on `batch` (time-major, see [`sequence`]) with
    /// class `labels`: one power iteration on `W_r` (written back to
    /// `params`), then `∂L/∂θ` into `grads` (overwritten; layout of
    /// [`ParamSet::trainable`]).
    ///
    /// # Errors
    /// [`TrainError::Grad`] for a batch that does not fit the model, a `grads` layout
    /// mismatch, or a non-finite loss ([`organics_grad::GradError::NonFinite`]).
    pub fn loss_and_grad(
        &mut self,
        rnn: &OrganicsRnn,
        params: &mut ParamSet,
        batch: &SequenceBatch<'_, f32>,
        labels: &[usize],
        grads: &mut organics_grad::ParamSet<f32>,
    ) -> Result<BatchStats, TrainError> {
        params.trainable().check_same_layout(grads)?;
        rnn.copy_to_grad(params, &mut self.model)?;
        let stats = self.bptt.loss_and_grad(
            &mut self.model,
            batch,
            labels,
            PowerIteration::Update,
            &mut self.grads,
        )?;
        rnn.copy_spectral_from_grad(&self.model, params);
        let dst = grads.tensors_mut();
        for &(there, k) in &self.slots {
            dst[k].data.copy_from_slice(self.grads.data(there));
        }
        Ok(stats)
    }

    /// Loss and accuracy of a batch (forward only, spectral-norm vectors as they are).
    ///
    /// # Errors
    /// [`TrainError::Grad`] for a batch that does not fit the model.
    pub fn evaluate(
        &mut self,
        rnn: &OrganicsRnn,
        params: &ParamSet,
        batch: &SequenceBatch<'_, f32>,
        labels: &[usize],
    ) -> Result<BatchStats, TrainError> {
        rnn.copy_to_grad(params, &mut self.model)?;
        Ok(self.bptt.evaluate(&self.model, batch, labels)?)
    }
}
