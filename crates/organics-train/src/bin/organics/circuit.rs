//! `organics steady-state` and `organics simulate`.

use crate::error::CliError;
use clap::{Args, ValueEnum};
use organics_core::integrate::{Integrator, simulate as integrate};
use organics_core::params::CircuitSpec;
use organics_core::steady_state::{Method, REST_START, solve};
use organics_core::{Circuit, CoreError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Read and validate a circuit file.
pub fn load_circuit(path: &Path) -> Result<Circuit, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.into(),
        source,
    })?;
    let spec = CircuitSpec::from_json(&text).map_err(|source| CliError::Spec {
        path: path.into(),
        source,
    })?;
    spec.build().map_err(|e| CliError::Spec {
        path: path.into(),
        source: e.into(),
    })
}

/// Print one JSON value on standard output.
pub fn print_json(v: &serde_json::Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}").map_err(CliError::Output)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MethodArg {
    /// Closed form when W_r = I, else iterative + Newton (main) or simulate + Newton.
    Auto,
    /// The closed form (W_r = I only).
    ClosedForm,
    /// The paper's iterative algorithm (main model), `--iterations` times.
    Iterative,
    /// Integrate to rest with Dormand-Prince, then polish with Newton.
    Simulate,
}

/// Arguments of `organics steady-state`.
#[derive(Debug, Args)]
pub struct SteadyStateArgs {
    /// The circuit file (JSON).
    circuit: PathBuf,
    /// How to find the steady state.
    #[arg(long, value_enum, default_value = "auto")]
    method: MethodArg,
    /// Iterations of the iterative algorithm.
    #[arg(long, default_value_t = 15)]
    iterations: usize,
}

pub fn steady_state(args: &SteadyStateArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    let method = match args.method {
        MethodArg::Auto => Method::Auto,
        MethodArg::ClosedForm => Method::ClosedForm,
        MethodArg::Iterative => Method::Iterative(args.iterations),
        MethodArg::Simulate => Method::Simulate,
    };
    let report = solve(&circuit, method)?;
    print_json(&organics_train::json::steady_state(&report))?;
    // The iterative algorithm runs a fixed number of iterations by design; its report says
    // whether it converged, and that is not a failure of the command.
    if report.converged() || matches!(args.method, MethodArg::Iterative) {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "steady state did not converge ({}; residual {:.3e})",
            report.reason.name(),
            report.residual
        )))
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IntegratorArg {
    /// Explicit Euler (order 1).
    Euler,
    /// Classic Runge-Kutta (order 4).
    Rk4,
    /// Adaptive Dormand-Prince 5(4) (`--dt` is the first trial step).
    Dopri5,
}

/// Arguments of `organics simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The circuit file (JSON).
    circuit: PathBuf,
    /// End time, in the circuit's time unit.
    #[arg(long)]
    t_end: f64,
    /// Step (or first trial step for dopri5); default 0.05 × the smallest time constant.
    #[arg(long)]
    dt: Option<f64>,
    /// Integrator.
    #[arg(long, value_enum, default_value = "rk4")]
    integrator: IntegratorArg,
    /// Record every K-th step (the first and last states are always recorded).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Relative tolerance of dopri5.
    #[arg(long, default_value_t = 1e-8)]
    rtol: f64,
    /// Absolute tolerance of dopri5.
    #[arg(long, default_value_t = 1e-10)]
    atol: f64,
    /// Print CSV (t, y0.., a0..) instead of JSON.
    #[arg(long)]
    csv: bool,
}

pub fn simulate(args: &SimulateArgs) -> Result<(), CliError> {
    let circuit = load_circuit(&args.circuit)?;
    let tau_min = circuit
        .tau_y()
        .iter()
        .chain(circuit.tau_a())
        .fold(f64::INFINITY, |m, &t| m.min(t));
    let dt = args.dt.unwrap_or(0.05 * tau_min);
    let name = match args.integrator {
        IntegratorArg::Euler => "euler",
        IntegratorArg::Rk4 => "rk4",
        IntegratorArg::Dopri5 => "dopri5",
    };
    let mut stepper = Integrator::from_name(name, dt, args.rtol, args.atol)?;
    // Guard against runs that would record or take an absurd number of steps.
    let steps = args.t_end / dt;
    if !matches!(args.integrator, IntegratorArg::Dopri5) && steps > 1e8 {
        return Err(CoreError::BadOption {
            option: "dt",
            value: dt,
            reason: "t_end / dt exceeds 1e8 steps",
        }
        .into());
    }
    let n = circuit.n();
    let traj = integrate(
        &circuit,
        &mut stepper,
        &vec![REST_START; 2 * n],
        args.t_end,
        args.every,
    )?;
    if args.csv {
        let mut out = std::io::stdout().lock();
        out.write_all(organics_train::json::trajectory_csv(&traj, n).as_bytes())
            .map_err(CliError::Output)?;
    } else {
        print_json(&organics_train::json::trajectory(&traj, n))?;
    }
    if traj.stopped_non_finite {
        return Err(CliError::Failed(format!(
            "the state became non-finite at t = {}",
            traj.times.last().copied().unwrap_or(0.0)
        )));
    }
    Ok(())
}
