//! Where a training step's time goes: [`StepTimes`], the time of each phase of
//! [`super::Trainer::step`], summed over steps.
//!
//! A step runs its chunks' forward and backward passes in parallel, sums their gradients (the
//! models on tapes; the BPTT engines sum inside their passes), takes the gradient's norm (and
//! clips it when asked), and updates the weights. Its GEMMs can be timed alone (the rooflines
//! of docs/performance.md); the phases show where the rest of the step goes.
//! [`super::Trainer::set_phase_timing`] switches the timing on; it is off by default, and
//! then a step reads no clock. The timing changes no value.
//!
//! The step's phases are wall time on the step's worker. The chunk phases of the models on
//! tapes (the parameters copied into each chunk's tape, its forward pass, its backward pass)
//! run on every worker at once, so they are CPU time summed over chunks.

use std::time::Duration;

pub use organics_grad::phases::PhaseTiming;

/// Seconds spent in each phase of the steps timed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepTimes {
    /// Steps timed.
    pub steps: usize,
    /// Whole steps, from the caller's side (wall time: the hand-over to the pool included).
    pub step: Duration,
    /// Every chunk's forward and backward passes, in parallel (wall time).
    pub passes: Duration,
    /// The chunks' gradients summed into one (wall time; models on tapes only).
    pub gradient_sum: Duration,
    /// The gradient's norm, and clipping when the run clips (wall time).
    pub norm: Duration,
    /// The optimiser's update (wall time).
    pub optimizer: Duration,
    /// The parameters copied into each chunk's tape (CPU time, summed over chunks).
    pub chunk_copy: Duration,
    /// Each chunk's forward pass on its tape (CPU time, summed over chunks).
    pub chunk_forward: Duration,
    /// Each chunk's backward pass on its tape (CPU time, summed over chunks).
    pub chunk_backward: Duration,
}

impl StepTimes {
    /// The part of the steps' wall time outside their phases: the hand-over to the pool and
    /// back, and the bookkeeping between phases.
    #[must_use]
    pub fn other(&self) -> Duration {
        self.step
            .saturating_sub(self.passes + self.gradient_sum + self.norm + self.optimizer)
    }

    /// Each phase divided by the number of steps (zero when no step was timed).
    #[must_use]
    pub fn per_step(&self) -> Self {
        let n = u32::try_from(self.steps.max(1)).unwrap_or(u32::MAX);
        Self {
            steps: usize::from(self.steps > 0),
            step: self.step / n,
            passes: self.passes / n,
            gradient_sum: self.gradient_sum / n,
            norm: self.norm / n,
            optimizer: self.optimizer / n,
            chunk_copy: self.chunk_copy / n,
            chunk_forward: self.chunk_forward / n,
            chunk_backward: self.chunk_backward / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_is_the_step_less_its_phases_and_per_step_divides() {
        let ms = Duration::from_millis;
        let t = StepTimes {
            steps: 4,
            step: ms(40),
            passes: ms(20),
            gradient_sum: ms(4),
            norm: ms(4),
            optimizer: ms(8),
            chunk_copy: ms(2),
            chunk_forward: ms(12),
            chunk_backward: ms(24),
        };
        assert_eq!(t.other(), ms(4));
        let p = t.per_step();
        assert_eq!(
            (p.steps, p.step, p.passes, p.optimizer),
            (1, ms(10), ms(5), ms(2))
        );
        assert_eq!(
            (p.chunk_copy, p.chunk_forward, p.chunk_backward),
            (ms(0) + Duration::from_micros(500), ms(3), ms(6))
        );
        assert_eq!(StepTimes::default().per_step(), StepTimes::default());
    }
}
