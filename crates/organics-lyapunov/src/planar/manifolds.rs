//! The stable manifolds of saddles of the one-neuron circuit: the separatrices that bound the
//! basins of attraction.
//!
//! At a saddle `p*` the Jacobian `J` has real eigenvalues `λ_s < 0 < λ_u`; the stable manifold
//! `W^s(p*) = {p : φ_t(p) → p* as t → ∞}` is a curve through `p*` tangent to the eigenvector
//! `v_s` of `λ_s`, `(J − λ_s I) v_s = 0`. Each of its two branches is the trajectory of the
//! time-reversed flow `ṗ = −F(p)` started at `p* ± δ v_s`: in reversed time the manifold
//! attracts its neighbours (at the rate `λ_u`), so the computation is well-conditioned.
//!
//! The reversed flow is followed by arc length in window-normalised coordinates
//! `(u, v) = ((y − y_min)/(y_max − y_min), (a − a_min)/(a_max − a_min))`:
//! `dp/ds = −F̂(p)/‖F̂(p)‖` with classic RK4 steps of `h = 10⁻³` (a thousandth of the window),
//! so fast and slow stretches get the same resolution. It starts at `δ = 10⁻⁶` along `v_s`
//! (normalised), where the manifold deviates from its tangent by `O(δ²)`, with steps of half
//! the distance to the saddle until they reach `h` (the field's direction varies on the scale
//! of that distance near the saddle). A branch stops when it leaves the window
//! (by more than 5 %), comes within `2h` of another fixed point (a source, in reversed time an
//! attractor), meets a zero of the field, or after an arc length of 20 windows (it winds
//! around a repelling cycle or spirals slowly).

use super::field::PlaneCircuit;
use super::fixed_points::FixedPoint2D;
use super::flow::Window;
use crate::classify::Kind;
use crate::error::LyapunovError;
use organics_core::Circuit;

/// Why a branch of a stable manifold ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchEnd {
    /// It left the window (by more than 5 % of its size).
    LeftWindow,
    /// It came within `2h` of another fixed point (index into the fixed-point list): in forward
    /// time the manifold emanates from that point.
    FixedPoint(usize),
    /// The field vanished or stopped being finite on the way.
    Stalled,
    /// It reached the arc-length limit (20 windows) without leaving.
    ArcLength,
}

/// One branch of a stable manifold: points from the saddle outwards.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifoldBranch {
    /// `(y, a)` points, the first at the saddle.
    pub points: Vec<(f64, f64)>,
    /// Why the branch ends.
    pub end: BranchEnd,
}

/// The stable manifold of one saddle.
#[derive(Debug, Clone, PartialEq)]
pub struct StableManifold {
    /// The saddle `(y, a)`.
    pub saddle: (f64, f64),
    /// The stable eigenvalue `λ_s < 0` (1/time unit).
    pub eigenvalue: f64,
    /// The stable eigenvector `v_s` (unit length in `(y, a)`).
    pub direction: (f64, f64),
    /// The two branches, along `+v_s` and `−v_s`.
    pub branches: [ManifoldBranch; 2],
}

/// Arc-length step, in window-normalised units (module docs).
const STEP: f64 = 1e-3;
/// First offset from the saddle along the stable eigenvector, in window-normalised units.
const OFFSET: f64 = 1e-6;
/// Longest branch, in window-normalised arc length.
const MAX_ARC: f64 = 20.0;
/// How far beyond the window a branch may go before it stops (fraction of the window).
const MARGIN: f64 = 0.05;

