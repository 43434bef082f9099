//! The networks of Table 1 (static MNIST) and Table 2 (sequential MNIST) behind one type,
//! [`Network`]: its named tensors ([`StateDict`]) and the architecture that reads them.
//!
//! Loss of a batch `B` (docs/model.md#gated-rnn-cell, #static-mnist-training): mean softmax cross-entropy of the logits, plus, for the
//! static models, the autoencoder's reconstruction error `mean((x − x̂)²)`. A batch may be cut
//! into row chunks evaluated on separate tapes; chunk `k` of `r_k` rows contributes its own mean
//! loss times `r_k / B`, so the chunk losses and gradients sum to those of the whole batch.
//!
//! The one-layer ORGaNICs RNN ([`Arch::Organics`]) is trained and evaluated by organics-grad's
//! BPTT engine instead ([`bptt`], [`Network::rnn_engine`]), and the LSTM and tanh RNN by its
//! recurrent BPTT engine ([`Network::baseline_engine`]); their tape recordings
//! ([`Network::sequence_forward`]) serve the observers and the gradient tests.

pub mod autoencoder;
pub mod bptt;
pub mod fixed_point;
pub mod fused;
pub mod linear;
pub mod lstm;
pub mod organics_rnn;
pub mod recurrent;
pub mod tanh_rnn;

use organics_grad::tape::Activation;
use organics_grad::{RecurrentCell, RecurrentSpec, Tape, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{ModelKind, StaticPath, TrainConfig};
use crate::error::TrainError;
use crate::params::StateDict;
use autoencoder::Autoencoder;
use fixed_point::{FixedPointLayer, LayerOutput};
use linear::Linear;
use lstm::Lstm;
use organics_rnn::OrganicsRnn;
use tanh_rnn::TanhRnn;

/// Number of classes of every readout.
pub const CLASSES: usize = 10;

/// The hidden part of a static-MNIST network.
#[derive(Debug, Clone, PartialEq)]
pub enum StaticBody {
    /// One or two fixed-point ORGaNICs layers.
    Organics(Vec<FixedPointLayer>),
    /// A ReLU hidden layer.
    Mlp(Linear),
}

/// Autoencoder, hidden layers and readout of a static-MNIST network.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticNet {
    /// The jointly trained autoencoder.
    pub autoencoder: Autoencoder,
    /// Hidden layers.
    pub body: StaticBody,
    /// Readout.
    pub fc: Linear,
}

/// The architecture of a [`Network`].
#[derive(Debug, Clone, PartialEq)]
pub enum Arch {
    /// Static MNIST.
    Static(StaticNet),
    /// The ORGaNICs RNN.
    Organics(OrganicsRnn),
    /// The LSTM baseline.
    Lstm(Lstm),
    /// The tanh-RNN baseline.
    TanhRnn(TanhRnn),
}

/// A model: tensors plus architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Every tensor, in registration order.
    pub params: StateDict,
    /// How the tensors are used.
    pub arch: Arch,
    /// Time steps of the input.
    pub steps: usize,
    /// Values per step.
    pub input_dim: usize,
}

/// Checks an engine's chunk count (the trainer's thread count).
///
/// # Errors
/// [`TrainError::InvalidConfig`] for 0.
fn check_chunks(chunks: usize) -> Result<(), TrainError> {
    if chunks == 0 {
        return Err(TrainError::InvalidConfig {
            field: "threads",
            value: "0".into(),
            reason: "must be at least 1",
        });
    }
    Ok(())
}

/// Rows `start .. start + rows` of a time-major `[T][batch][D]` batch buffer.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    /// The whole batch buffer.
    pub inputs: &'a [f32],
    /// Rows of the whole batch.
    pub batch: usize,
    /// First row of the chunk.
    pub start: usize,
    /// Rows of the chunk.
    pub rows: usize,
    /// Time steps `T`.
    pub steps: usize,
    /// Values per step `D`.
    pub dim: usize,
}

impl<'a> Chunk<'a> {
    /// The chunk's `rows x D` input of step `t`.
    pub fn step(&self, t: usize) -> &'a [f32] {
        let lo = (t * self.batch + self.start) * self.dim;
        &self.inputs[lo..lo + self.rows * self.dim]
    }
}

/// The tape values of one forward pass.
#[derive(Debug, Clone, Copy)]
pub struct Forward {
    /// `rows x 10` logits.
    pub logits: Var,
    /// The chunk's loss (mean over its rows), not yet weighted.
    pub loss: Var,
}

