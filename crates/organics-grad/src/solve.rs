//! Batched per-sample dense linear solves `A_b x_b = r_b` (one `n x n` system per batch row),
//! used by the fixed-point layer's iterative algorithm.
//!
//! Each system is factorised in place by Gaussian elimination with partial pivoting,
//! `P A = L U`. The vector-Jacobian product of `x = A⁻¹ r` is
//!
//! ```text
//! λ = A⁻ᵀ g,      r̄ += λ,      Ā += −λ xᵀ,
//! ```
//!
//! where the transposed solve reuses the stored factors: `Aᵀ = Uᵀ Lᵀ P`.
//!
//! A pivot whose magnitude is below `n · ε · max|A|` is reported as
//! [`GradError::SingularSystem`].

use crate::error::GradError;
use crate::scalar::Scalar;

/// Factorises the row-major `n x n` matrix `a` in place (`P A = L U`, unit-lower `L` below the
/// diagonal, `U` on and above it), recording row swaps in `piv`.
///
/// # Errors
/// [`GradError::SingularSystem`] (with `sample`) when a pivot is too small.
pub fn lu_in_place<S: Scalar>(
    a: &mut [S],
    n: usize,
    piv: &mut [usize],
    sample: usize,
) -> Result<(), GradError> {
    let scale = a.iter().fold(S::ZERO, |m, &x| m.max(x.abs()));
    let tol = S::from_f64(n as f64) * S::EPSILON * scale;
    for k in 0..n {
        let mut p = k;
        let mut best = a[k * n + k].abs();
        for i in k + 1..n {
            let v = a[i * n + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        if best <= tol || !best.is_finite() || best.to_f64().is_nan() {
            return Err(GradError::SingularSystem {
                sample,
                column: k,
                pivot: best.to_f64(),
            });
        }
        piv[k] = p;
        if p != k {
            for j in 0..n {
                a.swap(k * n + j, p * n + j);
            }
        }
        let (top, bottom) = a.split_at_mut((k + 1) * n);
        let pivot_row = &top[k * n..(k + 1) * n];
        let inv = S::ONE / pivot_row[k];
        for i in 0..n - k - 1 {
            let row = &mut bottom[i * n..(i + 1) * n];
            let l = row[k] * inv;
            row[k] = l;
            for j in k + 1..n {
                row[j] -= l * pivot_row[j];
            }
        }
    }
    Ok(())
}

/// Solves `A x = b` in place in `b` from the factors of [`lu_in_place`].
pub fn lu_solve<S: Scalar>(lu: &[S], n: usize, piv: &[usize], b: &mut [S]) {
    for k in 0..n {
        b.swap(k, piv[k]);
    }
    for i in 0..n {
        let mut s = b[i];
        for j in 0..i {
            s -= lu[i * n + j] * b[j];
        }
        b[i] = s;
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for j in i + 1..n {
            s -= lu[i * n + j] * b[j];
        }
        b[i] = s / lu[i * n + i];
    }
}

/// Solves `Aᵀ x = b` in place in `b` from the factors of [`lu_in_place`].
pub fn lu_solve_transposed<S: Scalar>(lu: &[S], n: usize, piv: &[usize], b: &mut [S]) {
    // Uᵀ w = b (forward), Lᵀ v = w (backward, unit diagonal), x = Pᵀ v.
    for i in 0..n {
        let mut s = b[i];
        for j in 0..i {
            s -= lu[j * n + i] * b[j];
        }
        b[i] = s / lu[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for j in i + 1..n {
            s -= lu[j * n + i] * b[j];
        }
        b[i] = s;
    }
    for k in (0..n).rev() {
        b.swap(k, piv[k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_and_transposed_solve_invert_a_pivoting_matrix() {
        // Zero top-left entry forces a row swap.
        let a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, -1.0, 4.0f64];
        let x = [1.0, -2.0, 0.5];
        let mut b = [0.0; 3];
        let mut bt = [0.0; 3];
        for i in 0..3 {
            for j in 0..3 {
                b[i] += a[i * 3 + j] * x[j];
                bt[i] += a[j * 3 + i] * x[j];
            }
        }
        let mut lu = a.clone();
        let mut piv = [0; 3];
        lu_in_place(&mut lu, 3, &mut piv, 0).unwrap();
        lu_solve(&lu, 3, &piv, &mut b);
        lu_solve_transposed(&lu, 3, &piv, &mut bt);
        for i in 0..3 {
            // Well-conditioned 3 x 3 system: residual at the level of a few ulps.
            assert!((b[i] - x[i]).abs() < 1e-13);
            assert!((bt[i] - x[i]).abs() < 1e-13);
        }
    }

    #[test]
    fn singular_matrix_is_an_error() {
        let mut a = vec![1.0, 2.0, 2.0, 4.0f64];
        let mut piv = [0; 2];
        assert!(matches!(
            lu_in_place(&mut a, 2, &mut piv, 3),
            Err(GradError::SingularSystem {
                sample: 3,
                column: 1,
                ..
            })
        ));
    }
}
