//! Eigenvalues and eigenvectors of a real square matrix, with diagonal balancing.
//!
//! For `A ∈ R^{m×m}` we compute `A vᵢ = λᵢ vᵢ` with faer's nonsymmetric eigensolver (Hessenberg
//! reduction and shifted QR). The Jacobians of ORGaNICs mix scales badly — the `a`-rows carry
//! `W a y / τ_a`, which can be 10¹⁰ times the `y`-rows on the wide parameter ranges of the
//! theorem — so the matrix is first *balanced* (Parlett–Reinsch):
//!
//! ```text
//! B = D⁻¹ A D,   D = diag(2^{k₁}, …, 2^{k_m}),   chosen so that row i and column i of B
//!                                                  have comparable 1-norms
//! ```
//!
//! `B` has the same eigenvalues as `A` (a similarity), and with powers of two the scaling is
//! exact in floating point. An eigenvector `u` of `B` gives the eigenvector `v = D u` of `A`.
//! The QR algorithm's backward error is then a small multiple of `ε ‖B‖` instead of `ε ‖A‖`.
//!
//! Eigenvalues are returned sorted by real part, largest first (ties: larger imaginary part
//! first), so `values[0].re` is the spectral abscissa `α(A) = max_i Re λᵢ`.
//!
//! # Eigenvectors: checked, and refined by inverse iteration
//!
//! faer 0.24.4's eigenvectors are not backward stable on a nearly defective cluster: on a
//! 16 × 16 ORGaNICs Jacobian with six eigenvalues within 1e-8 of −0.5
//! (`bench/avx512-eigen/`), 104 of its 224 one-ulp neighbours get eigenvectors with residual
//! up to 3.5e-3 relative to the matrix norm (4.0e-3 with AVX-512), where LAPACK's `dgeev` gives
//! ≤ 7.7e-16. The eigenvalues are fine. So [`eigenpairs`] checks every pair it returns, on the
//! balanced matrix `B` (the matrix decomposed; everything below is on `B`, and `v = D u` is
//! formed only at the end):
//!
//! ```text
//! ρₖ = ‖B uₖ − λₖ uₖ‖₂ / (‖B‖_F ‖uₖ‖₂)          (complex arithmetic)
//! ```
//!
//! `ρₖ` is the backward error of the pair: `(B + E) uₖ = λₖ uₖ` exactly for an `E` with
//! `‖E‖₂ = ρₖ ‖B‖_F`, i.e. `(A + D E D⁻¹) vₖ = λₖ vₖ`. A backward-stable eigensolver gives
//! `ρₖ` of a modest multiple of `m ε`; the bound used is [`residual_bound`]`(m) = 16 m ε`
//! (evaluating `B uₖ` in floating point alone can leave up to about `m ε`, so the factor 16
//! keeps refinement from firing on rounding noise while staying ~10¹⁰ below the failures
//! above). A pair over the bound is refined by inverse iteration with its computed eigenvalue
//! as shift: the complex LU (partial pivoting, faer) of `B − λₖ I` is factored once and two
//! solves `(B − λₖ I) x_{t+1} = x_t / ‖x_t‖` are made from each of two starts, faer's vector
//! and a fixed generic vector. Because `λₖ` is an exact eigenvalue of a matrix within `O(ε‖B‖)`
//! of `B`, `σ_min(B − λₖ I)` is that small and one solve amplifies the smallest right singular
//! direction by ~1/(ε‖B‖), times the start's component along the matching *left* singular
//! vector; the first iterate's residual is then of the order of the LU's backward error,
//! `O(m ε ‖B‖)`. faer's vector alone is not enough: in a nearly defective cluster the left
//! singular vector is nearly orthogonal to the right eigenvectors (that is what makes the
//! cluster ill-conditioned), so from faer's vector the residual stalled at ~4e-10 on the test
//! matrices; the generic start (LAPACK's `dlaein` uses a generic start for the same reason)
//! reaches ~1e-17. Further iterates drift towards the true eigenvector of the nearest exact
//! eigenvalue, whose residual is the eigenvalue's forward error (~1e-10 there), so the best
//! iterate, not the last, is kept. If the factorisation is exactly singular (a non-finite
//! solve), the shift is moved to `λₖ + m ε ‖B‖_F`, which adds at most `m ε` to `ρₖ`, below the
//! bound. The iterate with the smallest `ρₖ` (faer's own vector included) is kept, so
//! refinement never makes a pair worse. For a complex pair only the member with `Im λ > 0` is
//! refined and its partner is set to the conjugate, so `v̄ₖ` stays the eigenvector of `λ̄ₖ`.
//! Pairs still over the bound are not hidden: [`EigenPairs::residuals`] carries every `ρₖ`.
//!
//! # Why the small-bulge QR, at every size
//!
//! faer's default real Schur route switches, for matrices of order 75 and above, to the
//! multishift QR with *aggressive early deflation*. In faer 0.24.4 that deflation window reorders
//! its Schur blocks with a bubble sort (`while !sorted { … schur_swap … }`) that has no iteration
//! cap: on the 160 × 160 Jacobian in `tests/data/schur-hang-160.f64le` (a trained 80-unit
//! ORGaNICs layer, epoch 66 of `models/mnist-organics-80`), balanced as below, it never returns.
//! The unbalanced matrix happens to pass, so balancing is not the defect; it only changes which
//! matrices reach it. We therefore always call the *small-bulge* double-shift QR (the route faer
//! itself takes below order 75), by raising the Schur blocking threshold above any size. Its
//! sweep count is capped (30 · max(10, m) iterations), so every call returns: either the
//! eigenvalues or [`LyapunovError::EigenNoConvergence`], which the stability judge reports as a
//! failed verdict rather than a hang. Both routes are O(m³); at m = 160 the small-bulge route
//! measured 4.2 ms against 5–6 ms for the default one (AMD EPYC).

