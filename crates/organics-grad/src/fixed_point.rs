//! The ORGaNICs fixed-point layer of the static-MNIST model (spec §E.1), built from tape
//! primitives so that gradients flow through the closed form or the unrolled iteration.
//!
//! For an input batch `x` (`batch x m`), with `σ = 1` and `n = 2`:
//!
//! $$ z = \frac{W_{zx} x}{\lVert W_{zx} x\rVert},\quad B_0 = \mathrm{sigmoid}(\beta_0),\quad
//!    B_1 = \mathrm{sigmoid}(W_{bx} x)\ (\text{or } B_0),\quad W = e^{\log W}. $$
//!
//! *`W_r = I` (closed form, spec §B.1):*
//! `a = B0² + W (B1 z)² + ε`, `y = B1 z / √a`.
//!
//! *Learned `W_r` with spectral norm (spec §B.3–B.4):* start from
//! `q = W_r (B1 z)`, `a = B0² + W q² + ε`, `y = q / √a`, then `K` times
//!
//! $$ y \leftarrow \big(I - W_r + \mathrm{diag}(d(a))\, W_r\big)^{-1} (B_1 z),\qquad
//!    a \leftarrow B_0^2 + W (y^2 \odot a) + \varepsilon, $$
//!
//! with `d(a) = √a` (the fixed-point equations of §B.2, default) or `d(a) = a` (the
//! reference code's `ff.py`, [`SystemMatrix::LegacyDiagA`], kept to reproduce its numbers).
//! The solve is one [`Tape::batched_solve`] per iteration. `ε = 10⁻¹⁰` as in the reference.
//! The layer's output is the firing rate `r = ⌊y⌋²`.
//!
//! Parameters (`prefix` + name): `W_zx` (`n x m`), `W_bx` (`n x m`, input gain only),
//! `b0` (`1 x n`, init 0), `log_W` (`n x n`, `U(−1, 0)` off the diagonal, 0 on it),
//! `W_r` (`n x n`, init `I`, spectral variant only; its `u`, `v` are returned separately).

use crate::error::GradError;
use crate::params::{ParamId, ParamSet};
use crate::scalar::Scalar;
use crate::spectral_norm::SpectralNorm;
use crate::tape::{Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// `ε` added to `a` in the reference code (`ff.py`).
pub const A_EPSILON: f64 = 1e-10;

/// `ε` of the row normalisation of `z` (as `F.normalize`).
pub const Z_NORM_EPSILON: f64 = 1e-12;

/// How the recurrent matrix enters the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FixedPointRecurrence {
    /// `W_r = I`: closed-form steady state.
    Identity,
    /// Learned `W_r` with unit spectral norm: iterative algorithm.
    SpectralNorm {
        /// Number of iterations `K` (10 in the reference code).
        iterations: usize,
    },
}

/// The linear system solved for `y` in each iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SystemMatrix {
    /// `I − W_r + diag(√a) W_r` (spec §B.2; correct).
    SqrtA,
    /// `I − W_r + diag(a) W_r` (the reference code's `ff.py`).
    LegacyDiagA,
}

/// Where the input gain `B1` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputGain {
    /// `B1 = sigmoid(W_bx x)` ("attention", the reference default).
    Attention,
    /// `B1 = B0`.
    SameAsB0,
}

/// Configuration of one fixed-point layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedPointConfig {
    /// Input size `m`.
    pub input: usize,
    /// Number of units `n`.
    pub units: usize,
    /// Recurrence.
    pub recurrence: FixedPointRecurrence,
    /// System matrix of the iteration.
    pub system: SystemMatrix,
    /// Input gain.
    pub gain: InputGain,
}

/// Parameter ids of a fixed-point layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedPointLayer {
    /// Configuration.
    pub config: FixedPointConfig,
    /// `W_zx`.
    pub w_zx: ParamId,
    /// `W_bx` (attention gain only).
    pub w_bx: Option<ParamId>,
    /// `b0` (pre-sigmoid).
    pub b0: ParamId,
    /// `log_W`.
    pub log_w: ParamId,
    /// Raw `W_r` (spectral variant only).
    pub w_r: Option<ParamId>,
}

/// Values of a layer's forward pass on a tape.
#[derive(Debug, Clone, Copy)]
pub struct FixedPointOutput {
    /// Steady-state `y` (`batch x n`).
    pub y: Var,
    /// Steady-state `a` (`batch x n`).
    pub a: Var,
    /// Firing rate `⌊y⌋²` (`batch x n`).
    pub rate: Var,
}

