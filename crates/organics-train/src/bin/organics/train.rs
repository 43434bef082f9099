//! `organics train`, `organics eval` and `organics certify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};
use organics_data::{DataCheck, SplitDraw, View};
use organics_train::config::Clipping;
use organics_train::trainer::{self, Data};
use organics_train::{
    Existing, ProgressMode, RunEnd, RunOptions, TrainConfig, TrainError, observe,
};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::CliError;

/// Options of `organics train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Task: mnist, smnist or psmnist.
    #[arg(long)]
    task: Option<String>,
    /// Model: organics, organics-2layer, mlp (mnist); organics, lstm, rnn (smnist, psmnist).
    #[arg(long)]
    model: Option<String>,
    /// Full config file (JSON, e.g. a run's config.json); flags override its fields.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in DIR from its last checkpoint (its best if the last is unusable);
    /// with --epochs N, run to N epochs in total (extends a finished run). Model and data
    /// flags are not allowed.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Run directory (config.json, metrics.jsonl, observers.jsonl, checkpoints/). An existing,
    /// non-empty one is refused unless --overwrite is given.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace an existing run directory (the old run stays until the new one's first
    /// checkpoint).
    #[arg(long)]
    overwrite: bool,
    /// Check the MNIST files at load: sha256 (default) or none (IDX files that are not MNIST).
    #[arg(long, value_enum, default_value_t = DataCheckArg::Sha256)]
    data_check: DataCheckArg,
    /// Hidden units (first layer).
    #[arg(long)]
    hidden: Option<usize>,
    /// Units of the second ORGaNICs layer (organics-2layer).
    #[arg(long)]
    hidden2: Option<usize>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<u64>,
    /// Mini-batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Adam L2 weight decay.
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Seed of initialisation and shuffling.
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Time steps per weight-gradient GEMM of the recurrent models (fixes the summation
    /// order; default 4; runs up to 2026-12-05 used 16).
    #[arg(long, value_name = "K")]
    weight_grad_block: Option<usize>,
    /// Train on the first N training samples.
    #[arg(long, value_name = "N")]
    subset: Option<usize>,
    /// Evaluate on the first N validation and test samples.
    #[arg(long, value_name = "N")]
    eval_subset: Option<usize>,
    /// Input view: static, sequential, permuted (the paper's permutation), permuted:SEED (a
    /// ChaCha8 permutation), row-wise, downsampled14.
    #[arg(long)]
    view: Option<String>,
    /// Train/validation split: paper (the authors' draw, the default) or chacha8:SEED.
    #[arg(long)]
    split: Option<String>,
    /// RNN cell preset: paper or head.
    #[arg(long)]
    cell: Option<String>,
    /// RNN time constants: learned or fixed.
    #[arg(long)]
    tau: Option<String>,
    /// W_r of the fixed-point layers: identity or spectral-norm.
    #[arg(long)]
    recurrence: Option<String>,
    /// Linear system of the iterative steady state: sqrt-a or legacy-diag-a.
    #[arg(long)]
    fixed_point_system: Option<String>,
    /// How the iterative steady state solves its linear systems: sweeps or lu.
    #[arg(long)]
    fixed_point_solver: Option<String>,
    /// Clip the global gradient norm at this value (default: no clipping).
    #[arg(long)]
    clip_norm: Option<f64>,
    /// Run the stability observers every K epochs (0: never).
    #[arg(long, value_name = "K")]
    observe_every: Option<u64>,
    /// Test inputs the observers use.
    #[arg(long)]
    observe_samples: Option<usize>,
    /// MNIST directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop with a checkpoint after this many optimiser steps in total (for testing resumption).
    #[arg(long, value_name = "N")]
    stop_after_steps: Option<u64>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// How the MNIST files are checked at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataCheckArg {
    /// Compare every file's sha256 with MNIST's (about 55 MB hashed per load).
    Sha256,
    /// Read the files as they are.
    None,
}

impl From<DataCheckArg> for DataCheck {
    fn from(a: DataCheckArg) -> DataCheck {
        match a {
            DataCheckArg::Sha256 => DataCheck::Sha256,
            DataCheckArg::None => DataCheck::None,
        }
    }
}

/// Options of `organics eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint directory, or a run directory (its best checkpoint).
    checkpoint: PathBuf,
    /// Evaluate on the first N validation and test samples.
    #[arg(long, value_name = "N")]
    eval_subset: Option<usize>,
    /// MNIST directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Check the MNIST files at load: sha256 (default) or none.
    #[arg(long, value_enum, default_value_t = DataCheckArg::Sha256)]
    data_check: DataCheckArg,
}

