//! Gaussian elimination with partial pivoting of [`LANES`] independent `n x n` systems at
//! once, interleaved so that every scalar step of the elimination is one vector operation
//! across the systems: `P_l A_l = L_l U_l` for each lane `l`.
//!
//! **Layout.** A group of `LANES` matrices is one slice of `n²` lane vectors `[S; LANES]`:
//! entry `(i, j)` of lane `l` is `a[i * n + j][l]`. Right-hand sides are `n` lane vectors,
//! pivots `n` lane vectors of row indices. Lanes beyond the real systems (the last group of a
//! batch) hold the identity and are not checked.
//!
//! **Pivoting per lane.** Step `k` picks, in each lane separately, the row `p_l ≥ k` whose
//! entry in column `k` has the largest magnitude (the first such row; the diagonal when it
//! ties), and swaps rows `k` and `p_l` of that lane only. The elimination itself,
//!
//! ```text
//! l_ik = a_ik / a_kk   (computed as a_ik · (1 / a_kk)),     a_ij ← a_ij − l_ik · u_kj,
//! ```
//!
//! is the same sequence of operations in every lane, so it runs as vector arithmetic.
//!
//! **Blocking.** Columns are processed in panels of [`PANEL`]: within a panel the updates touch
//! only the panel's columns; then the panel's rows of `U` right of it are finished by forward
//! substitution, and the trailing matrix receives the panel's `PANEL` rank-one updates in one
//! pass per entry (`a_ij − l_ik₀ u_k₀j − l_i,k₀+1 u_k₀+1,j − …`, the accumulator held in
//! registers). Every entry receives exactly the updates of unblocked elimination, in the same
//! order and with the same roundings (no fused multiply-add), so the factors, the pivots and
//! the solutions are **bit-identical to unblocked Gaussian elimination with partial pivoting
//! of each system alone**; the tests check this.
//!
//! A pivot whose magnitude is not above `n · ε · max|A_l|` (or is not finite) is reported with
//! its lane and column, as [`crate::solve::lu_in_place`] does.

use crate::scalar::Scalar;

/// Systems factorised together: one 256-bit vector of `f32` (two of `f64`).
pub const LANES: usize = 8;

/// Columns per panel of the blocked elimination (the trailing update keeps `PANEL`
/// multipliers and one accumulator per lane in vector registers: 9 of AVX2's 16).
pub const PANEL: usize = 8;

/// One entry of the `LANES` interleaved systems.
pub type Lane<S> = [S; LANES];

/// A failed factorisation: `lane` found no usable pivot in `column` (best magnitude `pivot`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneSingular {
    /// Lane (system within the group).
    pub lane: usize,
    /// Column where elimination found no usable pivot.
    pub column: usize,
    /// Magnitude of the best pivot found.
    pub pivot: f64,
}

/// `x ← x − m ⊙ u`, lane-wise.
#[inline(always)]
fn sub_mul<S: Scalar>(x: &mut Lane<S>, m: &Lane<S>, u: &Lane<S>) {
    for l in 0..LANES {
        x[l] = x[l] - m[l] * u[l];
    }
}

/// Factorises the interleaved group `a` (`n²` lane vectors) in place, `P_l A_l = L_l U_l` with
/// unit-lower `L` below the diagonal and `U` on and above it, recording in `piv[k][l]` the row
/// swapped with row `k` at step `k` in lane `l` (as LAPACK's `getrf`). Only lanes
/// `0..active` are checked for singularity.
///
/// # Errors
/// [`LaneSingular`] for the first column (and, within it, the first active lane) without a
/// usable pivot.
///
/// # Panics
/// If `a` is not `n²` long or `piv` not `n`.
#[inline(always)]
pub fn factor<S: Scalar>(
    a: &mut [Lane<S>],
    n: usize,
    piv: &mut [[usize; LANES]],
    active: usize,
) -> Result<(), LaneSingular> {
    assert!(a.len() == n * n && piv.len() == n, "lane_lu::factor: shapes");
    let mut scale = [S::ZERO; LANES];
    for v in a.iter() {
        for l in 0..LANES {
            scale[l] = scale[l].max(v[l].abs());
        }
    }
    let nf = S::from_f64(n as f64);
    let tol = scale.map(|s| nf * S::EPSILON * s);
    let mut k0 = 0;
    while k0 < n {
        let k1 = (k0 + PANEL).min(n);
        for k in k0..k1 {
            pivot_and_swap(a, n, k, &tol, active, &mut piv[k])?;
            let inv = a[k * n + k].map(|x| S::ONE / x);
            let (top, bottom) = a.split_at_mut((k + 1) * n);
            let urow = &top[k * n + k + 1..k * n + k1];
            for row in bottom.chunks_exact_mut(n) {
                let mut m = row[k];
                for l in 0..LANES {
                    m[l] = m[l] * inv[l];
                }
                row[k] = m;
                for (x, u) in row[k + 1..k1].iter_mut().zip(urow) {
                    sub_mul(x, &m, u);
                }
            }
        }
        if k1 < n {
            // Rows k0..k1 right of the panel: U₁₂ = L₁₁⁻¹ A₁₂ (by rows, in elimination order).
            for i in k0 + 1..k1 {
                let (above, rest) = a.split_at_mut(i * n);
                let row = &mut rest[..n];
                for p in k0..i {
                    let m = row[p];
                    for (x, u) in row[k1..].iter_mut().zip(&above[p * n + k1..(p + 1) * n]) {
                        sub_mul(x, &m, u);
                    }
                }
            }
            // A₂₂ ← A₂₂ − L₂₁ U₁₂, entry by entry over the panel's PANEL columns in order
            // (k1 < n, so the panel is full).
            let (top, bottom) = a.split_at_mut(k1 * n);
            let u: [&[Lane<S>]; PANEL] =
                core::array::from_fn(|p| &top[(k0 + p) * n + k1..(k0 + p + 1) * n]);
            for row in bottom.chunks_exact_mut(n) {
                let m: [Lane<S>; PANEL] = core::array::from_fn(|p| row[k0 + p]);
                for (j, x) in row[k1..].iter_mut().enumerate() {
                    let mut acc = *x;
                    for p in 0..PANEL {
                        sub_mul(&mut acc, &m[p], &u[p][j]);
                    }
                    *x = acc;
                }
            }
        }
        k0 = k1;
    }
    Ok(())
}

