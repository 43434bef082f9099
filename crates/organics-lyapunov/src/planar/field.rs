//! Planar vector fields `ṗ = F(p)`, `p = (y, a)`, and a seeded Newton search for `F(p) = 0`.
//!
//! Newton's step `p ← p − α J(p)⁻¹ F(p)` uses the field's Jacobian (analytic for circuits,
//! central differences otherwise) with a backtracking line search on the field's scaled norm
//! (`α ∈ {1, ½, ¼, …}`, the first that reduces it). Every seed runs independently; converged
//! points closer than a relative `1e-7` are merged, so the result lists each zero once.

use crate::error::LyapunovError;
use nalgebra::{Matrix2, Vector2};
use organics_core::{Circuit, VectorField};

/// A vector field on the plane.
pub trait PlaneField {
    /// `F(p)`.
    fn eval(&self, p: Vector2<f64>) -> Vector2<f64>;

    /// The Jacobian `∂F/∂p`. The default uses central differences with step
    /// `h = ε^{1/3} (1 + |p_k|)`, which balances truncation (∝ h²) and rounding (∝ ε/h).
    fn jacobian(&self, p: Vector2<f64>) -> Matrix2<f64> {
        let mut j = Matrix2::zeros();
        for k in 0..2 {
            let h = f64::EPSILON.cbrt() * (1.0 + p[k].abs());
            let mut e = Vector2::zeros();
            e[k] = h;
            let d = (self.eval(p + e) - self.eval(p - e)) / (2.0 * h);
            j.set_column(k, &d);
        }
        j
    }

    /// The size of `F(p)` in the problem's units, used as the convergence criterion; the
    /// default is the max norm.
    fn scaled_norm(&self, f: Vector2<f64>) -> f64 {
        f.amax()
    }
}

impl<F: Fn(Vector2<f64>) -> Vector2<f64>> PlaneField for F {
    fn eval(&self, p: Vector2<f64>) -> Vector2<f64> {
        self(p)
    }
}

/// A one-neuron circuit seen as a planar field, with its analytic Jacobian and the scaled
/// residual `max(|f_y| τ_y, |f_a| τ_a)`.
#[derive(Debug, Clone, Copy)]
pub struct PlaneCircuit<'a> {
    circuit: &'a Circuit,
}

impl<'a> PlaneCircuit<'a> {
    /// Wrap a circuit with n = 1.
    ///
    /// # Errors
    /// [`LyapunovError::NotPlanar`] when n ≠ 1.
    pub fn new(circuit: &'a Circuit) -> Result<Self, LyapunovError> {
        if circuit.n() == 1 {
            Ok(Self { circuit })
        } else {
            Err(LyapunovError::NotPlanar {
                what: "phase plane",
                n: circuit.n(),
            })
        }
    }

    /// The wrapped circuit.
    pub fn circuit(&self) -> &'a Circuit {
        self.circuit
    }

    /// The scalar w_r (entry (0, 0) of W_r).
    pub fn w_r(&self) -> f64 {
        self.circuit.w_r().entry(0, 0)
    }
    /// The scalar normalisation weight w.
    pub fn w(&self) -> f64 {
        self.circuit.w()[(0, 0)]
    }
    /// The drive `b z`.
    pub fn drive(&self) -> f64 {
        self.circuit.b()[0] * self.circuit.z()[0]
    }
    /// `b0² σ²`.
    pub fn beta(&self) -> f64 {
        self.circuit.b0_sigma_sq()[0]
    }
}

impl PlaneField for PlaneCircuit<'_> {
    fn eval(&self, p: Vector2<f64>) -> Vector2<f64> {
        let mut f = [0.0; 2];
        self.circuit.rhs(&[p[0], p[1]], &mut f);
        Vector2::new(f[0], f[1])
    }

    fn jacobian(&self, p: Vector2<f64>) -> Matrix2<f64> {
        let j = self.circuit.jacobian(&[p[0], p[1]]);
        Matrix2::new(j[(0, 0)], j[(0, 1)], j[(1, 0)], j[(1, 1)])
    }

    fn scaled_norm(&self, f: Vector2<f64>) -> f64 {
        self.circuit.scaled_norm(&[f[0], f[1]])
    }
}

/// Options of [`newton_search`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewtonSearchOptions {
    /// A point `p` is a zero when the field's scaled norm is below `tol · (1 + ‖p‖∞)`: the
    /// terms of the circuit's right-hand side grow with the state, and so does their rounding.
    pub tol: f64,
    /// Newton steps per seed.
    pub max_iterations: usize,
}

impl Default for NewtonSearchOptions {
    fn default() -> Self {
        // 1e-12: a few thousand ulps of an O(1) residual, reachable in double precision.
        Self {
            tol: 1e-12,
            max_iterations: 80,
        }
    }
}

/// Newton from one seed; `Some(zero)` if it converged.
pub(crate) fn newton_from<F: PlaneField + ?Sized>(
    field: &F,
    seed: Vector2<f64>,
    opts: NewtonSearchOptions,
) -> Option<Vector2<f64>> {
    let mut p = seed;
    let mut f = field.eval(p);
    let mut res = field.scaled_norm(f);
    for _ in 0..opts.max_iterations {
        if !res.is_finite() {
            return None;
        }
        if res < opts.tol * (1.0 + p.amax()) {
            return Some(p);
        }
        let step = field.jacobian(p).lu().solve(&(-f))?;
        if !step.iter().all(|v| v.is_finite()) {
            return None;
        }
        let mut alpha = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let trial = p + alpha * step;
            let ft = field.eval(trial);
            let rt = field.scaled_norm(ft);
            if rt.is_finite() && rt < res {
                p = trial;
                f = ft;
                res = rt;
                improved = true;
                break;
            }
            alpha *= 0.5;
        }
        if !improved {
            break;
        }
    }
    (res < opts.tol * (1.0 + p.amax())).then_some(p)
}

/// Run Newton from every seed and return the distinct zeros found, sorted by `y` then `a`.
pub fn newton_search<F: PlaneField + ?Sized>(
    field: &F,
    seeds: &[[f64; 2]],
    opts: NewtonSearchOptions,
) -> Vec<[f64; 2]> {
    let mut found: Vec<[f64; 2]> = Vec::new();
    for s in seeds {
        if let Some(p) = newton_from(field, Vector2::new(s[0], s[1]), opts) {
            let q = [p[0], p[1]];
            let same = |r: &[f64; 2]| {
                (0..2).all(|k| (r[k] - q[k]).abs() <= 1e-7 * (1.0 + r[k].abs().max(q[k].abs())))
            };
            if !found.iter().any(same) {
                found.push(q);
            }
        }
    }
    found.sort_by(|u, v| u[0].total_cmp(&v[0]).then(u[1].total_cmp(&v[1])));
    found
}
