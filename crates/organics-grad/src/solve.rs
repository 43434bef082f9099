//! Batched per-sample dense linear solves `A_b x_b = r_b` (one `n x n` system per batch row),
//! used by the fixed-point layer's iterative algorithm, and the layer's tape operations: the
//! system matrices `M_b = I − W + diag(d_b) W` ([`Tape::diag_gain_system`]), the solves
//! ([`Tape::batched_solve`]), and both fused into one ([`Tape::diag_gain_solve`], the one the
//! layer uses), each forward pass next to its VJP.
//!
//! Each system is factorised in place by Gaussian elimination with partial pivoting,
//! `P A = L U`: one system at a time by [`lu_in_place`] (blocked, faer GEMM trailing updates)
//! for [`Tape::batched_solve`], and [`crate::lane_lu::LANES`] systems at once, interleaved and
//! vectorised across them, by [`crate::lane_lu`] for [`Tape::diag_gain_solve`] (whose factor
//! buffer holds the groups interleaved, the last group padded with identity systems). The
//! vector-Jacobian product of `x = A⁻¹ r` is
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
use crate::lane_lu::{self, LANES, Lane};
use crate::linalg::{Beta, Trans, View, ViewMut, gemm};
use crate::scalar::Scalar;
use crate::simd::InstructionSet;
use crate::tape::{Op, Tape, Var, VjpCtx};

/// Columns per panel of the blocked factorisation: the panel is eliminated column by column,
/// the rest of the matrix once per panel by one GEMM of inner dimension `PANEL` (level-3 work
/// for all but `O(n² · PANEL)` of the `⅔ n³` operations).
const PANEL: usize = 16;

