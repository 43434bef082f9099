//! Project automation, run as `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! - `ci`: what continuous integration runs (`.ci/run`): format check, clippy, data fetch,
//!   the tests, rustdoc, `reproduce --check`.
//! - `reproduce`: every table and figure of the paper into `target/reproduce/`.
//! - `sweep --slurm`, `collect`: the full profile over seeds on a Slurm cluster, merged back.
//! - `bench`: training-step and GEMM-roofline benchmarks, one `NAME: median_s= gflops=` line each.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::Command;

mod bench;
mod plot;
mod reproduce;
mod rows;
mod sweep;

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
    /// Regenerate every table and figure into target/reproduce (report.md, SVG and PNG).
    Reproduce {
        /// quick (default, minutes) or full (the paper's settings).
        #[arg(long, value_enum, default_value = "quick")]
        profile: reproduce::Profile,
        /// Comma-separated subset, e.g. `fig4,table1`.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Recompute the cheap deterministic parts and fail if they drift from docs/results.json.
        #[arg(long)]
        check: bool,
    },
    /// Write a Slurm job array running the rows of Tables 1 and 2 over several seeds.
    Sweep {
        /// Write the Slurm job-array script (the only backend).
        #[arg(long, required = true)]
        slurm: bool,
        /// full (default: the paper's settings) or quick (minutes a run).
        #[arg(long, value_enum, default_value = "full")]
        profile: reproduce::Profile,
        /// Comma-separated row ids (default: every row of Tables 1 and 2).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Seeds, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
        seeds: Vec<u64>,
        /// Output folder, relative to the workspace root.
        #[arg(long, default_value = "sweep")]
        dir: PathBuf,
        /// CPUs per task (also the training threads).
        #[arg(long, default_value_t = 4)]
        cpus: usize,
        /// Wall-clock hours per task.
        #[arg(long, default_value_t = 48)]
        hours: u32,
    },
    /// Merge a finished sweep into target/reproduce (mean ± s.d. across seeds).
    Collect {
        /// The sweep folder.
        #[arg(long, default_value = "sweep")]
        dir: PathBuf,
    },
    /// Training-step benchmarks against the GEMM roofline (and PyTorch, JAX with --torch, --jax).
    Bench {
        /// Fewer repetitions.
        #[arg(long)]
        quick: bool,
        /// Also run bench/torch_reference.py when a Python with torch is available
        /// (`$ORGANICS_PYTHON`, else python3).
        #[arg(long)]
        torch: bool,
        /// Also run bench/jax_reference.py when a Python with jax is available
        /// (`$ORGANICS_JAX_PYTHON`, else python3).
        #[arg(long)]
        jax: bool,
    },
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Ci => {
            let status = Command::new("bash")
                .arg(".ci/run")
                .current_dir(root())
                .status()
                .context("running .ci/run")?;
            if !status.success() {
                bail!(".ci/run failed with {status}");
            }
            Ok(())
        }
        Cmd::Sweep {
            slurm: _,
            profile,
            only,
            seeds,
            dir,
            cpus,
            hours,
        } => sweep::write(
            &root(),
            &dir,
            &sweep::Sweep {
                profile,
                only: &only,
                seeds: &seeds,
                cpus,
                hours,
            },
        ),
        Cmd::Collect { dir } => sweep::collect(&root(), &dir),
        Cmd::Bench { quick, torch, jax } => bench::run(&root(), quick, torch, jax),
        Cmd::Reproduce {
            profile,
            only,
            check,
        } => reproduce::run(
            &root(),
            &reproduce::Options {
                profile,
                only,
                check,
            },
        ),
    }
}