use crate::error::LyapunovError;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self, ComputeEigenvectors, EvdParams};
use faer::linalg::solvers::{PartialPivLu, Solve};
use faer::{Mat, Par, Spec, c64};
use std::cmp::Ordering;

/// The result of balancing: `B = D⁻¹ A D` and the diagonal `D`.
#[derive(Debug, Clone)]
pub struct Balanced {
    /// The balanced matrix `B`.
    pub matrix: Mat<f64>,
    /// The diagonal of `D` (powers of two).
    pub scale: Vec<f64>,
}

/// Balance a square matrix by exact power-of-two diagonal similarity (Parlett–Reinsch).
///
/// # Panics
/// If `a` is not square (a programming error; [`eigenvalues`] checks this and returns an error).
pub fn balance(a: &Mat<f64>) -> Balanced {
    let m = a.nrows();
    assert_eq!(m, a.ncols(), "balance: matrix must be square");
    let mut b = a.clone();
    let mut d = vec![1.0; m];
    // Each accepted step lowers the sum of row and column norms by at least 5 %, so the loop
    // terminates; the cap only guards against pathological inputs.
    for _sweep in 0..200 {
        let mut changed = false;
        for i in 0..m {
            let (mut c, mut r) = (0.0f64, 0.0f64);
            for j in 0..m {
                if j != i {
                    c += b[(j, i)].abs();
                    r += b[(i, j)].abs();
                }
            }
            if c == 0.0 || r == 0.0 || !c.is_finite() || !r.is_finite() {
                continue;
            }
            let s = c + r;
            let mut f = 1.0;
            let mut g = r / 2.0;
            while c < g && f < 1e150 {
                f *= 2.0;
                c *= 4.0;
                g /= 4.0;
            }
            g = r * 2.0;
            while c >= g && f > 1e-150 {
                f /= 2.0;
                c /= 4.0;
                g *= 4.0;
            }
            // Accept the scaling only if it reduces the combined norm noticeably (LAPACK's 0.95).
            if (c + r) / f < 0.95 * s {
                changed = true;
                d[i] *= f;
                for j in 0..m {
                    b[(i, j)] /= f;
                    b[(j, i)] *= f;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Balanced {
        matrix: b,
        scale: d,
    }
}

/// Eigenvalues and right eigenvectors, `A V = V Λ`, sorted by real part (largest first).
#[derive(Debug, Clone)]
pub struct EigenPairs {
    /// The eigenvalues λᵢ.
    pub values: Vec<c64>,
    /// Column i is an eigenvector for `values[i]`, normalised to unit 2-norm.
    pub vectors: Mat<c64>,
    /// `residuals[i]` is the backward error `ρᵢ = ‖B uᵢ − λᵢ uᵢ‖ / (‖B‖_F ‖uᵢ‖)` of pair i on
    /// the balanced matrix `B = D⁻¹ A D` (with `vectors` column i ∝ `D uᵢ`), after the
    /// refinement of the module doc. At most [`residual_bound`]`(m)` for a backward-stable
    /// pair; a larger value means the eigenvector could not be brought to that accuracy and
    /// should not be trusted to more than about `ρᵢ ‖B‖_F` (the eigenvalue is unaffected).
    pub residuals: Vec<f64>,
}

impl EigenPairs {
    /// The largest entry of [`EigenPairs::residuals`] (0 for an empty matrix).
    pub fn worst_residual(&self) -> f64 {
        self.residuals.iter().fold(0.0, |w, &r| w.max(r))
    }
}

/// The residual `ρ` a backward-stable eigensolver meets on an `m × m` matrix: `16 m ε` (see the
/// module doc for the factor). [`eigenpairs`] refines every pair above it.
pub fn residual_bound(m: usize) -> f64 {
    16.0 * m.max(1) as f64 * f64::EPSILON
}

fn check(a: &Mat<f64>, what: &'static str) -> Result<(), LyapunovError> {
    if a.nrows() != a.ncols() {
        return Err(LyapunovError::NotSquare {
            what,
            rows: a.nrows(),
            cols: a.ncols(),
        });
    }
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            let value = a[(i, j)];
            if !value.is_finite() {
                return Err(LyapunovError::NonFiniteJacobian {
                    row: i,
                    col: j,
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Order by real part, largest first; ties by imaginary part, largest first.
fn by_real_desc(x: &c64, y: &c64) -> Ordering {
    y.re.total_cmp(&x.re).then(y.im.total_cmp(&x.im))
}

/// The eigenvalues of a real square matrix, sorted by real part (largest first).
///
/// # Errors
/// [`LyapunovError::NotSquare`], [`LyapunovError::NonFiniteJacobian`] for a NaN or infinite
/// entry, [`LyapunovError::EigenNoConvergence`] if faer's QR iteration fails.
pub fn eigenvalues(a: &Mat<f64>) -> Result<Vec<c64>, LyapunovError> {
    Ok(eigenvalues_with_scale(a)?.0)
}

/// The sorted eigenvalues and the Frobenius norm of the balanced matrix (the scale of the
/// eigensolver's backward error).
pub(crate) fn eigenvalues_with_scale(a: &Mat<f64>) -> Result<(Vec<c64>, f64), LyapunovError> {
    check(a, "eigenvalues")?;
    let bal = balance(a);
    let (mut values, _) = real_evd(&bal.matrix, ComputeEigenvectors::No)?;
    values.sort_by(by_real_desc);
    Ok((values, frobenius(&bal.matrix)))
}

/// faer's real eigen-decomposition through the small-bulge QR (see the module doc): the
/// eigenvalues and, when asked for, the right eigenvectors as complex columns.
fn real_evd(
    b: &Mat<f64>,
    vectors: ComputeEigenvectors,
) -> Result<(Vec<c64>, Option<Mat<c64>>), LyapunovError> {
    let m = b.nrows();
    let mut params: Spec<EvdParams, f64> = Spec::default();
    params.schur.blocking_threshold = usize::MAX;
    let mut re = faer::diag::Diag::<f64>::zeros(m);
    let mut im = faer::diag::Diag::<f64>::zeros(m);
    let mut u = (vectors == ComputeEigenvectors::Yes).then(|| Mat::<f64>::zeros(m, m));
    let mut buffer = MemBuffer::new(evd::evd_scratch::<f64>(
        m,
        ComputeEigenvectors::No,
        vectors,
        Par::Seq,
        params,
    ));
    evd::evd_real(
        b.as_ref(),
        re.as_mut(),
        im.as_mut(),
        None,
        u.as_mut().map(|u| u.as_mut()),
        Par::Seq,
        MemStack::new(&mut buffer),
        params,
    )
    .map_err(|_| LyapunovError::EigenNoConvergence { dim: m })?;
    let values: Vec<c64> = (0..m).map(|k| c64::new(re[k], im[k])).collect();
    // Real storage of complex eigenvectors (LAPACK's convention): for a conjugate pair at
    // columns k, k + 1 with Im λ_k > 0, v_k = u_k + i u_{k+1} and v_{k+1} = conj(v_k).
    let complex = u.map(|u| {
        let mut v = Mat::<c64>::zeros(m, m);
        let mut k = 0;
        while k < m {
            if im[k] != 0.0 && k + 1 < m {
                for i in 0..m {
                    let (x, y) = (u[(i, k)], u[(i, k + 1)]);
                    v[(i, k)] = c64::new(x, y);
                    v[(i, k + 1)] = c64::new(x, -y);
                }
                k += 2;
            } else {
                for i in 0..m {
                    v[(i, k)] = c64::new(u[(i, k)], 0.0);
                }
                k += 1;
            }
        }
        v
    });
    Ok((values, complex))
}

/// Eigenvalues and eigenvectors of a real square matrix, sorted by real part (largest first).
///
/// Every pair is checked, and refined by inverse iteration where its residual exceeds
/// [`residual_bound`] (module doc); the residuals are returned in [`EigenPairs::residuals`].
///
/// # Errors
/// As [`eigenvalues`].
pub fn eigenpairs(a: &Mat<f64>) -> Result<EigenPairs, LyapunovError> {
    check(a, "eigenpairs")?;
    let m = a.nrows();
    let bal = balance(a);
    let (s, u) = real_evd(&bal.matrix, ComputeEigenvectors::Yes)?;
    let mut u = u.ok_or(LyapunovError::EigenNoConvergence { dim: m })?;
    let rho = refine(&bal.matrix, &s, &mut u);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| by_real_desc(&s[i], &s[j]));
    let values = order.iter().map(|&k| s[k]).collect();
    let residuals = order.iter().map(|&k| rho[k]).collect();
    // v = D u, then normalise.
    let mut vectors = Mat::from_fn(m, m, |i, k| u[(i, order[k])] * bal.scale[i]);
    for k in 0..m {
        normalise(vectors.col_mut(k));
    }
    Ok(EigenPairs {
        values,
        vectors,
        residuals,
    })
}

/// Scale a column to unit 2-norm (a zero column is left as it is).
fn normalise(x: faer::ColMut<'_, c64>) {
    let norm = x.as_ref().iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
    if norm > 0.0 {
        for z in x.iter_mut() {
            *z /= norm;
        }
    }
}

/// Inverse-iteration solves per refined pair (module doc).
const INVERSE_ITERATIONS: usize = 2;

/// Check every pair `(values[k], u[:, k])` of the balanced matrix `b` (faer's order: a complex
/// pair at `k, k + 1` with `Im λ_k > 0`), refine those over [`residual_bound`] in place, and
/// return every pair's residual `ρ_k`.
fn refine(b: &Mat<f64>, values: &[c64], u: &mut Mat<c64>) -> Vec<f64> {
    let m = b.nrows();
    let norm_b = frobenius(b);
    let bound = residual_bound(m);
    let mut rho = residuals(b, norm_b, values, u);
    let mut k = 0;
    while k < m {
        let pair = values[k].im != 0.0 && k + 1 < m;
        if rho[k] > bound {
            let faer_vector: Vec<c64> = u.col(k).iter().copied().collect();
            // One factorisation of `b − λ I` serves both starts; the nudged shift is factored
            // only if a start cannot form finite iterates from the exact one.
            let exact = shifted_lu(b, values[k]);
            let mut nudged = None;
            for start in [faer_vector, generic_start(m)] {
                let iterates = inverse_iteration(&exact, &start).or_else(|| {
                    let nudge = c64::new(m as f64 * f64::EPSILON * norm_b, 0.0);
                    let lu = nudged.get_or_insert_with(|| shifted_lu(b, values[k] + nudge));
                    inverse_iteration(lu, &start)
                });
                for x in iterates.unwrap_or_default() {
                    let x = Mat::from_fn(
                        m,
                        1,
                        |i, _| {
                            if pair { x[i] } else { c64::new(x[i].re, 0.0) }
                        },
                    );
                    let r = residuals(b, norm_b, &values[k..=k], &x)[0];
                    if r < rho[k] {
                        rho[k] = r;
                        for i in 0..m {
                            u[(i, k)] = x[(i, 0)];
                        }
                    }
                }
            }
            normalise(u.col_mut(k));
            if pair {
                for i in 0..m {
                    u[(i, k + 1)] = u[(i, k)].conj();
                }
                // The conjugate pair's residual is the same up to rounding; recompute it.
                rho[k + 1] = residuals(
                    b,
                    norm_b,
                    &values[k + 1..=k + 1],
                    &u.subcols(k + 1, 1).to_owned(),
                )[0];
            }
        }
        k += if pair { 2 } else { 1 };
    }
    rho
}

/// A fixed start vector with no special direction: `xᵢ = 1 − 2 frac((i + 1) φ)`, φ the golden
/// ratio (deterministic, entries spread over (−1, 1)).
fn generic_start(m: usize) -> Vec<c64> {
    let phi = 0.5 * (1.0 + 5f64.sqrt());
    (0..m)
        .map(|i| c64::new(1.0 - 2.0 * ((i + 1) as f64 * phi).fract(), 0.0))
        .collect()
}

/// The complex LU (partial pivoting) of `b − σ I`.
fn shifted_lu(b: &Mat<f64>, sigma: c64) -> PartialPivLu<c64> {
    let m = b.nrows();
    Mat::from_fn(m, m, |i, j| {
        let d = if i == j { sigma } else { c64::new(0.0, 0.0) };
        c64::new(b[(i, j)], 0.0) - d
    })
    .partial_piv_lu()
}

/// The iterates `x_1, …, x_T` (unit vectors) of inverse iteration with the factorisation `lu`
/// of `b − σ I` from `start`; `None` if a solve is not finite (an exactly singular
/// factorisation: the caller moves the shift by `m ε ‖b‖_F`).
fn inverse_iteration(lu: &PartialPivLu<c64>, start: &[c64]) -> Option<Vec<Vec<c64>>> {
    let mut x = Mat::from_fn(start.len(), 1, |i, _| start[i]);
    normalise(x.col_mut(0));
    let mut iterates = Vec::with_capacity(INVERSE_ITERATIONS);
    for _ in 0..INVERSE_ITERATIONS {
        x = lu.solve(&x);
        if !x
            .col(0)
            .iter()
            .all(|z| z.re.is_finite() && z.im.is_finite())
        {
            return None;
        }
        normalise(x.col_mut(0));
        iterates.push(x.col(0).iter().copied().collect());
    }
    Some(iterates)
}

/// `ρ_k = ‖b u_k − λ_k u_k‖ / (‖b‖_F ‖u_k‖)` for every column of `u` (0 for a zero residual,
/// so that the zero matrix and zero columns give 0 rather than NaN). `b u` is formed as two real
/// products, `b Re(u) + i b Im(u)`.
fn residuals(b: &Mat<f64>, norm_b: f64, values: &[c64], u: &Mat<c64>) -> Vec<f64> {
    let (m, n) = (u.nrows(), u.ncols());
    let re = Mat::from_fn(m, n, |i, k| u[(i, k)].re);
    let im = Mat::from_fn(m, n, |i, k| u[(i, k)].im);
    let (b_re, b_im) = (b * &re, b * &im);
    (0..n)
        .map(|k| {
            let mut num = 0.0;
            let mut den = 0.0;
            for i in 0..m {
                num += (c64::new(b_re[(i, k)], b_im[(i, k)]) - values[k] * u[(i, k)]).norm_sqr();
                den += u[(i, k)].norm_sqr();
            }
            if num == 0.0 {
                0.0
            } else {
                num.sqrt() / (norm_b * den.sqrt())
            }
        })
        .collect()
}

/// The Frobenius norm `‖A‖_F`.
pub(crate) fn frobenius(a: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * a[(i, j)];
        }
    }
    s.sqrt()
}
