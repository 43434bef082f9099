//! The analysis experiments: phase portraits (Figs. 1–3) and the stability of random circuits
//! against ‖W_r‖₂ (the paper's conjecture, docs/model.md#general-recurrence), both from organics-lyapunov.

use super::{Check, Ctx, Outcome, Profile};
use crate::plot::{self, LineChart, Series};
use anyhow::Result;
use organics_lyapunov::conjecture::{ConjectureOptions, conjecture_experiment, conjecture_table};
use organics_lyapunov::panels::paper_panels;
use organics_lyapunov::{fixed_points, render_paper_figures};
use std::fmt::Write as _;

/// Figs. 1, 2 (negative drive) and 3: every panel, with its fixed points listed.
pub fn portraits(ctx: &Ctx) -> Result<Outcome> {
    let figures = render_paper_figures(&ctx.out)?;
    let mut md = String::from(
        "Phase portraits of the one-neuron circuit (b = 0.5, w = 1; τ in ms). Fig. 1: z = 1, main model (a–c) and rectified \
         model (d–f); Fig. 2: the same with z = −1; Fig. 3: rectified, w_r = 1, three time-constant ratios. Red stars: stable \
         fixed points; black circles: unstable.\n\n| panel | parameters | fixed points (y, a): kind |\n|---|---|---|\n",
    );
    let mut checks = Vec::new();
    for p in paper_panels() {
        let fps = fixed_points(&p.circuit)?;
        let list: Vec<String> = fps
            .iter()
            .map(|f| format!("({:.4}, {:.4}): {}", f.y, f.a, f.kind.name()))
            .collect();
        writeln!(md, "| {} | {} | {} |", p.name, p.title, list.join("; "))?;
        checks.push(Check::new(
            &format!("{}.fixed_points", p.name),
            fps.len() as f64,
            0.0,
        ));
        if let Some(f) = fps.iter().find(|f| f.stable) {
            checks.push(Check::new(&format!("{}.stable_y", p.name), f.y, 1e-9));
            checks.push(Check::new(
                &format!("{}.stable_max_re", p.name),
                f.max_real,
                1e-6,
            ));
        }
    }
    Ok(Outcome {
        markdown: md,
        figures,
        checks,
        settings: "the paper's parameter sets (docs/model.md#figures); streamline density 1.5"
            .into(),
    })
}

/// The fraction of stable random circuits against ‖W_r‖₂.
pub fn stability_sweep(ctx: &Ctx) -> Result<Outcome> {
    let trials = if ctx.profile == Profile::Quick {
        50
    } else {
        100
    };
    let opts = ConjectureOptions {
        trials,
        ..ConjectureOptions::default()
    };
    let rows = conjecture_experiment(&opts)?;
    let mut md = format!(
        "Random Fig. 4-ensemble circuits (N = {}, ‖z‖ = 1, {trials} per norm, seeds {}..{}) simulated to rest; the end point's \
         Jacobian decides stability. The paper reports 100 % stable at ‖W_r‖₂ = 1 and 2, failures at 3.\n\n",
        opts.n,
        opts.seed,
        opts.seed + trials as u64 - 1
    );
    md.push_str(&conjecture_table(&rows));
    let figures = plot::save(
        &LineChart {
            title: format!(
                "Stable random circuits against ‖W_r‖₂ (N = {}, {trials} each)",
                opts.n
            ),
            x_label: "largest singular value of W_r".into(),
            y_label: "fraction with a stable fixed point".into(),
            log_y: false,
            y_range: Some((0.0, 1.05)),
            series: vec![
                Series::line(
                    "settled by T = 400 ms",
                    rows.iter()
                        .map(|r| (r.wr_norm, r.fraction_stable))
                        .collect(),
                    0,
                ),
                Series::line(
                    "settled by 20 T",
                    rows.iter()
                        .map(|r| (r.wr_norm, r.fraction_stable_late))
                        .collect(),
                    1,
                ),
            ],
        },
        &ctx.out.join("extra_stability"),
    )?;
    let checks = rows
        .iter()
        .flat_map(|r| {
            [
                Check::new(
                    &format!("stability.wr{}.stable", r.wr_norm),
                    r.stable as f64,
                    0.0,
                ),
                Check::new(
                    &format!("stability.wr{}.stable_late", r.wr_norm),
                    r.stable_late as f64,
                    0.0,
                ),
            ]
        })
        .collect();
    Ok(Outcome {
        markdown: md,
        figures,
        checks,
        settings: format!("{trials} circuits per norm (paper: 100)"),
    })
}
