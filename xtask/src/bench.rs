//! `cargo xtask bench`: the training-step benchmarks of organics-grad, one line each,
//! `NAME: median_s=<seconds> gflops=<GFLOP/s>`, then the ratios a reader wants: the training
//! step against the GEMM roofline, and (with `--torch`, `--jax`) against PyTorch and JAX/XLA
//! on the same machine.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What a benchmark line measures besides its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Achieved GFLOP/s (`gflops=`): a step or a roofline.
    Gflops(f64),
    /// Achieved GB/s (`gbps=`): a pass bound by memory traffic.
    Gbps(f64),
}

/// One parsed benchmark line.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    /// Median seconds.
    pub median_s: f64,
    /// Its rate.
    pub rate: Rate,
}

impl Line {
    /// Achieved GFLOP/s, for a line that counts floating-point operations.
    pub fn gflops(&self) -> Option<f64> {
        match self.rate {
            Rate::Gflops(g) => Some(g),
            Rate::Gbps(_) => None,
        }
    }

    /// The line as the report prints it.
    fn show(&self, name: &str) -> String {
        match self.rate {
            Rate::Gflops(g) => format!("{name}: median_s={:.6} gflops={g:.2}", self.median_s),
            Rate::Gbps(b) => format!("{name}: median_s={:.6} gbps={b:.2}", self.median_s),
        }
    }
}

/// Parse `NAME: median_s=X gflops=Y` and `NAME: median_s=X gbps=Y` lines; other lines are
/// ignored.
pub fn parse(text: &str) -> BTreeMap<String, Line> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let Some((name, rest)) = l.split_once(": ") else {
            continue;
        };
        let mut median = None;
        let mut rate = None;
        for kv in rest.split_whitespace() {
            match kv.split_once('=') {
                Some(("median_s", v)) => median = v.parse().ok(),
                Some(("gflops", v)) => rate = v.parse().ok().map(Rate::Gflops),
                Some(("gbps", v)) => rate = v.parse().ok().map(Rate::Gbps),
                _ => {}
            }
        }
        if let (Some(median_s), Some(rate)) = (median, rate) {
            out.insert(name.trim().to_string(), Line { median_s, rate });
        }
    }
    out
}

fn run_capture(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a Python reference script with `python` (the value of `$var`; python3 when unset) and print
/// its lines (`--quick` passed on when `quick`); `None`, after a line saying so, when `module`
/// is not importable there.
fn reference(
    root: &Path,
    python: Option<String>,
    var: &str,
    module: &str,
    script: &str,
    quick: bool,
) -> Result<Option<BTreeMap<String, Line>>> {
    let python = python.unwrap_or_else(|| "python3".to_string());
    let probe = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!(
            "{module}: not available ({python} -c 'import {module}' failed; set {var} to a python with {module}); skipping {script}"
        );
        return Ok(None);
    }
    let mut py = Command::new(&python);
    py.arg(script).current_dir(root);
    if quick {
        py.arg("--quick");
    }
    let text = run_capture(&mut py, script)?;
    for note in text.lines().filter(|l| l.starts_with("# ")) {
        println!("{note}");
    }
    let parsed = parse(&text);
    for (name, l) in &parsed {
        println!("{}", l.show(name));
    }
    Ok(Some(parsed))
}

/// `ratio {prefix}/organics NAME: X.XXx` (their median time over ours) for each of `names`
/// that both `ours` and `theirs` (as `{prefix}_NAME`) measured.
fn print_ratios(
    prefix: &str,
    names: &[&str],
    ours: &BTreeMap<String, Line>,
    theirs: &BTreeMap<String, Line>,
) {
    for name in names {
        if let (Some(o), Some(t)) = (ours.get(*name), theirs.get(&format!("{prefix}_{name}"))) {
            println!(
                "ratio {prefix}/organics {name}: {:.2}x",
                t.median_s / o.median_s
            );
        }
    }
}

/// Steps measured against the GEMMs they execute (same shapes, count and per-thread split),
/// printed as a percentage: step, roofline.
const ROOFLINES: &[(&str, &str)] = &[
    ("train_step_1t", "gemm_roofline_1t"),
    ("train_step_2t", "gemm_roofline_2t"),
    ("static_step_early", "static_gemm_roofline"),
    ("static_step_late", "static_gemm_roofline"),
];

