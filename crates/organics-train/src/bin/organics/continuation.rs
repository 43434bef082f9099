//! `organics continuation`: fixed-point branches under one parameter, their stability, folds
//! and Hopf points (organics_lyapunov::continuation), and the bifurcation diagram.

use crate::circuit::{load_circuit, print_json};
use crate::error::CliError;
use clap::Args;
use organics_lyapunov::continuation::{
    ContinuationOptions, Parameter, bifurcation_diagram, continuation,
};
use organics_lyapunov::json::continuation_json;
use serde_json::json;
use std::path::PathBuf;

fn parse_param(s: &str) -> Result<Parameter, String> {
    Parameter::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Parameter::ALL.iter().map(|p| p.name()).collect();
        format!("unknown parameter {s:?}; one of {}", names.join(", "))
    })
}

/// Arguments of `organics continuation`.
#[derive(Debug, Args)]
pub struct ContinuationArgs {
    /// The circuit file (JSON).
    circuit: PathBuf,
    /// The parameter: w_r (scale on W_r), w (scale on W), b, b0, sigma, z (scale on the
    /// input), tau_y, tau_a (b, b0, sigma, tau_y, tau_a set every neuron's value).
    #[arg(long, value_parser = parse_param)]
    param: Parameter,
    /// Start of the parameter interval.
    #[arg(long, allow_negative_numbers = true)]
    from: f64,
    /// End of the parameter interval.
    #[arg(long, allow_negative_numbers = true)]
    to: f64,
    /// Largest arclength step (default |to − from| / 50).
    #[arg(long)]
    max_step: Option<f64>,
    /// Bifurcation diagram: .svg or .png.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Run `organics continuation`: prints `{"param", "branches": [{"points": [{"param", "y",
/// "a", "stable", "max_real"}], "end"}], "bifurcations": [{"kind", "param", "y", "a",
/// "branch", "eigenvalues", "omega", "frequency"}]}`.
pub fn run(args: &ContinuationArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    if let Some(h) = args.max_step
        && !(h.is_finite() && h > 0.0)
    {
        return Err(organics_lyapunov::LyapunovError::BadOption {
            option: "max-step",
            value: h,
            reason: "must be a finite number > 0",
        }
        .into());
    }
    let opts = ContinuationOptions {
        max_step: args.max_step,
        ..ContinuationOptions::default()
    };
    let c = continuation(&circuit, args.param, args.from, args.to, &opts)?;
    if let Some(out) = &args.out {
        bifurcation_diagram(&c, circuit.n(), out)?;
    }
    let mut v = continuation_json(&c);
    if let Some(out) = &args.out {
        v["out"] = json!(out);
    }
    print_json(&v)
}
