//! `organics.Circuit`: a validated circuit and the computations on it.

use crate::convert::{
    array, bad, core_err, failed, json_to_py, lyapunov_err, mat, rows, vec1, vector,
};
use crate::reports::{FixedPoint, PhasePlane, Stability, SteadyState, Trajectory, curves};
use numpy::{PyArray1, PyArray2};
use organics_core::integrate::{Integrator, simulate};
use organics_core::params::{PerNeuron, RecurrenceSpec, WeightSpec};
use organics_core::steady_state::{Method, REST_START, StopReason};
use organics_core::{CircuitSpec, Model};
use organics_lyapunov::continuation::{
    ContinuationOptions, Parameter, bifurcation_diagram, continuation,
};
use organics_lyapunov::json::{continuation_json, cycle_json, search_json};
use organics_lyapunov::planar::{Window, nullclines, vector_grid};
use organics_lyapunov::{
    CycleIntegrator, CycleOptions, CycleOutcome, LyapunovError, PortraitOptions, SearchOptions,
};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// An ORGaNICs circuit of n principal neurons y and n modulators a.
///
/// Main model (paper Eq. 16), element-wise::
///
///     tau_y dy/dt = -y + b z + (1 - sqrt(max(a, 0))) (W_r y)
///     tau_a da/dt = -a + b0^2 sigma^2 + W (y^2 max(a, 0))
///
/// The rectified model (Eq. 102) uses max(y, 0) for y in W_r y and y^2.
///
/// Arguments (keywords; the same meanings as in a circuit file):
///     model: "main" or "rectified".
///     tau_y, tau_a: time constants (> 0; the paper's figures use ms), number or shape (n,).
///     b: input gains (> 0), b0: gains on sigma (> 0), sigma: semi-saturation (> 0);
///         each a number or shape (n,).
///     w_r: recurrent weights W_r: "identity", a number s (s times I), or shape (n, n).
///     w: normalisation weights W (>= 0): a number (every entry) or shape (n, n).
///     z: input drive, shape (n,); it sets n.
///
/// Raises ValueError naming the field for any invalid value.
#[pyclass(module = "organics", frozen)]
pub struct Circuit {
    inner: organics_core::Circuit,
}

/// `(dy/dt, da/dt)` as numpy arrays.
type FieldPair = (Py<PyArray1<f64>>, Py<PyArray1<f64>>);

