//! The fixed-point layer's per-sample systems `M_b y_b = c_b`, `M_b = I − W + diag(d_b) W =
//! I + diag(d_b − 1) W`, solved by stationary sweeps instead of factorisations
//! ([`Tape::diag_gain_sweeps`]; docs/model.md#solving-the-layers-linear-systems):
//!
//! ```text
//! y ← c − (d − 1) ⊙ (W y),        converging when ρ(diag(d − 1) W) < 1.
//! ```
//!
//! For the batch the product `W y_b` of every sample is one GEMM, `Y Wᵀ`, with the shared `W`:
//! `2 n²` flops a sample per sweep at GEMM speed and nothing stored, against the `⅔ n³` of a
//! factorisation plus its stored factors. With `‖W‖₂ = 1` (the spectral norm) and every
//! `|d_i − 1| < 1`, `‖diag(d − 1) W‖₂ < 1` and the sweeps contract; as the layer's `W` is
//! divided by a power-iteration *estimate* of its norm, this is not guaranteed, hence the
//! stopping rule and the fallback below.
//!
//! **Stopping.** The change made by a sweep is the residual of the iterate it started from:
//! `y⁺ − y = c − M y`. A sample stops after the sweep whose change is at most
//! `tolerance · ‖y⁺‖₂` (2-norms); the returned value is that last iterate `y⁺`. When the sweeps
//! contract the 2-norm by a factor `q`, its error is at most `q / (1 − q)` times that change.
//! A sample whose changes stop shrinking, or shrink too slowly to meet the tolerance within
//! `max_sweeps` (predicted from the ratio of its last two changes, from the third sweep on), or
//! that reaches `max_sweeps`, is solved by Gaussian elimination with partial pivoting instead
//! ([`crate::solve`]'s interleaved LU), and so is its transposed system in the VJP. Each
//! sample stops on its own: the rows still sweeping are kept together at the front of the
//! work buffers, so the GEMM shrinks as samples finish. (A sample's row thus moves within the
//! GEMM as others finish, and faer may sum it in another order there: its last bits can depend
//! on the other samples of the batch. For a given batch the result is deterministic.)
//!
//! **Start.** The sweeps start from a given `y₀` (the layer passes its previous iterate: a
//! warm start). The solution does not depend on it, and no gradient flows to it.
//!
//! **VJP.** As for the factorised solve, with `λ_b = M_b⁻ᵀ ȳ_b`:
//!
//! ```text
//! c̄ += Λ,    d̄ += −Λ ⊙ (Y Wᵀ),    W̄ += −((D − 1) ⊙ Λ)ᵀ Y,
//! ```
//!
//! where `λ_b` comes from the transposed sweeps `λ ← ȳ − Wᵀ ((d − 1) ⊙ λ)`, one GEMM
//! `((D − 1) ⊙ Λ) W` per sweep. Their iteration matrix is the transpose of the forward one, so
//! it has the same spectral radius; they start from `ȳ` and stop by the same rule.

use crate::error::GradError;
use crate::linalg::{Beta, Trans, View, ViewMut, gemm};
use crate::scalar::Scalar;
use crate::simd::{InstructionSet, simd_kernel};
use crate::solve::{System, lu_solve_rows};
use crate::tape::{CustomOp, CustomOut, Tape, Var, VjpCtx};

/// When the sweeps of one sample stop (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepSettings {
    /// A sample stops after a sweep that changed it by at most `tolerance · ‖y‖₂` (2-norm).
    pub tolerance: f64,
    /// Sweeps after which a sample still moving is solved by LU instead (and the budget its
    /// predicted sweeps are held to).
    pub max_sweeps: usize,
}

impl SweepSettings {
    /// The settings for `n x n` systems in `S`: a tolerance of `8 ε` (about the accuracy of
    /// the factorised solve in `S`), and at most `n + 8` sweeps. `n / 3` sweeps are the flops
    /// of one factorisation (`⅔ n³`), but a sweep runs at GEMM speed and needs no system
    /// formed, stored or solved: on the two-layer model (`n` = 120 and 60, `f32`, AVX-512) a
    /// budget of `n + 8` made the training step 6-8 % faster than `n / 3 + 8`, and `2n / 3`
    /// to `2n` were alike.
    #[must_use]
    pub fn for_scalar<S: Scalar>(n: usize) -> Self {
        SweepSettings {
            tolerance: 8.0 * S::EPSILON.to_f64(),
            max_sweeps: n + 8,
        }
    }
}

