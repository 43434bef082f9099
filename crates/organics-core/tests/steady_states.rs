//! Steady states by independent routes: closed form, time integration, Newton, iteration.

use faer::Mat;
use organics_core::ensemble;
use organics_core::integrate::{DormandPrince, SettleOptions, settle};
use organics_core::params::{Circuit, CircuitParts, Model, Recurrence};
use organics_core::steady_state::{
    IterationStop, IterativeOptions, NewtonOptions, StopReason, closed_form, iterative,
    newton_polish,
};
use organics_core::testing::{Fig4Settings, fig4_trial};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random W_r = I circuit with moderate parameters (so that settling takes at most a few
/// thousand adaptive steps): b, b0, σ ~ U(0.2, 1.2), τ ~ U(1, 5), W ~ U(0, 1), z ~ U(−2, 2).
fn moderate(model: Model, n: usize, seed: u64) -> Circuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut u = |lo: f64, hi: f64| {
        (0..n)
            .map(|_| lo + (hi - lo) * rng.random::<f64>())
            .collect::<Vec<_>>()
    };
    let (b, b0, sigma, tau_y, tau_a, z) = (
        u(0.2, 1.2),
        u(0.2, 1.2),
        u(0.2, 1.2),
        u(1.0, 5.0),
        u(1.0, 5.0),
        u(-2.0, 2.0),
    );
    let wv = u(0.0, 1.0)
        .into_iter()
        .chain(u(0.0, 1.0))
        .collect::<Vec<_>>();
    let mut rng2 = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let w = Mat::from_fn(n, n, |i, j| {
        if i == j {
            wv[i % wv.len()]
        } else {
            rng2.random::<f64>()
        }
    });
    Circuit::new(CircuitParts {
        model,
        tau_y,
        tau_a,
        b,
        b0,
        sigma,
        w_r: Recurrence::Identity,
        w,
        z,
    })
    .unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("tests/proptest-regressions/steady_states.txt"))),
        ..ProptestConfig::default()
    })]

    /// The closed form equals the end point of `settle` (adaptive Dormand-Prince), both models.
    #[test]
    fn closed_form_equals_settled_state(n in 1usize..=64, seed in any::<u64>(), rectified in any::<bool>()) {
        let model = if rectified { Model::Rectified } else { Model::Main };
        let c = moderate(model, n, seed);
        let exact = closed_form(&c).unwrap();
        // The closed form is exact: its residual is rounding only (entries are O(1)-O(10)).
        prop_assert!(exact.residual < 1e-12, "closed-form residual {}", exact.residual);
        let x0 = vec![0.01; 2 * n];
        // An explicit adaptive method near rest takes steps at its stability limit, where the
        // state jitters at about rtol·|x|; the residual floor is then ~rtol·|x|·‖τJ‖, so the
        // stopping tolerance (1e-9) is set well above rtol = 1e-12.
        let mut stepper = DormandPrince::new(1e-12, 1e-12, 0.01).unwrap();
        let rep = settle(&c, &mut stepper, &x0, SettleOptions { tol: 1e-9, max_steps: 200_000 }).unwrap();
        prop_assert_eq!(rep.reason, StopReason::Converged);
        // At the stop, max |f_i| τ_i < 1e-9. The distance to the fixed point is about the
        // residual times ‖(T J)⁻¹‖, whose slowest mode here decays at rate ≥ b0σ ≥ 0.04 per τ:
        // so the distance is below 1e-9 / 0.04 = 2.5e-8; we allow 1e-7.
        let d = max_diff(&rep.state, &exact.state());
        prop_assert!(d < 1e-7, "settled state differs from closed form by {d}");
    }

    /// Newton from a perturbed closed form returns to it.
    #[test]
    fn newton_returns_to_the_closed_form(n in 1usize..=32, seed in any::<u64>()) {
        let c = moderate(Model::Main, n, seed);
        let exact = closed_form(&c).unwrap().state();
        let x0: Vec<f64> = exact.iter().enumerate().map(|(i, v)| v * (1.0 + 0.05 * ((i as f64).sin()))).collect();
        let rep = newton_polish(&c, &x0, NewtonOptions::default()).unwrap();
        prop_assert_eq!(rep.reason, StopReason::Converged);
        // Residual < 1e-12 with a well-conditioned Jacobian (see above): distance < 1e-9.
        prop_assert!(max_diff(&rep.state(), &exact) < 1e-9);
    }
}

