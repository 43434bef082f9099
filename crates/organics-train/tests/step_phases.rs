//! The phase timing of a training step (`Trainer::set_phase_timing`): it changes no value,
//! charges every phase the model's step has, and charges nothing while off.

mod common;

use organics_train::trainer::{PhaseTiming, StepTimes, Trainer};
use std::time::Duration;

fn bits(trainer: &Trainer) -> Vec<u32> {
    trainer
        .net
        .params
        .trainable()
        .tensors()
        .iter()
        .flat_map(|t| t.data.iter().map(|x| x.to_bits()))
        .collect()
}

#[test]
fn phase_timing_changes_no_value_and_charges_every_phase() {
    for (model, task) in common::MODELS {
        let what = format!("{model:?} on {task:?}");
        let (mut timed, batch) = common::small_trainer(model, task, 3);
        let (mut plain, _) = common::small_trainer(model, task, 3);
        timed.set_phase_timing(PhaseTiming::On);
        let steps = 2;
        for _ in 0..steps {
            let a = timed.step(&batch, 1e-3).expect("timed step");
            let b = plain.step(&batch, 1e-3).expect("plain step");
            assert_eq!(
                (a.0.to_bits(), a.1, a.2.to_bits()),
                (b.0.to_bits(), b.1, b.2.to_bits()),
                "{what}: loss, correct count or norm changed"
            );
        }
        assert!(bits(&timed) == bits(&plain), "{what}: the weights changed");

        let t = timed.take_phase_times();
        let zero = Duration::ZERO;
        assert_eq!(t.steps, steps, "{what}");
        for (name, d) in [
            ("step", t.step),
            ("passes", t.passes),
            ("norm", t.norm),
            ("optimizer", t.optimizer),
        ] {
            assert!(d > zero, "{what}: {name} not charged: {t:?}");
        }
        assert!(
            t.passes + t.gradient_sum + t.norm + t.optimizer <= t.step,
            "{what}: the phases outlast the steps: {t:?}"
        );
        let chunks = [
            t.gradient_sum,
            t.chunk_copy,
            t.chunk_forward,
            t.chunk_backward,
        ];
        if !timed.uses_tapes() {
            // The BPTT engines and the fused static engine write the gradient inside their
            // passes and use no tape.
            assert!(chunks.iter().all(|&d| d == zero), "{what}: {t:?}");
        } else {
            assert!(chunks.iter().all(|&d| d > zero), "{what}: {t:?}");
        }
        assert_eq!(
            timed.take_phase_times(),
            StepTimes::default(),
            "{what}: take starts the sums again"
        );
        assert_eq!(
            plain.take_phase_times(),
            StepTimes::default(),
            "{what}: timing is off by default"
        );
        timed.set_phase_timing(PhaseTiming::Off);
        timed.step(&batch, 1e-3).expect("step");
        assert_eq!(
            timed.take_phase_times(),
            StepTimes::default(),
            "{what}: off"
        );
    }
}
