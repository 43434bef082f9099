//! Named parameter tensors: [`ParamSet`], the container models, gradients and optimiser
//! moments share.
//!
//! A parameter set is an ordered list of named `rows x cols` row-major tensors. Gradients and
//! optimiser moments are parameter sets of the same layout (see [`ParamSet::zeros_like`]), so
//! an optimiser step is a loop over matching tensors. Names follow PyTorch `state_dict`
//! conventions (`module.tensor`) so that the training crate can write them to safetensors.

use crate::error::GradError;
use crate::scalar::Scalar;
use crate::simd::{InstructionSet, simd_kernel};
use serde::{Deserialize, Serialize};

/// Index of a tensor in a [`ParamSet`] (stable: tensors are never removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParamId(pub usize);

/// One named row-major tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Tensor<S: Scalar> {
    /// `state_dict`-style name.
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Columns (1 for a column vector; vectors are stored `1 x len` or `len x 1` as named).
    pub cols: usize,
    /// Row-major entries.
    pub data: Vec<S>,
}

/// An ordered collection of named tensors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ParamSet<S: Scalar> {
    tensors: Vec<Tensor<S>>,
}

impl<S: Scalar> ParamSet<S> {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self {
            tensors: Vec::new(),
        }
    }

    /// Appends a tensor and returns its id.
    ///
    /// # Panics
    /// If `data.len() != rows * cols` or the name is taken.
    #[track_caller]
    pub fn push(&mut self, name: &str, rows: usize, cols: usize, data: Vec<S>) -> ParamId {
        assert_eq!(
            data.len(),
            rows * cols,
            "parameter {name}: length {} != {rows} x {cols}",
            data.len()
        );
        assert!(self.find(name).is_none(), "parameter {name} defined twice");
        self.tensors.push(Tensor {
            name: name.to_owned(),
            rows,
            cols,
            data,
        });
        ParamId(self.tensors.len() - 1)
    }

    /// The tensor with id `id`.
    #[must_use]
    pub fn get(&self, id: ParamId) -> &Tensor<S> {
        &self.tensors[id.0]
    }

    /// Mutable access to the tensor with id `id`.
    pub fn get_mut(&mut self, id: ParamId) -> &mut Tensor<S> {
        &mut self.tensors[id.0]
    }

    /// The entries of tensor `id`.
    #[must_use]
    pub fn data(&self, id: ParamId) -> &[S] {
        &self.tensors[id.0].data
    }

    /// Mutable entries of tensor `id`.
    pub fn data_mut(&mut self, id: ParamId) -> &mut [S] {
        &mut self.tensors[id.0].data
    }

    /// The id of the tensor called `name`, if any.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.tensors
            .iter()
            .position(|t| t.name == name)
            .map(ParamId)
    }

    /// The id of the tensor called `name`.
    ///
    /// # Errors
    /// [`GradError::UnknownParameter`].
    pub fn id(&self, name: &str) -> Result<ParamId, GradError> {
        self.find(name).ok_or_else(|| GradError::UnknownParameter {
            name: name.to_owned(),
        })
    }

    /// All tensors in order.
    #[must_use]
    pub fn tensors(&self) -> &[Tensor<S>] {
        &self.tensors
    }

    /// All tensors, mutably.
    pub fn tensors_mut(&mut self) -> &mut [Tensor<S>] {
        &mut self.tensors
    }

    /// Number of tensors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are no tensors.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Total number of scalar entries.
    #[must_use]
    pub fn num_scalars(&self) -> usize {
        self.tensors.iter().map(|t| t.data.len()).sum()
    }

    /// A set with the same names and shapes, all zeros.
    #[must_use]
    pub fn zeros_like(&self) -> Self {
        Self {
            tensors: self
                .tensors
                .iter()
                .map(|t| Tensor {
                    name: t.name.clone(),
                    rows: t.rows,
                    cols: t.cols,
                    data: vec![S::ZERO; t.data.len()],
                })
                .collect(),
        }
    }

    /// Sets every entry to zero.
    pub fn fill_zero(&mut self) {
        for t in &mut self.tensors {
            t.data.iter_mut().for_each(|x| *x = S::ZERO);
        }
    }

    /// Checks that `other` has the same names and shapes in the same order.
    ///
    /// # Errors
    /// [`GradError::ShapeMismatch`] or [`GradError::UnknownParameter`] for the first difference.
    pub fn check_same_layout(&self, other: &Self) -> Result<(), GradError> {
        if self.tensors.len() != other.tensors.len() {
            let name = self
                .tensors
                .get(other.tensors.len())
                .or_else(|| other.tensors.get(self.tensors.len()))
                .map_or_else(String::new, |t| t.name.clone());
            return Err(GradError::UnknownParameter { name });
        }
        for (a, b) in self.tensors.iter().zip(&other.tensors) {
            if a.name != b.name {
                return Err(GradError::UnknownParameter {
                    name: b.name.clone(),
                });
            }
            if a.rows != b.rows || a.cols != b.cols {
                return Err(GradError::ShapeMismatch {
                    name: a.name.clone(),
                    expected_rows: a.rows,
                    expected_cols: a.cols,
                    rows: b.rows,
                    cols: b.cols,
                });
            }
        }
        Ok(())
    }

    /// Whether every entry is finite, i.e. whether [`Self::global_norm`] is (the squares
    /// are summed in `f64`, where `N` squares of `f32` values cannot overflow for any `N`
    /// below `10²³⁰`). Element-wise, so it runs in blocks across the rayon pool when called
    /// on one of its workers; the answer does not depend on the split.
    #[must_use]
    pub fn all_finite(&self) -> bool {
        use rayon::prelude::*;
        const BLOCK: usize = 1 << 15;
        let finite = |xs: &[S]| xs.iter().fold(true, |ok, &x| ok & x.is_finite());
        self.tensors.iter().all(|t| {
            if rayon::current_thread_index().is_some() {
                t.data.par_chunks(BLOCK).all(finite)
            } else {
                finite(&t.data)
            }
        })
    }

    /// Euclidean norm of all entries together, `sqrt(Σ x²)` with the squares summed in `f64`
    /// in a fixed order that does not depend on the thread count or the instruction set:
    ///
    /// - every tensor is cut into blocks of [`NORM_BLOCK`] entries (the last one shorter);
    /// - within a block, entry `k` goes to lane `k mod 8` of eight running sums, which are
    ///   combined as `((s₀ + s₁) + (s₂ + s₃)) + ((s₄ + s₅) + (s₆ + s₇))`;
    /// - the block sums are added in order, tensor by tensor.
    ///
    /// Eight independent sums keep the additions' latency off the critical path (a single
    /// running sum is one dependent chain of `N` additions), and the blocks run in parallel
    /// across the rayon pool when this is called on one of its workers, with the same result
    /// to the bit. The rounding error is that of about `NORM_BLOCK / 8 + N / NORM_BLOCK`
    /// additions in sequence, smaller than a single running sum's `N`. The norm is finite
    /// exactly when every entry is ([`Self::all_finite`]).
    #[must_use]
    pub fn global_norm(&self) -> f64 {
        use rayon::prelude::*;
        let blocks: Vec<&[S]> = self
            .tensors
            .iter()
            .flat_map(|t| t.data.chunks(NORM_BLOCK))
            .collect();
        let sums: Vec<f64> = if rayon::current_thread_index().is_some() {
            blocks.par_iter().map(|b| sum_of_squares(b)).collect()
        } else {
            blocks.iter().map(|b| sum_of_squares(b)).collect()
        };
        norm_of_block_sums(&sums)
    }

    /// Checks that the tensors have `shapes` (`(rows, cols)`), in order, as the parameters of
    /// `model` (named in the error, with its `layout` in words).
    ///
    /// # Errors
    /// [`GradError::UnknownParameter`] for a wrong tensor count, [`GradError::ShapeMismatch`]
    /// naming the first misshapen tensor.
    pub fn check_shapes(
        &self,
        shapes: &[(usize, usize)],
        model: &str,
        layout: &str,
    ) -> Result<(), GradError> {
        if self.len() != shapes.len() {
            return Err(GradError::UnknownParameter {
                name: format!(
                    "{} tensors given, {model} has {} ({layout})",
                    self.len(),
                    shapes.len()
                ),
            });
        }
        for (t, &(rows, cols)) in self.tensors.iter().zip(shapes) {
            if (t.rows, t.cols) != (rows, cols) {
                return Err(GradError::ShapeMismatch {
                    name: t.name.clone(),
                    expected_rows: rows,
                    expected_cols: cols,
                    rows: t.rows,
                    cols: t.cols,
                });
            }
        }
        Ok(())
    }

    /// Records every tensor as a differentiable leaf on `tape`; the result is indexed by
    /// `ParamId.0`, and after [`crate::Tape::backward`] the gradient of tensor `i` is
    /// `tape.grad(vars[i])`.
    pub fn record(&self, tape: &mut crate::Tape<S>) -> Vec<crate::Var> {
        self.tensors
            .iter()
            .map(|t| tape.param(t.rows, t.cols, &t.data))
            .collect()
    }

    /// Copies the gradients of the leaves returned by [`Self::record`] into `grads`
    /// (overwriting; same layout as `self`).
    ///
    /// # Errors
    /// A layout mismatch between `self` and `grads`.
    pub fn gather_grads(
        &self,
        tape: &crate::Tape<S>,
        vars: &[crate::Var],
        grads: &mut Self,
    ) -> Result<(), GradError> {
        self.check_same_layout(grads)?;
        for (t, &v) in grads.tensors.iter_mut().zip(vars) {
            let g = tape.grad(v);
            if g.len() == t.data.len() {
                t.data.copy_from_slice(g);
            } else {
                t.data.iter_mut().for_each(|x| *x = S::ZERO);
            }
        }
        Ok(())
    }

    /// Converts every entry to another scalar type (for example trained `f32` weights to
    /// `f64` for analysis).
    #[must_use]
    pub fn cast<T: Scalar>(&self) -> ParamSet<T> {
        ParamSet {
            tensors: self
                .tensors
                .iter()
                .map(|t| Tensor {
                    name: t.name.clone(),
                    rows: t.rows,
                    cols: t.cols,
                    data: t.data.iter().map(|&x| T::from_f64(x.to_f64())).collect(),
                })
                .collect(),
        }
    }
}

