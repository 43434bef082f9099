//! The dynamical-systems toolkit's reports (organics-lyapunov's continuation, limit cycles and
//! fixed-point search) as the JSON the command line prints; `Circuit`'s methods hand them to
//! Python as dicts.

use organics_lyapunov::continuation::Continuation;
use organics_lyapunov::{LimitCycle, SearchReport, Verdict};
use serde_json::{Value, json};

/// `(Re, Im)` pairs as `[re, im]` lists.
fn pairs(v: &[(f64, f64)]) -> Vec<[f64; 2]> {
    v.iter().map(|&(re, im)| [re, im]).collect()
}

/// `organics continuation`'s JSON: `{"param", "branches": [{"end", "points": [{"param", "y",
/// "a", "stable", "verdict", "max_real"}]}], "bifurcations": [{"kind", "param", "y", "a",
/// "branch", "eigenvalues", "omega", "frequency"}]}` (`omega`, `frequency` for Hopf points).
pub fn continuation_json(c: &Continuation) -> Value {
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

/// `organics limit-cycle`'s JSON for a cycle found with `integrator`.
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

/// `organics fixed-points`' JSON for a circuit with n > 1 (the deflated-Newton search).
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