/// What the sweeps of one forward pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Samples whose sweeps met the tolerance.
    pub converged: usize,
    /// Samples handed to LU.
    pub factorised: usize,
    /// Sweeps summed over the samples that converged.
    pub sweeps: usize,
    /// Sweeps of the slowest sample that converged.
    pub max_sweeps: usize,
    /// Sweeps summed over the samples handed to LU, before they were.
    pub abandoned_sweeps: usize,
}

/// One recorded sweeps solve: its inputs and settings.
#[derive(Debug, Clone, Copy)]
struct SweepsOp {
    d: Var,
    w: Var,
    c: Var,
    settings: SweepSettings,
}

/// The work buffers the sweeps of one tape share (grown on demand, then reused).
#[derive(Debug, Default)]
struct SweepScratch<S> {
    /// Sample of each row still sweeping.
    idx: Vec<usize>,
    /// Iterates, right-hand sides and gains `d − 1` of the rows still sweeping.
    x: Vec<S>,
    rhs: Vec<S>,
    gain: Vec<S>,
    /// The transposed sweeps' GEMM operand `(d − 1) ⊙ λ`, and the GEMM's product.
    t: Vec<S>,
    p: Vec<S>,
    /// Each row's last change.
    prev: Vec<S>,
    /// Each row's change and norm after the current sweep.
    stats: Vec<[S; 2]>,
    /// Each row's verdict after the current sweep.
    verdict: Vec<Verdict>,
    /// Samples handed to LU.
    unsolved: Vec<usize>,
}

/// A row's verdict after a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Sweeping,
    Converged,
    Factorise,
}

impl<S: Scalar> CustomOp<S> for SweepsOp {
    type Scratch = SweepScratch<S>;

    fn vjp(&self, ctx: &mut VjpCtx<'_, S>, scratch: &mut SweepScratch<S>, tmp: &mut Vec<S>) {
        diag_gain_sweeps_vjp(ctx, self, scratch, tmp);
    }
}

impl<S: Scalar> Tape<S> {
    /// `y_b = M_b⁻¹ c_b` with `M_b = I − W + diag(d_b) W` for every batch row `b`, as
    /// [`Tape::diag_gain_solve`], but by sweeps `y ← c − (d − 1) ⊙ (W y)` from `start`, each
    /// sample stopped by `settings` or else solved by LU (see the [module docs](crate::sweeps)).
    /// `d`, `c` and `start` are `batch x n`, `W` is `n x n`; `start` receives no gradient.
    ///
    /// # Errors
    /// [`GradError::SingularSystem`] if a system handed to LU is singular.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn diag_gain_sweeps(
        &mut self,
        d: Var,
        w: Var,
        c: Var,
        start: Var,
        settings: SweepSettings,
    ) -> Result<(Var, SweepReport), GradError> {
        let (nd, nw, nc, ns) = (self.node(d), self.node(w), self.node(c), self.node(start));
        let n = nd.cols;
        assert!(
            nw.rows == n
                && nw.cols == n
                && (nc.rows, nc.cols) == (nd.rows, n)
                && (ns.rows, ns.cols) == (nd.rows, n),
            "diag_gain_sweeps: d, c and start must be batch x {n}, W {n} x {n}"
        );
        let batch = nd.rows;
        let needs = nd.needs_grad || nw.needs_grad || nc.needs_grad;
        let op = SweepsOp { d, w, c, settings };
        // The node's saved values: 1 for each sample handed to LU, else 0.
        let CustomOut {
            var,
            nodes,
            lo,
            out,
            aux,
            scratch,
        } = self.push_custom(batch, n, op, needs, batch);
        let val = |v: Var| Self::val(lo, &nodes[v.index()]);
        let (dv, wv, cv) = (val(d), val(w), val(c));
        out.copy_from_slice(val(start));
        let rows: Vec<usize> = (0..batch).collect();
        let report = sweep(System::Plain, dv, wv, cv, out, n, &rows, settings, scratch);
        aux.fill(S::ZERO);
        for &b in &scratch.unsolved {
            aux[b] = S::ONE;
        }
        lu_solve_rows(System::Plain, dv, wv, cv, out, n, &scratch.unsolved)?;
        Ok((var, report))
    }
}

