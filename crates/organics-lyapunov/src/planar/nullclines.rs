//! The nullclines of the one-neuron circuit, as polylines in the `(y, a)` plane.
//!
//! With `c = b z`, `β = b0² σ²`, `s = √⌊a⌋`, `D(a) = 1 − w_r + w_r s` and `g(y) = y` (main) or
//! `⌊y⌋` (rectified), both nullclines are graphs over `a`:
//!
//! ```text
//! y-nullcline (ẏ = 0):  main: y = c / D(a)       (for a ≤ 0, D = 1 − w_r: a vertical half-line)
//!                       rectified: y = c / D(a) where that is > 0, and the line y = c if c ≤ 0
//!                       c = 0: also the horizontal line a = (1 − 1/w_r)² where D = 0
//!                       (for y > 0 only, in the rectified model)
//! a-nullcline (ȧ = 0):  a (1 − w g(y)²) = β:  y = ±√((1 − β/a) / w) for a ≥ β
//!                       (rectified: y = +√(…), and the half-line a = β for y ≤ 0);
//!                       no points with a < β (there τ_a ȧ = β − a + w g² ⌊a⌋ > 0 when a ≤ 0,
//!                       and a(1 − w g²) = β forces a ≥ β when a > 0)
//! ```
//!
//! Each graph is sampled on a grid of `a` and refined adaptively where it bends.

use super::field::PlaneCircuit;
use super::flow::Window;
use crate::error::LyapunovError;
use organics_core::{Circuit, Model};

/// Both nullclines as lists of polylines of `(y, a)` points.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Nullclines {
    /// Polylines of `dy/dt = 0`.
    pub y_nullcline: Vec<Vec<(f64, f64)>>,
    /// Polylines of `da/dt = 0`.
    pub a_nullcline: Vec<Vec<(f64, f64)>>,
}

/// Sample the curve `a = f(y)` (undefined where `f` is `None`) at the grid `ys`, refining
/// adaptively: an interval is halved (up to 14 times) while its midpoint is more than
/// `tol_a` away from the chord or its ends differ by more than `10 tol_a` (so no pole or
/// steep stretch is bridged by a long chord), and an interval where the curve is undefined
/// at an end or the midpoint is bisected towards the edge of the domain. Returns the polylines between undefined stretches.
fn sample_curve(f: &dyn Fn(f64) -> Option<f64>, ys: &[f64], tol_a: f64) -> Vec<Vec<(f64, f64)>> {
    fn refine(
        f: &dyn Fn(f64) -> Option<f64>,
        (y0, a0): (f64, Option<f64>),
        (y1, a1): (f64, Option<f64>),
        tol_a: f64,
        depth: u32,
        out: &mut Vec<(f64, Option<f64>)>,
    ) {
        let ym = 0.5 * (y0 + y1);
        let am = f(ym);
        let split = depth > 0
            && match (a0, am, a1) {
                (Some(u), Some(m), Some(v)) => {
                    (m - 0.5 * (u + v)).abs() > tol_a || (v - u).abs() > 10.0 * tol_a
                }
                (None, None, None) => false,
                // A domain edge or a pole inside the interval: bisect towards it.
                _ => true,
            };
        if split {
            refine(f, (y0, a0), (ym, am), tol_a, depth - 1, out);
            out.push((ym, am));
            refine(f, (ym, am), (y1, a1), tol_a, depth - 1, out);
        }
    }
    let mut pts: Vec<(f64, Option<f64>)> = Vec::new();
    for (k, &y) in ys.iter().enumerate() {
        let p = (y, f(y));
        if k > 0 {
            let prev = pts[pts.len() - 1];
            refine(f, prev, p, tol_a, 14, &mut pts);
        }
        pts.push(p);
    }
    let mut out = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for (y, a) in pts {
        match a {
            Some(a) => cur.push((y, a)),
            None => {
                if cur.len() > 1 {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur.clear();
                }
            }
        }
    }
    if cur.len() > 1 {
        out.push(cur);
    }
    out
}

