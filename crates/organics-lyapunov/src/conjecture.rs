//! The paper's conjecture for general W_r (docs/model.md#general-recurrence), measured.
//!
//! Conjecture: with `‖W_r‖₂ ≤ 1` and `‖z‖ ≤ 1` a stable fixed point always exists. The paper
//! reports that 100 % of random circuits had a stable fixed point at `‖W_r‖₂ = 1` and `2`, and
//! that this breaks down at `3`.
//!
//! Protocol (docs/model.md#figures ensemble, [`organics_core::ensemble::fig4`]): N = 10,
//! `b, b0, σ ~ U(0,1)`, `τ_y = τ_a = 2` ms, `W ~ U(0,1)`, `W_r = G/σ_max(G) · ‖W_r‖₂`,
//! `z ~ N(0, I)` with `‖z‖ = 1`. Trial k uses seed `seed + k` at every norm, so the circuits
//! differ between norms only by the scale of W_r. Each circuit is simulated from `0.01` in every
//! variable (adaptive Dormand–Prince, rtol 1e-9) for `T = 200 · max τ` (400 ms, as in the
//! paper's Fig. 4), and
//! - **settled** if the scaled residual `max_i |f_i| τ_i` at T is below `1e-6` (the state moves
//!   by less than a millionth of a unit per time constant);
//! - the settled state is polished by Newton to a residual of 1e-12 and its Jacobian spectrum is
//!   computed: **stable** if the verdict is [`Verdict::Stable`], else **unstable**;
//! - a circuit that did not settle by T is integrated on to `20 T` (8 s): if it settles then, it is
//!   classified the same way but counted as **late** (slow transients near ‖W_r‖₂ ≈ 3 take
//!   longer than the paper's window); otherwise it is **not settled** (oscillating or chaotic:
//!   the row records the largest `|x|` at the end, which shows whether the motion stays bounded).

use crate::error::LyapunovError;
use crate::stability::{Verdict, stability_at};
use organics_core::integrate::{DormandPrince, simulate};
use organics_core::steady_state::{NewtonOptions, newton_polish};
use organics_core::{Model, ensemble};

/// Options of [`conjecture_experiment`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConjectureOptions {
    /// Vector field (the paper uses the main model).
    pub model: Model,
    /// Neurons per circuit (10 in the paper).
    pub n: usize,
    /// Circuits per norm (100 in the paper).
    pub trials: usize,
    /// The values of `‖W_r‖₂`.
    pub norms: Vec<f64>,
    /// Seed of trial 0; trial k uses `seed + k`.
    pub seed: u64,
}

impl Default for ConjectureOptions {
    fn default() -> Self {
        Self {
            model: Model::Main,
            n: 10,
            trials: 100,
            norms: vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
            seed: 2024,
        }
    }
}

/// One row of the experiment: the outcome counts at one `‖W_r‖₂`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConjectureRow {
    /// `‖W_r‖₂`.
    pub wr_norm: f64,
    /// Circuits simulated.
    pub trials: usize,
    /// Settled by T at a fixed point whose linearisation is stable.
    pub stable: usize,
    /// Settled between T and 20 T at a fixed point whose linearisation is stable.
    pub stable_late: usize,
    /// Settled at a point whose linearisation is not stable (marginal or unstable).
    pub unstable: usize,
    /// Did not settle within 20 T.
    pub not_settled: usize,
    /// The largest `max_i |x_i|` at 20 T among the circuits that did not settle (0 if none).
    pub not_settled_max_abs: f64,
    /// `stable / trials`: stable by the paper's window T.
    pub fraction_stable: f64,
    /// `(stable + stable_late) / trials`.
    pub fraction_stable_late: f64,
    /// The largest spectral abscissa among the stable fixed points (closest to instability),
    /// in 1/ms; −∞ if there are none.
    pub worst_stable_abscissa: f64,
}

/// The outcome of one trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TrialOutcome {
    /// Settled (by T, or late: by 20 T) at a linearly stable fixed point.
    Stable {
        /// Its spectral abscissa (1/ms).
        abscissa: f64,
        /// Settled only after T.
        late: bool,
    },
    /// Settled at a point that is not linearly stable; its spectral abscissa.
    Unstable(f64),
    /// Not settled by 20 T.
    NotSettled {
        /// The scaled residual at 20 T (≥ 1e-6, or not finite).
        residual: f64,
        /// `max_i |x_i|` at 20 T.
        max_abs: f64,
    },
}

