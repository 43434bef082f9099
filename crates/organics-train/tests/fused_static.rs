//! The static models on organics-grad's fused engine (`StaticPath::Fused`, the preset)
//! against the same models recorded on tapes (`StaticPath::Tape`, the reference), at the
//! paper's sizes (784 → 360 → 120 → 40 autoencoder, 50 units) in `f32`, through the trainer:
//! the loss, the correct count, the gradient norm and every gradient tensor of a step, and
//! the evaluation of a dataset.
//!
//! organics-grad's own tests check the engine against finite differences and the tape in
//! `f64`; this one checks that organics-train hands it the right tensors, batch and labels,
//! and that the two routes agree in the precision training runs in.

mod common;

use organics_train::trainer::Trainer;
use organics_train::{ModelKind, StaticPath, Task, TrainConfig};

fn trainer(model: ModelKind, path: StaticPath, threads: usize, batch: usize) -> Trainer {
    let mut cfg = TrainConfig::preset(Task::Mnist, model);
    cfg.static_path = path;
    cfg.threads = threads;
    cfg.batch_size = batch;
    Trainer::new(&cfg, 1, 784).expect("trainer")
}

/// `‖a − b‖ / ‖b‖`.
fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let n: f64 = b.iter().map(|&y| f64::from(y).powi(2)).sum();
    (d / n.max(f64::MIN_POSITIVE)).sqrt()
}

/// Both routes compute the same sums in `f32` in different orders (GEMM blocking, weight
/// gradients over the whole batch against each chunk's then summed, the order of each VJP's
/// products). Each entry is a sum of at most `B · 784` products, so with rounding errors of
/// random sign the relative differences are of order `√(B · 784) · 6e-8 ≤ 1e-5` for the
/// batches here (about 1e-6 measured), while a wrong or missing term moves a tensor's
/// gradient by O(1) relative to itself.
const TOL: f64 = 1e-5;

#[test]
fn fused_and_tape_steps_agree() {
    for model in [ModelKind::Organics, ModelKind::Mlp] {
        for (threads, batch, seed) in [(1usize, 16usize, 1u64), (2, 24, 2), (3, 25, 3)] {
            let what = format!("{model:?}, {threads} threads, batch {batch}");
            let data = common::synthetic(batch, seed);
            let b = common::first_batch(&data, organics_data::View::Static, batch);
            let mut fused = trainer(model, StaticPath::Fused, threads, batch);
            let mut tape = trainer(model, StaticPath::Tape, threads, batch);
            assert!(!fused.uses_tapes() && tape.uses_tapes(), "{what}");
            let (lf, cf, nf) = fused.step(&b, 1e-3).expect("fused step");
            let (lt, ct, nt) = tape.step(&b, 1e-3).expect("tape step");
            assert!(
                (lf - lt).abs() <= TOL * lt.abs(),
                "{what}: loss {lf} vs {lt}"
            );
            assert!((nf - nt).abs() <= TOL * nt, "{what}: norm {nf} vs {nt}");
            assert_eq!(cf, ct, "{what}: correct count");
            let (gf, gt) = (fused.last_gradient(), tape.last_gradient());
            for (a, t) in gf.tensors().iter().zip(gt.tensors()) {
                let d = rel(&a.data, &t.data);
                assert!(d <= TOL, "{what}: {} off by {d:e}", t.name);
            }
        }
    }
}

#[test]
fn fused_and_tape_evaluations_agree() {
    let data = common::synthetic(70, 4);
    for model in [ModelKind::Organics, ModelKind::Mlp] {
        let mut fused = trainer(model, StaticPath::Fused, 2, 32);
        let mut tape = trainer(model, StaticPath::Tape, 2, 32);
        let (ef, et) = (
            fused.evaluate(&data).expect("fused"),
            tape.evaluate(&data).expect("tape"),
        );
        assert!(
            (ef.loss - et.loss).abs() <= TOL * et.loss,
            "{model:?}: {ef:?} vs {et:?}"
        );
        // The same count of correct samples out of the same number.
        let correct = |e: &organics_train::trainer::Evaluation| {
            (e.accuracy * e.samples as f64).round() as usize
        };
        assert_eq!(correct(&ef), correct(&et), "{model:?}");
    }
}

/// The two-layer model (learned `W_r`) has no fused engine: it stays on tapes either way.
#[test]
fn the_two_layer_model_stays_on_tapes() {
    let t = trainer(ModelKind::Organics2Layer, StaticPath::Fused, 2, 8);
    assert!(t.uses_tapes());
}
