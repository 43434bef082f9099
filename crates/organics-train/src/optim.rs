//! Adam with PyTorch's L2 weight decay (`torch.optim.Adam(weight_decay = λ)`), applied to the
//! trainable tensors of a [`ParamSet`]. For step `t = 1, 2, …` and gradient `g`:
//!
//! $$ g \leftarrow g + \lambda\theta,\quad m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
//!    v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
//!    \theta \leftarrow \theta - \eta\,\frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}, $$
//!
//! with `β₁ = 0.9`, `β₂ = 0.999`, `ε = 10⁻⁸` (PyTorch's defaults), and PyTorch's order of
//! operations (`denom = √v / √(1−β₂^t) + ε`, `step = η / (1−β₁^t)`).

use crate::params::{ParamSet, Role};

/// `β₁`.
pub const BETA1: f64 = 0.9;
/// `β₂`.
pub const BETA2: f64 = 0.999;
/// `ε`.
pub const EPS: f64 = 1e-8;

/// Adam state: the step count and the two moments of every trainable tensor (in the
/// [`ParamSet`]'s order, trainable tensors only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Adam {
    /// Steps taken.
    pub step: u64,
    /// First moments.
    pub exp_avg: Vec<Vec<f32>>,
    /// Second moments.
    pub exp_avg_sq: Vec<Vec<f32>>,
}

impl Adam {
    /// Zero moments for the trainable tensors of `params`.
    pub fn new(params: &ParamSet) -> Adam {
        let zeros: Vec<Vec<f32>> = params
            .tensors
            .iter()
            .filter(|t| t.role == Role::Trainable)
            .map(|t| vec![0.0; t.data.len()])
            .collect();
        Adam {
            step: 0,
            exp_avg: zeros.clone(),
            exp_avg_sq: zeros,
        }
    }

    /// One update with learning rate `lr`; `grads` holds one gradient per trainable tensor.
    pub fn update(
        &mut self,
        params: &mut ParamSet,
        grads: &[Vec<f32>],
        lr: f64,
        weight_decay: f64,
    ) {
        self.step += 1;
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let bc1 = 1.0 - BETA1.powi(t);
        let bc2 = 1.0 - BETA2.powi(t);
        let step_size = (lr / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps, wd) = (BETA1 as f32, BETA2 as f32, EPS as f32, weight_decay as f32);
        let trainable = params
            .tensors
            .iter_mut()
            .filter(|t| t.role == Role::Trainable);
        for (((tensor, g), m), v) in trainable
            .zip(grads)
            .zip(&mut self.exp_avg)
            .zip(&mut self.exp_avg_sq)
        {
            for (((p, &gi), mi), vi) in tensor
                .data
                .iter_mut()
                .zip(g)
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                let gi = gi + wd * *p;
                *mi = b1 * *mi + (1.0 - b1) * gi;
                *vi = b2 * *vi + (1.0 - b2) * gi * gi;
                let denom = vi.sqrt() / bc2_sqrt + eps;
                *p -= step_size * *mi / denom;
            }
        }
    }
}
