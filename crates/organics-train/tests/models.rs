//! Parameter counts, config validation and the fixed-point layer against the f64 circuit.

mod common;

use organics_core::params::CircuitParts;
use organics_core::steady_state::{self, solve::Method};
use organics_core::{Circuit, Model, Recurrence};
use organics_data::{Batcher, Order, View};
use organics_grad::Tape;
use organics_train::model::{Arch, Chunk, Network};
use organics_train::{
    CellPreset, FixedPointSolver, FixedPointSystem, ModelKind, StaticRecurrence, Task, TauMode,
    TrainConfig, TrainError,
};

#[test]
fn organics_rnn_parameter_counts_match_table_2() {
    for (n, expected) in [(128, 100_490), (64, 25_674)] {
        let mut cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
        cfg.hidden = n;
        let net = Network::new(&cfg, 784, 1);
        assert_eq!(net.parameter_count(), expected, "n = {n}");
        // 6n² + 3n + 4n + 10n + 10 written out, so the test fails if a tensor is missing.
        assert_eq!(
            net.parameter_count(),
            6 * n * n + 3 * n + 4 * n + 10 * n + 10
        );
    }
    // Fixed time constants freeze the 4n time parameters.
    let mut cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
    cfg.tau = TauMode::Fixed;
    assert_eq!(
        Network::new(&cfg, 784, 1).parameter_count(),
        100_490 - 4 * 128
    );
    // The head preset has the same tensors (W_r free instead of spectrally normalised).
    cfg.tau = TauMode::Learned;
    cfg.cell = CellPreset::Head;
    assert_eq!(Network::new(&cfg, 784, 1).parameter_count(), 100_490);
}

#[test]
fn static_and_baseline_parameter_counts() {
    let autoencoder = (784 * 360 + 360)
        + (360 * 120 + 120)
        + (120 * 40 + 40)
        + (40 * 120 + 120)
        + (120 * 360 + 360)
        + (360 * 784 + 784);
    // docs/model.md#static-mnist-training: the autoencoder has 662 264 parameters.
    assert_eq!(autoencoder, 662_264);
    let cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
    // One layer of 50 with W_r = I: W_zx + W_bx + log W + b0 = 6 550, fc = 510 (docs/model.md#static-mnist-training).
    assert_eq!(
        Network::new(&cfg, 1, 784).parameter_count(),
        autoencoder + 6_550 + 510
    );
    let cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics2Layer);
    // docs/model.md#static-mnist-training: org1 38 520 + 14 400 (W_r) trainable... the reference counts W_r in its
    // 52 921 total; ours: W_zx, W_bx (2·120·40), log W, W_r (2·120²), b0 (120).
    let org1 = 2 * 120 * 40 + 2 * 120 * 120 + 120;
    let org2 = 2 * 60 * 120 + 2 * 60 * 60 + 60;
    assert_eq!(
        Network::new(&cfg, 1, 784).parameter_count(),
        autoencoder + org1 + org2 + 610
    );
    let mut cfg = TrainConfig::preset(Task::Smnist, ModelKind::Lstm);
    cfg.hidden = 128;
    // 4n(m + n + 2) + 10n + 10 with m = 1: PyTorch's count for nn.LSTM(1, 128) + Linear(128, 10).
    assert_eq!(
        Network::new(&cfg, 784, 1).parameter_count(),
        4 * 128 * (1 + 128 + 2) + 1290
    );
    cfg.model = ModelKind::Rnn;
    assert_eq!(
        Network::new(&cfg, 784, 1).parameter_count(),
        128 * (1 + 128 + 2) + 1290
    );
}

