//! Project automation, run as `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! - `ci`: what continuous integration runs (`.ci/run`): format check, clippy, data fetch,
//!   the tests, rustdoc.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "ORGaNICs-rs project automation")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run exactly what CI runs (`.ci/run`).
    Ci,
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Ci => {
            let status = Command::new("bash").arg(".ci/run").current_dir(root()).status().context("running .ci/run")?;
            if !status.success() {
                bail!(".ci/run failed with {status}");
            }
            Ok(())
        }
    }
}
