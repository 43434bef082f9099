//! Continuation of one-neuron circuits: the located folds and Hopf points against the
//! conditions that define them, written out here from the model's equations (not from the
//! crate's Jacobian): `f = 0` and `det J = 0` for a fold, `f = 0`, `tr J = 0` and `det J > 0`
//! for a Hopf point.

use organics_core::CircuitSpec;
use organics_lyapunov::LyapunovError;
use organics_lyapunov::continuation::{
    BifurcationKind, BranchEnd, ContinuationOptions, Parameter, continuation, first_instability,
};
use organics_lyapunov::planar::fixed_points;

/// The main-model one-neuron circuit with `w_r = "identity"` (so the w_r scale is w_r itself).
fn circuit(w_r: &str, tau_y: f64, tau_a: f64) -> organics_core::Circuit {
    CircuitSpec::from_json(&format!(
        r#"{{"model": "main", "tau_y": {tau_y}, "tau_a": {tau_a}, "b": 0.5, "b0": 0.5,
            "sigma": 0.1, "w_r": {w_r}, "w": 1.0, "z": [1.0]}}"#
    ))
    .unwrap()
    .build()
    .unwrap()
}

const B: f64 = 0.5;
const Z: f64 = 1.0;
const W: f64 = 1.0;
const BETA: f64 = 0.5 * 0.5 * 0.1 * 0.1;

/// f(y, a) and the Jacobian of the one-neuron main model (Eq. 16) with recurrence `lam`,
/// differentiated by hand: f_y = (−y + b z + (1 − √a) λ y)/τ_y, f_a = (−a + β + w y² a)/τ_a.
fn field(y: f64, a: f64, lam: f64, tau_y: f64, tau_a: f64) -> ([f64; 2], [[f64; 2]; 2]) {
    let s = a.sqrt();
    let f = [
        (-y + B * Z + (1.0 - s) * lam * y) / tau_y,
        (-a + BETA + W * y * y * a) / tau_a,
    ];
    let j = [
        [
            (-1.0 + (1.0 - s) * lam) / tau_y,
            -lam * y / (2.0 * s * tau_y),
        ],
        [2.0 * W * y * a / tau_a, (-1.0 + W * y * y) / tau_a],
    ];
    (f, j)
}

/// Newton on (f_y, f_a, det J) = 0 in (y, a, λ), with a central-difference Jacobian of these
/// three hand-written functions; from `start`.
fn solve_fold(start: [f64; 3]) -> [f64; 3] {
    let g = |v: [f64; 3]| {
        let (f, j) = field(v[0], v[1], v[2], 1.0, 1.0);
        [f[0], f[1], j[0][0] * j[1][1] - j[0][1] * j[1][0]]
    };
    let mut v = start;
    for _ in 0..50 {
        let r = g(v);
        let mut m = [[0.0; 3]; 3];
        for k in 0..3 {
            let h = 1e-6 * (1.0 + v[k].abs());
            let (mut p, mut q) = (v, v);
            p[k] += h;
            q[k] -= h;
            let (gp, gq) = (g(p), g(q));
            for i in 0..3 {
                m[i][k] = (gp[i] - gq[i]) / (2.0 * h);
            }
        }
        // Cramer's rule for the 3 × 3 step.
        let det3 = |m: [[f64; 3]; 3]| {
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
                - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        };
        let d = det3(m);
        let mut step = [0.0; 3];
        for k in 0..3 {
            let mut mk = m;
            for i in 0..3 {
                mk[i][k] = -r[i];
            }
            step[k] = det3(mk) / d;
        }
        for k in 0..3 {
            v[k] += step[k];
        }
        if step.iter().all(|s| s.abs() < 1e-14 * 10.0) {
            break;
        }
    }
    v
}

