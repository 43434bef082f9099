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
    // auto and simulate are Newton-polished (residual < 1e-12); the paper's algorithm stops
    // once its scaled residual is below 1e-8, and with ‖(τJ)⁻¹‖ = O(10) on this contracting
    // circuit that is within ~1e-7 of the fixed point (measured: 2e-8). Agreement to 1e-6 shows
    // all three found the same fixed point (the others are O(1) away).
    for y in &ys[1..] {
        for (a, b) in y.iter().zip(&ys[0]) {
            assert!((a - b).abs() < 1e-6, "{ys:?}");
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

/// `examples/circuits/oscillating.json` is `ensemble::fig4(Rectified, 20, 3.0, 12)`, found by
/// the seeded search `cargo run -p organics-core --example find_oscillating -- rectified 20 3`:
/// it circles an unstable fixed point forever. `steady-state` must say so (not-settled, with
/// the range the state still moves in) and exit 1, not polish the last state into that fixed
/// point and call it converged; `stability` has no steady state to judge and exits 1 too.
#[test]
fn a_circuit_that_never_rests_is_not_settled() {
    let path = example("oscillating.json");
    let out = organics(&["steady-state", &path]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not-settled"), "{err}");
    let v = json(&out);
    assert_eq!(v["converged"], false);
    assert_eq!(v["reason"], "not-settled");
    // The orbit spans about 0.39 in some variable (the search required > 1e-2).
    let width = ["y", "a"]
        .iter()
        .flat_map(|k| v["range"][k].as_array().unwrap().clone())
        .map(|r| r[1].as_f64().unwrap() - r[0].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(width > 1e-2, "{v}");
    assert_eq!(v["range"]["y"].as_array().unwrap().len(), 20);
    let out = organics(&["stability", &path]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fig. 1b: the paper's iteration lands on a saddle. `--method iterative` reports it with its
/// verdict (unstable, max Re λ > 0) and exits 1; `auto` returns the stable focus with the same
/// verdict and max Re λ as `organics stability`.
#[test]
fn every_steady_state_carries_its_stability() {
    let path = example("fig1b.json");
    let out = organics(&["steady-state", &path, "--method", "iterative"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["converged"], true);
    assert_eq!(v["verdict"], "unstable");
    assert_eq!(v["stable"], false);
    assert!(v["max_real"].as_f64().unwrap() > v["tolerance"].as_f64().unwrap());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unstable"));
    let auto = json(&organics(&["steady-state", &path]));
    let stab = json(&organics(&["stability", &path]));
    assert_eq!(auto["verdict"], "stable");
    for key in ["verdict", "max_real", "tolerance", "y", "a"] {
        assert_eq!(auto[key], stab[key], "{key}: {auto} vs {stab}");
    }
}

/// `--iterations 100000000` on a contracting circuit stops at the tolerance after a handful of
/// iterations instead of running them all (which would take minutes).
#[test]
fn iterative_stops_at_tolerance_however_many_iterations_are_allowed() {
    let start = std::time::Instant::now();
    let out = organics(&[
        "steady-state",
        &example("three_neurons.json"),
        "--method",
        "iterative",
        "--iterations",
        "100000000",
    ]);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["reason"], "converged");
    assert!(v["iterations"].as_u64().unwrap() < 100, "{v}");
    assert!(start.elapsed().as_secs() < 30);
}

/// A run of 10⁷ recorded steps streams as CSV in bounded memory: under a 400 MB address-space
/// limit every row arrives (the header, the start and 10⁷ steps of 0.05, plus possibly one
/// short final step where the rounding of t accumulated, so 10⁷ + 2 or 10⁷ + 3 lines). Held in memory, the samples alone
/// would be 240 MB and their text another ~450 MB. `--format json` refuses such a run up front
/// with the size it would need.
#[test]
fn long_simulations_stream_or_are_refused_up_front() {
    let bin = env!("CARGO_BIN_EXE_organics");
    let path = example("fig1a.json");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 400000; '{bin}' simulate '{path}' --t-end 5e5 --dt 0.05 --csv | wc -l"
        ))
        .output()
        .unwrap();
    let lines: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        (10_000_002..=10_000_003).contains(&lines),
        "{lines} lines; {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rejects(
        &["simulate", &path, "--t-end", "1e6", "--dt", "0.05"],
        "would need 458 MiB",
    );
    let jl = organics(&["simulate", &path, "--t-end", "1", "--format", "jsonl"]);
    assert!(jl.status.success());
    let text = String::from_utf8(jl.stdout).unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // dt = 0.05 τ = 0.1: 10 steps, 11 samples, then the end record.
    assert_eq!(rows.len(), 12);
    assert_eq!(rows[11]["end"]["samples"], 11);
    assert_eq!(rows[3]["y"].as_array().unwrap().len(), 1);
}

/// A reader that stops early (`| head -1`) ends the run quietly with status 0.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_organics"))
        .args([
            "simulate",
            &example("fig1a.json"),
            "--t-end",
            "1e5",
            "--csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "t,y0,a0\n");
    // The reader is dropped here: the pipe is closed while the run still writes.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

/// A numerical failure is status 1, not invalid input: Dormand–Prince with tolerances no step
/// can meet shrinks its step until it underflows.
#[test]
fn step_size_underflow_is_a_failed_computation() {
    let out = organics(&[
        "simulate",
        &example("fig1a.json"),
        "--t-end",
        "1",
        "--integrator",
        "dopri5",
        "--rtol",
        "1e-300",
        "--atol",
        "1e-300",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("step size underflowed"), "{err}");
}

/// A repeated field is refused (it used to be last-one-wins), a byte-order mark is named, and
/// the explicit shorthands read as the old bare numbers did.
#[test]
fn circuit_files_refuse_repeats_and_name_a_bom() {
    rejects(
        &[
            "steady-state",
            &file(
                "dup.json",
                &GOOD.replace(r#""sigma":0.1,"#, r#""sigma":0.1,"sigma":0.2,"#),
            ),
        ],
        "duplicate field \"sigma\"",
    );
    rejects(
        &[
            "steady-state",
            &file("bom.json", &format!("\u{feff}{GOOD}")),
        ],
        "byte-order mark",
    );
    let bare = json(&organics(&["steady-state", &example("fig1b.json")]));
    let explicit = json(&organics(&[
        "steady-state",
        &file(
            "explicit.json",
            r#"{"model":"main","tau_y":2,"tau_a":2,"b":0.5,"b0":0.5,"sigma":0.1,
                "w_r":{"identity":2},"w":{"all":1},"z":[1]}"#,
        ),
    ]));
    assert_eq!(bare["y"], explicit["y"]);
    let help = organics(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains(r#"{"identity": s}"#));
}
