//! # organics-grad
//!
//! Reverse-mode gradients on batched row-major matrices, and backpropagation through time
//! (BPTT) through the Euler-discretised ORGaNICs circuit of Rawat, Heeger & Martiniani
//! (NeurIPS 2024), fast enough to train the paper's models on a CPU.
//!
//! | module | object |
//! |---|---|
//! | [`scalar`] | the element type [`Scalar`] (`f32` for training, `f64` for gradient checks) |
//! | [`linalg`] | row-major views and faer GEMM |
//! | [`tape`] | the reverse-mode [`Tape`] and its primitive operations |
//! | [`loss`] | softmax cross-entropy, mean-squared error |
//! | [`solve`] | batched per-sample LU solves |
//! | [`spectral_norm`] | PyTorch-style spectral-norm parametrisation |
//! | [`cell`] | the fused ORGaNICs Euler step and its hand-derived VJP |
//! | [`composed`] | the same step from primitive tape operations (test reference) |
//! | [`params`] | named parameter tensors ([`ParamSet`]) |
//! | [`rnn`] | the ORGaNICs RNN classifier (sMNIST), its initialisation and tape recording |
//! | [`bptt`] | BPTT with checkpointing and batch-parallel chunks ([`Bptt`]) |
//! | [`optim`] | Adam / AdamW / SGD, StepLR, optional gradient clipping |
//! | [`fixed_point`] | the static-MNIST fixed-point ORGaNICs layer (closed form / iterative) |
//! | [`baselines`] | MLP, LSTM and tanh-RNN baselines from tape primitives |

pub mod baselines;
pub mod bptt;
pub mod cell;
pub mod composed;
pub mod error;
pub mod fixed_point;
pub mod linalg;
pub mod loss;
pub mod optim;
pub mod params;
pub mod rnn;
pub mod scalar;
pub mod solve;
pub mod spectral_norm;
pub mod tape;

pub use bptt::{BatchStats, Bptt, BpttConfig, Checkpointing, Chunks};
pub use error::GradError;
pub use params::{ParamId, ParamSet, Tensor};
pub use rnn::{OrganicsRnn, RnnConfig, SequenceBatch};
pub use scalar::Scalar;
pub use tape::{Tape, Var};
