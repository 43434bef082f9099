//! Gaussian elimination with partial pivoting of [`LANES`] independent `n x n` systems at
//! once, interleaved so that every scalar step of the elimination is one vector operation
//! across the systems: `P_l A_l = L_l U_l` for each lane `l`.
//!
//! **Layout.** A group of `LANES` matrices is one slice of `n²` lane vectors `[S; LANES]`:
//! entry `(i, j)` of lane `l` is `a[i * n + j][l]`. Right-hand sides are `n` lane vectors,
//! pivots `n` lane vectors of row indices. Lanes beyond the real systems (the last group of a
//! batch; [`crate::solve`] fills them with the identity) are not checked for singularity.
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
//! **Vectors.** The row updates of [`factor`] read a row of lane vectors as one flat slice
//! ([`Scalar::sub_mul_lanes_simd`], [`Scalar::sub_mul_panel_simd`]), so they run in the
//! widest vectors the processor has: on AVX-512 one 16-`f32` vector covers two entries (the
//! multipliers repeated). The solves keep one lane vector per entry ([`LANES`] `f32`, AVX2),
//! as their recurrences run along a row.
//!
//! A pivot whose magnitude is not above `n · ε · max|A_l|` (or is not finite) is reported with
//! its lane and column, as [`crate::solve::lu_in_place`] does.

use crate::scalar::Scalar;

/// Systems factorised together: one 256-bit vector of `f32` (two of `f64`; half an AVX-512
/// vector of `f32`).
pub const LANES: usize = 8;

/// Columns per panel of the blocked elimination (the trailing update keeps `PANEL`
/// multipliers and four accumulators in vector registers: 12 of AVX2's 16).
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