/// Simulate one circuit of the ensemble and classify its end point (module docs).
///
/// # Errors
/// Circuit construction, integrator and eigensolver errors.
pub fn conjecture_trial(
    model: Model,
    n: usize,
    wr_norm: f64,
    seed: u64,
) -> Result<TrialOutcome, LyapunovError> {
    let circuit = ensemble::fig4(model, n, wr_norm, seed)?;
    let tau_max = circuit
        .tau_y()
        .iter()
        .chain(circuit.tau_a())
        .fold(0.0f64, |m, &t| m.max(t));
    let tau_min = circuit
        .tau_y()
        .iter()
        .chain(circuit.tau_a())
        .fold(f64::INFINITY, |m, &t| m.min(t));
    let mut stepper = DormandPrince::new(1e-9, 1e-12, 0.05 * tau_min)?;
    let t_window = 200.0 * tau_max;
    let mut x = vec![0.01; 2 * n];
    let mut late = false;
    let mut residual = f64::NAN;
    for (stage, t_end) in [(0, t_window), (1, 19.0 * t_window)] {
        let traj = simulate(&circuit, &mut stepper, &x, t_end, usize::MAX)?;
        x = traj.last().to_vec();
        residual = circuit.residual(&x);
        // 1e-6: see the module docs.
        let settled = !traj.stopped_non_finite && residual.is_finite() && residual < 1e-6;
        if settled {
            late = stage == 1;
            break;
        }
        if traj.stopped_non_finite || stage == 1 {
            let max_abs = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            return Ok(TrialOutcome::NotSettled { residual, max_abs });
        }
    }
    debug_assert!(residual < 1e-6);
    let polished = newton_polish(&circuit, &x, NewtonOptions::default())?;
    if polished.converged() {
        x = polished.state();
    }
    let report = stability_at(&circuit, &x)?;
    Ok(if report.verdict == Verdict::Stable {
        TrialOutcome::Stable {
            abscissa: report.max_real,
            late,
        }
    } else {
        TrialOutcome::Unstable(report.max_real)
    })
}

/// Run the experiment: one row per norm.
///
/// # Errors
/// [`LyapunovError::BadOption`] for `n = 0`, no trials or a non-positive norm, and the errors
/// of [`conjecture_trial`].
pub fn conjecture_experiment(
    opts: &ConjectureOptions,
) -> Result<Vec<ConjectureRow>, LyapunovError> {
    if opts.n == 0 || opts.trials == 0 {
        return Err(LyapunovError::BadOption {
            option: if opts.n == 0 { "n" } else { "trials" },
            value: 0.0,
            reason: "must be >= 1",
        });
    }
    let mut rows = Vec::with_capacity(opts.norms.len());
    for &norm in &opts.norms {
        if !(norm.is_finite() && norm > 0.0) {
            return Err(LyapunovError::BadOption {
                option: "wr_norm",
                value: norm,
                reason: "must be a finite number > 0",
            });
        }
        let mut row = ConjectureRow {
            wr_norm: norm,
            trials: opts.trials,
            stable: 0,
            stable_late: 0,
            unstable: 0,
            not_settled: 0,
            not_settled_max_abs: 0.0,
            fraction_stable: 0.0,
            fraction_stable_late: 0.0,
            worst_stable_abscissa: f64::NEG_INFINITY,
        };
        for k in 0..opts.trials {
            match conjecture_trial(opts.model, opts.n, norm, opts.seed.wrapping_add(k as u64))? {
                TrialOutcome::Stable { abscissa, late } => {
                    if late {
                        row.stable_late += 1;
                    } else {
                        row.stable += 1;
                    }
                    row.worst_stable_abscissa = row.worst_stable_abscissa.max(abscissa);
                }
                TrialOutcome::Unstable(_) => row.unstable += 1,
                TrialOutcome::NotSettled { max_abs, .. } => {
                    row.not_settled += 1;
                    row.not_settled_max_abs = row.not_settled_max_abs.max(max_abs);
                }
            }
        }
        row.fraction_stable = row.stable as f64 / row.trials as f64;
        row.fraction_stable_late = (row.stable + row.stable_late) as f64 / row.trials as f64;
        rows.push(row);
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn conjecture_table(rows: &[ConjectureRow]) -> String {
    let mut s = String::from(
        "| ‖W_r‖₂ | trials | stable by T | stable by 20T | unstable | not settled (max abs x) | fraction stable by T | by 20T | worst stable max Re λ (1/ms) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} ({:.2}) | {:.2} | {:.2} | {:.3e} |\n",
            r.wr_norm,
            r.trials,
            r.stable,
            r.stable + r.stable_late,
            r.unstable,
            r.not_settled,
            r.not_settled_max_abs,
            r.fraction_stable,
            r.fraction_stable_late,
            r.worst_stable_abscissa
        ));
    }
    s
}
