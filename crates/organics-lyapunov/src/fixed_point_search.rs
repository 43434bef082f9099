//! Fixed points of a circuit of any size by deflated Newton from many seeded starts
//! (docs/model.md § Fixed-point search). An enumeration, not a proof: a point whose basin no
//! start falls in, and that deflation does not reach, is missed.
//!
//! From each start `x⁰` (a log-uniform between `b₀²σ²`, the floor every fixed point obeys, and
//! [`SearchOptions::a_max`]; y on the y-nullcline `(I − diag(1 − √a) W_r) y = b ⊙ z`, as in the
//! paper's iterative algorithm):
//!
//! 1. **Newton** on `f(x) = 0` (the iteration below with nothing removed, μ = 1: backtracking
//!    on the scaled residual, keeping `a > 0`), polished by organics-core's `newton_polish`;
//!    where it converges, the start is counted for the point it reached (`starts`).
//! 2. **Deflated Newton** (Farrell, Birkisson & Funke 2015) on `G(x) = μ(x) f(x)` with every
//!    point `r_k` known so far removed by
//!
//!    ```text
//!    μ(x) = Π_k ( ‖x − r_k‖₂^(−p) + 1 ),   p = 2
//!    ```
//!
//!    `G` has the roots of `f` except the `r_k` (near `r_k`, `‖G‖ → ∞` instead of 0). Its Newton
//!    step is the plain one rescaled (Sherman–Morrison on `J_G = μ J + f ∇μᵀ`):
//!
//!    ```text
//!    δ = −J(x)⁻¹ f(x),     δ_G = δ / (1 − ∇ln μ(x) · δ),
//!    ∇ln μ = Σ_k −p ‖x − r_k‖^(−p−2) (x − r_k) / (‖x − r_k‖^(−p) + 1)
//!    ```
//!
//!    The iteration runs in `(y, s = √a)` (J's a-columns times 2s; a → 0 is where √a has
//!    an infinite slope and iterates in `a` stall), with a fraction-to-the-boundary rule (no
//!    step takes `s` below a tenth of its value) and backtracking on `‖f ⊙ τ‖₂ μ`.
//!    A root found this way is polished by plain Newton and recorded (`deflated`), and the
//!    deflated run restarts from the same start with it removed too, until it fails.
//!
//! Each distinct point (`‖x − r‖∞ ≤ 1e-6 (1 + ‖r‖∞)` counts as the same) gets its stability
//! verdict from [`linear_stability`], the one place stability is judged.

use crate::error::LyapunovError;
use crate::stability::{LinearStability, linear_stability};
use faer::Mat;
use faer::linalg::solvers::Solve;
use organics_core::steady_state::{NewtonOptions, newton_polish};
use organics_core::{Circuit, VectorField};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Options of [`search_fixed_points`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Number of seeded starts.
    pub starts: usize,
    /// Seed of the starts (ChaCha8).
    pub seed: u64,
    /// Upper end of the range of initial modulators a (log-uniform from `b₀²σ²`).
    pub a_max: f64,
    /// Most deflated Newton iterations per run.
    pub max_iterations: usize,
    /// A point counts when its scaled residual `max_i |f_i| τ_i` is below this.
    pub tol: f64,
}

impl SearchOptions {
    /// Defaults for `circuit`: 64 starts, seed 0, `a` up to `max(4, 2 max_i (b_i z_i)² ‖W‖_∞)`
    /// (about where `a = b₀²σ² + W (y² a)` puts it when `y ≈ b z / √a`), 100 iterations,
    /// residual 1e-10 (Newton then polishes to 1e-12).
    pub fn for_circuit(circuit: &Circuit) -> Self {
        let n = circuit.n();
        let drive = circuit
            .b()
            .iter()
            .zip(circuit.z())
            .fold(0.0_f64, |m, (b, z)| m.max((b * z).powi(2)));
        let w_inf = (0..n)
            .map(|i| (0..n).map(|j| circuit.w()[(i, j)]).sum::<f64>())
            .fold(0.0, f64::max);
        Self {
            starts: 64,
            seed: 0,
            a_max: (2.0 * drive * w_inf).max(4.0),
            max_iterations: 100,
            tol: 1e-10,
        }
    }
}

/// One distinct fixed point found.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPoint {
    /// The state `[y; a]`.
    pub x: Vec<f64>,
    /// Its scaled residual.
    pub residual: f64,
    /// Starts from which plain Newton converged to it.
    pub starts: usize,
    /// Deflated runs that found it (0 when plain Newton found it first).
    pub deflated: usize,
    /// Spectrum and verdict of the Jacobian there.
    pub stability: LinearStability,
}