/// The tape values of a static network's forward pass.
#[derive(Debug, Clone)]
pub struct StaticForward {
    /// `rows x 10` logits.
    pub logits: Var,
    /// Reconstruction loss `mean((x − x̂)²)`.
    pub recon: Var,
    /// Each ORGaNICs layer's input and values.
    pub layers: Vec<(Var, LayerOutput)>,
}

impl Network {
    /// Builds and initialises the model of `cfg` for inputs of `steps x input_dim`, seeded by
    /// `cfg.seed`.
    ///
    /// # Panics
    /// For zero sizes, which [`TrainConfig::validate`] and the data views exclude.
    pub fn new(cfg: &TrainConfig, steps: usize, input_dim: usize) -> Network {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut params = StateDict::default();
        let arch = if cfg.task.is_sequential() {
            match cfg.model {
                ModelKind::Lstm => {
                    Arch::Lstm(Lstm::new(&mut params, &mut rng, input_dim, cfg.hidden))
                }
                ModelKind::Rnn => {
                    Arch::TanhRnn(TanhRnn::new(&mut params, &mut rng, input_dim, cfg.hidden))
                }
                _ => Arch::Organics(
                    OrganicsRnn::new(
                        &mut params,
                        cfg.seed,
                        input_dim,
                        cfg.hidden,
                        cfg.cell,
                        cfg.tau,
                    )
                    .expect("sizes are validated by TrainConfig::validate and the data view"),
                ),
            }
        } else {
            let features = steps * input_dim;
            let autoencoder = Autoencoder::new(&mut params, &mut rng, features, cfg.code_dim);
            let (body, last) = match cfg.model {
                ModelKind::Mlp => (
                    StaticBody::Mlp(Linear::new(
                        &mut params,
                        &mut rng,
                        "hidden",
                        cfg.code_dim,
                        cfg.hidden,
                    )),
                    cfg.hidden,
                ),
                ModelKind::Organics2Layer => {
                    let l1 = FixedPointLayer::new(
                        &mut params,
                        &mut rng,
                        "org1",
                        cfg.code_dim,
                        cfg.hidden,
                        cfg.static_recurrence,
                        cfg.fixed_point_system,
                        cfg.fixed_point_solver,
                        cfg.fixed_point_iterations,
                    );
                    let l2 = FixedPointLayer::new(
                        &mut params,
                        &mut rng,
                        "org2",
                        cfg.hidden,
                        cfg.hidden2,
                        cfg.static_recurrence,
                        cfg.fixed_point_system,
                        cfg.fixed_point_solver,
                        cfg.fixed_point_iterations,
                    );
                    (StaticBody::Organics(vec![l1, l2]), cfg.hidden2)
                }
                _ => {
                    let l1 = FixedPointLayer::new(
                        &mut params,
                        &mut rng,
                        "org1",
                        cfg.code_dim,
                        cfg.hidden,
                        cfg.static_recurrence,
                        cfg.fixed_point_system,
                        cfg.fixed_point_solver,
                        cfg.fixed_point_iterations,
                    );
                    (StaticBody::Organics(vec![l1]), cfg.hidden)
                }
            };
            let fc = Linear::new(&mut params, &mut rng, "fc", last, CLASSES);
            Arch::Static(StaticNet {
                autoencoder,
                body,
                fc,
            })
        };
        Network {
            params,
            arch,
            steps,
            input_dim,
        }
    }

    /// The BPTT engine of the one-layer ORGaNICs RNN (cutting batches into `chunks` row
    /// blocks, `weight_grad_block` steps per weight-gradient GEMM), or `None` for the models
    /// trained on a tape.
    ///
    /// # Errors
    /// As [`bptt::RnnEngine::new`].
    pub fn rnn_engine(
        &self,
        chunks: usize,
        weight_grad_block: usize,
    ) -> Result<Option<bptt::RnnEngine>, TrainError> {
        match &self.arch {
            Arch::Organics(rnn) => Ok(Some(bptt::RnnEngine::new(
                rnn,
                &self.params,
                chunks,
                weight_grad_block,
            )?)),
            _ => Ok(None),
        }
    }

    /// The BPTT engine of the LSTM or tanh-RNN baseline (cutting batches into `chunks` row
    /// blocks, `weight_grad_block` steps per weight-gradient GEMM), or `None` for the other
    /// models.
    ///
    /// # Errors
    /// As [`bptt::BaselineEngine::new`].
    pub fn baseline_engine(
        &self,
        chunks: usize,
        weight_grad_block: usize,
    ) -> Result<Option<bptt::BaselineEngine>, TrainError> {
        let (cell, w) = match &self.arch {
            Arch::Lstm(m) => (RecurrentCell::Lstm, &m.cell),
            Arch::TanhRnn(m) => (RecurrentCell::Tanh, &m.cell),
            _ => return Ok(None),
        };
        let spec = RecurrentSpec {
            cell,
            hidden: w.units,
            input: w.inputs,
            classes: CLASSES,
        };
        Ok(Some(bptt::BaselineEngine::new(
            spec,
            &self.params,
            chunks,
            weight_grad_block,
        )?))
    }

