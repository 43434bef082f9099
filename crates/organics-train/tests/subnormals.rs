//! Subnormal floats in late training (organics-ftz): from a state whose weights and Adam
//! moments hold subnormal values — what weight decay leaves in the weights of always-black
//! border pixels after a few epochs — one training step leaves no subnormal value in the
//! parameters, the gradient or the moments, and every thread of the trainer's pool computes
//! with flush-to-zero on. The test does not depend on the CPU's speed on subnormals: it checks
//! values and the mode, not time (the time is `cargo xtask bench`'s `static_step_late`).

mod common;

use organics_grad::optim::Optimizer;
use organics_train::trainer::Trainer;
use organics_train::{ModelKind, Task};

/// A subnormal `f32` (`2⁻¹²⁶ / 8`), signed.
fn subnormal(sign: f32) -> f32 {
    sign * f32::MIN_POSITIVE / 8.0
}

fn count_subnormals(set: &organics_grad::ParamSet<f32>) -> usize {
    set.tensors()
        .iter()
        .flat_map(|t| t.data.iter())
        .filter(|x| x.is_subnormal())
        .count()
}

/// Writes a subnormal into every 5th entry of every tensor of `set`; returns how many.
fn plant(set: &mut organics_grad::ParamSet<f32>) -> usize {
    let mut n = 0;
    for t in set.tensors_mut() {
        for (i, x) in t.data.iter_mut().enumerate().step_by(5) {
            *x = subnormal(if i % 2 == 0 { 1.0 } else { -1.0 });
            n += 1;
        }
    }
    n
}

fn late_state(model: ModelKind, task: Task) -> (Trainer, organics_data::Batch) {
    let (mut trainer, batch) = common::small_trainer(model, task, 7);
    let planted = plant(trainer.net.params.trainable_mut());
    assert!(planted > 0);
    let Optimizer::Adam { m, v, .. } = &mut trainer.optimizer else {
        panic!("the presets train with Adam");
    };
    plant(m);
    plant(v);
    (trainer, batch)
}

#[test]
fn a_late_training_step_leaves_no_subnormal_values() {
    for (model, task) in common::MODELS {
        let (mut trainer, batch) = late_state(model, task);
        let modes = trainer.float_modes();
        assert_eq!(modes.len(), 2);
        if modes.contains(&organics_ftz::Mode::Unsupported) {
            // No flush mode on this architecture: nothing to check here.
            return;
        }
        assert!(
            modes.iter().all(|m| *m == organics_ftz::Mode::FlushToZero),
            "{model:?}: worker modes {modes:?}"
        );
        let before = count_subnormals(trainer.net.params.trainable());
        assert!(before > 0, "the planted state holds subnormals");
        // Learning rate 0: Adam still decays and rewrites every parameter and moment, but
        // leaves each parameter's value as it was, so without the flush mode the planted
        // subnormals would be written back unchanged (a nonzero rate moves them by about
        // `lr · m / ε`, out of the subnormal range, and would let the check pass vacuously).
        let (loss, _, norm) = trainer.step(&batch, 0.0).expect("step");
        assert!(loss.is_finite() && norm.is_finite());
        let params = count_subnormals(trainer.net.params.trainable());
        let grads = count_subnormals(trainer.last_gradient());
        let Optimizer::Adam { m, v, .. } = &trainer.optimizer else {
            unreachable!()
        };
        let (m, v) = (count_subnormals(m), count_subnormals(v));
        assert_eq!(
            (params, grads, m, v),
            (0, 0, 0, 0),
            "{model:?} on {task:?}: subnormals in (parameters, gradient, m, v)"
        );
    }
}

/// The control: the same optimiser update (learning rate 0, as above) on a thread with gradual
/// underflow keeps the planted subnormals and on a thread with the flush mode removes them, so
/// the test above fails without the mode.
#[test]
fn the_flush_mode_is_what_removes_the_subnormals() {
    for (mode, expect_left) in [
        (organics_ftz::Mode::Gradual, true),
        (organics_ftz::Mode::FlushToZero, false),
    ] {
        let (mut trainer, _) = late_state(ModelKind::Organics, Task::Mnist);
        let handle = std::thread::spawn(move || {
            if organics_ftz::set(mode) == organics_ftz::Mode::Unsupported {
                return None;
            }
            let grads = trainer.net.params.trainable().zeros_like();
            trainer
                .optimizer
                .step(trainer.net.params.trainable_mut(), &grads, 0.0)
                .expect("step");
            Some(count_subnormals(trainer.net.params.trainable()))
        });
        if let Some(left) = handle.join().expect("thread") {
            assert_eq!(
                left > 0,
                expect_left,
                "{mode:?}: {left} subnormal parameters left"
            );
        }
    }
}
