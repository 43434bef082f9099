//! Periodic orbits (limit cycles) of a circuit: detected in simulation, refined by shooting,
//! judged by their Floquet multipliers (docs/model.md § Limit cycles).
//!
//! **Detection.** Integrate ([`CycleIntegrator`]: Dormand–Prince, or Radau IIA for stiff
//! circuits) past a transient; if the scaled right-hand side
//! falls below a tolerance the circuit settles and there is no cycle. Otherwise record a window,
//! take the potential `y_i` with the widest range, the Poincaré section `y_i = (min + max)/2`
//! crossed upwards, and go back from the last crossing to the latest earlier crossing whose
//! state lies within a fraction of the orbit's size of it: that crossing's time difference is
//! the first guess of the period `T`, the last crossing the first guess of a point on the orbit.
//!
//! **Shooting.** The flow `φ(x, t)` and its monodromy `Φ = ∂φ/∂x` solve the variational
//! equations with the analytic Jacobian:
//!
//! ```text
//! ẋ = f(x),   Φ̇ = J(x) Φ,   x(0) = x₀,   Φ(0) = I
//! ```
//!
//! Newton on the return map with a phase condition (the correction is orthogonal to the flow
//! at `x₀`) solves, for `(δx, δT)`,
//!
//! ```text
//! [ Φ(T) − I   f(φ(x₀, T)) ] [ δx ]     [ φ(x₀, T) − x₀ ]
//! [ f(x₀)ᵀ     0           ] [ δT ] = − [ 0             ]
//! ```
//!
//! until `‖φ(x₀, T) − x₀‖∞ ≤ tol (1 + ‖x₀‖∞)`.
//!
//! With [`CycleIntegrator::Radau5`] the variational system is integrated implicitly too; its
//! Jacobian is block lower-triangular,
//!
//! ```text
//! ∂/∂(x, Φ) [f(x); J(x) Φ] = [ J(x)            0     ]
//!                             [ ∂(J(x) Φ)/∂x    I ⊗ J ]
//! ```
//!
//! with the coupling block `∂(J Φ e_j)/∂x_k` by central differences of the analytic Jacobian
//! (step `ε^{1/3} (1 + |x_k|)`; Radau's simplified Newton only needs an approximate Jacobian,
//! the collocation equations themselves are exact). The implicit stages are solved densely in
//! `m + m²` unknowns (`m = 2n`), so Radau shooting suits small circuits (n ≲ 5); Dormand–Prince
//! handles any n when the circuit is not stiff.
//!
//! **Floquet multipliers** are the eigenvalues of `Φ(T)` on the converged orbit. One of them is
//! 1 (the flow direction, `Φ(T) f(x₀) = f(x₀)`): the *trivial* multiplier, the one closest to 1.
//! The cycle is orbitally stable when every other multiplier has `|μ| < 1`.

use crate::error::LyapunovError;
use crate::spectrum::eigenvalues;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use organics_core::integrate::{DormandPrince, Integrator, Radau5, Stepper};
use organics_core::{Circuit, CoreError, VectorField};

/// The integrator of every run of [`limit_cycle`] (transient, detection window, shooting with
/// the variational equations, and the amplitude pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CycleIntegrator {
    /// Adaptive Dormand–Prince 5(4), explicit: the default.
    #[default]
    DormandPrince,
    /// Adaptive Radau IIA order 5, implicit and L-stable, with the analytic Jacobian: for stiff
    /// circuits (time constants spanning orders of magnitude); dense in `m + m²` unknowns during
    /// shooting (module docs).
    Radau5,
}

impl CycleIntegrator {
    /// The name used on the command line: `dopri5` or `radau5`.
    pub fn name(self) -> &'static str {
        match self {
            CycleIntegrator::DormandPrince => "dopri5",
            CycleIntegrator::Radau5 => "radau5",
        }
    }

    fn stepper(self, tol: f64, h0: f64) -> Result<Integrator, CoreError> {
        Ok(match self {
            CycleIntegrator::DormandPrince => {
                Integrator::DormandPrince(DormandPrince::new(tol, tol, h0)?)
            }
            CycleIntegrator::Radau5 => Integrator::Radau5(Radau5::adaptive(tol, tol, h0)?),
        })
    }
}

