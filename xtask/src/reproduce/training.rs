//! The trained experiments: Table 1 (with Figs. 5 and 6 from the two-layer model), Table 2
//! (with Fig. 7 from the 128-unit ORGaNICs RNNs), gradient norms without clipping, and the
//! corrected (√a) against the legacy (diag a) fixed-point layer.
//!
//! Runs go to `target/reproduce/runs/<row id>`; a run made earlier in the same invocation is
//! reused (e.g. Table 2's sMNIST runs by the gradient-norm comparison).

use super::{Ctx, Outcome};
use crate::plot::{self, Histogram, LineChart, Series};
use crate::rows::{self, Row};
use anyhow::{Context, Result};
use organics_data::{Mnist, Progress, default_dir, fetch};
use organics_train::config::{FixedPointSystem, ModelKind, Task};
use organics_train::observe::{self, ObserverRecord};
use organics_train::trainer::{self, RunSummary};
use organics_train::{ProgressMode, TrainConfig};
use std::fmt::Write as _;
use std::time::Instant;

/// Fetch MNIST if needed (verified by sha256) and return where it lives.
fn ensure_data() -> Result<()> {
    let dir = default_dir();
    if organics_data::verify(&dir).is_ok_and(|r| r.is_complete()) {
        return Ok(());
    }
    eprintln!("fetching MNIST into {} ...", dir.display());
    let report = fetch(&dir, Progress::Bar).context("fetching MNIST (organics data fetch)")?;
    for f in &report.failures {
        eprintln!("  source {} failed: {}", f.source, f.reason);
    }
    Ok(())
}

/// Train `row` (or reuse this invocation's earlier run of it).
pub fn train(ctx: &Ctx, row: &Row) -> Result<(RunSummary, f64)> {
    if let Some(hit) = ctx.runs.borrow().get(&row.id) {
        return Ok(hit.clone());
    }
    ensure_data()?;
    let dir = ctx.out.join("runs").join(&row.id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    eprintln!("  training {} ({})", row.id, rows::describe(&row.config));
    let t0 = Instant::now();
    let summary = trainer::run(&row.config, &dir, ProgressMode::Bar)
        .with_context(|| format!("training {}", row.id))?;
    let secs = t0.elapsed().as_secs_f64();
    ctx.runs
        .borrow_mut()
        .insert(row.id.clone(), (summary.clone(), secs));
    Ok((summary, secs))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |a| format!("{:.2}", 100.0 * a))
}

fn acc_cells(s: &RunSummary) -> (String, String) {
    (
        pct(s.best.map(|b| b.test_accuracy)),
        pct(s.final_test_accuracy),
    )
}

/// Table 1 with Figs. 5 and 6.
pub fn table1(ctx: &Ctx) -> Result<Outcome> {
    let mut md = String::from(
        "Test accuracy on MNIST. \"ours (best val.)\" is the test accuracy at the epoch of best validation accuracy, \
         \"ours (last)\" after the last epoch.\n\n| model | paper (%) | ours, best val. (%) | ours, last (%) | parameters | settings | seconds |\n|---|---|---|---|---|---|---|\n\
         | SSN (50:50) | 94.9 | reported by the paper, not rerun | | | | |\n| SSN (80:20) | 95.2 | reported by the paper, not rerun | | | | |\n",
    );
    let mut figures = Vec::new();
    let mut two_layer = None;
    for row in rows::table1(ctx.profile) {
        let (s, secs) = train(ctx, &row)?;
        let (best, last) = acc_cells(&s);
        writeln!(
            md,
            "| {} | {} | {best} | {last} | {} | {} | {secs:.0} |",
            row.label,
            row.paper.map_or("—".into(), |p| format!("{p:.1}")),
            s.parameter_count,
            rows::describe(&row.config)
        )?;
        if row.config.model == ModelKind::Organics2Layer {
            two_layer = Some(s);
        }
    }
    md.push_str("\nParameter counts include the jointly trained autoencoder (784→360→120→40 and back, 662 264 parameters).\n");
    if let Some(s) = two_layer {
        let records = observe::read_observers(&s.out_dir)?;
        figures.extend(figs_5_6(ctx, &records, None, "pipeline_", &mut md)?);
    }
    Ok(Outcome {
        markdown: md,
        figures,
        checks: Vec::new(),
        settings: describe_profile(&rows::table1(ctx.profile)),
    })
}

