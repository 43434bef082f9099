//! # organics-grad
//!
//! Reverse-mode gradients on batched row-major matrices, and backpropagation through time
//! (BPTT) through the Euler-discretised ORGaNICs circuit of Rawat, Heeger & Martiniani
//! (NeurIPS 2024), fast enough to train the paper's models on a CPU.
//!
//! | module | object |
//! |---|---|
//! | [`scalar`] | the element type [`Scalar`] (`f32` for training, `f64` for gradient checks) |
//! | [`simd`] | run-time choice of the vector instruction set of the element-wise kernels |
//! | [`linalg`] | row-major views and faer GEMM |
//! | [`tape`] | the reverse-mode [`Tape`], its primitive operations and the extension point for fused ones |
//! | [`loss`] | softmax cross-entropy, mean-squared error |
//! | [`solve`] | batched per-sample LU solves |
//! | [`sweeps`] | the same systems by stationary sweeps (one GEMM per sweep), LU as fallback |
//! | [`spectral_norm`] | PyTorch-style spectral-norm parametrisation |
//! | [`cell`] | the fused ORGaNICs Euler step and its hand-derived VJP |
//! | [`cell_op`] | the fused step as a custom tape operation ([`cell_op::CellVars`]) |
//! | [`composed`] | the same step from primitive tape operations (test reference) |
//! | [`params`] | named parameter tensors ([`ParamSet`]) |
//! | [`init`] | the seeded initialisers of every model (PyTorch's defaults, in `f32`) |
//! | [`rnn`] | the ORGaNICs RNN classifier (sMNIST), its initialisation and tape recording |
//! | [`bptt`] | BPTT with checkpointing and batch-parallel chunks ([`Bptt`]) |
//! | [`phases`] | where a BPTT step's time goes: GEMM and element-wise phases ([`phases::PhaseTimes`]) |
//! | [`recurrent_cell`] | the element-wise LSTM and tanh-RNN cells and their hand-derived VJPs |
//! | [`recurrent`] | the LSTM / tanh-RNN baselines and their BPTT engine ([`RecurrentBptt`]) |
//! | [`static_net`] | the static-MNIST networks (one closed-form ORGaNICs layer, or the MLP) and their engine without a tape ([`static_net::StaticEngine`]) |
//! | [`optim`] | Adam / AdamW / SGD, StepLR, optional gradient clipping |
//!
//! **Two ways to differentiate.** General models (the losses here; the fixed-point layers of
//! `organics-train`'s two-layer static model) are recorded on a [`Tape`] and differentiated
//! by [`Tape::backward`]. The one-layer static model with `W_r = I` and the MLP are trained
//! by [`static_net::StaticEngine`], whose tests check it against the same network on a tape.
//! The ORGaNICs RNN is trained by the dedicated [`Bptt`] engine, which runs the fused cell of
//! [`cell`] over the whole sequence per batch chunk without a tape; [`OrganicsRnn::record`]
//! records the same model on a tape, and the tests check that both give the same gradients.
//! The LSTM and tanh-RNN baselines are trained the same way by [`RecurrentBptt`] (cells in
//! [`recurrent_cell`]); `organics-train` keeps their tape recording as the reference its
//! tests compare against.
//!
//! **Numerics.** Kernels are generic over [`Scalar`] (`f32`, `f64`); gradient checks run in
//! `f64` against central finite differences. The one-sided choices at kinks are stated in
//! [`tape`] and [`cell`] (`relu'(0) = 0`; `d√⌊a⌋/da = 0` for `a ≤ 0`). Subnormal numbers are
//! kept out of the kernels by construction (sigmoid floor, flushing, see [`cell`]), so no
//! floating-point-environment changes (and no `unsafe`) are needed. The cell's element-wise
//! loops run on AVX-512 or AVX2 when the processor has it (chosen at run time in [`simd`]), with
//! results bit-identical to the baseline build's.
//!
//! **Layouts.** Batches are row-major `batch x features`; weights `out x in`; sequences
//! time-major `[T][batch][input]` ([`SequenceBatch`]); the RNN state row is
//! `[y | a | b0 | b1]`.
//!
//! # Example: one training step of a small ORGaNICs RNN
//!
//! ```
//! use organics_grad::optim::{AdamConfig, Optimizer};
//! use organics_grad::spectral_norm::PowerIteration;
//! use organics_grad::{Bptt, BpttConfig, OrganicsRnn, RnnConfig, SequenceBatch};
//!
//! let mut model = OrganicsRnn::<f32>::new(RnnConfig::smnist(16), 42)?;
//! let (steps, batch) = (20, 4);
//! let pixels = vec![0.5f32; steps * batch]; // time-major [T][batch][1]
//! let labels = [0, 3, 7, 9];
//! let seq = SequenceBatch { data: &pixels, steps, batch, input: 1 };
//! let mut engine = Bptt::new(BpttConfig::default())?;
//! let mut grads = model.params.zeros_like();
//! let mut adam = Optimizer::adam(AdamConfig::default(), &model.params);
//! let stats = engine.loss_and_grad(&mut model, &seq, &labels, PowerIteration::Update, &mut grads)?;
//! adam.step(&mut model.params, &grads, 0.01)?;
//! assert!(stats.loss > 0.0 && stats.loss.is_finite());
//! # Ok::<(), organics_grad::GradError>(())
//! ```

pub mod bptt;
pub mod cell;
pub mod cell_op;
pub mod composed;
pub mod error;
pub mod init;
pub mod lane_lu;
pub mod linalg;
pub mod loss;
pub mod optim;
pub mod params;
pub mod phases;
pub mod recurrent;
pub mod recurrent_cell;
pub mod rnn;
pub mod scalar;
pub mod simd;
pub mod solve;
pub mod spectral_norm;
pub mod static_net;
pub mod sweeps;
pub mod tape;

pub use bptt::{BatchStats, Bptt, BpttConfig, Checkpointing, Chunks};
pub use error::GradError;
pub use params::{ParamId, ParamSet, Tensor};
pub use recurrent::{RecurrentBptt, RecurrentCell, RecurrentSpec};
pub use rnn::{OrganicsRnn, RnnConfig, SequenceBatch};
pub use scalar::Scalar;
pub use tape::{Tape, Var};
