//! The vector instruction set of the element-wise kernels: [`InstructionSet`].
//!
//! Builds target baseline x86-64, whose widest vectors are 4-lane SSE2. The element-wise loops
//! of the fused cell ([`crate::cell`]), of the tape's unary and binary operations and their
//! VJPs ([`crate::Tape::unary`], [`crate::Tape::binary`]; one loop per function) and of the
//! Adam update ([`crate::optim::Optimizer::step`]) are therefore compiled twice more, for
//! x86-64-v3 (AVX2 + FMA, 8 `f32` lanes) and x86-64-v4 (AVX-512, 16 `f32` lanes), through
//! [`pulp`]'s run-time dispatch, and the widest version the processor supports runs. On other
//! architectures the baseline loop runs (pulp selects NEON where it applies).
//!
//! The interleaved solves of [`crate::lane_lu`] are the exception: their vectors are groups of
//! [`crate::lane_lu::LANES`] = 8 systems, one AVX2 vector of `f32`, so [`crate::solve`] runs
//! them through a dispatch that stops at AVX2 (on AVX-512 an 8-lane `f32` slice would fall
//! entirely into pulp's scalar tail). The factorisation itself runs at the widest level: its
//! row updates read whole rows as flat vectors.
//!
//! pulp's `x86-v4` feature also switches faer's own kernels (its eigensolver among them) to
//! their AVX-512 paths. faer 0.24's real eigenvectors are not backward stable on nearly
//! defective clusters at either level (`bench/avx512-eigen`); `organics-lyapunov`'s
//! `spectrum::eigenpairs` checks and refines every pair, so both levels pass its tests. The
//! feature is enabled in `organics-core`, the lowest crate that uses faer, so that every build
//! of every crate (`-p` builds included) sees the same faer.
//!
//! **Every choice gives bit-identical results.** Rust never contracts `a·b + c` into a fused
//! multiply-add, and each operation in these loops is either correctly rounded IEEE arithmetic
//! (`+ − × ÷ √`, `min`, `max`, comparisons) or integer bit manipulation (the exponent of
//! [`crate::Scalar::exp`]), so the same value comes out of an 8-lane loop as out of the scalar
//! one. `tests/simd.rs` checks this on random inputs, and `tests/bptt.rs` on whole BPTT passes.
//!
//! **Software prefetch.** `Prefetch` asks for the cache lines of rows a loop will read soon
//! (`prefetcht0` through pulp's safe SSE wrapper; nothing on other architectures). It changes
//! no value. The cell's backward loop uses it for the stored states and caches, whose rows
//! the hardware prefetcher does not follow (docs/performance.md, "sMNIST step: prefetching
//! the stored states"), and its forward loop for the rows of the next state it is about to
//! write, whose lines a store must read first.

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

    /// Runs `kernel` compiled for this instruction set, but for at most AVX2 (x86-64-v3):
    /// for kernels whose vectors are [`crate::lane_lu::LANES`] `f32` wide (see the module
    /// doc). Results are bit-identical to [`InstructionSet::dispatch`]'s, as for every
    /// choice here.
    #[inline(always)]
    pub(crate) fn dispatch_lanes<K: pulp::WithSimd>(self, kernel: K) -> K::Output {
        match self {
            Self::Detect => {
                #[cfg(target_arch = "x86_64")]
                if let Some(v3) = pulp::x86::V3::try_new() {
                    return pulp::Simd::vectorize(v3, kernel);
                }
                pulp::Arch::new().dispatch(kernel)
            }
            Self::Baseline => kernel.with_simd(pulp::Scalar::new()),
        }
    }

    /// The set [`InstructionSet::Detect`] finds on this processor, in words (for reports).
    #[must_use]
    pub fn detected_name() -> &'static str {
        match pulp::Arch::new() {
            #[cfg(target_arch = "x86_64")]
            pulp::Arch::V4(_) => "x86-64-v4 (AVX-512)",
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

/// How many rows ahead the backward loops of the cells ([`crate::cell`], the LSTM of
/// [`crate::recurrent_cell`]) prefetch their stored rows (docs/performance.md, "sMNIST step:
/// prefetching the stored states": 2, 4 and 8 measured the same).
pub(crate) const PREFETCH_ROWS: usize = 4;

/// How many rows ahead the cell's forward loop prefetches the rows it will write
/// (docs/performance.md, "sMNIST step: where the rest of the time goes": 1 measured best, 2
/// and 3 in between, 0 slowest).
pub(crate) const STORE_PREFETCH_ROWS: usize = 1;

/// Software prefetch of the rows a loop will read next: a hint that changes no value and cannot
/// fault. On x86-64 it issues `prefetcht0` (through pulp's safe wrapper) for every 64-byte
/// line of a slice; elsewhere it does nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    sse: Option<pulp::x86::V1>,
}

impl Prefetch {
    /// A prefetcher for this processor.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            sse: pulp::x86::V1::try_new(),
        }
    }

    /// Asks for every cache line of `data`.
    #[inline(always)]
    pub(crate) fn lines<T>(self, data: &[T]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v1) = self.sse {
            use core::arch::x86_64::_MM_HINT_T0;
            const LINE: usize = 64;
            let bytes = std::mem::size_of_val(data);
            let start = data.as_ptr().cast::<i8>();
            let mut offset = 0;
            while offset < bytes {
                v1.sse
                    ._mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset));
                offset += LINE;
            }
            if bytes > 0 {
                v1.sse
                    ._mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(bytes - 1));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = data;
    }
}