/// Factorises the row-major `n x n` matrix `a` in place (`P A = L U`, unit-lower `L` below the
/// diagonal, `U` on and above it), recording row swaps in `piv` (row `k` was swapped with row
/// `piv[k] ≥ k` at step `k`, as LAPACK's `getrf` records them).
///
/// Right-looking and blocked by panels of `PANEL` (16) columns: within a panel (copied to a
/// column-major buffer, so that its column operations are contiguous) each column picks
/// the largest remaining entry as pivot (partial pivoting, the same choice as the unblocked
/// elimination) and updates only the panel; then `U₁₂ = L₁₁⁻¹ A₁₂` and the trailing matrix
/// `A₂₂ ← A₂₂ − L₂₁ U₁₂` in one GEMM. The factors equal the unblocked elimination's up to
/// rounding (the sums are taken in a different order).
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
    let mut neg_l: Vec<S> = Vec::new();
    // The panel, column-major (`m` rows per column), so that the pivot search and the column
    // updates inside it run over contiguous memory.
    let mut panel: Vec<S> = Vec::new();
    let mut k0 = 0;
    while k0 < n {
        let k1 = (k0 + PANEL).min(n);
        let (m, w) = (n - k0, k1 - k0);
        panel.clear();
        for j in k0..k1 {
            panel.extend((k0..n).map(|i| a[i * n + j]));
        }
        for jj in 0..w {
            let k = k0 + jj;
            let col = &panel[jj * m..(jj + 1) * m];
            let mut p = jj;
            let mut best = col[jj].abs();
            for (i, v) in col.iter().enumerate().skip(jj + 1) {
                if v.abs() > best {
                    best = v.abs();
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
            piv[k] = k0 + p;
            if p != jj {
                // Whole rows of `a` (the panel's columns there are overwritten below) and the
                // panel's copy.
                let (top, bottom) = a.split_at_mut((k0 + p) * n);
                top[k * n..(k + 1) * n].swap_with_slice(&mut bottom[..n]);
                for c in panel.chunks_exact_mut(m) {
                    c.swap(jj, p);
                }
            }
            let (left, right) = panel.split_at_mut((jj + 1) * m);
            let col = &mut left[jj * m..];
            let inv = S::ONE / col[jj];
            for x in &mut col[jj + 1..] {
                *x *= inv;
            }
            let col = &col[jj + 1..];
            for c in right.chunks_exact_mut(m) {
                let u = c[jj];
                crate::linalg::axpy(&mut c[jj + 1..], -u, col);
            }
        }
        for (jj, c) in panel.chunks_exact(m).enumerate() {
            for (i, &x) in c.iter().enumerate() {
                a[(k0 + i) * n + k0 + jj] = x;
            }
        }
        if k1 < n {
            // U₁₂ = L₁₁⁻¹ A₁₂ (unit lower triangular, forward substitution by rows).
            for i in k0 + 1..k1 {
                let (above, row) = a.split_at_mut(i * n);
                let row = &mut row[..n];
                for p in k0..i {
                    let l = row[p];
                    crate::linalg::axpy(&mut row[k1..], -l, &above[p * n + k1..(p + 1) * n]);
                }
            }
            // A₂₂ += (−L₂₁) U₁₂.
            let m = n - k1;
            neg_l.clear();
            for i in k1..n {
                neg_l.extend(a[i * n + k0..i * n + k1].iter().map(|&x| -x));
            }
            let (top, bottom) = a.split_at_mut(k1 * n);
            crate::linalg::gemm(
                ViewMut::strided(&mut bottom[k1..], m, m, n),
                Beta::Accumulate,
                View::new(&neg_l, m, w),
                Trans::No,
                View::strided(&top[k0 * n + k1..], w, m, n),
                Trans::No,
            );
        }
        k0 = k1;
    }
    Ok(())
}

/// Solves `A x = b` in place in `b` from the factors of [`lu_in_place`].
#[inline(always)]
pub fn lu_solve<S: Scalar>(lu: &[S], n: usize, piv: &[usize], b: &mut [S]) {
    for k in 0..n {
        b.swap(k, piv[k]);
    }
    for i in 0..n {
        let s = b[i] - crate::linalg::dot(&lu[i * n..i * n + i], &b[..i]);
        b[i] = s;
    }
    for i in (0..n).rev() {
        let s = b[i] - crate::linalg::dot(&lu[i * n + i + 1..(i + 1) * n], &b[i + 1..]);
        b[i] = s / lu[i * n + i];
    }
}

/// Solves `Aᵀ x = b` in place in `b` from the factors of [`lu_in_place`].
#[inline(always)]
pub fn lu_solve_transposed<S: Scalar>(lu: &[S], n: usize, piv: &[usize], b: &mut [S]) {
    // Uᵀ w = b (forward), Lᵀ v = w (backward, unit diagonal), x = Pᵀ v; each by rows of the
    // factors (column `i` of `Uᵀ` is row `i` of `U`), so every inner loop is contiguous.
    for i in 0..n {
        let w = b[i] / lu[i * n + i];
        b[i] = w;
        crate::linalg::axpy(&mut b[i + 1..], -w, &lu[i * n + i + 1..(i + 1) * n]);
    }
    for i in (0..n).rev() {
        let v = b[i];
        crate::linalg::axpy(&mut b[..i], -v, &lu[i * n..i * n + i]);
    }
    for k in (0..n).rev() {
        b.swap(k, piv[k]);
    }
}

/// The tape operations of the fixed-point layer's iterative algorithm: its per-sample system
/// matrices and their solves, each forward pass next to its VJP.
impl<S: Scalar> Tape<S> {
    /// Per-sample system matrices `M_b = I − W + diag(d_b) W` (`batch x n²`, each row a
    /// row-major `n x n` matrix) from gains `d` (`batch x n`) and `W` (`n x n`).
    ///
    /// VJP: `d̄_{b,i} = Σ_j M̄_{b,ij} W_ij`, `W̄_ij += Σ_b (d_{b,i} − 1) M̄_{b,ij}`.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn diag_gain_system(&mut self, d: Var, w: Var) -> Var {
        let (nd, nw) = (self.node(d), self.node(w));
        let n = nd.cols;
        assert!(
            nw.rows == n && nw.cols == n,
            "diag_gain_system: W must be {n} x {n}"
        );
        let out = self.push(
            nd.rows,
            n * n,
            Op::DiagGainSystem(d, w),
            nd.needs_grad || nw.needs_grad,
            0,
            0,
        );
        let (lo, o) = self.out_split(out);
        let (dv, wv) = (Self::val(lo, &nd), Self::val(lo, &nw));
        for b in 0..nd.rows {
            let m = &mut o[b * n * n..(b + 1) * n * n];
            for i in 0..n {
                let g = dv[b * n + i] - S::ONE;
                for j in 0..n {
                    m[i * n + j] = g * wv[i * n + j];
                }
                m[i * n + i] += S::ONE;
            }
        }
        out
    }

    /// Per-sample solves `A_b x_b = r_b`: `a` is `batch x n²` (row-major systems), `r` is
    /// `batch x n`; returns `x` (`batch x n`). See [`crate::solve`].
    ///
    /// # Errors
    /// [`GradError::SingularSystem`] if a system is singular.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn batched_solve(&mut self, a: Var, r: Var) -> Result<Var, GradError> {
        let (na, nr) = (self.node(a), self.node(r));
        let n = nr.cols;
        assert!(
            na.rows == nr.rows && na.cols == n * n,
            "batched_solve: A must be batch x n²"
        );
        let out = self.push(
            nr.rows,
            n,
            Op::BatchedSolve(a, r),
            na.needs_grad || nr.needs_grad,
            na.len(),
            nr.len(),
        );
        let node = self.nodes[out.index()];
        let (lo, o) = self.values.split_at_mut(node.off);
        let o = &mut o[..node.len()];
        let lu = &mut self.aux[node.aux..node.aux + na.len()];
        lu.copy_from_slice(Self::val(lo, &na));
        o.copy_from_slice(Self::val(lo, &nr));
        let piv = &mut self.ints[node.ints..node.ints + nr.len()];
        for b in 0..nr.rows {
            let f = &mut lu[b * n * n..(b + 1) * n * n];
            let p = &mut piv[b * n..(b + 1) * n];
            crate::solve::lu_in_place(f, n, p, b)?;
            crate::solve::lu_solve(f, n, p, &mut o[b * n..(b + 1) * n]);
        }
        Ok(out)
    }
}

