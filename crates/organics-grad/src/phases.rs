//! Where a BPTT training step's time goes: [`PhaseTimes`], the wall time of each phase of
//! the cell's forward and backward steps, summed over time steps and chunks.
//!
//! A step's GEMMs can be measured alone (the roofline of docs/performance.md: the same
//! shapes, nothing else). What separates the step from that roofline is everything else: the
//! element-wise loops of the cell, and the GEMMs' own slow-down when their operands come from
//! memory rather than cache. [`crate::Bptt::set_phase_timing`] charges each interval of a
//! chunk's pass to one [`Phase`], so that both parts are measured in the step itself.
//!
//! Timing is off by default; then every charge point is one branch. When on, it reads the
//! clock about a dozen times per time step and chunk (tens of nanoseconds each, against
//! hundreds of microseconds per step for the paper's sMNIST model).

use std::time::{Duration, Instant};

/// Whether [`crate::Bptt`] times the phases of its passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhaseTiming {
    /// No clock reads (the default).
    #[default]
    Off,
    /// Every phase timed, summed until [`crate::Bptt::take_phase_times`].
    On,
}

/// One phase of the cell's forward and backward steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The forward step's GEMMs: `x W_xᵀ`, `W_r ⌊y⌋`, `W (⌊y⌋² ⌊a⌋)`, the gate drive.
    ForwardGemm,
    /// The forward step's element-wise loops (rectifications, gates, the Euler update).
    ForwardElementwise,
    /// The backward step's GEMMs through the state (`ḡ W_g`, `ŷ̄ W_r`, `ū W`, `x W_xᵀ`).
    BackwardGemm,
    /// The backward step's element-wise loops (the VJP before and after its GEMMs).
    BackwardElementwise,
    /// The weight-gradient GEMMs, one per weight per block of time steps.
    WeightGradGemm,
    /// Everything else in a chunk's pass: the readout and loss, copies, buffer set-up.
    Other,
}

/// Seconds spent in each [`Phase`], summed over time steps and chunks (so over threads: CPU
/// time, not wall time, when chunks run in parallel).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    /// [`Phase::ForwardGemm`].
    pub forward_gemm: Duration,
    /// [`Phase::ForwardElementwise`].
    pub forward_elementwise: Duration,
    /// [`Phase::BackwardGemm`].
    pub backward_gemm: Duration,
    /// [`Phase::BackwardElementwise`].
    pub backward_elementwise: Duration,
    /// [`Phase::WeightGradGemm`].
    pub weight_grad_gemm: Duration,
    /// [`Phase::Other`].
    pub other: Duration,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 6] = [
        Phase::ForwardGemm,
        Phase::ForwardElementwise,
        Phase::BackwardGemm,
        Phase::BackwardElementwise,
        Phase::WeightGradGemm,
        Phase::Other,
    ];
}

impl PhaseTimes {
    /// The time of one phase.
    #[must_use]
    pub fn get(&self, phase: Phase) -> Duration {
        let mut copy = *self;
        *copy.slot(phase)
    }

    fn slot(&mut self, phase: Phase) -> &mut Duration {
        match phase {
            Phase::ForwardGemm => &mut self.forward_gemm,
            Phase::ForwardElementwise => &mut self.forward_elementwise,
            Phase::BackwardGemm => &mut self.backward_gemm,
            Phase::BackwardElementwise => &mut self.backward_elementwise,
            Phase::WeightGradGemm => &mut self.weight_grad_gemm,
            Phase::Other => &mut self.other,
        }
    }

    /// The GEMM phases together.
    #[must_use]
    pub fn gemm(&self) -> Duration {
        self.forward_gemm + self.backward_gemm + self.weight_grad_gemm
    }

    /// The element-wise phases together.
    #[must_use]
    pub fn elementwise(&self) -> Duration {
        self.forward_elementwise + self.backward_elementwise
    }

    /// Every phase together.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.gemm() + self.elementwise() + self.other
    }

    /// Adds `other`'s times to these.
    pub fn add(&mut self, other: &Self) {
        for phase in Phase::ALL {
            *self.slot(phase) += other.get(phase);
        }
    }
}

/// Charges consecutive intervals to phases: each [`Stopwatch::lap`] charges the time since the
/// previous one. Off, it does nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stopwatch {
    running: Option<(Instant, PhaseTimes)>,
}

impl Stopwatch {
    /// Switches timing on (keeping the sums so far) or off (dropping them).
    pub(crate) fn set(&mut self, timing: PhaseTiming) {
        match (timing, &self.running) {
            (PhaseTiming::Off, _) => self.running = None,
            (PhaseTiming::On, None) => self.running = Some((Instant::now(), PhaseTimes::default())),
            (PhaseTiming::On, Some(_)) => {}
        }
    }

    /// Starts a new interval without charging the time since the last lap (between passes).
    #[inline]
    pub(crate) fn restart(&mut self) {
        if let Some((last, _)) = &mut self.running {
            *last = Instant::now();
        }
    }

    /// Charges the time since the last lap (or restart) to `phase`.
    #[inline]
    pub(crate) fn lap(&mut self, phase: Phase) {
        if let Some((last, times)) = &mut self.running {
            let now = Instant::now();
            *times.slot(phase) += now - *last;
            *last = now;
        }
    }

    /// The sums so far (zero when off), which are then reset.
    pub(crate) fn take(&mut self) -> PhaseTimes {
        self.running
            .as_mut()
            .map(|(_, times)| std::mem::take(times))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_charge_their_phase_and_off_charges_nothing() {
        let mut w = Stopwatch::default();
        w.lap(Phase::Other);
        assert_eq!(w.take(), PhaseTimes::default());

        w.set(PhaseTiming::On);
        w.restart();
        std::thread::sleep(Duration::from_millis(20));
        w.lap(Phase::BackwardElementwise);
        w.lap(Phase::ForwardGemm);
        let t = w.take();
        // The sleep is charged to the phase that ended it, at least its own length.
        assert!(t.backward_elementwise >= Duration::from_millis(20), "{t:?}");
        assert!(t.forward_gemm < Duration::from_millis(20), "{t:?}");
        assert_eq!(t.total(), t.backward_elementwise + t.forward_gemm);
        assert_eq!(w.take(), PhaseTimes::default(), "take resets the sums");

        w.set(PhaseTiming::Off);
        w.lap(Phase::Other);
        assert_eq!(w.take(), PhaseTimes::default());
    }

    #[test]
    fn add_sums_each_phase() {
        let ms = Duration::from_millis;
        let mut a = PhaseTimes {
            forward_gemm: ms(1),
            other: ms(2),
            ..PhaseTimes::default()
        };
        let b = PhaseTimes {
            forward_gemm: ms(3),
            weight_grad_gemm: ms(4),
            backward_elementwise: ms(5),
            ..PhaseTimes::default()
        };
        a.add(&b);
        assert_eq!(a.forward_gemm, ms(4));
        assert_eq!(a.weight_grad_gemm, ms(4));
        assert_eq!(a.backward_elementwise, ms(5));
        assert_eq!(a.other, ms(2));
        assert_eq!(a.gemm(), ms(8));
        assert_eq!(a.elementwise(), ms(5));
        assert_eq!(a.total(), ms(15));
    }
}
