//! The analysis reports as JSON values (feature `json`): the objects `organics stability`,
//! `fixed-points`, `limit-cycle` and `continuation` print, and the dicts the Python bindings
//! return. One builder per report, so the command line and Python cannot drift apart.
//!
//! Eigenvalues and Floquet multipliers `(Re, Im)` appear as `[re, im]` lists; verdicts, kinds
//! and branch ends by their `name()`.

use crate::{LimitCycle, SearchReport, StabilityReport, Verdict};
use serde_json::{Value, json};

/// `(Re, Im)` pairs as `[re, im]` lists.
fn pairs(v: &[(f64, f64)]) -> Vec<[f64; 2]> {
    v.iter().map(|&(re, im)| [re, im]).collect()
}

/// `organics stability`: `{"y", "a", "eigenvalues", "max_real", "stable", "verdict",
/// "tolerance", "residual", "method"}`, and `"kind"` for n = 1.
#[must_use]
pub fn stability_json(r: &StabilityReport) -> Value {
    let mut v = json!({
        "y": r.y,
        "a": r.a,
        "eigenvalues": pairs(&r.eigenvalues),
        "max_real": r.max_real,
        "stable": r.stable,
        "verdict": r.verdict.name(),
        "tolerance": r.tolerance,
        "residual": r.residual,
        "method": r.method,
    });
    if let Some(kind) = r.kind {
        v["kind"] = json!(kind.name());
    }
    v
}

/// One fixed point of a one-neuron circuit (`organics fixed-points`, n = 1): `{"y", "a",
/// "eigenvalues", "stable", "kind", "residual"}`.
#[cfg(feature = "plot")]
#[must_use]
pub fn fixed_point_json(f: &crate::FixedPoint2D) -> Value {
    json!({
        "y": f.y,
        "a": f.a,
        "eigenvalues": pairs(&f.eigenvalues),
        "stable": f.stable,
        "kind": f.kind.name(),
        "residual": f.residual,
    })
}

/// `organics fixed-points` for n > 1 (the deflated-Newton search of a circuit with `n`
/// neurons): `{"fixed_points": [{"y", "a", "eigenvalues", "max_real", "stable", "verdict",
/// "residual", "starts", "deflated"}], "method", "starts", "newton_failures", "seed",
/// "complete": false}`.
#[must_use]
pub fn search_json(report: &SearchReport, n: usize) -> Value {
    let points: Vec<Value> = report
        .points
        .iter()
        .map(|p| {
            json!({
                "y": p.x[..n],
                "a": p.x[n..],
                "eigenvalues": pairs(&p.stability.eigenvalues),
                "max_real": p.stability.max_real,
                "stable": p.stability.verdict == Verdict::Stable,
                "verdict": p.stability.verdict.name(),
                "residual": p.residual,
                "starts": p.starts,
                "deflated": p.deflated,
            })
        })
        .collect();
    json!({
        "fixed_points": points,
        "method": "deflated-newton",
        "starts": report.starts,
        "newton_failures": report.newton_failures,
        "seed": report.seed,
        "complete": false,
    })
}

/// `organics limit-cycle` for a cycle of a circuit with `n` neurons found with `integrator`:
/// `{"period", "amplitude", "range", "floquet_multipliers", "trivial_multiplier", "stable",
/// "point": {"y", "a"}, "newton_iterations", "residual", "detected_period", "integrator",
/// "steps"}`.
#[must_use]
pub fn cycle_json(c: &LimitCycle, n: usize, integrator: &str) -> Value {
    let (re, im) = c.multipliers[c.trivial];
    json!({
        "period": c.period,
        "amplitude": c.y_range.iter().map(|r| r[1] - r[0]).collect::<Vec<_>>(),
        "range": c.y_range,
        "floquet_multipliers": pairs(&c.multipliers),
        "trivial_multiplier": [re, im],
        "stable": c.stable,
        "point": { "y": c.point[..n], "a": c.point[n..] },
        "newton_iterations": c.newton_iterations,
        "residual": c.residual,
        "detected_period": c.detected_period,
        "integrator": integrator,
        "steps": c.steps,
    })
}

/// `organics continuation`: `{"param", "branches": [{"end", "points": [{"param", "y", "a",
/// "stable", "verdict", "max_real"}]}], "bifurcations": [{"kind", "param", "y", "a",
/// "branch", "eigenvalues", "omega", "frequency"}]}` (`omega` and `frequency = ω/2π` for Hopf
/// points only).
#[cfg(feature = "plot")]
#[must_use]
pub fn continuation_json(c: &crate::continuation::Continuation) -> Value {
    let branches: Vec<Value> = c
        .branches
        .iter()
        .map(|b| {
            json!({
                "end": b.end.name(),
                "points": b.points.iter().map(|q| json!({
                    "param": q.param, "y": q.y, "a": q.a, "stable": q.stable,
                    "verdict": q.verdict.name(), "max_real": q.max_real,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let bifurcations: Vec<Value> = c
        .bifurcations
        .iter()
        .map(|b| {
            let mut v = json!({
                "kind": b.kind.name(), "param": b.param, "y": b.y, "a": b.a,
                "branch": b.branch, "eigenvalues": pairs(&b.eigenvalues),
            });
            if let Some(omega) = b.omega {
                v["omega"] = json!(omega);
                v["frequency"] = json!(omega / std::f64::consts::TAU);
            }
            v
        })
        .collect();
    json!({ "param": c.param.name(), "branches": branches, "bifurcations": bifurcations })
}
