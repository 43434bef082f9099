//! The deflated-Newton fixed-point search finds every known fixed point of circuits whose fixed
//! points are known by an independent route.

use faer::Mat;
use organics_core::params::{Circuit, CircuitParts, Model, Recurrence};
use organics_core::steady_state::closed_form;
use organics_lyapunov::{SearchOptions, Verdict, search_fixed_points};

fn circuit(w_r: Recurrence, w: Mat<f64>, b0: f64, sigma: f64, z: Vec<f64>) -> Circuit {
    let n = z.len();
    Circuit::new(CircuitParts {
        model: Model::Main,
        tau_y: vec![2.0; n],
        tau_a: vec![2.0; n],
        b: vec![0.5; n],
        b0: vec![b0; n],
        sigma: vec![sigma; n],
        w_r,
        w,
        z,
    })
    .unwrap()
}

/// Whether `x` is within 1e-8 of `[y; a]` (both routes polish to residuals ≈ 1e-15, and the
/// points are well separated and non-degenerate, so their positions agree to ~1e-12).
fn near(x: &[f64], y: &[f64], a: &[f64]) -> bool {
    let n = y.len();
    (0..n).all(|i| (x[i] - y[i]).abs() < 1e-8 && (x[n + i] - a[i]).abs() < 1e-8)
}

/// W_r = I: the fixed point is unique (`a = b₀²σ² + W (bz)²`, `y = bz/√a`, docs/model.md
/// § Closed-form steady state). The search finds it, from most starts, and nothing else.
#[test]
fn w_r_identity_has_one_point_the_closed_form() {
    let w = Mat::from_fn(4, 4, |i, j| 0.2 + 0.1 * ((i + 2 * j) % 3) as f64);
    let c = circuit(Recurrence::Identity, w, 0.5, 0.3, vec![0.7, -0.4, 0.2, 0.5]);
    let truth = closed_form(&c).unwrap();
    let report = search_fixed_points(&c, &SearchOptions::for_circuit(&c)).unwrap();
    assert_eq!(report.points.len(), 1, "{:?}", report.points);
    let p = &report.points[0];
    assert!(near(&p.x, &truth.y, &truth.a), "{:?} vs {truth:?}", p.x);
    assert!(
        p.starts > report.starts / 2,
        "found from {} starts",
        p.starts
    );
    // The W_r = I theorem: stable.
    assert_eq!(p.stability.verdict, Verdict::Stable);
}

/// Two uncoupled copies of one-neuron circuits (diagonal W_r and W): the fixed points of the
/// pair are every pairing of each neuron's own fixed points, which the exact planar route
/// (the quartic, `organics_lyapunov::fixed_points`) gives. With w_r = 2 and b₀σ below
/// 1 − 1/w_r each neuron has three (Fig. 1b), so the pair has nine, of which one is stable.
#[test]
fn uncoupled_pair_has_every_product_point() {
    let single: Vec<_> = PARAMS
        .iter()
        .map(|&(b0, s, z)| {
            let c = circuit(
                Recurrence::Scaled(2.0),
                Mat::from_fn(1, 1, |_, _| 1.0),
                b0,
                s,
                vec![z],
            );
            organics_lyapunov::fixed_points(&c).unwrap()
        })
        .collect();
    assert_eq!((single[0].len(), single[1].len()), (3, 3));
    let report = search_pair(64);
    for p in &single[0] {
        for q in &single[1] {
            let hit = report
                .points
                .iter()
                .find(|f| near(&f.x, &[p.y, q.y], &[p.a, q.a]));
            let Some(hit) = hit else {
                panic!("missed (y, a) = ({}, {}) x ({}, {})", p.y, p.a, q.y, q.a);
            };
            // Stable exactly when both factors are (the Jacobian is block diagonal).
            assert_eq!(
                hit.stability.verdict == Verdict::Stable,
                p.stable && q.stable
            );
        }
    }
    assert_eq!(report.points.len(), 9, "no spurious points");
    let total: usize = report.points.iter().map(|p| p.starts).sum();
    assert_eq!(total + report.newton_failures, report.starts);
}

/// Deflation finds fixed points that plain Newton did not reach from the same starts: from
/// two starts plain Newton reaches at most two of the nine; every point found is one of the
/// known nine, and at least one came from deflation alone. (Deflation with `p = 2`, shift 1
/// finds only some of the rest here: most deflated runs stall; the 64-start search above is
/// what finds all nine.)
#[test]
fn deflation_finds_points_that_plain_newton_missed() {
    let report = search_pair(2);
    assert!(report.points.len() > 2, "{:?}", report.points);
    assert!(
        report
            .points
            .iter()
            .any(|p| p.starts == 0 && p.deflated > 0)
    );
    let known = pair_points();
    for f in &report.points {
        assert!(
            known.iter().any(|(y, a)| near(&f.x, y, a)),
            "not a known point: {:?}",
            f.x
        );
    }
}

const PARAMS: [(f64, f64, f64); 2] = [(0.5, 0.1, 1.0), (0.6, 0.08, 0.8)]; // (b0, σ, z) of each neuron

/// The nine fixed points of the pair from the planar route, with their stability.
fn pair_points() -> Vec<([f64; 2], [f64; 2])> {
    let single: Vec<_> = PARAMS
        .iter()
        .map(|&(b0, s, z)| {
            let c = circuit(
                Recurrence::Scaled(2.0),
                Mat::from_fn(1, 1, |_, _| 1.0),
                b0,
                s,
                vec![z],
            );
            organics_lyapunov::fixed_points(&c).unwrap()
        })
        .collect();
    single[0]
        .iter()
        .flat_map(|p| single[1].iter().map(move |q| ([p.y, q.y], [p.a, q.a])))
        .collect()
}

fn search_pair(starts: usize) -> organics_lyapunov::SearchReport {
    let pair = Circuit::new(CircuitParts {
        model: Model::Main,
        tau_y: vec![2.0; 2],
        tau_a: vec![2.0; 2],
        b: vec![0.5; 2],
        b0: vec![PARAMS[0].0, PARAMS[1].0],
        sigma: vec![PARAMS[0].1, PARAMS[1].1],
        w_r: Recurrence::Scaled(2.0),
        w: Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 }),
        z: vec![PARAMS[0].2, PARAMS[1].2],
    })
    .unwrap();
    let opts = SearchOptions {
        starts,
        ..SearchOptions::for_circuit(&pair)
    };
    search_fixed_points(&pair, &opts).unwrap()
}
