//! The fixed-point ORGaNICs layer of the static-MNIST models (docs/model.md#static-fixed-point-layer): the layer's output is
//! the firing rate of the circuit's steady state for the input `x ∈ ℝ^m`,
//!
//! $$ z = \frac{W_{zx} x}{\lVert W_{zx} x\rVert},\quad B_0 = \mathrm{sigmoid}(b_0),\quad
//!    B_1 = \mathrm{sigmoid}(W_{bx} x),\quad W = e^{\log W},\quad c = B_1 \odot z, $$
//!
//! - `W_r = I` (closed form, docs/model.md#closed-form-steady-state): `a = (σB_0)² + W c² + ε`, `y = c / √a`;
//! - learned `W_r` with `‖W_r‖₂ = 1` (spectral norm): start from `a = (σB_0)² + W (W_r c)² + ε`,
//!   `y = W_r c / √a`, then `K` times (docs/model.md#iterative-algorithm)
//!   `y ← (I − W_r + diag(d(a)) W_r)⁻¹ c`, `a ← (σB_0)² + W (y² ⊙ a) + ε`,
//!   with `d(a) = √a` (the true fixed point) or `d(a) = a` (the reference `ff.py`, docs/model.md#legacy-iteration);
//!
//! and the output is `r = ⌊y⌋²`. `σ = 1` is fixed and `ε = 10⁻¹⁰` (the reference's value) keeps
//! `√a` away from zero. Gradients flow through the unrolled iteration and the solves.
//! Initialisation: `W_zx`, `W_bx` kaiming-uniform, `log W ~ U(−1, 0)` with zero diagonal,
//! `b_0 = 0` (so `B_0 = ½`), `W_r = I`.

use organics_grad::spectral_norm::SpectralNorm;
use organics_grad::sweeps::SweepSettings;
use organics_grad::{Tape, Var};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::config::{FixedPointSolver, FixedPointSystem, StaticRecurrence};
use crate::error::TrainError;
use crate::params::{ParamId, Role, StateDict, identity, kaiming_uniform};

/// `ε` added to `a` before the square root (the reference code's value).
pub const A_EPS: f32 = 1e-10;

/// `ε_z` of the row normalisation `z = W_zx x / max(‖W_zx x‖, ε_z)`.
pub const Z_NORM_EPS: f32 = 1e-12;

/// Semi-saturation constant σ of the static layers (fixed, docs/model.md#static-fixed-point-layer).
pub const SIGMA: f32 = 1.0;

/// The spectral-norm state of a learned `W_r`: raw weight and the `u`, `v` buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnHandles {
    /// Raw parameter (`…Wr.parametrizations.weight.original`).
    pub weight: ParamId,
    /// Left singular-vector estimate.
    pub u: ParamId,
    /// Right singular-vector estimate.
    pub v: ParamId,
}

impl SnHandles {
    /// Registers a spectrally normalised `n x n` weight initialised to `init`, as PyTorch names
    /// it under `prefix` (`{prefix}.parametrizations.weight.original`, `….0._u`, `….0._v`).
    pub fn new(
        params: &mut StateDict,
        prefix: &str,
        n: usize,
        init: Vec<f32>,
        seed: u64,
    ) -> SnHandles {
        let sn = SpectralNorm::new(&init, n, n, seed);
        Self::register(params, prefix, n, init, sn)
    }

    /// Registers an `n x n` weight `weight` with its spectral-norm state `sn` under `prefix`
    /// (names as [`Self::new`]).
    pub fn register(
        params: &mut StateDict,
        prefix: &str,
        n: usize,
        weight: Vec<f32>,
        sn: SpectralNorm<f32>,
    ) -> SnHandles {
        let weight = params.add(
            &format!("{prefix}.parametrizations.weight.original"),
            n,
            n,
            weight,
            Role::Trainable,
        );
        let u = params.add_vector(
            &format!("{prefix}.parametrizations.weight.0._u"),
            sn.u,
            Role::Buffer,
        );
        let v = params.add_vector(
            &format!("{prefix}.parametrizations.weight.0._v"),
            sn.v,
            Role::Buffer,
        );
        SnHandles { weight, u, v }
    }

    /// The current estimate as a [`SpectralNorm`].
    pub fn state(&self, params: &StateDict) -> SpectralNorm<f32> {
        let w = params.get(self.weight);
        SpectralNorm {
            rows: w.rows,
            cols: w.cols,
            u: params.get(self.u).data.clone(),
            v: params.get(self.v).data.clone(),
        }
    }

    /// One power iteration (training mode, before a step's forward passes).
    pub fn power_iteration(&self, params: &mut StateDict) {
        let mut sn = self.state(params);
        sn.power_iteration(&params.get(self.weight).data);
        params.data_mut(self.u).copy_from_slice(&sn.u);
        params.data_mut(self.v).copy_from_slice(&sn.v);
    }

    /// `W / σ(W)` on the tape.
    pub fn forward(&self, tape: &mut Tape<f32>, vars: &[Var], params: &StateDict) -> Var {
        let sn = self.state(params);
        tape.spectral_norm(vars[self.weight.0], &sn)
    }
}