    /// organics-grad's fused engine of a static model it covers (one ORGaNICs layer with
    /// `W_r = I`, or the MLP), cutting batches into `chunks` row blocks, when `path` asks for
    /// it; `None` for the other models and for [`StaticPath::Tape`].
    ///
    /// # Errors
    /// As [`fused::FusedStatic::new`].
    pub fn fused_static(
        &self,
        path: StaticPath,
        chunks: usize,
    ) -> Result<Option<fused::FusedStatic>, TrainError> {
        let (Arch::Static(net), StaticPath::Fused) = (&self.arch, path) else {
            return Ok(None);
        };
        fused::FusedStatic::spec(net, &self.params, self.steps * self.input_dim)
            .map(|spec| fused::FusedStatic::new(spec, &self.params, chunks))
            .transpose()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.params.trainable_count()
    }

    /// Training-mode bookkeeping before a step: one power iteration of every spectral norm.
    pub fn before_step(&mut self) {
        let sns: Vec<_> = match &self.arch {
            Arch::Static(net) => match &net.body {
                StaticBody::Organics(layers) => layers.iter().filter_map(|l| l.w_r).collect(),
                StaticBody::Mlp(_) => vec![],
            },
            Arch::Organics(rnn) => rnn.spectral_norm().into_iter().collect(),
            Arch::Lstm(_) | Arch::TanhRnn(_) => vec![],
        };
        for sn in sns {
            sn.power_iteration(&mut self.params);
        }
    }

    /// Forward pass of a chunk with its loss; `vars` are the tape handles of
    /// [`StateDict::to_tape`].
    pub fn forward(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        chunk: &Chunk<'_>,
        labels: &[usize],
    ) -> Result<Forward, TrainError> {
        let (logits, recon) = match &self.arch {
            Arch::Static(net) => {
                let f = self.static_forward(net, tape, vars, chunk)?;
                (f.logits, Some(f.recon))
            }
            _ => (self.sequence_forward(tape, vars, chunk, |_, _| {}), None),
        };
        let ce = tape.softmax_cross_entropy(logits, labels)?;
        let loss = match recon {
            Some(r) => tape.add(ce, r),
            None => ce,
        };
        Ok(Forward { logits, loss })
    }

    /// Static forward: logits, reconstruction loss and each ORGaNICs layer's values.
    pub fn static_forward(
        &self,
        net: &StaticNet,
        tape: &mut Tape<f32>,
        vars: &[Var],
        chunk: &Chunk<'_>,
    ) -> Result<StaticForward, TrainError> {
        let features = chunk.steps * chunk.dim;
        let x = tape.constant(chunk.rows, features, chunk.step(0));
        let enc = net.autoencoder.forward(tape, vars, x);
        let recon = tape.mse(enc.reconstruction, x);
        let mut h = enc.code;
        let mut layers = Vec::new();
        match &net.body {
            StaticBody::Organics(ls) => {
                for l in ls {
                    let out = l.forward(tape, vars, &self.params, h)?;
                    layers.push((h, out));
                    h = out.rates;
                }
            }
            StaticBody::Mlp(lin) => {
                h = lin.forward_act(tape, vars, h, Activation::Relu);
            }
        }
        let logits = net.fc.forward(tape, vars, h);
        Ok(StaticForward {
            logits,
            recon,
            layers,
        })
    }

    /// Sequence forward: logits; `observe(t, state)` sees each hidden state (ORGaNICs:
    /// `[y | a | b0 | b1]`; baselines: `h`).
    pub fn sequence_forward(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        chunk: &Chunk<'_>,
        observe: impl FnMut(usize, &[f32]),
    ) -> Var {
        let step = |t: usize| chunk.step(t);
        match &self.arch {
            Arch::Organics(rnn) => rnn.forward(
                tape,
                vars,
                &self.params,
                chunk.rows,
                chunk.steps,
                step,
                observe,
            ),
            Arch::Lstm(m) => m.forward(tape, vars, chunk.rows, chunk.steps, step, observe),
            Arch::TanhRnn(m) => m.forward(tape, vars, chunk.rows, chunk.steps, step, observe),
            Arch::Static(_) => unreachable!("sequence_forward on a static network"),
        }
    }
}