fn per_neuron(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<PerNeuron> {
    let a = array(field, obj)?;
    match a.ndim() {
        0 => Ok(PerNeuron::Scalar(
            a.iter().copied().next().unwrap_or(f64::NAN),
        )),
        1 => Ok(PerNeuron::Vector(a.iter().copied().collect())),
        d => Err(bad(
            field,
            format!("expected a number or a 1-D array, found a {d}-D array"),
        )),
    }
}

fn recurrence(obj: &Bound<'_, PyAny>) -> PyResult<RecurrenceSpec> {
    let expected = "expected \"identity\", a number s (s times I) or an n x n array";
    if let Ok(s) = obj.extract::<String>() {
        return if s == "identity" {
            Ok(RecurrenceSpec::Identity)
        } else {
            Err(bad("w_r", format!("{expected}, found {s:?}")))
        };
    }
    let a = array("w_r", obj)?;
    match a.ndim() {
        0 => Ok(RecurrenceSpec::Scaled(
            a.iter().copied().next().unwrap_or(f64::NAN),
        )),
        2 => Ok(RecurrenceSpec::Dense(rows(&a))),
        d => Err(bad("w_r", format!("{expected}, found a {d}-D array"))),
    }
}

fn weights(obj: &Bound<'_, PyAny>) -> PyResult<WeightSpec> {
    let a = array("w", obj)?;
    match a.ndim() {
        0 => Ok(WeightSpec::Uniform(
            a.iter().copied().next().unwrap_or(f64::NAN),
        )),
        2 => Ok(WeightSpec::Dense(rows(&a))),
        d => Err(bad(
            "w",
            format!("expected a number (every entry) or an n x n array, found a {d}-D array"),
        )),
    }
}

fn window_arg(w: Option<(f64, f64, f64, f64)>) -> Option<Window> {
    w.map(|(y_min, y_max, a_min, a_max)| Window {
        y_min,
        y_max,
        a_min,
        a_max,
    })
}

impl Circuit {
    fn from_spec(py: Python<'_>, spec: &CircuitSpec) -> PyResult<Self> {
        let inner = spec.build().map_err(|e| core_err(py, e))?;
        Ok(Self { inner })
    }

    fn state(&self, y: &Bound<'_, PyAny>, a: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
        let n = self.inner.n();
        let mut x = vector("y", y, n)?;
        x.extend(vector("a", a, n)?);
        Ok(x)
    }

    /// The initial state `[y0; a0]`, each defaulting to 0.01 in every variable (the command
    /// line's start).
    fn start(
        &self,
        y0: Option<&Bound<'_, PyAny>>,
        a0: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<f64>> {
        let n = self.inner.n();
        let part = |field: &str, v: Option<&Bound<'_, PyAny>>| match v {
            Some(v) => vector(field, v, n),
            None => Ok(vec![REST_START; n]),
        };
        let mut x0 = part("y0", y0)?;
        x0.extend(part("a0", a0)?);
        Ok(x0)
    }

    /// `organics_lyapunov::steady_state`, raising `ComputationError` (with the report) when
    /// it found no steady state.
    fn judged(&self, py: Python<'_>, method: Method) -> PyResult<organics_lyapunov::SteadyState> {
        let judged = py
            .detach(|| organics_lyapunov::steady_state(&self.inner, method))
            .map_err(|e| lyapunov_err(py, e))?;
        let r = &judged.report;
        if r.converged() {
            return Ok(judged);
        }
        let message = if r.reason == StopReason::NotSettled {
            LyapunovError::NotSettled {
                steps: r.iterations,
                width: r.range_width(),
            }
            .to_string()
        } else {
            format!(
                "steady state did not converge ({}; residual {:.3e} after {} iterations)",
                r.reason.name(),
                r.residual,
                r.iterations
            )
        };
        let report = SteadyState::new(py, r, judged.stability.as_ref());
        Err(failed(
            py,
            message,
            Some(Py::new(py, report)?.into_bound(py).into_any()),
        ))
    }

    fn planar_fixed_points(&self, py: Python<'_>) -> PyResult<Vec<Py<FixedPoint>>> {
        let fps = py
            .detach(|| organics_lyapunov::fixed_points(&self.inner))
            .map_err(|e| lyapunov_err(py, e))?;
        fps.iter()
            .map(|f| Py::new(py, FixedPoint::new(py, f)))
            .collect()
    }
}

#[pymethods]
impl Circuit {
    #[new]
    #[pyo3(signature = (model = "main", *, tau_y, tau_a, b, b0, sigma, w_r, w, z))]
    fn new(
        py: Python<'_>,
        model: &str,
        tau_y: &Bound<'_, PyAny>,
        tau_a: &Bound<'_, PyAny>,
        b: &Bound<'_, PyAny>,
        b0: &Bound<'_, PyAny>,
        sigma: &Bound<'_, PyAny>,
        w_r: &Bound<'_, PyAny>,
        w: &Bound<'_, PyAny>,
        z: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let model = match model {
            "main" => Model::Main,
            "rectified" => Model::Rectified,
            m => {
                return Err(bad(
                    "model",
                    format!("expected \"main\" or \"rectified\", found {m:?}"),
                ));
            }
        };
        let z_arr = array("z", z)?;
        if z_arr.ndim() != 1 {
            return Err(bad(
                "z",
                format!(
                    "expected a 1-D array (length n), found shape {:?}",
                    z_arr.shape()
                ),
            ));
        }
        let spec = CircuitSpec {
            model,
            tau_y: per_neuron("tau_y", tau_y)?,
            tau_a: per_neuron("tau_a", tau_a)?,
            b: per_neuron("b", b)?,
            b0: per_neuron("b0", b0)?,
            sigma: per_neuron("sigma", sigma)?,
            w_r: recurrence(w_r)?,
            w: weights(w)?,
            z: z_arr.iter().copied().collect(),
            initial: None,
        };
        Self::from_spec(py, &spec)
    }

    /// Read a circuit file (JSON, the command line's format). Raises OSError when the file
    /// cannot be read and ValueError naming the field when it is not a valid circuit.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))?;
        let spec =
            CircuitSpec::from_json(&text).map_err(|e| bad(&path.display().to_string(), e))?;
        Self::from_spec(py, &spec)
    }

    /// Parse a circuit from the text of a circuit file (JSON).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let spec = CircuitSpec::from_json(text)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        Self::from_spec(py, &spec)
    }

    /// Number of principal neurons (the state has 2n variables).
    #[getter]
    fn n(&self) -> usize {
        self.inner.n()
    }

    /// "main" (Eq. 16) or "rectified" (Eq. 102).
    #[getter]
    fn model(&self) -> &'static str {
        self.inner.model().name()
    }

    /// τ_y, shape (n,).
    #[getter]
    fn tau_y(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        vec1(py, self.inner.tau_y().to_vec())
    }

    /// τ_a, shape (n,).
    #[getter]
    fn tau_a(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        vec1(py, self.inner.tau_a().to_vec())
    }

    /// b, shape (n,).
    #[getter]
    fn b(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        vec1(py, self.inner.b().to_vec())
    }

    /// b0, shape (n,).
    #[getter]
    fn b0(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        vec1(py, self.inner.b0().to_vec())
    }

    /// σ, shape (n,).
    #[getter]
    fn sigma(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        vec1(py, self.inner.sigma().to_vec())
    }

    /// W_r as a dense matrix, shape (n, n).
    #[getter]
    fn w_r(&self, py: Python<'_>) -> Py<PyArray2<f64>> {
        mat(py, &self.inner.w_r().to_dense(self.inner.n()))
    }

    /// W, shape (n, n).
    #[getter]
    fn w(&self, py: Python<'_>) -> Py<PyArray2<f64>> {
        mat(py, self.inner.w())
    }

    /// z, shape (n,).
    #[getter]
    fn z(&self, py: Python<'_>) -> Py<PyArray1<f64>> {
        vec1(py, self.inner.z().to_vec())
    }

    /// The circuit file as a dict (json.dump it to get a file `from_file` reads).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.inner.to_spec().to_json())
    }

    /// The circuit file as JSON text.
    fn to_json(&self) -> String {
        self.inner.to_spec().to_json().to_string()
    }

    /// The vector field at (y, a): returns (dy/dt, da/dt), each shape (n,), in 1/time unit.
    fn rhs(
        &self,
        py: Python<'_>,
        y: &Bound<'_, PyAny>,
        a: &Bound<'_, PyAny>,
    ) -> PyResult<FieldPair> {
        let x = self.state(y, a)?;
        let mut dx = vec![0.0; x.len()];
        self.inner.rhs(&x, &mut dx);
        let da = dx.split_off(self.inner.n());
        Ok((vec1(py, dx), vec1(py, da)))
    }

    /// The analytic Jacobian of the vector field at (y, a), shape (2n, 2n), variables ordered
    /// [y; a] (docs/model.md § Jacobian).
    fn jacobian(
        &self,
        py: Python<'_>,
        y: &Bound<'_, PyAny>,
        a: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyArray2<f64>>> {
        let x = self.state(y, a)?;
        Ok(mat(py, &self.inner.jacobian(&x)))
    }

    /// The steady state and its stability verdict.
    ///
    /// method: "auto" (closed form when W_r = I, else the iterative algorithm or a simulation,
    /// Newton-polished; the simulated state when the first answer does not attract),
    /// "closed-form" (W_r = I), "iterative" (the paper's algorithm, at most `iterations`
    /// times) or "simulate" (integrate to rest, then Newton).
    /// Raises ComputationError (its `report` a SteadyState) when no steady state was found: the
    /// solver did not converge, or the circuit never comes to rest.
    #[pyo3(signature = (method = "auto", iterations = 15))]
    fn steady_state(
        &self,
        py: Python<'_>,
        method: &str,
        iterations: usize,
    ) -> PyResult<SteadyState> {
        let method = match method {
            "auto" => Method::Auto,
            "closed-form" | "closed_form" => Method::ClosedForm,
            "iterative" => Method::Iterative(iterations),
            "simulate" => Method::Simulate,
            m => {
                return Err(bad(
                    "method",
                    format!(
                        "expected \"auto\", \"closed-form\", \"iterative\" or \"simulate\", found {m:?}"
                    ),
                ));
            }
        };
        let judged = self.judged(py, method)?;
        Ok(SteadyState::new(
            py,
            &judged.report,
            judged.stability.as_ref(),
        ))
    }

    /// Linear stability: the eigenvalues of the Jacobian at a fixed point and the verdict.
    ///
    /// Without arguments, at the steady state found by `steady_state("auto")` (raises
    /// ComputationError with that SteadyState as `report` when there is none); with `y` and `a`,
    /// at that state (which should be a fixed point: its residual is reported).
    #[pyo3(signature = (y = None, a = None))]
    fn stability(
        &self,
        py: Python<'_>,
        y: Option<&Bound<'_, PyAny>>,
        a: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Stability> {
        match (y, a) {
            (Some(y), Some(a)) => {
                let x = self.state(y, a)?;
                let r = py
                    .detach(|| organics_lyapunov::stability_at(&self.inner, &x))
                    .map_err(|e| lyapunov_err(py, e))?;
                let lin = organics_lyapunov::LinearStability {
                    eigenvalues: r.eigenvalues,
                    max_real: r.max_real,
                    tolerance: r.tolerance,
                    verdict: r.verdict,
                    kind: r.kind,
                };
                Ok(Stability::new(py, r.y, r.a, &lin, r.residual, r.method))
            }
            (None, None) => {
                let judged = self.judged(py, Method::Auto)?;
                let r = judged.report;
                let lin = judged
                    .stability
                    .expect("a converged steady state is judged");
                Ok(Stability::new(py, r.y, r.a, &lin, r.residual, r.method))
            }
            _ => Err(bad("y, a", "give both or neither")),
        }
    }

    /// Integrate from (y0, a0) (default 0.01 in every variable, the command line's start) to
    /// t_end. integrator: "euler", "rk4", "dopri5" (adaptive Dormand-Prince 5(4)) or "radau5"
    /// (adaptive Radau IIA order 5: implicit, L-stable, with the analytic Jacobian, for stiff
    /// circuits); the adaptive two use rtol and atol, and dt is their first trial step; dt
    /// defaults to 0.05 × the smallest time constant. Every
    /// `every`-th step is recorded, and the first and last states always.
    /// Raises ComputationError (its `report` the Trajectory so far) when the state becomes
    /// non-finite.
    #[pyo3(signature = (t_end, dt = None, integrator = "rk4", every = 1, rtol = 1e-8, atol = 1e-10, y0 = None, a0 = None))]
    fn simulate(
        &self,
        py: Python<'_>,
        t_end: f64,
        dt: Option<f64>,
        integrator: &str,
        every: usize,
        rtol: f64,
        atol: f64,
        y0: Option<&Bound<'_, PyAny>>,
        a0: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Trajectory> {
        let n = self.inner.n();
        let x0 = self.start(y0, a0)?;
        let tau_min = self
            .inner
            .tau_y()
            .iter()
            .chain(self.inner.tau_a())
            .fold(f64::INFINITY, |m, &t| m.min(t));
        let dt = dt.unwrap_or(0.05 * tau_min);
        let mut stepper =
            Integrator::from_name(integrator, dt, rtol, atol).map_err(|e| core_err(py, e))?;
        let traj = py
            .detach(|| simulate(&self.inner, &mut stepper, &x0, t_end, every))
            .map_err(|e| core_err(py, e))?;
        let out = Trajectory::new(py, &traj, n);
        if traj.stopped_non_finite {
            let t = traj.times.last().copied().unwrap_or(0.0);
            return Err(failed(
                py,
                format!("the state became non-finite after t = {t}"),
                Some(Py::new(py, out)?.into_bound(py).into_any()),
            ));
        }
        Ok(out)
    }

    /// Fixed points with their stability.
    ///
    /// n = 1: every fixed point, exactly, from the quartic in sqrt(a) (docs/model.md § Phase
    /// plane), as a list of FixedPoint (`starts` and `seed` unused).
    /// n > 1: a search by deflated Newton from `starts` seeded starts (docs/model.md
    /// § Fixed-point search), as the dict `organics fixed-points` prints: `fixed_points` (a
    /// list of dicts with `y`, `a`, `eigenvalues` ([re, im] pairs), `max_real`, `stable`,
    /// `verdict`, `residual`, `starts` (starts from which plain Newton reached it), `deflated`
    /// (deflated runs that found it)), `method` ("deflated-newton"), `starts`,
    /// `newton_failures`, `seed` and `complete` (False: an enumeration, not a proof that no
    /// other fixed point exists).
    /// Raises ValueError for starts = 0.
    #[pyo3(signature = (starts = 64, seed = 0))]
    fn fixed_points<'py>(
        &self,
        py: Python<'py>,
        starts: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = self.inner.n();
        if n == 1 {
            return Ok(self.planar_fixed_points(py)?.into_pyobject(py)?.into_any());
        }
        let opts = SearchOptions {
            starts,
            seed,
            ..SearchOptions::for_circuit(&self.inner)
        };
        let report = py
            .detach(|| organics_lyapunov::search_fixed_points(&self.inner, &opts))
            .map_err(|e| lyapunov_err(py, e))?;
        json_to_py(py, &search_json(&report, n))
    }

    /// Follow fixed-point branches as the parameter `param` moves from `start` to `stop`, by
    /// pseudo-arclength continuation (docs/model.md § Continuation): for n = 1 every branch
    /// through a fixed point at either end, for n > 1 the branch through the steady state at
    /// `start`. param: "w_r" (a scale on W_r), "w" (a scale on W), "b", "b0", "sigma", "z" (a
    /// scale on the input), "tau_y", "tau_a" (these set every neuron's value).
    /// max_step: largest arclength step (default |stop - start| / 50). out: a .svg or .png
    /// file to draw the bifurcation diagram to (stable solid, unstable dashed).
    ///
    /// Returns the dict `organics continuation` prints: `param`; `branches`, each with
    /// `end` (why it ended) and `points` (dicts of `param`, `y`, `a`, `stable`, `verdict`,
    /// `max_real`); `bifurcations`, each with `kind` ("fold", "hopf" or "branch-point"),
    /// `param` (located to far below 1e-6), `y`, `a`, `branch` (its index), `eigenvalues`
    /// ([re, im] pairs of the Jacobian there) and, for a Hopf point, `omega` (Im of the
    /// crossing pair, rad per time unit) and `frequency` (omega / 2 pi).
    /// Raises ValueError for an unknown parameter or a bad interval, ComputationError when
    /// (n > 1) there is no steady state at `start`.
    #[pyo3(signature = (param, start, stop, max_step = None, out = None))]
    fn continuation<'py>(
        &self,
        py: Python<'py>,
        param: &str,
        start: f64,
        stop: f64,
        max_step: Option<f64>,
        out: Option<PathBuf>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let parameter = Parameter::from_name(param).ok_or_else(|| {
            let names: Vec<&str> = Parameter::ALL.iter().map(|p| p.name()).collect();
            bad(
                "param",
                format!("unknown parameter {param:?}; one of {}", names.join(", ")),
            )
        })?;
        if let Some(h) = max_step
            && !(h.is_finite() && h > 0.0)
        {
            return Err(bad(
                "max_step",
                format!("must be a finite number > 0, found {h}"),
            ));
        }
        let opts = ContinuationOptions {
            max_step,
            ..ContinuationOptions::default()
        };
        let n = self.inner.n();
        let c = py
            .detach(|| -> Result<_, LyapunovError> {
                let c = continuation(&self.inner, parameter, start, stop, &opts)?;
                if let Some(out) = &out {
                    bifurcation_diagram(&c, n, out)?;
                }
                Ok(c)
            })
            .map_err(|e| lyapunov_err(py, e))?;
        let mut v = continuation_json(&c);
        if let Some(out) = &out {
            v["out"] = serde_json::json!(out);
        }
        json_to_py(py, &v)
    }

    /// Detect a periodic orbit after a transient and refine it by shooting (Newton on the
    /// return map with the variational equations; docs/model.md § Limit cycles).
    ///
    /// integrator: "dopri5" (explicit, any n) or "radau5" (implicit, L-stable, for stiff
    /// circuits; dense in 2n + 4n^2 unknowns during shooting, so n up to about 5).
    /// transient, window: simulated time discarded, then searched for returns to the
    /// Poincare section (defaults 2000 and 500 times the largest time constant).
    /// y0, a0: the start (default 0.01 in every variable, as `simulate`).
    ///
    /// Returns the dict `organics limit-cycle` prints: `period`, `amplitude` (max - min of
    /// each y_i over a period), `range` ([min, max] per y_i), `floquet_multipliers` ([re, im]
    /// pairs, largest modulus first), `trivial_multiplier` (the one closest to 1), `stable`
    /// (every other multiplier inside the unit circle), `point` ({"y", "a"} on the orbit),
    /// `newton_iterations`, `residual`, `detected_period`, `integrator`, `steps`.
    /// Raises ComputationError when the circuit settles instead (its `report` the dict
    /// {"settled": True, "y", "a", "residual", "t"}) or when no cycle is found (report None);
    /// ValueError for a bad integrator, time or start.
    #[pyo3(signature = (integrator = "dopri5", transient = None, window = None, y0 = None, a0 = None))]
    fn limit_cycle<'py>(
        &self,
        py: Python<'py>,
        integrator: &str,
        transient: Option<f64>,
        window: Option<f64>,
        y0: Option<&Bound<'_, PyAny>>,
        a0: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let integrator = match integrator {
            "dopri5" => CycleIntegrator::DormandPrince,
            "radau5" => CycleIntegrator::Radau5,
            i => {
                return Err(bad(
                    "integrator",
                    format!("expected \"dopri5\" or \"radau5\", found {i:?}"),
                ));
            }
        };
        let x0 = self.start(y0, a0)?;
        let defaults = CycleOptions::for_circuit(&self.inner);
        let opts = CycleOptions {
            transient: transient.unwrap_or(defaults.transient),
            window: window.unwrap_or(defaults.window),
            integrator,
            ..defaults
        };
        let n = self.inner.n();
        let outcome = py
            .detach(|| organics_lyapunov::limit_cycle(&self.inner, &x0, &opts))
            .map_err(|e| lyapunov_err(py, e))?;
        match outcome {
            CycleOutcome::Cycle(c) => json_to_py(py, &cycle_json(&c, n, integrator.name())),
            CycleOutcome::Settled { state, residual, t } => {
                let report = serde_json::json!({
                    "settled": true, "y": state[..n], "a": state[n..], "residual": residual, "t": t,
                });
                Err(failed(
                    py,
                    format!(
                        "no limit cycle: the circuit settles (scaled residual {residual:.3e} by t = {t}); steady_state() reports where"
                    ),
                    Some(json_to_py(py, &report)?),
                ))
            }
        }
    }

    /// The phase plane of a one-neuron circuit as arrays for matplotlib: the vector field on
    /// an ny × na grid, the nullclines (each sampled at `samples` values, refined where they
    /// bend) and the fixed points. window: (y_min, y_max, a_min, a_max); by default the
    /// paper's window around the stable fixed point (as `phase_portrait` draws).
    #[pyo3(signature = (window = None, ny = 30, na = 30, samples = 400))]
    fn phase_plane(
        &self,
        py: Python<'_>,
        window: Option<(f64, f64, f64, f64)>,
        ny: usize,
        na: usize,
        samples: usize,
    ) -> PyResult<PhasePlane> {
        let computed = py.detach(|| -> Result<_, LyapunovError> {
            let fps = organics_lyapunov::fixed_points(&self.inner)?;
            let window = window_arg(window)
                .unwrap_or_else(|| organics_lyapunov::default_window(self.inner.model(), &fps));
            let grid = vector_grid(&self.inner, &window, ny, na)?;
            let lines = nullclines(&self.inner, &window, samples)?;
            Ok((fps, window, grid, lines))
        });
        let (fps, window, grid, lines) = computed.map_err(|e| lyapunov_err(py, e))?;
        let (ny, na) = (grid.y.len(), grid.a.len());
        Ok(PhasePlane {
            y: vec1(py, grid.y),
            a: vec1(py, grid.a),
            dy_dt: crate::convert::flat2(py, grid.dy_dt, na, ny),
            da_dt: crate::convert::flat2(py, grid.da_dt, na, ny),
            y_nullcline: curves(py, &lines.y_nullcline),
            a_nullcline: curves(py, &lines.a_nullcline),
            fixed_points: fps
                .iter()
                .map(|f| Py::new(py, FixedPoint::new(py, f)))
                .collect::<PyResult<_>>()?,
            window: (window.y_min, window.y_max, window.a_min, window.a_max),
        })
    }

    /// Draw the project's phase portrait of a one-neuron circuit (streamlines, nullclines,
    /// fixed points) to `path`, .svg or .png. Returns a dict with the window drawn
    /// (y_min, y_max, a_min, a_max), the fixed points and the number of streamlines.
    /// trajectories: initial conditions (y, a) of trajectories to overlay, each run for
    /// trajectory_time.
    #[pyo3(signature = (path, title = None, window = None, trajectories = None, trajectory_time = 50.0, width = 900, height = 820, density = 1.5))]
    fn phase_portrait<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        title: Option<String>,
        window: Option<(f64, f64, f64, f64)>,
        trajectories: Option<Vec<(f64, f64)>>,
        trajectory_time: f64,
        width: u32,
        height: u32,
        density: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let opts = PortraitOptions {
            window: window_arg(window),
            width,
            height,
            density,
            title,
            trajectories: trajectories
                .unwrap_or_default()
                .into_iter()
                .map(|(y, a)| [y, a])
                .collect(),
            trajectory_time,
        };
        let p = py
            .detach(|| organics_lyapunov::phase_portrait(&self.inner, &opts, &path))
            .map_err(|e| lyapunov_err(py, e))?;
        let d = PyDict::new(py);
        d.set_item("path", path)?;
        let w = p.window;
        d.set_item("window", (w.y_min, w.y_max, w.a_min, w.a_max))?;
        let fps: Vec<Py<FixedPoint>> = p
            .fixed_points
            .iter()
            .map(|f| Py::new(py, FixedPoint::new(py, f)))
            .collect::<PyResult<_>>()?;
        d.set_item("fixed_points", fps)?;
        d.set_item("streamlines", p.streamlines)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Circuit(model={:?}, n={})",
            self.inner.model().name(),
            self.inner.n()
        )
    }
}
