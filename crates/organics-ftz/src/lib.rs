//! Flush-to-zero (FTZ) and denormals-are-zero (DAZ) on the calling thread.
//!
//! A subnormal `f32` is a nonzero `x` with `|x| < 2⁻¹²⁶ ≈ 1.18 · 10⁻³⁸`. Training drives some
//! values there: weight decay shrinks the weights of always-black border pixels geometrically
//! (`w ← (1 − η λ)^k w`), Adam's moments of those weights decay the same way, and their
//! products in the GEMMs are subnormal too. Intel CPUs take a microcode assist (about a
//! hundred cycles) for every subnormal operand or result, so a late epoch can run ten times
//! slower than an early one; AMD CPUs hide most of it.
//!
//! With the two modes on, the floating-point unit treats every subnormal *input* as zero (DAZ)
//! and writes zero instead of every subnormal *result* (FTZ):
//!
//! $$ \mathrm{fl}_{\mathrm{FTZ}}(x) = \begin{cases} 0 & |x| < 2^{-126} \\ \mathrm{fl}(x) &
//!    \text{otherwise,} \end{cases} $$
//!
//! an absolute change of at most `2⁻¹²⁶` per operation, far below anything training resolves
//! (PyTorch's `torch.set_flush_denormal(True)` sets the same two bits). The modes are per
//! thread (a thread created on Linux inherits its creator's, but nothing here relies on
//! that): [`enable`] must run on every thread that computes — the training thread pool sets
//! it in rayon's `start_handler`, which runs on each worker before it takes any work.
//!
//! # Why `unsafe`, and why it is sound
//!
//! The modes live in a control register (x86-64: MXCSR bits 6 = DAZ and 15 = FTZ, which also
//! govern AVX and AVX-512 arithmetic; AArch64: FPCR bit 24 = FZ, which covers both inputs
//! and results). Stable Rust reaches them only through inline assembly (`_mm_setcsr` is
//! deprecated for exactly this use), and inline assembly is `unsafe`. This module is the only
//! place in the workspace that allows `unsafe_code`, and only for the read-modify-write of
//! those bits:
//!
//! - the assembly reads or writes one 32-bit value (x86-64: through a pointer to a local
//!   `u32` that lives for the whole statement; AArch64: a general-purpose register); it
//!   touches no other memory and no stack (`nostack`), and leaves the condition flags alone
//!   (`preserves_flags`);
//! - only the FTZ/DAZ bits change; the rounding mode and the exception masks are written
//!   back as read, so no floating-point exception can be unmasked;
//! - DAZ exists on every x86-64 CPU (it arrived with SSE2-era cores; the x86-64 baseline
//!   implies it), so writing bit 6 cannot fault;
//! - the modes change *values* only in the subnormal range, never memory safety. Rust and
//!   LLVM assume the default floating-point environment when they fold constants, so a
//!   folded expression may keep a subnormal that run-time code would flush: a difference in
//!   value below `2⁻¹²⁶`, not undefined behaviour in the sense of memory or aliasing.
//!
//! On other architectures [`enable`] does nothing and reports [`Mode::Unsupported`].

#![allow(unsafe_code)]

/// The subnormal handling of the calling thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// IEEE 754 gradual underflow: subnormals are produced and read as they are.
    Gradual,
    /// Subnormal results are written as zero and subnormal inputs read as zero.
    FlushToZero,
    /// This architecture's control register is not handled here.
    Unsupported,
}

/// MXCSR bit 6: denormals (subnormal inputs) are zero.
#[cfg(target_arch = "x86_64")]
const MXCSR_DAZ: u32 = 1 << 6;
/// MXCSR bit 15: subnormal results are flushed to zero.
#[cfg(target_arch = "x86_64")]
const MXCSR_FTZ: u32 = 1 << 15;
/// FPCR bit 24: flush-to-zero of inputs and results.
#[cfg(target_arch = "aarch64")]
const FPCR_FZ: u64 = 1 << 24;

