//! The sweeps solve of the fixed-point layer's systems `(I − W + diag(d) W) y = c`
//! (`organics_grad::sweeps`), in `f64`: the contraction theorem (the sweeps converge whenever
//! `‖diag(d − 1) W‖₂ < 1`) and agreement with the factorised route, finite differences, the
//! hand-over to LU of the systems whose sweeps do not contract, and bad input.

mod common;

use common::{FD_TOL, Input, input, max_grad_error, uniform};
use organics_grad::sweeps::{SweepReport, SweepSettings};
use organics_grad::{GradError, Tape, Var};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The tolerance of the `f64` sweeps (`8 ε`) with a budget that never binds in these tests
/// (the default budget, `n + 8` sweeps, is about the time of a factorisation; to `8 ε` of
/// `f64` most samples here need more, and would be handed to LU).
fn unlimited() -> SweepSettings {
    SweepSettings {
        tolerance: 8.0 * f64::EPSILON,
        max_sweeps: 10_000,
    }
}

/// A random `n x n` matrix scaled to Frobenius norm `norm`, so `‖W‖₂ ≤ norm`.
fn bounded(r: &mut ChaCha8Rng, n: usize, norm: f64) -> Input {
    let w = uniform(r, n * n, -1.0, 1.0);
    let f = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    input(n, n, w.into_iter().map(|x| x * norm / f).collect())
}

/// The cyclic shift `(W y)_i = y_{i+1 mod n}`: `‖W‖₂ = 1`, and `diag(g) W` has spectral
/// radius `(Π |g_i|)^{1/n}`, so the sweeps of a sample contract exactly when `Π |g_i| < 1`.
fn shift(n: usize) -> Input {
    let mut w = vec![0.0; n * n];
    for i in 0..n {
        w[i * n + (i + 1) % n] = 1.0;
    }
    input(n, n, w)
}

/// How a test solves the systems.
#[derive(Clone, Copy)]
enum Route {
    /// `Tape::diag_gain_sweeps` from `start`, with these settings.
    Sweeps(SweepSettings),
    /// `Tape::diag_gain_solve` (interleaved LU).
    Lu,
}

/// `y`, then the gradients of `Σ y ⊙ R` (a fixed random `R`) with respect to `d`, `W` and `c`,
/// concatenated; and the sweeps' report.
fn solve(
    d: &Input,
    w: &Input,
    c: &Input,
    start: &Input,
    route: Route,
) -> Result<(Vec<f64>, Option<SweepReport>), GradError> {
    let mut t = Tape::<f64>::new();
    let v: Vec<Var> = [d, w, c]
        .iter()
        .map(|x| t.param(x.rows, x.cols, &x.data))
        .collect();
    let s = t.constant(start.rows, start.cols, &start.data);
    let (y, report) = match route {
        Route::Sweeps(settings) => {
            let (y, r) = t.diag_gain_sweeps(v[0], v[1], v[2], s, settings)?;
            (y, Some(r))
        }
        Route::Lu => (t.diag_gain_solve(v[0], v[1], v[2])?, None),
    };
    let weights = uniform(&mut rng(99), d.data.len(), -1.0, 1.0);
    let r = t.constant(d.rows, d.cols, &weights);
    let yr = t.mul(y, r);
    let loss = t.sum(yr);
    t.backward(loss)?;
    let mut out = t.value(y).to_vec();
    for &x in &v {
        out.extend_from_slice(t.grad(x));
    }
    Ok((out, report))
}

