"""The dynamical-systems toolkit (continuation, limit cycles, fixed points for n > 1) checked by
independent routes: the spectrum of the Jacobian binding (numpy.linalg.eigvals) on either side
of a located bifurcation, zero crossings of a simulate() run against a shot period, residuals
of the vector-field binding at found fixed points."""

from pathlib import Path

import numpy as np
import pytest

import organics

CIRCUITS = Path(__file__).resolve().parents[3] / "examples" / "circuits"


def one_neuron(w_r, tau_y=2.0, tau_a=2.0):
    # Fig. 1's circuit (b = b0 = 0.5, sigma = 0.1, w = 1, z = 1) with a chosen w_r and taus.
    return organics.Circuit(
        tau_y=tau_y, tau_a=tau_a, b=0.5, b0=0.5, sigma=0.1, w_r=w_r, w=1.0, z=[1.0]
    )


def spectrum(c, y, a):
    return np.linalg.eigvals(c.jacobian(y, a))


def scaled_residual(c, y, a):
    dy, da = c.rhs(y, a)
    return max(np.abs(dy * c.tau_y).max(), np.abs(da * c.tau_a).max())


def test_fold_in_w_r_is_where_det_j_vanishes_and_the_count_changes():
    # The parameter "w_r" scales W_r: from W_r = I it is w_r itself.
    c = one_neuron("identity")
    out = c.continuation("w_r", 0.5, 4.0)
    assert out["param"] == "w_r" and out["branches"]
    folds = [b for b in out["bifurcations"] if b["kind"] == "fold"]
    assert len(folds) == 1, out["bifurcations"]
    f = folds[0]
    p, y, a = f["param"], np.array(f["y"]), np.array(f["a"])
    at = one_neuron(p)
    # A fixed point of the circuit at the located parameter (the bordered Newton corrects to
    # ~1e-12; 1e-9 leaves room for the bisection's last trial point).
    assert scaled_residual(at, y, a) < 1e-9
    # det J = 0 there: relative to the product of the eigenvalue moduli' scale |J|^2 the
    # determinant vanishes to ~1e-6 (the parameter is located to 1e-10 in arclength, and
    # det J is linear in the distance to the fold along the branch).
    j = at.jacobian(y, a)
    assert abs(np.linalg.det(j)) < 1e-6 * np.abs(j).max() ** 2
    # The independent count: the exact one-neuron fixed points (the quartic) just below and
    # above the fold, 1e-4 away (far above the 1e-6 location promise).
    assert len(one_neuron(p - 1e-4).fixed_points()) == 1
    assert len(one_neuron(p + 1e-4).fixed_points()) == 3
    # Every branch point is a fixed point of its own circuit, and its stable flag agrees with
    # numpy's spectrum there.
    for branch in out["branches"]:
        for q in branch["points"][:: max(1, len(branch["points"]) // 10)]:
            cq = one_neuron(q["param"])
            assert scaled_residual(cq, np.array(q["y"]), np.array(q["a"])) < 1e-9
            ev = spectrum(cq, np.array(q["y"]), np.array(q["a"]))
            # max_real from the same Jacobian: equal to rounding (1e-9 relative).
            assert abs(ev.real.max() - q["max_real"]) < 1e-9 * max(1.0, np.abs(ev).max())


def test_hopf_in_tau_y_is_where_a_complex_pair_crosses(tmp_path):
    # w_r = 3: the fixed point near y = -1 has J11 > 0, so the trace changes sign as tau_y grows
    # (tau_a = 2 fixed) while det J > 0: a Hopf point.
    c = one_neuron(3.0)
    svg = tmp_path / "diagram.svg"
    out = c.continuation("tau_y", 1.0, 300.0, out=svg)
    assert svg.stat().st_size > 0 and out["out"] == str(svg)
    hopf = [b for b in out["bifurcations"] if b["kind"] == "hopf"]
    assert len(hopf) == 1, out["bifurcations"]
    h = hopf[0]
    p, y, a = h["param"], np.array(h["y"]), np.array(h["a"])
    # tau_y does not move fixed points: (y, a) is one for every tau_y.
    assert scaled_residual(one_neuron(3.0, tau_y=p), y, a) < 1e-9
    # numpy's spectrum of the Jacobian binding on either side: a complex pair whose real part
    # changes sign. 1e-3 relative is far above the 1e-6 location, far below the distance to
    # anything else happening on the branch.
    below = spectrum(one_neuron(3.0, tau_y=p * (1 - 1e-3)), y, a)
    above = spectrum(one_neuron(3.0, tau_y=p * (1 + 1e-3)), y, a)
    for ev in (below, above):
        assert np.all(np.abs(ev.imag) > 0), ev
    assert np.sign(below.real.max()) != np.sign(above.real.max()), (below, above)
    # At the point: trace 0 and the pair +-i sqrt(det), omega = sqrt(det J) (a planar Hopf).
    j = one_neuron(3.0, tau_y=p).jacobian(y, a)
    scale = np.abs(j).max()
    # The trace is linear in 1/tau_y; located to 1e-6 in tau_y ~ 100 gives ~1e-8 relative.
    assert abs(np.trace(j)) < 1e-7 * scale
    omega = np.sqrt(np.linalg.det(j))
    assert abs(h["omega"] - omega) < 1e-6 * omega
    assert abs(h["frequency"] - omega / (2 * np.pi)) < 1e-6 * omega


def mean_crossing_interval(t, y):
    """Mean interval between upward crossings of y through its mid-range (linear
    interpolation between samples)."""
    mid = 0.5 * (y.min() + y.max())
    i = np.nonzero((y[:-1] < mid) & (y[1:] >= mid))[0]
    tc = t[i] + (mid - y[i]) * (t[i + 1] - t[i]) / (y[i + 1] - y[i])
    return np.diff(tc).mean(), len(tc)


def test_limit_cycle_period_against_zero_crossings():
    # tau_y = 50 is on the oscillating side of the Hopf point above (~100 ms): a stable cycle.
    c = one_neuron(3.0, tau_y=50.0)
    start = dict(y0=[-1.0], a0=[0.26])
    cyc = c.limit_cycle(transient=3000.0, window=400.0, **start)
    period = cyc["period"]
    assert cyc["stable"] and cyc["integrator"] == "dopri5"
    # The trivial Floquet multiplier is 1 (the flow direction); Newton shoots to 1e-9, and the
    # monodromy is integrated at tolerance 1e-11: 1e-6 bounds what is left.
    mu = np.array([complex(*m) for m in cyc["floquet_multipliers"]])
    assert np.abs(mu - 1).min() < 1e-6
    assert len(mu) == 2 and np.sort(np.abs(mu))[0] < 1
    # The independent route: a dopri5 simulate() run from the same start, after the same
    # transient, over 40 periods, sampled every step.
    tr = c.simulate(3000.0 + 40 * period, integrator="dopri5", rtol=1e-10, atol=1e-12, **start)
    keep = tr.t >= 3000.0
    t, y = tr.t[keep], tr.y[keep, 0]
    interval, crossings = mean_crossing_interval(t, y)
    assert crossings >= 39
    # Linear interpolation across a step of the adaptive run misplaces each crossing by
    # ~ h^2 |y''| / |y'|; averaged over 40 periods the end errors divide by 40 T: 1e-4
    # relative leaves a wide margin and is far below a wrong period's error.
    assert abs(interval - period) < 1e-4 * period, (interval, period)
    # The amplitude against the run's range (extremes between samples: 1e-3 relative).
    assert abs(cyc["amplitude"][0] - np.ptp(y)) < 1e-3 * np.ptp(y)
    # The orbit point is on the orbit: a simulate() run of one period returns to it (the
    # shooting's residual 1e-9 plus dopri5's error at rtol 1e-10).
    p0 = cyc["point"]
    back = c.simulate(period, integrator="dopri5", rtol=1e-11, atol=1e-13, y0=p0["y"], a0=p0["a"])
    assert abs(back.y[-1, 0] - p0["y"][0]) < 1e-6 and abs(back.a[-1, 0] - p0["a"][0]) < 1e-6
    # Radau IIA shooting finds the same cycle: both shoot to 1e-9 with integration tolerance
    # 1e-11; periods agree to ~1e-8 relative, 1e-6 leaves a factor 100.
    radau = c.limit_cycle(integrator="radau5", transient=3000.0, window=400.0, **start)
    assert radau["integrator"] == "radau5"
    assert abs(radau["period"] - period) < 1e-6 * period


def test_a_circuit_that_settles_raises_with_where_it_settled():
    c = organics.Circuit.from_file(CIRCUITS / "three_neurons.json")
    with pytest.raises(organics.ComputationError, match="settles") as info:
        c.limit_cycle()
    r = info.value.report
    assert r["settled"] is True
    # Settled means its scaled residual fell below 1e-8 (CycleOptions' default), checked here
    # by the vector-field binding.
    assert scaled_residual(c, np.array(r["y"]), np.array(r["a"])) < 1e-8
    assert r["residual"] < 1e-8


def test_fixed_points_beyond_one_neuron():
    c = organics.Circuit.from_file(CIRCUITS / "three_neurons.json")
    out = c.fixed_points(starts=32, seed=3)
    assert out["method"] == "deflated-newton" and out["complete"] is False
    assert out["starts"] == 32 and out["seed"] == 3
    fps = out["fixed_points"]
    assert fps
    # Every start either converged to a counted point or is a Newton failure.
    assert sum(f["starts"] for f in fps) + out["newton_failures"] == 32
    for f in fps:
        y, a = np.array(f["y"]), np.array(f["a"])
        # The search counts a point below 1e-10 (and Newton polishes it further).
        assert scaled_residual(c, y, a) < 1e-10
        ev = spectrum(c, y, a)
        ev_found = np.array([complex(*e) for e in f["eigenvalues"]])
        # Same Jacobian, different eigensolvers: agreement to ~1e-12 of the spectral scale.
        assert abs(ev.real.max() - f["max_real"]) < 1e-9 * np.abs(ev).max()
        assert np.allclose(np.sort_complex(ev), np.sort_complex(ev_found), atol=1e-9)
        assert f["stable"] == (ev.real.max() < 0)
    # The steady state (an independent route: closed form / iterative / simulation) is one of
    # the points found.
    ss = c.steady_state()
    x = np.concatenate([ss.y, ss.a])
    gaps = [np.abs(np.concatenate([f["y"], f["a"]]) - x).max() for f in fps]
    assert min(gaps) < 1e-8
    # n = 1 keeps the exact list of FixedPoint.
    assert all(isinstance(f, organics.FixedPoint) for f in one_neuron(0.5).fixed_points())