/// What [`search_fixed_points`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchReport {
    /// Distinct points, most-found first.
    pub points: Vec<FoundPoint>,
    /// Starts tried.
    pub starts: usize,
    /// Starts from which plain Newton did not converge.
    pub newton_failures: usize,
    /// The seed used.
    pub seed: u64,
}

/// A fixed point is finite and has `a > 0` (with `⌊a⌋ = 0` the a-equation gives
/// `a = b₀²σ² > 0`): anything else Newton reports is a numerical artefact.
fn admissible(x: &[f64]) -> bool {
    let n = x.len() / 2;
    x.iter().all(|v| v.is_finite()) && x[n..].iter().all(|&a| a > 0.0)
}

fn same(x: &[f64], r: &[f64]) -> bool {
    let scale = 1.0 + r.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    x.iter().zip(r).all(|(a, b)| (a - b).abs() <= 1e-6 * scale)
}

/// Search `circuit` for fixed points; see the module docs.
///
/// # Errors
/// [`LyapunovError::BadOption`] for zero starts or a non-positive scale or tolerance; the
/// errors of [`linear_stability`].
pub fn search_fixed_points(
    circuit: &Circuit,
    opts: &SearchOptions,
) -> Result<SearchReport, LyapunovError> {
    if opts.starts == 0 {
        return Err(LyapunovError::BadOption {
            option: "starts",
            value: 0.0,
            reason: "must be >= 1",
        });
    }
    for (option, value) in [("a_max", opts.a_max), ("tol", opts.tol)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(LyapunovError::BadOption {
                option,
                value,
                reason: "must be a finite number > 0",
            });
        }
    }
    let n = circuit.n();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut found: Vec<(Vec<f64>, f64, usize, usize)> = Vec::new();
    let mut newton_failures = 0;
    let polish = NewtonOptions::default();
    for _ in 0..opts.starts {
        // a log-uniform, then y on the y-nullcline: (I − diag(1 − √a) W_r) y = b ⊙ z.
        let mut x0 = vec![0.0; 2 * n];
        for i in 0..n {
            let lo = circuit.b0_sigma_sq()[i];
            let hi = (10.0 * lo).max(opts.a_max);
            x0[n + i] = lo * (hi / lo).powf(rng.random::<f64>());
        }
        let system = Mat::from_fn(n, n, |i, j| {
            let id = if i == j { 1.0 } else { 0.0 };
            id - (1.0 - x0[n + i].sqrt()) * circuit.w_r().entry(i, j)
        });
        let drive = Mat::from_fn(n, 1, |i, _| circuit.b()[i] * circuit.z()[i]);
        let y = system.partial_piv_lu().solve(&drive);
        for i in 0..n {
            x0[i] = y[(i, 0)];
        }
        if !admissible(&x0) {
            newton_failures += 1;
            continue;
        }
        // Plain Newton: the deflated iteration with nothing removed (μ = 1), which keeps a > 0.
        let plain = deflated_newton(circuit, &x0, &[], opts)
            .map(|x| newton_polish(circuit, &x, polish))
            .transpose()?
            .map(|r| {
                (
                    r.converged(),
                    [r.y.clone(), r.a.clone()].concat(),
                    r.residual,
                )
            });
        match plain {
            Some((true, x, residual)) if admissible(&x) => {
                match found.iter_mut().find(|p| same(&x, &p.0)) {
                    Some(p) => p.2 += 1,
                    None => found.push((x, residual, 1, 0)),
                }
            }
            _ => newton_failures += 1,
        }
        // Deflated runs from the same start, each removing every point known so far.
        for _ in 0..4 {
            let known: Vec<&[f64]> = found.iter().map(|p| p.0.as_slice()).collect();
            let Some(x) = deflated_newton(circuit, &x0, &known, opts) else {
                break;
            };
            let polished = newton_polish(circuit, &x, polish)?;
            let x = [polished.y.clone(), polished.a.clone()].concat();
            if !polished.converged() || !admissible(&x) {
                break;
            }
            match found.iter_mut().find(|p| same(&x, &p.0)) {
                // Deflation converged back onto a known point (possible far from it, where μ
                // is ≈ 1): nothing new from this start.
                Some(p) => {
                    p.3 += 1;
                    break;
                }
                None => found.push((x, polished.residual, 0, 1)),
            }
        }
    }
    let mut points = found
        .into_iter()
        .map(|(x, residual, starts, deflated)| {
            Ok(FoundPoint {
                stability: linear_stability(&circuit.jacobian(&x))?,
                x,
                residual,
                starts,
                deflated,
            })
        })
        .collect::<Result<Vec<_>, LyapunovError>>()?;
    points.sort_by_key(|p| std::cmp::Reverse((p.starts, p.deflated)));
    Ok(SearchReport {
        points,
        starts: opts.starts,
        newton_failures,
        seed: opts.seed,
    })
}