/// The largest magnitude in `v`.
fn largest(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// With `‖W‖₂ ≤ 1` and every `|d_i − 1| ≤ q < 1`, `‖diag(d − 1) W‖₂ ≤ q`: the sweeps
    /// contract the 2-norm of their change by `q` every sweep, so every sample converges
    /// (none is handed to LU), within the sweeps that `q` allows, and the solution and the
    /// input gradients equal the factorised route's.
    #[test]
    fn contracting_systems_converge_and_agree_with_lu(
        seed in any::<u64>(),
        rows in 1usize..20,
        n in 1usize..40,
        q in 0.05f64..0.7,
    ) {
        let mut r = rng(seed);
        let d = input(rows, n, uniform(&mut r, rows * n, 1.0 - q, 1.0 + q));
        let w = bounded(&mut r, n, 1.0);
        let c = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
        let start = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
        let settings = unlimited();
        let (a, report) = solve(&d, &w, &c, &start, Route::Sweeps(settings)).unwrap();
        let report = report.unwrap();
        prop_assert_eq!(report.factorised, 0);
        prop_assert_eq!(report.converged, rows);
        // The first change is at most ‖c‖ + (1 + q) ‖y₀‖, each later one at most q times the
        // one before, and the sweeps stop once it is at most 8 ε ‖y‖, where
        // ‖y‖ ≥ ‖c‖ / (1 + q) (as ‖M‖₂ ≤ 1 + q). So the slowest sample needs at most
        // 1 + ln(8 ε / ratio) / ln q sweeps, `ratio` the largest first change over that
        // ‖y‖ bound; one sweep more of slack for the iterate's distance to y.
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let ratio = (0..rows)
            .map(|b| {
                let (cb, sb) = (norm(&c.data[b * n..(b + 1) * n]), norm(&start.data[b * n..(b + 1) * n]));
                (cb + (1.0 + q) * sb) * (1.0 + q) / cb
            })
            .fold(0.0f64, f64::max);
        let allowed = 2.0 + (8.0 * f64::EPSILON / ratio).ln() / q.ln();
        prop_assert!(report.max_sweeps as f64 <= allowed, "{} sweeps, allowed {allowed}", report.max_sweeps);
        let (b, _) = solve(&d, &w, &c, &start, Route::Lu).unwrap();
        // The sweeps stop within q/(1 − q) · 8 ε ‖y‖ ≤ 19 ε ‖y‖ of the solution, and the LU's
        // error is a few ε times the condition number (≤ (1 + q)/(1 − q) ≤ 6 here): 1e-12 of
        // the largest value is a wide margin over both, and a wrong VJP term would be O(1).
        let scale = largest(&b);
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() <= 1e-12 * scale, "{x} vs {y}");
        }
    }

    /// The VJP of the sweeps against central differences: with a budget that never binds
    /// (every sample swept, `|d − 1| ≤ 0.7`), and with the default one (in `f64` most samples
    /// would need more than `n + 8` sweeps, so most are handed to LU: both routes are
    /// differentiated).
    #[test]
    fn sweeps_match_finite_differences(seed in any::<u64>(), rows in 1usize..6, n in 1usize..20) {
        let mut r = rng(seed);
        let d = input(rows, n, uniform(&mut r, rows * n, 0.3, 1.7));
        let w = bounded(&mut r, n, 1.0);
        let c = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
        let start = uniform(&mut r, rows * n, -1.0, 1.0);
        for settings in [unlimited(), SweepSettings::for_scalar::<f64>(n)] {
            let e = max_grad_error(&[d.clone(), w.clone(), c.clone()], &|t, v| {
                let s = t.constant(rows, n, &start);
                t.diag_gain_sweeps(v[0], v[1], v[2], s, settings).unwrap().0
            });
            prop_assert!(e < FD_TOL, "{settings:?}: max scaled gradient error {e:e}");
        }
    }

    /// The start changes the sweeps taken, not the solution (beyond the stopping tolerance).
    #[test]
    fn the_start_changes_only_the_rounding(seed in any::<u64>(), rows in 1usize..10, n in 1usize..30) {
        let mut r = rng(seed);
        let d = input(rows, n, uniform(&mut r, rows * n, 0.5, 1.5));
        let w = bounded(&mut r, n, 1.0);
        let c = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
        let zero = input(rows, n, vec![0.0; rows * n]);
        let far = input(rows, n, uniform(&mut r, rows * n, -100.0, 100.0));
        let (a, _) = solve(&d, &w, &c, &zero, Route::Sweeps(unlimited())).unwrap();
        let (b, _) = solve(&d, &w, &c, &far, Route::Sweeps(unlimited())).unwrap();
        // Each is within q/(1 − q) · 8 ε ‖y‖ ≤ 8 ε ‖y‖ (q ≤ 0.5) of the solution; 1e-12 of the
        // largest value is a wide margin, and a start leaking into the result would be O(1).
        let scale = largest(&a);
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() <= 1e-12 * scale, "{x} vs {y}");
        }
    }
}

