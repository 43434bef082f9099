//! Convergence order of the integrators on a problem with a known answer.

use organics_core::integrate::{DormandPrince, Euler, Rk4, Stepper, simulate};
use organics_core::testing::Oscillator;

const PROBLEM: Oscillator = Oscillator {
    omega: 2.0,
    u0: 0.2,
};
const T_END: f64 = 2.0;

fn global_error<S: Stepper>(stepper: &mut S) -> f64 {
    let traj = simulate(&PROBLEM, stepper, &PROBLEM.initial(), T_END, 1_000_000).unwrap();
    let exact = PROBLEM.exact(T_END);
    traj.last()
        .iter()
        .zip(exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Observed order from halving the step: log2(e(h) / e(h/2)), averaged over three halvings.
fn observed_order(make: impl Fn(f64) -> Box<dyn FnMut() -> f64>) -> f64 {
    let hs = [T_END / 50.0, T_END / 100.0, T_END / 200.0, T_END / 400.0];
    let errs: Vec<f64> = hs.iter().map(|&h| make(h)()).collect();
    let slopes: Vec<f64> = errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    slopes.iter().sum::<f64>() / slopes.len() as f64
}

#[test]
fn euler_is_first_order() {
    let p = observed_order(|h| Box::new(move || global_error(&mut Euler::new(h).unwrap())));
    // Asymptotically exactly 1; the O(h²) correction at these step sizes moves it by < 0.05.
    assert!((p - 1.0).abs() < 0.1, "Euler order {p}");
    assert_eq!(Euler::new(0.1).unwrap().order(), 1);
}

#[test]
fn rk4_is_fourth_order() {
    let p = observed_order(|h| Box::new(move || global_error(&mut Rk4::new(h).unwrap())));
    // Errors here are 1e-6 .. 1e-10, far above rounding (1e-15), so the slope is clean.
    assert!((p - 4.0).abs() < 0.2, "RK4 order {p}");
    assert_eq!(Rk4::new(0.1).unwrap().order(), 4);
}

#[test]
fn dormand_prince_meets_its_tolerance() {
    let mut previous = f64::INFINITY;
    for &tol in &[1e-4, 1e-6, 1e-8, 1e-10] {
        let mut s = DormandPrince::new(tol, tol, 0.1).unwrap();
        let err = global_error(&mut s);
        // The controller bounds the local error per step by tol; over a non-stiff problem of
        // length 2 with O(10-100) steps the global error stays within 10 tol.
        assert!(err < 10.0 * tol, "tol {tol}: global error {err}");
        assert!(err < previous, "error must shrink with the tolerance");
        previous = err;
    }
}

#[test]
fn simulate_records_every_kth_step_and_the_end() {
    let mut s = Euler::new(0.1).unwrap();
    let traj = simulate(&PROBLEM, &mut s, &PROBLEM.initial(), 1.05, 3).unwrap();
    // 11 steps (the last one 0.05 long): samples at 0, steps 3, 6, 9 and the end.
    assert_eq!(traj.steps, 11);
    assert_eq!(traj.len(), 5);
    assert!((traj.times[4] - 1.05).abs() < 1e-12);
}

/// `settle` on a system that never rests (the harmonic oscillator, ω = 1, from (1, 0)) runs
/// out of steps and reports the range its state still moves in: over the last tenth of 2 000
/// RK4 steps of 0.05 (t from 90 to 100, more than one period 2π) `x₁ = cos t` and
/// `x₂ = −sin t` both sweep [−1, 1], up to RK4's global error (≈ 1e−5 at h = 0.05) and the
/// sampling of the peaks by steps of 0.05 (cos(0.025) − 1 ≈ −3e−4 at worst).
#[test]
fn settle_reports_the_range_of_a_run_that_never_rests() {
    use organics_core::integrate::{SettleOptions, settle};
    use organics_core::steady_state::StopReason;
    let osc = Oscillator {
        omega: 1.0,
        u0: 0.5,
    };
    let mut stepper = Rk4::new(0.05).unwrap();
    let rep = settle(
        &osc,
        &mut stepper,
        &osc.initial(),
        SettleOptions {
            tol: 1e-8,
            max_steps: 2_000,
        },
    )
    .unwrap();
    assert_eq!(rep.reason, StopReason::MaxIterations);
    let range = rep.range.expect("a range when the budget runs out");
    for r in &range[..2] {
        assert!(
            (r[0] + 1.0).abs() < 1e-3 && (r[1] - 1.0).abs() < 1e-3,
            "{range:?}"
        );
    }
    // The logistic component has settled at 1: its range is a sliver at 1.
    assert!(range[2][1] - range[2][0] < 1e-3 && (range[2][1] - 1.0).abs() < 1e-3);
}
