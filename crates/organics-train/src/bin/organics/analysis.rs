//! `organics stability`, `organics fixed-points` and `organics phase-portrait`: the analysis
//! commands of organics-lyapunov.

use crate::circuit::{load_circuit, print_json};
use crate::error::CliError;
use clap::Args;
use organics_lyapunov::{FixedPoint2D, PortraitOptions, StabilityReport};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Arguments of `organics stability`.
#[derive(Debug, Args)]
pub struct StabilityArgs {
    /// The circuit file (JSON).
    circuit: PathBuf,
}

fn pairs(v: &[(f64, f64)]) -> Vec<[f64; 2]> {
    v.iter().map(|&(re, im)| [re, im]).collect()
}

/// The contract's stability object, plus the verdict's tolerance and the residual.
fn stability_json(r: &StabilityReport) -> Value {
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

pub fn stability(args: &StabilityArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    let report = organics_lyapunov::stability(&circuit)?;
    print_json(&stability_json(&report))
}

/// Arguments of `organics fixed-points`.
#[derive(Debug, Args)]
pub struct FixedPointsArgs {
    /// The circuit file (JSON) of a one-neuron circuit (n = 1).
    circuit: PathBuf,
}

fn fixed_point_json(f: &FixedPoint2D) -> Value {
    json!({
        "y": f.y,
        "a": f.a,
        "eigenvalues": pairs(&f.eigenvalues),
        "stable": f.stable,
        "kind": f.kind.name(),
        "residual": f.residual,
    })
}

pub fn fixed_points(args: &FixedPointsArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    let fps = organics_lyapunov::fixed_points(&circuit)?;
    print_json(&json!({ "fixed_points": fps.iter().map(fixed_point_json).collect::<Vec<_>>() }))
}

/// Arguments of `organics phase-portrait`.
#[derive(Debug, Args)]
pub struct PortraitArgs {
    /// The circuit file (JSON) of a one-neuron circuit (n = 1).
    circuit: PathBuf,
    /// Output file: .svg or .png.
    #[arg(long)]
    out: PathBuf,
    /// Title (default: the model's name).
    #[arg(long)]
    title: Option<String>,
    /// Initial condition `Y,A` of a trajectory drawn over the portrait (repeatable).
    #[arg(long, value_parser = parse_point, allow_hyphen_values = true)]
    trajectory: Vec<[f64; 2]>,
}

fn parse_point(s: &str) -> Result<[f64; 2], String> {
    let parts: Vec<&str> = s.split(',').collect();
    let bad = || format!("{s:?}: expected Y,A (two finite numbers separated by a comma)");
    if parts.len() != 2 {
        return Err(bad());
    }
    let y: f64 = parts[0].trim().parse().map_err(|_| bad())?;
    let a: f64 = parts[1].trim().parse().map_err(|_| bad())?;
    if !(y.is_finite() && a.is_finite()) {
        return Err(bad());
    }
    Ok([y, a])
}

pub fn phase_portrait(args: &PortraitArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    let opts = PortraitOptions {
        title: args.title.clone(),
        trajectories: args.trajectory.clone(),
        ..PortraitOptions::default()
    };
    let p = organics_lyapunov::phase_portrait(&circuit, &opts, &args.out)?;
    print_json(&json!({
        "out": args.out,
        "fixed_points": p.fixed_points.iter().map(fixed_point_json).collect::<Vec<_>>(),
        "window": { "y": [p.window.y_min, p.window.y_max], "a": [p.window.a_min, p.window.a_max] },
        "streamlines": p.streamlines,
    }))
}
