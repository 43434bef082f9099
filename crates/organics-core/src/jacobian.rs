//! The analytic Jacobian of the circuit's vector field (docs/model.md#jacobian), at any state.
//!
//! With `s = √⌊a⌋`, `g(y)` the recurrent input (`y`, or `⌊y⌋` for the rectified model),
//! `g'` its derivative (1, or the Heaviside step `H(y)`), `T_y = diag(τ_y)`, `T_a = diag(τ_a)`:
//!
//! ```text
//! J_yy = T_y⁻¹ ( −I + diag(1 − s) W_r diag(g'(y)) )
//! J_ya = −T_y⁻¹ diag( (W_r g(y)) ⊙ s'(a) ),        s'(a) = 1 / (2√a) for a > 0
//! J_ay = T_a⁻¹ W diag( 2 g(y) g'(y) ⊙ ⌊a⌋ )
//! J_aa = T_a⁻¹ ( −I + W diag( g(y)² ⊙ H(a) ) )
//! ```
//!
//! The state is ordered `[y; a]`, so `J = [[J_yy, J_ya], [J_ay, J_aa]]` is 2n × 2n.
//! At the kinks (a = 0, and y = 0 for the rectified model) the one-sided derivative from the
//! left is used: `H(0) = 0` and `s'(0) = 0`. Fixed points of the circuit have `a > 0`
//! (`a ≥ b0²σ² > 0`), so the kinks never matter for stability analysis.

use crate::dynamics::recurrent_input;
use crate::params::{Circuit, Model, Recurrence};
use faer::{Mat, MatMut};

fn heaviside(v: f64) -> f64 {
    if v > 0.0 { 1.0 } else { 0.0 }
}

impl Circuit {
    /// Write the 2n × 2n Jacobian at `x = [y; a]` into `out`, allocation-free.
    ///
    /// # Panics
    /// If `x.len() != 2n` or `out` is not 2n × 2n (programming errors).
    pub fn jacobian_into(&self, x: &[f64], mut out: MatMut<'_, f64>) {
        let n = self.n();
        assert_eq!(x.len(), 2 * n, "jacobian: state must have length 2n");
        assert!(
            out.nrows() == 2 * n && out.ncols() == 2 * n,
            "jacobian: output must be 2n x 2n"
        );
        let model = self.model();
        let (y, a) = x.split_at(n);
        let dg = |v: f64| match model {
            Model::Main => 1.0,
            Model::Rectified => heaviside(v),
        };
        out.fill(0.0);
        let (tau_y, tau_a) = (self.tau_y(), self.tau_a());

        // J_yy and, on the diagonal of J_ya, the accumulated (W_r g(y))_i.
        let diagonal_only = matches!(self.w_r(), Recurrence::Identity | Recurrence::Scaled(_));
        for j in 0..n {
            let gj = recurrent_input(model, y[j]);
            let dgj = dg(y[j]);
            let rows = if diagonal_only { j..j + 1 } else { 0..n };
            for i in rows {
                let wij = self.w_r().entry(i, j);
                if wij == 0.0 {
                    continue;
                }
                let s_i = a[i].max(0.0).sqrt();
                out[(i, j)] += (1.0 - s_i) * wij * dgj / tau_y[i];
                out[(i, n + i)] += wij * gj;
            }
        }
        for i in 0..n {
            out[(i, i)] -= 1.0 / tau_y[i];
            let ds = if a[i] > 0.0 { 0.5 / a[i].sqrt() } else { 0.0 };
            out[(i, n + i)] *= -ds / tau_y[i];
        }
        // J_ay and J_aa.
        let w = self.w();
        for j in 0..n {
            let g = recurrent_input(model, y[j]);
            let day = 2.0 * g * dg(y[j]) * a[j].max(0.0);
            let daa = g * g * heaviside(a[j]);
            let col = w.col(j);
            for i in 0..n {
                out[(n + i, j)] = col[i] * day / tau_a[i];
                out[(n + i, n + j)] = col[i] * daa / tau_a[i];
            }
        }
        for i in 0..n {
            out[(n + i, n + i)] -= 1.0 / tau_a[i];
        }
    }

    /// The 2n × 2n Jacobian at `x = [y; a]`.
    pub fn jacobian(&self, x: &[f64]) -> Mat<f64> {
        let mut m = Mat::zeros(2 * self.n(), 2 * self.n());
        self.jacobian_into(x, m.as_mut());
        m
    }
}
