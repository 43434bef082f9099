//! The reports the methods of `Circuit` return: plain attribute holders of numpy arrays and
//! numbers, converted from the Rust reports.

use crate::convert::{complex1, flat2, vec1};
use numpy::{Complex64, PyArray1, PyArray2};
use organics_core::SteadyStateReport;
use organics_lyapunov::{FixedPoint2D, LinearStability, Verdict};
use pyo3::prelude::*;

/// A steady state with its stability verdict (what `organics steady-state` prints).
///
/// `y`, `a`: the state, shape (n,). `converged`: whether the solver met its tolerance.
/// `residual`: the scaled residual max_i |f_i| τ_i. `iterations`: iterations or steps.
/// `method`: the route taken (`closed-form`, `iterative`, `iterative+newton`,
/// `simulate+newton`, ...). `reason`: why it stopped (`converged`, `max-iterations`,
/// `non-finite`, `stalled`, `not-settled`). When a fixed point was found: `verdict`
/// (`stable`, `marginal`, `unstable`), `stable`, `max_real` (max Re λ of the Jacobian,
/// 1/time unit), `tolerance` of the verdict, `eigenvalues` (complex, largest real part
/// first); otherwise these are None. `range`: for `not-settled`, shape (2n, 2), the
/// [min, max] of every variable of [y; a] over the last tenth of the simulation.
#[pyclass(module = "organics", frozen, get_all)]
pub struct SteadyState {
    y: Py<PyArray1<f64>>,
    a: Py<PyArray1<f64>>,
    converged: bool,
    residual: f64,
    iterations: usize,
    method: String,
    reason: String,
    stable: Option<bool>,
    verdict: Option<String>,
    max_real: Option<f64>,
    tolerance: Option<f64>,
    eigenvalues: Option<Py<PyArray1<Complex64>>>,
    range: Option<Py<PyArray2<f64>>>,
}

impl SteadyState {
    pub fn new(py: Python<'_>, r: &SteadyStateReport, lin: Option<&LinearStability>) -> Self {
        Self {
            y: vec1(py, r.y.clone()),
            a: vec1(py, r.a.clone()),
            converged: r.converged(),
            residual: r.residual,
            iterations: r.iterations,
            method: r.method.to_string(),
            reason: r.reason.name().to_string(),
            stable: lin.map(|l| l.verdict == Verdict::Stable),
            verdict: lin.map(|l| l.verdict.name().to_string()),
            max_real: lin.map(|l| l.max_real),
            tolerance: lin.map(|l| l.tolerance),
            eigenvalues: lin.map(|l| complex1(py, &l.eigenvalues)),
            range: r.range.as_ref().map(|range| {
                let flat = range.iter().flat_map(|p| p.iter().copied()).collect();
                flat2(py, flat, range.len(), 2)
            }),
        }
    }
}

#[pymethods]
impl SteadyState {
    fn __repr__(&self) -> String {
        format!(
            "SteadyState(method={:?}, reason={:?}, residual={:.3e}, iterations={}, verdict={})",
            self.method,
            self.reason,
            self.residual,
            self.iterations,
            self.verdict.as_deref().unwrap_or("None")
        )
    }
}

/// The linear stability of a circuit at a fixed point (what `organics stability` prints).
///
/// `eigenvalues`: complex array of the 2n eigenvalues of the Jacobian, largest real part first
/// (1/time unit). `max_real`: the spectral abscissa. `verdict`: `stable` when
/// max_real < −tolerance, `unstable` when > tolerance, else `marginal`; `stable` is
/// `verdict == "stable"`. `tolerance`: 2 m ε ‖B‖_F of the balanced Jacobian (m = 2n). `kind`:
/// for n = 1, node, focus, saddle, center or degenerate. `y`, `a`: the fixed point;
/// `residual`: its scaled residual; `method`: how it was found (`given` for a state passed in).
#[pyclass(module = "organics", frozen, get_all)]
pub struct Stability {
    y: Py<PyArray1<f64>>,
    a: Py<PyArray1<f64>>,
    eigenvalues: Py<PyArray1<Complex64>>,
    max_real: f64,
    tolerance: f64,
    verdict: String,
    stable: bool,
    kind: Option<String>,
    residual: f64,
    method: String,
}

impl Stability {
    pub fn new(
        py: Python<'_>,
        y: Vec<f64>,
        a: Vec<f64>,
        lin: &LinearStability,
        residual: f64,
        method: &str,
    ) -> Self {
        Self {
            y: vec1(py, y),
            a: vec1(py, a),
            eigenvalues: complex1(py, &lin.eigenvalues),
            max_real: lin.max_real,
            tolerance: lin.tolerance,
            verdict: lin.verdict.name().to_string(),
            stable: lin.verdict == Verdict::Stable,
            kind: lin.kind.map(|k| k.name().to_string()),
            residual,
            method: method.to_string(),
        }
    }
}