/// Each GEMM roofline beside the processor's measured multiply-add peak on the same number of
/// threads (organics-grad's `fma_peak_{1,2}t`; the static bench runs on 2 threads): how far
/// the GEMMs themselves run from what the cores can do.
const PEAKS: &[(&str, &str)] = &[
    ("gemm_roofline_1t", "fma_peak_1t"),
    ("gemm_roofline_2t", "fma_peak_2t"),
    ("static_gemm_roofline", "fma_peak_2t"),
];

/// The [`PEAKS`] lines of a report, for the pairs whose lines are both there.
fn peak_report(lines: &BTreeMap<String, Line>) -> Vec<String> {
    let get = |name: &str| lines.get(name).and_then(Line::gflops);
    PEAKS
        .iter()
        .filter_map(|&(roof, peak)| {
            let (r, p) = (get(roof)?, get(peak)?);
            Some(format!(
                "ratio {roof}/{peak}: {:.1} % of the cores' measured multiply-add peak",
                100.0 * r / p
            ))
        })
        .collect()
}

/// The processor in words, for the report's first line: `model name`, family and model of
/// `/proc/cpuinfo`'s first processor (`cpuinfo`: its text, empty where there is none), the
/// L2 and L3 sizes when known, and the logical CPUs this process may use.
fn describe_cpu(cpuinfo: &str, caches: &[(&str, String)], threads: usize) -> String {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let mut out = match field("model name") {
        Some(name) => format!(
            "{name} (family {}, model {})",
            field("cpu family").unwrap_or_else(|| "?".into()),
            field("model").unwrap_or_else(|| "?".into())
        ),
        None => "unknown processor".to_string(),
    };
    for (level, size) in caches {
        out.push_str(&format!(", {level} {size}"));
    }
    let avx512 = field("flags").map(|f| f.split_whitespace().any(|x| x == "avx512f"));
    match avx512 {
        Some(true) => out.push_str(", AVX-512"),
        Some(false) => out.push_str(", no AVX-512"),
        None => {}
    }
    out.push_str(&format!(", {threads} logical CPUs"));
    out
}

/// [`describe_cpu`] of this machine (Linux's `/proc` and `/sys`; elsewhere the CPU count).
fn this_cpu() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let caches: Vec<(&str, String)> = [("L2", "index2"), ("L3", "index3")]
        .into_iter()
        .filter_map(|(level, index)| {
            let path = format!("/sys/devices/system/cpu/cpu0/cache/{index}/size");
            Some((
                level,
                std::fs::read_to_string(path).ok()?.trim().to_string(),
            ))
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    describe_cpu(&cpuinfo, &caches, threads)
}

/// A step, its GEMM roofline, and a pass that the step makes besides its GEMMs and that no
/// implementation of the same training can skip: the memory traffic of the states BPTT
/// stores, or Adam's update. The two run one after the other on the same cores, so
/// `roofline + floor` bounds the step's time from below, more tightly than the roofline.
#[derive(Debug, Clone, Copy)]
struct Floor {
    step: &'static str,
    roofline: &'static str,
    floor: &'static str,
    /// What the floor line measures, in words.
    what: &'static str,
    /// The speed-up targets over the references (`prefix`, target), for [`print_ceilings`].
    targets: &'static [(&'static str, f64)],
    /// Where the bench has them: the roofline's GEMMs placed in memory as the step places
    /// them (each layer's own weights, rows another thread wrote), with nothing else; and the
    /// same GEMMs followed by the floor's pass on what they read and wrote. Slower than the
    /// roofline, whose operands stay in each thread's cache, and still floors: the second
    /// bounds the step's time from below most tightly.
    placed: Option<Placed>,
}

/// The bench lines of [`Floor::placed`].
#[derive(Debug, Clone, Copy)]
struct Placed {
    /// The GEMMs alone.
    gemms: &'static str,
    /// The GEMMs, then the floor's pass.
    then_floor: &'static str,
}

/// The fraction of its roofline a step is to reach (issue 16). It leaves the step
/// `1/0.85 − 1` of the roofline's time for everything besides its GEMMs.
const ROOFLINE_TARGET: f64 = 0.85;