/// Options of [`limit_cycle`]. Times are in the circuit's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CycleOptions {
    /// Simulated time discarded as transient.
    pub transient: f64,
    /// Simulated time searched for returns to the section after the transient.
    pub window: f64,
    /// The circuit settles when the scaled right-hand side falls below this.
    pub settle_tol: f64,
    /// A crossing returns when it lies within this fraction of the orbit's widest range.
    pub return_tol: f64,
    /// Tolerances of the Dormand–Prince runs (relative = absolute).
    pub rtol: f64,
    /// Newton stops at `‖φ(x₀, T) − x₀‖∞ ≤ tol (1 + ‖x₀‖∞)`.
    pub tol: f64,
    /// Most Newton iterations.
    pub max_newton: usize,
    /// The integrator of every run.
    pub integrator: CycleIntegrator,
}

impl CycleOptions {
    /// Defaults scaled by the slowest time constant τ_max: transient 2000 τ_max, window
    /// 500 τ_max, settled below 1e-8, returns within 1e-2 of the orbit's size, integration
    /// tolerance 1e-11, Newton to 1e-9, at most 20 Newton steps, Dormand–Prince.
    pub fn for_circuit(circuit: &Circuit) -> Self {
        let tau_max = circuit
            .tau_y()
            .iter()
            .chain(circuit.tau_a())
            .fold(0.0_f64, |m, &t| m.max(t));
        Self {
            transient: 2000.0 * tau_max,
            window: 500.0 * tau_max,
            settle_tol: 1e-8,
            return_tol: 1e-2,
            rtol: 1e-11,
            tol: 1e-9,
            max_newton: 20,
            integrator: CycleIntegrator::DormandPrince,
        }
    }
}

/// A refined periodic orbit.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitCycle {
    /// The period T.
    pub period: f64,
    /// A point `[y; a]` on the orbit (on the Poincaré section, up to Newton's correction).
    pub point: Vec<f64>,
    /// `[min, max]` of each `y_i` over one period.
    pub y_range: Vec<[f64; 2]>,
    /// Floquet multipliers `(Re, Im)`, largest modulus first.
    pub multipliers: Vec<(f64, f64)>,
    /// Index of the trivial multiplier (the one closest to 1) in `multipliers`.
    pub trivial: usize,
    /// Every non-trivial multiplier has `|μ| < 1`.
    pub stable: bool,
    /// Newton iterations of the shooting.
    pub newton_iterations: usize,
    /// `‖φ(x₀, T) − x₀‖∞` at the answer.
    pub residual: f64,
    /// The first guess of the period from the section returns.
    pub detected_period: f64,
    /// Integration steps taken in all runs (transient, window, shooting, amplitude pass).
    pub steps: usize,
}

/// What [`limit_cycle`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum CycleOutcome {
    /// A periodic orbit.
    Cycle(LimitCycle),
    /// The circuit came to rest instead, at `state` with scaled residual `residual` by time `t`.
    Settled {
        /// The state reached.
        state: Vec<f64>,
        /// Its scaled residual.
        residual: f64,
        /// The time reached.
        t: f64,
    },
}

/// The variational system `[x; vec(Φ)]` (Φ column-major) of a circuit.
struct Variational<'a> {
    circuit: &'a Circuit,
}