/// The stable manifolds of the saddles among `fixed_points` (as returned by
/// [`super::fixed_points()`]) that lie in `window`, traced over `window` (module docs).
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1; [`LyapunovError::BadOption`] for an empty window.
pub fn stable_manifolds(
    circuit: &Circuit,
    window: &Window,
    fixed_points: &[FixedPoint2D],
) -> Result<Vec<StableManifold>, LyapunovError> {
    PlaneCircuit::new(circuit)?;
    window.check()?;
    let (w, h) = (window.y_max - window.y_min, window.a_max - window.a_min);
    let to_unit = |(y, a): (f64, f64)| ((y - window.y_min) / w, (a - window.a_min) / h);
    let to_data = |(u, v): (f64, f64)| (window.y_min + u * w, window.a_min + v * h);
    // Reversed-time unit direction in normalised coordinates, or None at a zero.
    let dir = |(u, v): (f64, f64)| -> Option<(f64, f64)> {
        let (y, a) = to_data((u, v));
        let mut f = [0.0; 2];
        circuit.rhs(&[y, a], &mut f);
        let (du, dv) = (-f[0] / w, -f[1] / h);
        let s = du.hypot(dv);
        (s.is_finite() && s > 0.0).then(|| (du / s, dv / s))
    };
    let others: Vec<(usize, (f64, f64))> = fixed_points
        .iter()
        .enumerate()
        .map(|(k, f)| (k, to_unit((f.y, f.a))))
        .collect();
    let inside = |(u, v): (f64, f64)| {
        (-MARGIN..=1.0 + MARGIN).contains(&u) && (-MARGIN..=1.0 + MARGIN).contains(&v)
    };
    let mut out = Vec::new();
    for (index, s) in fixed_points.iter().enumerate() {
        if s.kind != Kind::Saddle || !inside(to_unit((s.y, s.a))) {
            continue;
        }
        let j = circuit.jacobian(&[s.y, s.a]);
        let (j11, j12, j21, j22) = (j[(0, 0)], j[(0, 1)], j[(1, 0)], j[(1, 1)]);
        let (tr, det) = (j11 + j22, j11 * j22 - j12 * j21);
        // Real eigenvalues of opposite signs (det < 0): λ_s = (tr − √(tr² − 4 det)) / 2.
        let lambda = 0.5 * (tr - (tr * tr - 4.0 * det).max(0.0).sqrt());
        // A null vector of J − λ I: whichever of its two row-derived candidates is longer.
        let r1 = (j12, lambda - j11);
        let r2 = (lambda - j22, j21);
        let v = if r1.0.hypot(r1.1) >= r2.0.hypot(r2.1) {
            r1
        } else {
            r2
        };
        let n = v.0.hypot(v.1);
        let v = (v.0 / n, v.1 / n);
        // The direction in normalised coordinates, scaled to length δ = STEP.
        let vu = (v.0 / w, v.1 / h);
        let nu = vu.0.hypot(vu.1);
        let start = to_unit((s.y, s.a));
        let branch = |sign: f64| -> ManifoldBranch {
            let mut p = (
                start.0 + sign * OFFSET * vu.0 / nu,
                start.1 + sign * OFFSET * vu.1 / nu,
            );
            let mut points = vec![(s.y, s.a), to_data(p)];
            let mut arc = OFFSET;
            let end = loop {
                if arc > MAX_ARC {
                    break BranchEnd::ArcLength;
                }
                if !inside(p) {
                    break BranchEnd::LeftWindow;
                }
                if let Some(&(k, _)) = others
                    .iter()
                    .find(|(k, q)| *k != index && (p.0 - q.0).hypot(p.1 - q.1) < 2.0 * STEP)
                {
                    break BranchEnd::FixedPoint(k);
                }
                let h = STEP.min(0.5 * (p.0 - start.0).hypot(p.1 - start.1));
                arc += h;
                let rk4 = || -> Option<(f64, f64)> {
                    let k1 = dir(p)?;
                    let k2 = dir((p.0 + 0.5 * h * k1.0, p.1 + 0.5 * h * k1.1))?;
                    let k3 = dir((p.0 + 0.5 * h * k2.0, p.1 + 0.5 * h * k2.1))?;
                    let k4 = dir((p.0 + h * k3.0, p.1 + h * k3.1))?;
                    Some((
                        p.0 + h / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0),
                        p.1 + h / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1),
                    ))
                };
                match rk4() {
                    Some(q) => {
                        p = q;
                        points.push(to_data(p));
                    }
                    None => break BranchEnd::Stalled,
                }
            };
            ManifoldBranch { points, end }
        };
        out.push(StableManifold {
            saddle: (s.y, s.a),
            eigenvalue: lambda,
            direction: v,
            branches: [branch(1.0), branch(-1.0)],
        });
    }
    Ok(out)
}