impl<S: Scalar> Tape<S> {
    /// `y_b = M_b⁻¹ c_b` with `M_b = I − W + diag(d_b) W`, for every batch row `b`: gains `d`
    /// and right-hand sides `c` are `batch x n`, `W` is `n x n`. The same as
    /// [`Tape::batched_solve`] of [`Tape::diag_gain_system`], fused: the `batch x n²` system
    /// matrices are formed only inside the factor buffer, and the VJP needs no `batch x n²`
    /// cotangent. With `λ_b = M_b⁻ᵀ ȳ_b` (the stored factors reused) and `M̄_b = −λ_b y_bᵀ`,
    ///
    /// ```text
    /// c̄ += Λ,    d̄ += −Λ ⊙ (Y Wᵀ),    W̄ += −((D − 1) ⊙ Λ)ᵀ Y,
    /// ```
    ///
    /// where `Λ`, `Y`, `D` stack `λ_b`, `y_b`, `d_b` as rows: two GEMMs over the batch.
    ///
    /// # Errors
    /// [`GradError::SingularSystem`] if a system is singular.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn diag_gain_solve(&mut self, d: Var, w: Var, c: Var) -> Result<Var, GradError> {
        let (nd, nw, nc) = (self.node(d), self.node(w), self.node(c));
        let n = nd.cols;
        assert!(
            nw.rows == n && nw.cols == n && nc.rows == nd.rows && nc.cols == n,
            "diag_gain_solve: d and c must be batch x {n}, W {n} x {n}"
        );
        let batch = nd.rows;
        let groups = batch.div_ceil(LANES);
        // Every entry of the output (`c`, then solved in place), of the factor buffer (the
        // systems are formed in it) and of the pivots is written below: no zero-fill.
        let out = self.push_overwritten(
            batch,
            n,
            Op::DiagGainSolve(d, w, c),
            nd.needs_grad || nw.needs_grad || nc.needs_grad,
            groups * LANES * n * n,
            groups * LANES * n,
        );
        let node = self.nodes[out.index()];
        let (lo, o) = self.values.split_at_mut(node.off);
        let o = &mut o[..node.len()];
        let (dv, wv) = (Self::val(lo, &nd), Self::val(lo, &nw));
        o.copy_from_slice(Self::val(lo, &nc));
        let lu = self.aux[node.aux..node.aux + groups * LANES * n * n]
            .as_chunks_mut::<LANES>()
            .0;
        let piv = self.ints[node.ints..node.ints + groups * LANES * n]
            .as_chunks_mut::<LANES>()
            .0;
        InstructionSet::Detect.dispatch(FactorSolve {
            d: dv,
            w: wv,
            lu,
            piv,
            y: o,
            n,
            system: System::Plain,
        })?;
        Ok(out)
    }
}