#[test]
fn config_validation_names_the_field() {
    let check = |cfg: TrainConfig, field: &str| match cfg.validate() {
        Err(TrainError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected an error on {field}, got {other:?}"),
    };
    let base = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
    base.validate().unwrap();
    check(
        TrainConfig {
            model: ModelKind::Lstm,
            ..base.clone()
        },
        "model",
    );
    check(
        TrainConfig {
            epochs: 0,
            ..base.clone()
        },
        "epochs",
    );
    check(
        TrainConfig {
            lr: -1.0,
            ..base.clone()
        },
        "lr",
    );
    check(
        TrainConfig {
            lr: f64::NAN,
            ..base.clone()
        },
        "lr",
    );
    check(
        TrainConfig {
            threads: 0,
            ..base.clone()
        },
        "threads",
    );
    check(
        TrainConfig {
            batch_size: 0,
            ..base.clone()
        },
        "batch_size",
    );
    check(
        TrainConfig {
            lr_gamma: 1.5,
            ..base.clone()
        },
        "lr_gamma",
    );
    check(
        TrainConfig {
            view: View::Sequential,
            ..base.clone()
        },
        "view",
    );
    let seq = TrainConfig::preset(Task::Psmnist, ModelKind::Organics);
    seq.validate().unwrap();
    check(
        TrainConfig {
            model: ModelKind::Mlp,
            ..seq.clone()
        },
        "model",
    );
    check(
        TrainConfig {
            view: View::Static,
            ..seq
        },
        "view",
    );
}

#[test]
fn config_json_round_trips_and_rejects_unknown_fields() {
    let dir = common::scratch("config");
    let cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
    let path = dir.join("c.json");
    std::fs::write(&path, cfg.to_json()).unwrap();
    assert_eq!(TrainConfig::from_file(&path).unwrap(), cfg);
    let text = cfg.to_json().replace("\"epochs\"", "\"epochz\"");
    std::fs::write(&path, text).unwrap();
    let err = TrainConfig::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("epochz"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The learned-`W_r` layer, run for 30 iterations of the √a system, reaches the steady state
/// of the f64 circuit that `organics-core` solves independently, whether its linear systems
/// are factorised or swept; the legacy diag(a) system does not (docs/model.md#legacy-iteration).
#[test]
fn fixed_point_layer_reaches_the_circuit_steady_state() {
    let mut worst = [0.0f64; 4];
    let cases = [
        (FixedPointSystem::SqrtA, FixedPointSolver::Lu),
        (FixedPointSystem::SqrtA, FixedPointSolver::Sweeps),
        (FixedPointSystem::LegacyDiagA, FixedPointSolver::Lu),
        (FixedPointSystem::LegacyDiagA, FixedPointSolver::Sweeps),
    ];
    for (k, (system, solver)) in cases.into_iter().enumerate() {
        let mut cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
        cfg.hidden = 12;
        cfg.static_recurrence = StaticRecurrence::SpectralNorm;
        cfg.fixed_point_system = system;
        cfg.fixed_point_solver = solver;
        cfg.fixed_point_iterations = 30;
        let mut net = Network::new(&cfg, 1, 784);
        // Move W_r away from I: a few power iterations change nothing, so perturb the raw
        // weight with a fixed pattern (spectral normalisation keeps ‖W_r‖₂ = 1).
        let id = net
            .params
            .find("org1.Wr.parametrizations.weight.original")
            .unwrap();
        for (i, v) in net.params.data_mut(id).iter_mut().enumerate() {
            *v += 0.3 * ((i * 7 % 11) as f32 / 11.0 - 0.5);
        }
        for _ in 0..20 {
            net.before_step();
        }
        let data = common::synthetic(8, 5);
        let batcher = Batcher::new(&data, View::Static, 8, Order::InOrder).unwrap();
        let mut ep = batcher.epoch(0);
        let batch = ep.next_batch().unwrap();
        let mut tape = Tape::<f32>::new();
        let vars = net.params.to_tape(&mut tape);
        let chunk = Chunk {
            inputs: batch.inputs(),
            batch: 8,
            start: 0,
            rows: 8,
            steps: 1,
            dim: 784,
        };
        let Arch::Static(snet) = &net.arch else {
            unreachable!()
        };
        let layers = net
            .static_forward(snet, &mut tape, &vars, &chunk)
            .unwrap()
            .layers;
        let out = layers[0].1;
        let n = 12;
        let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        let (z, b1, b0, w, wr, y) = (
            to64(tape.value(out.z)),
            to64(tape.value(out.b1)),
            to64(tape.value(out.b0)),
            to64(tape.value(out.w)),
            to64(tape.value(out.w_r.unwrap())),
            to64(tape.value(out.y)),
        );
        for r in 0..8 {
            let circuit = Circuit::new(CircuitParts {
                model: Model::Main,
                tau_y: vec![2.0; n],
                tau_a: vec![2.0; n],
                b: b1[r * n..(r + 1) * n].to_vec(),
                b0: b0.clone(),
                sigma: vec![1.0; n],
                w_r: Recurrence::Dense(faer::Mat::from_fn(n, n, |i, j| wr[i * n + j])),
                w: faer::Mat::from_fn(n, n, |i, j| w[i * n + j]),
                z: z[r * n..(r + 1) * n].to_vec(),
            })
            .unwrap();
            let ss = steady_state::solve(&circuit, Method::Auto).unwrap();
            assert!(ss.converged());
            let err =
                ss.y.iter()
                    .zip(&y[r * n..(r + 1) * n])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
            worst[k] = worst[k].max(err);
        }
    }
    // f32 arithmetic through 30 solves (each swept solve within 8 ε ‖y‖₂ of the exact
    // one): 1e-4 is ~1000 f32 ulps at |y| ≤ 1.
    for (k, solver) in [(0, "LU"), (1, "sweeps")] {
        assert!(
            worst[k] < 1e-4,
            "√a system ({solver}) misses the fixed point by {}",
            worst[k]
        );
    }
    // The legacy system solves a different equation; it is off by far more than rounding.
    for (k, solver) in [(2, "LU"), (3, "sweeps")] {
        assert!(
            worst[k] > 1e-3,
            "legacy system ({solver}) unexpectedly at the fixed point ({})",
            worst[k]
        );
    }
}

#[test]
fn model_and_task_names_are_the_cli_names() {
    let name = |v: serde_json::Value| v.as_str().unwrap().to_string();
    let models = [
        ModelKind::Organics,
        ModelKind::Organics2Layer,
        ModelKind::Mlp,
        ModelKind::Lstm,
        ModelKind::Rnn,
    ];
    let names: Vec<String> = models
        .iter()
        .map(|m| name(serde_json::to_value(m).unwrap()))
        .collect();
    assert_eq!(names, ["organics", "organics-2layer", "mlp", "lstm", "rnn"]);
    let tasks = [Task::Mnist, Task::Smnist, Task::Psmnist];
    let names: Vec<String> = tasks
        .iter()
        .map(|t| name(serde_json::to_value(t).unwrap()))
        .collect();
    assert_eq!(names, ["mnist", "smnist", "psmnist"]);
}

/// The schedule is StepLR: constant within a step of `lr_step_epochs` epochs, multiplied by
/// `γ` at each boundary (values from the closed form `lr · γ^⌊epoch / step⌋`).
#[test]
fn learning_rate_follows_step_lr() {
    let cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
    let (lr, g, s) = (cfg.lr, cfg.lr_gamma, cfg.lr_step_epochs);
    // Bitwise: γ⁰ = 1 and γ¹ = γ exactly, so no rounding enters before the first two boundaries.
    assert_eq!(cfg.lr_at(0).to_bits(), lr.to_bits());
    assert_eq!(cfg.lr_at(s - 1).to_bits(), lr.to_bits());
    assert_eq!(cfg.lr_at(s).to_bits(), (lr * g).to_bits());
    // Two and more boundaries: equal to γ^k up to powi's rounding (a few ulps).
    for k in 2..5u64 {
        let want = lr * g.powi(k as i32);
        let got = cfg.lr_at(k * s + s / 2);
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want,
            "k = {k}: {got} vs {want}"
        );
    }
}

#[test]
fn stability_observers_stop_on_a_raised_interrupt_flag() {
    use organics_data::{Dataset, View};
    use organics_train::TrainError;
    use organics_train::observe::static_spectra;
    use std::sync::atomic::AtomicBool;
    // Eight synthetic 28 x 28 images through a freshly drawn one-layer static model.
    let cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
    let net = Network::new(&cfg, 1, 784);
    let pixels: Vec<f32> = (0..8 * 784).map(|k| (k % 7) as f32 / 7.0).collect();
    let labels: Vec<u8> = (0..8).map(|k| k as u8).collect();
    let test = Dataset::from_pixels(pixels, labels, 28, 28, 10);
    // Unraised, the observers judge every input.
    let quiet = AtomicBool::new(false);
    let layers = static_spectra(&net, &test, View::Static, 8, Some(&quiet)).unwrap();
    assert_eq!(layers.len(), 1);
    // Raised (a signal arrived), they stop with a typed error instead of running on.
    let raised = AtomicBool::new(true);
    match static_spectra(&net, &test, View::Static, 8, Some(&raised)) {
        Err(TrainError::Interrupted { .. }) => {}
        other => panic!("expected Interrupted, got {other:?}"),
    }
}