/// Step `k`'s pivot search and row swap, lane by lane.
#[inline(always)]
fn pivot_and_swap<S: Scalar>(
    a: &mut [Lane<S>],
    n: usize,
    k: usize,
    tol: &Lane<S>,
    active: usize,
    piv: &mut [usize; LANES],
) -> Result<(), LaneSingular> {
    let mut best = a[k * n + k].map(S::abs);
    let mut p = [k; LANES];
    for i in k + 1..n {
        let v = a[i * n + k];
        for l in 0..LANES {
            let x = v[l].abs();
            if x > best[l] {
                best[l] = x;
                p[l] = i;
            }
        }
    }
    for l in 0..active.min(LANES) {
        if !(best[l] > tol[l]) || !best[l].is_finite() {
            return Err(LaneSingular {
                lane: l,
                column: k,
                pivot: best[l].to_f64(),
            });
        }
    }
    *piv = p;
    for (l, &pl) in p.iter().enumerate() {
        if pl != k {
            let (top, bottom) = a.split_at_mut(pl * n);
            for (x, y) in top[k * n..(k + 1) * n].iter_mut().zip(&mut bottom[..n]) {
                core::mem::swap(&mut x[l], &mut y[l]);
            }
        }
    }
    Ok(())
}

/// Solves `A_l x_l = b_l` in place in `b` (`n` lane vectors) from the factors of [`factor`].
#[inline(always)]
pub fn solve<S: Scalar>(lu: &[Lane<S>], n: usize, piv: &[[usize; LANES]], b: &mut [Lane<S>]) {
    for (k, p) in piv.iter().enumerate() {
        for (l, &pl) in p.iter().enumerate() {
            let t = b[k][l];
            b[k][l] = b[pl][l];
            b[pl][l] = t;
        }
    }
    // L y = P b (unit diagonal), then U x = y; each by rows of the factors.
    for i in 1..n {
        let (done, rest) = b.split_at_mut(i);
        let mut s = rest[0];
        for (m, y) in lu[i * n..i * n + i].iter().zip(done.iter()) {
            sub_mul(&mut s, m, y);
        }
        rest[0] = s;
    }
    for i in (0..n).rev() {
        let (head, done) = b.split_at_mut(i + 1);
        let mut s = head[i];
        for (u, x) in lu[i * n + i + 1..(i + 1) * n].iter().zip(done.iter()) {
            sub_mul(&mut s, u, x);
        }
        let d = lu[i * n + i];
        for l in 0..LANES {
            s[l] = s[l] / d[l];
        }
        head[i] = s;
    }
}

/// Solves `A_lᵀ x_l = b_l` in place in `b` from the factors of [`factor`]: `Uᵀ w = b`
/// (forward), `Lᵀ v = w` (backward, unit diagonal), `x = Pᵀ v`, each by rows of the factors.
#[inline(always)]
pub fn solve_transposed<S: Scalar>(
    lu: &[Lane<S>],
    n: usize,
    piv: &[[usize; LANES]],
    b: &mut [Lane<S>],
) {
    for i in 0..n {
        let (head, rest) = b.split_at_mut(i + 1);
        let d = lu[i * n + i];
        let mut w = head[i];
        for l in 0..LANES {
            w[l] = w[l] / d[l];
        }
        head[i] = w;
        for (x, u) in rest.iter_mut().zip(&lu[i * n + i + 1..(i + 1) * n]) {
            sub_mul(x, &w, u);
        }
    }
    for i in (1..n).rev() {
        let (head, rest) = b.split_at_mut(i);
        let v = rest[0];
        for (x, m) in head.iter_mut().zip(&lu[i * n..i * n + i]) {
            sub_mul(x, &v, m);
        }
    }
    for (k, p) in piv.iter().enumerate().rev() {
        for (l, &pl) in p.iter().enumerate() {
            let t = b[k][l];
            b[k][l] = b[pl][l];
            b[pl][l] = t;
        }
    }
}