/// Copies rows `b0..b0 + active` of the row-major `batch x n` matrix `x` into the lane vectors
/// `out` (`out[i][l] = x[b0 + l][i]`, zero in the lanes beyond `active`).
#[inline(always)]
fn gather<S: Scalar>(x: &[S], n: usize, b0: usize, active: usize, out: &mut [Lane<S>]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = core::array::from_fn(|l| {
            if l < active {
                x[(b0 + l) * n + i]
            } else {
                S::ZERO
            }
        });
    }
}

/// The inverse of [`gather`] for the active lanes.
#[inline(always)]
fn scatter<S: Scalar>(v: &[Lane<S>], n: usize, b0: usize, active: usize, x: &mut [S]) {
    for (i, vi) in v.iter().enumerate() {
        for (l, &e) in vi.iter().enumerate().take(active) {
            x[(b0 + l) * n + i] = e;
        }
    }
}

/// The forward pass of [`Tape::diag_gain_solve`], compiled for the widest instruction set
/// (`simd`): for each group of [`LANES`] samples, form the `M_b` interleaved in the factor
/// buffer (lanes beyond the batch: the identity), factorise them together
/// ([`crate::lane_lu::factor`], whose row updates run as flat vectors: 16 `f32` on AVX-512),
/// then solve `system` (the forward pass: [`System::Plain`]) in place in `y` (which holds the
/// right-hand sides on entry) while the group's factors are still in cache, through
/// [`InstructionSet::dispatch_lanes`]. The loops are the same IEEE
/// operations in every instruction set (no fused multiply-add), so the results are
/// bit-identical across them.
struct FactorSolve<'a, S> {
    d: &'a [S],
    w: &'a [S],
    lu: &'a mut [Lane<S>],
    piv: &'a mut [[usize; LANES]],
    y: &'a mut [S],
    n: usize,
    system: System,
}

impl<S: Scalar> pulp::WithSimd for FactorSolve<'_, S> {
    type Output = Result<(), GradError>;

    #[inline(always)]
    fn with_simd<A: pulp::Simd>(self, simd: A) -> Result<(), GradError> {
        let Self {
            d,
            w,
            lu,
            piv,
            y,
            n,
            system,
        } = self;
        let batch = d.len() / n.max(1);
        for (g, (m, p)) in lu
            .chunks_exact_mut(n * n)
            .zip(piv.chunks_exact_mut(n))
            .enumerate()
        {
            let b0 = g * LANES;
            let active = (batch - b0).min(LANES);
            for i in 0..n {
                let gain: Lane<S> = core::array::from_fn(|l| {
                    if l < active {
                        d[(b0 + l) * n + i] - S::ONE
                    } else {
                        S::ZERO
                    }
                });
                let row = &mut m[i * n..(i + 1) * n];
                for (x, &wij) in row.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                    *x = gain.map(|gl| gl * wij);
                }
                row[i] = row[i].map(|x| x + S::ONE);
            }
            lane_lu::factor(simd, m, n, p, active).map_err(|e| GradError::SingularSystem {
                sample: b0 + e.lane,
                column: e.column,
                pivot: e.pivot,
            })?;
            // Solved while the group's factors are in cache (solving after every group is
            // factorised reads them back from memory: 1.17x slower two-layer step).
            let (lu, piv) = (&*m, &*p);
            let y = &mut y[b0 * n..(b0 + active) * n];
            InstructionSet::Detect.dispatch_lanes(Solves {
                lu,
                piv,
                x: y,
                n,
                system,
            });
        }
        Ok(())
    }
}