/// The nullclines of a one-neuron circuit over a window, each graph sampled at `samples`
/// values of `a` and refined adaptively where it bends (chord error ≤ 1/1000 of the window
/// width). Curves are cut where they leave the window by more than its size.
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1; [`LyapunovError::BadOption`] for fewer than two
/// samples.
pub fn nullclines(
    circuit: &Circuit,
    window: &Window,
    samples: usize,
) -> Result<Nullclines, LyapunovError> {
    let plane = PlaneCircuit::new(circuit)?;
    if samples < 2 {
        return Err(LyapunovError::BadOption {
            option: "samples",
            value: samples as f64,
            reason: "need at least 2 samples per curve",
        });
    }
    let (wr, w, c, beta) = (plane.w_r(), plane.w(), plane.drive(), plane.beta());
    let rectified = circuit.model() == Model::Rectified;
    let (width, height) = (window.y_max - window.y_min, window.a_max - window.a_min);
    let (y_lo, y_hi) = (window.y_min - width, window.y_max + width);
    let (a_lo, a_hi) = (window.a_min - height, window.a_max + height);
    let inside = |y: f64| y.is_finite() && y >= y_lo && y <= y_hi;
    // Chord error allowed by the adaptive sampling: 1/1000 of the window width.
    let tol = 1e-3 * width;
    let grid = |lo: f64, hi: f64, extra: &[f64]| -> Vec<f64> {
        let mut v: Vec<f64> = (0..samples)
            .map(|k| lo + (hi - lo) * k as f64 / (samples - 1) as f64)
            .chain(extra.iter().copied().filter(|x| *x > lo && *x < hi))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let swap = |lines: Vec<Vec<(f64, f64)>>| -> Vec<Vec<(f64, f64)>> {
        lines
            .into_iter()
            .map(|l| l.into_iter().map(|(a, y)| (y, a)).collect())
            .collect()
    };
    let mut out = Nullclines::default();

    // y-nullcline: y = c / D(a).
    let as_ = grid(a_lo, a_hi, &[0.0]);
    let y_of_a = |a: f64| {
        let d = 1.0 - wr + wr * a.max(0.0).sqrt();
        let y = c / d;
        (inside(y) && !(rectified && y <= 0.0)).then_some(y)
    };
    if c != 0.0 {
        out.y_nullcline
            .extend(swap(sample_curve(&y_of_a, &as_, tol)));
    } else {
        out.y_nullcline
            .push(vec![(0.0, window.a_min), (0.0, window.a_max)]);
    }
    if rectified && c < 0.0 {
        out.y_nullcline
            .push(vec![(c, window.a_min), (c, window.a_max)]);
    }
    if c == 0.0 && wr > 1.0 {
        let a0 = (1.0 - 1.0 / wr).powi(2);
        let left = if rectified { 0.0 } else { window.y_min };
        out.y_nullcline.push(vec![(left, a0), (window.y_max, a0)]);
    }

    // a-nullcline: y = ±√((1 − β/a)/w) for a ≥ β.
    if w > 0.0 {
        let branch = |sign: f64| {
            move |a: f64| {
                let q = (1.0 - beta / a) / w;
                (a >= beta && q >= 0.0)
                    .then(|| sign * q.sqrt())
                    .filter(|y| inside(*y))
            }
        };
        let lo = beta.max(a_lo);
        if lo < a_hi {
            let as_ = grid(lo, a_hi, &[]);
            let plus = swap(sample_curve(&branch(1.0), &as_, tol));
            if rectified {
                out.a_nullcline.extend(plus);
                if beta >= a_lo && beta <= a_hi {
                    out.a_nullcline
                        .push(vec![(window.y_min.min(0.0), beta), (0.0, beta)]);
                }
            } else {
                // Join the two branches at (0, β) when both reach it.
                let mut minus = swap(sample_curve(&branch(-1.0), &as_, tol));
                // Both branches start at the first grid value a = β (y = ±0) when β is in range.
                let at_beta = |a: f64| (a - beta).abs() <= f64::EPSILON * beta;
                if let (Some(m), Some(p)) = (minus.first_mut(), plus.first())
                    && at_beta(m[0].1)
                    && at_beta(p[0].1)
                {
                    m.reverse();
                    m.extend_from_slice(&p[1..]);
                    out.a_nullcline.extend(minus);
                    out.a_nullcline.extend(plus.into_iter().skip(1));
                    return Ok(out);
                }
                out.a_nullcline.extend(minus);
                out.a_nullcline.extend(plus);
            }
        }
    } else if beta >= a_lo && beta <= a_hi {
        out.a_nullcline
            .push(vec![(window.y_min, beta), (window.y_max, beta)]);
    }
    Ok(out)
}
