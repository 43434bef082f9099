//! Adaptive Dormand–Prince 5(4): a fifth-order solution with an embedded fourth-order
//! estimate of the local error.
//!
//! A step is accepted when the weighted RMS error
//!
//! ```text
//! err = sqrt( mean_i ( e_i / (atol + rtol · max(|x_i|, |x̂_i|)) )² ) ≤ 1
//! ```
//!
//! where `e = h Σ_j (b_j − b*_j) k_j`. The next step is `h · clamp(0.9 err^(−1/5), 0.2, 5)`.

use super::{Stepper, check_positive};
use crate::dynamics::VectorField;
use crate::error::CoreError;

// Butcher tableau of Dormand & Prince (1980).
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// Fifth-order weights (equal to the last row of A: first same as last).
const B5: [f64; 7] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
    0.0,
];
/// Embedded fourth-order weights.
const B4: [f64; 7] = [
    5179.0 / 57600.0,
    0.0,
    7571.0 / 16695.0,
    393.0 / 640.0,
    -92097.0 / 339200.0,
    187.0 / 2100.0,
    1.0 / 40.0,
];

/// Adaptive Dormand–Prince 5(4) with relative and absolute tolerances.
#[derive(Debug, Clone, PartialEq)]
pub struct DormandPrince {
    rtol: f64,
    atol: f64,
    h: f64,
    /// Steps accepted and rejected so far.
    pub accepted: usize,
    /// Steps rejected so far.
    pub rejected: usize,
    k: Vec<f64>,
    trial: Vec<f64>,
}

impl DormandPrince {
    /// A stepper with tolerances `rtol`, `atol` and first trial step `h0`.
    ///
    /// # Errors
    /// [`CoreError::BadOption`] unless all three are finite and positive.
    pub fn new(rtol: f64, atol: f64, h0: f64) -> Result<Self, CoreError> {
        check_positive("rtol", rtol)?;
        check_positive("atol", atol)?;
        check_positive("dt", h0)?;
        Ok(Self {
            rtol,
            atol,
            h: h0,
            accepted: 0,
            rejected: 0,
            k: Vec::new(),
            trial: Vec::new(),
        })
    }

    /// The step size the next step will try.
    pub fn current_step(&self) -> f64 {
        self.h
    }
}

impl Stepper for DormandPrince {
    fn order(&self) -> u32 {
        5
    }
    fn name(&self) -> &'static str {
        "dopri5"
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
        self.k.resize(7 * n, 0.0);
        self.trial.resize(n, 0.0);
        self.k[..n].copy_from_slice(k1);
        loop {
            let h = self.h.min(h_max);
            if h < 1e-14 * t.abs().max(1.0) {
                return Err(CoreError::StepSizeUnderflow { t, step: h });
            }
            for s in 1..7 {
                let (done, rest) = self.k.split_at_mut(s * n);
                for i in 0..n {
                    let mut acc = 0.0;
                    for (j, aj) in A[s][..s].iter().enumerate() {
                        acc += aj * done[j * n + i];
                    }
                    self.trial[i] = x[i] + h * acc;
                }
                f.eval(t + C[s] * h, &self.trial, &mut rest[..n]);
            }
            // trial now holds the fifth-order solution (stage 7 is evaluated at it).
            let mut err2 = 0.0;
            for i in 0..n {
                let mut e = 0.0;
                for j in 0..7 {
                    e += (B5[j] - B4[j]) * self.k[j * n + i];
                }
                let scale = self.atol + self.rtol * x[i].abs().max(self.trial[i].abs());
                let r = h * e / scale;
                err2 += r * r;
            }
            let err = (err2 / n as f64).sqrt();
            let factor = if err == 0.0 {
                5.0
            } else {
                (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
            };
            if err <= 1.0 {
                x.copy_from_slice(&self.trial);
                self.accepted += 1;
                // Only grow from a full step: a step cut short by h_max says nothing about h.
                if h >= self.h {
                    self.h *= factor;
                } else {
                    self.h = self.h.max(h * factor);
                }
                return Ok(h);
            }
            if !err.is_finite() {
                self.h = h * 0.2;
            } else {
                self.h = h * factor.min(1.0);
            }
            self.rejected += 1;
        }
    }
}
