//! Fixed-step explicit methods: Euler (order 1) and classic Runge–Kutta (order 4).
//!
//! ```text
//! Euler: x_{k+1} = x_k + h k1,                         k1 = f(t, x_k)
//! RK4:   x_{k+1} = x_k + h (k1 + 2 k2 + 2 k3 + k4) / 6,
//!        k2 = f(t + h/2, x + h k1/2), k3 = f(t + h/2, x + h k2/2), k4 = f(t + h, x + h k3)
//! ```

use super::{Stepper, check_positive};
use crate::dynamics::VectorField;
use crate::error::CoreError;

/// Explicit Euler with a fixed step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Euler {
    dt: f64,
}

impl Euler {
    /// A stepper with step `dt`.
    ///
    /// # Errors
    /// [`CoreError::BadOption`] unless `dt` is finite and positive.
    pub fn new(dt: f64) -> Result<Self, CoreError> {
        check_positive("dt", dt)?;
        Ok(Self { dt })
    }
}

impl Stepper for Euler {
    fn order(&self) -> u32 {
        1
    }
    fn name(&self) -> &'static str {
        "euler"
    }
    fn step<F: VectorField + ?Sized>(
        &mut self,
        _f: &F,
        _t: f64,
        x: &mut [f64],
        k1: &[f64],
        h_max: f64,
    ) -> Result<f64, CoreError> {
        let h = self.dt.min(h_max);
        for (xi, ki) in x.iter_mut().zip(k1) {
            *xi += h * ki;
        }
        Ok(h)
    }
}

/// Classic fourth-order Runge–Kutta with a fixed step. Holds its stage buffers, so stepping
/// does not allocate once the dimension is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Rk4 {
    dt: f64,
    stages: Vec<f64>,
}

impl Rk4 {
    /// A stepper with step `dt`.
    ///
    /// # Errors
    /// [`CoreError::BadOption`] unless `dt` is finite and positive.
    pub fn new(dt: f64) -> Result<Self, CoreError> {
        check_positive("dt", dt)?;
        Ok(Self {
            dt,
            stages: Vec::new(),
        })
    }
}

impl Stepper for Rk4 {
    fn order(&self) -> u32 {
        4
    }
    fn name(&self) -> &'static str {
        "rk4"
    }
    fn step<F: VectorField + ?Sized>(
        &mut self,
        f: &F,
        t: f64,
        x: &mut [f64],
        k1: &[f64],
        h_max: f64,
    ) -> Result<f64, CoreError> {
        let n = x.len();
        let h = self.dt.min(h_max);
        self.stages.resize(4 * n, 0.0);
        let (tmp, rest) = self.stages.split_at_mut(n);
        let (k2, rest) = rest.split_at_mut(n);
        let (k3, k4) = rest.split_at_mut(n);
        for i in 0..n {
            tmp[i] = x[i] + 0.5 * h * k1[i];
        }
        f.eval(t + 0.5 * h, tmp, k2);
        for i in 0..n {
            tmp[i] = x[i] + 0.5 * h * k2[i];
        }
        f.eval(t + 0.5 * h, tmp, k3);
        for i in 0..n {
            tmp[i] = x[i] + h * k3[i];
        }
        f.eval(t + h, tmp, k4);
        for i in 0..n {
            x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        Ok(h)
    }
}
