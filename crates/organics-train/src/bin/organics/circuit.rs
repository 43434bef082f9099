//! `organics steady-state` and `organics simulate`.

use crate::error::CliError;
use clap::{Args, ValueEnum};
use organics_core::integrate::{Integrator, RunSummary, simulate_each};
use organics_core::params::{CircuitSpec, InitialSpec, PerNeuron};
use organics_core::steady_state::{Method, REST_START, StopReason};
use organics_core::{Circuit, CoreError};
use organics_lyapunov::Verdict;
use serde_json::json;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Read and validate a circuit file.
pub fn load_circuit(path: &Path) -> Result<Circuit, CliError> {
    load_spec(path).map(|(_, c)| c)
}

/// Read a circuit file: its description (with the optional `"initial"`) and the validated
/// circuit.
pub fn load_spec(path: &Path) -> Result<(CircuitSpec, Circuit), CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.into(),
        source,
    })?;
    let spec = CircuitSpec::from_json(&text).map_err(|source| CliError::Spec {
        path: path.into(),
        source,
    })?;
    let circuit = spec.build().map_err(|e| CliError::Spec {
        path: path.into(),
        source: e.into(),
    })?;
    Ok((spec, circuit))
}

/// The initial state `[y; a]`: `--y0` / `--a0` (a number for every neuron, or a JSON array of
/// n numbers, as in circuit files) over the file's `"initial"` over 0.01 in every variable.
pub fn initial_state(
    path: &Path,
    spec: &CircuitSpec,
    y0: Option<&str>,
    a0: Option<&str>,
) -> Result<Vec<f64>, CliError> {
    let n = spec.z.len();
    let file = spec.initial_state(REST_START).map_err(|e| CliError::Spec {
        path: path.into(),
        source: e.into(),
    })?;
    let file = file.unwrap_or_else(|| vec![REST_START; 2 * n]);
    let parse = |text: Option<&str>, flag: &'static str| -> Result<Option<PerNeuron>, CliError> {
        let Some(text) = text else { return Ok(None) };
        let bad = || CliError::BadArg {
            flag,
            reason: format!(
                "{text:?}: expected a number or a JSON array of {n} numbers, e.g. 0.1 or [0.1,0.2]"
            ),
        };
        match serde_json::from_str::<serde_json::Value>(text).map_err(|_| bad())? {
            serde_json::Value::Number(v) => {
                Ok(Some(PerNeuron::Scalar(v.as_f64().ok_or_else(bad)?)))
            }
            serde_json::Value::Array(a) => a
                .iter()
                .map(|v| v.as_f64().ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| Some(PerNeuron::Vector(v))),
            _ => Err(bad()),
        }
    };
    let mut x0 = file;
    for (text, flag, field, range) in [
        (y0, "--y0", "initial.y", 0..n),
        (a0, "--a0", "initial.a", n..2 * n),
    ] {
        let Some(part) = parse(text, flag)? else {
            continue;
        };
        let only = if flag == "--y0" {
            InitialSpec {
                y: Some(part),
                a: None,
            }
        } else {
            InitialSpec {
                y: None,
                a: Some(part),
            }
        };
        let state = only.state(n, REST_START).map_err(|e| CliError::BadArg {
            flag,
            reason: e.to_string().replace(field, "value"),
        })?;
        x0[range.clone()].copy_from_slice(&state[range]);
    }
    Ok(x0)
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
    /// The paper's iterative algorithm (main model), at most `--iterations` times (it stops
    /// once the residual is below 1e-8).
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
    /// Most iterations of the iterative algorithm.
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
    let judged = organics_lyapunov::steady_state(&circuit, method)?;
    let report = &judged.report;
    let mut v = organics_train::json::steady_state(report);
    if let Some(s) = &judged.stability {
        v["stable"] = json!(s.verdict == Verdict::Stable);
        v["verdict"] = json!(s.verdict.name());
        v["max_real"] = json!(s.max_real);
        v["tolerance"] = json!(s.tolerance);
    }
    if let Some(range) = &report.range {
        let n = circuit.n();
        v["range"] = json!({ "y": range[..n], "a": range[n..] });
    }
    print_json(&v)?;
    if report.reason == StopReason::NotSettled {
        return Err(organics_lyapunov::LyapunovError::NotSettled {
            steps: report.iterations,
            width: report.range_width(),
        }
        .into());
    }
    if !report.converged() {
        return Err(CliError::Failed(format!(
            "steady state did not converge ({}; residual {:.3e} after {} iterations)",
            report.reason.name(),
            report.residual,
            report.iterations
        )));
    }
    match &judged.stability {
        Some(s) if s.verdict == Verdict::Unstable => Err(CliError::Failed(format!(
            "the fixed point found is unstable (max Re λ = {:.3e} > tolerance {:.1e}): the circuit does not rest there; `--method simulate` finds where it does",
            s.max_real, s.tolerance
        ))),
        _ => Ok(()),
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
    /// Adaptive Radau IIA order 5: implicit, L-stable, for stiff circuits (time constants
    /// spanning orders of magnitude); `--dt` is the first trial step.
    Radau5,
}