impl VectorField for Variational<'_> {
    fn dim(&self) -> usize {
        let m = self.circuit.dim();
        m + m * m
    }
    fn eval(&self, _t: f64, x: &[f64], dxdt: &mut [f64]) {
        let m = self.circuit.dim();
        let (state, phi) = x.split_at(m);
        let (dstate, dphi) = dxdt.split_at_mut(m);
        self.circuit.rhs(state, dstate);
        let jac = self.circuit.jacobian(state);
        let phi = MatRef::from_column_major_slice(phi, m, m);
        let out = MatMut::from_column_major_slice_mut(dphi, m, m);
        faer::linalg::matmul::matmul(out, Accum::Replace, jac.as_ref(), phi, 1.0, Par::Seq);
    }
    /// The block lower-triangular Jacobian of the module docs.
    fn jacobian(&self, _t: f64, x: &[f64], mut out: MatMut<'_, f64>) {
        let m = self.circuit.dim();
        let (state, phi) = x.split_at(m);
        out.fill(0.0);
        let jac = self.circuit.jacobian(state);
        for i in 0..m {
            for k in 0..m {
                out[(i, k)] = jac[(i, k)];
                // ∂(J Φ)_{:, j} / ∂Φ_{:, j} = J, for every column j.
                for j in 0..m {
                    out[(m + j * m + i, m + j * m + k)] = jac[(i, k)];
                }
            }
        }
        let phi = MatRef::from_column_major_slice(phi, m, m);
        let mut xp = state.to_vec();
        for k in 0..m {
            let h = f64::EPSILON.cbrt() * (1.0 + state[k].abs());
            xp[k] = state[k] + h;
            let jp = self.circuit.jacobian(&xp);
            xp[k] = state[k] - h;
            let jm = self.circuit.jacobian(&xp);
            xp[k] = state[k];
            let d = (jp - jm) * phi;
            for j in 0..m {
                for i in 0..m {
                    out[(m + j * m + i, k)] = d[(i, j)] / (2.0 * h);
                }
            }
        }
    }
    fn scaled_norm(&self, dxdt: &[f64]) -> f64 {
        self.circuit.scaled_norm(&dxdt[..self.circuit.dim()])
    }
}

/// The integrator, its tolerance (relative = absolute), first trial step and largest step.
#[derive(Debug, Clone, Copy)]
struct Run {
    integrator: CycleIntegrator,
    tol: f64,
    h0: f64,
    h_max: f64,
}

/// Integrate `f` from `x` over exactly `t_end`, calling `visit` after every step; returns the
/// number of steps.
fn flow<F: VectorField + ?Sized>(
    f: &F,
    x: &mut [f64],
    t_end: f64,
    run: Run,
    mut visit: impl FnMut(f64, &[f64]),
) -> Result<usize, CoreError> {
    let mut stepper = run.integrator.stepper(run.tol, run.h0)?;
    let mut k1 = vec![0.0; x.len()];
    let mut t = 0.0;
    let mut steps = 0;
    while t_end - t > 1e-12 * t_end {
        f.eval(t, x, &mut k1);
        t += stepper.step(f, t, x, &k1, run.h_max.min(t_end - t))?;
        steps += 1;
        if x.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NotConverged {
                method: "limit-cycle simulation".into(),
                residual: f64::INFINITY,
                tolerance: run.tol,
                iterations: steps,
                reason: "non-finite".into(),
            });
        }
        visit(t, x);
    }
    Ok(steps)
}

/// `φ(x₀, T)` and `Φ(T)`.
fn monodromy(
    circuit: &Circuit,
    x0: &[f64],
    period: f64,
    run: Run,
) -> Result<(Vec<f64>, Mat<f64>, usize), CoreError> {
    let m = x0.len();
    let mut z = vec![0.0; m + m * m];
    z[..m].copy_from_slice(x0);
    for i in 0..m {
        z[m + i * m + i] = 1.0;
    }
    let steps = flow(&Variational { circuit }, &mut z, period, run, |_, _| {})?;
    let phi = Mat::from_fn(m, m, |i, j| z[m + j * m + i]);
    Ok((z[..m].to_vec(), phi, steps))
}