/// `x ← x − m ⊙ u`, lane-wise, in `simd`'s vectors ([`Scalar::sub_mul_simd`]).
#[inline(always)]
fn sub_mul<S: Scalar, A: pulp::Simd>(simd: A, x: &mut Lane<S>, m: &Lane<S>, u: &Lane<S>) {
    S::sub_mul_simd(simd, x, m, u);
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
pub fn factor<S: Scalar, A: pulp::Simd>(
    simd: A,
    a: &mut [Lane<S>],
    n: usize,
    piv: &mut [[usize; LANES]],
    active: usize,
) -> Result<(), LaneSingular> {
    assert!(
        a.len() == n * n && piv.len() == n,
        "lane_lu::factor: shapes"
    );
    let mut scale = [S::ZERO; LANES];
    for v in a.iter() {
        for l in 0..LANES {
            // `max` that skips NaN, written as the compare one vector instruction does.
            let x = v[l].abs();
            if x > scale[l] {
                scale[l] = x;
            }
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
            let urow = top[k * n + k + 1..k * n + k1].as_flattened();
            for row in bottom.chunks_exact_mut(n) {
                let mut m = row[k];
                for l in 0..LANES {
                    m[l] *= inv[l];
                }
                row[k] = m;
                S::sub_mul_lanes_simd(simd, row[k + 1..k1].as_flattened_mut(), &m, urow);
            }
        }
        if k1 < n {
            // Rows k0..k1 right of the panel: U₁₂ = L₁₁⁻¹ A₁₂ (by rows, in elimination order).
            for i in k0 + 1..k1 {
                let (above, rest) = a.split_at_mut(i * n);
                let row = &mut rest[..n];
                for p in k0..i {
                    let m = row[p];
                    let u = above[p * n + k1..(p + 1) * n].as_flattened();
                    S::sub_mul_lanes_simd(simd, row[k1..].as_flattened_mut(), &m, u);
                }
            }
            // A₂₂ ← A₂₂ − L₂₁ U₁₂, each entry receiving the panel's PANEL updates in order
            // in one pass (accumulated in registers), by rows of A₂₂ read as flat vectors,
            // two rows at a time so that each vector of U₁₂ is loaded once for both (1.3x
            // faster at n = 120 on AVX-512 than row by row).
            let (top, bottom) = a.split_at_mut(k1 * n);
            let u: [&[S]; PANEL] =
                core::array::from_fn(|p| top[(k0 + p) * n + k1..(k0 + p + 1) * n].as_flattened());
            let mut pairs = bottom.chunks_exact_mut(2 * n);
            for rows in &mut pairs {
                let (r0, r1) = rows.split_at_mut(n);
                let m0: [Lane<S>; PANEL] = core::array::from_fn(|p| r0[k0 + p]);
                let m1: [Lane<S>; PANEL] = core::array::from_fn(|p| r1[k0 + p]);
                S::sub_mul_panel2_simd(
                    simd,
                    [r0[k1..].as_flattened_mut(), r1[k1..].as_flattened_mut()],
                    [&m0, &m1],
                    &u,
                );
            }
            for row in pairs.into_remainder().chunks_exact_mut(n) {
                let m: [Lane<S>; PANEL] = core::array::from_fn(|p| row[k0 + p]);
                S::sub_mul_panel_simd(simd, row[k1..].as_flattened_mut(), &m, &u);
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
        // `>` is false for NaN, so a NaN pivot fails too.
        let usable = best[l] > tol[l] && best[l].is_finite();
        if !usable {
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
pub fn solve<S: Scalar, A: pulp::Simd>(
    simd: A,
    lu: &[Lane<S>],
    n: usize,
    piv: &[[usize; LANES]],
    b: &mut [Lane<S>],
) {
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
            sub_mul(simd, &mut s, m, y);
        }
        rest[0] = s;
    }
    for i in (0..n).rev() {
        let (head, done) = b.split_at_mut(i + 1);
        let mut s = head[i];
        for (u, x) in lu[i * n + i + 1..(i + 1) * n].iter().zip(done.iter()) {
            sub_mul(simd, &mut s, u, x);
        }
        let d = lu[i * n + i];
        for l in 0..LANES {
            s[l] /= d[l];
        }
        head[i] = s;
    }
}

/// Solves `A_lᵀ x_l = b_l` in place in `b` from the factors of [`factor`]: `Uᵀ w = b`
/// (forward), `Lᵀ v = w` (backward, unit diagonal), `x = Pᵀ v`, each by rows of the factors.
#[inline(always)]
pub fn solve_transposed<S: Scalar, A: pulp::Simd>(
    simd: A,
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
            w[l] /= d[l];
        }
        head[i] = w;
        for (x, u) in rest.iter_mut().zip(&lu[i * n + i + 1..(i + 1) * n]) {
            sub_mul(simd, x, &w, u);
        }
    }
    for i in (1..n).rev() {
        let (head, rest) = b.split_at_mut(i);
        let v = rest[0];
        for (x, m) in head.iter_mut().zip(&lu[i * n..i * n + i]) {
            sub_mul(simd, x, &v, m);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    /// Unblocked Gaussian elimination with partial pivoting of one row-major system, the
    /// textbook loop order: the reference the interleaved blocked code must equal bit for bit.
    fn reference_lu(a: &mut [f32], n: usize) -> Result<Vec<usize>, usize> {
        let scale = a.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let tol = n as f32 * f32::EPSILON * scale;
        let mut piv = vec![0; n];
        for k in 0..n {
            let mut p = k;
            for i in k + 1..n {
                if a[i * n + k].abs() > a[p * n + k].abs() {
                    p = i;
                }
            }
            let best = a[p * n + k].abs();
            let usable = best > tol && best.is_finite();
            if !usable {
                return Err(k);
            }
            piv[k] = p;
            for j in 0..n {
                a.swap(k * n + j, p * n + j);
            }
            let inv = 1.0 / a[k * n + k];
            for i in k + 1..n {
                let m = a[i * n + k] * inv;
                a[i * n + k] = m;
                for j in k + 1..n {
                    a[i * n + j] -= m * a[k * n + j];
                }
            }
        }
        Ok(piv)
    }

    /// The reference's solves, in the loop order of [`solve`] and [`solve_transposed`].
    fn reference_solves(lu: &[f32], n: usize, piv: &[usize], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let mut x = b.to_vec();
        for k in 0..n {
            x.swap(k, piv[k]);
        }
        for i in 0..n {
            for p in 0..i {
                x[i] -= lu[i * n + p] * x[p];
            }
        }
        for i in (0..n).rev() {
            for p in i + 1..n {
                x[i] -= lu[i * n + p] * x[p];
            }
            x[i] /= lu[i * n + i];
        }
        let mut t = b.to_vec();
        for i in 0..n {
            t[i] /= lu[i * n + i];
            for j in i + 1..n {
                t[j] -= t[i] * lu[i * n + j];
            }
        }
        for i in (1..n).rev() {
            for j in 0..i {
                t[j] -= t[i] * lu[i * n + j];
            }
        }
        for k in (0..n).rev() {
            t.swap(k, piv[k]);
        }
        (x, t)
    }

    /// Interleaves `LANES` row-major matrices (or vectors).
    fn interleave(ms: &[Vec<f32>]) -> Vec<Lane<f32>> {
        (0..ms[0].len())
            .map(|e| core::array::from_fn(|l| ms[l][e]))
            .collect()
    }

    fn random(rng: &mut rand_chacha::ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
    }

    /// Random dense matrices (which pivot at most steps), one lane with a zero leading
    /// entry (must swap at step 0) and one diagonal (never pivots), at sizes below, at and
    /// across panels: factors, pivots and both solves equal the unblocked reference bit for
    /// bit, with the scalar fallback and with AVX2 where the processor has it.
    #[test]
    fn interleaved_blocked_elimination_equals_unblocked_reference_bitwise() {
        check_bitwise(pulp::Scalar::new());
        // Compiled for each instruction set (inlined into pulp's dispatched function), as
        // `crate::solve` runs it: AVX2, and AVX-512 whose vectors cover two entries.
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            pulp::Simd::vectorize(v3, CheckBitwise);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = pulp::x86::V4::try_new() {
            pulp::Simd::vectorize(v4, CheckBitwise);
        }
    }

    struct CheckBitwise;

    impl pulp::WithSimd for CheckBitwise {
        type Output = ();

        #[inline(always)]
        fn with_simd<A: pulp::Simd>(self, simd: A) {
            check_bitwise(simd);
        }
    }

    #[inline(always)]
    fn check_bitwise<A: pulp::Simd>(simd: A) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for n in [1, 2, 7, PANEL, PANEL + 1, 3 * PANEL + 3, 60, 120] {
            let mut ms: Vec<Vec<f32>> = (0..LANES).map(|_| random(&mut rng, n * n)).collect();
            if n > 1 {
                ms[1][0] = 0.0;
            }
            ms[2] = (0..n * n)
                .map(|e| if e % (n + 1) == 0 { 1.5 } else { 0.0 })
                .collect();
            let bs: Vec<Vec<f32>> = (0..LANES).map(|_| random(&mut rng, n)).collect();
            let mut a = interleave(&ms);
            let mut piv = vec![[0; LANES]; n];
            factor(simd, &mut a, n, &mut piv, LANES).unwrap_or_else(|e| panic!("{e:?}"));
            let (mut x, mut t) = (interleave(&bs), interleave(&bs));
            solve(simd, &a, n, &piv, &mut x);
            solve_transposed(simd, &a, n, &piv, &mut t);
            let mut swapped = 0;
            for l in 0..LANES {
                let mut r = ms[l].clone();
                let rp = reference_lu(&mut r, n).unwrap();
                for e in 0..n * n {
                    assert_eq!(
                        a[e][l].to_bits(),
                        r[e].to_bits(),
                        "n {n} lane {l} entry {e}"
                    );
                }
                for k in 0..n {
                    assert_eq!(piv[k][l], rp[k], "n {n} lane {l} pivot {k}");
                    swapped += usize::from(rp[k] != k);
                }
                let (rx, rt) = reference_solves(&r, n, &rp, &bs[l]);
                for i in 0..n {
                    assert_eq!(x[i][l].to_bits(), rx[i].to_bits(), "n {n} lane {l} x[{i}]");
                    assert_eq!(t[i][l].to_bits(), rt[i].to_bits(), "n {n} lane {l} xᵀ[{i}]");
                }
                if l == 2 {
                    assert!(rp.iter().enumerate().all(|(k, &p)| p == k));
                }
            }
            assert!(n == 1 || swapped > 0, "the pivoting path was not exercised");
        }
    }

    /// Accuracy against `f64`, on well- and ill-conditioned systems (condition numbers up
    /// to about 1e4, by graded row scalings of a random orthogonal-like matrix): the
    /// normwise backward error `‖b − A x‖∞ / (‖A‖∞ ‖x‖∞)` of the `f32` solution, computed in
    /// `f64`, stays within `4 n ε₃₂` (partial pivoting's backward error is a small multiple of
    /// `n ε` times the growth, which is modest for these matrices), and for the
    /// well-conditioned lanes the forward error against the `f64` solution is below
    /// `cond · 4 n ε₃₂` with `cond ≤ 100`.
    #[test]
    fn solutions_are_backward_stable_on_ill_conditioned_systems() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = 60;
        let mut ms = Vec::new();
        for l in 0..LANES {
            // Lanes 0-3: I + 0.3 R / √n (cond ≈ 2); lanes 4-7: rows scaled by 10^(-4 i / n)
            // (cond about 1e4; smaller pivots would fall below the singularity threshold).
            let r = random(&mut rng, n * n);
            let mut m: Vec<f32> = (0..n * n)
                .map(|e| {
                    let diag = if e % (n + 1) == 0 { 1.0 } else { 0.0 };
                    diag + 0.3 * r[e] / (n as f32).sqrt()
                })
                .collect();
            if l >= 4 {
                for i in 0..n {
                    let s = 10f32.powf(-4.0 * i as f32 / n as f32);
                    for x in &mut m[i * n..(i + 1) * n] {
                        *x *= s;
                    }
                }
            }
            ms.push(m);
        }
        let bs: Vec<Vec<f32>> = (0..LANES).map(|_| random(&mut rng, n)).collect();
        let mut a = interleave(&ms);
        let mut piv = vec![[0; LANES]; n];
        let simd = pulp::Scalar::new();
        factor(simd, &mut a, n, &mut piv, LANES).unwrap();
        let mut x = interleave(&bs);
        solve(simd, &a, n, &piv, &mut x);
        let eps = f64::from(f32::EPSILON);
        for l in 0..LANES {
            let am = |i: usize, j: usize| f64::from(ms[l][i * n + j]);
            let xl: Vec<f64> = (0..n).map(|i| f64::from(x[i][l])).collect();
            let norm_a = (0..n)
                .map(|i| (0..n).map(|j| am(i, j).abs()).sum::<f64>())
                .fold(0.0, f64::max);
            let norm_x = xl.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let res = (0..n)
                .map(|i| {
                    let ax: f64 = (0..n).map(|j| am(i, j) * xl[j]).sum();
                    (f64::from(bs[l][i]) - ax).abs()
                })
                .fold(0.0, f64::max);
            let backward = res / (norm_a * norm_x);
            assert!(
                backward < 4.0 * n as f64 * eps,
                "lane {l}: backward error {backward:e}"
            );
            if l < 4 {
                // The f64 solution of the same (f32-rounded) system, by the reference LU in f64.
                let mut lu: Vec<f64> = ms[l].iter().map(|&v| f64::from(v)).collect();
                let mut p: Vec<usize> = vec![0; n];
                crate::solve::lu_in_place(&mut lu, n, &mut p, 0).unwrap();
                let mut x64: Vec<f64> = bs[l].iter().map(|&v| f64::from(v)).collect();
                crate::solve::lu_solve(&lu, n, &p, &mut x64);
                let err = (0..n).map(|i| (xl[i] - x64[i]).abs()).fold(0.0, f64::max);
                let scale = x64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                assert!(
                    err < 100.0 * 4.0 * n as f64 * eps * scale,
                    "lane {l}: error {err:e}"
                );
            }
        }
    }

    /// A singular active lane is reported with its lane and column; the same matrix in an
    /// inactive lane (beyond `active`) is not.
    #[test]
    fn singular_lane_is_reported_only_when_active() {
        let n = 3;
        let mut ms: Vec<Vec<f32>> = (0..LANES)
            .map(|_| vec![2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 4.0])
            .collect();
        // Rows 0 and 2 proportional: elimination finds no pivot in column 2.
        ms[5] = vec![1.0, 2.0, 3.0, 0.0, 1.0, 1.0, 2.0, 4.0, 6.0];
        let simd = pulp::Scalar::new();
        let mut piv = vec![[0; LANES]; n];
        let mut a = interleave(&ms);
        let e = factor(simd, &mut a, n, &mut piv, LANES).unwrap_err();
        assert_eq!((e.lane, e.column), (5, 2));
        let mut a = interleave(&ms);
        assert!(factor(simd, &mut a, n, &mut piv, 5).is_ok());
    }
}
