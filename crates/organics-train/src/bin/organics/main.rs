//! The `organics` command-line binary. Every computing command prints one JSON object on
//! standard output (`simulate` can stream CSV or JSON lines instead). Exit statuses: 0 success;
//! 1 a computation that ran and failed (a steady state that did not converge or does not
//! attract, a simulation that never rests, a numerical failure such as step-size underflow),
//! after printing its report; 2 invalid input, with one line on standard error naming the
//! offending field. A reader that closes the pipe early (`| head`) ends the run quietly with 0.

mod analysis;
mod circuit;
mod continuation;
mod data;
mod error;
mod train;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

const CIRCUIT_HELP: &str = "\
Circuit files (JSON, each field once):
  {\"model\": \"main\"|\"rectified\", \"tau_y\", \"tau_a\", \"b\", \"b0\", \"sigma\": number or [n],
   \"w_r\": \"identity\" | {\"identity\": s} (s times I) | [[n x n]],
   \"w\": {\"all\": s} (every entry s) | [[n x n]], \"z\": [n],
   \"initial\" (optional): {\"y\": number or [n], \"a\": number or [n]}}
  Old files may write w_r and w as bare numbers: w_r: s still means s times the identity,
  w: s still means every entry s.";

/// ORGaNICs: simulate, analyse and train divisive-normalisation circuits.
#[derive(Debug, Parser)]
#[command(name = "organics", version, about, after_help = CIRCUIT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Steady state of a circuit file with its stability: {"y","a","method","iterations",
    /// "residual","converged","reason","stable","verdict","max_real","tolerance"} (+ "range" when
    /// not settled). Exit 1 when none is found or the one found is unstable.
    SteadyState(circuit::SteadyStateArgs),
    /// Integrate a circuit from --y0/--a0, else the file's "initial", else 0.01 in every
    /// variable: {"t","y","a"} (or streamed CSV / JSON lines).
    Simulate(circuit::SimulateArgs),
    /// Linear stability at the steady state: {"y","a","eigenvalues","max_real","stable"}.
    Stability(analysis::StabilityArgs),
    /// Fixed points with their stability: every one for n = 1 (exact), a seeded deflated-Newton
    /// search for n > 1 (an enumeration, not a proof).
    FixedPoints(analysis::FixedPointsArgs),
    /// Periodic orbit after transients, refined by shooting: {"period","amplitude",
    /// "floquet_multipliers","stable","point",..}. Exit 1 when the circuit settles instead.
    LimitCycle(analysis::LimitCycleArgs),
    /// Phase portrait of a one-neuron circuit (SVG or PNG by extension).
    PhasePortrait(analysis::PortraitArgs),
    /// Fixed-point branches under one parameter (pseudo-arclength), with stability, folds and
    /// Hopf points: {"param","branches","bifurcations"}; --out draws the bifurcation diagram.
    Continuation(continuation::ContinuationArgs),
    /// MNIST data: fetch or verify.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Train a model; prints a JSON summary (see organics_train::trainer).
    Train(Box<train::TrainArgs>),
    /// Evaluate a checkpoint on the validation and test sets.
    Eval(train::EvalArgs),
    /// Stability report of a trained static model: fixed-point spectra over test inputs.
    Certify(train::CertifyArgs),
}

fn main() -> ExitCode {
    // Subnormals flushed on the main thread and on rayon's global pool (organics-ftz's docs);
    // the trainer's own pool sets the mode on its workers itself. Only fails if the global pool
    // already exists, which it cannot before this line.
    organics_ftz::enable();
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| {
            organics_ftz::enable();
        })
        .build_global();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // A closed pipe (`organics --help | head -1`) is not an error.
                let _ = write!(std::io::stdout().lock(), "{e}");
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line names the flag; the usage text follows on --help.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see `organics --help`)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::SteadyState(args) => circuit::steady_state(&args),
        Command::Simulate(args) => circuit::simulate(&args),
        Command::Data(cmd) => data::run(&cmd),
        Command::Stability(args) => analysis::stability(&args),
        Command::FixedPoints(args) => analysis::fixed_points(&args),
        Command::LimitCycle(args) => analysis::limit_cycle(&args),
        Command::PhasePortrait(args) => analysis::phase_portrait(&args),
        Command::Continuation(args) => continuation::run(&args),
        Command::Train(args) => train::train(&args),
        Command::Eval(args) => train::eval(&args),
        Command::Certify(args) => train::certify(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_closed_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
