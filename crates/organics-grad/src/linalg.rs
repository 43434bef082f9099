//! Dense kernels on row-major slices: GEMM through faer and a few BLAS-1 helpers.
//!
//! A row-major matrix is `(slice, rows, cols, row_stride)`; element `(i, j)` lives at
//! `slice[i * row_stride + j]`. Batched activations are `batch x features`; a weight matrix
//! `W` is stored `out x in`, so a linear map of a batch is `X Wᵀ`.
//!
//! [`gemm`] computes
//!
//! ```text
//! C ← β C + op(A) op(B),      β ∈ {0, 1}
//! ```
//!
//! with faer's GEMM and `Par::Seq` (parallelism is applied at the coarser batch level, see
//! [`crate::bptt`]).

use crate::scalar::Scalar;
use faer::{Accum, MatMut, MatRef, Par};

/// Whether an operand enters a product as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trans {
    /// Use the matrix as stored.
    No,
    /// Use its transpose.
    Yes,
}

/// Whether a product overwrites or accumulates into its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beta {
    /// `C = A B`.
    Overwrite,
    /// `C += A B`.
    Accumulate,
}

/// A read-only row-major view.
#[derive(Debug, Clone, Copy)]
pub struct View<'a, S> {
    /// Backing storage (at least `(rows - 1) * stride + cols` long).
    pub data: &'a [S],
    /// Stored rows.
    pub rows: usize,
    /// Stored columns.
    pub cols: usize,
    /// Distance between the starts of consecutive rows.
    pub stride: usize,
}

impl<'a, S: Scalar> View<'a, S> {
    /// A contiguous `rows x cols` view.
    #[track_caller]
    pub fn new(data: &'a [S], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A view with an explicit row stride.
    #[track_caller]
    pub fn strided(data: &'a [S], rows: usize, cols: usize, stride: usize) -> Self {
        assert!(stride >= cols, "row stride {stride} < cols {cols}");
        let need = needed(rows, cols, stride);
        assert!(
            data.len() >= need,
            "view {rows}x{cols}/{stride} needs {need} elements, have {}",
            data.len()
        );
        Self {
            data: &data[..need],
            rows,
            cols,
            stride,
        }
    }

    fn faer(&self, t: Trans) -> MatRef<'a, S> {
        let m = if self.rows == 0 || self.cols == 0 {
            MatRef::from_row_major_slice(&self.data[..0], self.rows, self.cols)
        } else {
            MatRef::from_row_major_slice_with_stride(self.data, self.rows, self.cols, self.stride)
        };
        match t {
            Trans::No => m,
            Trans::Yes => m.transpose(),
        }
    }

    fn shape(&self, t: Trans) -> (usize, usize) {
        match t {
            Trans::No => (self.rows, self.cols),
            Trans::Yes => (self.cols, self.rows),
        }
    }
}

/// A mutable row-major view.
#[derive(Debug)]
pub struct ViewMut<'a, S> {
    /// Backing storage.
    pub data: &'a mut [S],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between the starts of consecutive rows.
    pub stride: usize,
}

impl<'a, S: Scalar> ViewMut<'a, S> {
    /// A contiguous `rows x cols` view.
    #[track_caller]
    pub fn new(data: &'a mut [S], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A view with an explicit row stride.
    #[track_caller]
    pub fn strided(data: &'a mut [S], rows: usize, cols: usize, stride: usize) -> Self {
        assert!(stride >= cols, "row stride {stride} < cols {cols}");
        let need = needed(rows, cols, stride);
        assert!(
            data.len() >= need,
            "view {rows}x{cols}/{stride} needs {need} elements, have {}",
            data.len()
        );
        Self {
            data: &mut data[..need],
            rows,
            cols,
            stride,
        }
    }
}

fn needed(rows: usize, cols: usize, stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    }
}

/// `C (=|+=) op(A) op(B)` with faer's sequential GEMM.
///
/// # Panics
/// If the shapes do not agree.
#[track_caller]
pub fn gemm<S: Scalar>(
    c: ViewMut<'_, S>,
    beta: Beta,
    a: View<'_, S>,
    ta: Trans,
    b: View<'_, S>,
    tb: Trans,
) {
    let (m, k) = a.shape(ta);
    let (k2, n) = b.shape(tb);
    assert!(
        k == k2 && c.rows == m && c.cols == n,
        "gemm shapes: C {}x{} = A {m}x{k} * B {k2}x{n}",
        c.rows,
        c.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    let (rows, cols, stride) = (c.rows, c.cols, c.stride);
    // faer 0.24.4's `MatMut::from_row_major_slice_with_stride_mut` builds a column-major view
    // (strides swapped) and writes out of bounds; the transposed column-major view is correct.
    let cm: MatMut<'_, S> =
        MatMut::from_column_major_slice_with_stride_mut(c.data, cols, rows, stride).transpose_mut();
    if k == 0 {
        if beta == Beta::Overwrite {
            let mut cm = cm;
            for i in 0..m {
                for j in 0..n {
                    cm[(i, j)] = S::ZERO;
                }
            }
        }
        return;
    }
    let accum = match beta {
        Beta::Overwrite => Accum::Replace,
        Beta::Accumulate => Accum::Add,
    };
    faer::linalg::matmul::matmul(cm, accum, a.faer(ta), b.faer(tb), S::ONE, Par::Seq);
}

/// Floating-point operations of one `m x k` by `k x n` product (`2 m k n`).
#[must_use]
pub fn gemm_flops(m: usize, k: usize, n: usize) -> f64 {
    2.0 * m as f64 * k as f64 * n as f64
}

/// `y += alpha * x`.
#[inline(always)]
pub fn axpy<S: Scalar>(y: &mut [S], alpha: S, x: &[S]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `y += x`.
#[inline(always)]
pub fn add_assign<S: Scalar>(y: &mut [S], x: &[S]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}

/// Euclidean dot product.
#[inline(always)]
pub fn dot<S: Scalar>(x: &[S], y: &[S]) -> S {
    let mut s = S::ZERO;
    for (&a, &b) in x.iter().zip(y) {
        s += a * b;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive_loops_for_all_transposes() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        // Transposed copies, so that every (ta, tb) combination computes the same product.
        let mut at = vec![0.0; m * k];
        let mut bt = vec![0.0; k * n];
        for i in 0..m {
            for p in 0..k {
                at[p * m + i] = a[i * k + p];
            }
        }
        for p in 0..k {
            for j in 0..n {
                bt[j * k + p] = b[p * n + j];
            }
        }
        let mut naive = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                naive[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        for (ta, av, ar, ac) in [(Trans::No, &a, m, k), (Trans::Yes, &at, k, m)] {
            for (tb, bv, br, bc) in [(Trans::No, &b, k, n), (Trans::Yes, &bt, n, k)] {
                let mut c = vec![1.0; m * n];
                gemm(
                    ViewMut::new(&mut c, m, n),
                    Beta::Accumulate,
                    View::new(av, ar, ac),
                    ta,
                    View::new(bv, br, bc),
                    tb,
                );
                for (x, y) in c.iter().zip(&naive) {
                    // Four-term sums of O(1) numbers: a few ulps of rounding.
                    assert!((x - 1.0 - y).abs() < 1e-13);
                }
            }
        }
    }
}