/// Handles and sizes of one fixed-point layer.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedPointLayer {
    /// Input width `m`.
    pub inputs: usize,
    /// Units `n`.
    pub units: usize,
    /// `W_zx`, `n x m`.
    pub w_zx: ParamId,
    /// `W_bx`, `n x m`.
    pub w_bx: ParamId,
    /// `log W`, `n x n`.
    pub log_w: ParamId,
    /// `b_0` (pre-sigmoid), length `n`.
    pub b0: ParamId,
    /// Learned `W_r` (None for `W_r = I`).
    pub w_r: Option<SnHandles>,
    /// Linear system of the iteration.
    pub system: FixedPointSystem,
    /// How the iteration solves it.
    pub solver: FixedPointSolver,
    /// Iterations of the iteration.
    pub iterations: usize,
}

/// Values of one layer's forward pass.
#[derive(Debug, Clone, Copy)]
pub struct LayerOutput {
    /// Rates `⌊y⌋²`, `batch x n`.
    pub rates: Var,
    /// Steady-state `y`.
    pub y: Var,
    /// Steady-state `a`.
    pub a: Var,
    /// Normalised drive `z`.
    pub z: Var,
    /// Input gain `B_1`.
    pub b1: Var,
    /// `B_0`, `1 x n`.
    pub b0: Var,
    /// Effective `W_r` (None for the identity).
    pub w_r: Option<Var>,
    /// `W = exp(log W)`.
    pub w: Var,
}

impl FixedPointLayer {
    /// Registers a layer `prefix` (`org1`, `org2`) mapping `inputs` to `units`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        params: &mut StateDict,
        rng: &mut ChaCha8Rng,
        prefix: &str,
        inputs: usize,
        units: usize,
        recurrence: StaticRecurrence,
        system: FixedPointSystem,
        solver: FixedPointSolver,
        iterations: usize,
    ) -> FixedPointLayer {
        let w_zx = params.add(
            &format!("{prefix}.Wzx"),
            units,
            inputs,
            kaiming_uniform(rng, units, inputs),
            Role::Trainable,
        );
        let w_bx = params.add(
            &format!("{prefix}.Wbx"),
            units,
            inputs,
            kaiming_uniform(rng, units, inputs),
            Role::Trainable,
        );
        let mut log_w: Vec<f32> = (0..units * units).map(|_| -rng.random::<f32>()).collect();
        for i in 0..units {
            log_w[i * units + i] = 0.0;
        }
        let log_w = params.add(
            &format!("{prefix}.log_Way"),
            units,
            units,
            log_w,
            Role::Trainable,
        );
        let b0 = params.add_vector(&format!("{prefix}.b0"), vec![0.0; units], Role::Trainable);
        let w_r = match recurrence {
            StaticRecurrence::Identity => None,
            StaticRecurrence::SpectralNorm => {
                let seed = rng.random::<u64>();
                Some(SnHandles::new(
                    params,
                    &format!("{prefix}.Wr"),
                    units,
                    identity(units),
                    seed,
                ))
            }
        };
        FixedPointLayer {
            inputs,
            units,
            w_zx,
            w_bx,
            log_w,
            b0,
            w_r,
            system,
            solver,
            iterations,
        }
    }

    /// The steady-state rates for a `batch x m` input.
    pub fn forward(
        &self,
        tape: &mut Tape<f32>,
        vars: &[Var],
        params: &StateDict,
        x: Var,
    ) -> Result<LayerOutput, TrainError> {
        let z = tape.linear(x, vars[self.w_zx.0]);
        let z = tape.row_l2_normalize(z, Z_NORM_EPS);
        let b0 = tape.sigmoid(vars[self.b0.0]);
        let g = tape.linear(x, vars[self.w_bx.0]);
        let b1 = tape.sigmoid(g);
        let c = tape.mul(b1, z);
        let w = tape.exp(vars[self.log_w.0]);
        let sb0 = tape.scale(b0, SIGMA);
        let s0 = tape.square(sb0);
        let (y, a, w_r) = match &self.w_r {
            None => {
                let c2 = tape.square(c);
                let wc = tape.linear(c2, w);
                let a = tape.add(s0, wc);
                let a = tape.add_scalar(a, A_EPS);
                let sa = tape.sqrt(a);
                (tape.div(c, sa), a, None)
            }
            Some(sn) => {
                let wr = sn.forward(tape, vars, params);
                let rc = tape.linear(c, wr);
                let rc2 = tape.square(rc);
                let wrc = tape.linear(rc2, w);
                let a = tape.add(s0, wrc);
                let mut a = tape.add_scalar(a, A_EPS);
                let sa = tape.sqrt(a);
                let mut y = tape.div(rc, sa);
                for _ in 0..self.iterations {
                    let d = match self.system {
                        FixedPointSystem::SqrtA => tape.sqrt(a),
                        FixedPointSystem::LegacyDiagA => a,
                    };
                    y = match self.solver {
                        FixedPointSolver::Lu => tape.diag_gain_solve(d, wr, c)?,
                        // Warm start from the previous iterate.
                        FixedPointSolver::Sweeps => {
                            let settings = SweepSettings::for_scalar::<f32>(self.units);
                            tape.diag_gain_sweeps(d, wr, c, y, settings)?.0
                        }
                    };
                    let y2 = tape.square(y);
                    let ya = tape.mul(y2, a);
                    let wya = tape.linear(ya, w);
                    let a_new = tape.add(s0, wya);
                    a = tape.add_scalar(a_new, A_EPS);
                }
                (y, a, Some(wr))
            }
        };
        let ry = tape.relu(y);
        let rates = tape.square(ry);
        Ok(LayerOutput {
            rates,
            y,
            a,
            z,
            b1,
            b0,
            w_r,
            w,
        })
    }
}
