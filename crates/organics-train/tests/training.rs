//! End-to-end training on synthetic data: the loss falls, resumption is bitwise identical, and
//! checkpoints round-trip and reject corruption.

mod common;

use organics_data::View;
use organics_train::checkpoint;
use organics_train::metrics::{self, Record};
use organics_train::trainer::{self, RunEnd, RunOptions};
use organics_train::{
    CellPreset, FixedPointSystem, ModelKind, ProgressMode, Task, TauMode, TrainConfig, TrainError,
};

fn quiet() -> RunOptions {
    RunOptions {
        progress: ProgressMode::Quiet,
        ..RunOptions::default()
    }
}

fn static_config() -> TrainConfig {
    let mut cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
    cfg.epochs = 3;
    cfg.batch_size = 25;
    cfg.lr = 1e-2;
    cfg.observe_every = 3;
    cfg.observe_samples = 20;
    cfg
}

fn rnn_config() -> TrainConfig {
    let mut cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
    cfg.view = View::Downsampled14;
    cfg.hidden = 8;
    cfg.epochs = 2;
    cfg.batch_size = 20;
    cfg
}

fn step_losses(dir: &std::path::Path) -> Vec<f64> {
    metrics::read(&dir.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Step(s) => Some(s.loss),
            Record::Epoch(_) => None,
        })
        .collect()
}

