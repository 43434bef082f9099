//! Every real fixed point of the one-neuron circuit, and its linear stability (docs/model.md#phase-plane).
//!
//! With scalars `w_r, w, b, b0, σ, z`, the drive `c = b z`, `β = b0² σ²`, `s = √a` and
//! `D = 1 − w_r + w_r s`, a fixed point of the **main model** has `y = c / D` and
//! `a (1 − w y²) = β`, so `D² (s² − β) = w c² s²`, i.e. `s` is a positive real root of
//!
//! ```text
//! w_r² s⁴ + 2(1−w_r) w_r s³ + [(1−w_r)² − w c² − β w_r²] s² − 2(1−w_r) w_r β s − (1−w_r)² β = 0.
//! ```
//!
//! (`a ≤ 0` is impossible at a fixed point: the a-equation would give `a = β > 0`.)
//!
//! The **rectified model** is piecewise:
//! - `y ≤ 0`: the recurrence is off, so `y = c` and `a = β`; a fixed point iff `c ≤ 0`;
//! - `y > 0`: the equations are the main model's, so the quartic's roots with `y = c/D > 0`.
//!
//! With `z = 0` the quartic factors as `D² (s² − β)`: `y = 0, a = β`, and, if `w_r > 1`,
//! `a₀ = (1 − 1/w_r)² > β` and `w > 0`, the pair `y = ±√((1 − β/a₀)/w)` at `D = 0`
//! (only the positive one for the rectified model).
//!
//! Each fixed point is classified from the analytic Jacobian (core, docs/model.md#jacobian):
//! `J11 = −D/τ_y`, `J12 = −w_r y/(2 s τ_y)`, `J21 = 2 w y a/τ_a`, `J22 = −β/(a τ_a)`.
//! [`newton_fixed_points`] finds the same points by the general Newton search, seeded along
//! the a-nullcline, as an independent cross-check.

use super::field::{NewtonSearchOptions, PlaneCircuit, newton_from, newton_search};
use crate::classify::Kind;
use crate::error::LyapunovError;
use crate::spectrum::eigenvalues;
use crate::stability::{Verdict, linear_stability};
use faer::Mat;
use nalgebra::Vector2;
use organics_core::{Circuit, Model};

/// A fixed point of the 2-D circuit with its linearisation.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedPoint2D {
    /// Principal-neuron potential.
    pub y: f64,
    /// Modulator potential.
    pub a: f64,
    /// The two eigenvalues `(Re, Im)` of the Jacobian, larger real part first (1/time unit).
    pub eigenvalues: [(f64, f64); 2],
    /// The larger real part.
    pub max_real: f64,
    /// `verdict == Stable`.
    pub stable: bool,
    /// Stable / marginal / unstable (see [`crate::stability`](mod@crate::stability) for the tolerance).
    pub verdict: Verdict,
    /// Node, focus, saddle, ... from trace and determinant.
    pub kind: Kind,
    /// The scaled residual `max(|f_y| τ_y, |f_a| τ_a)` at the point.
    pub residual: f64,
}

/// The coefficients of the quartic in `s = √a`, highest degree first (module docs).
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1.
pub fn quartic_coefficients(circuit: &Circuit) -> Result<[f64; 5], LyapunovError> {
    let p = PlaneCircuit::new(circuit)?;
    let (wr, w, c, beta) = (p.w_r(), p.w(), p.drive(), p.beta());
    let u = 1.0 - wr;
    Ok([
        wr * wr,
        2.0 * u * wr,
        u * u - w * c * c - beta * wr * wr,
        -2.0 * u * wr * beta,
        -u * u * beta,
    ])
}

/// Horner evaluation of `p(s)` and `p'(s)` (coefficients highest degree first), and the sum
/// `Σ |c_k| |s|^k` that bounds the rounding error of the evaluation.
fn horner(coeffs: &[f64], s: f64) -> (f64, f64, f64) {
    let (mut p, mut dp, mut mag) = (0.0, 0.0, 0.0);
    for &c in coeffs {
        dp = dp * s + p;
        p = p * s + c;
        mag = mag * s.abs() + c.abs();
    }
    (p, dp, mag)
}