/// Checks that every named size is at least 1.
///
/// # Errors
/// [`GradError::InvalidConfig`] naming the first that is 0.
pub(crate) fn check_sizes(sizes: &[(&'static str, usize)]) -> Result<(), GradError> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some(&(field, _)) => Err(GradError::InvalidConfig {
            field,
            value: 0.0,
            reason: "must be at least 1",
        }),
        None => Ok(()),
    }
}

/// Block length of [`ParamSet::global_norm`]'s summation order.
pub const NORM_BLOCK: usize = 1 << 13;

/// [`ParamSet::global_norm`] from its block sums ([`sum_of_squares`] of every tensor's blocks
/// of [`NORM_BLOCK`] entries, tensor by tensor, in order): their sum in order, square-rooted.
/// A pass that writes the gradient block by block can form the norm as it goes, with the same
/// bits as `global_norm` of the result.
#[must_use]
pub fn norm_of_block_sums(sums: &[f64]) -> f64 {
    sums.iter().sum::<f64>().sqrt()
}

/// `Σ x²` over one block of [`ParamSet::global_norm`], in `f64`, in eight lanes (entry `k`
/// in lane `k mod 8`) combined pairwise. The loop runs at the widest instruction set the
/// processor has ([`crate::simd`]); each lane sees the same operations in the same order at
/// every width, so the bits do not depend on it.
#[must_use]
pub fn sum_of_squares<S: Scalar>(xs: &[S]) -> f64 {
    let mut lanes = [0.0f64; 8];
    InstructionSet::Detect.dispatch(SumSquares {
        xs,
        lanes: &mut lanes,
    });
    let [a, b, c, d, e, f, g, h] = lanes;
    ((a + b) + (c + d)) + ((e + f) + (g + h))
}

simd_kernel! {
    /// `lanes[k mod 8] += x_k²` in `f64` ([`sum_of_squares`]).
    SumSquares<'a> { xs: &'a [S], lanes: &'a mut [f64; 8] }
    {
        let mut chunks = xs.chunks_exact(8);
        for c in &mut chunks {
            for (l, &x) in lanes.iter_mut().zip(c) {
                let x = x.to_f64();
                *l += x * x;
            }
        }
        for (l, &x) in lanes.iter_mut().zip(chunks.remainder()) {
            let x = x.to_f64();
            *l += x * x;
        }
    }
}
