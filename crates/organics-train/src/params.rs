//! Named tensors of a model: trainable parameters, frozen parameters and buffers, in a fixed
//! order, with the seeded initialisers the models use.
//!
//! Names follow the reference PyTorch `state_dict` where a counterpart exists (for example
//! `autoencoder.encoder.0.weight`, `org1.log_Way`, `fc.bias`), so a checkpoint's
//! `model.safetensors` loads into PyTorch by name.
//!
//! Initialisers (PyTorch's defaults, drawn from ChaCha8 instead of torch's generator):
//!
//! - `kaiming_uniform(a = √5)` of an `out x in` weight: `U(−1/√in, 1/√in)`;
//! - a `Linear` bias: `U(−1/√in, 1/√in)`.

use organics_grad::{Tape, Var};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a tensor is to the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Updated by the optimiser.
    Trainable,
    /// A parameter held fixed (e.g. σ, or the time constants of the fixed-τ RNN).
    Frozen,
    /// State that is not a parameter (spectral-norm vectors, initial RNN states).
    Buffer,
}

/// One named row-major `rows x cols` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// `state_dict` name.
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Row-major values.
    pub data: Vec<f32>,
    /// Role.
    pub role: Role,
    /// Shape written to safetensors (PyTorch's: `[n]` for vectors, `[out, in]` for weights).
    pub shape: Vec<usize>,
}

/// The ordered tensors of a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamSet {
    /// Tensors in registration order.
    pub tensors: Vec<Tensor>,
}

/// Handle of a tensor in a [`ParamSet`] (its position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamId(pub usize);

impl ParamSet {
    /// Adds a matrix-shaped tensor.
    pub fn add(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        data: Vec<f32>,
        role: Role,
    ) -> ParamId {
        self.add_shaped(name, rows, cols, data, role, vec![rows, cols])
    }

    /// Adds a vector, stored as `1 x n` on the tape and `[n]` in files.
    pub fn add_vector(&mut self, name: &str, data: Vec<f32>, role: Role) -> ParamId {
        let n = data.len();
        self.add_shaped(name, 1, n, data, role, vec![n])
    }

    fn add_shaped(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        data: Vec<f32>,
        role: Role,
        shape: Vec<usize>,
    ) -> ParamId {
        assert_eq!(data.len(), rows * cols, "tensor {name}: data length");
        assert!(
            self.tensors.iter().all(|t| t.name != name),
            "tensor {name} registered twice"
        );
        self.tensors.push(Tensor {
            name: name.to_string(),
            rows,
            cols,
            data,
            role,
            shape,
        });
        ParamId(self.tensors.len() - 1)
    }

    /// The tensor behind `id`.
    pub fn get(&self, id: ParamId) -> &Tensor {
        &self.tensors[id.0]
    }

    /// Mutable access to the values behind `id`.
    pub fn data_mut(&mut self, id: ParamId) -> &mut Vec<f32> {
        &mut self.tensors[id.0].data
    }

    /// Number of trainable scalars.
    pub fn trainable_count(&self) -> usize {
        self.count(Role::Trainable)
    }

    /// Number of scalars with `role`.
    pub fn count(&self, role: Role) -> usize {
        self.tensors
            .iter()
            .filter(|t| t.role == role)
            .map(|t| t.data.len())
            .sum()
    }

    /// Pushes every tensor on `tape` (trainable ones as differentiable leaves) and returns the
    /// handles in registration order.
    pub fn to_tape(&self, tape: &mut Tape<f32>) -> Vec<Var> {
        self.tensors
            .iter()
            .map(|t| match t.role {
                Role::Trainable => tape.param(t.rows, t.cols, &t.data),
                Role::Frozen | Role::Buffer => tape.constant(t.rows, t.cols, &t.data),
            })
            .collect()
    }
}

/// `U(−bound, bound)` samples.
pub fn uniform(rng: &mut ChaCha8Rng, len: usize, bound: f32) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * bound)
        .collect()
}

/// PyTorch's `kaiming_uniform_(a = √5)` for an `out x fan_in` weight: `U(±1/√fan_in)`.
pub fn kaiming_uniform(rng: &mut ChaCha8Rng, out: usize, fan_in: usize) -> Vec<f32> {
    uniform(rng, out * fan_in, 1.0 / (fan_in as f32).sqrt())
}

/// Standard normal samples.
pub fn normal(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    (0..len)
        .map(|_| {
            let z: f64 = StandardNormal.sample(rng);
            z as f32
        })
        .collect()
}

/// `U(0, 1)` samples.
pub fn unit_uniform(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random::<f32>()).collect()
}

/// The `n x n` identity, row-major.
pub fn identity(n: usize) -> Vec<f32> {
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        m[i * n + i] = 1.0;
    }
    m
}

/// A random `n x n` orthogonal matrix (Gram–Schmidt on Gaussian rows, in f64), as PyTorch's
/// `orthogonal_` with gain 1 draws one.
pub fn orthogonal(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    while q.len() < n {
        let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
        // Two Gram–Schmidt passes keep the rows orthogonal to working precision.
        for _ in 0..2 {
            for u in &q {
                let d: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                for (vi, ui) in v.iter_mut().zip(u) {
                    *vi -= d * ui;
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    q.into_iter().flatten().map(|x| x as f32).collect()
}
