//! `organics train` / `eval` / `certify` through the binary: bad input exits 2 with one line
//! naming the field, an interrupted run (SIGINT, SIGTERM or SIGHUP partway through an epoch)
//! resumes to the same weights as an uninterrupted one, and the run-directory rules hold
//! (existing directory refused, `--overwrite`, one process per directory, fallback to `best`,
//! truncated metrics, extension, divergence, verified data).

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
        "--data-check",
        DATA_CHECK,
        "--out",
        out,
    ]
}

/// The synthetic IDX files are not MNIST, so their sha256 cannot match: the tests say so.
const DATA_CHECK: &str = "none";

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
        let o = run(&[
            "train",
            "--resume",
            b.to_str().unwrap(),
            "--quiet",
            "--data-check",
            DATA_CHECK,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // Resuming a finished run is refused.
        let o = run(&[
            "train",
            "--resume",
            b.to_str().unwrap(),
            "--quiet",
            "--data-check",
            DATA_CHECK,
        ]);
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
        "--data-check",
        DATA_CHECK,
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
        "--data-check",
        DATA_CHECK,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // W_r = I: every fixed point is stable (docs/model.md#stability-theorem).
    assert!(
        (v["layers"][0]["stable_fraction"].as_f64().unwrap() - 1.0).abs() < f64::EPSILON,
        "{v}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Run-directory rules (README, "Contract"; docs/reliability.md, "Training runs and data").

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// A scratch root holding synthetic MNIST in `mnist/`; returns (root, data dir as text).
fn setup(name: &str) -> (PathBuf, String) {
    let root = common::scratch(name);
    let data = root.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    fake_mnist(&data);
    let d = data.to_str().unwrap().to_string();
    (root, d)
}

/// `train` on the synthetic data (400 training images, 100 steps an epoch) for `epochs`
/// epochs into `out`, with `extra` flags.
fn args(data: &str, out: &Path, epochs: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = train_args(data, out.to_str().unwrap())
        .into_iter()
        .map(String::from)
        .collect();
    let k = v.iter().position(|a| a == "--epochs").unwrap();
    v[k + 1] = epochs.to_string();
    v.extend(extra.iter().map(|s| (*s).to_string()));
    v
}

fn run_s(args: &[String]) -> Output {
    organics().args(args).output().unwrap()
}

/// `o`, after checking that its command exited 0.
fn succeeds(o: Output) -> Output {
    assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
    o
}

/// `train --resume DIR` with `extra` flags.
fn resume(dir: &Path, extra: &[&str]) -> Output {
    let mut v = vec![
        "train".to_string(),
        "--resume".into(),
        dir.to_str().unwrap().into(),
        "--quiet".into(),
        "--data-check".into(),
        DATA_CHECK.into(),
    ];
    v.extend(extra.iter().map(|s| (*s).to_string()));
    run_s(&v)
}

fn spawn(args: &[String]) -> std::process::Child {
    organics()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Step lines flushed to the metrics of the run being written to `out` (the run is staged in a
/// sibling `OUT.new` until its first checkpoint).
fn steps_logged(out: &Path) -> usize {
    let staged = PathBuf::from(format!("{}.new", out.display()));
    [out.join("metrics.jsonl"), staged.join("metrics.jsonl")]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.lines().filter(|l| l.contains("\"step\"")).count())
        .max()
        .unwrap_or(0)
}

/// Waits until the run writing to `out` has flushed `n` steps (it is then past its set-up,
/// signal handlers installed, in the middle of its first epoch).
fn wait_for_steps(out: &Path, n: usize) {
    let t0 = Instant::now();
    while steps_logged(out) < n {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no progress in {}",
            out.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn last_files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let ck = dir.join("checkpoints/last");
    (
        std::fs::read(ck.join("model.safetensors")).unwrap(),
        std::fs::read(ck.join("optimizer.safetensors")).unwrap(),
    )
}

fn metrics_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn global_steps(dir: &Path) -> Vec<u64> {
    metrics_lines(dir)
        .iter()
        .filter(|v| v["type"] == "step")
        .map(|v| v["global_step"].as_u64().unwrap())
        .collect()
}

#[test]
fn an_existing_run_directory_is_refused_unless_overwrite() {
    let (root, d) = setup("cli-exists");
    let a = root.join("a");
    succeeds(run_s(&args(&d, &a, "1", &[])));
    let before = snapshot(&a);
    let o = run_s(&args(&d, &a, "1", &["--seed", "5"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("--overwrite") && err.contains("exists"),
        "{err}"
    );
    assert!(snapshot(&a) == before, "a refused run changed the old one");
    succeeds(run_s(&args(&d, &a, "1", &["--seed", "5", "--overwrite"])));
    assert!(snapshot(&a) != before);
    assert_eq!(json_file(&a.join("config.json"))["seed"], 5);
    // Nothing staged is left next to the run.
    assert!(!root.join("a.new").exists() && !root.join("a.old").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn overwrite_killed_before_its_first_checkpoint_leaves_the_old_run_whole() {
    let (root, d) = setup("cli-overwrite-kill");
    let a = root.join("a");
    succeeds(run_s(&args(&d, &a, "1", &[])));
    let before = snapshot(&a);
    let mut child = spawn(&args(&d, &a, "30", &["--overwrite", "--seed", "3"]));
    wait_for_steps(&a, 20);
    child.kill().unwrap(); // SIGKILL: no handler runs
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the new run was not under way");
    assert!(
        snapshot(&a) == before,
        "the old run was (partly) replaced before the new one's first checkpoint"
    );
    // The killed attempt's staging directory is cleared by the next run.
    succeeds(run_s(&args(&d, &a, "1", &["--overwrite", "--seed", "3"])));
    assert!(!root.join("a.new").exists() && !root.join("a.old").exists());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_second_process_on_a_run_directory_exits_2_naming_the_holder() {
    let (root, d) = setup("cli-lock");
    let b = root.join("b");
    let mut child = spawn(&args(&d, &b, "30", &[]));
    wait_for_steps(&b, 20);
    let holder = format!("pid {}", child.id());
    for o in [run_s(&args(&d, &b, "1", &["--overwrite"])), resume(&b, &[])] {
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&holder) && err.contains("lock"), "{err}");
    }
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The holder's exit releases the lock: the run resumes.
    succeeds(resume(&b, &["--stop-after-steps", "1"]));
    let _ = child.kill();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn sigterm_and_sighup_checkpoint_mid_epoch_and_resume_bitwise() {
    let (root, d) = setup("cli-signals");
    for sig in ["TERM", "HUP"] {
        let c = root.join(sig);
        let child = spawn(&args(&d, &c, "30", &[]));
        wait_for_steps(&c, 30);
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "SIG{sig}: {:?} {}",
            o.status,
            stderr(&o)
        );
        let summary = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(summary.contains("\"interrupted\""), "SIG{sig}: {summary}");
        let state = json_file(&c.join("checkpoints/last/state.json"));
        let g = state["global_step"].as_u64().unwrap();
        assert!(g >= 30, "SIG{sig}: checkpoint at step {g}");
        // Resume to a step inside a later epoch; an uninterrupted run stopped there agrees.
        let target = (g + 125).to_string();
        let o = resume(&c, &["--stop-after-steps", &target]);
        assert!(o.status.success(), "SIG{sig}: {}", stderr(&o));
        let r = root.join(format!("{sig}-ref"));
        succeeds(run_s(&args(&d, &r, "30", &["--stop-after-steps", &target])));
        assert!(
            last_files(&c) == last_files(&r),
            "SIG{sig}: resumed run differs from the uninterrupted one"
        );
        assert_eq!(
            global_steps(&c),
            global_steps(&r),
            "SIG{sig}: metrics differ"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_corrupt_last_falls_back_to_best_and_a_truncated_metrics_line_is_trimmed() {
    let (root, d) = setup("cli-damaged");
    let stop = ["--stop-after-steps", "150"];
    let (a, b, r) = (root.join("a"), root.join("b"), root.join("ref"));
    for dir in [&a, &b] {
        succeeds(run_s(&args(&d, dir, "3", &stop)));
    }
    succeeds(run_s(&args(&d, &r, "3", &["--stop-after-steps", "250"])));

    // a: one flipped byte in last (mid-epoch 2); best holds the end of epoch 1.
    let model = a.join("checkpoints/last/model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let k = bytes.len() - 5;
    bytes[k] ^= 0x55;
    std::fs::write(&model, &bytes).unwrap();
    let o = resume(&a, &["--stop-after-steps", "250"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("best") && err.contains("sha256"),
        "{err}"
    );
    assert!(last_files(&a) == last_files(&r), "fallback run differs");
    assert_eq!(global_steps(&a), (1..=250).collect::<Vec<_>>());

    // b: the last line of metrics.jsonl cut short (a kill during a write).
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(b.join("metrics.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"type\":\"step\",\"epoch\":2,\"st").unwrap();
    drop(f);
    succeeds(resume(&b, &["--stop-after-steps", "250"]));
    assert!(last_files(&b) == last_files(&r), "resumed run differs");
    assert_eq!(global_steps(&b), (1..=250).collect::<Vec<_>>());
    std::fs::remove_dir_all(&root).unwrap();
}

/// A resumed run keeps its saved config: a flag that would change it is refused, naming every
/// such flag, and the run directory is left as it was.
#[test]
fn resume_refuses_flags_that_would_change_the_saved_config() {
    let (root, d) = setup("cli-resume-flags");
    let a = root.join("a");
    succeeds(run_s(&args(&d, &a, "1", &[])));
    let before = snapshot(&a);
    for (extra, named) in [
        (&["--lr", "0.5"][..], "--lr"),
        (
            &["--weight-grad-block", "16", "--threads", "1"][..],
            "--threads --weight-grad-block",
        ),
        (&["--hidden", "7"][..], "--hidden"),
        (&["--epochs", "2", "--seed", "3"][..], "--seed"),
    ] {
        let o = resume(&a, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("`resume`: {named} (")),
            "{extra:?}: {}",
            stderr(&o)
        );
        assert!(
            snapshot(&a) == before,
            "{extra:?} changed the run directory"
        );
    }
    // `--epochs` alone still extends the run.
    succeeds(resume(&a, &["--epochs", "2"]));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn resume_with_epochs_extends_a_finished_run_and_epochs_are_one_based() {
    let (root, d) = setup("cli-extend");
    let (a, r, old) = (root.join("a"), root.join("ref"), root.join("old"));
    succeeds(run_s(&args(&d, &a, "1", &[])));
    let o_ref = succeeds(run_s(&args(&d, &r, "2", &[])));
    let summary: serde_json::Value = serde_json::from_slice(&o_ref.stdout).unwrap();

    succeeds(resume(&a, &["--epochs", "2"]));
    assert!(last_files(&a) == last_files(&r), "extended run differs");
    assert_eq!(json_file(&a.join("config.json"))["epochs"], 2);
    for (extra, why) in [("2", "already finished"), ("1", "epochs")] {
        let o = resume(&a, &["--epochs", extra]);
        assert_eq!(o.status.code(), Some(2), "--epochs {extra}");
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }

    // Epochs are numbered from 1 in metrics.jsonl, the summary, state.json and eval.
    let epochs: Vec<u64> = metrics_lines(&r)
        .iter()
        .filter(|v| v["type"] == "epoch")
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2]);
    let first_step = &metrics_lines(&r)[0];
    assert_eq!(
        (first_step["epoch"].as_u64(), first_step["step"].as_u64()),
        (Some(1), Some(1))
    );
    let best = summary["best"]["epoch"].as_u64().unwrap();
    assert!((1..=2).contains(&best), "{summary}");
    let state = json_file(&r.join("checkpoints/best/state.json"));
    assert_eq!(state["best"][1].as_u64(), Some(best));
    assert_eq!(state["epoch"].as_u64(), Some(best));
    let o = run(&[
        "eval",
        r.to_str().unwrap(),
        "--data-dir",
        &d,
        "--eval-subset",
        "50",
        "--data-check",
        DATA_CHECK,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["epoch"].as_u64(), Some(best));

    // A run written by the format-1 layout (0-based epochs) still resumes, to the same weights,
    // and its metrics are renumbered.
    succeeds(run_s(&args(&d, &old, "2", &["--stop-after-steps", "150"])));
    for ck in ["last", "best"] {
        let p = old.join("checkpoints").join(ck).join("state.json");
        let mut s = json_file(&p);
        s["format"] = 1.into();
        let e = s["best"][1].as_u64().unwrap();
        s["best"][1] = (e - 1).into();
        std::fs::write(&p, serde_json::to_vec_pretty(&s).unwrap()).unwrap();
    }
    let text: String = metrics_lines(&old)
        .into_iter()
        .map(|mut v| {
            let e = v["epoch"].as_u64().unwrap();
            v["epoch"] = (e - 1).into();
            if v["type"] == "step" {
                let s = v["step"].as_u64().unwrap();
                v["step"] = (s - 1).into();
            }
            format!("{v}\n")
        })
        .collect();
    std::fs::write(old.join("metrics.jsonl"), text).unwrap();
    succeeds(resume(&old, &[]));
    assert!(
        last_files(&old) == last_files(&r),
        "format-1 run resumed differently"
    );
    let numbering = |dir: &Path| -> Vec<String> {
        metrics_lines(dir)
            .iter()
            .map(|v| {
                format!(
                    "{} {} {} {}",
                    v["type"], v["epoch"], v["step"], v["global_step"]
                )
            })
            .collect()
    };
    assert_eq!(numbering(&old), numbering(&r));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_diverging_run_exits_1_and_keeps_its_last_finite_checkpoint() {
    let (root, d) = setup("cli-diverge");
    let a = root.join("a");
    // Adam moves every weight by about lr per step: after one step at 1e30 the weights are
    // about 1e30 (finite), and the second step's loss overflows f32.
    let o = run_s(&args(&d, &a, "2", &["--lr", "1e30"]));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("non-finite"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["stopped"], "diverged", "{summary}");
    let ck = a.join("checkpoints/last");
    let bytes = std::fs::read(ck.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, t) in st.tensors() {
        assert!(
            t.data()
                .chunks_exact(4)
                .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
            "{name} holds a non-finite value"
        );
    }
    let state = json_file(&ck.join("state.json"));
    assert_eq!(state["global_step"], summary["global_step"]);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn data_that_is_not_mnist_is_refused_unless_told() {
    let (root, d) = setup("cli-tampered");
    let a = root.join("a");
    let mut plain = args(&d, &a, "1", &[]);
    let k = plain.iter().position(|x| x == "--data-check").unwrap();
    plain.drain(k..k + 2);
    let o = run_s(&plain);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sha256") && err.contains("train-images-idx3-ubyte"),
        "{err}"
    );
    assert!(!a.exists(), "a refused run left a directory");
    succeeds(run_s(&args(&d, &a, "1", &[])));
    for cmd in ["eval", "certify"] {
        let o = run(&[cmd, a.to_str().unwrap(), "--data-dir", &d]);
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).contains("sha256"), "{cmd}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&root).unwrap();
}
