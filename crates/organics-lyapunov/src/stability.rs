//! Linear stability of a fixed point (Lyapunov's indirect method).
//!
//! A fixed point `x*` of `dx/dt = f(x)` is locally asymptotically stable if every eigenvalue
//! of the Jacobian `J = ∂f/∂x (x*)` has negative real part, i.e. the spectral abscissa
//!
//! ```text
//! α(J) = max_i Re λᵢ(J) < 0,
//! ```
//!
//! and unstable if `α(J) > 0`. For the circuit, `x = [y; a]` and `J` is the 2n × 2n analytic
//! Jacobian of organics-core (spec §C.1); eigenvalues are in the inverse of the time unit of
//! `τ_y`, `τ_a` (1/ms for the paper's figures).
//!
//! **The tolerance of the verdict.** The eigenvalues come from a backward-stable QR algorithm
//! on the balanced matrix `B` ([`crate::spectrum`]): they are the exact eigenvalues of `B + E`
//! with `‖E‖ ≲ c·m·ε·‖B‖_F` (m = 2n). A well-conditioned eigenvalue therefore moves by at most
//! about
//!
//! ```text
//! tol = 2 m ε ‖B‖_F,
//! ```
//!
//! so a real part in `[−tol, tol]` cannot be given a sign: the verdict is then
//! [`Verdict::Marginal`] (neither stable nor unstable). Eigenvalues of highly non-normal
//! matrices can be more sensitive than this; the report states `tol` so that callers can judge.

use crate::classify::Kind;
use crate::error::LyapunovError;
use crate::spectrum::eigenvalues_with_scale;
use faer::{Mat, c64};
use organics_core::Circuit;
use organics_core::steady_state::{self, Method, NewtonOptions, SteadyStateReport};

/// The sign of the spectral abscissa, decided with the tolerance of the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// `max Re λ < −tol`: locally asymptotically stable.
    Stable,
    /// `|max Re λ| ≤ tol`: linearisation cannot decide.
    Marginal,
    /// `max Re λ > tol`: unstable.
    Unstable,
}

impl Verdict {
    /// `stable`, `marginal` or `unstable`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Stable => "stable",
            Verdict::Marginal => "marginal",
            Verdict::Unstable => "unstable",
        }
    }

    /// The verdict for a spectral abscissa and tolerance.
    pub fn from_abscissa(max_real: f64, tolerance: f64) -> Verdict {
        if max_real < -tolerance {
            Verdict::Stable
        } else if max_real > tolerance {
            Verdict::Unstable
        } else {
            Verdict::Marginal
        }
    }
}

/// The spectrum of a Jacobian and what it says about stability.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearStability {
    /// Eigenvalues `(Re, Im)`, sorted by real part, largest first.
    pub eigenvalues: Vec<(f64, f64)>,
    /// The spectral abscissa `max Re λ` (= `eigenvalues[0].0`).
    pub max_real: f64,
    /// The tolerance of the verdict, `2 m ε ‖B‖_F` (module docs).
    pub tolerance: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// For a 2 × 2 Jacobian, the kind of the fixed point (trace/determinant, [`Kind`]).
    pub kind: Option<Kind>,
}

/// Spectrum, abscissa, verdict (and kind, for 2 × 2) of a square matrix.
///
/// # Errors
/// [`LyapunovError::NotSquare`], [`LyapunovError::NonFiniteJacobian`],
/// [`LyapunovError::EigenNoConvergence`].
pub fn linear_stability(j: &Mat<f64>) -> Result<LinearStability, LyapunovError> {
    let (values, scale) = eigenvalues_with_scale(j)?;
    let m = j.nrows();
    let tolerance = 2.0 * m as f64 * f64::EPSILON * scale;
    let max_real = values.first().map_or(f64::NEG_INFINITY, |v: &c64| v.re);
    let kind =
        (m == 2).then(|| Kind::from_matrix([[j[(0, 0)], j[(0, 1)]], [j[(1, 0)], j[(1, 1)]]]));
    Ok(LinearStability {
        eigenvalues: values.iter().map(|v| (v.re, v.im)).collect(),
        max_real,
        tolerance,
        verdict: Verdict::from_abscissa(max_real, tolerance),
        kind,
    })
}

