//! Time integration of any [`VectorField`], separate from the vector field itself.
//!
//! Three steppers, each declaring its order of accuracy:
//!
//! | stepper | order | step |
//! |---|---|---|
//! | [`Euler`] | 1 | `x ← x + h f(t, x)` (what the paper trains with) |
//! | [`Rk4`] | 4 | classic fourth-order Runge–Kutta |
//! | [`DormandPrince`] | 5 (embedded 4) | adaptive, error per step `≤ atol + rtol·|x|` |
//! | [`Radau5`] | 5 (embedded 3) | implicit, L-stable, Jacobian-based: for stiff circuits |
//!
//! [`simulate`] records a trajectory in memory, [`simulate_each`] hands each recorded sample to
//! a consumer instead (constant memory: the command line streams it); [`settle`] runs until the scaled right-hand side
//! ([`VectorField::scaled_norm`]) falls below a tolerance — a criterion on `f`, not on the
//! difference of successive samples (which would depend on the step size).

mod dopri5;
mod fixed;
pub mod radau5;

pub use dopri5::DormandPrince;
pub use fixed::{Euler, Rk4};
pub use radau5::{Radau5, StepControl};

use crate::dynamics::VectorField;
use crate::error::CoreError;
use crate::steady_state::StopReason;
use std::ops::ControlFlow;

/// A one-step method.
pub trait Stepper {
    /// Order of accuracy (global error ∝ hᵖ).
    fn order(&self) -> u32;

    /// A short name (`euler`, `rk4`, `dopri5`).
    fn name(&self) -> &'static str;

    /// Advance `x` from time `t`, given `k1 = f(t, x)`, by a step no longer than `h_max`.
    /// Returns the step length taken.
    ///
    /// # Errors
    /// [`CoreError::StepSizeUnderflow`] when an adaptive method's step size underflows.
    fn step<F: VectorField + ?Sized>(
        &mut self,
        f: &F,
        t: f64,
        x: &mut [f64],
        k1: &[f64],
        h_max: f64,
    ) -> Result<f64, CoreError>;
}

/// The stepper chosen at run time (command line, configs).
#[derive(Debug, Clone)]
pub enum Integrator {
    /// Explicit Euler.
    Euler(Euler),
    /// Classic RK4.
    Rk4(Rk4),
    /// Adaptive Dormand–Prince 5(4).
    DormandPrince(DormandPrince),
    /// Adaptive Radau IIA order 5 (implicit, for stiff circuits).
    Radau5(Radau5),
}

impl Integrator {
    /// Build the stepper named `euler`, `rk4`, `dopri5` or `radau5`; `dt` is the fixed step, or
    /// the first trial step of the adaptive methods.
    ///
    /// # Errors
    /// [`CoreError::BadOption`] for a non-positive or non-finite `dt` or tolerance.
    pub fn from_name(name: &str, dt: f64, rtol: f64, atol: f64) -> Result<Self, CoreError> {
        match name {
            "euler" => Ok(Self::Euler(Euler::new(dt)?)),
            "rk4" => Ok(Self::Rk4(Rk4::new(dt)?)),
            "dopri5" => Ok(Self::DormandPrince(DormandPrince::new(rtol, atol, dt)?)),
            "radau5" => Ok(Self::Radau5(Radau5::adaptive(rtol, atol, dt)?)),
            _ => Err(CoreError::BadOption {
                option: "integrator",
                value: f64::NAN,
                reason: "must be one of euler, rk4, dopri5, radau5",
            }),
        }
    }
}

impl Stepper for Integrator {
    fn order(&self) -> u32 {
        match self {
            Self::Euler(s) => s.order(),
            Self::Rk4(s) => s.order(),
            Self::DormandPrince(s) => s.order(),
            Self::Radau5(s) => s.order(),
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Self::Euler(s) => s.name(),
            Self::Rk4(s) => s.name(),
            Self::DormandPrince(s) => s.name(),
            Self::Radau5(s) => s.name(),
        }
    }
    fn step<F: VectorField + ?Sized>(
        &mut self,
        f: &F,
        t: f64,
        x: &mut [f64],
        k1: &[f64],
        h_max: f64,
    ) -> Result<f64, CoreError> {
        match self {
            Self::Euler(s) => s.step(f, t, x, k1, h_max),
            Self::Rk4(s) => s.step(f, t, x, k1, h_max),
            Self::DormandPrince(s) => s.step(f, t, x, k1, h_max),
            Self::Radau5(s) => s.step(f, t, x, k1, h_max),
        }
    }
}