#[test]
fn the_fold_in_w_r_satisfies_det_j_zero_on_the_branch() {
    // Fig. 1's circuit (b0 = 0.5, σ = 0.1): one fixed point at w_r = 0.5, three at w_r = 4.
    let c = circuit(r#""identity""#, 2.0, 2.0);
    let cont = continuation(
        &c,
        Parameter::WrScale,
        0.5,
        4.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let folds: Vec<_> = cont
        .bifurcations
        .iter()
        .filter(|b| b.kind == BifurcationKind::Fold)
        .collect();
    assert_eq!(folds.len(), 1, "{:?}", cont.bifurcations);
    let fold = folds[0];
    // The conditions solved independently, from the located point (Newton converges to the
    // nearby regular solution of the 3 × 3 system; the fold is a simple root of it).
    let exact = solve_fold([fold.y[0], fold.a[0], fold.param]);
    let (f, j) = field(exact[0], exact[1], exact[2], 1.0, 1.0);
    assert!(f[0].abs() < 1e-13 && f[1].abs() < 1e-13, "{f:?}");
    assert!((j[0][0] * j[1][1] - j[0][1] * j[1][0]).abs() < 1e-12);
    // The command line promises 1e-6 in the parameter.
    assert!(
        (exact[2] - fold.param).abs() < 1e-6,
        "located w_r = {}, condition gives {}",
        fold.param,
        exact[2]
    );
    assert!((exact[0] - fold.y[0]).abs() < 1e-5, "{exact:?} vs {fold:?}");
    // Independent count: the quartic gives one fixed point just below the fold, three above.
    let below = circuit(
        &format!(r#"{{"identity": {}}}"#, fold.param - 1e-4),
        2.0,
        2.0,
    );
    let above = circuit(
        &format!(r#"{{"identity": {}}}"#, fold.param + 1e-4),
        2.0,
        2.0,
    );
    assert_eq!(fixed_points(&below).unwrap().len(), 1);
    assert_eq!(fixed_points(&above).unwrap().len(), 3);
    // Every fixed point at both ends lies on a branch end.
    for (p, at) in [
        (0.5, circuit("0.5", 2.0, 2.0)),
        (4.0, circuit("4.0", 2.0, 2.0)),
    ] {
        for fp in fixed_points(&at).unwrap() {
            let on_branch = cont.branches.iter().any(|b| {
                [b.points.first().unwrap(), b.points.last().unwrap()]
                    .iter()
                    .any(|q| (q.param - p).abs() < 1e-12 && (q.y[0] - fp.y).abs() < 1e-8)
            });
            assert!(on_branch, "fixed point {fp:?} at w_r = {p} is on no branch");
        }
    }
    assert!(cont.branches.iter().all(|b| b.end == BranchEnd::Boundary));
}

#[test]
fn the_hopf_point_in_tau_y_has_zero_trace_and_positive_determinant() {
    // w_r = 3: the fixed point near y = −1 has D = 1 − w_r + w_r √a < 0, so J11 > 0 and the
    // trace J11 + J22 changes sign as τ_y grows (τ_a = 2 fixed) while det J stays positive.
    let (tau_a, lam) = (2.0, 3.0);
    let c = circuit("3.0", 2.0, tau_a);
    let cont = continuation(
        &c,
        Parameter::TauY,
        1.0,
        300.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf: Vec<_> = cont
        .bifurcations
        .iter()
        .filter(|b| b.kind == BifurcationKind::Hopf)
        .collect();
    assert_eq!(hopf.len(), 1, "{:?}", cont.bifurcations);
    let h = hopf[0];
    let (y, a) = (h.y[0], h.a[0]);
    // τ_y where the trace vanishes, in closed form from the hand-written Jacobian (its
    // entries scale as 1/τ_y in the first row): τ_y* = −(τ_y J11) / J22.
    let (f, j1) = field(y, a, lam, 1.0, tau_a);
    assert!(
        f[0].abs() < 1e-12 && f[1].abs() < 1e-12,
        "not a fixed point: {f:?}"
    );
    let tau_star = -j1[0][0] / j1[1][1];
    assert!(
        (tau_star - h.param).abs() < 1e-6,
        "located τ_y = {}, tr J = 0 at {tau_star}",
        h.param
    );
    let (_, j) = field(y, a, lam, tau_star, tau_a);
    let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
    assert!(det > 0.0);
    // The pair at a Hopf point of a planar system is ±i√det.
    let omega = h.omega.unwrap();
    assert!(
        (omega - det.sqrt()).abs() < 1e-6 * det.sqrt(),
        "ω = {omega}, √det = {}",
        det.sqrt()
    );
}

#[test]
fn the_first_instability_in_tau_y_is_the_hopf_point() {
    // The branch through the stable focus near y = −1 at τ_y = 150 (seeded by simulation:
    // the steady state there) loses stability at the same Hopf point going down in τ_y.
    let c = circuit("3.0", 2.0, 2.0);
    let all = continuation(
        &c,
        Parameter::TauY,
        1.0,
        300.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    let hopf = all
        .bifurcations
        .iter()
        .find(|b| b.kind == BifurcationKind::Hopf)
        .unwrap();
    let focus = CircuitSpec::from_json(
        r#"{"model": "main", "tau_y": 150.0, "tau_a": 2.0, "b": 0.5, "b0": 0.5,
            "sigma": 0.1, "w_r": 3.0, "w": 1.0, "z": [1.0]}"#,
    )
    .unwrap()
    .build()
    .unwrap();
    let (branch, first) = first_instability(
        &focus,
        Parameter::TauY,
        150.0,
        1.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    // The steady state may be either stable focus; only the lower one (y < 0) meets the Hopf
    // point, the upper one stays stable down to τ_y = 1.
    match first {
        Some(first) => {
            assert!(first.y[0] < 0.0);
            assert_eq!(first.kind, BifurcationKind::Hopf);
            assert!((first.param - hopf.param).abs() < 1e-6);
            assert_eq!(branch.end, BranchEnd::LostStability);
        }
        None => {
            assert_eq!(branch.end, BranchEnd::Boundary);
            assert!(branch.points.iter().all(|q| q.stable && q.y[0] > 0.0));
        }
    }
}

#[test]
fn bad_intervals_are_typed_errors() {
    let c = circuit(r#""identity""#, 2.0, 2.0);
    let opts = ContinuationOptions::default();
    for (param, from, to) in [
        (Parameter::B, -1.0, 1.0),
        (Parameter::TauA, 1.0, 0.0),
        (Parameter::WrScale, 1.0, 1.0),
        (Parameter::Sigma, f64::NAN, 1.0),
    ] {
        let e = continuation(&c, param, from, to, &opts).unwrap_err();
        assert!(matches!(e, LyapunovError::BadOption { .. }), "{e}");
    }
}

/// n = 50: `examples/circuits/oscillating_main50.json` (main model, ‖W_r‖₂ = 3, a stable limit
/// cycle) is followed in the scale s of W_r from s = 1/3 (‖W_r‖₂ = 1) upwards. The point where
/// its steady state first loses stability is checked independently of the continuation: the
/// steady state at `p* ∓ δ` is found by core's Newton from the reported state, and its spectral
/// abscissa, from the crate's eigensolver on core's analytic Jacobian, changes sign across
/// `p*`; at `p*` the critical pair's `|Im λ|` is the reported frequency.
#[test]
fn the_steady_state_of_a_50_neuron_circuit_loses_stability_at_a_hopf_point() {
    use organics_core::steady_state::{NewtonOptions, newton_polish};
    use organics_lyapunov::spectrum::eigenvalues;
    let path = format!(
        "{}/../../examples/circuits/oscillating_main50.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let c = CircuitSpec::from_json(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(c.n(), 50);
    let (branch, first) = first_instability(
        &c,
        Parameter::WrScale,
        1.0 / 3.0,
        1.0,
        &ContinuationOptions::default(),
    )
    .unwrap();
    assert_eq!(branch.end, BranchEnd::LostStability);
    let h = first.expect("a located bifurcation");
    assert_eq!(h.kind, BifurcationKind::Hopf, "{h:?}");
    let omega = h.omega.unwrap();
    let x_h: Vec<f64> = h.y.iter().chain(&h.a).copied().collect();
    // The spectral abscissa and the critical pair's |Im λ| at the steady state near x_h.
    let spectrum_at = |p: f64| -> (f64, f64) {
        let at = Parameter::WrScale.circuit_at(&c, p).unwrap();
        let ss = newton_polish(&at, &x_h, NewtonOptions::default()).unwrap();
        assert!(ss.converged(), "Newton at s = {p}: {:?}", ss.reason);
        let lams = eigenvalues(&at.jacobian(&ss.state())).unwrap();
        let top = lams
            .iter()
            .max_by(|u, v| u.re.total_cmp(&v.re))
            .copied()
            .unwrap();
        (top.re, top.im.abs())
    };
    // δ = 1e-6 is the location accuracy the command line promises; the crossing speed
    // d(Re λ)/ds is O(0.1) here, so Re λ at p* ± δ is ~1e-7, far above the eigensolver's
    // error on a 100 × 100 Jacobian with O(1) entries (~1e-13).
    let delta = 1e-6;
    let (below, _) = spectrum_at(h.param - delta);
    let (above, _) = spectrum_at(h.param + delta);
    assert!(
        below < 0.0 && above > 0.0,
        "s* = {}: max Re λ {below:e} below, {above:e} above",
        h.param
    );
    // At p* itself Re λ ≈ 0 to the location accuracy (its derivative times ~1e-10), and the
    // reported ω is the pair's imaginary part (it varies at O(1) per unit of s, so 1e-6
    // relative is generous for a point located to ~1e-10).
    let (re, im) = spectrum_at(h.param);
    assert!(re.abs() < 1e-7, "Re λ = {re:e} at s*");
    assert!(
        (im - omega).abs() < 1e-6 * omega,
        "ω = {omega}, |Im λ| = {im}"
    );
}