/// The distinct real roots of a polynomial (coefficients highest degree first), ascending.
///
/// Candidates are the eigenvalues of the companion matrix (balanced, faer) with a small
/// imaginary part; each is polished by Newton's method on the real line and kept if
/// `|p(s)| ≤ 1e3 ε Σ|c_k||s|^k`, i.e. zero up to the rounding of its own evaluation (with a
/// margin of 1e3 for the ill-conditioning of double roots). Near-double roots whose computed
/// pair has an imaginary part above `1e-6 (1 + |s|)` are not reported.
pub fn real_roots(coeffs: &[f64]) -> Vec<f64> {
    let start = coeffs
        .iter()
        .position(|c| *c != 0.0)
        .unwrap_or(coeffs.len());
    let c = &coeffs[start..];
    if c.len() < 2 {
        return Vec::new();
    }
    let d = c.len() - 1;
    let lead = c[0];
    // Companion matrix of the monic polynomial s^d + (c1/c0) s^{d−1} + … .
    let comp = Mat::from_fn(d, d, |i, j| {
        if i == 0 {
            -c[j + 1] / lead
        } else if i == j + 1 {
            1.0
        } else {
            0.0
        }
    });
    let Ok(values) = eigenvalues(&comp) else {
        return Vec::new();
    };
    let mut roots: Vec<f64> = Vec::new();
    for v in values {
        if v.im.abs() > 1e-6 * (1.0 + v.re.abs()) {
            continue;
        }
        let mut s = v.re;
        for _ in 0..30 {
            let (p, dp, _) = horner(c, s);
            if dp == 0.0 {
                break;
            }
            let next = s - p / dp;
            if !next.is_finite() || (next - s).abs() <= f64::EPSILON * s.abs() {
                break;
            }
            s = next;
        }
        let (p, _, mag) = horner(c, s);
        if p.abs() <= 1e3 * f64::EPSILON * mag
            && !roots
                .iter()
                .any(|r| (r - s).abs() <= 1e-9 * (1.0 + s.abs()))
        {
            roots.push(s);
        }
    }
    roots.sort_by(f64::total_cmp);
    roots
}

/// Linearise at `(y, a)` and package the result.
fn classify(circuit: &Circuit, y: f64, a: f64) -> Result<FixedPoint2D, LyapunovError> {
    let lin = linear_stability(&circuit.jacobian(&[y, a]))?;
    let ev = [lin.eigenvalues[0], lin.eigenvalues[1]];
    Ok(FixedPoint2D {
        y,
        a,
        eigenvalues: ev,
        max_real: lin.max_real,
        stable: lin.verdict == Verdict::Stable,
        verdict: lin.verdict,
        kind: lin.kind.unwrap_or(Kind::Degenerate),
        residual: circuit.residual(&[y, a]),
    })
}

/// Polish a candidate with Newton on the full planar system; keep the polished point if it
/// stayed close, else keep the candidate if it is a zero already.
fn polish(plane: &PlaneCircuit<'_>, y: f64, a: f64) -> Option<(f64, f64)> {
    let opts = NewtonSearchOptions {
        max_iterations: 8,
        ..NewtonSearchOptions::default()
    };
    let circuit = plane.circuit();
    if let Some(p) = newton_from(plane, Vector2::new(y, a), opts) {
        let close = (p[0] - y).abs() <= 1e-6 * (1.0 + y.abs())
            && (p[1] - a).abs() <= 1e-6 * (1.0 + a.abs());
        if close {
            return Some((p[0], p[1]));
        }
    }
    // 1e-9 (relative to the state, like Newton's criterion): a candidate from the quartic that
    // Newton could not improve is accepted only if it is a zero to well below any plotting or
    // classification scale.
    (circuit.residual(&[y, a]) < 1e-9 * (1.0 + y.abs().max(a.abs()))).then_some((y, a))
}

