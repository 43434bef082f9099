//! The `organics` command-line binary. Every computing command prints one JSON object on
//! standard output. Invalid input exits with status 2 and one line on standard error naming the
//! offending field; a computation that runs but fails (e.g. a steady state that does not
//! converge) prints its report and exits with status 1.

mod analysis;
mod circuit;
mod data;
mod error;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// ORGaNICs: simulate, analyse and train divisive-normalisation circuits.
#[derive(Debug, Parser)]
#[command(name = "organics", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Steady state of a circuit file: {"y","a","method","iterations","residual"}.
    SteadyState(circuit::SteadyStateArgs),
    /// Integrate a circuit from 0.01 in every variable: {"t","y","a"} (or CSV).
    Simulate(circuit::SimulateArgs),
    /// Linear stability at the steady state: {"y","a","eigenvalues","max_real","stable"}.
    Stability(analysis::StabilityArgs),
    /// Every real fixed point of a one-neuron circuit with its eigenvalues and kind.
    FixedPoints(analysis::FixedPointsArgs),
    /// Phase portrait of a one-neuron circuit (SVG or PNG by extension).
    PhasePortrait(analysis::PortraitArgs),
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
                print!("{e}");
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
        Command::PhasePortrait(args) => analysis::phase_portrait(&args),
        Command::Train(args) => train::train(&args),
        Command::Eval(args) => train::eval(&args),
        Command::Certify(args) => train::certify(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