/// Figs. 5 and 6 of a two-layer run: the histograms of `max Re λ` per layer (from `final_spectra`
/// when given, else from the run's last observer record) and the largest value over the
/// observed inputs at every observed epoch (`records`). Files are `{prefix}fig5a` etc.
pub fn figs_5_6(
    ctx: &Ctx,
    records: &[ObserverRecord],
    final_spectra: Option<&[observe::LayerSpectrum]>,
    prefix: &str,
    md: &mut String,
) -> Result<Vec<std::path::PathBuf>> {
    let mut figures = Vec::new();
    let spectra: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            ObserverRecord::Spectra {
                global_step,
                layers,
                ..
            } => Some((*global_step, layers.clone())),
            _ => None,
        })
        .collect();
    let last = final_spectra.or(spectra.last().map(|(_, l)| l.as_slice()));
    for (k, layer) in last.unwrap_or(&[]).iter().enumerate() {
        let letter = if k == 0 { 'a' } else { 'b' };
        let finite: Vec<f64> = layer
            .max_real
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        figures.extend(plot::save(
            &Histogram {
                title: format!(
                    "Fig. 5{letter}: largest Re λ, layer {} of the trained two-layer model",
                    layer.layer
                ),
                x_label: "max Re λ(J) at the fixed point (1/ms)".into(),
                values: finite.clone(),
                bins: 40,
                color: k,
            },
            &ctx.out.join(format!("{prefix}fig5{letter}")),
        )?);
        writeln!(
            md,
            "\nFig. 5{letter}: layer {} over {} test inputs: {:.1} % stable, max Re λ in [{:.4}, {:.4}] ms⁻¹{}.",
            layer.layer,
            layer.max_real.len(),
            100.0 * layer.stable_fraction,
            finite.iter().copied().fold(f64::INFINITY, f64::min),
            finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            if k == 0 {
                " (paper, layer 1: about [−0.29, −0.235])"
            } else {
                ""
            },
        )?;
    }
    let series: Vec<Series> = (0..spectra.first().map_or(0, |s| s.1.len()))
        .map(|k| {
            Series::line(
                format!("layer {}", k + 1),
                spectra
                    .iter()
                    .map(|(step, l)| (*step as f64, l[k].max_over_inputs))
                    .collect(),
                k,
            )
        })
        .collect();
    if !series.is_empty() {
        figures.extend(plot::save(
            &LineChart {
                title: "Fig. 6: max over test inputs of max Re λ(J) during training".into(),
                x_label: "training step".into(),
                y_label: "max Re λ (1/ms)".into(),
                log_y: false,
                y_range: None,
                series,
            },
            &ctx.out.join(format!("{prefix}fig6a")),
        )?);
        md.push_str("\nFig. 6: every observed epoch of the two-layer model, the largest real part over the observed test inputs (the paper's stays in [−0.3, −0.1]).\n");
    }
    Ok(figures)
}

fn describe_profile(rows: &[Row]) -> String {
    rows.first()
        .map_or(String::new(), |r| rows::describe(&r.config))
}

