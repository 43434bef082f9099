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

/// The tableau's defining identities, each checked from its definition: collocation order
/// conditions `Σ_j a_ij c_j^(k−1) = c_i^k / k` (k = 1, 2, 3: the stages are exact for
/// quadratic derivatives), γ₀ an eigenvalue of A (`det(A − γ₀ I) = 0`), and the error weights
/// `d` cancelling cubic solutions (`Σ d_i c_i = −1`, `Σ d_i c_i² = Σ d_i c_i³ = 0`). Tolerance:
/// sums of three O(1) products of constants rounded to double, 1e-14.
#[test]
fn radau5_tableau_satisfies_its_defining_identities() {
    use organics_core::integrate::radau5::{A, C, D, gamma0};
    for k in 1..=3 {
        for i in 0..3 {
            let lhs: f64 = (0..3).map(|j| A[i][j] * C[j].powi(k - 1)).sum();
            let rhs = C[i].powi(k) / f64::from(k);
            assert!((lhs - rhs).abs() < 1e-14, "k {k} row {i}: {lhs} vs {rhs}");
        }
    }
    let g = gamma0();
    let m = |i: usize, j: usize| A[i][j] - if i == j { g } else { 0.0 };
    let det = m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
        - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0));
    assert!(det.abs() < 1e-14, "det(A − γ₀ I) = {det}");
    let moment = |k: i32| (0..3).map(|i| D[i] * C[i].powi(k)).sum::<f64>();
    assert!((moment(1) + 1.0).abs() < 1e-14, "{}", moment(1));
    assert!(moment(2).abs() < 1e-14 && moment(3).abs() < 1e-14);
}

#[test]
fn radau5_is_fifth_order() {
    use organics_core::integrate::Radau5;
    // Steps T/10 .. T/80: errors 1e-4 .. 1e-9, above the Newton stop (1e-14 relative) and
    // rounding, so the slope is the method's.
    let hs = [T_END / 10.0, T_END / 20.0, T_END / 40.0, T_END / 80.0];
    let errs: Vec<f64> = hs
        .iter()
        .map(|&h| global_error(&mut Radau5::fixed(h).unwrap()))
        .collect();
    let slopes: Vec<f64> = errs.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
    let p = slopes.iter().sum::<f64>() / slopes.len() as f64;
    // Asymptotically 5 (Radau IIA with s = 3 has order 2s − 1); the h⁶ term at these steps
    // moves the averaged slope by < 0.2.
    assert!((p - 5.0).abs() < 0.25, "Radau5 order {p}, errors {errs:?}");
    assert_eq!(Radau5::fixed(0.1).unwrap().order(), 5);
}

#[test]
fn radau5_meets_its_tolerance() {
    use organics_core::integrate::Radau5;
    let mut previous = f64::INFINITY;
    for &tol in &[1e-4, 1e-6, 1e-8, 1e-10] {
        let mut s = Radau5::adaptive(tol, tol, 0.1).unwrap();
        let err = global_error(&mut s);
        // As for Dormand–Prince: local error ≤ tol per step over O(10-100) steps of a
        // non-stiff problem keeps the global error within 10 tol.
        assert!(err < 10.0 * tol, "tol {tol}: global error {err}");
        assert!(err < previous, "error must shrink with the tolerance");
        previous = err;
    }
}

/// A stiff circuit: W_r = I (closed-form steady state, docs/model.md § Closed-form steady
/// state), three neurons whose time constants span 1e-6 .. 1 ms. Radau5 integrates it to rest
/// and lands on the closed form; Dormand–Prince, whose step is bounded by stability at
/// ≈ 3.3 τ_min, needs orders of magnitude more steps over the first millisecond alone.
#[test]
fn radau5_integrates_a_stiff_circuit_to_its_closed_form() {
    use faer::Mat;
    use organics_core::integrate::Radau5;
    use organics_core::params::{Circuit, CircuitParts, Model, Recurrence};
    use organics_core::steady_state::closed_form;
    let c = Circuit::new(CircuitParts {
        model: Model::Main,
        tau_y: vec![1e-6, 1e-3, 1.0],
        tau_a: vec![1.0, 1e-6, 1e-3],
        b: vec![0.5, 0.8, 0.3],
        b0: vec![1.0; 3],
        sigma: vec![1.0; 3],
        w_r: Recurrence::Identity,
        w: Mat::from_fn(3, 3, |i, j| if i == j { 0.5 } else { 0.2 }),
        z: vec![0.6, -0.7, 0.4],
    })
    .unwrap();
    let truth = closed_form(&c).unwrap();
    let x0 = vec![0.01; 6];
    // a ≥ b0²σ² = 1, so every mode decays at a rate ≥ about 1/τ_max = 1 per ms: by t = 200 the
    // transient is below e^−100 and what is left is the integrator's error.
    let mut radau = Radau5::adaptive(1e-9, 1e-9, 1e-8).unwrap();
    let run = simulate(&c, &mut radau, &x0, 200.0, 1_000_000).unwrap();
    let end = run.last();
    let err = (0..3)
        .map(|i| {
            (end[i] - truth.y[i])
                .abs()
                .max((end[3 + i] - truth.a[i]).abs())
        })
        .fold(0.0, f64::max);
    // Tolerance 1e-9 per step; the run settles, so errors do not accumulate beyond a few
    // hundred tolerances: 1e-6.
    assert!(err < 1e-6, "Radau5 end state off the closed form by {err}");
    let mut radau1 = Radau5::adaptive(1e-9, 1e-9, 1e-8).unwrap();
    let r1 = simulate(&c, &mut radau1, &x0, 1.0, 1_000_000).unwrap();
    let mut dopri = DormandPrince::new(1e-9, 1e-9, 1e-8).unwrap();
    let d1 = simulate(&c, &mut dopri, &x0, 1.0, 1_000_000).unwrap();
    eprintln!(
        "stiff circuit, t = 0..1 ms: radau5 {} steps ({} rejected, {} LU), dopri5 {} steps ({} rejected); radau5 to t = 200: {} steps, error {err:.2e}",
        r1.steps, radau1.rejected, radau1.factorisations, d1.steps, dopri.rejected, run.steps
    );
    assert!(
        100 * r1.steps < d1.steps,
        "radau5 {} steps vs dopri5 {}",
        r1.steps,
        d1.steps
    );
}
