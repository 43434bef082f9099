//! Optimisers (Adam, AdamW, SGD with momentum), the StepLR schedule, and optional global-norm
//! gradient clipping, with PyTorch's update rules.
//!
//! Adam (`torch.optim.Adam`, L2 weight decay added to the gradient), at step `t ≥ 1`:
//!
//! ```text
//! g ← g + λθ,   m ← m + (1 − β₁)(g − m),   v ← β₂ v + (1 − β₂) g²,
//! θ ← θ − η / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
//! ```
//!
//! The element-wise order of operations is PyTorch's (torch ≥ 2.0, single-tensor CPU path),
//! each scalar coefficient computed in `f64` and rounded once to `S`, as PyTorch passes Python
//! floats to its kernels:
//!
//! - `g + λ·θ` (`grad.add(param, alpha = λ)`);
//! - `m + (1−β₁)·(g − m)` (`exp_avg.lerp_(g, 1−β₁)`, weight below ½);
//! - `(β₂·v + ((1−β₂)·g)·g)` (`exp_avg_sq.mul_(β₂).addcmul_(g, g, value = 1−β₂)`);
//! - `denom = √v / √(1−β₂^t) + ε` (a division, not a multiplication by the reciprocal);
//! - `θ − (η/(1−β₁^t))·m / denom` (`param.addcdiv_(m, denom, value = −η/(1−β₁^t))`).
//!
//! One deliberate difference: `v` is flushed to zero when it falls below the smallest normal
//! number (subnormal `v` only arises from gradients below `1e-19` and would slow every later
//! step; `√v` is then far below `ε`, so the update changes by less than one part in `10¹¹`).
//!
//! AdamW (`torch.optim.AdamW`) instead decays the weights, `θ ← θ (1 − ηλ)`, and leaves `g`
//! alone. SGD (`torch.optim.SGD`, dampening 0): `g ← g + λθ`; `b ← g` at the first step, else
//! `b ← μ b + g`; `θ ← θ − η b` (or `θ − η (g + μ b)` with Nesterov).
//!
//! StepLR: `η_e = η_0 γ^{⌊e / s⌋}` for epoch `e`. Clipping (off by default: ORGaNICs trains
//! without it) scales all gradients by `min(1, c / (‖g‖ + 10⁻⁶))` as `clip_grad_norm_`.
//!
//! Optimiser state (moments, step count) is plain data with serde, so checkpoints can store it.

use crate::error::GradError;
use crate::params::ParamSet;
use crate::scalar::Scalar;
use crate::simd::{InstructionSet, simd_kernel};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Elements per parallel block of the element-wise updates: large enough that a block costs
/// far more than handing it to a thread, small enough that a large weight matrix splits.
const PARALLEL_BLOCK: usize = 1 << 15;

/// One block of Adam's update: parameters, gradient, first and second moments.
type Block<'a, S> = (&'a mut [S], &'a [S], &'a mut [S], &'a mut [S]);

/// How Adam applies weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightDecay {
    /// Added to the gradient (`torch.optim.Adam`).
    L2,
    /// Applied to the weights directly (`torch.optim.AdamW`).
    Decoupled,
}

/// Adam / AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// `β₁`.
    pub beta1: f64,
    /// `β₂`.
    pub beta2: f64,
    /// `ε`.
    pub eps: f64,
    /// `λ`.
    pub weight_decay: f64,
    /// L2 (Adam) or decoupled (AdamW).
    pub decay: WeightDecay,
}

impl Default for AdamConfig {
    /// PyTorch's defaults with the paper's `weight_decay = 1e-5` (L2).
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-5,
            decay: WeightDecay::L2,
        }
    }
}

/// Whether SGD uses Nesterov momentum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Nesterov {
    /// Heavy-ball momentum.
    Off,
    /// Nesterov momentum.
    On,
}

