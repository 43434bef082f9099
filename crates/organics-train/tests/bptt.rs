//! The ORGaNICs RNN trained through organics-grad's BPTT engine: its gradients against this
//! crate's tape recording of the same model, and one trainer step against Adam's update written
//! out.
//!
//! **Tolerance of the gradient comparison (f32; the model exists in f32 only).** Both paths run
//! the same fused-cell kernels on the same `f32` values, so the forward passes agree to a few
//! ulps (the effective weights `max·sigmoid(p)`, `exp(log W)`, `I + SN(W_r)` are formed by
//! organics-grad's `prepare` for the engine and by its `record_weights` on the tape: different
//! code, the same operations). They differ in summation order: the tape adds each
//! step's weight gradient into the total, row block at once, while the engine forms one GEMM
//! over blocks of 16 steps per chunk of rows and adds the chunk totals at the end. A weight
//! gradient is a sum of `T·B` terms (`T·B ≤ 28·5 = 140` here), so by the standard bound the two
//! sums differ by at most `2γ_{TB} Σ|terms|` with `γ_{TB} ≈ TB·u ≈ 8e-6` (`u = 2⁻²⁴`); per-step
//! differences of a few ulps in the state gradients add a comparable amount after `T` steps of
//! the contractive (`Δt/τ ≤ 0.1`) dynamics. With cancellation between terms, `Σ|terms|` can
//! exceed the tensor's largest gradient by a small factor, so we accept
//! `max |g_bptt − g_tape| ≤ 5e-5 · max |g_tape|` per tensor (`2γ_{TB}` for `Σ|terms|` up to three
//! times the largest gradient; observed: at most 7e-7 over these seeds). A wrong mapping
//! (two gate matrices or two time parameters swapped, a transposed readout, a missing `I` or
//! spectral norm) changes a tensor's gradient by O(1) of its scale.

mod common;

use organics_data::{Batcher, Order, View};
use organics_grad::SequenceBatch;
use organics_grad::Tape;
use organics_grad::optim::Optimizer;
use organics_train::model::bptt::sequence;
use organics_train::model::{Arch, Chunk, Network};
use organics_train::params::StateDict;
use organics_train::trainer::Trainer;
use organics_train::{CellPreset, ModelKind, Task, TauMode, TrainConfig, TrainError};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Per-tensor relative tolerance of BPTT against tape gradients (module doc).
const REL: f64 = 5e-5;

fn rnn_config(n: usize, cell: CellPreset, tau: TauMode) -> TrainConfig {
    let mut cfg = TrainConfig::preset(Task::Smnist, ModelKind::Organics);
    cfg.view = View::RowWise;
    cfg.hidden = n;
    cfg.cell = cell;
    cfg.tau = tau;
    cfg
}

/// Mean loss and its gradient (trainable layout) on a tape, with the tensors as they are.
fn tape_loss_and_grad(
    net: &Network,
    params: &StateDict,
    seq: &SequenceBatch<'_, f32>,
    labels: &[usize],
) -> (f64, organics_grad::ParamSet<f32>) {
    let mut tape = Tape::new();
    let vars = params.to_tape(&mut tape);
    let chunk = Chunk {
        inputs: seq.data,
        batch: seq.batch,
        start: 0,
        rows: seq.batch,
        steps: seq.steps,
        dim: seq.input,
    };
    let net = Network {
        params: params.clone(),
        ..net.clone()
    };
    let fwd = net.forward(&mut tape, &vars, &chunk, labels).unwrap();
    let loss = f64::from(tape.scalar(fwd.loss));
    tape.backward(fwd.loss).unwrap();
    let mut g = params.trainable().zeros_like();
    params.gather_grads(&tape, &vars, &mut g).unwrap();
    (loss, g)
}

/// Worst per-tensor `max|a − b| / max|b|`, naming the tensor; panics if a tensor of `b` is all
/// zeros (the comparison would say nothing about it).
fn worst_relative(
    a: &organics_grad::ParamSet<f32>,
    b: &organics_grad::ParamSet<f32>,
) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for (ta, tb) in a.tensors().iter().zip(b.tensors()) {
        assert_eq!(ta.name, tb.name);
        let scale = tb
            .data
            .iter()
            .map(|x| f64::from(x.abs()))
            .fold(0.0, f64::max);
        assert!(scale > 0.0, "{}: zero gradient", tb.name);
        let diff = ta
            .data
            .iter()
            .zip(&tb.data)
            .map(|(x, y)| f64::from((x - y).abs()))
            .fold(0.0, f64::max);
        if diff / scale > worst.0 {
            worst = (diff / scale, tb.name.clone());
        }
    }
    worst
}