/// Sweeps `rows` of `x` (holding the start on entry) towards `M_b x_b = rhs_b`
/// (`System::Plain`) or `M_bᵀ x_b = rhs_b` (`System::Transposed`), writing each row that meets
/// the tolerance back into `x`; the rows handed to LU are left in `scratch.unsolved`, in no
/// particular order, and their rows of `x` as they were.
#[allow(clippy::too_many_arguments)]
fn sweep<S: Scalar>(
    system: System,
    d: &[S],
    w: &[S],
    rhs: &[S],
    x: &mut [S],
    n: usize,
    rows: &[usize],
    settings: SweepSettings,
    s: &mut SweepScratch<S>,
) -> SweepReport {
    let mut report = SweepReport::default();
    s.unsolved.clear();
    s.idx.clear();
    s.idx.extend_from_slice(rows);
    let mut m = rows.len();
    // Sized, not cleared: every entry is written before it is read (the copies below, the
    // GEMM's product, the update's outputs, and each row's verdict and change by sweep 2,
    // before the rate first reads them at sweep 3), so stale values of the last call stay
    // unread.
    for buf in [&mut s.x, &mut s.rhs, &mut s.gain, &mut s.t, &mut s.p] {
        buf.resize(m * n, S::ZERO);
    }
    s.prev.resize(m, S::ZERO);
    s.stats.resize(m, [S::ZERO; 2]);
    s.verdict.resize(m, Verdict::Sweeping);
    for (k, &b) in rows.iter().enumerate() {
        let (src, dst) = (b * n..(b + 1) * n, k * n..(k + 1) * n);
        s.x[dst.clone()].copy_from_slice(&x[src.clone()]);
        s.rhs[dst.clone()].copy_from_slice(&rhs[src.clone()]);
        for (g, &di) in s.gain[dst.clone()].iter_mut().zip(&d[src.clone()]) {
            *g = di - S::ONE;
        }
        if system == System::Transposed {
            // The first GEMM's operand; [`SweepRows`] writes the later ones.
            for ((t, &g), &xi) in s.t[dst.clone()].iter_mut().zip(&s.gain[dst]).zip(&x[src]) {
                *t = g * xi;
            }
        }
    }
    let tol = S::from_f64(settings.tolerance);
    let max = settings.max_sweeps;
    for sweep in 1..=max {
        if m == 0 {
            break;
        }
        // `Y Wᵀ` (forward) or `((D − 1) ⊙ Λ) W` (transposed).
        let (a, tw) = match system {
            System::Plain => (&s.x, Trans::Yes),
            System::Transposed => (&s.t, Trans::No),
        };
        gemm(
            ViewMut::new(&mut s.p[..m * n], m, n),
            Beta::Overwrite,
            View::new(&a[..m * n], m, n),
            Trans::No,
            View::new(w, n, n),
            tw,
        );
        let stats = &mut s.stats[..m];
        InstructionSet::Detect.dispatch(SweepRows {
            system,
            n,
            x: &mut s.x[..m * n],
            t: &mut s.t[..m * n],
            p: &s.p[..m * n],
            rhs: &s.rhs[..m * n],
            gain: &s.gain[..m * n],
            stats,
        });
        for k in 0..m {
            let [change, size] = s.stats[k];
            s.verdict[k] = verdict(change, s.prev[k], size, tol, sweep, max);
            s.prev[k] = change;
        }
        // Rows that finished leave the work buffers: the last row still sweeping takes the
        // place of each (its verdict moves with it, and is read at that place next).
        let mut k = 0;
        while k < m {
            match s.verdict[k] {
                Verdict::Sweeping => {
                    k += 1;
                    continue;
                }
                Verdict::Converged => {
                    let b = s.idx[k];
                    x[b * n..(b + 1) * n].copy_from_slice(&s.x[k * n..(k + 1) * n]);
                    report.converged += 1;
                    report.sweeps += sweep;
                    report.max_sweeps = report.max_sweeps.max(sweep);
                }
                Verdict::Factorise => {
                    s.unsolved.push(s.idx[k]);
                    report.abandoned_sweeps += sweep;
                }
            }
            m -= 1;
            if k < m {
                for buf in [&mut s.x, &mut s.rhs, &mut s.gain, &mut s.t] {
                    buf.copy_within(m * n..(m + 1) * n, k * n);
                }
                s.idx[k] = s.idx[m];
                s.prev[k] = s.prev[m];
                s.verdict[k] = s.verdict[m];
            }
        }
    }
    s.unsolved.extend_from_slice(&s.idx[..m]);
    report.abandoned_sweeps += m * max;
    report.factorised = s.unsolved.len();
    report
}

/// Lanes of the sums of squares in [`SweepRows`] (one AVX-512 vector of `f32`).
const SUM_LANES: usize = 16;

