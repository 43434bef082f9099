//! `organics stability`, `organics fixed-points` and `organics phase-portrait`: the analysis
//! commands of organics-lyapunov.

use crate::circuit::{initial_state, load_circuit, load_spec, print_json};
use crate::error::CliError;
use clap::{Args, ValueEnum};
use organics_lyapunov::json::{cycle_json, fixed_point_json, search_json, stability_json};
use organics_lyapunov::planar::BranchEnd;
use organics_lyapunov::{
    CycleIntegrator, CycleOptions, CycleOutcome, PortraitOptions, SearchOptions,
};
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `organics stability`.
#[derive(Debug, Args)]
pub struct StabilityArgs {
    /// The circuit file (JSON).
    circuit: PathBuf,
}

pub fn stability(args: &StabilityArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    let report = organics_lyapunov::stability(&circuit)?;
    print_json(&stability_json(&report))
}

/// Arguments of `organics fixed-points`.
#[derive(Debug, Args)]
pub struct FixedPointsArgs {
    /// The circuit file (JSON). n = 1: every fixed point, exactly (the quartic); n > 1: a
    /// search by deflated Newton from seeded starts (an enumeration, not a proof).
    circuit: PathBuf,
    /// Starts of the search (n > 1).
    #[arg(long, default_value_t = 64)]
    starts: usize,
    /// Seed of the starts (n > 1).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn fixed_points(args: &FixedPointsArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    if circuit.n() == 1 {
        let fps = organics_lyapunov::fixed_points(&circuit)?;
        return print_json(
            &json!({ "fixed_points": fps.iter().map(fixed_point_json).collect::<Vec<_>>() }),
        );
    }
    let opts = SearchOptions {
        starts: args.starts,
        seed: args.seed,
        ..SearchOptions::for_circuit(&circuit)
    };
    let report = organics_lyapunov::search_fixed_points(&circuit, &opts)?;
    print_json(&search_json(&report, circuit.n()))
}

/// Arguments of `organics limit-cycle`.
#[derive(Debug, Args)]
pub struct LimitCycleArgs {
    /// The circuit file (JSON); the run starts from its "initial" (else 0.01 everywhere).
    circuit: PathBuf,
    /// Transient to discard (circuit time unit); default 2000 × the largest time constant.
    #[arg(long)]
    transient: Option<f64>,
    /// Window searched for a return to the section; default 500 × the largest time constant.
    #[arg(long)]
    window: Option<f64>,
    /// Integrator of the transient, the detection window and the shooting's variational
    /// equations.
    #[arg(long, value_enum, default_value = "dopri5")]
    integrator: CycleIntegratorArg,
}

/// The integrators `organics limit-cycle` offers.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CycleIntegratorArg {
    /// Adaptive Dormand-Prince 5(4), explicit.
    Dopri5,
    /// Adaptive Radau IIA order 5: implicit, L-stable, for stiff circuits; the shooting solves
    /// dense systems in 2n + 4n² unknowns, so it suits small circuits (n up to about 5).
    Radau5,
}

pub fn limit_cycle(args: &LimitCycleArgs) -> Result<(), CliError> {
    let (spec, circuit) = load_spec(&args.circuit)?;
    let x0 = initial_state(&args.circuit, &spec, None, None)?;
    let defaults = CycleOptions::for_circuit(&circuit);
    let opts = CycleOptions {
        transient: args.transient.unwrap_or(defaults.transient),
        window: args.window.unwrap_or(defaults.window),
        integrator: match args.integrator {
            CycleIntegratorArg::Dopri5 => CycleIntegrator::DormandPrince,
            CycleIntegratorArg::Radau5 => CycleIntegrator::Radau5,
        },
        ..defaults
    };
    let n = circuit.n();
    match organics_lyapunov::limit_cycle(&circuit, &x0, &opts)? {
        CycleOutcome::Cycle(c) => print_json(&cycle_json(&c, n, opts.integrator.name())),
        CycleOutcome::Settled { state, residual, t } => {
            print_json(&json!({
                "settled": true,
                "y": state[..n],
                "a": state[n..],
                "residual": residual,
                "t": t,
            }))?;
            Err(CliError::Failed(format!(
                "no limit cycle: the circuit settles (scaled residual {residual:.3e} by t = {t}); `organics steady-state` reports where"
            )))
        }
    }
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
        "separatrices": p.stable_manifolds.iter().map(|m| json!({
            "saddle": [m.saddle.0, m.saddle.1],
            "eigenvalue": m.eigenvalue,
            "branch_ends": m.branches.iter().map(|b| match b.end {
                BranchEnd::LeftWindow => json!("left-window"),
                BranchEnd::FixedPoint(k) => json!({"fixed_point": k}),
                BranchEnd::Stalled => json!("stalled"),
                BranchEnd::ArcLength => json!("arc-length-limit"),
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}