/// For every cell preset and time-constant mode: the engine's loss and gradients (two chunks of
/// rows) equal the tape's on train's own model, after the same power iteration.
#[test]
fn bptt_gradients_equal_tape_gradients_for_every_preset() {
    let (n, steps, m, rows) = (6, 12, 2, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let data: Vec<f32> = (0..steps * rows * m).map(|_| rng.random::<f32>()).collect();
    let labels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..10)).collect();
    let seq = SequenceBatch {
        data: &data,
        steps,
        batch: rows,
        input: m,
    };
    for cell in [CellPreset::Paper, CellPreset::Head] {
        for tau in [TauMode::Learned, TauMode::Fixed] {
            let cfg = rnn_config(n, cell, tau);
            let mut net = Network::new(&cfg, steps, m);
            // Move every trainable tensor off its structured initialisation (raw W_r = I for
            // the paper preset, zero diagonal of log W), so no gradient is special.
            for id in net.params.trainable_ids().collect::<Vec<_>>() {
                for v in net.params.data_mut(id) {
                    *v += 0.1 * (rng.random::<f32>() - 0.5);
                }
            }
            let Arch::Organics(rnn) = &net.arch else {
                unreachable!()
            };
            let mut engine = net
                .rnn_engine(2, cfg.weight_grad_block)
                .unwrap()
                .expect("the RNN uses BPTT");
            let mut params = net.params.clone();
            let mut g_bptt = params.trainable().zeros_like();
            let stats = engine
                .loss_and_grad(rnn, &mut params, &seq, &labels, &mut g_bptt)
                .unwrap();
            if cell == CellPreset::Paper {
                assert_ne!(params, net.params, "the power iteration refined u and v");
            }
            let (loss, g_tape) = tape_loss_and_grad(&net, &params, &seq, &labels);
            // Losses: the same forward pass up to a few ulps of the O(1) loss.
            assert!(
                (stats.loss - loss).abs() < 1e-5,
                "{cell:?} {tau:?}: loss {} vs {loss}",
                stats.loss
            );
            let (worst, name) = worst_relative(&g_bptt, &g_tape);
            assert!(
                worst < REL,
                "{cell:?} {tau:?}: {name} off by {worst:e} of its scale"
            );
            // Evaluation: same loss as the training forward pass (no power iteration).
            let eval = engine.evaluate(rnn, &mut params, &seq, &labels).unwrap();
            assert!((eval.loss - loss).abs() < 1e-5 && eval.correct == stats.correct);
        }
    }
}

/// organics-grad's fixed time constants are `max·sigmoid(1)`: a frozen time parameter that is
/// not 1 (a hand-edited checkpoint) is refused, not silently replaced.
#[test]
fn frozen_time_parameters_other_than_one_are_refused() {
    let cfg = rnn_config(4, CellPreset::Paper, TauMode::Fixed);
    let mut net = Network::new(&cfg, 3, 28);
    let id = net.params.find("org.param_dt_taua").unwrap();
    net.params.data_mut(id)[2] = 0.5;
    match net.rnn_engine(1, cfg.weight_grad_block) {
        Err(TrainError::FrozenValue { name, index, .. }) => {
            assert_eq!((name.as_str(), index), ("org.param_dt_taua", 2));
        }
        other => panic!("expected FrozenValue, got {other:?}"),
    }
}

