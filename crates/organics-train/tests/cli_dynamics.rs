//! The dynamical-systems commands: `simulate` with initial conditions and radau5,
//! `limit-cycle`, and `fixed-points` beyond one neuron.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn organics(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_organics"))
        .args(args)
        .output()
        .expect("run organics")
}

fn example(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/circuits")
        .join(name);
    root.to_string_lossy().into_owned()
}

fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("organics-dyn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const TWO: &str = r#"{"model":"main","tau_y":2,"tau_a":2,"b":0.5,"b0":0.5,"sigma":0.1,
    "w_r":"identity","w":[[1,0.2],[0.2,1]],"z":[1,-0.5]"#;

/// The first recorded sample is the initial state: flags over the file's "initial" over 0.01.
#[test]
fn simulate_starts_where_it_is_told() {
    let first = |args: &[&str]| {
        let out = organics(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json(&out);
        (v["y"][0].clone(), v["a"][0].clone())
    };
    let plain = file("plain.json", &format!("{TWO}}}"));
    let (y, a) = first(&["simulate", &plain, "--t-end", "0.1"]);
    assert_eq!(
        (y, a),
        (
            serde_json::json!([0.01, 0.01]),
            serde_json::json!([0.01, 0.01])
        )
    );
    let with_init = file(
        "init.json",
        &format!(r#"{TWO},"initial":{{"y":[0.3,-0.2],"a":0.5}}}}"#),
    );
    let (y, a) = first(&["simulate", &with_init, "--t-end", "0.1"]);
    assert_eq!(
        (y, a),
        (
            serde_json::json!([0.3, -0.2]),
            serde_json::json!([0.5, 0.5])
        )
    );
    let (y, a) = first(&[
        "simulate",
        &with_init,
        "--t-end",
        "0.1",
        "--y0",
        "-0.7",
        "--integrator",
        "radau5",
    ]);
    assert_eq!(
        (y, a),
        (
            serde_json::json!([-0.7, -0.7]),
            serde_json::json!([0.5, 0.5])
        )
    );
    let (_, a) = first(&["simulate", &plain, "--t-end", "0.1", "--a0", "[0.1,0.2]"]);
    assert_eq!(a, serde_json::json!([0.1, 0.2]));
}

#[test]
fn bad_initial_conditions_name_their_field() {
    let plain = file("plain2.json", &format!("{TWO}}}"));
    for (args, needle) in [
        (
            vec!["--y0", "[1,2,3]"],
            "--y0: value: expected a number or length 2",
        ),
        (vec!["--a0", "-1"], "--a0: value (must be >= 0)[0] = -1"),
        (
            vec!["--y0", "abc"],
            "--y0: \"abc\": expected a number or a JSON array",
        ),
    ] {
        let mut all = vec!["simulate", plain.as_str(), "--t-end", "1"];
        all.extend(args);
        let out = organics(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(needle), "{err}");
    }
    let bad = file(
        "badinit.json",
        &format!(r#"{TWO},"initial":{{"a":[1,-2]}}}}"#),
    );
    let out = organics(&["simulate", &bad, "--t-end", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("initial.a (must be >= 0)[1] = -2"), "{err}");
}

/// The Radau5 run and an RK4 run with a small step end at the same state (both far below
/// 1e-6 from the exact flow at these settings: RK4 at dt = 0.01 has global error ~1e-10,
/// Radau5 at rtol 1e-10 ~1e-9).
#[test]
fn radau5_agrees_with_rk4() {
    let plain = file("plain3.json", &format!("{TWO}}}"));
    let end = |args: &[&str]| {
        let out = organics(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json(&out);
        let k = v["t"].as_array().unwrap().len() - 1;
        let y: Vec<f64> = v["y"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        y
    };
    let a = end(&[
        "simulate",
        &plain,
        "--t-end",
        "20",
        "--integrator",
        "radau5",
        "--rtol",
        "1e-10",
        "--atol",
        "1e-12",
        "--every",
        "100000",
    ]);
    let b = end(&[
        "simulate", &plain, "--t-end", "20", "--dt", "0.01", "--every", "100000",
    ]);
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn limit_cycle_reports_the_orbit_or_says_the_circuit_settles() {
    let out = organics(&["limit-cycle", &example("oscillating.json")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    for key in [
        "period",
        "amplitude",
        "floquet_multipliers",
        "stable",
        "point",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["amplitude"].as_array().unwrap().len(), 20);
    assert_eq!(v["point"]["y"].as_array().unwrap().len(), 20);
    let out = organics(&["limit-cycle", &example("three_neurons.json")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("settles"), "{err}");
    assert_eq!(json(&out)["settled"], true);
}

/// `a` and `b` are the same circuit file: the same keys and every number equal, except that
/// `w_r`'s entries may differ by a relative 16ε. `w_r = G · (‖W_r‖₂ / ‖G‖₂)` with the spectral
/// norm from faer's SVD, whose last bits depend on which vector kernels ran (AVX2 or AVX-512:
/// measured 3ε between the two); that one scalar factor, rounded differently, moves each entry
/// by a few ulps and nothing else.
fn same_circuit_up_to_the_norm_scaling(a: &Value, b: &Value) {
    let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    fn numbers(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(items) => items.iter().for_each(|x| numbers(x, out)),
            Value::Number(x) => out.push(x.as_f64().unwrap()),
            _ => {}
        }
    }
    for (key, va) in a {
        let vb = &b[key];
        if key != "w_r" || !va.is_array() {
            assert_eq!(va, vb, "{key}");
            continue;
        }
        let (mut xa, mut xb) = (Vec::new(), Vec::new());
        numbers(va, &mut xa);
        numbers(vb, &mut xb);
        assert_eq!(xa.len(), xb.len());
        for (i, (p, q)) in xa.iter().zip(&xb).enumerate() {
            assert!(
                (p - q).abs() <= 16.0 * f64::EPSILON * q.abs(),
                "w_r entry {i}: {p} against {q}"
            );
        }
    }
}

/// `examples/circuits/oscillating_rectified50.json` is the Fig. 4 ensemble's rectified circuit
/// with n = 50, ‖W_r‖₂ = 3 and seed 4228 (the issue's "rectified 50-neuron circuit with
/// ‖W_r‖₂ = 3 that oscillates"), and `organics limit-cycle` finds its stable orbit.
#[test]
fn limit_cycle_on_the_rectified_50_neuron_oscillator() {
    use organics_core::{Model, ensemble};
    let path = example("oscillating_rectified50.json");
    let drawn = ensemble::fig4(Model::Rectified, 50, 3.0, 4228).unwrap();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Both sides go through the same text and parser (serde_json's parse is not always the
    // nearest double, so a parsed file against an unparsed value would differ by an ulp).
    let drawn: Value = serde_json::from_str(&drawn.to_spec().to_json().to_string()).unwrap();
    same_circuit_up_to_the_norm_scaling(&file, &drawn);
    let out = organics(&["limit-cycle", &path]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["stable"], true);
    assert_eq!(v["amplitude"].as_array().unwrap().len(), 50);
    // Shooting converged (residual ≤ 1e-9 (1 + ‖x₀‖∞)) and the trivial multiplier is 1 to the
    // monodromy's accuracy (integration tolerance 1e-11 over ~1e4 steps: 1e-6).
    assert!(v["residual"].as_f64().unwrap() < 1e-8);
    let trivial = v["trivial_multiplier"][0].as_f64().unwrap();
    assert!((trivial - 1.0).abs() < 1e-6, "{trivial}");
    assert!(v["period"].as_f64().unwrap() > 0.0);
}

/// `examples/circuits/stiff_oscillating.json` (a neuron on a Hopf cycle beside one with
/// τ = 1e-3 ms; organics-lyapunov's `radau_shooting_on_a_stiff_circuit_matches_dormand_prince`
/// derives the tolerances): both integrators find the same orbit, Radau in far fewer steps.
#[test]
fn limit_cycle_with_radau5_on_a_stiff_circuit() {
    let run = |integrator: &str| {
        let out = organics(&[
            "limit-cycle",
            &example("stiff_oscillating.json"),
            "--transient",
            "3000",
            "--window",
            "400",
            "--integrator",
            integrator,
        ]);
        assert!(
            out.status.success(),
            "{integrator}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json(&out)
    };
    let (dp, ra) = (run("dopri5"), run("radau5"));
    assert_eq!(ra["integrator"], "radau5");
    assert_eq!(dp["integrator"], "dopri5");
    let period = |v: &Value| v["period"].as_f64().unwrap();
    assert!((period(&dp) - period(&ra)).abs() < 1e-7 * period(&dp));
    let steps = |v: &Value| v["steps"].as_u64().unwrap();
    assert!(
        10 * steps(&ra) < steps(&dp),
        "{} vs {}",
        steps(&ra),
        steps(&dp)
    );
    assert_eq!(ra["stable"], true);
    let out = organics(&[
        "limit-cycle",
        &example("stiff_oscillating.json"),
        "--integrator",
        "bdf",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn fixed_points_beyond_one_neuron() {
    let out = organics(&[
        "fixed-points",
        &example("three_neurons.json"),
        "--starts",
        "16",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["method"], "deflated-newton");
    assert_eq!(v["complete"], false);
    let points = v["fixed_points"].as_array().unwrap();
    assert!(!points.is_empty());
    // The steady state `organics steady-state` reports is among them.
    let ss = json(&organics(&["steady-state", &example("three_neurons.json")]));
    assert!(
        points.iter().any(|p| {
            (0..3)
                .all(|i| (p["y"][i].as_f64().unwrap() - ss["y"][i].as_f64().unwrap()).abs() < 1e-8)
        }),
        "{v}"
    );
    // n = 1 keeps the exact route (no "method" field, the kind of each point).
    let one = json(&organics(&["fixed-points", &example("fig1b.json")]));
    assert_eq!(one["fixed_points"].as_array().unwrap().len(), 3);
    assert!(one["fixed_points"][0].get("kind").is_some());
}