#[test]
fn static_organics_training_reduces_the_loss_and_writes_a_run() {
    let dir = common::scratch("static");
    let data = common::data(500, 100);
    let summary = trainer::run_with(&static_config(), &data, &dir, &quiet()).unwrap();
    assert_eq!(summary.stopped, RunEnd::Finished);
    assert_eq!(summary.epochs.len(), 3);
    let first = &summary.epochs[0];
    let last = summary.epochs.last().unwrap();
    assert!(
        last.train_loss < 0.8 * first.train_loss,
        "loss {} -> {}",
        first.train_loss,
        last.train_loss
    );
    // Ten separable bands: well above chance (0.1) after 60 steps.
    assert!(
        last.test_accuracy > 0.5,
        "test accuracy {}",
        last.test_accuracy
    );
    for f in [
        "config.json",
        "metrics.jsonl",
        "observers.jsonl",
        "checkpoints/last/model.safetensors",
        "checkpoints/best/state.json",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let obs = organics_train::observe::read_observers(&dir).unwrap();
    let organics_train::observe::ObserverRecord::Spectra { layers, .. } = &obs[0] else {
        panic!("expected spectra")
    };
    // W_r = I: the theorem says every fixed point is stable.
    assert!(
        (layers[0].stable_fraction - 1.0).abs() < f64::EPSILON,
        "{:?}",
        layers[0]
    );
    assert_eq!(layers[0].max_real.len(), 20);
    // Fig. 6 and gradient-norm extraction read the same files back.
    let history = organics_train::observe::spectra_history(&dir).unwrap();
    assert_eq!(history.len(), 1);
    assert!(
        (history[0].max_over_inputs
            - layers[0]
                .max_real
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max))
        .abs()
            < 1e-15
    );
    let trace = metrics::grad_norm_trace(&dir).unwrap();
    assert_eq!(trace.len() as u64, summary.global_step);
    // serde_json's default float parser may be off by one ulp, hence the 1e-15 relative slack.
    for ((_, logged), exact) in trace.iter().zip(&summary.grad_norms) {
        assert!(
            (logged - exact).abs() <= 1e-15 * exact.abs(),
            "{logged} vs {exact}"
        );
    }
    // eval of the best checkpoint reproduces the test accuracy logged for its epoch.
    let report = trainer::evaluate_checkpoint(&dir, &data).unwrap();
    let best = summary.best.unwrap();
    assert!((report.test.accuracy - best.test_accuracy).abs() < 1e-12);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn organics_rnn_training_reduces_the_loss() {
    let dir = common::scratch("rnn");
    let data = common::data(200, 40);
    let mut cfg = rnn_config();
    cfg.epochs = 3;
    cfg.observe_every = 3;
    let summary = trainer::run_with(&cfg, &data, &dir, &quiet()).unwrap();
    let losses = step_losses(&dir);
    let k = 5;
    let head: f64 = losses[..k].iter().sum::<f64>() / k as f64;
    let tail: f64 = losses[losses.len() - k..].iter().sum::<f64>() / k as f64;
    assert!(tail < head, "loss did not fall: {head} -> {tail}");
    assert!(summary.grad_norms.iter().all(|g| g.is_finite() && *g > 0.0));
    let obs = organics_train::observe::read_observers(&dir).unwrap();
    let organics_train::observe::ObserverRecord::Trajectories { trajectories, .. } = &obs[0] else {
        panic!("expected trajectories")
    };
    assert_eq!(trajectories[0].y.len(), 197); // 196 steps + the initial state
    assert_eq!(trajectories[0].y[0].len(), 8);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn final_weights(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read(dir.join("checkpoints/last/model.safetensors")).unwrap()
}

fn assert_resume_is_bitwise(cfg: &TrainConfig, data: &trainer::Data, name: &str, stop_at: u64) {
    let a = common::scratch(&format!("{name}-a"));
    let b = common::scratch(&format!("{name}-b"));
    trainer::run_with(cfg, data, &a, &quiet()).unwrap();
    let opts = RunOptions {
        stop_after_steps: Some(stop_at),
        ..quiet()
    };
    let s = trainer::run_with(cfg, data, &b, &opts).unwrap();
    assert_eq!(s.stopped, RunEnd::StepLimit);
    assert_eq!(s.global_step, stop_at);
    let s = trainer::resume_with(&b, data, &quiet()).unwrap();
    assert_eq!(s.stopped, RunEnd::Finished);
    assert!(
        final_weights(&a) == final_weights(&b),
        "{name}: resumed weights differ"
    );
    assert!(
        std::fs::read(a.join("checkpoints/last/optimizer.safetensors")).unwrap()
            == std::fs::read(b.join("checkpoints/last/optimizer.safetensors")).unwrap(),
        "{name}: resumed optimiser state differs"
    );
    // The metrics read as one run: same step losses, bit for bit.
    assert_eq!(step_losses(&a), step_losses(&b));
    // A finished run cannot be resumed.
    assert!(matches!(
        trainer::resume_with(&b, data, &quiet()),
        Err(TrainError::AlreadyFinished { .. })
    ));
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}

#[test]
fn resume_mid_epoch_is_bitwise_identical_static() {
    let mut cfg = static_config();
    cfg.epochs = 2;
    cfg.observe_every = 0;
    cfg.threads = 2;
    // 150 samples / 25 = 6 steps an epoch: stop inside the first epoch.
    assert_resume_is_bitwise(&cfg, &common::data(150, 50), "static", 4);
}

#[test]
fn resume_mid_epoch_is_bitwise_identical_rnn() {
    let mut cfg = rnn_config();
    cfg.threads = 2;
    // 100 samples / 20 = 5 steps an epoch: stop inside the second epoch (spectral-norm vectors,
    // Adam moments and epoch sums all carried over).
    assert_resume_is_bitwise(&cfg, &common::data(100, 20), "rnn", 7);
}

#[test]
fn checkpoints_round_trip_and_reject_corruption() {
    let dir = common::scratch("ckpt");
    let data = common::data(100, 20);
    let mut cfg = static_config();
    cfg.epochs = 1;
    cfg.observe_every = 0;
    trainer::run_with(&cfg, &data, &dir, &quiet()).unwrap();
    let ck = dir.join("checkpoints/last");
    let loaded = trainer::load(&ck, 28, 28).unwrap();
    // Round trip: saving the loaded model gives the same tensor file.
    let copy = dir.join("copy");
    checkpoint::save(
        &copy,
        &loaded.trainer.net.params,
        &loaded.trainer.optimizer,
        &loaded.state,
    )
    .unwrap();
    let reloaded = trainer::load(&copy, 28, 28).unwrap();
    assert_eq!(reloaded.trainer.net.params, loaded.trainer.net.params);
    assert!(
        std::fs::read(copy.join("model.safetensors")).unwrap()
            == std::fs::read(ck.join("model.safetensors")).unwrap(),
        "tensor files differ"
    );

    // One flipped byte: the sha256 check names the file.
    let model = copy.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let k = bytes.len() - 3;
    bytes[k] ^= 0x55;
    std::fs::write(&model, &bytes).unwrap();
    let err = trainer::load(&copy, 28, 28).unwrap_err().to_string();
    assert!(
        err.contains("sha256") && err.contains("model.safetensors"),
        "{err}"
    );

    // A config that does not match the tensors: the shape error names the tensor.
    let state_path = ck.join("state.json");
    let text = std::fs::read_to_string(&state_path).unwrap();
    std::fs::write(
        &state_path,
        text.replace("\"hidden\": 50", "\"hidden\": 51"),
    )
    .unwrap();
    match trainer::load(&ck, 28, 28) {
        Err(TrainError::CheckpointShape { name, .. }) => {
            assert!(name.starts_with("org1."), "{name}")
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    // Garbage state.json and a missing directory are clear errors too.
    std::fs::write(&state_path, "{ not json").unwrap();
    assert!(
        trainer::load(&ck, 28, 28)
            .unwrap_err()
            .to_string()
            .contains("invalid state")
    );
    assert!(
        trainer::load(&dir.join("nope"), 28, 28)
            .unwrap_err()
            .to_string()
            .contains("state.json")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every model and variant trains for an epoch on a small subset: finite losses and gradients,
/// and the weights move.
#[test]
fn every_model_and_variant_takes_finite_steps() {
    let data = common::data(40, 10);
    let mut configs = Vec::new();
    for model in [
        ModelKind::Organics,
        ModelKind::Organics2Layer,
        ModelKind::Mlp,
    ] {
        let mut cfg = TrainConfig::preset(Task::Mnist, model);
        cfg.hidden = 12;
        cfg.hidden2 = 6;
        configs.push(cfg);
    }
    let mut legacy = configs[1].clone();
    legacy.fixed_point_system = FixedPointSystem::LegacyDiagA;
    configs.push(legacy);
    for model in [ModelKind::Organics, ModelKind::Lstm, ModelKind::Rnn] {
        let mut cfg = rnn_config();
        cfg.model = model;
        configs.push(cfg);
    }
    let mut head = rnn_config();
    head.cell = CellPreset::Head;
    head.tau = TauMode::Fixed;
    configs.push(head);
    let mut permuted = rnn_config();
    permuted.task = Task::Psmnist;
    permuted.view = View::paper_permuted();
    configs.push(permuted);
    for (k, mut cfg) in configs.into_iter().enumerate() {
        cfg.epochs = 1;
        cfg.batch_size = 10;
        cfg.observe_every = 1;
        cfg.observe_samples = 4;
        let dir = common::scratch(&format!("variant-{k}"));
        let s = trainer::run_with(&cfg, &data, &dir, &quiet())
            .unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
        assert_eq!(s.global_step, 4);
        assert!(
            s.grad_norms.iter().all(|g| g.is_finite() && *g > 0.0),
            "{cfg:?}: {:?}",
            s.grad_norms
        );
        assert!(s.epochs[0].train_loss.is_finite());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