/// How `organics simulate` writes its trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One JSON object {"t","y","a","steps","stopped_non_finite"}; held in memory, so refused
    /// above 256 MiB of samples.
    Json,
    /// One JSON object per sample {"t","y","a"}, then {"end":{"steps",..}}; streamed.
    Jsonl,
    /// A header t,y0..,a0.. and one row per sample; streamed.
    Csv,
}

/// Most bytes of samples `--format json` holds in memory (8 bytes per number).
const JSON_LIMIT_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

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
    /// Initial y: a number (every neuron) or a JSON array of n numbers; default the file's
    /// "initial", else 0.01.
    #[arg(long, allow_hyphen_values = true)]
    y0: Option<String>,
    /// Initial a (>= 0): a number or a JSON array of n numbers; default the file's "initial",
    /// else 0.01.
    #[arg(long, allow_hyphen_values = true)]
    a0: Option<String>,
    /// Record every K-th step (the first and last states are always recorded).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Relative tolerance of dopri5 and radau5.
    #[arg(long, default_value_t = 1e-8)]
    rtol: f64,
    /// Absolute tolerance of dopri5 and radau5.
    #[arg(long, default_value_t = 1e-10)]
    atol: f64,
    /// Output format: json holds the run in memory; jsonl and csv stream it.
    #[arg(long, value_enum, default_value = "json", conflicts_with = "csv")]
    format: FormatArg,
    /// Same as `--format csv`.
    #[arg(long)]
    csv: bool,
}

