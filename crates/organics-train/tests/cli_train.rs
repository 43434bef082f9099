//! `organics train` / `eval` / `certify` through the binary: bad input exits 2 with one line
//! naming the field, and an interrupted run (SIGINT partway through an epoch) resumes to the
//! same final weights as an uninterrupted one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn organics() -> Command {
    Command::new(env!("CARGO_BIN_EXE_organics"))
}

fn run(args: &[&str]) -> Output {
    organics().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_train_flags_exit_2_naming_the_field() {
    for (args, field) in [
        (vec!["train", "--task", "cifar"], "task"),
        (vec!["train", "--task", "mnist", "--model", "lstm"], "model"),
        (
            vec!["train", "--task", "smnist", "--view", "spiral"],
            "spiral",
        ),
        (vec!["train", "--task", "mnist", "--epochs", "0"], "epochs"),
        (vec!["train", "--task", "mnist", "--lr=-1"], "lr"),
        (vec!["train"], "task"),
        (
            vec!["train", "--config", "/nonexistent/config.json"],
            "/nonexistent/config.json",
        ),
        (vec!["eval", "/nonexistent/run"], "/nonexistent/run"),
        (vec!["certify", "/nonexistent/run"], "/nonexistent/run"),
    ] {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
    }
}

/// Writes `count` synthetic images as IDX files (`u8` pixels).
fn write_idx(dir: &Path, images: &str, labels: &str, count: usize, seed: u64) {
    let data = common::synthetic(count, seed);
    let mut img = vec![0, 0, 8, 3];
    let mut lab = vec![0, 0, 8, 1];
    let n = u32::try_from(count).unwrap();
    img.extend(n.to_be_bytes());
    img.extend(28u32.to_be_bytes());
    img.extend(28u32.to_be_bytes());
    lab.extend(n.to_be_bytes());
    for i in 0..count {
        img.extend(data.image(i).iter().map(|&v| (v * 255.0).round() as u8));
        lab.push(data.label(i));
    }
    std::fs::write(dir.join(images), img).unwrap();
    std::fs::write(dir.join(labels), lab).unwrap();
}

fn fake_mnist(dir: &Path) {
    // The paper split holds out 3 000 images, so the training file needs more than that.
    write_idx(
        dir,
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        3_400,
        11,
    );
    write_idx(
        dir,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        100,
        12,
    );
}

fn train_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--task",
        "mnist",
        "--model",
        "organics",
        "--epochs",
        "2",
        "--subset",
        "400",
        "--eval-subset",
        "50",
        "--batch-size",
        "4",
        "--threads",
        "2",
        "--observe-every",
        "0",
        // The paper's split orders the 60 000 real training images; this data is smaller.
        "--split",
        "chacha8:73",
        "--quiet",
        "--data-dir",
        data,
        "--out",
        out,
    ]
}

#[test]
fn sigint_mid_epoch_then_resume_gives_the_uninterrupted_weights() {
    let root = common::scratch("cli-resume");
    let data = root.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    fake_mnist(&data);
    let (a, b): (PathBuf, PathBuf) = (root.join("a"), root.join("b"));
    let d = data.to_str().unwrap();
    let o = run(&train_args(d, a.to_str().unwrap()));
    assert!(o.status.success(), "{}", stderr(&o));

    let child = organics()
        .args(train_args(d, b.to_str().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 100 steps an epoch; interrupt once the run is under way.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("interrupted run: {summary}");
    if summary.contains("\"interrupted\"") {
        let o = run(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", stderr(&o));
        // Resuming a finished run is refused.
        let o = run(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("already finished"));
    } else {
        // The machine was fast enough to finish first; the comparison below still holds.
        assert!(summary.contains("\"finished\""), "{summary}");
    }
    let weights = |p: &Path| std::fs::read(p.join("checkpoints/last/model.safetensors")).unwrap();
    assert!(
        weights(&a) == weights(&b),
        "resumed weights differ from the uninterrupted run"
    );

    // eval reproduces the logged test accuracy of the best epoch; certify reports stability.
    let o = run(&[
        "eval",
        a.to_str().unwrap(),
        "--data-dir",
        d,
        "--eval-subset",
        "50",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.0);
    let o = run(&[
        "certify",
        a.to_str().unwrap(),
        "--data-dir",
        d,
        "--samples",
        "10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // W_r = I: every fixed point is stable (spec §C.2).
    assert!(
        (v["layers"][0]["stable_fraction"].as_f64().unwrap() - 1.0).abs() < f64::EPSILON,
        "{v}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}