simd_kernel! {
    /// One sweep's update of every row still sweeping, from the GEMM's product `p`:
    /// `x ← rhs − gain ⊙ p` (`System::Plain`) or `x ← rhs − p` and `t ← gain ⊙ x`
    /// (`System::Transposed`, the next GEMM's operand), and per row the 2-norms of the change
    /// and of the new `x` (`stats`). The sums of squares are kept in [`SUM_LANES`] lanes, so
    /// that the loop vectorises (a NaN or an overflow makes them not finite).
    SweepRows<'a> {
        system: System,
        n: usize,
        x: &'a mut [S],
        t: &'a mut [S],
        p: &'a [S],
        rhs: &'a [S],
        gain: &'a [S],
        stats: &'a mut [[S; 2]],
    }
    {
        for (k, st) in stats.iter_mut().enumerate() {
            let row = k * n..(k + 1) * n;
            let (x, t, p, r, g) = (
                &mut x[row.clone()],
                &mut t[row.clone()],
                &p[row.clone()],
                &rhs[row.clone()],
                &gain[row],
            );
            let mut change = [S::ZERO; SUM_LANES];
            let mut size = [S::ZERO; SUM_LANES];
            let mut lane = |l: usize, i: usize, x: &mut [S], t: &mut [S]| {
                let new = match system {
                    System::Plain => r[i] - g[i] * p[i],
                    System::Transposed => r[i] - p[i],
                };
                let dx = new - x[i];
                change[l] += dx * dx;
                size[l] += new * new;
                x[i] = new;
                if system == System::Transposed {
                    t[i] = g[i] * new;
                }
            };
            let full = n / SUM_LANES * SUM_LANES;
            for j in (0..full).step_by(SUM_LANES) {
                for l in 0..SUM_LANES {
                    lane(l, j + l, x, t);
                }
            }
            for i in full..n {
                lane(i - full, i, x, t);
            }
            let total = |v: [S; SUM_LANES]| v.into_iter().fold(S::ZERO, |a, e| a + e).sqrt();
            *st = [total(change), total(size)];
        }
    }
}

/// The verdict on a row after sweep `sweep` (of at most `max`) changed it by `change` (the
/// sweep before by `prev`), its norm now being `size` (2-norms).
fn verdict<S: Scalar>(change: S, prev: S, size: S, tol: S, sweep: usize, max: usize) -> Verdict {
    if !(change.is_finite() && size.is_finite()) {
        return Verdict::Factorise;
    }
    if change <= tol * size {
        return Verdict::Converged;
    }
    if sweep >= 3 {
        let rate = change.to_f64() / prev.to_f64();
        if rate.is_nan() || rate >= 1.0 {
            return Verdict::Factorise;
        }
        // Sweeps still needed at this rate: rate^k · change ≤ tol · size.
        let needed = ((tol * size).to_f64() / change.to_f64()).ln() / rate.ln();
        if sweep as f64 + needed > max as f64 {
            return Verdict::Factorise;
        }
    }
    Verdict::Sweeping
}

/// The VJP of [`Tape::diag_gain_sweeps`] for its node in `ctx` (`tmp`: the tape's buffer).
fn diag_gain_sweeps_vjp<S: Scalar>(
    ctx: &mut VjpCtx<'_, S>,
    &SweepsOp { d, w, c, settings }: &SweepsOp,
    scratch: &mut SweepScratch<S>,
    tmp: &mut Vec<S>,
) {
    let (g, node) = (ctx.g, ctx.node);
    let (batch, n) = (node.rows, node.cols);
    let factorised = ctx.node_aux(batch);
    let (dv, wv) = (ctx.val(d), ctx.val(w));
    // Λ = rows λ_b = M_b⁻ᵀ ȳ_b, by sweeps from ȳ where the forward pass swept.
    tmp.clear();
    tmp.extend_from_slice(g);
    let rows: Vec<usize> = (0..batch).filter(|&b| factorised[b] == S::ZERO).collect();
    sweep(
        System::Transposed,
        dv,
        wv,
        g,
        tmp,
        n,
        &rows,
        settings,
        scratch,
    );
    scratch
        .unsolved
        .extend((0..batch).filter(|&b| factorised[b] != S::ZERO));
    if lu_solve_rows(System::Transposed, dv, wv, g, tmp, n, &scratch.unsolved).is_err() {
        // Only a system whose forward sweeps converged can be singular here (the forward
        // pass factorised the others): its cotangent becomes NaN, so that the step's
        // gradient is not finite and the trainer refuses it, instead of a panic.
        for &b in &scratch.unsolved {
            if lu_solve_rows(System::Transposed, dv, wv, g, tmp, n, &[b]).is_err() {
                tmp[b * n..(b + 1) * n].fill(S::from_f64(f64::NAN));
            }
        }
    }
    crate::solve::add_diag_gain_grads(ctx, d, w, c, tmp);
}