impl FixedPointLayer {
    /// Registers the layer's parameters (names prefixed by `prefix`, e.g. `"org1."`) in
    /// `params`, initialised from `seed`; returns the layer and, for the spectral variant, the
    /// spectral-norm vectors of `W_r`.
    ///
    /// # Errors
    /// [`GradError::InvalidConfig`] for zero sizes or zero iterations.
    pub fn new<S: Scalar>(
        config: FixedPointConfig,
        params: &mut ParamSet<S>,
        prefix: &str,
        seed: u64,
    ) -> Result<(Self, Option<SpectralNorm<S>>), GradError> {
        let FixedPointConfig {
            input: m, units: n, ..
        } = config;
        for (field, v) in [("fixed_point.input", m), ("fixed_point.units", n)] {
            if v == 0 {
                return Err(GradError::InvalidConfig {
                    field,
                    value: 0.0,
                    reason: "must be at least 1",
                });
            }
        }
        if let FixedPointRecurrence::SpectralNorm { iterations: 0 } = config.recurrence {
            return Err(GradError::InvalidConfig {
                field: "fixed_point.iterations",
                value: 0.0,
                reason: "need at least one iteration",
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bound = 1.0 / (m as f64).sqrt();
        let mut uni = |len: usize, lo: f64, hi: f64| -> Vec<S> {
            (0..len)
                .map(|_| S::from_f64(lo + (hi - lo) * rng.random::<f64>()))
                .collect()
        };
        let w_zx = params.push(&format!("{prefix}W_zx"), n, m, uni(n * m, -bound, bound));
        let w_bx = match config.gain {
            // The reference re-creates W_bx from N(0, 1) after its kaiming init (spec §E.1).
            InputGain::Attention => {
                let mut nrm = ChaCha8Rng::seed_from_u64(seed ^ 0xB1);
                let v: Vec<S> = (0..n * m)
                    .map(|_| {
                        let z: f64 = StandardNormal.sample(&mut nrm);
                        S::from_f64(z)
                    })
                    .collect();
                Some(params.push(&format!("{prefix}W_bx"), n, m, v))
            }
            InputGain::SameAsB0 => None,
        };
        let b0 = params.push(&format!("{prefix}b0"), 1, n, vec![S::ZERO; n]);
        let mut lw = uni(n * n, -1.0, 0.0);
        for i in 0..n {
            lw[i * n + i] = S::ZERO;
        }
        let log_w = params.push(&format!("{prefix}log_W"), n, n, lw);
        let (w_r, sn) = match config.recurrence {
            FixedPointRecurrence::Identity => (None, None),
            FixedPointRecurrence::SpectralNorm { .. } => {
                let mut eye = vec![S::ZERO; n * n];
                for i in 0..n {
                    eye[i * n + i] = S::ONE;
                }
                let sn = SpectralNorm::new(&eye, n, n, seed ^ 0x5A);
                (
                    Some(params.push(&format!("{prefix}W_r"), n, n, eye)),
                    Some(sn),
                )
            }
        };
        Ok((
            Self {
                config,
                w_zx,
                w_bx,
                b0,
                log_w,
                w_r,
            },
            sn,
        ))
    }

    /// Records the layer on `tape` for input `x` (`batch x m`); `vars` are the leaves from
    /// [`ParamSet::record`]. The spectral variant needs `sn` (after a power iteration in
    /// training mode).
    ///
    /// # Errors
    /// [`GradError::SingularSystem`] if an iteration's system is singular;
    /// [`GradError::WrongLength`] if `sn` is missing for the spectral variant.
    ///
    /// # Panics
    /// If `x` does not have `m` columns.
    #[track_caller]
    pub fn forward<S: Scalar>(
        &self,
        tape: &mut Tape<S>,
        vars: &[Var],
        x: Var,
        sn: Option<&SpectralNorm<S>>,
    ) -> Result<FixedPointOutput, GradError> {
        let n = self.config.units;
        assert_eq!(
            tape.shape(x).1,
            self.config.input,
            "fixed-point layer: input width"
        );
        let eps = S::from_f64(A_EPSILON);
        let zr = tape.linear(x, vars[self.w_zx.0]);
        let z = tape.row_l2_normalize(zr, S::from_f64(Z_NORM_EPSILON));
        let b0 = tape.sigmoid(vars[self.b0.0]);
        let b1 = match self.w_bx {
            Some(id) => {
                let g = tape.linear(x, vars[id.0]);
                tape.sigmoid(g)
            }
            None => b0,
        };
        let b0sq = tape.square(b0); // (σ B0)² with σ = 1
        let w = tape.exp(vars[self.log_w.0]);
        let drive = tape.mul(b1, z);
        let (y, a) = match (self.config.recurrence, self.w_r) {
            (FixedPointRecurrence::SpectralNorm { iterations }, Some(wr_id)) => {
                let Some(sn) = sn else {
                    return Err(GradError::WrongLength {
                        what: "spectral-norm vectors of W_r",
                        expected: n,
                        found: 0,
                    });
                };
                let wr = tape.spectral_norm(vars[wr_id.0], sn);
                let q = tape.linear(drive, wr);
                let q2 = tape.square(q);
                let wq = tape.linear(q2, w);
                let a0 = tape.add(wq, b0sq);
                let mut a = tape.add_scalar(a0, eps);
                let sa = tape.sqrt(a);
                let mut y = tape.div(q, sa);
                for _ in 0..iterations {
                    let d = match self.config.system {
                        SystemMatrix::SqrtA => tape.sqrt(a),
                        SystemMatrix::LegacyDiagA => a,
                    };
                    let m = tape.diag_gain_system(d, wr);
                    y = tape.batched_solve(m, drive)?;
                    let y2 = tape.square(y);
                    let y2a = tape.mul(y2, a);
                    let wy = tape.linear(y2a, w);
                    let an = tape.add(wy, b0sq);
                    a = tape.add_scalar(an, eps);
                }
                (y, a)
            }
            _ => {
                let d2 = tape.square(drive);
                let wd = tape.linear(d2, w);
                let a0 = tape.add(wd, b0sq);
                let a = tape.add_scalar(a0, eps);
                let sa = tape.sqrt(a);
                (tape.div(drive, sa), a)
            }
        };
        let ry = tape.relu(y);
        let rate = tape.square(ry);
        Ok(FixedPointOutput { y, a, rate })
    }
}