pub(crate) fn check_positive(option: &'static str, value: f64) -> Result<(), CoreError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(CoreError::BadOption {
            option,
            value,
            reason: "must be a finite number > 0",
        })
    }
}

/// A recorded trajectory: `times[k]` and the state `states[k*dim .. (k+1)*dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// Dimension of each state.
    pub dim: usize,
    /// Recorded times.
    pub times: Vec<f64>,
    /// Recorded states, flat, one after another.
    pub states: Vec<f64>,
    /// Steps taken in all.
    pub steps: usize,
    /// Whether the run stopped early because the state stopped being finite.
    pub stopped_non_finite: bool,
}

impl Trajectory {
    /// Number of recorded samples.
    pub fn len(&self) -> usize {
        self.times.len()
    }
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
    /// The k-th recorded state.
    pub fn state(&self, k: usize) -> &[f64] {
        &self.states[k * self.dim..(k + 1) * self.dim]
    }
    /// The last recorded state.
    pub fn last(&self) -> &[f64] {
        self.state(self.len() - 1)
    }
}

/// Integrate from `x0` at t = 0 to `t_end`, recording the initial state, every `every`-th step,
/// and the final state. The run stops early (and says so) if the state becomes non-finite.
///
/// # Errors
/// [`CoreError::BadOption`] for a bad `t_end`, `every = 0` or a wrong `x0` length, and
/// [`CoreError::StepSizeUnderflow`] for a failed adaptive step.
pub fn simulate<F: VectorField + ?Sized, S: Stepper>(
    f: &F,
    stepper: &mut S,
    x0: &[f64],
    t_end: f64,
    every: usize,
) -> Result<Trajectory, CoreError> {
    let dim = f.dim();
    let mut times = Vec::new();
    let mut states = Vec::new();
    let run = simulate_each(f, stepper, x0, t_end, every, |t, x| {
        times.push(t);
        states.extend_from_slice(x);
        ControlFlow::Continue(())
    })?;
    Ok(Trajectory {
        dim,
        times,
        states,
        steps: run.steps,
        stopped_non_finite: run.stopped_non_finite,
    })
}

/// What [`simulate_each`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSummary {
    /// Steps taken.
    pub steps: usize,
    /// Samples handed to the consumer.
    pub samples: usize,
    /// The time reached.
    pub t: f64,
    /// Whether the run stopped early because the state stopped being finite.
    pub stopped_non_finite: bool,
    /// Whether the consumer asked to stop (e.g. its output was closed).
    pub stopped_by_consumer: bool,
}

/// As [`simulate`], but each recorded sample `(t, x)` goes to `record` as it is computed, so
/// memory does not grow with the length of the run. `record` returns
/// [`ControlFlow::Break`] to end the run early.
///
/// # Errors
/// As [`simulate`].
pub fn simulate_each<F: VectorField + ?Sized, S: Stepper>(
    f: &F,
    stepper: &mut S,
    x0: &[f64],
    t_end: f64,
    every: usize,
    mut record: impl FnMut(f64, &[f64]) -> ControlFlow<()>,
) -> Result<RunSummary, CoreError> {
    check_positive("t_end", t_end)?;
    if every == 0 {
        return Err(CoreError::BadOption {
            option: "every",
            value: 0.0,
            reason: "must be >= 1",
        });
    }
    check_len(f, x0)?;
    let mut x = x0.to_vec();
    let mut k1 = vec![0.0; f.dim()];
    let mut run = RunSummary {
        steps: 0,
        samples: 1,
        t: 0.0,
        stopped_non_finite: false,
        stopped_by_consumer: false,
    };
    if record(0.0, &x).is_break() {
        run.stopped_by_consumer = true;
        return Ok(run);
    }
    // Stop when the remaining time is below a relative rounding margin of t_end.
    let eps = t_end * 1e-12;
    while t_end - run.t > eps {
        f.eval(run.t, &x, &mut k1);
        run.t += stepper.step(f, run.t, &mut x, &k1, t_end - run.t)?;
        run.steps += 1;
        let finite = x.iter().all(|v| v.is_finite());
        let last = t_end - run.t <= eps || !finite;
        if run.steps.is_multiple_of(every) || last {
            run.samples += 1;
            if record(run.t, &x).is_break() {
                run.stopped_by_consumer = true;
                break;
            }
        }
        if !finite {
            run.stopped_non_finite = true;
            break;
        }
    }
    Ok(run)
}