const FLOORS: &[Floor] = &[
    Floor {
        step: "train_step_1t",
        roofline: "gemm_roofline_1t",
        floor: "state_traffic_1t",
        what: "the stored states' memory traffic",
        targets: &[("torch", 8.0), ("jax", 5.0)],
        placed: None,
    },
    Floor {
        step: "train_step_2t",
        roofline: "gemm_roofline_2t",
        floor: "state_traffic_2t",
        what: "the stored states' memory traffic",
        targets: &[("torch", 8.0), ("jax", 5.0)],
        placed: None,
    },
    Floor {
        step: "static_step_early",
        roofline: "static_gemm_roofline",
        floor: "static_adam",
        what: "Adam's update",
        targets: &[("torch", 2.0)],
        placed: Some(Placed {
            gemms: "static_gemm_placed",
            then_floor: "static_gemm_placed_adam",
        }),
    },
];

impl Floor {
    /// The floor against the room the 85 % target leaves, and the step against roofline plus
    /// floor, as two report lines (`None` when a line is missing).
    fn report(&self, lines: &BTreeMap<String, Line>) -> Option<String> {
        let (s, r, f) = (
            lines.get(self.step)?.median_s,
            lines.get(self.roofline)?.median_s,
            lines.get(self.floor)?.median_s,
        );
        let room = 1.0 / ROOFLINE_TARGET - 1.0;
        Some(format!(
            "ratio {floor}/{roof}: {:.1} % ({what}, with nothing else; the {:.0} % target leaves \
             the step {:.1} % of its roofline beyond the GEMMs)\n\
             ratio {step}/({roof} + {floor}): {:.1} % (the GEMMs and {what} alone, one after the \
             other)",
            100.0 * f / r,
            100.0 * ROOFLINE_TARGET,
            100.0 * room,
            100.0 * (r + f) / s,
            floor = self.floor,
            roof = self.roofline,
            step = self.step,
            what = self.what,
        ))
        .map(|text| match self.placed_report(lines, (s, r, f)) {
            Some(more) => format!("{text}\n{more}"),
            None => text,
        })
    }

    /// With the [`Floor::placed`] lines: the placed GEMMs against the roofline, those GEMMs
    /// then the floor's pass against each alone, the step against the two in sequence, and
    /// the most of its roofline that a step of them could reach, against the 85 % target.
    /// `(s, r, f)`: the step's, roofline's and floor's median seconds.
    fn placed_report(
        &self,
        lines: &BTreeMap<String, Line>,
        (s, r, f): (f64, f64, f64),
    ) -> Option<String> {
        let Placed { gemms, then_floor } = self.placed?;
        let (p, pf) = (lines.get(gemms)?.median_s, lines.get(then_floor)?.median_s);
        Some(format!(
            "ratio {gemms}/{roof}: {:.2}x (the same GEMMs on the step's own buffers)\n\
             ratio {then_floor}/({gemms} + {floor}): {:.2}x ({what} after those GEMMs, on what \
             they read and wrote, against each alone)\n\
             ratio {step}/{then_floor}: {:.1} % (those GEMMs then {what}, with nothing else)\n\
             ceiling {step}/{roof}: {:.1} % for a step of its GEMMs on its own buffers then \
             {what} (target at least {:.0} %)",
            p / r,
            pf / (p + f),
            100.0 * pf / s,
            100.0 * r / pf,
            100.0 * ROOFLINE_TARGET,
            roof = self.roofline,
            floor = self.floor,
            step = self.step,
            what = self.what,
        ))
    }

    /// The largest speed-up over `prefix`'s step that a step of these GEMMs could reach, and
    /// one that also makes this floor's pass (`None` without the lines or a target).
    fn ceiling(
        &self,
        prefix: &str,
        ours: &BTreeMap<String, Line>,
        theirs: &BTreeMap<String, Line>,
    ) -> Option<String> {
        let &(_, target) = self.targets.iter().find(|(p, _)| *p == prefix)?;
        let t = theirs.get(&format!("{prefix}_{}", self.step))?.median_s;
        let (r, f) = (
            ours.get(self.roofline)?.median_s,
            ours.get(self.floor)?.median_s,
        );
        let placed = self
            .placed
            .and_then(|p| ours.get(p.then_floor))
            .map_or(String::new(), |pf| {
                format!(
                    ", {:.2}x with them on its own buffers then {}",
                    t / pf.median_s,
                    self.what
                )
            });
        Some(format!(
            "ceiling {prefix}/organics {}: {:.2}x for a step of its GEMMs alone, {:.2}x with {} \
             too{placed} (target {target}x)",
            self.step,
            t / r,
            t / (r + f),
            self.what,
        ))
    }
}

