//! Limit cycles: the shooting period against zero crossings of a long simulation, the trivial
//! Floquet multiplier, and a circuit that settles.

use organics_core::CircuitSpec;
use organics_core::VectorField;
use organics_core::integrate::{Rk4, Stepper};
use organics_lyapunov::{CycleIntegrator, CycleOptions, CycleOutcome, limit_cycle};

fn example(name: &str) -> organics_core::Circuit {
    let path = format!(
        "{}/../../examples/circuits/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    CircuitSpec::from_json(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
}

/// `examples/circuits/oscillating.json` (20 rectified neurons, ‖W_r‖₂ = 3) and others: the
/// period from shooting against the mean interval between upward crossings of `y_i` through its mid-range
/// in an independent RK4 run (h = 0.01, after 4000 ms of transient, over 40 periods), for the
/// neuron with the widest swing.
#[test]
fn period_matches_zero_crossings_and_trivial_multiplier_is_one() {
    period_against_zero_crossings("oscillating.json");
}

/// The same checks on `examples/circuits/oscillating_rectified50.json`: the rectified model
/// with n = 50 and ‖W_r‖₂ = 3 (`ensemble::fig4(Rectified, 50, 3.0, 4228)`, found by
/// organics-core's `find_oscillating` example), period ≈ 26.4 ms.
#[test]
fn the_rectified_50_neuron_oscillator_has_a_stable_cycle() {
    period_against_zero_crossings("oscillating_rectified50.json");
}

fn period_against_zero_crossings(name: &str) {
    let c = example(name);
    let x0 = vec![0.01; c.dim()];
    let CycleOutcome::Cycle(cycle) = limit_cycle(&c, &x0, &CycleOptions::for_circuit(&c)).unwrap()
    else {
        panic!("{name} settled");
    };
    let n = c.n();
    // The independent route: a fixed-step simulation and its crossings.
    let h = 0.01;
    let mut s = Rk4::new(h).unwrap();
    let mut x = x0.clone();
    let mut k1 = vec![0.0; c.dim()];
    let mut t = 0.0;
    let mut step = |x: &mut Vec<f64>, t: &mut f64| {
        c.eval(*t, x, &mut k1);
        *t += s.step(&c, *t, x, &k1, h).unwrap();
    };
    while t < 4000.0 {
        step(&mut x, &mut t);
    }
    let span = 40.0 * cycle.period;
    let mut trace = Vec::new();
    let t0 = t;
    while t < t0 + span {
        trace.push((t, x[..n].to_vec()));
        step(&mut x, &mut t);
    }
    let i = (0..n)
        .max_by(|&i, &j| {
            let w = |k: usize| {
                let (lo, hi) = trace
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), s| {
                        (l.min(s.1[k]), u.max(s.1[k]))
                    });
                hi - lo
            };
            w(i).total_cmp(&w(j))
        })
        .unwrap();
    let (lo, hi) = trace
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), s| {
            (l.min(s.1[i]), u.max(s.1[i]))
        });
    let mid = 0.5 * (lo + hi);
    let crossings: Vec<f64> = trace
        .windows(2)
        .filter(|w| w[0].1[i] < mid && w[1].1[i] >= mid)
        .map(|w| {
            let (u, v) = (w[0].1[i] - mid, w[1].1[i] - mid);
            w[0].0 + h * (-u) / (v - u)
        })
        .collect();
    let k = crossings.len();
    let from_crossings = (crossings[k - 1] - crossings[0]) / (k - 1) as f64;
    eprintln!(
        "period: shooting {} (detected {}), zero crossings {from_crossings} over {} crossings; multipliers {:?}",
        cycle.period,
        cycle.detected_period,
        k,
        &cycle.multipliers[..3]
    );
    // Linear interpolation misplaces each crossing by O(h²) ≈ 1e-4 at most; over ~40
    // intervals the mean interval is off by < 1e-5, and RK4's phase drift at h = 0.01 is far
    // smaller: 1e-5 relative.
    assert!(
        (cycle.period - from_crossings).abs() < 1e-5 * cycle.period,
        "shooting {} vs crossings {from_crossings}",
        cycle.period
    );
    // The trivial multiplier: Φ(T) f(x₀) = f(x₀) exactly; numerically the monodromy comes from
    // an integration at tolerance 1e-11 over ~1e4 steps: 1e-6.
    let (re, im) = cycle.multipliers[cycle.trivial];
    assert!(
        (re - 1.0).abs() < 1e-6 && im.abs() < 1e-6,
        "trivial multiplier {re} + {im}i"
    );
    assert!(cycle.residual < 1e-8);
    // The one cycle the simulation falls onto attracts it: stable.
    assert!(cycle.stable);
}