/// Detect and refine a limit cycle of `circuit` from the state `x0`; see the module docs.
///
/// # Errors
/// [`LyapunovError::NoCycle`] when the run neither settles nor returns near itself on the
/// section within the window (quasi-periodic, chaotic, or a period longer than the window), or
/// when shooting does not converge; the errors of the integrator and of the eigensolver.
pub fn limit_cycle(
    circuit: &Circuit,
    x0: &[f64],
    opts: &CycleOptions,
) -> Result<CycleOutcome, LyapunovError> {
    let m = circuit.dim();
    if x0.len() != m {
        return Err(LyapunovError::StateLength {
            expected: m,
            found: x0.len(),
        });
    }
    for (option, value) in [("transient", opts.transient), ("window", opts.window)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(LyapunovError::BadOption {
                option,
                value,
                reason: "must be a finite time > 0",
            });
        }
    }
    let n = circuit.n();
    let tau_min = circuit
        .tau_y()
        .iter()
        .chain(circuit.tau_a())
        .fold(f64::INFINITY, |m, &t| m.min(t));
    let h0 = 0.01 * tau_min;
    let sim = Run {
        integrator: opts.integrator,
        tol: 1e-9,
        h0,
        h_max: f64::INFINITY,
    };
    let mut x = x0.to_vec();
    let mut f = vec![0.0; m];
    let mut steps = flow(circuit, &mut x, opts.transient, sim, |_, _| {})?;
    // The window: every step recorded, settling watched.
    let mut times = vec![0.0];
    let mut states = x.clone();
    let mut min_residual = f64::INFINITY;
    steps += flow(circuit, &mut x, opts.window, sim, |t, s| {
        times.push(t);
        states.extend_from_slice(s);
        circuit.rhs(s, &mut f);
        min_residual = min_residual.min(circuit.scaled_norm(&f));
    })?;
    circuit.rhs(&x, &mut f);
    let residual = circuit.scaled_norm(&f);
    if residual < opts.settle_tol || min_residual < opts.settle_tol {
        return Ok(CycleOutcome::Settled {
            state: x,
            residual,
            t: opts.transient + opts.window,
        });
    }
    let state = |k: usize| &states[k * m..(k + 1) * m];
    let samples = times.len();
    let mut lo = vec![f64::INFINITY; m];
    let mut hi = vec![f64::NEG_INFINITY; m];
    for k in 0..samples {
        for (i, &v) in state(k).iter().enumerate() {
            lo[i] = lo[i].min(v);
            hi[i] = hi[i].max(v);
        }
    }
    let size = (0..m).map(|i| hi[i] - lo[i]).fold(0.0, f64::max);
    let section = (0..n)
        .max_by(|&i, &j| (hi[i] - lo[i]).total_cmp(&(hi[j] - lo[j])))
        .unwrap_or(0);
    let level = 0.5 * (lo[section] + hi[section]);
    // Upward crossings, linearly interpolated between steps.
    let mut crossings: Vec<(f64, Vec<f64>)> = Vec::new();
    for k in 0..samples - 1 {
        let (u, v) = (state(k)[section], state(k + 1)[section]);
        if u < level && v >= level {
            let w = (level - u) / (v - u);
            let t = times[k] + w * (times[k + 1] - times[k]);
            let p = (0..m)
                .map(|i| state(k)[i] + w * (state(k + 1)[i] - state(k)[i]))
                .collect();
            crossings.push((t, p));
        }
    }
    let no_cycle = |reason: String| LyapunovError::NoCycle { reason };
    let Some((t_last, p_last)) = crossings.last().cloned() else {
        return Err(no_cycle(format!(
            "the state still moves (widest range {size:.3e}, residual {residual:.3e}) but never crosses the section y{section} = {level:.4} upwards in the window"
        )));
    };
    let back = crossings[..crossings.len() - 1]
        .iter()
        .rev()
        .find(|(_, p)| {
            p.iter()
                .zip(&p_last)
                .all(|(a, b)| (a - b).abs() <= opts.return_tol * size)
        });
    let Some((t_back, _)) = back else {
        return Err(no_cycle(format!(
            "{} crossings of the section y{section} = {level:.4} in the window, none within {:.0e} of the orbit's size {size:.3e} of the last: quasi-periodic, chaotic, or a period longer than the window",
            crossings.len(),
            opts.return_tol
        )));
    };
    let detected = t_last - t_back;
    // Shooting.
    let mut x0 = p_last;
    let mut period = detected;
    let mut iterations = 0;
    let mut fx0 = vec![0.0; m];
    let mut fx1 = vec![0.0; m];
    let shoot = Run {
        tol: opts.rtol,
        ..sim
    };
    loop {
        let (x1, phi, shot) = monodromy(circuit, &x0, period, shoot)?;
        steps += shot;
        let r: Vec<f64> = (0..m).map(|i| x1[i] - x0[i]).collect();
        let res = r.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
        let scale = 1.0 + x0.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
        if res <= opts.tol * scale {
            let report = Shooting {
                newton_iterations: iterations,
                residual: res,
                detected_period: detected,
                steps,
            };
            return finish(circuit, x0, period, phi, report, shoot);
        }
        if iterations >= opts.max_newton {
            return Err(no_cycle(format!(
                "shooting from the detected orbit (period {detected:.6}) did not converge: ‖φ(x₀,T) − x₀‖∞ = {res:.3e} after {iterations} Newton steps"
            )));
        }
        circuit.rhs(&x0, &mut fx0);
        circuit.rhs(&x1, &mut fx1);
        let sys = Mat::from_fn(m + 1, m + 1, |i, j| match (i < m, j < m) {
            (true, true) => phi[(i, j)] - if i == j { 1.0 } else { 0.0 },
            (true, false) => fx1[i],
            (false, true) => fx0[j],
            (false, false) => 0.0,
        });
        let rhs = Mat::from_fn(m + 1, 1, |i, _| if i < m { -r[i] } else { 0.0 });
        let d = sys.partial_piv_lu().solve(&rhs);
        for i in 0..m {
            x0[i] += d[(i, 0)];
        }
        period += d[(m, 0)];
        iterations += 1;
        if !(period.is_finite() && period > 0.0) {
            return Err(no_cycle(format!(
                "shooting diverged (period {period}) after {iterations} Newton steps"
            )));
        }
    }
}

