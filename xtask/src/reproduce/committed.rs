//! Tables 1 and 2 from the committed training runs in `models/` (see models/README.md).
//!
//! Each row of the campaign is a run directory trained with the paper's settings by this
//! project's `organics train`. The report does not trust the numbers written during training:
//! it loads every run's best-validation checkpoint, evaluates it now on the full MNIST test set
//! (10 000 images) and prints that accuracy beside the one recorded at that epoch (they agree
//! unless the model code changed since). The learning curves come from the runs' metrics, Figs.
//! 5 and 6 from the committed two-layer run, Fig. 7 from the committed sMNIST and psMNIST models
//! (trajectories recomputed). Rows whose run is not committed yet are listed as such.

use super::training::{fig7, figs_5_6};
use super::{Ctx, Outcome};
use crate::plot::{self, LineChart, Series, Style};
use anyhow::{Context, Result};
use organics_data::DataCheck;
use organics_train::checkpoint;
use organics_train::metrics::{self, Record};
use organics_train::observe;
use organics_train::trainer::{self, Data};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One row of the campaign: run folder, table, the paper's label and accuracy (%), and the
/// epochs the row needs (the campaign issue's minimum).
struct Campaign {
    name: &'static str,
    table: u8,
    label: &'static str,
    paper: f64,
    epochs: u64,
}

/// The paper's values: Table 1 and Table 2 of Rawat, Heeger & Martiniani (2024).
const CAMPAIGN: &[Campaign] = &[
    Campaign {
        name: "mnist-organics-50",
        table: 1,
        label: "ORGaNICs (50:50), one layer",
        paper: 98.1,
        epochs: 200,
    },
    Campaign {
        name: "mnist-organics-80",
        table: 1,
        label: "ORGaNICs (80:80), one layer",
        paper: 98.2,
        epochs: 200,
    },
    Campaign {
        name: "mnist-organics-2layer",
        table: 1,
        label: "ORGaNICs, two layers (120→60, learned W_r)",
        paper: 98.1,
        epochs: 200,
    },
    Campaign {
        name: "smnist-organics-128",
        table: 2,
        label: "ORGaNICs, sMNIST, n = 128",
        paper: 97.8,
        epochs: 100,
    },
    Campaign {
        name: "psmnist-organics-128",
        table: 2,
        label: "ORGaNICs, psMNIST, n = 128",
        paper: 90.7,
        epochs: 100,
    },
    Campaign {
        name: "smnist-organics-64",
        table: 2,
        label: "ORGaNICs, sMNIST, n = 64",
        paper: 97.7,
        epochs: 50,
    },
    Campaign {
        name: "smnist-organics-fixedtau-128",
        table: 2,
        label: "ORGaNICs (fixed time constants), sMNIST, n = 128",
        paper: 94.8,
        epochs: 50,
    },
    Campaign {
        name: "smnist-lstm-128",
        table: 2,
        label: "LSTM, sMNIST, n = 128",
        paper: 97.3,
        epochs: 50,
    },
];

/// Test inputs whose fixed points Fig. 5 analyses (the paper's histograms use the test set;
/// 1 000 inputs keep this part within a minute on 2 cores).
const FIG5_INPUTS: usize = 1000;

/// What a committed run says about itself, plus its re-evaluation.
struct Evaluated {
    epochs: u64,
    finished: bool,
    best_epoch: u64,
    recorded_test: f64,
    test_now: f64,
    last_test: f64,
    hours: f64,
    /// (epoch, test error in %).
    curve: Vec<(f64, f64)>,
    dir: PathBuf,
    config: organics_train::TrainConfig,
    certificate: Option<serde_json::Value>,
}

fn evaluate(dir: &Path) -> Result<Evaluated> {
    let last = checkpoint::read_state(&dir.join("checkpoints").join("last"))?;
    let best_dir = dir.join("checkpoints").join("best");
    let best = checkpoint::read_state(&best_dir)?;
    let epochs: Vec<metrics::EpochMetrics> = metrics::read(&dir.join("metrics.jsonl"))?
        .into_iter()
        .filter_map(|r| match r {
            Record::Epoch(e) => Some(e),
            Record::Step(_) => None,
        })
        .collect();
    let at = |epoch: u64| epochs.iter().rev().find(|e| e.epoch == epoch);
    let recorded = at(best.epoch)
        .with_context(|| format!("{}: no metrics for epoch {}", dir.display(), best.epoch))?;
    // The committed config names the machine's data folder of its day; use this machine's.
    let mut cfg = best.config.clone();
    cfg.data_dir = None;
    cfg.train_subset = Some(1);
    cfg.eval_subset = None;
    let data = Data::mnist(&cfg, DataCheck::Sha256)?;
    let mut loaded = trainer::load(&best_dir, data.test.rows(), data.test.cols())?;
    let test_now = loaded.trainer.evaluate(&data.test)?.accuracy;
    let certificate = std::fs::read_to_string(dir.join("certificate.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    Ok(Evaluated {
        epochs: last.epoch,
        finished: last.finished,
        best_epoch: best.epoch,
        recorded_test: recorded.test_accuracy,
        test_now,
        last_test: at(last.epoch).map_or(f64::NAN, |e| e.test_accuracy),
        hours: last.train_seconds / 3600.0,
        curve: epochs
            .iter()
            .map(|e| (e.epoch as f64, 100.0 * (1.0 - e.test_accuracy)))
            .collect(),
        dir: dir.to_path_buf(),
        config: best.config,
        certificate,
    })
}

