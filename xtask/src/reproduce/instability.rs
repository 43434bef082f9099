//! Beyond the paper: for each circuit of the Fig. 4 ensemble, the ‖W_r‖₂ at which its steady
//! state first loses stability, by continuation in the scale of W_r
//! (organics_lyapunov::continuation::first_instability).

use super::{Ctx, Outcome};
use crate::plot::{self, Histogram};
use anyhow::Result;
use organics_core::{Model, ensemble};
use organics_lyapunov::continuation::{
    BifurcationKind, BranchEnd, ContinuationOptions, Parameter, first_instability,
};
use std::fmt::Write as _;

/// The q-quantile of sorted values (linear interpolation between order statistics).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (k, frac) = (pos.floor() as usize, pos - pos.floor());
    if k + 1 < sorted.len() {
        sorted[k] + frac * (sorted[k + 1] - sorted[k])
    } else {
        sorted[k]
    }
}

/// The distribution of the critical ‖W_r‖₂ over the ensemble.
pub fn run(ctx: &Ctx) -> Result<Outcome> {
    // About 20 ms a circuit: the full ensemble in both profiles.
    let trials: u64 = 100;
    let (n, seed, top) = (10, 2024u64, 10.0);
    let opts = ContinuationOptions::default();
    let mut critical = Vec::new();
    let (mut folds, mut hopfs, mut others, mut stable_to_top, mut unseeded) = (0, 0, 0, 0, 0);
    for k in 0..trials {
        // ‖W_r‖₂ = 1 at scale 1, so the scale is the norm.
        let circuit = ensemble::fig4(Model::Main, n, 1.0, seed + k)?;
        let Ok((branch, first)) = first_instability(&circuit, Parameter::WrScale, 1.0, top, &opts)
        else {
            unseeded += 1;
            continue;
        };
        match first {
            Some(b) => {
                match b.kind {
                    BifurcationKind::Fold => folds += 1,
                    BifurcationKind::Hopf => hopfs += 1,
                    BifurcationKind::BranchPoint => others += 1,
                }
                critical.push(b.param);
            }
            None if branch.end == BranchEnd::Boundary => stable_to_top += 1,
            None => others += 1,
        }
    }
    let mut sorted = critical.clone();
    sorted.sort_by(f64::total_cmp);
    let mut md = format!(
        "For each of {trials} Fig. 4-ensemble circuits (N = {n}, main model, ‖z‖ = 1, seeds {seed}..{}), the branch of \
         fixed points through the steady state at ‖W_r‖₂ = 1 is continued in the scale of W_r (pseudo-arclength, \
         organics_lyapunov::continuation) up to ‖W_r‖₂ = {top}; reported is the norm of the first bifurcation at which \
         it stops being stable, located to 1e-6.\n\n\
         | outcome | circuits |\n|---|---|\n| first loss by a Hopf point | {hopfs} |\n| first loss by a fold | {folds} |\n\
         | lost otherwise (branch point, or unlocated) | {others} |\n| stable up to {top} | {stable_to_top} |\n\
         | no steady state at ‖W_r‖₂ = 1 | {unseeded} |\n\n",
        seed + trials - 1
    );
    if !sorted.is_empty() {
        md.push_str("Quantiles over the circuits that lost stability below the top of the range:\n\n| quantile | 0 | 0.1 | 0.25 | 0.5 | 0.75 | 0.9 | 1 |\n|---|---|---|---|---|---|---|---|\n| critical ‖W_r‖₂ |");
        for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
            write!(md, " {:.4} |", quantile(&sorted, q))?;
        }
        md.push('\n');
    }
    let figures = if critical.is_empty() {
        Vec::new()
    } else {
        plot::save(
            &Histogram {
                title: format!(
                    "‖W_r‖₂ at the first loss of stability ({} of {trials} circuits)",
                    critical.len()
                ),
                x_label: "largest singular value of W_r".into(),
                values: critical,
                bins: 20,
                color: 2,
            },
            &ctx.out.join("extra_instability"),
        )?
    };
    Ok(Outcome {
        markdown: md,
        figures,
        checks: Vec::new(),
        settings: format!(
            "{trials} circuits (paper: none; this is beyond the paper), continuation up to ‖W_r‖₂ = {top}"
        ),
    })
}