#[cfg(target_arch = "x86_64")]
fn read_control() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR at the given address, which points to the
    // live local `csr`; no other memory, no stack and no flags are touched.
    unsafe {
        core::arch::asm!("stmxcsr [{p}]", p = in(reg) &raw mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_control(csr: u32) {
    // SAFETY: `ldmxcsr` loads the 32-bit MXCSR from the given address, which points to the
    // live local `csr`. Callers change only the FTZ/DAZ bits of a value read by
    // `read_control`, so reserved bits stay zero (no #GP) and the exception masks and
    // rounding mode are unchanged.
    unsafe {
        core::arch::asm!("ldmxcsr [{p}]", p = in(reg) &raw const csr, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(target_arch = "aarch64")]
fn read_control() -> u64 {
    let fpcr: u64;
    // SAFETY: reads the FPCR system register into a general-purpose register; no memory.
    unsafe {
        core::arch::asm!("mrs {r}, fpcr", r = out(reg) fpcr, options(nomem, nostack, preserves_flags));
    }
    fpcr
}

#[cfg(target_arch = "aarch64")]
fn write_control(fpcr: u64) {
    // SAFETY: writes FPCR from a value read by `read_control` with only the FZ bit changed
    // (rounding mode and trap enables as they were); no memory.
    unsafe {
        core::arch::asm!("msr fpcr, {r}", r = in(reg) fpcr, options(nomem, nostack, preserves_flags));
    }
}

/// The calling thread's current mode.
#[must_use]
pub fn mode() -> Mode {
    #[cfg(target_arch = "x86_64")]
    {
        let bits = MXCSR_FTZ | MXCSR_DAZ;
        if read_control() & bits == bits {
            Mode::FlushToZero
        } else {
            Mode::Gradual
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if read_control() & FPCR_FZ == 0 {
            Mode::Gradual
        } else {
            Mode::FlushToZero
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Mode::Unsupported
    }
}

/// Sets the calling thread to `mode` (a no-op for [`Mode::Unsupported`] or on an unsupported
/// architecture) and returns the mode now in force, read back from the register.
pub fn set(mode: Mode) -> Mode {
    #[cfg(target_arch = "x86_64")]
    {
        let bits = MXCSR_FTZ | MXCSR_DAZ;
        let csr = read_control();
        match mode {
            Mode::FlushToZero => write_control(csr | bits),
            Mode::Gradual => write_control(csr & !bits),
            Mode::Unsupported => {}
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let fpcr = read_control();
        match mode {
            Mode::FlushToZero => write_control(fpcr | FPCR_FZ),
            Mode::Gradual => write_control(fpcr & !FPCR_FZ),
            Mode::Unsupported => {}
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = mode;
    self::mode()
}

/// Turns flush-to-zero and denormals-are-zero on for the calling thread; returns the mode now
/// in force ([`Mode::FlushToZero`], or [`Mode::Unsupported`] where this is not implemented).
pub fn enable() -> Mode {
    set(Mode::FlushToZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    fn is_subnormal(x: f32) -> bool {
        x != 0.0 && x.abs() < f32::MIN_POSITIVE
    }

    /// Each test runs on its own thread (the harness spawns one per test), so switching the
    /// mode here cannot leak into other tests.
    #[test]
    fn flush_mode_zeroes_subnormal_results_and_inputs() {
        if set(Mode::Gradual) == Mode::Unsupported {
            return;
        }
        // `black_box` keeps the compiler from folding the products at compile time (folding
        // assumes the default environment, see the module docs).
        let tiny = black_box(f32::MIN_POSITIVE);
        let half = black_box(0.5_f32);
        let sub = black_box(tiny * half);
        assert!(
            is_subnormal(sub),
            "gradual underflow gives a subnormal product"
        );
        assert!(is_subnormal(black_box(sub) * black_box(1.0)));

        assert_eq!(enable(), Mode::FlushToZero);
        assert_eq!(mode(), Mode::FlushToZero);
        // FTZ: the same product is written as zero.
        let flushed = black_box(tiny) * black_box(half);
        assert!(!is_subnormal(flushed) && flushed.abs() <= 0.0);
        // DAZ: a stored subnormal is read as zero (x86-64); with AArch64's FZ likewise.
        let from_input = black_box(sub) * black_box(4.0_f32);
        assert!(
            from_input.abs() <= 0.0,
            "subnormal input read as {from_input:e}"
        );
        // Normal numbers are untouched (exact: 1.5 · 2 is representable).
        let normal = black_box(1.5_f32) * black_box(2.0_f32);
        assert!((normal - 3.0).abs() <= 0.0);

        assert_eq!(set(Mode::Gradual), Mode::Gradual);
        assert!(is_subnormal(black_box(tiny) * black_box(half)));
    }

    #[test]
    fn the_mode_is_per_thread() {
        if enable() == Mode::Unsupported {
            return;
        }
        // A thread switched back to gradual underflow leaves this thread's mode alone. (On
        // Linux a new thread inherits its creator's register, so the other thread starts
        // flushed; the pool sets the mode explicitly rather than rely on that.)
        let other = std::thread::spawn(|| set(Mode::Gradual))
            .join()
            .expect("thread");
        assert_eq!(other, Mode::Gradual);
        assert_eq!(mode(), Mode::FlushToZero);
    }
}