fn dedup_sort(points: &mut Vec<(f64, f64)>) {
    points.sort_by(|u, v| u.0.total_cmp(&v.0).then(u.1.total_cmp(&v.1)));
    points.dedup_by(|u, v| {
        (u.0 - v.0).abs() <= 1e-9 * (1.0 + u.0.abs())
            && (u.1 - v.1).abs() <= 1e-9 * (1.0 + u.1.abs())
    });
}

/// Every real fixed point of a one-neuron circuit, from the quartic (main model) or its
/// branches (rectified model), sorted by `y`, each with eigenvalues and kind.
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1, and eigensolver errors.
pub fn fixed_points(circuit: &Circuit) -> Result<Vec<FixedPoint2D>, LyapunovError> {
    let plane = PlaneCircuit::new(circuit)?;
    let (wr, w, c, beta) = (plane.w_r(), plane.w(), plane.drive(), plane.beta());
    let rectified = circuit.model() == Model::Rectified;
    let mut candidates: Vec<(f64, f64)> = Vec::new();
    if c == 0.0 {
        candidates.push((0.0, beta));
        if wr != 0.0 && w > 0.0 {
            let s0 = 1.0 - 1.0 / wr;
            let a0 = s0 * s0;
            if s0 > 0.0 && a0 > beta {
                let y0 = ((1.0 - beta / a0) / w).sqrt();
                candidates.push((y0, a0));
                if !rectified {
                    candidates.push((-y0, a0));
                }
            }
        }
    } else {
        for s in real_roots(&quartic_coefficients(circuit)?) {
            if s <= 0.0 {
                continue;
            }
            let d = 1.0 - wr + wr * s;
            let y = c / d;
            if !y.is_finite() || (rectified && y <= 0.0) {
                continue;
            }
            candidates.push((y, s * s));
        }
        if rectified && c < 0.0 {
            candidates.push((c, beta));
        }
    }
    let mut points: Vec<(f64, f64)> = candidates
        .into_iter()
        .filter_map(|(y, a)| polish(&plane, y, a))
        .collect();
    dedup_sort(&mut points);
    points
        .into_iter()
        .map(|(y, a)| classify(circuit, y, a))
        .collect()
}

/// Seeds for the Newton search: points on the a-nullcline `a = β / (1 − w y²)` for `y` across
/// `(−1/√w, 1/√w)` (every fixed point has `w y² < 1`), spaced as `sin` so they crowd towards
/// the ends where `a` grows, plus the same `y` at `a = β` and at `4a`.
fn circuit_seeds(plane: &PlaneCircuit<'_>, count: usize) -> Vec<[f64; 2]> {
    let (w, c, beta) = (plane.w(), plane.drive(), plane.beta());
    // Without normalisation (w = 0) |y| = |c / D| is unbounded in principle; 100 (1 + |c|)
    // covers D down to 1 %.
    let y_max = if w > 0.0 {
        1.0 / w.sqrt()
    } else {
        100.0 * (1.0 + c.abs())
    };
    let mut seeds = Vec::with_capacity(3 * count);
    for k in 0..count {
        let t = -1.0 + 2.0 * (k as f64 + 0.5) / count as f64;
        let y = y_max * (std::f64::consts::FRAC_PI_2 * t).sin();
        let a = if w > 0.0 {
            beta / (1.0 - w * y * y)
        } else {
            beta
        };
        seeds.push([y, a]);
        seeds.push([y, beta]);
        seeds.push([y, 4.0 * a]);
    }
    seeds
}

/// The fixed points of a one-neuron circuit found by the general seeded Newton search
/// ([`newton_search`]), classified like [`fixed_points`]; an independent cross-check of the
/// quartic.
///
/// # Errors
/// As [`fixed_points`].
pub fn newton_fixed_points(circuit: &Circuit) -> Result<Vec<FixedPoint2D>, LyapunovError> {
    let plane = PlaneCircuit::new(circuit)?;
    let seeds = circuit_seeds(&plane, 200);
    newton_search(&plane, &seeds, NewtonSearchOptions::default())
        .into_iter()
        .map(|[y, a]| classify(circuit, y, a))
        .collect()
}
