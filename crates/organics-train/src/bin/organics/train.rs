//! `organics train`, `organics eval` and `organics certify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};
use organics_data::{DataCheck, SplitDraw, View};
use organics_train::config::{Clipping, ModelKind, Task};
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
    /// How the static models form their gradients: fused (organics-grad's engine, for the
    /// one-layer ORGaNICs model with W_r = I and the MLP) or tape.
    #[arg(long)]
    static_path: Option<String>,
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
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(e) = overlay_flags(a, &mut cfg).error {
        return Err(e);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The flags of [`overlay_flags`] that were given, and the first error among their values.
struct Overlay {
    given: Vec<&'static str>,
    error: Option<TrainError>,
}

/// Writes every flag that sets a field of the run's config (all but `--task`, `--model`,
/// `--config` and `--epochs`, which [`build_config`] handles) into `cfg`. This is the one list
/// of them: [`resume_conflicts`] refuses exactly these on `--resume`. Every given flag is
/// named, including those after one whose value does not parse.
fn overlay_flags(a: &TrainArgs, cfg: &mut TrainConfig) -> Overlay {
    let mut o = Overlay {
        given: Vec::new(),
        error: None,
    };
    let mut apply = |flag: &'static str, result: Option<Result<(), TrainError>>| {
        if let Some(r) = result {
            o.given.push(flag);
            if let (Err(e), None) = (r, &o.error) {
                o.error = Some(e);
            }
        }
    };
    // `put!(FLAG, OPTION => FIELD)` or `put!(FLAG, OPTION => FIELD, |v| VALUE)`: if the flag
    // was given, name it and set the field (to the option's value, or to VALUE).
    macro_rules! put {
        ($flag:literal, $opt:expr => $field:ident) => {
            put!($flag, $opt => $field, |v| v)
        };
        ($flag:literal, $opt:expr => $field:ident, |$v:ident| $value:expr) => {
            apply($flag, $opt.map(|$v| {
                cfg.$field = $value;
                Ok(())
            }))
        };
    }
    put!("--hidden", a.hidden => hidden);
    put!("--hidden2", a.hidden2 => hidden2);
    put!("--batch-size", a.batch_size => batch_size);
    put!("--lr", a.lr => lr);
    put!("--weight-decay", a.weight_decay => weight_decay);
    put!("--seed", a.seed => seed);
    put!("--threads", a.threads => threads);
    put!("--weight-grad-block", a.weight_grad_block => weight_grad_block);
    put!("--subset", a.subset => train_subset, |v| Some(v));
    put!("--eval-subset", a.eval_subset => eval_subset, |v| Some(v));
    put!("--view", a.view.as_ref() => view, |v| v.parse::<View>()?);
    put!("--split", a.split.as_ref() => split, |v| v.parse::<SplitDraw>()?);
    put!("--cell", a.cell.as_ref() => cell, |v| parse_enum("cell", v)?);
    put!("--tau", a.tau.as_ref() => tau, |v| parse_enum("tau", v)?);
    put!("--recurrence", a.recurrence.as_ref() => static_recurrence,
        |v| parse_enum("recurrence", v)?);
    put!("--fixed-point-system", a.fixed_point_system.as_ref() => fixed_point_system,
        |v| parse_enum("fixed_point_system", v)?);
    put!("--fixed-point-solver", a.fixed_point_solver.as_ref() => fixed_point_solver,
        |v| parse_enum("fixed_point_solver", v)?);
    put!("--static-path", a.static_path.as_ref() => static_path,
        |v| parse_enum("static_path", v)?);
    put!("--clip-norm", a.clip_norm => clipping,
        |v| Clipping::GlobalNorm { max_norm: v });
    put!("--observe-every", a.observe_every => observe_every);
    put!("--observe-samples", a.observe_samples => observe_samples);
    put!("--data-dir", a.data_dir.clone() => data_dir, |v| Some(v));
    o
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
/// field of its `config.json` ([`overlay_flags`]), plus `--task`, `--model`, `--config`,
/// `--out` and `--overwrite`. A resumed run keeps its config, so these are refused rather
/// than ignored.
fn resume_conflicts(a: &TrainArgs) -> Vec<&'static str> {
    let mut given: Vec<&'static str> = [
        ("--task", a.task.is_some()),
        ("--model", a.model.is_some()),
        ("--config", a.config.is_some()),
        ("--out", a.out.is_some()),
        ("--overwrite", a.overwrite),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect();
    // Applied to a scratch config only to learn which were given.
    let mut scratch = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
    given.extend(overlay_flags(a, &mut scratch).given);
    given
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    /// Flags that `--resume` accepts: they set no field of the run's config.
    const RUN_OPTIONS: [&str; 5] = [
        "--resume",
        "--epochs",
        "--data-check",
        "--stop-after-steps",
        "--quiet",
    ];

    /// A value for each flag that takes one, different from the MNIST preset's.
    fn sample(flag: &str) -> Option<&'static str> {
        Some(match flag {
            "--task" => "smnist",
            "--model" => "mlp",
            "--config" => "config.json",
            "--out" => "runs/x",
            "--hidden" => "7",
            "--hidden2" => "9",
            "--batch-size" => "32",
            "--lr" => "0.5",
            "--weight-decay" => "0.25",
            "--seed" => "99",
            "--threads" => "3",
            "--weight-grad-block" => "16",
            "--subset" => "100",
            "--eval-subset" => "50",
            "--view" => "permuted",
            "--split" => "chacha8:5",
            "--cell" => "head",
            "--tau" => "fixed",
            "--recurrence" => "spectral-norm",
            "--fixed-point-system" => "legacy-diag-a",
            "--fixed-point-solver" => "lu",
            "--static-path" => "tape",
            "--clip-norm" => "1.5",
            "--observe-every" => "3",
            "--observe-samples" => "11",
            "--data-dir" => "elsewhere",
            _ => return None,
        })
    }

    fn parse(extra: &[&str]) -> TrainArgs {
        let argv = std::iter::once("organics-train").chain(extra.iter().copied());
        Cli::try_parse_from(argv).expect("valid flags").train
    }

    /// Every flag of `organics train` is either a run option or refused on `--resume`, and
    /// every refused flag that is not one of the run-selecting ones (`--task`, `--model`,
    /// `--config`, `--out`, `--overwrite`) changes a field of the config. A flag
    /// added to `TrainArgs` without a sample value here fails this test, so it cannot be
    /// silently ignored by `--resume`.
    #[test]
    fn every_config_flag_is_applied_and_refused_on_resume() {
        let preset = serde_json::to_value(TrainConfig::preset(Task::Mnist, ModelKind::Organics))
            .expect("preset serialises");
        let selecting = ["--task", "--model", "--config", "--out", "--overwrite"];
        let mut checked = 0;
        for arg in Cli::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let flag = format!("--{long}");
            if RUN_OPTIONS.contains(&flag.as_str()) {
                continue;
            }
            let takes_value = arg.get_action().takes_values();
            let mut argv = vec![flag.as_str()];
            if takes_value {
                let value = sample(&flag).unwrap_or_else(|| {
                    panic!("{flag}: give it a sample value, and make --resume refuse it")
                });
                argv.push(value);
            }
            let a = parse(&argv);
            assert_eq!(resume_conflicts(&a), vec![flag.as_str()], "{flag}");
            if !selecting.contains(&flag.as_str()) {
                // Not validated: a flag alone may not suit the preset (`--view permuted` on
                // static MNIST); what counts here is that it reaches a field.
                let mut cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
                let o = overlay_flags(&a, &mut cfg);
                assert!(o.error.is_none(), "{flag}: {:?}", o.error);
                let cfg = serde_json::to_value(cfg).expect("config serialises");
                assert_ne!(cfg, preset, "{flag} did not change the config");
            }
            checked += 1;
        }
        // 26 flags that take a value, and --overwrite.
        assert_eq!(checked, 27);
    }

    #[test]
    fn a_bad_value_still_names_every_given_flag() {
        let a = parse(&["--view", "sideways", "--lr", "0.5"]);
        let mut cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
        let o = overlay_flags(&a, &mut cfg);
        assert_eq!(o.given, ["--lr", "--view"]);
        assert!(o.error.is_some(), "the bad --view was accepted");
        assert_eq!(resume_conflicts(&a), ["--lr", "--view"]);
    }
}