/// The ceilings of the speed-up targets over `prefix`'s steps (see [`Floor::ceiling`]).
fn print_ceilings(prefix: &str, ours: &BTreeMap<String, Line>, theirs: &BTreeMap<String, Line>) {
    for floor in FLOORS {
        if let Some(text) = floor.ceiling(prefix, ours, theirs) {
            println!("{text}");
        }
    }
}

/// Ratios of median times printed after the lines: numerator, denominator, what it shows.
const RATIOS: &[(&str, &str, &str)] = &[
    (
        "static_step_late",
        "static_step_early",
        "late training against early, flush-to-zero on; target at most 1.2",
    ),
    (
        "static_step_late_gradual",
        "static_step_late",
        "what flush-to-zero saves on this CPU in the late state",
    ),
    (
        "static_step_tape",
        "static_step_early",
        "the static step recorded on tapes against organics-grad's fused engine (the preset)",
    ),
    (
        "two_layer_step",
        "static_step_early",
        "two-layer against one-layer static step; target at most 8",
    ),
    (
        "two_layer_step_lu",
        "two_layer_step",
        "the two-layer step with factorised solves against sweeps (the preset)",
    ),
    (
        "two_layer_step_trained",
        "static_step_early",
        "two-layer step from the committed run's weights against one-layer; target at most 8",
    ),
    (
        "two_layer_step_trained_lu",
        "two_layer_step_trained",
        "the same from the committed weights: factorised solves against sweeps",
    ),
    (
        "lstm_step_2t",
        "train_step_2t",
        "LSTM against the ORGaNICs sMNIST step; target at most 1.2",
    ),
    (
        "tanh_rnn_step_2t",
        "train_step_2t",
        "tanh RNN against the ORGaNICs sMNIST step; target at most 1.2",
    ),
];

