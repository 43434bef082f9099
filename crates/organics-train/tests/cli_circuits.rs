//! The `organics` binary on good and bad circuit files: JSON fields of the contract, exit
//! status 2 with one stderr line naming the field for every kind of invalid input.

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

const GOOD: &str = r#"{"model":"main","tau_y":2,"tau_a":2,"b":0.5,"b0":0.5,"sigma":0.1,
    "w_r":"identity","w":[[1,0.2],[0.2,1]],"z":[1,-0.5]}"#;

/// Write `text` to a fresh file in the test's temp dir and return its path.
fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("organics-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn steady_state_prints_the_contract_fields() {
    let out = organics(&["steady-state", &file("good.json", GOOD)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    for key in ["y", "a", "method", "iterations", "residual"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["method"], "closed-form");
    // Divisive normalisation: y_i² = (b z_i)² / (b0²σ² + Σ_j W_ij (b z_j)²) for W_r = I.
    let y0 = v["y"][0].as_f64().unwrap();
    let expected = 0.25 / (0.0025 + 0.25 + 0.2 * 0.0625);
    assert!((y0 * y0 - expected).abs() < 1e-12);
}

#[test]
fn every_method_agrees_on_a_general_circuit() {
    let path = example("three_neurons.json");
    let mut ys = Vec::new();
    for method in ["auto", "iterative", "simulate"] {
        let out = organics(&[
            "steady-state",
            &path,
            "--method",
            method,
            "--iterations",
            "40",
        ]);
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = json(&out);
        ys.push(
            v["y"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect::<Vec<_>>(),
        );
    }
    // auto and simulate are Newton-polished (residual < 1e-12); 40 iterations of the paper's
    // algorithm on this contracting circuit reach ~1e-10. Agreement to 1e-8 shows all three
    // found the same fixed point.
    for y in &ys[1..] {
        for (a, b) in y.iter().zip(&ys[0]) {
            assert!((a - b).abs() < 1e-8, "{ys:?}");
        }
    }
}

#[test]
fn simulate_prints_json_and_csv() {
    let path = example("fig1a.json");
    let out = organics(&[
        "simulate",
        &path,
        "--t-end",
        "10",
        "--dt",
        "0.1",
        "--integrator",
        "euler",
        "--every",
        "10",
    ]);
    assert!(out.status.success());
    let v = json(&out);
    // 100 steps recorded every 10th plus the start: 11 samples.
    assert_eq!(v["t"].as_array().unwrap().len(), 11);
    assert_eq!(v["y"][10].as_array().unwrap().len(), 1);
    let csv = organics(&[
        "simulate",
        &path,
        "--t-end",
        "1",
        "--integrator",
        "dopri5",
        "--csv",
    ]);
    let text = String::from_utf8(csv.stdout).unwrap();
    assert!(text.starts_with("t,y0,a0\n0,0.01,0.01\n"), "{text}");
}

/// Run a bad input; check exit 2, empty stdout and one stderr line containing `needle`.
fn rejects(args: &[&str], needle: &str) {
    let out = organics(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: more than one line: {err}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} does not mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn invalid_circuits_exit_2_naming_the_field() {
    let bad = |name: &str, from: &str, to: &str| file(name, &GOOD.replace(from, to));
    rejects(
        &["steady-state", &file("malformed.json", "{\"model\": ")],
        "malformed JSON",
    );
    rejects(
        &["steady-state", &bad("missing.json", r#""sigma":0.1,"#, "")],
        "sigma: missing field",
    );
    rejects(
        &[
            "steady-state",
            &bad("shape.json", "[[1,0.2],[0.2,1]]", "[[1,0.2,0],[0.2,1,0]]"),
        ],
        "w: expected 2 x 2",
    );
    rejects(
        &[
            "steady-state",
            &bad("tau0.json", r#""tau_y":2"#, r#""tau_y":0"#),
        ],
        "tau_y[0] = 0",
    );
    rejects(
        &[
            "steady-state",
            &bad("negw.json", "[[1,0.2],[0.2,1]]", "[[1,-0.2],[0.2,1]]"),
        ],
        "w[0][1] = -0.2",
    );
    rejects(
        &[
            "steady-state",
            &bad("nan.json", r#""b0":0.5"#, r#""b0":NaN"#),
        ],
        "b0: NaN",
    );
    rejects(
        &["steady-state", &bad("emptyz.json", "[1,-0.5]", "[]")],
        "z: the input drive is empty",
    );
    rejects(
        &["steady-state", &bad("typo.json", r#""b0""#, r#""bo""#)],
        "bo: unknown field",
    );
    rejects(
        &[
            "steady-state",
            &bad("model.json", r#""main""#, r#""mainn""#),
        ],
        "model:",
    );
    rejects(
        &["steady-state", "/nonexistent/circuit.json"],
        "/nonexistent/circuit.json",
    );
    rejects(
        &[
            "steady-state",
            &example("three_neurons.json"),
            "--method",
            "closed-form",
        ],
        "closed-form",
    );
    rejects(
        &["simulate", &file("good2.json", GOOD), "--t-end=-1"],
        "t_end",
    );
    rejects(
        &[
            "simulate",
            &file("good3.json", GOOD),
            "--t-end",
            "1",
            "--dt",
            "0",
        ],
        "dt",
    );
    rejects(
        &[
            "steady-state",
            &file("good4.json", GOOD),
            "--method",
            "magic",
        ],
        "magic",
    );
}

#[test]
fn stability_reports_the_attracting_fixed_point() {
    // Fig. 1b: a stable focus at y > 0 beside two unstable fixed points (spec §C.5).
    let out = organics(&["stability", &example("fig1b.json")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    for key in ["y", "a", "eigenvalues", "max_real", "stable"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["stable"], true);
    assert_eq!(v["eigenvalues"].as_array().unwrap().len(), 2);
    let max_re = v["eigenvalues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_f64().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    assert!((max_re - v["max_real"].as_f64().unwrap()).abs() < 1e-15);
    rejects(
        &[
            "stability",
            &file(
                "bad-stab.json",
                &GOOD.replace(r#""sigma":0.1"#, r#""sigma":-1"#),
            ),
        ],
        "sigma[0] = -1",
    );
}