/// The stability report of a circuit at a fixed point (the `organics stability` command).
#[derive(Debug, Clone, PartialEq)]
pub struct StabilityReport {
    /// Principal-neuron potentials at the fixed point.
    pub y: Vec<f64>,
    /// Modulator potentials at the fixed point.
    pub a: Vec<f64>,
    /// Eigenvalues `(Re, Im)` of the Jacobian, sorted by real part, largest first (1/time unit).
    pub eigenvalues: Vec<(f64, f64)>,
    /// The spectral abscissa `max Re λ`.
    pub max_real: f64,
    /// The tolerance of the verdict (module docs).
    pub tolerance: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// `verdict == Verdict::Stable`.
    pub stable: bool,
    /// For n = 1 (a 2 × 2 Jacobian), the kind of the fixed point.
    pub kind: Option<Kind>,
    /// The scaled residual `max_i |f_i| τ_i` at the point analysed.
    pub residual: f64,
    /// How the point was found (`closed-form`, `iterative+newton`, `simulate+newton`, `given`).
    pub method: &'static str,
}

impl StabilityReport {
    fn new(
        y: Vec<f64>,
        a: Vec<f64>,
        lin: LinearStability,
        residual: f64,
        method: &'static str,
    ) -> Self {
        Self {
            y,
            a,
            stable: lin.verdict == Verdict::Stable,
            eigenvalues: lin.eigenvalues,
            max_real: lin.max_real,
            tolerance: lin.tolerance,
            verdict: lin.verdict,
            kind: lin.kind,
            residual,
            method,
        }
    }
}

/// A steady-state answer with its stability: what `organics steady-state` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct SteadyState {
    /// The solver's report (state, residual, stop reason; `range` when a simulation did not
    /// come to rest).
    pub report: SteadyStateReport,
    /// The linear stability at the state found; `None` when no fixed point was found.
    pub stability: Option<LinearStability>,
}

/// Find the steady state by `method` and judge it. This is where the routes of
/// [`steady_state::solve`] meet the verdict: core reports fixed points without judging them,
/// and for [`Method::Auto`] a fixed point that is not [`Verdict::Stable`] (the iterative route
/// can land on a saddle) is replaced by the simulated steady state — the state the circuit
/// actually rests at, or a `not-settled` report when it never rests.
///
/// # Errors
/// The errors of [`steady_state::solve`] and of [`linear_stability`].
pub fn steady_state(circuit: &Circuit, method: Method) -> Result<SteadyState, LyapunovError> {
    let judged = judge(circuit, steady_state::solve(circuit, method)?)?;
    let attracts = judged
        .stability
        .as_ref()
        .is_some_and(|s| s.verdict == Verdict::Stable);
    let simulated_already = judged.report.method == "simulate+newton";
    if method == Method::Auto && judged.report.converged() && !attracts && !simulated_already {
        return judge(circuit, steady_state::solve(circuit, Method::Simulate)?);
    }
    Ok(judged)
}

fn judge(circuit: &Circuit, report: SteadyStateReport) -> Result<SteadyState, LyapunovError> {
    let stability = if report.converged() {
        Some(linear_stability(&circuit.jacobian(&report.state()))?)
    } else {
        None
    };
    Ok(SteadyState { report, stability })
}

/// Find the steady state with [`steady_state`] and [`Method::Auto`] (closed form when
/// W_r = I, else the iterative algorithm or a simulation, polished by Newton; the simulated
/// state when the first answer does not attract) and report its stability.
///
/// # Errors
/// [`LyapunovError::Core`] wrapping `NotConverged` when no steady state is found (including a
/// simulation that never comes to rest), and the errors of [`linear_stability`].
pub fn stability(circuit: &Circuit) -> Result<StabilityReport, LyapunovError> {
    stability_with(circuit, Method::Auto)
}

/// As [`stability`], with the steady-state method chosen by the caller.
///
/// # Errors
/// As [`stability`].
pub fn stability_with(circuit: &Circuit, method: Method) -> Result<StabilityReport, LyapunovError> {
    let judged = steady_state(circuit, method)?;
    let ss = judged.report.into_result(NewtonOptions::default().tol)?;
    let lin = match judged.stability {
        Some(lin) => lin,
        None => linear_stability(&circuit.jacobian(&ss.state()))?,
    };
    Ok(StabilityReport::new(
        ss.y,
        ss.a,
        lin,
        ss.residual,
        ss.method,
    ))
}

/// The stability report at a given state `x = [y; a]` (which should be a fixed point; its
/// residual is reported).
///
/// # Errors
/// [`LyapunovError::StateLength`] and the errors of [`linear_stability`].
pub fn stability_at(circuit: &Circuit, x: &[f64]) -> Result<StabilityReport, LyapunovError> {
    let n = circuit.n();
    if x.len() != 2 * n {
        return Err(LyapunovError::StateLength {
            expected: 2 * n,
            found: x.len(),
        });
    }
    let lin = linear_stability(&circuit.jacobian(x))?;
    Ok(StabilityReport::new(
        x[..n].to_vec(),
        x[n..].to_vec(),
        lin,
        circuit.residual(x),
        "given",
    ))
}