#[test]
fn iterative_with_identity_matches_closed_form() {
    let c = moderate(Model::Main, 12, 7);
    let exact = closed_form(&c).unwrap().state();
    let it = iterative(
        &c,
        IterativeOptions {
            stop: IterationStop::Full,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(it.trace.len(), 16);
    // With W_r = I the y-solve is exact given a, so the error is that of the a-sweep, which
    // contracts; 15 sweeps reach well below 1e-6 for this circuit.
    assert!(
        max_diff(&it.report.state(), &exact) < 1e-6,
        "{:?}",
        it.report
    );
}

#[test]
fn rectified_closed_form_handles_negative_drive() {
    let c = moderate(Model::Rectified, 1, 3).with_z(vec![-0.7]).unwrap();
    let ss = closed_form(&c).unwrap();
    // z ≤ 0: y rests at b z, and a at b0²σ² (no rectified drive reaches the pool).
    assert!((ss.y[0] - c.b()[0] * -0.7).abs() < 1e-15);
    assert!((ss.a[0] - c.b0_sigma_sq()[0]).abs() < 1e-15);
    assert!(ss.residual < 1e-14);
}

#[test]
fn closed_form_rejects_general_recurrence() {
    let c = ensemble::fig4(Model::Main, 4, 1.0, 1).unwrap();
    assert!(closed_form(&c).is_err());
    assert!(iterative(&c.with_model(Model::Rectified), IterativeOptions::default()).is_err());
}

/// Fig. 4 (docs/model.md § Iterative algorithm): N = 10, ‖W_r‖₂ = 1, ‖z‖ = 1, 100 seeded
/// circuits, errors measured against the simulated fixed point by `testing::fig4_trial`.
#[test]
fn fig4_iterative_algorithm_reaches_the_simulated_fixed_point() {
    let settings = Fig4Settings {
        legacy_iterations: 15,
        ..Fig4Settings::default()
    };
    let mut ok = 0;
    let mut legacy_ok = 0;
    let mut legacy_errors = Vec::new();
    for seed in 0..100 {
        let Some(trial) = fig4_trial(settings, seed).unwrap() else {
            continue;
        };
        // ε_y and ε_a as in the paper: Euclidean distance after at most 15 iterations.
        let reached = |e: Vec<(f64, f64)>| e.iter().any(|&(ey, ea)| ey < 1e-4 && ea < 1e-4);
        if reached(trial.errors()) {
            ok += 1;
        }
        if reached(trial.legacy_errors()) {
            legacy_ok += 1;
        }
        legacy_errors.push(trial.legacy_errors().last().map_or(f64::NAN, |e| e.0));
    }
    assert!(
        ok >= 95,
        "only {ok}/100 circuits reached 1e-4 within 15 iterations"
    );
    assert!(
        legacy_ok < 95,
        "the legacy diag(a) variant unexpectedly converged on {legacy_ok}/100"
    );
    legacy_errors.sort_by(f64::total_cmp);
    // The legacy map's mean ‖Δy‖ is about 0.08 on this ensemble; its median is far above 1e-4.
    assert!(
        legacy_errors[legacy_errors.len() / 2] > 1e-2,
        "legacy median error {}",
        legacy_errors[legacy_errors.len() / 2]
    );
}

/// `solve(Auto)` reaches a true fixed point (residual < 1e-12, the Newton tolerance) on general
/// W_r circuits of both models, and `Simulate` agrees with it.
#[test]
fn auto_and_simulate_agree_on_general_recurrence() {
    use organics_core::steady_state::{Method, solve};
    for seed in 0..10 {
        for model in [Model::Main, Model::Rectified] {
            let c = ensemble::fig4(model, 8, 1.0, seed).unwrap();
            let auto = solve(&c, Method::Auto).unwrap();
            assert!(auto.converged() && auto.residual < 1e-12, "{auto:?}");
            let sim = solve(&c, Method::Simulate).unwrap();
            assert!(sim.converged(), "{sim:?}");
            // Both are Newton-polished to residual < 1e-12; with ‖(τJ)⁻¹‖ = O(10) here they
            // agree to ~1e-11 unless they found different fixed points.
            assert!(
                max_diff(&auto.state(), &sim.state()) < 1e-8,
                "seed {seed} {model:?}"
            );
        }
    }
}

/// The iteration stops once its residual is below the tolerance: a budget of 100 000
/// iterations on a contracting circuit ends after a handful, converged, with the same answer as
/// a run of exactly that many iterations.
#[test]
fn iterative_stops_at_its_tolerance() {
    let c = ensemble::fig4(Model::Main, 6, 0.5, 2).unwrap();
    let capped = iterative(
        &c,
        IterativeOptions {
            iterations: 100_000,
            ..Default::default()
        },
    )
    .unwrap();
    let r = &capped.report;
    assert_eq!(r.reason, StopReason::Converged, "{r:?}");
    assert!(r.residual < 1e-8 && r.iterations < 100, "{r:?}");
    assert_eq!(capped.trace.len(), r.iterations + 1);
    let full = iterative(
        &c,
        IterativeOptions {
            iterations: r.iterations,
            stop: IterationStop::Full,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(full.report.state(), r.state());
}