/// Table 2 with Fig. 7.
pub fn table2(ctx: &Ctx) -> Result<Outcome> {
    let mut md = String::from(
        "Test accuracy on sequential (sMNIST) and permuted sequential (psMNIST) MNIST.\n\n| model | task | paper (%) | ours, best val. (%) | ours, last (%) | units | parameters (paper) | parameters (ours) | s/epoch |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, s, p, units, params) in [
        (
            "LSTM (Arjovsky et al. 2016)",
            "sMNIST / psMNIST",
            "97.3 / 92.6",
            128,
            "68k",
        ),
        (
            "AntisymmetricRNN (Chang et al. 2019)",
            "sMNIST / psMNIST",
            "98.0 / 95.8",
            128,
            "10k",
        ),
        (
            "coRNN (Rusch & Mishra 2020)",
            "sMNIST / psMNIST",
            "99.3 / 96.6",
            128,
            "34k",
        ),
        (
            "Lipschitz RNN (Erichson et al. 2020)",
            "sMNIST / psMNIST",
            "99.4 / 96.3",
            128,
            "34k",
        ),
    ] {
        writeln!(
            md,
            "| {name} | {s} | {p} | reported by the paper | | {units} | {params} | | |"
        )?;
    }
    let mut figures = Vec::new();
    let mut notes = String::new();
    for row in rows::table2(ctx.profile) {
        let (s, _) = train(ctx, &row)?;
        let (best, last) = acc_cells(&s);
        let paper_params = match (row.config.model, row.config.hidden) {
            (ModelKind::Organics, 128) => "100k",
            (ModelKind::Organics, 64) => "26k",
            (ModelKind::Lstm, _) => "68k",
            _ => "—",
        };
        writeln!(
            md,
            "| {} | {} | {} | {best} | {last} | {} | {paper_params} | {} | {} |",
            row.label,
            if row.config.task == Task::Smnist {
                "sMNIST"
            } else {
                "psMNIST"
            },
            row.paper.map_or("—".into(), |p| format!("{p:.1}")),
            row.config.hidden,
            s.parameter_count,
            s.seconds_per_epoch
                .map_or("—".into(), |t| format!("{t:.0}")),
        )?;
        if row.config.model == ModelKind::Organics
            && row.config.hidden == 128
            && row.config.tau == organics_train::config::TauMode::Learned
        {
            let (letter, task) = if row.config.task == Task::Smnist {
                ('a', "sMNIST")
            } else {
                ('b', "psMNIST")
            };
            figures.extend(fig7(
                ctx,
                &s.out_dir,
                &row.config,
                letter,
                task,
                "pipeline_",
                &mut notes,
            )?);
        }
    }
    md.push_str(&notes);
    md.push_str("\nSettings of the trained rows:\n\n");
    for task in [Task::Smnist, Task::Psmnist] {
        if let Some(r) = rows::table2(ctx.profile)
            .into_iter()
            .find(|r| r.config.task == task)
        {
            let name = if task == Task::Smnist {
                "sMNIST"
            } else {
                "psMNIST"
            };
            writeln!(md, "- {name}: {}", rows::describe(&r.config))?;
        }
    }
    Ok(Outcome {
        markdown: md,
        figures,
        checks: Vec::new(),
        settings: describe_profile(&rows::table2(ctx.profile)),
    })
}

/// Fig. 7 of a trained 128-unit ORGaNICs RNN (a run or checkpoint directory; its best
/// checkpoint): the hidden trajectories of test image 0, recomputed. Files `{prefix}fig7{letter}`.
pub fn fig7(
    ctx: &Ctx,
    run: &std::path::Path,
    cfg: &TrainConfig,
    letter: char,
    task: &str,
    prefix: &str,
    md: &mut String,
) -> Result<Vec<std::path::PathBuf>> {
    let loaded = trainer::load(run, 28, 28)?;
    let mnist = Mnist::load(&cfg.data_dir.clone().unwrap_or_else(default_dir))?;
    // One test image, the same for both tasks (index 0 of the test set).
    let trajs = observe::hidden_trajectories(&loaded.trainer.net, &mnist.test, cfg.view, &[0])?;
    let Some(t) = trajs.first() else {
        return Ok(Vec::new());
    };
    let units = t.y.first().map_or(0, |v| v.len());
    let (lo, hi) =
        t.y.iter()
            .flatten()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
    let series: Vec<Series> = (0..units)
        .map(|i| {
            Series::line(
                String::new(),
                t.y.iter()
                    .enumerate()
                    .map(|(k, v)| (k as f64, f64::from(v[i])))
                    .collect(),
                i % 8,
            )
        })
        .collect();
    writeln!(
        md,
        "\nFig. 7{letter} ({task}): the {units} membrane potentials y_t of the trained 128-unit model for test image 0 (label {}) stay in [{lo:.2}, {hi:.2}] over {} steps (paper: about [−5.5, 2.2] sMNIST, [−3.3, 1.9] psMNIST).",
        t.label,
        t.y.len().saturating_sub(1)
    )?;
    plot::save(
        &LineChart {
            title: format!(
                "Fig. 7{letter}: hidden trajectories, {task} (test image 0, label {})",
                t.label
            ),
            x_label: "time step".into(),
            y_label: "membrane potential y".into(),
            log_y: false,
            y_range: None,
            series,
        },
        &ctx.out.join(format!("{prefix}fig7{letter}")),
    )
}

