"""The `organics` module against numpy and scipy written independently (tests/reference.py)."""

import json
import os
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import organics
import reference as ref

ROOT = Path(__file__).resolve().parents[3]
CIRCUITS = ROOT / "examples" / "circuits"
SIZES = [1, 2, 5, 12]
MODELS = ["main", "rectified"]
EPS = np.finfo(float).eps


def build(p):
    return organics.Circuit(p["model"], **{k: v for k, v in p.items() if k != "model"})


def _cases():
    for n in SIZES:
        for model in MODELS:
            yield pytest.param(n, model, id=f"{model}-n{n}")


CASES = list(_cases())


def away_from_kinks(rng, n):
    """A state off the model's kinks (sqrt(a) at a = 0, relu(y) at y = 0), where finite
    differences are accurate."""
    y = rng.choice([-1.0, 1.0], n) * rng.uniform(0.1, 1.5, n)
    a = rng.uniform(0.05, 2.0, n)
    return y, a


@pytest.mark.parametrize("n,model", CASES)
def test_rhs_is_the_papers_equation(n, model):
    rng = np.random.default_rng(100 + n)
    p = ref.random_circuit(rng, n, model)
    c = build(p)
    for _ in range(5):
        # Negative a and y included: the rectifications must act where the paper puts them.
        y, a = rng.normal(size=n), rng.normal(size=n)
        dy, da = c.rhs(y, a)
        ey, ea = ref.rhs(p, y, a)
        assert dy.shape == (n,) and da.shape == (n,)
        # Same formula, only the summation order of the matrix-vector products differs: a few
        # ulps of the largest term (all terms are O(1) here); 1e-12 leaves a wide margin.
        np.testing.assert_allclose(dy, ey, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(da, ea, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,model", CASES)
def test_jacobian_against_finite_differences(n, model):
    rng = np.random.default_rng(200 + n)
    p = ref.random_circuit(rng, n, model)
    c = build(p)
    y, a = away_from_kinks(rng, n)
    jac = c.jacobian(y, a)
    assert jac.shape == (2 * n, 2 * n)
    fd = ref.fd_jacobian(p, np.concatenate([y, a]))
    # Central differences with h = 1e-6: truncation h^2 |f'''| ~ 1e-12 and rounding
    # eps |f| / h ~ 1e-10 for O(1) fields; 1e-7 is three decades above both.
    np.testing.assert_allclose(jac, fd, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("n", SIZES)
def test_closed_form_steady_state(n):
    rng = np.random.default_rng(300 + n)
    p = ref.random_circuit(rng, n, "main", recurrence="identity")
    ss = build(p).steady_state()
    y, a = ref.closed_form(p)
    assert ss.method == "closed-form" and ss.converged and ss.reason == "converged"
    # The divisive-normalisation formula, one square root and one division apart.
    np.testing.assert_allclose(ss.y, y, rtol=1e-12)
    np.testing.assert_allclose(ss.a, a, rtol=1e-12)
    # The paper's theorem (W_r = I): always stable.
    assert ss.stable and ss.verdict == "stable" and ss.max_real < 0


def radau(p, x0, t_end):
    n = len(p["z"])
    sol = solve_ivp(
        lambda t, x: ref.rhs_flat(p, x),
        (0.0, t_end),
        x0,
        method="Radau",
        rtol=1e-10,
        atol=1e-12,
        jac=lambda t, x: ref.fd_jacobian(p, x),
    )
    assert sol.success, sol.message
    return sol.y[:n, -1], sol.y[n:, -1]


@pytest.mark.parametrize("n,model", CASES)
def test_steady_state_is_where_radau_comes_to_rest(n, model):
    rng = np.random.default_rng(400 + n)
    p = ref.random_circuit(rng, n, model)
    c = build(p)
    ss = c.steady_state()
    assert ss.converged and ss.stable
    # A fixed point of the paper's equations: the scaled residual max |f_i| tau_i is at
    # rounding level (Newton stops at 1e-10).
    dy, da = ref.rhs(p, ss.y, ss.a)
    assert np.max(np.abs(np.concatenate([dy * p["tau_y"], da * p["tau_a"]]))) < 1e-9
    # The state the circuit rests at, simulated by scipy from the command line's start
    # (0.01 everywhere) for 200 of its largest time constants: the distance left decays like
    # exp(max Re lambda * t); 1e-6 allows slow modes down to |Re lambda| ~ 0.07 / tau_max.
    t_end = 200.0 * max(p["tau_y"].max(), p["tau_a"].max())
    y, a = radau(p, np.full(2 * n, 0.01), t_end)
    np.testing.assert_allclose(ss.y, y, atol=1e-6)
    np.testing.assert_allclose(ss.a, a, atol=1e-6)


@pytest.mark.parametrize("n,model", CASES)
def test_stability_spectrum_against_numpy(n, model):
    rng = np.random.default_rng(500 + n)
    p = ref.random_circuit(rng, n, model, norm=1.0)
    st = build(p).stability()
    x = np.concatenate([st.y, st.a])
    ev = np.linalg.eigvals(ref.fd_jacobian(p, x))
    assert st.eigenvalues.dtype == np.complex128 and st.eigenvalues.shape == (2 * n,)
    # Eigenvalues of the finite-difference Jacobian (entries within ~1e-9, see above): for these
    # small, well-conditioned spectra the eigenvalues move by about as much; 1e-6 of the
    # spectral radius is a wide margin, and far below the gap to zero of max Re lambda.
    scale = max(1.0, np.abs(ev).max())
    assert ref.match_spectra(st.eigenvalues, ev) < 1e-6 * scale
    assert abs(st.max_real - ev.real.max()) < 1e-6 * scale
    assert st.stable == (st.verdict == "stable")
    assert st.stable == (ev.real.max() < 0)
    # Largest real part first.
    assert np.all(np.diff(st.eigenvalues.real) <= 1e-12)
    # At a given state: the same spectrum, method "given".
    again = build(p).stability(st.y, st.a)
    assert again.method == "given"
    assert ref.match_spectra(again.eigenvalues, st.eigenvalues) < 1e-12 * scale


@pytest.mark.parametrize("n,model", CASES)
@pytest.mark.parametrize("integrator", ["dopri5", "rk4", "radau5"])
def test_simulate_against_radau(n, model, integrator):
    rng = np.random.default_rng(600 + n)
    p = ref.random_circuit(rng, n, model)
    c = build(p)
    y0, a0 = rng.normal(size=n), rng.uniform(0.0, 1.0, n)
    t_end = 3.0 * p["tau_y"].max()
    dt = 0.01 * min(p["tau_y"].min(), p["tau_a"].min())
    tr = c.simulate(t_end, dt=dt, integrator=integrator, every=10, y0=y0, a0=a0)
    samples = len(tr.t)
    assert tr.y.shape == (samples, n) and tr.a.shape == (samples, n)
    assert tr.t[0] == 0.0 and abs(tr.t[-1] - t_end) < 1e-9 * t_end
    np.testing.assert_array_equal(tr.y[0], y0)
    y, a = radau(p, np.concatenate([y0, a0]), t_end)
    # scipy's Radau at rtol 1e-10; dopri5 and radau5 at their default rtol 1e-8; RK4 with dt = tau_min / 100 has a
    # global error ~ (dt / tau)^4 ~ 1e-8 (plus the kinks of sqrt(relu(a)) and relu(y), which
    # the state may cross, where both methods drop order): 1e-5 bounds them all.
    np.testing.assert_allclose(tr.y[-1], y, atol=1e-5)
    np.testing.assert_allclose(tr.a[-1], a, atol=1e-5)


@pytest.mark.parametrize("name", ["fig1a", "fig1b", "fig1c", "fig1d", "fig1e", "fig1f"])
def test_fixed_points_of_one_neuron(name):
    c = organics.Circuit.from_file(CIRCUITS / f"{name}.json")
    d = c.to_dict()
    p = {
        "model": d["model"],
        **{k: np.asarray(d[k], float) for k in ["tau_y", "tau_a", "b", "b0", "sigma", "z"]},
        "w_r": c.w_r,
        "w": c.w,
    }
    fps = c.fixed_points()
    assert fps, "one-neuron circuits always have a fixed point (docs/model.md § Phase plane)"
    for f in fps:
        x = np.array([f.y, f.a])
        # A zero of the paper's vector field (the quartic's root polished to rounding level).
        assert np.abs(ref.rhs_flat(p, x)).max() < 1e-9
        ev = np.linalg.eigvals(ref.fd_jacobian(p, x))
        assert ref.match_spectra(f.eigenvalues, ev) < 1e-6 * max(1.0, np.abs(ev).max())
        assert f.stable == (ev.real.max() < 0)
    if d["model"] == "main":
        # Independent count: positive roots s = sqrt(a) of the quartic of docs/model.md with
        # D = 1 - w_r + w_r s != 0 (numpy.roots on the typed-out coefficients).
        wr, w = c.w_r[0, 0], c.w[0, 0]
        bz, beta = p["b"][0] * p["z"][0], (p["b0"][0] * p["sigma"][0]) ** 2
        coeffs = [
            wr**2,
            2 * (1 - wr) * wr,
            (1 - wr) ** 2 - w * bz**2 - beta * wr**2,
            -2 * (1 - wr) * wr * beta,
            -((1 - wr) ** 2) * beta,
        ]
        roots = np.roots(coeffs)
        s = roots[(np.abs(roots.imag) < 1e-9) & (roots.real > 0)].real
        assert len(fps) == len(s)
        np.testing.assert_allclose(sorted(f.a for f in fps), sorted(s**2), rtol=1e-8)
    if name == "fig1b":
        # The paper's Fig. 1b: one stable and two unstable fixed points.
        assert len(fps) == 3 and sum(f.stable for f in fps) == 1


@pytest.mark.parametrize("model", MODELS)
def test_phase_plane_arrays(model):
    c = organics.Circuit.from_file(CIRCUITS / ("fig1b.json" if model == "main" else "fig1e.json"))
    d = c.to_dict()
    p = {
        "model": model,
        **{k: np.asarray(d[k], float) for k in ["tau_y", "tau_a", "b", "b0", "sigma", "z"]},
        "w_r": c.w_r,
        "w": c.w,
    }
    pp = c.phase_plane(ny=21, na=17)
    assert pp.y.shape == (21,) and pp.a.shape == (17,)
    assert pp.dy_dt.shape == (17, 21) and pp.da_dt.shape == (17, 21)
    y_min, y_max, a_min, a_max = pp.window
    assert pp.y[0] == y_min and pp.y[-1] == y_max and pp.a[0] == a_min and pp.a[-1] == a_max
    for i in [0, 5, 16]:
        for j in [0, 10, 20]:
            dy, da = ref.rhs(p, np.array([pp.y[j]]), np.array([pp.a[i]]))
            # Same formula at the same point: rounding only.
            assert abs(pp.dy_dt[i, j] - dy[0]) < 1e-12 * (1 + abs(dy[0]))
            assert abs(pp.da_dt[i, j] - da[0]) < 1e-12 * (1 + abs(da[0]))
    # Points on the nullclines make their component of the field vanish (the curves are the
    # closed-form graphs, evaluated exactly at each sample point).
    field_scale = max(np.abs(pp.dy_dt).max(), np.abs(pp.da_dt).max())
    for curves, k in [(pp.y_nullcline, 0), (pp.a_nullcline, 1)]:
        assert curves
        for curve in curves:
            assert curve.ndim == 2 and curve.shape[1] == 2
            for y, a in curve[:: max(1, len(curve) // 25)]:
                f = ref.rhs(p, np.array([y]), np.array([a]))[k][0]
                assert abs(f) < 1e-9 * field_scale
    assert len(pp.fixed_points) == len(c.fixed_points())


def test_phase_portrait_writes_figures(tmp_path):
    c = organics.Circuit.from_file(CIRCUITS / "fig1a.json")
    for ext, magic in [("png", b"\x89PNG"), ("svg", b"<svg")]:
        out = tmp_path / f"p.{ext}"
        info = c.phase_portrait(out, width=400, height=380, density=0.5)
        assert out.read_bytes()[:4] == magic
        assert len(info["fixed_points"]) == 1 and info["streamlines"] > 0
    with pytest.raises(ValueError, match="svg or .png"):
        c.phase_portrait(tmp_path / "p.pdf")


def test_round_trips():
    rng = np.random.default_rng(7)
    p = ref.random_circuit(rng, 3, "rectified")
    c = build(p)
    d = c.to_dict()
    again = organics.Circuit(**d)
    from_text = organics.Circuit.from_json(json.dumps(d))
    y, a = rng.normal(size=3), rng.uniform(0.1, 1.0, 3)
    for other in [again, from_text]:
        for k in ["w_r", "w", "tau_y", "tau_a", "b", "b0", "sigma", "z"]:
            if other is again:
                np.testing.assert_array_equal(getattr(other, k), getattr(c, k))
            else:
                # The circuit-file parser (serde_json without its `float_roundtrip` feature)
                # may round a decimal to the neighbouring double: 1 ulp.
                np.testing.assert_allclose(getattr(other, k), getattr(c, k), rtol=2 * EPS, atol=0)
        for u, v in zip(c.rhs(y, a), other.rhs(y, a)):
            # Equal parameters; the matrix-vector products may take another SIMD path (their
            # summation order follows the buffers' alignment): a few ulps of O(1) terms.
            np.testing.assert_allclose(u, v, rtol=0, atol=8 * EPS)
    np.testing.assert_array_equal(c.w_r, p["w_r"])
    np.testing.assert_array_equal(c.tau_y, p["tau_y"])
    assert c.n == 3 and c.model == "rectified"
    # Scalars broadcast; w_r = s is s I and w = s fills every entry, as in a circuit file.
    s = organics.Circuit(tau_y=1, tau_a=2, b=0.5, b0=0.5, sigma=0.1, w_r=0.5, w=0.25, z=[1, 2])
    np.testing.assert_array_equal(s.w_r, 0.5 * np.eye(2))
    np.testing.assert_array_equal(s.w, np.full((2, 2), 0.25))
    np.testing.assert_array_equal(s.tau_a, [2.0, 2.0])


GOOD = dict(tau_y=2.0, tau_a=2.0, b=0.5, b0=0.5, sigma=0.1, w_r="identity", w=1.0, z=[1.0, 0.5])


@pytest.mark.parametrize(
    "change,field",
    [
        ({"model": "linear"}, "model"),
        ({"tau_y": -1.0}, "tau_y"),
        ({"tau_a": [1.0, 2.0, 3.0]}, "tau_a"),
        ({"b": [[1.0, 2.0]]}, "b"),
        ({"b0": 0.0}, "b0"),
        ({"sigma": float("nan")}, "sigma"),
        ({"sigma": None}, "sigma"),
        ({"sigma": "wide"}, "sigma"),
        ({"w_r": "diagonal"}, "w_r"),
        ({"w_r": np.ones((2, 3))}, "w_r"),
        ({"w_r": np.ones((2, 2, 2))}, "w_r"),
        ({"w": -0.5}, "w"),
        ({"w": [1.0, 2.0]}, "w"),
        ({"z": 1.0}, "z"),
        ({"z": []}, "z"),
    ],
)
def test_bad_circuit_names_the_field(change, field):
    kw = {**GOOD, **change}
    with pytest.raises(ValueError, match=rf"^{field}\b"):
        organics.Circuit(**kw)


def test_bad_calls_name_the_argument(tmp_path):
    c = organics.Circuit(**GOOD)
    for call, field in [
        (lambda: c.rhs([1.0], [1.0, 1.0]), "y"),
        (lambda: c.jacobian([1.0, 1.0], [[1.0, 1.0]]), "a"),
        (lambda: c.simulate(1.0, integrator="leapfrog"), "integrator"),
        (lambda: c.simulate(1.0, dt=-0.1), "dt"),
        (lambda: c.simulate(1.0, y0=[0.0]), "y0"),
        (lambda: c.steady_state(method="guess"), "method"),
        (lambda: c.fixed_points(starts=0), "starts"),
        (lambda: c.continuation("gain", 0.5, 1.0), "param"),
        (lambda: c.continuation("b", -1.0, 1.0), "b = -1"),
        (lambda: c.continuation("w_r", 1.0, 2.0, max_step=0.0), "max_step"),
        (lambda: c.limit_cycle(integrator="rk4"), "integrator"),
        (lambda: c.limit_cycle(transient=-1.0), "transient"),
        (lambda: c.limit_cycle(y0=[0.0]), "y0"),
        (lambda: c.phase_plane(), "one-neuron circuit"),
    ]:
        with pytest.raises(ValueError, match=field):
            call()
    with pytest.raises(ValueError, match="closed-form"):
        organics.Circuit(**{**GOOD, "w_r": 0.5}).steady_state(method="closed-form")
    with pytest.raises(ValueError, match="tauy: unknown field"):
        organics.Circuit.from_json('{"tauy": 1}')
    with pytest.raises(ValueError, match="malformed JSON"):
        organics.Circuit.from_json("{")
    with pytest.raises(OSError):
        organics.Circuit.from_file(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not a checkpoint"):
        organics.load_checkpoint(tmp_path)


def test_computation_errors_carry_their_report():
    # A circuit that never comes to rest (examples/circuits/oscillating.json).
    osc = organics.Circuit.from_file(CIRCUITS / "oscillating.json")
    with pytest.raises(organics.ComputationError, match="not-settled") as info:
        osc.steady_state(method="simulate")
    assert isinstance(info.value, RuntimeError)
    report = info.value.report
    assert report.reason == "not-settled" and not report.converged and report.verdict is None
    assert report.range.shape == (2 * osc.n, 2)
    assert np.all(report.range[:, 1] - report.range[:, 0] >= 0)
    # Explicit Euler far beyond its stability limit blows up: the trajectory so far comes back.
    c = organics.Circuit(**GOOD)
    with pytest.raises(organics.ComputationError, match="non-finite") as info:
        c.simulate(1e6, dt=50.0, integrator="euler", every=1000)
    tr = info.value.report
    assert tr.t[-1] < 1e6 and np.isfinite(tr.y[0]).all()


def test_long_computations_release_the_gil():
    osc = organics.Circuit.from_file(CIRCUITS / "oscillating.json")
    done = threading.Event()

    def work():
        try:
            osc.steady_state(method="simulate")
        except organics.ComputationError:
            pass
        done.set()

    worker = threading.Thread(target=work)
    started = time.perf_counter()
    worker.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    elapsed = time.perf_counter() - started
    # With the GIL held for the whole run this loop could not run at all while the worker
    # computes; released, it ticks about once a millisecond (a loaded machine ticks less: a
    # tenth of that is asked).
    assert elapsed > 0.05, "the computation is too short to tell"
    assert ticks > 0.1 * elapsed / 0.001


def read_safetensors(path):
    """The safetensors format read by hand: 8-byte little-endian header length, a JSON header
    of {name: {dtype, shape, data_offsets}}, then the raw little-endian data."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    body = raw[8 + length :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        lo, hi = info["data_offsets"]
        out[name] = np.frombuffer(body[lo:hi], dtype="<f4").reshape(info["shape"])
    return out


def test_load_checkpoint_matches_the_file():
    run = ROOT / "models" / "mnist-organics-50"
    ck = organics.load_checkpoint(run)
    assert Path(ck.path).name == "best" and ck.epoch > 0
    expected = read_safetensors(Path(ck.path) / "model.safetensors")
    assert set(ck.tensors) == set(expected)
    for name, arr in ck.tensors.items():
        assert arr.dtype == np.float32
        np.testing.assert_array_equal(arr, expected[name])
    written = json.loads((Path(ck.path) / "state.json").read_text())["config"]
    # The run predates the solver choice, the weight-gradient block and the static path: it
    # reads back with the LU, the 16-step blocks and the tapes it used.
    assert "fixed_point_solver" not in written
    assert "weight_grad_block" not in written
    assert "static_path" not in written
    assert ck.config == {
        **written,
        "fixed_point_solver": "lu",
        "weight_grad_block": 16,
        "static_path": "tape",
    }


def mnist_dir():
    d = Path(os.environ.get("ORGANICS_DATA", Path.home() / ".cache" / "organics" / "mnist"))
    return d if (d / "t10k-images-idx3-ubyte.gz").exists() or any(d.glob("t10k*")) else None


@pytest.mark.skipif(mnist_dir() is None, reason="MNIST is not in the data directory")
def test_certify_a_static_checkpoint():
    run = ROOT / "models" / "mnist-organics-50"
    cert = organics.certify(run, samples=4, data_dir=mnist_dir())
    assert cert["tau_ms"] == 2.0 and cert["layers"]
    for layer in cert["layers"]:
        assert layer["inputs"] == 4 and 0.0 <= layer["stable_fraction"] <= 1.0
        assert sum(layer["histogram"]) == 4 - layer["unsolved"]
        assert layer["min"] <= layer["median"] <= layer["max"]


def test_docstrings_and_stubs():
    assert "tau_y" in organics.Circuit.__doc__ and "Eq. 16" in organics.Circuit.__doc__
    assert "method" in organics.Circuit.steady_state.__doc__
    assert issubclass(organics.ComputationError, RuntimeError)
    stub = Path(organics.__file__).with_name("__init__.pyi")
    text = stub.read_text()
    for name in ["def continuation", "def limit_cycle", "def fixed_points"]:
        assert "Raises" in getattr(organics.Circuit, name[4:]).__doc__
    assert "radau5" in organics.Circuit.simulate.__doc__
    for name in [
        "class Circuit",
        "def steady_state",
        "def phase_plane",
        "def load_checkpoint",
        "def continuation",
        "def limit_cycle",
    ]:
        assert name in text
