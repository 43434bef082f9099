//! The two ORGaNICs vector fields, defined once.
//!
//! With the state `x = [y; a]`, `s = √⌊a⌋` and `g(y)` the recurrent input
//! (`g(y) = y` for the main model, Eq. 16; `g(y) = ⌊y⌋` for the rectified model, Eq. 102):
//!
//! ```text
//! τ_y ⊙ dy/dt = −y + b ⊙ z + (1 − s) ⊙ (W_r g(y))
//! τ_a ⊙ da/dt = −a + b0² ⊙ σ² + W (g(y)² ⊙ ⌊a⌋)
//! ```
//!
//! This is the paper's `τ_y ẏ = −y + b z + (1 − a⁺) W_r (√y⁺ − √y⁻)` and
//! `τ_a ȧ = −a + b0²σ² + W ((y⁺ + y⁻) (a⁺)²)` with `y^± = ⌊±y⌋²`, `a⁺ = √⌊a⌋`, simplified.
//! Evaluation is allocation-free: it writes into the caller's buffer.
//!
//! Integrators ([`crate::integrate`]) and steady-state solvers only see the [`VectorField`] trait.

use crate::params::{Circuit, Model, Recurrence};
use faer::MatMut;

/// An autonomous or time-dependent vector field `dx/dt = f(t, x)` on `R^dim`.
pub trait VectorField {
    /// Dimension of the state.
    fn dim(&self) -> usize;

    /// Write `f(t, x)` into `dxdt`. Both slices have length [`VectorField::dim`].
    fn eval(&self, t: f64, x: &[f64], dxdt: &mut [f64]);

    /// The size of a right-hand side in the problem's natural units, used as a stopping
    /// criterion. The default is `max_i |f_i|`; the circuit scales each component by its time
    /// constant (`max_i |f_i| τ_i`), which is the residual of the equations as written.
    fn scaled_norm(&self, dxdt: &[f64]) -> f64 {
        dxdt.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    /// Write the Jacobian `∂f/∂x` at `(t, x)` into `out` (dim × dim), for implicit integrators
    /// and variational equations. The default is central differences with step
    /// `ε^{1/3} (1 + |x_j|)` (error ∝ step², about 1e-10 relative for smooth fields); the
    /// circuit overrides it with its analytic Jacobian ([`crate::jacobian`]).
    fn jacobian(&self, t: f64, x: &[f64], mut out: MatMut<'_, f64>) {
        let m = self.dim();
        let mut xp = x.to_vec();
        let (mut fp, mut fm) = (vec![0.0; m], vec![0.0; m]);
        for j in 0..m {
            let h = f64::EPSILON.cbrt() * (1.0 + x[j].abs());
            xp[j] = x[j] + h;
            self.eval(t, &xp, &mut fp);
            xp[j] = x[j] - h;
            self.eval(t, &xp, &mut fm);
            xp[j] = x[j];
            for i in 0..m {
                out[(i, j)] = (fp[i] - fm[i]) / (2.0 * h);
            }
        }
    }
}

/// The recurrent input g(y) of the model.
#[inline]
pub(crate) fn recurrent_input(model: Model, y: f64) -> f64 {
    match model {
        Model::Main => y,
        Model::Rectified => y.max(0.0),
    }
}

impl Circuit {
    /// Write `f(x)` for `x = [y; a]` into `dxdt` (both of length 2n), allocation-free.
    ///
    /// # Panics
    /// If a slice does not have length 2n (a programming error).
    pub fn rhs(&self, x: &[f64], dxdt: &mut [f64]) {
        let n = self.n();
        assert_eq!(x.len(), 2 * n, "rhs: state must have length 2n = {}", 2 * n);
        assert_eq!(
            dxdt.len(),
            2 * n,
            "rhs: output must have length 2n = {}",
            2 * n
        );
        let model = self.model();
        let (y, a) = x.split_at(n);
        let (dy, da) = dxdt.split_at_mut(n);

        // dy ← W_r g(y), accumulated column by column (faer stores column-major).
        match self.w_r() {
            Recurrence::Identity => {
                for i in 0..n {
                    dy[i] = recurrent_input(model, y[i]);
                }
            }
            Recurrence::Scaled(s) => {
                for i in 0..n {
                    dy[i] = s * recurrent_input(model, y[i]);
                }
            }
            Recurrence::Dense(m) => {
                dy.fill(0.0);
                for j in 0..n {
                    let gj = recurrent_input(model, y[j]);
                    let col = m.col(j);
                    for i in 0..n {
                        dy[i] += col[i] * gj;
                    }
                }
            }
        }
        // da ← W (g(y)² ⊙ ⌊a⌋).
        da.fill(0.0);
        let w = self.w();
        for j in 0..n {
            let g = recurrent_input(model, y[j]);
            let hj = g * g * a[j].max(0.0);
            if hj == 0.0 {
                continue;
            }
            let col = w.col(j);
            for i in 0..n {
                da[i] += col[i] * hj;
            }
        }
        let (tau_y, tau_a, b, z, c) = (
            self.tau_y(),
            self.tau_a(),
            self.b(),
            self.z(),
            self.b0_sigma_sq(),
        );
        for i in 0..n {
            let s = a[i].max(0.0).sqrt();
            dy[i] = (-y[i] + b[i] * z[i] + (1.0 - s) * dy[i]) / tau_y[i];
            da[i] = (-a[i] + c[i] + da[i]) / tau_a[i];
        }
    }