/// Which system [`FactorSolve`] and [`Solves`] solve with the factors of `A_b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    /// `A_b x = b` (the forward pass).
    Plain,
    /// `A_bᵀ x = b` (the VJP).
    Transposed,
}

/// `x_b = A_b⁻¹ x_b` or `A_b⁻ᵀ x_b` in place for every sample from the factors of
/// [`FactorSolve`], compiled for at most AVX2 (one lane vector per entry: see
/// [`InstructionSet::dispatch_lanes`]).
struct Solves<'a, S> {
    lu: &'a [Lane<S>],
    piv: &'a [[usize; LANES]],
    x: &'a mut [S],
    n: usize,
    system: System,
}

impl<S: Scalar> pulp::WithSimd for Solves<'_, S> {
    type Output = ();

    #[inline(always)]
    fn with_simd<A: pulp::Simd>(self, simd: A) {
        let Self {
            lu,
            piv,
            x,
            n,
            system,
        } = self;
        let batch = x.len() / n.max(1);
        let mut rhs = vec![[S::ZERO; LANES]; n];
        for (g, (f, p)) in lu.chunks_exact(n * n).zip(piv.chunks_exact(n)).enumerate() {
            let b0 = g * LANES;
            let active = (batch - b0).min(LANES);
            gather(x, n, b0, active, &mut rhs);
            match system {
                System::Plain => lane_lu::solve(simd, f, n, p, &mut rhs),
                System::Transposed => lane_lu::solve_transposed(simd, f, n, p, &mut rhs),
            }
            scatter(&rhs, n, b0, active, x);
        }
    }
}

/// Solves `M_b x_b = rhs_b` (`System::Plain`) or `M_bᵀ x_b = rhs_b` (`System::Transposed`),
/// `M_b = I − W + diag(d_b) W`, for the samples `rows` only (their rows of the `batch x n`
/// matrices `d`, `rhs` and `x`), by the interleaved LU of [`Tape::diag_gain_solve`]; the
/// other rows of `x` are left alone. The fallback of [`crate::sweeps`].
///
/// # Errors
/// [`GradError::SingularSystem`] (with the sample's batch row) if a system is singular.
pub(crate) fn lu_solve_rows<S: Scalar>(
    system: System,
    d: &[S],
    w: &[S],
    rhs: &[S],
    x: &mut [S],
    n: usize,
    rows: &[usize],
) -> Result<(), GradError> {
    if rows.is_empty() {
        return Ok(());
    }
    let k = rows.len();
    let groups = k.div_ceil(LANES);
    let (mut dk, mut xk) = (Vec::with_capacity(k * n), Vec::with_capacity(k * n));
    for &b in rows {
        dk.extend_from_slice(&d[b * n..(b + 1) * n]);
        xk.extend_from_slice(&rhs[b * n..(b + 1) * n]);
    }
    let mut lu = vec![[S::ZERO; LANES]; groups * n * n];
    let mut piv = vec![[0usize; LANES]; groups * n];
    InstructionSet::Detect
        .dispatch(FactorSolve {
            d: &dk,
            w,
            lu: &mut lu,
            piv: &mut piv,
            y: &mut xk,
            n,
            system,
        })
        .map_err(|e| match e {
            GradError::SingularSystem {
                sample,
                column,
                pivot,
            } => GradError::SingularSystem {
                sample: rows[sample],
                column,
                pivot,
            },
            e => e,
        })?;
    for (&b, row) in rows.iter().zip(xk.chunks_exact(n)) {
        x[b * n..(b + 1) * n].copy_from_slice(row);
    }
    Ok(())
}

