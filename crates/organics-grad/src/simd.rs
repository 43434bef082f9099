//! The vector instruction set of the element-wise kernels: [`InstructionSet`].
//!
//! Builds target baseline x86-64, whose widest vectors are 4-lane SSE2. The element-wise loops
//! of the fused cell ([`crate::cell`]), of the tape's unary and binary operations and their
//! VJPs ([`crate::Tape::unary`], [`crate::Tape::binary`]; one loop per function) and of the
//! Adam update ([`crate::optim::Optimizer::step`]) are therefore compiled once more for
//! x86-64-v3 (AVX2 + FMA, 8 lanes) through [`pulp`]'s run-time dispatch, and that version runs
//! when the processor supports it. On other architectures the baseline loop runs (pulp selects NEON
//! where it applies).
//!
//! AVX-512 (x86-64-v4) is not enabled: pulp's `x86-v4` feature is shared with faer, which then
//! switches its own kernels to AVX-512 paths, and with them faer 0.24's eigensolver returned
//! eigenpairs with residual `‖Jv − λv‖ / ‖J‖ ≈ 1e-3` on our test Jacobians (the
//! `organics-lyapunov` spectrum test caught it). AVX2 already takes the element-wise share of
//! a training step from about 30 % to about 15 % (docs/performance.md).
//!
//! **Every choice gives bit-identical results.** Rust never contracts `a·b + c` into a fused
//! multiply-add, and each operation in these loops is either correctly rounded IEEE arithmetic
//! (`+ − × ÷ √`, `min`, `max`, comparisons) or integer bit manipulation (the exponent of
//! [`crate::Scalar::exp`]), so the same value comes out of an 8-lane loop as out of the scalar
//! one. `tests/simd.rs` checks this on random inputs, and `tests/bptt.rs` on whole BPTT passes.

use serde::{Deserialize, Serialize};

/// Which instruction set the element-wise loops use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum InstructionSet {
    /// The widest set this processor supports (detected once per call, cached by `std`).
    #[default]
    Detect,
    /// The build's baseline (SSE2 on x86-64): a reference for tests and debugging.
    Baseline,
}

impl InstructionSet {
    /// Runs `kernel` compiled for this instruction set.
    #[inline(always)]
    pub(crate) fn dispatch<K: pulp::WithSimd>(self, kernel: K) -> K::Output {
        match self {
            Self::Detect => pulp::Arch::new().dispatch(kernel),
            Self::Baseline => kernel.with_simd(pulp::Scalar::new()),
        }
    }

    /// The set [`InstructionSet::Detect`] finds on this processor, in words (for reports).
    #[must_use]
    pub fn detected_name() -> &'static str {
        match pulp::Arch::new() {
            #[cfg(target_arch = "x86_64")]
            pulp::Arch::V3(_) => "x86-64-v3 (AVX2)",
            _ => "baseline",
        }
    }
}

/// Defines an element-wise kernel for [`InstructionSet::dispatch`]: a struct of the named
/// fields (built at the call site with field-init shorthand from locals of the same names)
/// whose body runs inside the instruction-set-specific function. The body and everything it
/// calls must be inlined (`#[inline(always)]`) so that they are compiled with the wider
/// instructions; a closure would not be (it is instantiated once per instruction set, so
/// the inliner does not see a single call site).
macro_rules! simd_kernel {
    ($(#[$doc:meta])* $name:ident<$lt:lifetime> { $($field:ident : $ty:ty),* $(,)? } $body:block) => {
        $(#[$doc])*
        struct $name<$lt, S> {
            $($field: $ty),*
        }

        impl<$lt, S: Scalar> pulp::WithSimd for $name<$lt, S> {
            type Output = ();

            #[inline(always)]
            fn with_simd<A: pulp::Simd>(self, _: A) {
                let Self { $($field),* } = self;
                $body
            }
        }
    };
}

pub(crate) use simd_kernel;