    /// The scaled residual `max_i |f_i(x)| τ_i` of a state, the number the command-line reports.
    pub fn residual(&self, x: &[f64]) -> f64 {
        let mut f = vec![0.0; x.len()];
        self.rhs(x, &mut f);
        self.scaled_norm(&f)
    }
}

impl VectorField for Circuit {
    fn dim(&self) -> usize {
        2 * self.n()
    }

    fn eval(&self, _t: f64, x: &[f64], dxdt: &mut [f64]) {
        self.rhs(x, dxdt);
    }

    fn jacobian(&self, _t: f64, x: &[f64], out: MatMut<'_, f64>) {
        self.jacobian_into(x, out);
    }

    fn scaled_norm(&self, dxdt: &[f64]) -> f64 {
        let n = self.n();
        let (tau_y, tau_a) = (self.tau_y(), self.tau_a());
        (0..n).fold(0.0, |m: f64, i| {
            m.max((dxdt[i] * tau_y[i]).abs())
                .max((dxdt[n + i] * tau_a[i]).abs())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::params::{Circuit, CircuitParts, Model, Recurrence};
    use faer::Mat;

    /// A one-neuron circuit whose right-hand side is computed by hand below.
    fn scalar(model: Model) -> Circuit {
        Circuit::new(CircuitParts {
            model,
            tau_y: vec![2.0],
            tau_a: vec![4.0],
            b: vec![0.5],
            b0: vec![0.5],
            sigma: vec![0.2],
            w_r: Recurrence::Scaled(1.5),
            w: Mat::from_fn(1, 1, |_, _| 0.8),
            z: vec![1.0],
        })
        .unwrap()
    }

    #[test]
    fn main_model_matches_hand_computation() {
        let c = scalar(Model::Main);
        let (y, a) = (-0.3_f64, 0.25_f64);
        let mut f = [0.0; 2];
        c.rhs(&[y, a], &mut f);
        // τ_y ẏ = −y + bz + (1 − √a) w_r y ;  τ_a ȧ = −a + b0²σ² + w y² a
        let fy = (-y + 0.5 + (1.0 - 0.5) * 1.5 * y) / 2.0;
        let fa = (-a + 0.01 + 0.8 * y * y * a) / 4.0;
        assert!(
            (f[0] - fy).abs() < 1e-15 && (f[1] - fa).abs() < 1e-15,
            "{f:?}"
        );
    }

    #[test]
    fn rectified_model_ignores_negative_potentials_in_recurrence() {
        let c = scalar(Model::Rectified);
        let (y, a) = (-0.3_f64, 0.25_f64);
        let mut f = [0.0; 2];
        c.rhs(&[y, a], &mut f);
        let fy = (-y + 0.5) / 2.0;
        let fa = (-a + 0.01) / 4.0;
        assert!(
            (f[0] - fy).abs() < 1e-15 && (f[1] - fa).abs() < 1e-15,
            "{f:?}"
        );
    }
}