/// Global gradient norm per step without clipping: ORGaNICs against the tanh-RNN and the LSTM.
pub fn gradnorms(ctx: &Ctx) -> Result<Outcome> {
    let t2 = rows::table2(ctx.profile);
    let organics = t2
        .iter()
        .find(|r| r.id == "smnist-organics-128")
        .cloned()
        .context("table 2 row")?;
    let lstm = t2
        .iter()
        .find(|r| r.id == "smnist-lstm-128")
        .cloned()
        .context("table 2 row")?;
    let mut rnn = organics.clone();
    rnn.id = "smnist-rnn-128".into();
    rnn.label = "tanh RNN, n = 128".into();
    rnn.config = TrainConfig {
        model: ModelKind::Rnn,
        ..organics.config.clone()
    };
    let mut series = Vec::new();
    let mut md = String::from(
        "| model | steps | median ‖g‖ | max ‖g‖ | non-finite |\n|---|---|---|---|---|\n",
    );
    for (k, row) in [organics, rnn, lstm].iter().enumerate() {
        let (s, _) = train(ctx, row)?;
        let g = &s.grad_norms;
        let mut sorted: Vec<f64> = g.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let med = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let max = sorted.last().copied().unwrap_or(f64::NAN);
        writeln!(
            md,
            "| {} | {} | {med:.3e} | {max:.3e} | {} |",
            row.label,
            g.len(),
            g.len() - sorted.len()
        )?;
        series.push(Series::line(
            row.label.clone(),
            g.iter()
                .enumerate()
                .map(|(i, &v)| (i as f64 + 1.0, v))
                .collect(),
            k,
        ));
    }
    let figures = plot::save(
        &LineChart {
            title: "Global gradient norm per training step without clipping, sMNIST".into(),
            x_label: "training step".into(),
            y_label: "‖∇ loss‖₂".into(),
            log_y: true,
            y_range: None,
            series,
        },
        &ctx.out.join("extra_gradnorms"),
    )?;
    md.push_str(
        "\nNo run clips its gradients (the paper's claim is that ORGaNICs need no clipping).\n",
    );
    Ok(Outcome {
        markdown: md,
        figures,
        checks: Vec::new(),
        settings: describe_profile(&t2),
    })
}

/// The corrected (√a) against the legacy (diag a) fixed-point layer on the two-layer model.
pub fn legacy(ctx: &Ctx) -> Result<Outcome> {
    let base = rows::table1(ctx.profile)
        .into_iter()
        .find(|r| r.config.model == ModelKind::Organics2Layer)
        .context("table 1 row")?;
    let mut leg = base.clone();
    leg.id = "mnist-organics-2layer-legacy".into();
    leg.config.fixed_point_system = FixedPointSystem::LegacyDiagA;
    let (sa, _) = train(ctx, &base)?;
    let (sl, _) = train(ctx, &leg)?;
    let mut md = String::from(
        "| fixed-point layer | ours, best val. (%) | ours, last (%) |\n|---|---|---|\n",
    );
    for (name, s) in [
        ("corrected: (I − W_r + diag(√a) W_r) y = b z", &sa),
        ("legacy ff.py: (I − W_r + diag(a) W_r) y = b z", &sl),
    ] {
        let (best, last) = acc_cells(s);
        writeln!(md, "| {name} | {best} | {last} |")?;
    }
    md.push_str(
        "\nHow far the legacy iteration lands from a true fixed point is measured on the Fig. 4 ensemble (section Fig. 4): \
         its answer is not a fixed point of the circuit, while the corrected iteration converges to one.\n",
    );
    Ok(Outcome {
        markdown: md,
        figures: Vec::new(),
        checks: Vec::new(),
        settings: rows::describe(&base.config),
    })
}
