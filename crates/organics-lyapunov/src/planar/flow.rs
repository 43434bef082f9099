//! The flow of the one-neuron circuit: the vector field `(dy/dt, da/dt)` on a grid, and
//! trajectories `(y(t), a(t))` integrated with classic RK4.
//!
//! Units: `y` and `a` are dimensionless membrane potentials; `t` is in the time unit of
//! `τ_y, τ_a` (ms for the paper's figures), so the field is in 1/ms.

use super::field::PlaneCircuit;
use crate::error::LyapunovError;
use organics_core::integrate::{Rk4, simulate};
use organics_core::{Circuit, Model};

/// A rectangle of the `(y, a)` plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Smallest y.
    pub y_min: f64,
    /// Largest y.
    pub y_max: f64,
    /// Smallest a.
    pub a_min: f64,
    /// Largest a.
    pub a_max: f64,
}

impl Window {
    /// The window of the paper's Fig. 1 around a fixed point `(y*, a*)` (docs/model.md#figures):
    /// `y ∈ [y*−3, y*+3]`, and `a ∈ [a*−3, a*+5]` (main model) or `a ∈ [a*−3, a*+3]` (rectified).
    pub fn around(y: f64, a: f64, model: Model) -> Window {
        let up = match model {
            Model::Main => 5.0,
            Model::Rectified => 3.0,
        };
        Window {
            y_min: y - 3.0,
            y_max: y + 3.0,
            a_min: a - 3.0,
            a_max: a + up,
        }
    }

    pub(crate) fn check(&self) -> Result<(), LyapunovError> {
        let ok = |lo: f64, hi: f64| lo.is_finite() && hi.is_finite() && lo < hi;
        if !ok(self.y_min, self.y_max) {
            return Err(LyapunovError::BadOption {
                option: "window.y_max",
                value: self.y_max,
                reason: "the window needs finite y_min < y_max",
            });
        }
        if !ok(self.a_min, self.a_max) {
            return Err(LyapunovError::BadOption {
                option: "window.a_max",
                value: self.a_max,
                reason: "the window needs finite a_min < a_max",
            });
        }
        Ok(())
    }
}

/// The vector field sampled on a regular grid: entry `k = i_a · y.len() + i_y` is the field at
/// `(y[i_y], a[i_a])`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorGrid {
    /// Grid values of y, ascending.
    pub y: Vec<f64>,
    /// Grid values of a, ascending.
    pub a: Vec<f64>,
    /// dy/dt at every grid point (1/time unit).
    pub dy_dt: Vec<f64>,
    /// da/dt at every grid point (1/time unit).
    pub da_dt: Vec<f64>,
}

/// The vector field of a one-neuron circuit on an `ny × na` grid spanning `window`.
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1; [`LyapunovError::BadOption`] for a grid with fewer
/// than 2 points per axis or an empty window.
pub fn vector_grid(
    circuit: &Circuit,
    window: &Window,
    ny: usize,
    na: usize,
) -> Result<VectorGrid, LyapunovError> {
    PlaneCircuit::new(circuit)?;
    window.check()?;
    if ny < 2 || na < 2 {
        return Err(LyapunovError::BadOption {
            option: "grid",
            value: ny.min(na) as f64,
            reason: "need at least 2 grid points per axis",
        });
    }
    let lin = |lo: f64, hi: f64, m: usize| -> Vec<f64> {
        (0..m)
            .map(|k| lo + (hi - lo) * k as f64 / (m - 1) as f64)
            .collect()
    };
    let y = lin(window.y_min, window.y_max, ny);
    let a = lin(window.a_min, window.a_max, na);
    let mut dy_dt = Vec::with_capacity(ny * na);
    let mut da_dt = Vec::with_capacity(ny * na);
    let mut f = [0.0; 2];
    for &av in &a {
        for &yv in &y {
            circuit.rhs(&[yv, av], &mut f);
            dy_dt.push(f[0]);
            da_dt.push(f[1]);
        }
    }
    Ok(VectorGrid { y, a, dy_dt, da_dt })
}

/// A trajectory of the 2-D circuit.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory2D {
    /// Times (time unit of τ).
    pub t: Vec<f64>,
    /// y(t).
    pub y: Vec<f64>,
    /// a(t).
    pub a: Vec<f64>,
}

/// Integrate a one-neuron circuit from `start = (y, a)` for `t_end` with RK4 steps of `dt`,
/// recording every step.
///
/// # Errors
/// [`LyapunovError::NotPlanar`] when n ≠ 1, and the integrator's option errors (non-positive
/// `t_end` or `dt`).
pub fn trajectory(
    circuit: &Circuit,
    start: [f64; 2],
    t_end: f64,
    dt: f64,
) -> Result<Trajectory2D, LyapunovError> {
    PlaneCircuit::new(circuit)?;
    let mut stepper = Rk4::new(dt)?;
    let traj = simulate(circuit, &mut stepper, &start, t_end, 1)?;
    let (mut y, mut a) = (
        Vec::with_capacity(traj.len()),
        Vec::with_capacity(traj.len()),
    );
    for k in 0..traj.len() {
        let s = traj.state(k);
        y.push(s[0]);
        a.push(s[1]);
    }
    Ok(Trajectory2D {
        t: traj.times,
        y,
        a,
    })
}
