//! `cargo xtask reproduce`: every table and figure of the paper, with a report.
//!
//! Each experiment is a function from a [`Ctx`] to an [`Outcome`]: a Markdown section, the
//! figures it wrote, the settings it used and the deterministic numbers that `--check`
//! recomputes ([`Check`]). The runner prints progress, a summary table, writes
//! `target/reproduce/report.md` and, for a complete run, `docs/results.md` and
//! `docs/results.json` (the reference values of the checks).

mod analysis;
mod committed;
mod fig4;
mod instability;
mod training;

use anyhow::{Context, Result, bail};
use organics_train::trainer::RunSummary;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How much compute to spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Reduced epochs and sizes (stated row by row); minutes on a 2-core machine.
    Quick,
    /// The paper's settings; days on a 2-core machine.
    Full,
}

/// What every experiment gets.
pub struct Ctx {
    /// Output folder (`target/reproduce`).
    pub out: PathBuf,
    /// The profile.
    pub profile: Profile,
    /// Training runs made in this invocation, by row id (with their wall-clock seconds).
    pub runs: RefCell<HashMap<String, (RunSummary, f64)>>,
}

/// A number that `--check` recomputes and compares with the committed value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// Stable name, `experiment.quantity`.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Allowed relative drift (0 for counts, which must match exactly).
    pub rel_tol: f64,
}

impl Check {
    /// A check.
    pub fn new(name: &str, value: f64, rel_tol: f64) -> Self {
        Self {
            name: name.into(),
            value,
            rel_tol,
        }
    }
}

/// What an experiment produced.
pub struct Outcome {
    /// Markdown body of its report section.
    pub markdown: String,
    /// Files written (relative names are shown in the report).
    pub figures: Vec<PathBuf>,
    /// Deterministic values for `--check`.
    pub checks: Vec<Check>,
    /// The settings used, in one line (profile reductions are stated here).
    pub settings: String,
}

type Run = fn(&Ctx) -> Result<Outcome>;

/// Every experiment: id, title, whether `--check` recomputes it (cheap and deterministic), run.
const EXPERIMENTS: &[(&str, &str, bool, Run)] = &[
    (
        "portraits",
        "Figs. 1, 2 and 3: phase portraits of the 2-D circuit",
        true,
        analysis::portraits,
    ),
    ("fig4", "Fig. 4: the iterative algorithm", true, fig4::run),
    (
        "committed",
        "Tables 1 and 2 from the committed runs (with learning curves and Figs. 5, 6 and 7)",
        false,
        committed::run,
    ),
    (
        "table1",
        "Pipeline check: Table 1's models trained from scratch, briefly",
        false,
        training::table1,
    ),
    (
        "table2",
        "Pipeline check: Table 2's models trained from scratch, briefly",
        false,
        training::table2,
    ),
    (
        "gradnorms",
        "Beyond the paper: gradient norms without clipping",
        false,
        training::gradnorms,
    ),
    (
        "legacy",
        "Beyond the paper: corrected against legacy fixed-point layer",
        false,
        training::legacy,
    ),
    (
        "stability",
        "Beyond the paper: stable random circuits against ‖W_r‖₂",
        true,
        analysis::stability_sweep,
    ),
    (
        "instability",
        "Beyond the paper: the ‖W_r‖₂ at which each random circuit's steady state loses stability",
        false,
        instability::run,
    ),
];

/// Figures that another experiment produces: `--only fig5` runs `table1`.
const ALIASES: &[(&str, &str)] = &[
    ("fig1", "portraits"),
    ("fig2", "portraits"),
    ("fig3", "portraits"),
    ("fig5", "committed"),
    ("fig6", "committed"),
    ("fig7", "committed"),
    ("table1-pipeline", "table1"),
    ("table2-pipeline", "table2"),
];

/// Options of the reproduce command.
pub struct Options {
    /// Profile.
    pub profile: Profile,
    /// Subset of experiment ids (empty: all).
    pub only: Vec<String>,
    /// Recompute the cheap deterministic parts and compare with docs/results.json.
    pub check: bool,
}

fn git_revision(root: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown date".into())
}