#[pymethods]
impl Stability {
    fn __repr__(&self) -> String {
        format!(
            "Stability(verdict={:?}, max_real={:.6e}, tolerance={:.1e}, method={:?})",
            self.verdict, self.max_real, self.tolerance, self.method
        )
    }
}

/// A fixed point of a one-neuron circuit (paper Figs. 1–3).
///
/// `y`, `a`: its coordinates. `eigenvalues`: the two eigenvalues of the 2 × 2 Jacobian
/// (complex, 1/time unit). `max_real`: their largest real part. `stable`, `verdict`: the
/// stability verdict. `kind`: node, focus, saddle, center or degenerate. `residual`: the scaled
/// residual of the vector field there.
#[pyclass(module = "organics", frozen, get_all)]
pub struct FixedPoint {
    y: f64,
    a: f64,
    eigenvalues: Py<PyArray1<Complex64>>,
    max_real: f64,
    stable: bool,
    verdict: String,
    kind: String,
    residual: f64,
}

impl FixedPoint {
    pub fn new(py: Python<'_>, f: &FixedPoint2D) -> Self {
        Self {
            y: f.y,
            a: f.a,
            eigenvalues: complex1(py, &f.eigenvalues),
            max_real: f.max_real,
            stable: f.stable,
            verdict: f.verdict.name().to_string(),
            kind: f.kind.name().to_string(),
            residual: f.residual,
        }
    }
}

#[pymethods]
impl FixedPoint {
    fn __repr__(&self) -> String {
        format!(
            "FixedPoint(y={}, a={}, kind={:?}, stable={})",
            self.y,
            self.a,
            self.kind,
            if self.stable { "True" } else { "False" }
        )
    }
}

/// A simulated trajectory. `t`: times, shape (T,). `y`, `a`: states, shape (T, n). `steps`:
/// integrator steps taken. The first and last states are always recorded.
#[pyclass(module = "organics", frozen, get_all)]
pub struct Trajectory {
    t: Py<PyArray1<f64>>,
    y: Py<PyArray2<f64>>,
    a: Py<PyArray2<f64>>,
    steps: usize,
}

impl Trajectory {
    pub fn new(py: Python<'_>, traj: &organics_core::integrate::Trajectory, n: usize) -> Self {
        let samples = traj.len();
        let (mut y, mut a) = (
            Vec::with_capacity(samples * n),
            Vec::with_capacity(samples * n),
        );
        for x in traj.states.chunks_exact(2 * n) {
            y.extend_from_slice(&x[..n]);
            a.extend_from_slice(&x[n..]);
        }
        Self {
            t: vec1(py, traj.times.clone()),
            y: flat2(py, y, samples, n),
            a: flat2(py, a, samples, n),
            steps: traj.steps,
        }
    }
}

#[pymethods]
impl Trajectory {
    fn __repr__(&self, py: Python<'_>) -> String {
        let t = self.t.bind(py);
        let samples = t.len().unwrap_or(0);
        format!("Trajectory(samples={samples}, steps={})", self.steps)
    }
}

/// The phase plane of a one-neuron circuit, ready for matplotlib.
///
/// `y` (ny,), `a` (na,): the grid axes. `dy_dt`, `da_dt` (na, ny): the vector field at
/// (y[j], a[i]) in row i, column j (1/time unit), as `plt.streamplot(y, a, dy_dt, da_dt)`
/// expects. `y_nullcline`, `a_nullcline`: lists of (k, 2) arrays of (y, a) points, one per
/// branch (dy/dt = 0 and da/dt = 0). `fixed_points`: every fixed point (list of FixedPoint).
/// `window`: (y_min, y_max, a_min, a_max).
#[pyclass(module = "organics", frozen, get_all)]
pub struct PhasePlane {
    pub(crate) y: Py<PyArray1<f64>>,
    pub(crate) a: Py<PyArray1<f64>>,
    pub(crate) dy_dt: Py<PyArray2<f64>>,
    pub(crate) da_dt: Py<PyArray2<f64>>,
    pub(crate) y_nullcline: Vec<Py<PyArray2<f64>>>,
    pub(crate) a_nullcline: Vec<Py<PyArray2<f64>>>,
    pub(crate) fixed_points: Vec<Py<FixedPoint>>,
    pub(crate) window: (f64, f64, f64, f64),
}

#[pymethods]
impl PhasePlane {
    fn __repr__(&self) -> String {
        format!(
            "PhasePlane(window={:?}, fixed_points={})",
            self.window,
            self.fixed_points.len()
        )
    }
}

/// Curves of (y, a) points as a list of (k, 2) arrays.
pub fn curves(py: Python<'_>, lines: &[Vec<(f64, f64)>]) -> Vec<Py<PyArray2<f64>>> {
    lines
        .iter()
        .map(|l| {
            let flat = l.iter().flat_map(|&(y, a)| [y, a]).collect();
            flat2(py, flat, l.len(), 2)
        })
        .collect()
}