fn check_len<F: VectorField + ?Sized>(f: &F, x0: &[f64]) -> Result<(), CoreError> {
    if x0.len() == f.dim() {
        Ok(())
    } else {
        Err(CoreError::DimensionMismatch {
            field: "initial state".into(),
            expected: format!("length {}", f.dim()),
            found: format!("length {}", x0.len()),
        })
    }
}

/// Options of [`settle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SettleOptions {
    /// Stop when [`VectorField::scaled_norm`] of `f(x)` falls below this.
    pub tol: f64,
    /// Give up after this many steps.
    pub max_steps: usize,
}

impl Default for SettleOptions {
    fn default() -> Self {
        Self {
            tol: 1e-10,
            max_steps: 2_000_000,
        }
    }
}

/// The outcome of [`settle`].
#[derive(Debug, Clone, PartialEq)]
pub struct SettleReport {
    /// The final state.
    pub state: Vec<f64>,
    /// The time reached.
    pub t: f64,
    /// The scaled right-hand side at the final state.
    pub residual: f64,
    /// Steps taken.
    pub steps: usize,
    /// Why it stopped.
    pub reason: StopReason,
    /// When the step budget ran out ([`StopReason::MaxIterations`]): `[min, max]` of every
    /// variable over the last tenth of the steps, the range the state still moves in.
    pub range: Option<Vec<[f64; 2]>>,
}

/// Integrate from `x0` until the scaled right-hand side is below `opts.tol`.
///
/// # Errors
/// [`CoreError::BadOption`] for a bad tolerance, [`CoreError::StepSizeUnderflow`] for a failed
/// adaptive step, and [`CoreError::DimensionMismatch`] for a wrong `x0`. Running out of steps or leaving the
/// finite numbers is not an error: it is the report's [`StopReason`].
pub fn settle<F: VectorField + ?Sized, S: Stepper>(
    f: &F,
    stepper: &mut S,
    x0: &[f64],
    opts: SettleOptions,
) -> Result<SettleReport, CoreError> {
    check_positive("tol", opts.tol)?;
    check_len(f, x0)?;
    let mut x = x0.to_vec();
    let mut k1 = vec![0.0; f.dim()];
    let mut t = 0.0;
    let mut steps = 0;
    // The range of the state over the last tenth of the step budget (reported if it runs out).
    let watch_from = opts.max_steps - opts.max_steps / 10;
    let mut range = vec![[f64::INFINITY, f64::NEG_INFINITY]; f.dim()];
    loop {
        if steps >= watch_from {
            for (r, &v) in range.iter_mut().zip(&x) {
                *r = [r[0].min(v), r[1].max(v)];
            }
        }
        f.eval(t, &x, &mut k1);
        let residual = f.scaled_norm(&k1);
        let reason = if !residual.is_finite() || x.iter().any(|v| !v.is_finite()) {
            Some(StopReason::NonFinite)
        } else if residual < opts.tol {
            Some(StopReason::Converged)
        } else if steps >= opts.max_steps {
            Some(StopReason::MaxIterations)
        } else {
            None
        };
        if let Some(reason) = reason {
            return Ok(SettleReport {
                state: x,
                t,
                residual,
                steps,
                reason,
                range: (reason == StopReason::MaxIterations).then_some(range),
            });
        }
        t += stepper.step(f, t, &mut x, &k1, f64::INFINITY)?;
        steps += 1;
    }
}