/// Tables 1 and 2 from the committed runs, with the learning curves and Figs. 5–7.
pub fn run(ctx: &Ctx) -> Result<Outcome> {
    let root = ctx
        .out
        .parent()
        .and_then(Path::parent)
        .context("target/reproduce has no repository root")?;
    let mut md = String::from(
        "Every committed run in `models/` (models/README.md has the commands, hours and CPU). \
         \"test now\" is the best-validation checkpoint evaluated by this report on the full test set \
         (10 000 images); \"recorded\" is the test accuracy written at that epoch during training.\n",
    );
    let mut figures = Vec::new();
    let mut rows_done = 0;
    for table in [1u8, 2] {
        writeln!(
            md,
            "\n### Table {table} from the committed runs\n\n| run | model | paper (%) | test now, best val. (%) | recorded (%) | last epoch (%) | epochs (needed) | best epoch | hours |\n|---|---|---|---|---|---|---|---|---|"
        )?;
        let mut curves = Vec::new();
        for (k, row) in CAMPAIGN.iter().filter(|r| r.table == table).enumerate() {
            let dir = root.join("models").join(row.name);
            if !dir.join("checkpoints").join("best").is_dir() {
                writeln!(
                    md,
                    "| {} | {} | {:.1} | not trained yet | | | 0 ({}) | | |",
                    row.name, row.label, row.paper, row.epochs
                )?;
                continue;
            }
            eprintln!("  evaluating models/{} on the full test set", row.name);
            let e = evaluate(&dir).with_context(|| format!("models/{}", row.name))?;
            rows_done += 1;
            writeln!(
                md,
                "| {} | {} | {:.1} | **{:.2}** | {:.2} | {:.2} | {}{} ({}) | {} | {:.2} |",
                row.name,
                row.label,
                row.paper,
                100.0 * e.test_now,
                100.0 * e.recorded_test,
                100.0 * e.last_test,
                e.epochs,
                if e.finished { ", finished" } else { "" },
                row.epochs,
                e.best_epoch,
                e.hours,
            )?;
            curves.push((k, row, e));
        }
        if curves.is_empty() {
            continue;
        }
        let mut series = Vec::new();
        for (k, row, e) in &curves {
            series.push(Series::line(row.name, e.curve.clone(), *k));
            let end = e.curve.last().map_or(1.0, |p| p.0);
            series.push(Series {
                label: String::new(),
                points: vec![(1.0, 100.0 - row.paper), (end.max(2.0), 100.0 - row.paper)],
                color: *k,
                style: Style::Dashed,
            });
        }
        figures.extend(plot::save(
            &LineChart {
                title: format!(
                    "Learning curves, Table {table}: test error per epoch (dashed: the paper)"
                ),
                x_label: "epoch".into(),
                y_label: "test error (%), log scale".into(),
                log_y: true,
                y_range: None,
                series,
            },
            &ctx.out.join(format!("curves_table{table}")),
        )?);
        for (_, row, e) in &curves {
            if let Some(c) = &e.certificate {
                for layer in c["layers"].as_array().into_iter().flatten() {
                    writeln!(
                        md,
                        "\n`organics certify models/{}` (certificate.json): layer {}, {} inputs, stable fraction {}, unsolved {}, largest max Re λ {:.4} ms⁻¹.",
                        row.name,
                        layer["layer"],
                        layer["inputs"],
                        layer["stable_fraction"],
                        layer["unsolved"],
                        layer["max"].as_f64().unwrap_or(f64::NAN),
                    )?;
                }
            }
            if row.name == "mnist-organics-2layer" {
                let data = Data::mnist(
                    &organics_train::TrainConfig {
                        data_dir: None,
                        train_subset: Some(1),
                        ..e.config.clone()
                    },
                    DataCheck::None,
                )?;
                let spectra = observe::checkpoint_spectra(&e.dir, &data, FIG5_INPUTS)?;
                let records = observe::read_observers(&e.dir)?;
                figures.extend(figs_5_6(ctx, &records, Some(&spectra), "", &mut md)?);
            }
            if let Some((letter, task)) = match row.name {
                "smnist-organics-128" => Some(('a', "sMNIST")),
                "psmnist-organics-128" => Some(('b', "psMNIST")),
                _ => None,
            } {
                let cfg = organics_train::TrainConfig {
                    data_dir: None,
                    ..e.config.clone()
                };
                figures.extend(fig7(ctx, &e.dir, &cfg, letter, task, "", &mut md)?);
            }
        }
    }
    writeln!(
        md,
        "\n{rows_done} of {} campaign rows have a committed run.",
        CAMPAIGN.len()
    )?;
    Ok(Outcome {
        markdown: md,
        figures,
        checks: Vec::new(),
        settings: "committed runs in models/, re-evaluated on the full test set".into(),
    })
}