/// The VJP of [`Tape::diag_gain_solve`] for its node in `ctx` (`tmp`: the tape's buffer).
pub(crate) fn diag_gain_solve_vjp<S: Scalar>(
    ctx: &mut VjpCtx<'_, S>,
    d: Var,
    w: Var,
    c: Var,
    tmp: &mut Vec<S>,
) {
    let (g, node) = (ctx.g, ctx.node);
    let (batch, n) = (node.rows, node.cols);
    let groups = batch.div_ceil(LANES);
    let lu = ctx.node_aux(groups * LANES * n * n).as_chunks::<LANES>().0;
    let piv = ctx.node_ints(groups * LANES * n).as_chunks::<LANES>().0;
    // Λ = rows λ_b = M_b⁻ᵀ ȳ_b.
    tmp.clear();
    tmp.extend_from_slice(g);
    InstructionSet::Detect.dispatch_lanes(Solves {
        lu,
        piv,
        x: tmp,
        n,
        system: System::Transposed,
    });
    add_diag_gain_grads(ctx, d, w, c, tmp);
}

/// Adds the input cotangents of `y_b = M_b⁻¹ c_b` (`M_b = I − W + diag(d_b) W`, the node in
/// `ctx`, `Y` its value) given `Λ = lam` (rows `λ_b = M_b⁻ᵀ ȳ_b`):
/// `c̄ += Λ`, `d̄ += −Λ ⊙ (Y Wᵀ)`, `W̄ += −((D − 1) ⊙ Λ)ᵀ Y`.
pub(crate) fn add_diag_gain_grads<S: Scalar>(
    ctx: &mut VjpCtx<'_, S>,
    d: Var,
    w: Var,
    c: Var,
    lam: &[S],
) {
    let (batch, n) = (ctx.node.rows, ctx.node.cols);
    let y = ctx.out();
    let (dv, wv) = (ctx.val(d), ctx.val(w));
    if let Some(gc) = ctx.grad_mut(c) {
        crate::linalg::add_assign(gc, lam);
    }
    if ctx.nodes[d.index()].needs_grad {
        // d̄ += −Λ ⊙ (Y Wᵀ).
        let mut yw = vec![S::ZERO; batch * n];
        gemm(
            ViewMut::new(&mut yw, batch, n),
            Beta::Overwrite,
            View::new(y, batch, n),
            Trans::No,
            View::new(wv, n, n),
            Trans::Yes,
        );
        if let Some(gd) = ctx.grad_mut(d) {
            for ((gi, &l), &v) in gd.iter_mut().zip(lam).zip(&yw) {
                *gi -= l * v;
            }
        }
    }
    if ctx.nodes[w.index()].needs_grad {
        // W̄ += −((D − 1) ⊙ Λ)ᵀ Y.
        let scaled: Vec<S> = lam
            .iter()
            .zip(dv)
            .map(|(&l, &di)| -(di - S::ONE) * l)
            .collect();
        if let Some(gw) = ctx.grad_mut(w) {
            gemm(
                ViewMut::new(gw, n, n),
                Beta::Accumulate,
                View::new(&scaled, batch, n),
                Trans::Yes,
                View::new(y, batch, n),
                Trans::No,
            );
        }
    }
}

/// The VJP of [`Tape::diag_gain_system`] for its node in `ctx`.
pub(crate) fn diag_gain_system_vjp<S: Scalar>(ctx: &mut VjpCtx<'_, S>, d: Var, w: Var) {
    let (g, node) = (ctx.g, ctx.node);

    let n = ctx.nodes[d.index()].cols;
    let (dv, wv) = (ctx.val(d), ctx.val(w));
    if let Some(gd) = ctx.grad_mut(d) {
        for b in 0..node.rows {
            for i in 0..n {
                gd[b * n + i] += crate::linalg::dot(
                    &g[b * n * n + i * n..b * n * n + (i + 1) * n],
                    &wv[i * n..(i + 1) * n],
                );
            }
        }
    }
    if let Some(gw) = ctx.grad_mut(w) {
        for b in 0..node.rows {
            for i in 0..n {
                let c = dv[b * n + i] - S::ONE;
                crate::linalg::axpy(
                    &mut gw[i * n..(i + 1) * n],
                    c,
                    &g[b * n * n + i * n..b * n * n + (i + 1) * n],
                );
            }
        }
    }
}