/// Deflated Newton from `x0` with the points `known` removed; the root it reaches, if any.
fn deflated_newton(
    circuit: &Circuit,
    x0: &[f64],
    known: &[&[f64]],
    opts: &SearchOptions,
) -> Option<Vec<f64>> {
    const P: f64 = 2.0;
    let m = x0.len();
    let n = m / 2;
    let mut x = x0.to_vec();
    let mut f = vec![0.0; m];
    let mut jac = Mat::zeros(m, m);
    // ln μ and its gradient at x.
    let deflation = |x: &[f64], grad: &mut [f64]| -> f64 {
        grad.fill(0.0);
        let mut ln_mu = 0.0;
        for r in known {
            let d2: f64 = x.iter().zip(*r).map(|(a, b)| (a - b).powi(2)).sum();
            let d = d2.sqrt().max(f64::MIN_POSITIVE);
            let q = d.powf(-P);
            ln_mu += (q + 1.0).ln();
            let c = -P * q / d2.max(f64::MIN_POSITIVE) / (q + 1.0);
            for (g, (a, b)) in grad.iter_mut().zip(x.iter().zip(*r)) {
                *g += c * (a - b);
            }
        }
        ln_mu
    };
    let mut grad = vec![0.0; m];
    let mut trial = vec![0.0; m];
    circuit.rhs(&x, &mut f);
    // The merit: the Euclidean norm of the scaled residual `f ⊙ τ` (smooth, unlike the max
    // norm, so backtracking does not stall on its kinks), times μ.
    let tau: Vec<f64> = circuit
        .tau_y()
        .iter()
        .chain(circuit.tau_a())
        .copied()
        .collect();
    let norm2 = |f: &[f64]| {
        f.iter()
            .zip(&tau)
            .map(|(v, t)| (v * t).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mut merit = norm2(&f) * deflation(&x, &mut grad).exp();
    for _ in 0..opts.max_iterations {
        if circuit.scaled_norm(&f) < opts.tol {
            return Some(x);
        }
        // Newton in (y, s = √a): the a-columns of J times 2s. In a, the step is singular where
        // a → 0 (√a has an infinite slope there), and iterates stall on that boundary.
        circuit.jacobian_into(&x, jac.as_mut());
        let s: Vec<f64> = x[n..].iter().map(|a| a.sqrt()).collect();
        for j in 0..n {
            for i in 0..m {
                jac[(i, n + j)] *= 2.0 * s[j];
            }
        }
        let rhs = Mat::from_fn(m, 1, |i, _| -f[i]);
        let delta = jac.partial_piv_lu().solve(&rhs);
        let g_dot: f64 = (0..m)
            .map(|i| {
                let chain = if i < n { 1.0 } else { 2.0 * s[i - n] };
                grad[i] * chain * delta[(i, 0)]
            })
            .sum();
        let denom = 1.0 - g_dot;
        if !denom.is_finite() || denom.abs() < 1e-12 {
            return None;
        }
        let tau = 1.0 / denom;
        // Fraction to the boundary: no step takes s below a tenth of its value.
        let mut alpha: f64 = 1.0;
        for j in 0..n {
            let ds = tau * delta[(n + j, 0)];
            if ds < 0.0 {
                alpha = alpha.min(0.9 * s[j] / -ds);
            }
        }
        // Backtrack on the deflated merit.
        let mut accepted = false;
        for _ in 0..30 {
            for i in 0..n {
                trial[i] = x[i] + alpha * tau * delta[(i, 0)];
                trial[n + i] = (s[i] + alpha * tau * delta[(n + i, 0)]).powi(2);
            }
            if trial[n..].iter().all(|&a| a > 0.0) {
                circuit.rhs(&trial, &mut f);
                let mut g2 = vec![0.0; m];
                let t = norm2(&f) * deflation(&trial, &mut g2).exp();
                if t.is_finite() && t < merit {
                    x.copy_from_slice(&trial);
                    merit = t;
                    grad = g2;
                    accepted = true;
                    break;
                }
            }
            alpha *= 0.5;
        }
        if !accepted {
            return None;
        }
    }
    circuit.rhs(&x, &mut f);
    (circuit.scaled_norm(&f) < opts.tol).then_some(x)
}