/// What shooting reports besides the orbit.
struct Shooting {
    newton_iterations: usize,
    residual: f64,
    detected_period: f64,
    steps: usize,
}

fn finish(
    circuit: &Circuit,
    x0: Vec<f64>,
    period: f64,
    phi: Mat<f64>,
    report: Shooting,
    run: Run,
) -> Result<CycleOutcome, LyapunovError> {
    let n = circuit.n();
    let mut mus: Vec<(f64, f64)> = eigenvalues(&phi)?.iter().map(|v| (v.re, v.im)).collect();
    let modulus = |v: &(f64, f64)| v.0.hypot(v.1);
    mus.sort_by(|a, b| modulus(b).total_cmp(&modulus(a)));
    let trivial = (0..mus.len())
        .min_by(|&i, &j| {
            let d = |k: usize| (mus[k].0 - 1.0).hypot(mus[k].1);
            d(i).total_cmp(&d(j))
        })
        .unwrap_or(0);
    let stable = mus
        .iter()
        .enumerate()
        .all(|(k, v)| k == trivial || modulus(v) < 1.0);
    let mut y_range = vec![[f64::INFINITY, f64::NEG_INFINITY]; n];
    let mut x = x0.clone();
    let mut note = |s: &[f64]| {
        for (r, &v) in y_range.iter_mut().zip(&s[..n]) {
            *r = [r[0].min(v), r[1].max(v)];
        }
    };
    note(&x);
    // Small steps so that the extremes are sampled finely (≤ T/2000 apart).
    let fine = Run {
        h_max: period / 2000.0,
        ..run
    };
    let steps = report.steps + flow(circuit, &mut x, period, fine, |_, s| note(s))?;
    Ok(CycleOutcome::Cycle(LimitCycle {
        period,
        point: x0,
        y_range,
        multipliers: mus,
        trivial,
        stable,
        newton_iterations: report.newton_iterations,
        residual: report.residual,
        detected_period: report.detected_period,
        steps,
    }))
}