/// Options of `organics certify`.
#[derive(Debug, Args)]
pub struct CertifyArgs {
    /// A checkpoint directory, or a run directory (its best checkpoint).
    checkpoint: PathBuf,
    /// Test inputs to analyse (default: all 10 000).
    #[arg(long, value_name = "N")]
    samples: Option<usize>,
    /// MNIST directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Check the MNIST files at load: sha256 (default) or none.
    #[arg(long, value_enum, default_value_t = DataCheckArg::Sha256)]
    data_check: DataCheckArg,
}

fn parse_enum<T: DeserializeOwned>(field: &'static str, text: &str) -> Result<T, TrainError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        TrainError::InvalidConfig {
            field,
            value: text.to_string(),
            reason: "not one of the accepted names (see `organics train --help`)",
        }
    })
}

fn build_config(a: &TrainArgs) -> Result<TrainConfig, TrainError> {
    let mut cfg = match (&a.config, &a.task, &a.model) {
        (Some(path), _, _) => TrainConfig::from_file(path)?,
        (None, Some(task), model) => {
            let task = parse_enum("task", task)?;
            let model = parse_enum("model", model.as_deref().unwrap_or("organics"))?;
            TrainConfig::preset(task, model)
        }
        (None, None, _) => {
            return Err(TrainError::InvalidConfig {
                field: "task",
                value: "(none)".into(),
                reason: "give --task, --config FILE or --resume DIR",
            });
        }
    };
    if a.config.is_some() {
        if let Some(t) = &a.task {
            cfg.task = parse_enum("task", t)?;
        }
        if let Some(m) = &a.model {
            cfg.model = parse_enum("model", m)?;
        }
    }
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = a.$field.clone() { cfg.$field = v; } )* };
    }
    set!(
        hidden,
        hidden2,
        epochs,
        batch_size,
        lr,
        weight_decay,
        seed,
        threads,
        weight_grad_block,
        observe_every,
        observe_samples
    );
    if let Some(v) = a.subset {
        cfg.train_subset = Some(v);
    }
    if let Some(v) = a.eval_subset {
        cfg.eval_subset = Some(v);
    }
    if let Some(v) = &a.data_dir {
        cfg.data_dir = Some(v.clone());
    }
    if let Some(v) = &a.view {
        cfg.view = v.parse::<View>()?;
    }
    if let Some(v) = &a.split {
        cfg.split = v.parse::<SplitDraw>()?;
    }
    if let Some(v) = &a.cell {
        cfg.cell = parse_enum("cell", v)?;
    }
    if let Some(v) = &a.tau {
        cfg.tau = parse_enum("tau", v)?;
    }
    if let Some(v) = &a.recurrence {
        cfg.static_recurrence = parse_enum("recurrence", v)?;
    }
    if let Some(v) = &a.fixed_point_system {
        cfg.fixed_point_system = parse_enum("fixed_point_system", v)?;
    }
    if let Some(v) = &a.fixed_point_solver {
        cfg.fixed_point_solver = parse_enum("fixed_point_solver", v)?;
    }
    if let Some(v) = a.clip_norm {
        cfg.clipping = Clipping::GlobalNorm { max_norm: v };
    }
    cfg.validate()?;
    Ok(cfg)
}

fn default_out(cfg: &TrainConfig) -> PathBuf {
    let name = |v: &dyn erased::Named| v.name();
    PathBuf::from("runs").join(format!(
        "{}-{}-{}",
        name(&cfg.task),
        name(&cfg.model),
        cfg.hidden
    ))
}

mod erased {
    pub trait Named {
        fn name(&self) -> String;
    }
    impl<T: serde::Serialize> Named for T {
        fn name(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        }
    }
}

/// faer's own threading is slower than one thread at our matrix sizes (design notes); the
/// cores are used by splitting batches instead.
fn sequential_faer() {
    faer::set_global_parallelism(faer::Par::Seq);
}