/// Samples whose sweeps do not contract are handed to LU, and only they: with the cyclic
/// shift as `W`, a sample's sweeps contract exactly when `Π |d_i − 1| < 1`. Rows 0, 3, 4 and 7
/// have every `|d_i − 1|` in `[1.2, 2]` (the sweeps diverge), the others in `[0, 0.5]`. The
/// handed-over samples come out bit-identical to the factorised route (the same interleaved
/// LU, which gives each system the same bits in any lane); the others agree to rounding.
#[test]
fn systems_that_do_not_contract_are_factorised_and_only_they() {
    let (rows, n) = (9, 20);
    let diverging = [0, 3, 4, 7];
    let mut r = rng(5);
    let mut d = Vec::with_capacity(rows * n);
    for b in 0..rows {
        let (lo, hi) = if diverging.contains(&b) {
            (1.2, 2.0)
        } else {
            (0.0, 0.5)
        };
        for g in uniform(&mut r, n, lo, hi) {
            let sign = if d.len() % 3 == 0 { -1.0 } else { 1.0 };
            d.push(1.0 + sign * g);
        }
    }
    let d = input(rows, n, d);
    let w = shift(n);
    let c = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
    let start = input(rows, n, vec![0.0; rows * n]);
    // A budget that does not bind for the contracting samples (about 50 sweeps to 8 ε in f64).
    let settings = unlimited();
    let (a, report) = solve(&d, &w, &c, &start, Route::Sweeps(settings)).unwrap();
    let report = report.unwrap();
    assert_eq!(report.factorised, diverging.len(), "{report:?}");
    assert_eq!(report.converged, rows - diverging.len(), "{report:?}");
    // Divergence shows in the ratio of the third sweep's change to the second's (> 1).
    assert_eq!(report.abandoned_sweeps, 3 * diverging.len(), "{report:?}");
    let (b, _) = solve(&d, &w, &c, &start, Route::Lu).unwrap();
    let y = rows * n;
    for &s in &diverging {
        assert_eq!(a[s * n..(s + 1) * n], b[s * n..(s + 1) * n], "sample {s}");
    }
    // As in the contraction test: 1e-12 of the largest value.
    let scale = largest(&b);
    for (x, z) in a.iter().zip(&b) {
        assert!((x - z).abs() <= 1e-12 * scale, "{x} vs {z}");
    }
    // Rows of d̄ for the handed-over samples: λ from the same transposed LU solves.
    for &s in &diverging {
        assert_eq!(a[y + s * n..y + (s + 1) * n], b[y + s * n..y + (s + 1) * n]);
    }
}

/// A sample that contracts too slowly to meet the tolerance within the budget is handed to LU
/// as soon as its rate shows it (the third sweep), not after the whole budget.
#[test]
fn slow_samples_are_handed_over_early() {
    let (rows, n) = (2, 12);
    // |d_i − 1| = 0.97: rate 0.97, about 1 100 sweeps to 8 ε against a budget of 20.
    let d = input(rows, n, vec![1.97; rows * n]);
    let w = shift(n);
    let c = input(rows, n, uniform(&mut rng(8), rows * n, -1.0, 1.0));
    let start = input(rows, n, vec![0.0; rows * n]);
    let settings = SweepSettings::for_scalar::<f64>(n);
    assert_eq!(settings.max_sweeps, 20);
    let (a, report) = solve(&d, &w, &c, &start, Route::Sweeps(settings)).unwrap();
    let report = report.unwrap();
    assert_eq!(report.factorised, rows, "{report:?}");
    assert_eq!(report.abandoned_sweeps, 3 * rows, "{report:?}");
    let (b, _) = solve(&d, &w, &c, &start, Route::Lu).unwrap();
    assert_eq!(a, b);
}

/// A NaN gain makes its system singular for the LU it is handed to: the error names the
/// sample. A NaN right-hand side is not an error: that sample's solution is NaN, the others
/// are unaffected (to rounding: a sample's row can move within the GEMM when another sample
/// leaves the sweeps, and faer's tiles may sum it in another order).
#[test]
fn bad_input_is_a_typed_error_or_stays_in_its_sample() {
    let (rows, n) = (5, 7);
    let mut r = rng(9);
    let mut d = input(rows, n, uniform(&mut r, rows * n, 0.5, 1.5));
    let w = bounded(&mut r, n, 1.0);
    let mut c = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
    let start = input(rows, n, vec![0.0; rows * n]);
    let settings = unlimited();
    let (clean, _) = solve(&d, &w, &c, &start, Route::Sweeps(settings)).unwrap();
    c.data[3 * n + 2] = f64::NAN;
    let (y, report) = solve(&d, &w, &c, &start, Route::Sweeps(settings)).unwrap();
    assert_eq!(report.unwrap().factorised, 1);
    for b in 0..rows {
        let row = &y[b * n..(b + 1) * n];
        if b == 3 {
            assert!(row.iter().any(|x| x.is_nan()));
        } else {
            // Both within 19 ε ‖y‖ of the solution (see the contraction test).
            for (x, z) in row.iter().zip(&clean[b * n..(b + 1) * n]) {
                assert!(
                    (x - z).abs() <= 1e-12 * largest(&clean),
                    "sample {b}: {x} vs {z}"
                );
            }
        }
    }
    c.data[3 * n + 2] = 0.0;
    d.data[2 * n + 4] = f64::NAN;
    match solve(&d, &w, &c, &start, Route::Sweeps(settings)) {
        Err(GradError::SingularSystem { sample, .. }) => assert_eq!(sample, 2),
        other => panic!("expected a singular system in sample 2, got {other:?}"),
    }
}