pub fn simulate(args: &SimulateArgs) -> Result<(), CliError> {
    let (spec, circuit) = load_spec(&args.circuit)?;
    let x0 = initial_state(&args.circuit, &spec, args.y0.as_deref(), args.a0.as_deref())?;
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
        IntegratorArg::Radau5 => "radau5",
    };
    let mut stepper = Integrator::from_name(name, dt, args.rtol, args.atol)?;
    let fixed_step = matches!(args.integrator, IntegratorArg::Euler | IntegratorArg::Rk4);
    // Guard against runs that would take an absurd number of steps.
    let steps = args.t_end / dt;
    if fixed_step && steps > 1e8 {
        return Err(CoreError::BadOption {
            option: "dt",
            value: dt,
            reason: "t_end / dt exceeds 1e8 steps",
        }
        .into());
    }
    let format = if args.csv {
        FormatArg::Csv
    } else {
        args.format
    };
    let n = circuit.n();
    let per_sample = (2 * n + 1) as f64 * 8.0;
    let max_samples = (JSON_LIMIT_BYTES / per_sample) as usize;
    if format == FormatArg::Json && fixed_step && args.every > 0 {
        let samples = steps.ceil() / args.every as f64 + 2.0;
        if samples > max_samples as f64 {
            return Err(CliError::TooLarge(format!(
                "--format json holds the whole run in memory: {samples:.0} samples of {} numbers would need {:.0} MiB (limit {:.0} MiB); use --format csv or --format jsonl (streamed), or record less with --every",
                2 * n + 1,
                samples * per_sample / 1048576.0,
                JSON_LIMIT_BYTES / 1048576.0
            )));
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failure: Option<CliError> = None;
    let run = match format {
        FormatArg::Json => {
            let mut times = Vec::new();
            let mut states = Vec::new();
            let run = simulate_each(
                &circuit,
                &mut stepper,
                &x0,
                args.t_end,
                args.every,
                |t, x| {
                    if times.len() >= max_samples {
                        failure = Some(CliError::TooLarge(format!(
                            "--format json holds the whole run in memory and it passed {max_samples} samples ({:.0} MiB) at t = {t}; use --format csv or --format jsonl (streamed), or record less with --every",
                            JSON_LIMIT_BYTES / 1048576.0
                        )));
                        return ControlFlow::Break(());
                    }
                    times.push(t);
                    states.extend_from_slice(x);
                    ControlFlow::Continue(())
                },
            )?;
            if let Some(e) = failure.take() {
                return Err(e);
            }
            write_json(&mut out, &times, &states, n, &run).map_err(CliError::Output)?;
            run
        }
        FormatArg::Csv | FormatArg::Jsonl => {
            let csv = format == FormatArg::Csv;
            if csv {
                let names: Vec<String> = (0..n)
                    .map(|i| format!("y{i}"))
                    .chain((0..n).map(|i| format!("a{i}")))
                    .collect();
                writeln!(out, "t,{}", names.join(",")).map_err(CliError::Output)?;
            }
            let run = simulate_each(
                &circuit,
                &mut stepper,
                &x0,
                args.t_end,
                args.every,
                |t, x| {
                    let written = if csv {
                        write_csv_row(&mut out, t, x)
                    } else {
                        write_jsonl_row(&mut out, t, x, n)
                    };
                    match written {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(e) => {
                            failure = Some(CliError::Output(e));
                            ControlFlow::Break(())
                        }
                    }
                },
            )?;
            if let Some(e) = failure.take() {
                return Err(e);
            }
            if !csv {
                let end = json!({ "end": {
                    "steps": run.steps,
                    "samples": run.samples,
                    "stopped_non_finite": run.stopped_non_finite,
                }});
                writeln!(out, "{end}").map_err(CliError::Output)?;
            }
            run
        }
    };
    out.flush().map_err(CliError::Output)?;
    if run.stopped_non_finite {
        return Err(CliError::Failed(format!(
            "the state became non-finite at t = {}",
            run.t
        )));
    }
    Ok(())
}

/// The `--format json` object, written number by number (no intermediate JSON tree).
fn write_json(
    out: &mut impl Write,
    times: &[f64],
    states: &[f64],
    n: usize,
    run: &RunSummary,
) -> std::io::Result<()> {
    let dim = 2 * n;
    out.write_all(b"{\"t\":")?;
    serde_json::to_writer(&mut *out, times)?;
    for (key, part) in [("y", 0..n), ("a", n..dim)] {
        write!(out, ",\"{key}\":[")?;
        for (k, x) in states.chunks_exact(dim).enumerate() {
            if k > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &x[part.clone()])?;
        }
        out.write_all(b"]")?;
    }
    writeln!(
        out,
        ",\"steps\":{},\"stopped_non_finite\":{}}}",
        run.steps, run.stopped_non_finite
    )
}

fn write_csv_row(out: &mut impl Write, t: f64, x: &[f64]) -> std::io::Result<()> {
    write!(out, "{t}")?;
    for v in x {
        write!(out, ",{v}")?;
    }
    out.write_all(b"\n")
}

fn write_jsonl_row(out: &mut impl Write, t: f64, x: &[f64], n: usize) -> std::io::Result<()> {
    write!(out, "{{\"t\":")?;
    serde_json::to_writer(&mut *out, &t)?;
    out.write_all(b",\"y\":")?;
    serde_json::to_writer(&mut *out, &x[..n])?;
    out.write_all(b",\"a\":")?;
    serde_json::to_writer(&mut *out, &x[n..])?;
    out.write_all(b"}\n")
}