#[test]
fn a_circuit_that_settles_has_no_cycle() {
    let c = example("three_neurons.json");
    let out = limit_cycle(&c, &vec![0.01; c.dim()], &CycleOptions::for_circuit(&c)).unwrap();
    let CycleOutcome::Settled { residual, .. } = out else {
        panic!("three_neurons.json reported a cycle: {out:?}");
    };
    assert!(residual < 1e-8);
}

/// A stiff oscillating circuit: neuron 0 (main model, w_r = 3, τ_y = 50 ms, τ_a = 2 ms) is past
/// the supercritical Hopf point in τ_y (≈ 100 ms, `tests/continuation.rs`) and runs on a
/// stable cycle of period ≈ 55 ms; neuron 1 (w_r = 0.5) is uncoupled and fast, τ = 1e-3 ms, so
/// its eigenvalues near −1e3/ms bound an explicit method's step while the orbit moves on the
/// scale of milliseconds.
fn stiff_oscillator() -> organics_core::Circuit {
    CircuitSpec::from_json(
        r#"{"model": "main", "tau_y": [50.0, 0.001], "tau_a": [2.0, 0.001], "b": 0.5,
            "b0": 0.5, "sigma": 0.1, "w_r": [[3.0, 0.0], [0.0, 0.5]],
            "w": [[1.0, 0.0], [0.0, 1.0]], "z": [1.0, 1.0]}"#,
    )
    .unwrap()
    .build()
    .unwrap()
}

#[test]
fn radau_shooting_on_a_stiff_circuit_matches_dormand_prince() {
    let c = stiff_oscillator();
    let x0 = [-1.0, 0.9, 0.26, 0.01];
    let run = |integrator| {
        let opts = CycleOptions {
            transient: 3000.0,
            window: 400.0,
            integrator,
            ..CycleOptions::for_circuit(&c)
        };
        match limit_cycle(&c, &x0, &opts).unwrap() {
            CycleOutcome::Cycle(cycle) => cycle,
            other => panic!("{integrator:?}: {other:?}"),
        }
    };
    let dp = run(CycleIntegrator::DormandPrince);
    let ra = run(CycleIntegrator::Radau5);
    // Both shoot to ‖φ(x₀,T) − x₀‖∞ ≤ 1e-9 (1 + ‖x₀‖∞) with integration tolerance 1e-11; a
    // period error δT moves the return point by |f| δT with |f| ~ 0.05/ms on this orbit, so
    // the periods agree to ~1e-8 ms; 1e-7 relative leaves a factor of ~100.
    assert!(
        (dp.period - ra.period).abs() < 1e-7 * dp.period,
        "{} vs {}",
        dp.period,
        ra.period
    );
    // The amplitude pass samples every T/2000: a sampled extreme of a near-sinusoid misses the
    // true one by up to A (1 − cos(π/2000)) ≈ 1.2e-6 A, for each run.
    for (u, v) in dp.y_range.iter().zip(&ra.y_range) {
        let amp = (u[1] - u[0]).max(1e-12);
        assert!(
            ((u[1] - u[0]) - (v[1] - v[0])).abs() <= 2.5e-6 * amp,
            "{u:?} vs {v:?}"
        );
    }
    // Multipliers: the trivial one is 1, the slow one (neuron 0's radial direction, ≈ 0.67)
    // agrees between the two monodromies (each accurate to ~1e-8 at integration tolerance
    // 1e-11), and the fast neuron's are e^{−T/τ} ≈ 0.
    for cycle in [&dp, &ra] {
        let (re, im) = cycle.multipliers[cycle.trivial];
        assert!((re - 1.0).abs() < 1e-7 && im.abs() < 1e-7, "{cycle:?}");
        assert!(cycle.stable);
        assert!(cycle.multipliers[2..].iter().all(|m| m.0.hypot(m.1) < 1e-6));
    }
    assert!((dp.multipliers[1].0 - ra.multipliers[1].0).abs() < 1e-7);
    // The point of the implicit method: far fewer steps (each dearer) on the stiff circuit.
    assert!(
        10 * ra.steps < dp.steps,
        "radau5 {} vs dopri5 {} steps",
        ra.steps,
        dp.steps
    );
}
