//! The JSON objects printed by the `organics` binary. Other programs rely on these field names;
//! they follow the command-line contract of `docs/architecture.md`.

use organics_core::SteadyStateReport;
use organics_core::integrate::Trajectory;
use serde_json::{Value, json};

/// `organics steady-state`: `{"y","a","method","iterations","residual","converged","reason"}`.
pub fn steady_state(r: &SteadyStateReport) -> Value {
    json!({
        "y": r.y,
        "a": r.a,
        "method": r.method,
        "iterations": r.iterations,
        "residual": r.residual,
        "converged": r.converged(),
        "reason": r.reason.name(),
    })
}

/// `organics simulate`: `{"t":[..],"y":[[..]..],"a":[[..]..]}` plus the step count.
pub fn trajectory(traj: &Trajectory, n: usize) -> Value {
    let y: Vec<&[f64]> = (0..traj.len()).map(|k| &traj.state(k)[..n]).collect();
    let a: Vec<&[f64]> = (0..traj.len()).map(|k| &traj.state(k)[n..]).collect();
    json!({
        "t": traj.times,
        "y": y,
        "a": a,
        "steps": traj.steps,
        "stopped_non_finite": traj.stopped_non_finite,
    })
}

/// `organics simulate --csv`: a header `t,y0..,a0..` and one row per sample.
pub fn trajectory_csv(traj: &Trajectory, n: usize) -> String {
    let mut out = String::from("t");
    for i in 0..n {
        out.push_str(&format!(",y{i}"));
    }
    for i in 0..n {
        out.push_str(&format!(",a{i}"));
    }
    out.push('\n');
    for k in 0..traj.len() {
        out.push_str(&format!("{}", traj.times[k]));
        for v in traj.state(k) {
            out.push_str(&format!(",{v}"));
        }
        out.push('\n');
    }
    out
}