/// `organics train`.
pub fn train(a: &TrainArgs) -> Result<(), CliError> {
    sequential_faer();
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        // SIGINT, SIGTERM and SIGHUP (ctrlc's `termination` feature) only set the flag: the
        // step under way finishes, a checkpoint is written, the run exits. A second signal
        // while that happens is ignored.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let opts = RunOptions {
        progress: if a.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Bar
        },
        stop_after_steps: a.stop_after_steps,
        interrupt: Some(interrupt),
        existing: if a.overwrite {
            Existing::Overwrite
        } else {
            Existing::Refuse
        },
        epochs: a.epochs,
        data_check: a.data_check.into(),
    };
    let summary = if let Some(dir) = &a.resume {
        let given = resume_conflicts(a);
        if !given.is_empty() {
            return Err(TrainError::InvalidConfig {
                field: "resume",
                value: given.join(" "),
                reason: "--resume continues a run with its saved config.json (--epochs N extends \
                         it); drop these flags, or start a new run with them (MNIST elsewhere: \
                         set $ORGANICS_DATA)",
            }
            .into());
        }
        trainer::resume(dir, &opts)?
    } else {
        let cfg = build_config(a)?;
        let out = a.out.clone().unwrap_or_else(|| default_out(&cfg));
        let data = Data::mnist(&cfg, opts.data_check)?;
        trainer::run_with(&cfg, &data, &out, &opts)?
    };
    let out = json!({
        "out_dir": summary.out_dir,
        "stopped": summary.stopped,
        "parameter_count": summary.parameter_count,
        "epochs_finished": summary.epochs.len(),
        "global_step": summary.global_step,
        "final_test_accuracy": summary.final_test_accuracy,
        "best": summary.best,
        "seconds_per_epoch": summary.seconds_per_epoch,
        "divergence": summary.divergence,
        "warnings": summary.warnings,
    });
    println!("{out}");
    match (summary.stopped, &summary.divergence) {
        (RunEnd::Diverged, Some(d)) => Err(CliError::Failed(format!(
            "non-finite {} at epoch {}, step {} (value {}); {}",
            d.what,
            d.epoch,
            d.step,
            d.value,
            match &d.checkpoint {
                Some(p) => format!("the last finite state is in {}", p.display()),
                None => "no finite checkpoint was written".to_string(),
            }
        ))),
        _ => Ok(()),
    }
}

fn data_for(
    path: &Path,
    data_dir: Option<&PathBuf>,
    eval_subset: Option<usize>,
    check: DataCheck,
) -> Result<Data, TrainError> {
    Data::for_checkpoint(path, data_dir.map(PathBuf::as_path), eval_subset, check)
}

/// `organics eval`.
pub fn eval(a: &EvalArgs) -> Result<(), CliError> {
    sequential_faer();
    let data = data_for(
        &a.checkpoint,
        a.data_dir.as_ref(),
        a.eval_subset,
        a.data_check.into(),
    )?;
    let report = trainer::evaluate_checkpoint(&a.checkpoint, &data)?;
    println!(
        "{}",
        serde_json::to_string(&report).expect("report serialises")
    );
    Ok(())
}

/// `organics certify`.
pub fn certify(a: &CertifyArgs) -> Result<(), CliError> {
    sequential_faer();
    let data = data_for(
        &a.checkpoint,
        a.data_dir.as_ref(),
        None,
        a.data_check.into(),
    )?;
    let report = observe::certify(&a.checkpoint, &data, a.samples)?;
    println!(
        "{}",
        serde_json::to_string(&report).expect("certificate serialises")
    );
    Ok(())
}

/// The flags given with `--resume` that would change the saved run: every flag that sets a
/// field of its `config.json`, plus `--config`, `--out` and `--overwrite`. A resumed run keeps
/// its config, so these are refused rather than ignored.
fn resume_conflicts(a: &TrainArgs) -> Vec<&'static str> {
    [
        ("--task", a.task.is_some()),
        ("--model", a.model.is_some()),
        ("--config", a.config.is_some()),
        ("--out", a.out.is_some()),
        ("--overwrite", a.overwrite),
        ("--hidden", a.hidden.is_some()),
        ("--hidden2", a.hidden2.is_some()),
        ("--batch-size", a.batch_size.is_some()),
        ("--lr", a.lr.is_some()),
        ("--weight-decay", a.weight_decay.is_some()),
        ("--seed", a.seed.is_some()),
        ("--threads", a.threads.is_some()),
        ("--weight-grad-block", a.weight_grad_block.is_some()),
        ("--subset", a.subset.is_some()),
        ("--eval-subset", a.eval_subset.is_some()),
        ("--view", a.view.is_some()),
        ("--split", a.split.is_some()),
        ("--cell", a.cell.is_some()),
        ("--tau", a.tau.is_some()),
        ("--recurrence", a.recurrence.is_some()),
        ("--fixed-point-system", a.fixed_point_system.is_some()),
        ("--fixed-point-solver", a.fixed_point_solver.is_some()),
        ("--clip-norm", a.clip_norm.is_some()),
        ("--observe-every", a.observe_every.is_some()),
        ("--observe-samples", a.observe_samples.is_some()),
        ("--data-dir", a.data_dir.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}