/// Run the benchmarks (and the PyTorch and JAX references when asked) and print the lines and ratios.
pub fn run(root: &Path, quick: bool, torch: bool, jax: bool) -> Result<()> {
    let mut cmd = Command::new("cargo");
    cmd.args([
        "run",
        "--release",
        "-q",
        "-p",
        "organics-grad",
        "--example",
        "bench",
        "--",
    ])
    .current_dir(root);
    if quick {
        cmd.arg("--quick");
    }
    let mut text = run_capture(&mut cmd, "the organics-grad bench example")?;
    // The other models (static one- and two-layer, LSTM, tanh RNN): organics-train's example.
    let mut models = Command::new("cargo");
    models
        .args([
            "run",
            "--release",
            "-q",
            "-p",
            "organics-train",
            "--example",
            "bench_models",
            "--",
        ])
        .current_dir(root);
    if quick {
        models.arg("--quick");
    }
    // The two-layer step from the committed run's weights too, where the second layer's
    // sweeps converge slower than at the initialisation.
    let trained = root.join("models/mnist-organics-2layer");
    if trained.is_dir() {
        models.arg("--two-layer-weights").arg(&trained);
    }
    text.push_str(&run_capture(
        &mut models,
        "the organics-train bench_models example",
    )?);
    let lines = parse(&text);
    if lines.is_empty() {
        bail!("the bench example printed no `NAME: median_s=.. gflops=..` lines:\n{text}");
    }
    // Context lines: the processor, then the examples' (`# ...`, e.g. the instruction set of
    // the element-wise kernels).
    println!("# cpu: {}", this_cpu());
    for note in text.lines().filter(|l| l.starts_with("# ")) {
        println!("{note}");
    }
    for (name, l) in &lines {
        println!("{}", l.show(name));
    }
    for (step, roof) in ROOFLINES {
        let get = |name: &str| lines.get(name).and_then(Line::gflops);
        if let (Some(s), Some(r)) = (get(step), get(roof)) {
            println!(
                "ratio {step}/{roof}: {:.1} % of the roofline (target at least {:.0})",
                100.0 * s / r,
                100.0 * ROOFLINE_TARGET
            );
        }
    }
    for floor in FLOORS {
        if let Some(text) = floor.report(&lines) {
            println!("{text}");
        }
    }
    for text in peak_report(&lines) {
        println!("{text}");
    }
    for (num, den, what) in RATIOS {
        if let (Some(a), Some(b)) = (lines.get(*num), lines.get(*den)) {
            println!(
                "ratio {num}/{den}: {:.2}x ({what})",
                a.median_s / b.median_s
            );
        }
    }
    if torch {
        // The interpreter: `$ORGANICS_PYTHON` (e.g. a virtual environment's python), else python3.
        // torch_reference keeps its five repetitions under --quick, as it always has.
        if let Some(tlines) = reference(
            root,
            std::env::var("ORGANICS_PYTHON").ok(),
            "ORGANICS_PYTHON",
            "torch",
            "bench/torch_reference.py",
            false,
        )? {
            print_ratios(
                "torch",
                &[
                    "train_step_1t",
                    "train_step_2t",
                    "static_step_early",
                    "two_layer_step",
                    "lstm_step_2t",
                ],
                &lines,
                &tlines,
            );
            print_ceilings("torch", &lines, &tlines);
        }
    }
    if jax {
        // `$ORGANICS_JAX_PYTHON`, else python3: a separate variable, since jax and torch often
        // live in different virtual environments.
        let script = "bench/jax_reference.py";
        if let Some(jlines) = reference(
            root,
            std::env::var("ORGANICS_JAX_PYTHON").ok(),
            "ORGANICS_JAX_PYTHON",
            "jax",
            script,
            quick,
        )? {
            print_ratios("jax", &["train_step_1t", "train_step_2t"], &lines, &jlines);
            print_ceilings("jax", &lines, &jlines);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_benchmark_lines_and_ignores_others() {
        let m = parse(
            "warming up\ntrain_step_1t: median_s=0.5 gflops=120.5\nbad: median_s=x gflops=1\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m["train_step_1t"].rate, Rate::Gflops(120.5));
    }

    #[test]
    fn reads_traffic_lines_and_sets_the_floor_beside_the_roofline() {
        let ours = parse(
            "train_step_1t: median_s=1.0 gflops=100\n\
             gemm_roofline_1t: median_s=0.8 gflops=125\n\
             state_traffic_1t: median_s=0.1 gbps=16.4\n",
        );
        assert_eq!(ours["state_traffic_1t"].rate, Rate::Gbps(16.4));
        assert_eq!(ours["state_traffic_1t"].gflops(), None);
        let floor = &FLOORS[0];
        let report = floor.report(&ours).expect("all three lines");
        // 0.1 / 0.8 = 12.5 %; 1/0.85 - 1 = 17.6 %; (0.8 + 0.1) / 1.0 = 90.0 %.
        assert!(
            report.contains("ratio state_traffic_1t/gemm_roofline_1t: 12.5 %"),
            "{report}"
        );
        assert!(report.contains("leaves the step 17.6 %"), "{report}");
        assert!(
            report.contains("ratio train_step_1t/(gemm_roofline_1t + state_traffic_1t): 90.0 %"),
            "{report}"
        );
        // PyTorch at 4.5 s: 4.5 / 0.8 and 4.5 / 0.9.
        let torch = parse("torch_train_step_1t: median_s=4.5 gflops=10\n");
        let ceiling = floor
            .ceiling("torch", &ours, &torch)
            .expect("a torch target");
        assert!(
            ceiling.contains("5.62x for a step of its GEMMs alone, 5.00x with"),
            "{ceiling}"
        );
        assert!(ceiling.contains("(target 8x)"), "{ceiling}");
        assert!(floor.ceiling("numpy", &ours, &torch).is_none());
        assert!(FLOORS[1].report(&ours).is_none());
    }

    #[test]
    fn sets_the_placed_gemms_beside_the_roofline_and_the_target() {
        let ours = parse(
            "static_step_early: median_s=0.005 gflops=200\n\
             static_gemm_roofline: median_s=0.003 gflops=300\n\
             static_gemm_placed: median_s=0.0033 gflops=270\n\
             static_gemm_placed_adam: median_s=0.004 gflops=225\n\
             static_adam: median_s=0.0003 gbps=70\n",
        );
        let floor = &FLOORS[2];
        let report = floor.report(&ours).expect("every line");
        // 3.3 / 3.0 = 1.10; 4.0 / (3.3 + 0.3) = 1.11; 4.0 / 5.0 = 80.0 %; 3.0 / 4.0 = 75.0 %.
        for part in [
            "ratio static_gemm_placed/static_gemm_roofline: 1.10x",
            "ratio static_gemm_placed_adam/(static_gemm_placed + static_adam): 1.11x",
            "ratio static_step_early/static_gemm_placed_adam: 80.0 %",
            "ceiling static_step_early/static_gemm_roofline: 75.0 % for a step",
            "(target at least 85 %)",
        ] {
            assert!(report.contains(part), "{part} in {report}");
        }
        // PyTorch at 7.2 ms: 7.2 / 3.0, 7.2 / 3.3 and 7.2 / 4.0.
        let torch = parse("torch_static_step_early: median_s=0.0072 gflops=100\n");
        let ceiling = floor.ceiling("torch", &ours, &torch).expect("a target");
        assert!(
            ceiling.contains(
                "2.40x for a step of its GEMMs alone, 2.18x with Adam's update too, \
                 1.80x with them on its own buffers then"
            ),
            "{ceiling}"
        );
        // Without the placed lines (an older bench binary), the report is the floor's alone.
        let mut old = ours.clone();
        old.remove("static_gemm_placed");
        old.remove("static_gemm_placed_adam");
        let report = floor.report(&old).expect("the floor's lines");
        assert!(!report.contains("placed"), "{report}");
        let ceiling = floor.ceiling("torch", &old, &torch).expect("a target");
        assert!(!ceiling.contains("own buffers"), "{ceiling}");
    }

    #[test]
    fn sets_each_roofline_beside_the_peak_of_its_thread_count() {
        let lines = parse(
            "gemm_roofline_1t: median_s=1.0 gflops=150.0\n\
             gemm_roofline_2t: median_s=1.0 gflops=240.0\n\
             static_gemm_roofline: median_s=0.003 gflops=300.0\n\
             fma_peak_1t: median_s=0.01 gflops=200.0\n\
             fma_peak_2t: median_s=0.01 gflops=400.0\n",
        );
        assert_eq!(
            peak_report(&lines),
            [
                "ratio gemm_roofline_1t/fma_peak_1t: 75.0 % of the cores' measured multiply-add peak",
                "ratio gemm_roofline_2t/fma_peak_2t: 60.0 % of the cores' measured multiply-add peak",
                "ratio static_gemm_roofline/fma_peak_2t: 75.0 % of the cores' measured multiply-add peak",
            ]
        );
        // Without the peak lines (an older bench binary), nothing is printed.
        let old = parse("gemm_roofline_1t: median_s=1.0 gflops=150.0\n");
        assert!(peak_report(&old).is_empty());
    }

    #[test]
    fn describes_the_first_processor_of_cpuinfo() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n\
                    model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 avx512f\n\n\
                    processor\t: 1\nmodel name\t: Other\n";
        let caches = [("L2", "1024K".to_string()), ("L3", "32768K".to_string())];
        assert_eq!(
            describe_cpu(info, &caches, 2),
            "AMD EPYC (family 26, model 2), L2 1024K, L3 32768K, AVX-512, 2 logical CPUs"
        );
        assert_eq!(
            describe_cpu("", &[], 4),
            "unknown processor, 4 logical CPUs"
        );
        assert!(describe_cpu("model name: X\nflags: sse2 avx2\n", &[], 1).contains("no AVX-512"));
    }

    #[test]
    fn reference_is_skipped_when_the_interpreter_cannot_import_the_module() {
        let missing = reference(
            Path::new("."),
            Some("/nonexistent/python3".to_string()),
            "ORGANICS_JAX_PYTHON",
            "jax",
            "bench/jax_reference.py",
            true,
        );
        assert!(missing.is_ok_and(|r| r.is_none()));
    }
}