/// Run the selected experiments and write the report.
pub fn run(root: &Path, opts: &Options) -> Result<()> {
    let known: Vec<&str> = EXPERIMENTS.iter().map(|e| e.0).collect();
    let only: Vec<String> = opts
        .only
        .iter()
        .map(|o| {
            ALIASES
                .iter()
                .find(|a| a.0 == o)
                .map_or(o.clone(), |a| a.1.to_string())
        })
        .collect();
    for id in &only {
        if !known.contains(&id.as_str()) {
            bail!("unknown experiment `{id}`; known: {}", known.join(", "));
        }
    }
    let selected: Vec<_> = EXPERIMENTS
        .iter()
        .filter(|e| {
            if opts.check {
                e.2
            } else {
                only.is_empty() || only.iter().any(|o| o == e.0)
            }
        })
        .filter(|e| only.is_empty() || only.iter().any(|o| o == e.0))
        .collect();
    let out = root.join("target/reproduce");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let ctx = Ctx {
        out: out.clone(),
        profile: opts.profile,
        runs: RefCell::new(HashMap::new()),
    };
    if opts.profile == Profile::Full && !opts.check {
        eprintln!(
            "profile full: the paper's settings; expect about 2 days on a 2-core machine (sMNIST/psMNIST 300 epochs dominate)."
        );
    }
    let mut sections = Vec::new();
    let mut checks = Vec::new();
    let mut summary = Vec::new();
    let total = selected.len();
    for (k, (id, title, _, f)) in selected.iter().enumerate() {
        eprintln!("[{}/{}] {id}: {title} ...", k + 1, total);
        let t0 = Instant::now();
        let outcome = f(&ctx).with_context(|| format!("experiment {id}"))?;
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "[{}/{}] {id}: done in {secs:.1} s, {} files",
            k + 1,
            total,
            outcome.figures.len()
        );
        summary.push((id.to_string(), secs, outcome.figures.len()));
        checks.extend(outcome.checks.clone());
        sections.push((id.to_string(), title.to_string(), secs, outcome));
    }
    eprintln!("\n{:<18} {:>10} {:>7}", "experiment", "seconds", "files");
    for (id, secs, files) in &summary {
        eprintln!("{id:<18} {secs:>10.1} {files:>7}");
    }
    if opts.check {
        return compare(root, &checks);
    }
    let command = format!(
        "cargo xtask reproduce --profile {}{}",
        if opts.profile == Profile::Quick {
            "quick"
        } else {
            "full"
        },
        if opts.only.is_empty() {
            String::new()
        } else {
            format!(" --only {}", opts.only.join(","))
        }
    );
    let mut md = format!(
        "# ORGaNICs-rs: reproduction report\n\nGenerated by `{command}` at git revision `{}` on {}. Do not edit: rerun the command.\n\n",
        git_revision(root),
        today()
    );
    md.push_str("| experiment | settings | seconds |\n|---|---|---|\n");
    for (id, _, secs, o) in &sections {
        md.push_str(&format!("| {id} | {} | {secs:.1} |\n", o.settings));
    }
    for (id, title, _, o) in &sections {
        md.push_str(&format!("\n## {title}\n\n{}\n", o.markdown.trim_end()));
        let pngs: Vec<_> = o
            .figures
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        if !pngs.is_empty() {
            md.push('\n');
            for p in pngs {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                md.push_str(&format!("![{id} {name}]({name}) "));
            }
            md.push('\n');
        }
    }
    // Longer training runs cannot fit a quick reproduction; their commands and results are
    // kept by hand in docs/training.md and carried into the report.
    if let Ok(longer) = std::fs::read_to_string(root.join("docs/training.md")) {
        md.push('\n');
        md.push_str(longer.replacen("# ", "## ", 1).trim_end());
        md.push('\n');
    }
    let report = out.join("report.md");
    write_atomic(&report, &md)?;
    eprintln!("\nwrote {}", report.display());
    if opts.only.is_empty() {
        let docs = root.join("docs");
        let body = md.replace("](fig", "](../target/reproduce/fig");
        write_atomic(&docs.join("results.md"), &body)?;
        write_atomic(
            &docs.join("results.json"),
            &serde_json::to_string_pretty(&checks)?,
        )?;
        eprintln!("wrote docs/results.md and docs/results.json");
    }
    Ok(())
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Compare recomputed checks with docs/results.json.
fn compare(root: &Path, fresh: &[Check]) -> Result<()> {
    let path = root.join("docs/results.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (run `cargo xtask reproduce` first)",
            path.display()
        )
    })?;
    let committed: Vec<Check> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut failures = Vec::new();
    let mut compared = 0;
    for c in fresh {
        let Some(old) = committed.iter().find(|o| o.name == c.name) else {
            failures.push(format!(
                "{}: not in docs/results.json (regenerate it)",
                c.name
            ));
            continue;
        };
        compared += 1;
        let allowed = old.rel_tol * old.value.abs();
        let drift = (c.value - old.value).abs();
        let ok = drift <= allowed;
        eprintln!(
            "{} {:<32} committed {:>12.6e}  now {:>12.6e}  (allowed drift {:.1e})",
            if ok { "ok  " } else { "FAIL" },
            c.name,
            old.value,
            c.value,
            allowed
        );
        if !ok {
            failures.push(format!(
                "{}: committed {} now {}",
                c.name, old.value, c.value
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "{} of {} checks drifted:\n{}\nrerun `cargo xtask reproduce` and commit docs/ if the change is intended",
            failures.len(),
            fresh.len(),
            failures.join("\n")
        );
    }
    eprintln!("{compared} checks within tolerance");
    Ok(())
}