/// SGD hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// `μ` (0 for plain SGD).
    pub momentum: f64,
    /// `λ` (L2, added to the gradient).
    pub weight_decay: f64,
    /// Nesterov or not.
    pub nesterov: Nesterov,
}

/// An optimiser with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub enum Optimizer<S: Scalar> {
    /// Adam or AdamW.
    Adam {
        /// Hyper-parameters.
        config: AdamConfig,
        /// Steps taken.
        step: u64,
        /// First moments.
        m: ParamSet<S>,
        /// Second moments.
        v: ParamSet<S>,
    },
    /// SGD with optional momentum.
    Sgd {
        /// Hyper-parameters.
        config: SgdConfig,
        /// Steps taken.
        step: u64,
        /// Momentum buffers.
        momentum: ParamSet<S>,
    },
}

impl<S: Scalar> Optimizer<S> {
    /// Adam or AdamW with zero moments for `params`.
    #[must_use]
    pub fn adam(config: AdamConfig, params: &ParamSet<S>) -> Self {
        Self::Adam {
            config,
            step: 0,
            m: params.zeros_like(),
            v: params.zeros_like(),
        }
    }

    /// SGD with zero momentum buffers for `params`.
    #[must_use]
    pub fn sgd(config: SgdConfig, params: &ParamSet<S>) -> Self {
        Self::Sgd {
            config,
            step: 0,
            momentum: params.zeros_like(),
        }
    }

    /// Steps taken so far.
    #[must_use]
    pub fn steps(&self) -> u64 {
        match self {
            Self::Adam { step, .. } | Self::Sgd { step, .. } => *step,
        }
    }

    /// One update of `params` with gradients `grads` and learning rate `lr`.
    ///
    /// # Errors
    /// [`GradError::ShapeMismatch`] / [`GradError::UnknownParameter`] if the layouts differ,
    /// [`GradError::InvalidConfig`] for a negative or non-finite `lr`.
    pub fn step(
        &mut self,
        params: &mut ParamSet<S>,
        grads: &ParamSet<S>,
        lr: f64,
    ) -> Result<(), GradError> {
        self.step_with(InstructionSet::Detect, params, grads, lr)
    }

