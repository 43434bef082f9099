//! `organics stability`, the linear-stability commands of organics-lyapunov.

use crate::circuit::{load_circuit, print_json};
use crate::error::CliError;
use clap::Args;
use organics_lyapunov::StabilityReport;
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