/// Two trainer steps of the RNN (BPTT engine, two threads): the gradient is the tape's, and
/// the parameters and moments follow Adam with L2 decay written out in PyTorch's order, bit for
/// bit (same f32 operations in the same order).
#[test]
fn trainer_steps_are_adam_on_the_bptt_gradient() {
    let mut cfg = rnn_config(6, CellPreset::Paper, TauMode::Learned);
    cfg.threads = 2;
    cfg.weight_decay = 1e-3;
    let data = common::synthetic(10, 4);
    let batcher = Batcher::new(&data, cfg.view, 10, Order::InOrder).unwrap();
    let mut ep = batcher.epoch(0);
    let batch = ep.next_batch().unwrap();
    let labels: Vec<usize> = batch.labels().iter().map(|&l| usize::from(l)).collect();
    let mut trainer = Trainer::new(&cfg, batch.steps(), batch.input_dim()).unwrap();
    assert!(trainer.uses_bptt_engine());
    let len = trainer.net.params.trainable().num_scalars();
    let (mut m, mut v) = (vec![0.0f32; len], vec![0.0f32; len]);
    let flat = |p: &organics_grad::ParamSet<f32>| -> Vec<f32> {
        p.tensors().iter().flat_map(|t| t.data.clone()).collect()
    };
    for t in 1..=2 {
        let theta0 = trainer.net.params.trainable().clone();
        let lr = 0.01 * f64::from(t);
        let (loss, _, norm) = trainer.step(batch, lr).unwrap();
        let g = trainer.last_gradient().clone();
        assert!(
            (g.global_norm() - norm).abs() <= 1e-12 * norm,
            "no clipping"
        );
        // The gradient is the tape's at θ0 with the u, v this step used.
        let mut at_theta0 = trainer.net.params.clone();
        *at_theta0.trainable_mut() = theta0.clone();
        let (tape_loss, g_tape) =
            tape_loss_and_grad(&trainer.net, &at_theta0, &sequence(batch), &labels);
        assert!(
            (loss - tape_loss).abs() < 1e-5,
            "step {t}: loss {loss} vs {tape_loss}"
        );
        let (worst, name) = worst_relative(&g, &g_tape);
        assert!(worst < REL, "step {t}: {name} off by {worst:e}");
        // Adam, PyTorch's order: g += λθ; m += (1−β₁)(g − m); v = β₂v + (1−β₂)g²;
        // θ −= (η/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε); coefficients rounded once from f64.
        let (theta0, g) = (flat(&theta0), flat(&g));
        let bc1 = 1.0 - 0.9f64.powi(t);
        let bc2 = 1.0 - 0.999f64.powi(t);
        let (wd, ob1, b2, ob2) = (1e-3f32, 0.1f32, 0.999f32, 0.001f32);
        let mut expected = theta0.clone();
        for i in 0..len {
            let gi = g[i] + wd * theta0[i];
            m[i] += ob1 * (gi - m[i]);
            v[i] = b2 * v[i] + ob2 * gi * gi;
            let denom = v[i].sqrt() / (bc2.sqrt() as f32) + 1e-8f32;
            expected[i] -= (lr / bc1) as f32 * m[i] / denom;
        }
        let got = flat(trainer.net.params.trainable());
        for i in 0..len {
            assert_eq!(
                got[i].to_bits(),
                expected[i].to_bits(),
                "step {t}, scalar {i}"
            );
        }
        let Optimizer::Adam {
            step, m: om, v: ov, ..
        } = &trainer.optimizer
        else {
            panic!("the trainer's optimiser is Adam")
        };
        assert_eq!(*step, t as u64);
        assert!(
            flat(om)
                .iter()
                .zip(&m)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        assert!(
            flat(ov)
                .iter()
                .zip(&v)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }
}

/// The LSTM and tanh RNN: organics-grad's recurrent BPTT engine (two chunks of rows) against
/// this crate's tape recording of the same model ([`Network::forward`]: `linear`, `sigmoid`,
/// `tanh`, `mul` on the generic tape), and the trainer runs the engine.
///
/// Tolerance: as for the ORGaNICs RNN above (module doc), the two routes sum each weight
/// gradient's `T·B ≤ 12·5` terms in different orders (`2γ_{TB} ≈ 7e-6` of `Σ|terms|`); in
/// addition the fused cell evaluates `tanh x` as `2σ(2x) − 1`, within a few ulps of 1 (about
/// `2e-7`) of the tape's library `tanh`, and that difference passes through at most `T = 12`
/// steps of a non-expanding recursion (gates in `(0, 1)`, `|tanh′| ≤ 1`, weights `U(±1/√n)`),
/// adding at most about `T · 2e-7 ≈ 2.4e-6` relative. Both stay well inside `REL = 5e-5` of each
/// tensor's largest gradient. A wrong term of the VJP (a missing `(1 − τ²)`, `f` for `c`, a
/// bias gradient on one of the two bias vectors only) changes a tensor's gradient by O(1e-2)
/// or more of its scale.
#[test]
fn baseline_engine_gradients_equal_tape_gradients() {
    let (n, steps, m, rows) = (6, 12, 2, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let data: Vec<f32> = (0..steps * rows * m).map(|_| rng.random::<f32>()).collect();
    let labels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..10)).collect();
    let seq = SequenceBatch {
        data: &data,
        steps,
        batch: rows,
        input: m,
    };
    for model in [ModelKind::Lstm, ModelKind::Rnn] {
        let mut cfg = TrainConfig::preset(Task::Smnist, model);
        cfg.view = View::RowWise;
        cfg.hidden = n;
        let net = Network::new(&cfg, steps, m);
        let mut engine = net
            .baseline_engine(2, cfg.weight_grad_block)
            .unwrap()
            .expect("the baselines use BPTT");
        assert!(net.rnn_engine(2, cfg.weight_grad_block).unwrap().is_none());
        let mut g_bptt = net.params.trainable().zeros_like();
        let stats = engine
            .loss_and_grad(&net.params, &seq, &labels, &mut g_bptt)
            .unwrap();
        let (loss, g_tape) = tape_loss_and_grad(&net, &net.params, &seq, &labels);
        assert!(
            (stats.loss - loss).abs() < 1e-5,
            "{model:?}: loss {} vs {loss}",
            stats.loss
        );
        let (worst, name) = worst_relative(&g_bptt, &g_tape);
        assert!(
            worst < REL,
            "{model:?}: {name} off by {worst:e} of its scale"
        );
        let eval = engine.evaluate(&net.params, &seq, &labels).unwrap();
        assert!((eval.loss - loss).abs() < 1e-5 && eval.correct == stats.correct);
        let trainer = Trainer::new(&cfg, steps, m).unwrap();
        assert!(trainer.uses_bptt_engine(), "{model:?} trains on the engine");
    }
}
