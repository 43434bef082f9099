//! The trained models of Tables 1 and 2, as training configs per profile.
//!
//! `Full` is the paper's setting (docs/model.md#sequential-mnist-training, #static-mnist-training); `Quick` shrinks epochs, training-set size
//! and (for the sequential tasks) the sequence length, and every reduction is stated in the
//! row's `settings` text of the report.

use crate::reproduce::Profile;
use organics_data::View;
use organics_train::TrainConfig;
use organics_train::config::{FixedPointSolver, ModelKind, StaticRecurrence, Task, TauMode};

/// One trained row of a table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable id, used for run folders (`mnist-organics-50`).
    pub id: String,
    /// The model as the paper names it.
    pub label: String,
    /// The paper's accuracy in percent (`None` where the paper has no such row).
    pub paper: Option<f64>,
    /// The config.
    pub config: TrainConfig,
}

fn cfg(task: Task, model: ModelKind) -> TrainConfig {
    TrainConfig::preset(task, model)
}

/// Table 1 (static MNIST).
pub fn table1(profile: Profile) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut one = |id: &str, label: &str, paper: Option<f64>, c: TrainConfig| {
        rows.push(Row {
            id: id.into(),
            label: label.into(),
            paper,
            config: c,
        })
    };
    let mut c50 = cfg(Task::Mnist, ModelKind::Organics);
    c50.hidden = 50;
    c50.static_recurrence = StaticRecurrence::Identity;
    let mut c80 = c50.clone();
    c80.hidden = 80;
    let two = cfg(Task::Mnist, ModelKind::Organics2Layer);
    let mut mlp = cfg(Task::Mnist, ModelKind::Mlp);
    mlp.hidden = 80;
    one("mnist-organics-50", "ORGaNICs (50:50)", Some(98.1), c50);
    one("mnist-organics-80", "ORGaNICs (80:80)", Some(98.2), c80);
    one(
        "mnist-organics-2layer",
        "ORGaNICs (two layers, 120→60)",
        Some(98.1),
        two,
    );
    one(
        "mnist-mlp-80",
        "MLP (80 hidden, same autoencoder)",
        None,
        mlp,
    );
    for r in &mut rows {
        shrink(&mut r.config, profile);
    }
    rows
}

/// Table 2 (sequential and permuted sequential MNIST).
pub fn table2(profile: Profile) -> Vec<Row> {
    let mut rows = Vec::new();
    for (task, tname, paper) in [
        (Task::Smnist, "smnist", [97.8, 97.7, 94.8, 90.3, 97.3]),
        (Task::Psmnist, "psmnist", [90.7, 89.9, 84.8, 80.3, 92.6]),
    ] {
        let variants = [
            (
                ModelKind::Organics,
                128,
                TauMode::Learned,
                "ORGaNICs",
                paper[0],
            ),
            (
                ModelKind::Organics,
                64,
                TauMode::Learned,
                "ORGaNICs",
                paper[1],
            ),
            (
                ModelKind::Organics,
                128,
                TauMode::Fixed,
                "ORGaNICs (fixed time constants)",
                paper[2],
            ),
            (
                ModelKind::Organics,
                64,
                TauMode::Fixed,
                "ORGaNICs (fixed time constants)",
                paper[3],
            ),
            (ModelKind::Lstm, 128, TauMode::Learned, "LSTM", paper[4]),
        ];
        for (model, hidden, tau, label, p) in variants {
            let mut c = cfg(task, model);
            c.hidden = hidden;
            c.tau = tau;
            let kind = match (model, tau) {
                (ModelKind::Lstm, _) => "lstm".to_string(),
                (_, TauMode::Fixed) => "organics-fixed-tau".to_string(),
                _ => "organics".to_string(),
            };
            shrink(&mut c, profile);
            rows.push(Row {
                id: format!("{tname}-{kind}-{hidden}"),
                label: format!("{label}, n = {hidden}"),
                paper: Some(p),
                config: c,
            });
        }
    }
    rows
}

/// The quick profile's reductions (see the module docs).
fn shrink(c: &mut TrainConfig, profile: Profile) {
    if profile == Profile::Full {
        return;
    }
    match c.task {
        Task::Smnist => {
            // 196-step sequences (14 × 14 average-pooled), 4 096 training images, 3 epochs.
            c.view = View::Downsampled14;
            c.epochs = 3;
            c.train_subset = Some(4_096);
            c.eval_subset = Some(1_000);
        }
        Task::Psmnist => {
            // The full 784-step permuted sequence (pooling would undo the permutation), on
            // 1 024 training images for 2 epochs.
            c.epochs = 2;
            c.train_subset = Some(1_024);
            c.eval_subset = Some(500);
        }
        Task::Mnist => {
            // A full epoch takes about 1 s here for the one-layer models and 3-4 s for the
            // two-layer model (its systems solved by sweeps): 8 epochs, all data.
            c.epochs = 8;
            c.observe_samples = 200;
        }
    }
}

/// A one-line statement of a row's settings.
pub fn describe(c: &TrainConfig) -> String {
    let subset = c
        .train_subset
        .map_or("57k".to_string(), |n| format!("{}k", n as f64 / 1000.0));
    let eval = c
        .eval_subset
        .map_or("full".to_string(), |n| format!("first {n}"));
    let solves = match (c.static_recurrence, c.fixed_point_solver) {
        (StaticRecurrence::Identity, _) => "",
        (StaticRecurrence::SpectralNorm, FixedPointSolver::Sweeps) => ", systems solved by sweeps",
        (StaticRecurrence::SpectralNorm, FixedPointSolver::Lu) => ", systems solved by LU",
    };
    format!(
        "{} epochs, {subset} train images, {eval} val/test images, view {}, batch {}, lr {}, seed {}{solves}",
        c.epochs, c.view, c.batch_size, c.lr, c.seed
    )
}