    /// [`Optimizer::step`] with its element-wise loop compiled for `isa` (bit-identical
    /// results for every choice, see [`crate::simd`]; [`InstructionSet::Baseline`] is the
    /// reference for tests).
    ///
    /// Called on a rayon worker (inside `ThreadPool::install`), Adam's update runs in blocks
    /// across that pool, whose workers' float mode then applies (`organics train`'s pool
    /// flushes subnormals); called elsewhere, it runs on the calling thread under its mode. The
    /// results do not depend on the split.
    ///
    /// # Errors
    /// As [`Optimizer::step`].
    pub fn step_with(
        &mut self,
        isa: InstructionSet,
        params: &mut ParamSet<S>,
        grads: &ParamSet<S>,
        lr: f64,
    ) -> Result<(), GradError> {
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(GradError::InvalidConfig {
                field: "lr",
                value: lr,
                reason: "learning rate must be finite and non-negative",
            });
        }
        params.check_same_layout(grads)?;
        match self {
            Self::Adam { config, step, m, v } => {
                params.check_same_layout(m)?;
                *step += 1;
                let t = *step as i32;
                let c = *config;
                let bc1 = 1.0 - c.beta1.powi(t);
                let bc2 = 1.0 - c.beta2.powi(t);
                let step_size = S::from_f64(lr / bc1);
                let sqrt_bc2 = S::from_f64(bc2.sqrt());
                let b2 = S::from_f64(c.beta2);
                let (ob1, ob2) = (S::from_f64(1.0 - c.beta1), S::from_f64(1.0 - c.beta2));
                let eps = S::from_f64(c.eps);
                let wd = S::from_f64(c.weight_decay);
                let decay = S::ONE - S::from_f64(lr * c.weight_decay);
                let coef = AdamCoefficients {
                    wd,
                    decay,
                    ob1,
                    b2,
                    ob2,
                    sqrt_bc2,
                    eps,
                    step_size,
                };
                let kind = c.decay;
                let update = |(p, g, m, v): Block<'_, S>| {
                    isa.dispatch(AdamUpdate {
                        p,
                        g,
                        m,
                        v,
                        kind,
                        coef,
                    });
                };
                // Element-wise, so the blocks give the same results to the bit on any thread:
                // across the pool when called on one of its workers, else here. Every tensor's
                // blocks go to the pool together, so that small tensors run beside the large
                // ones instead of each waiting for the previous tensor's blocks.
                let blocks = params
                    .tensors_mut()
                    .iter_mut()
                    .zip(grads.tensors())
                    .zip(m.tensors_mut())
                    .zip(v.tensors_mut())
                    .flat_map(|(((p, g), m), v)| {
                        p.data
                            .chunks_mut(PARALLEL_BLOCK)
                            .zip(g.data.chunks(PARALLEL_BLOCK))
                            .zip(m.data.chunks_mut(PARALLEL_BLOCK))
                            .zip(v.data.chunks_mut(PARALLEL_BLOCK))
                            .map(|(((p, g), m), v)| (p, g, m, v))
                    });
                if rayon::current_thread_index().is_some() {
                    blocks.collect::<Vec<_>>().into_par_iter().for_each(update);
                } else {
                    blocks.for_each(update);
                }
            }
            Self::Sgd {
                config,
                step,
                momentum,
            } => {
                params.check_same_layout(momentum)?;
                let first = *step == 0;
                *step += 1;
                let mu = S::from_f64(config.momentum);
                let wd = S::from_f64(config.weight_decay);
                let lr = S::from_f64(lr);
                for ((p, g), b) in params
                    .tensors_mut()
                    .iter_mut()
                    .zip(grads.tensors())
                    .zip(momentum.tensors_mut())
                {
                    for ((pi, &gi), bi) in p.data.iter_mut().zip(&g.data).zip(b.data.iter_mut()) {
                        let g = gi + wd * *pi;
                        let d = if config.momentum > 0.0 {
                            *bi = if first { g } else { mu * *bi + g };
                            match config.nesterov {
                                Nesterov::Off => *bi,
                                Nesterov::On => g + mu * *bi,
                            }
                        } else {
                            g
                        };
                        *pi -= lr * d;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `torch.optim.lr_scheduler.StepLR`, stepped once per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLr {
    /// Initial learning rate `η_0`.
    pub base_lr: f64,
    /// Epochs between decays `s` (the paper: 30 for sMNIST).
    pub step_size: usize,
    /// Decay factor `γ` (the paper: 0.8).
    pub gamma: f64,
}

impl StepLr {
    /// Learning rate during (0-based) epoch `epoch`.
    #[must_use]
    pub fn lr(&self, epoch: usize) -> f64 {
        let k = epoch.checked_div(self.step_size).unwrap_or(0);
        self.base_lr * self.gamma.powi(i32::try_from(k).unwrap_or(i32::MAX))
    }
}

/// Optional gradient clipping (off by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum GradClip {
    /// No clipping (the paper's setting for ORGaNICs).
    #[default]
    Off,
    /// Scale all gradients so that their global 2-norm is at most the given value.
    GlobalNorm(f64),
}

impl GradClip {
    /// Applies the clipping in place; returns the global norm before clipping.
    pub fn apply<S: Scalar>(&self, grads: &mut ParamSet<S>) -> f64 {
        let norm = grads.global_norm();
        self.apply_with_norm(grads, norm)
    }

    /// [`Self::apply`] with the gradients' norm already known (`grads.global_norm()`, e.g.
    /// formed by the pass that wrote them with [`crate::params::norm_of_block_sums`]); returns
    /// it.
    pub fn apply_with_norm<S: Scalar>(&self, grads: &mut ParamSet<S>, norm: f64) -> f64 {
        if let Self::GlobalNorm(max) = *self {
            let coef = max / (norm + 1e-6);
            if coef < 1.0 {
                let c = S::from_f64(coef);
                for t in grads.tensors_mut() {
                    t.data.iter_mut().for_each(|x| *x *= c);
                }
            }
        }
        norm
    }
}

/// The per-step constants of Adam's element-wise update (see the module docs).
#[derive(Clone, Copy)]
struct AdamCoefficients<S> {
    wd: S,
    decay: S,
    ob1: S,
    b2: S,
    ob2: S,
    sqrt_bc2: S,
    eps: S,
    step_size: S,
}

impl<S: Scalar> AdamCoefficients<S> {
    /// One element's update from gradient `g` (weight decay already applied).
    #[inline(always)]
    fn update(&self, g: S, p: &mut S, m: &mut S, v: &mut S) {
        *m += self.ob1 * (g - *m);
        *v = (self.b2 * *v + self.ob2 * g * g).flush_subnormal();
        let denom = v.sqrt() / self.sqrt_bc2 + self.eps;
        *p -= self.step_size * *m / denom;
    }
}

simd_kernel! {
    /// Adam's update of one tensor: one loop per weight-decay kind, so that it vectorises.
    AdamUpdate<'a> {
        p: &'a mut [S], g: &'a [S], m: &'a mut [S], v: &'a mut [S],
        kind: WeightDecay, coef: AdamCoefficients<S>,
    }
    {
        let it = p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
        match kind {
            WeightDecay::L2 => {
                for (((p, &g), m), v) in it {
                    coef.update(g + coef.wd * *p, p, m, v);
                }
            }
            WeightDecay::Decoupled => {
                for (((p, &g), m), v) in it {
                    *p *= coef.decay;
                    coef.update(g, p, m, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(x: f64, g: f64) -> (ParamSet<f64>, ParamSet<f64>) {
        let mut p = ParamSet::new();
        p.push("w", 1, 1, vec![x]);
        let mut gs = ParamSet::new();
        gs.push("w", 1, 1, vec![g]);
        (p, gs)
    }

    #[test]
    fn adam_on_a_pool_matches_each_tensor_stepped_alone_bitwise() {
        // Tensors around the parallel block's size, so that blocks of several tensors (and a
        // tensor's last, partial block) are in flight together. Each tensor stepped alone, off
        // any pool, is the reference: a block paired with another tensor's gradient or moments,
        // or a block skipped, changes its bits.
        use rand::{RngExt, SeedableRng};
        let sizes = [3, PARALLEL_BLOCK + 5, 1, 2 * PARALLEL_BLOCK, 70_000];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut random = |len: usize, scale: f32| -> Vec<f32> {
            (0..len)
                .map(|_| scale * (rng.random::<f32>() - 0.5))
                .collect()
        };
        let (mut params, mut grads) = (ParamSet::new(), ParamSet::new());
        for (k, &len) in sizes.iter().enumerate() {
            params.push(&format!("p{k}"), len, 1, random(len, 2.0));
            grads.push(&format!("p{k}"), len, 1, random(len, 0.1));
        }
        let config = AdamConfig::default();
        let steps = 2;
        let run = |threads: Option<usize>| {
            let mut p = params.clone();
            let mut opt = Optimizer::adam(config, &p);
            let mut go = || {
                for _ in 0..steps {
                    opt.step(&mut p, &grads, 0.01).unwrap();
                }
            };
            match threads {
                Some(n) => rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
                    .install(go),
                None => go(),
            }
            let Optimizer::Adam { m, v, .. } = opt else {
                unreachable!("built as Adam")
            };
            (p, m, v)
        };
        let bits = |set: &ParamSet<f32>| -> Vec<Vec<u32>> {
            set.tensors()
                .iter()
                .map(|t| t.data.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        // The reference: every tensor in a set of its own, stepped off the pool.
        let mut alone = [vec![], vec![], vec![]];
        for (p, g) in params.tensors().iter().zip(grads.tensors()) {
            let (mut ps, mut gs) = (ParamSet::new(), ParamSet::new());
            ps.push(&p.name, p.data.len(), 1, p.data.clone());
            gs.push(&g.name, g.data.len(), 1, g.data.clone());
            let mut opt = Optimizer::adam(config, &ps);
            for _ in 0..steps {
                opt.step(&mut ps, &gs, 0.01).unwrap();
            }
            let Optimizer::Adam { m, v, .. } = opt else {
                unreachable!("built as Adam")
            };
            for (out, set) in alone.iter_mut().zip([&ps, &m, &v]) {
                out.extend(bits(set));
            }
        }
        for threads in [None, Some(1), Some(2), Some(3)] {
            let (p, m, v) = run(threads);
            for (what, got, want) in [
                ("params", &p, &alone[0]),
                ("m", &m, &alone[1]),
                ("v", &v, &alone[2]),
            ] {
                assert!(&bits(got) == want, "{what} differ on {threads:?} threads");
            }
        }
    }

    #[test]
    fn adam_first_step_moves_by_lr_against_the_gradient_sign() {
        // At t = 1 the bias-corrected m/√v is g/|g| (up to ε), whatever |g| is.
        for g in [-3.0, 1e-3, 250.0] {
            let (mut p, gs) = one(0.5, g);
            let mut opt = Optimizer::adam(
                AdamConfig {
                    weight_decay: 0.0,
                    ..AdamConfig::default()
                },
                &p,
            );
            opt.step(&mut p, &gs, 0.01).unwrap();
            let moved = p.data(crate::ParamId(0))[0] - 0.5;
            // ε/|g| ≤ 1e-5 relative deviation from exactly −lr·sign(g).
            assert!(
                (moved + 0.01 * g.signum()).abs() < 1e-7,
                "g = {g}: moved {moved}"
            );
        }
    }

    #[test]
    fn adam_f32_follows_pytorch_order_of_operations_bitwise() {
        // Three steps on 64 random entries with L2 decay, against the update written out in
        // PyTorch's order (module doc). Same operations in the same order give the same bits;
        // folding 1/√(1−β₂ᵗ) into a multiplication, the (β₁m + (1−β₁)g) form or rounding β
        // to f32 before forming 1−β each change the last bits of some entries.
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let len = 64;
        let theta0: Vec<f32> = (0..len).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let mut p = ParamSet::<f32>::new();
        p.push("w", 8, 8, theta0.clone());
        let cfg = AdamConfig {
            weight_decay: 1e-2,
            ..AdamConfig::default()
        };
        let mut opt = Optimizer::adam(cfg, &p);
        let (mut theta, mut m, mut v) = (theta0, vec![0.0f32; len], vec![0.0f32; len]);
        for t in 1..=3 {
            let g: Vec<f32> = (0..len).map(|_| rng.random::<f32>() * 0.2 - 0.1).collect();
            let mut gs = ParamSet::<f32>::new();
            gs.push("w", 8, 8, g.clone());
            let lr = 0.01 * f64::from(t);
            opt.step(&mut p, &gs, lr).unwrap();
            let bc1 = 1.0 - 0.9f64.powi(t);
            let bc2 = 1.0 - 0.999f64.powi(t);
            for i in 0..len {
                let gi = g[i] + 1e-2f32 * theta[i];
                m[i] += 0.1f32 * (gi - m[i]);
                v[i] = 0.999f32 * v[i] + 0.001f32 * gi * gi;
                let denom = v[i].sqrt() / (bc2.sqrt() as f32) + 1e-8f32;
                theta[i] -= (lr / bc1) as f32 * m[i] / denom;
            }
            let got = p.data(crate::ParamId(0));
            for i in 0..len {
                assert_eq!(got[i].to_bits(), theta[i].to_bits(), "step {t}, entry {i}");
            }
        }
        let Optimizer::Adam {
            m: om, v: ov, step, ..
        } = &opt
        else {
            unreachable!()
        };
        assert_eq!(*step, 3);
        for i in 0..len {
            assert_eq!(om.data(crate::ParamId(0))[i].to_bits(), m[i].to_bits());
            assert_eq!(ov.data(crate::ParamId(0))[i].to_bits(), v[i].to_bits());
        }
    }

    #[test]
    fn adam_l2_and_adamw_differ_as_documented() {
        let (mut p, gs) = one(2.0, 0.0);
        let cfg = AdamConfig {
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        let mut adam = Optimizer::adam(cfg, &p);
        adam.step(&mut p, &gs, 0.01).unwrap();
        // L2: the decay term λθ = 0.2 is the whole gradient, so the first step is −lr.
        assert!((p.data(crate::ParamId(0))[0] - 1.99).abs() < 1e-9);
        let (mut p, gs) = one(2.0, 0.0);
        let mut adamw = Optimizer::adam(
            AdamConfig {
                decay: WeightDecay::Decoupled,
                ..cfg
            },
            &p,
        );
        adamw.step(&mut p, &gs, 0.01).unwrap();
        // Decoupled: θ(1 − ηλ) and no gradient step (m = 0).
        assert!((p.data(crate::ParamId(0))[0] - 2.0 * (1.0 - 0.001)).abs() < 1e-12);
    }

    #[test]
    fn sgd_momentum_matches_heavy_ball_recursion() {
        // f(θ) = θ²/2, g = θ. Heavy ball: b1 = θ0, θ1 = θ0 − ηθ0; b2 = μ b1 + θ1, θ2 = θ1 − η b2.
        let (eta, mu, th0) = (0.1, 0.9, 1.0);
        let (mut p, _) = one(th0, 0.0);
        let mut opt = Optimizer::sgd(
            SgdConfig {
                momentum: mu,
                weight_decay: 0.0,
                nesterov: Nesterov::Off,
            },
            &p,
        );
        let mut theta = vec![th0];
        for _ in 0..2 {
            let x = p.data(crate::ParamId(0))[0];
            let (_, g) = one(0.0, x);
            opt.step(&mut p, &g, eta).unwrap();
            theta.push(p.data(crate::ParamId(0))[0]);
        }
        let th1 = th0 - eta * th0;
        let th2 = th1 - eta * (mu * th0 + th1);
        assert!((theta[1] - th1).abs() < 1e-15 && (theta[2] - th2).abs() < 1e-15);
    }

    #[test]
    fn step_lr_and_clipping() {
        let s = StepLr {
            base_lr: 0.01,
            step_size: 30,
            gamma: 0.8,
        };
        assert!(
            (s.lr(29) - 0.01).abs() < 1e-15
                && (s.lr(30) - 0.008).abs() < 1e-15
                && (s.lr(65) - 0.0064).abs() < 1e-15
        );
        let (_, mut g) = one(0.0, -4.0);
        let before = GradClip::GlobalNorm(1.0).apply(&mut g);
        assert!((before - 4.0).abs() < 1e-15);
        assert!((g.global_norm() - 1.0).abs() < 1e-6);
        let (_, mut g) = one(0.0, -4.0);
        GradClip::Off.apply(&mut g);
        assert!((g.global_norm() - 4.0).abs() < 1e-15);
    }

    #[test]
    fn mismatched_layouts_are_errors() {
        let (mut p, _) = one(1.0, 0.0);
        let mut other = ParamSet::<f64>::new();
        other.push("w", 1, 2, vec![0.0, 0.0]);
        let mut opt = Optimizer::adam(AdamConfig::default(), &p);
        assert!(opt.step(&mut p, &other, 0.1).is_err());
        assert!(opt.step(&mut p.clone(), &p.clone(), f64::NAN).is_err());
    }
}