/// The VJP of [`Tape::batched_solve`] for its node in `ctx` (`tmp`: the tape's buffer).
pub(crate) fn batched_solve_vjp<S: Scalar>(
    ctx: &mut VjpCtx<'_, S>,
    a: Var,
    r: Var,
    tmp: &mut Vec<S>,
) {
    let (g, node, out) = (ctx.g, ctx.node, ctx.out());

    let n = node.cols;
    let lu = ctx.node_aux(node.rows * n * n);
    let piv = ctx.node_ints(node.rows * n);
    tmp.clear();
    tmp.extend_from_slice(g);
    for b in 0..node.rows {
        crate::solve::lu_solve_transposed(
            &lu[b * n * n..(b + 1) * n * n],
            n,
            &piv[b * n..(b + 1) * n],
            &mut tmp[b * n..(b + 1) * n],
        );
    }
    if let Some(gr) = ctx.grad_mut(r) {
        crate::linalg::add_assign(gr, tmp);
    }
    if let Some(ga) = ctx.grad_mut(a) {
        for b in 0..node.rows {
            let lam = &tmp[b * n..(b + 1) * n];
            let x = &out[b * n..(b + 1) * n];
            for i in 0..n {
                crate::linalg::axpy(
                    &mut ga[b * n * n + i * n..b * n * n + (i + 1) * n],
                    -lam[i],
                    x,
                );
            }
        }
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

    /// Sizes below, at and across several panels: `P A = L U` rebuilt from the factors, and
    /// both solves, against the matrix itself.
    #[test]
    fn blocked_factors_rebuild_the_matrix_and_solve_it() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for n in [1, 5, PANEL, PANEL + 1, 3 * PANEL + 5, 120] {
            let a: Vec<f64> = (0..n * n)
                .map(|_| rng.random::<f64>() * 2.0 - 1.0)
                .collect();
            let mut lu = a.clone();
            let mut piv = vec![0; n];
            lu_in_place(&mut lu, n, &mut piv, 0).unwrap();
            // P A: the recorded swaps applied to A's rows in order.
            let mut pa = a.clone();
            for k in 0..n {
                assert!(piv[k] >= k && piv[k] < n);
                for j in 0..n {
                    pa.swap(k * n + j, piv[k] * n + j);
                }
            }
            let mut worst: f64 = 0.0;
            for i in 0..n {
                for j in 0..n {
                    let mut s = if i <= j { lu[i * n + j] } else { 0.0 };
                    for p in 0..i.min(j + 1) {
                        s += lu[i * n + p] * if p <= j { lu[p * n + j] } else { 0.0 };
                    }
                    worst = worst.max((s - pa[i * n + j]).abs());
                }
            }
            // Backward stability of partial pivoting: |PA − LU| ≤ c n ε |L||U| entrywise; with
            // entries of |A| ≤ 1 and the small growth of random matrices, 1e-12 is a wide margin
            // at n ≤ 120 (ε = 2.2e-16) and a missing or misplaced update would be O(1).
            assert!(worst < 1e-12, "n = {n}: |PA − LU| = {worst:e}");
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let (mut b, mut bt) = (vec![0.0; n], vec![0.0; n]);
            for i in 0..n {
                for j in 0..n {
                    b[i] += a[i * n + j] * x[j];
                    bt[i] += a[j * n + i] * x[j];
                }
            }
            lu_solve(&lu, n, &piv, &mut b);
            lu_solve_transposed(&lu, n, &piv, &mut bt);
            for i in 0..n {
                // Error ≤ cond(A) × backward error: random matrices at n ≤ 120 have cond(A)
                // below about 1e4, so 1e-9 leaves a wide margin over 1e4 · 1e-14.
                assert!((b[i] - x[i]).abs() < 1e-9, "n = {n}: x[{i}] = {}", b[i]);
                assert!((bt[i] - x[i]).abs() < 1e-9, "n = {n}: xᵀ[{i}] = {}", bt[i]);
            }
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
