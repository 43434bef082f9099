//! The ORGaNICs Euler cell (docs/model.md#gated-rnn-cell, #rnn-cell-as-trained) as one fused operation with a hand-derived VJP.
//!
//! **The continuous circuit.** The cell discretises the rectified ORGaNICs circuit (paper
//! Eq. 102, organics-core's `Model::Rectified` vector field in `organics_core::dynamics`) with
//! input gains that are themselves neurons driven by gates:
//!
//! $$
//! \begin{aligned}
//! \tau_y \dot y &= -y + b_1 \odot z + (1 - \sqrt{\lfloor a\rfloor}) \odot (W_r \lfloor y\rfloor), \\
//! \tau_a \dot a &= -a + b_0^2 \odot \sigma^2 + W (\lfloor y\rfloor^2 \odot \lfloor a\rfloor), \\
//! \tau_{b0} \dot b_0 &= -b_0 + \mathrm{sigmoid}(W_{bx0} x + W_{by0} y + W_{ba0} a), \\
//! \tau_{b1} \dot b_1 &= -b_1 + \mathrm{sigmoid}(W_{bx1} x + W_{by1} y + W_{ba1} a),
//! \end{aligned}
//! $$
//!
//! with `z = W_zx x`. For fixed gains the `(y, a)` part is exactly core's circuit with `b = b1`,
//! `b0 = b0`; the cell below is one explicit Euler step of this system of step `Δt` with
//! `δ_k = Δt/τ_k`. `tests/euler_circuit.rs` checks that identity against core's vector field in
//! f64 (and that the HEAD variant, which rectifies after `W_r`, is a different system).
//!
//! State per batch row, stored as one row `s = [y | a | b0 | b1]` of length `4n`; input
//! `x ∈ ℝ^m`. One explicit Euler step of the rectified, gated circuit is
//!
//! ```text
//! z   = W_zx x   (or ⌊W_zx x⌋),          ŷ = W_r ⌊y⌋   (or ⌊W_r y⌋),
//! s₀  = σ(W_bx0 x + W_by0 y + W_ba0 a),   s₁ = σ(W_bx1 x + W_by1 y + W_ba1 a),
//! u   = W (⌊y⌋² ⊙ ⌊a⌋),
//! y'  = y + δ_y ⊙ (−y + b₁ ⊙ z + (1 − √⌊a⌋) ⊙ ŷ),
//! a'  = a + δ_a ⊙ (−a + σ² ⊙ b₀² + u),
//! b₀' = b₀ + δ_b0 ⊙ (−b₀ + s₀),           b₁' = b₁ + δ_b1 ⊙ (−b₁ + s₁),
//! ```
//!
//! where `δ_k = Δt/τ_k` and `W_r`, `W`, `δ_k` are the *effective* weights prepared by
//! [`crate::rnn`] (spectral norm, `exp`, `max·sigmoid`). The kernel works on
//! pre-packed weights:
//!
//! - `wx` (`3n x m`): rows `[W_zx; W_bx0; W_bx1]`, so `p = x wxᵀ = [z_pre | gx0 | gx1]`;
//! - `wg` (`2n x 2n`): `[[W_by0, W_ba0]; [W_by1, W_ba1]]`, so the gate drive is `[y a] wgᵀ`;
//! - `dt` (`4n`): `[δ_y | δ_a | δ_b0 | δ_b1]`; `sigma2` (`n`): `σ²`.
//!
//! The forward step caches `c = [ŷ | u | s0 | s1]` (`4n` per row) for the backward step.
//!
//! **VJP.** With incoming cotangents `(ḡ_y, ḡ_a, ḡ_{b0}, ḡ_{b1})` of the next state, and
//! `r = ⌊y⌋`, `ρ = √⌊a⌋`:
//!
//! ```text
//! ȳ  = (1 − δ_y) ḡ_y + [W_rᵀ ŷ̄] ⊙ H(y) + 2 r ⊙ ⌊a⌋ ⊙ (Wᵀ ū) + [W_gᵀ ḡ]_y,
//! ā  = (1 − δ_a) ḡ_a − δ_y ḡ_y ⊙ ŷ ⊙ H(a) / (2ρ) + r² H(a) ⊙ (Wᵀ ū) + [W_gᵀ ḡ]_a,
//! b̄₀ = (1 − δ_b0) ḡ_b0 + 2 δ_a ḡ_a σ² b₀,        b̄₁ = (1 − δ_b1) ḡ_b1 + δ_y ḡ_y z,
//! ```
//!
//! with `ŷ̄ = δ_y ḡ_y (1 − ρ)` (times `H(W_r y)` when rectifying after `W_r`),
//! `ū = δ_a ḡ_a`, `ḡ = [δ_{b0} ḡ_{b0} s_0(1−s_0) | δ_{b1} ḡ_{b1} s_1(1−s_1)]`,
//! `z̄ = δ_y ḡ_y b_1` (times `H(z_pre)` if rectified). Weight cotangents are outer products summed
//! over rows (and, in [`crate::bptt`], over blocks of time steps):
//! `W̄_r += ŷ̄ᵀ ⌊y⌋`, `W̄_g += ḡᵀ [y a]`, `W̄ += ūᵀ (r² ⌊a⌋)`, `w̄_x += p̄ᵀ x`,
//! and `δ̄_k` is the row sum of `ḡ_k` times the bracket it multiplies.
//!
//! **Kinks.** `H(0) = 0` (so `relu'(0) = 0`), and the derivative of `√⌊a⌋` is `1/(2√a)` for
//! `a > 0` and `0` for `a ≤ 0`, matching PyTorch's `sqrt(relu(a))` (relu's backward selects).
//!
//! **Subnormals.** Every value that can become subnormal — `y'`, `a'`, `ŷ`, `u`, `⌊y⌋²⌊a⌋`
//! and every cotangent — is passed through [`Scalar::flush_subnormal`]; this changes values by
//! less than `MIN_POSITIVE` (`1.2e-38` in `f32`) and keeps later GEMMs and element-wise
//! operations off the slow subnormal path. The gates cannot be subnormal (the sigmoid
//! saturates at `4.2e-18`, see [`Scalar::sigmoid`]), nor can `b0`, `b1` (convex combinations
//! of their previous values and the gates).

use crate::linalg::{Beta, Trans, View, ViewMut, gemm};
use crate::phases::{Phase, Stopwatch};
use crate::scalar::Scalar;
use crate::simd::{InstructionSet, PREFETCH_ROWS, Prefetch, STORE_PREFETCH_ROWS, simd_kernel};
use serde::{Deserialize, Serialize};

/// Whether the input drive is rectified: `z = W_zx x` or `z = ⌊W_zx x⌋`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputDrive {
    /// `z = W_zx x` (paper, NeurIPS-era code).
    Linear,
    /// `z = ⌊W_zx x⌋` (post-NeurIPS HEAD code).
    Rectified,
}

/// Where the recurrent drive is rectified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecurrentDrive {
    /// `ŷ = W_r ⌊y⌋` (paper, NeurIPS-era code).
    RectifyBefore,
    /// `ŷ = ⌊W_r y⌋` (HEAD code).
    RectifyAfter,
}

/// How the effective recurrent matrix is built from the raw parameter `W_r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecurrentMatrix {
    /// `I + SN(W_r)` (NeurIPS-era code).
    IdentityPlusSpectralNorm,
    /// `SN(W_r)` (unit spectral norm).
    SpectralNorm,
    /// `W_r` as is (HEAD code).
    Free,
}

/// How the normalisation weights are built from the raw parameter `log W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NormWeights {
    /// `W = exp(log W)` (NeurIPS-era code).
    Exp,
    /// `W = clamp(exp(log W), 0, 1)` (HEAD code); the gradient passes where `exp(log W) ≤ 1`.
    ExpClamped,
}

/// How the Euler factors `δ_k = Δt/τ_k` are built from the raw per-unit parameters `p_k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TimeConstants {
    /// `δ_k = max_k · sigmoid(p_k)` with learned `p_k`.
    Learned {
        /// Maximum of `Δt/τ_y`.
        max_y: f64,
        /// Maximum of `Δt/τ_a`.
        max_a: f64,
        /// Maximum of `Δt/τ_{b0}` and `Δt/τ_{b1}`.
        max_b: f64,
    },
    /// `δ_k = max_k · sigmoid(1)`: the parameters are frozen at 1 and get no gradient.
    Fixed {
        /// Maximum of `Δt/τ_y`.
        max_y: f64,
        /// Maximum of `Δt/τ_a`.
        max_a: f64,
        /// Maximum of `Δt/τ_{b0}` and `Δt/τ_{b1}`.
        max_b: f64,
    },
}

impl TimeConstants {
    /// The paper's maxima of `Δt/τ` for `y`, `a` and the gains (docs/model.md#rnn-cell-as-trained).
    pub const PAPER_MAXIMA: (f64, f64, f64) = (0.02, 0.005, 0.1);

    /// The paper's maxima, learned.
    pub const PAPER_LEARNED: Self = Self::Learned {
        max_y: Self::PAPER_MAXIMA.0,
        max_a: Self::PAPER_MAXIMA.1,
        max_b: Self::PAPER_MAXIMA.2,
    };

    /// The paper's maxima, fixed (`p_k` frozen at 1).
    pub const PAPER_FIXED: Self = Self::Fixed {
        max_y: Self::PAPER_MAXIMA.0,
        max_a: Self::PAPER_MAXIMA.1,
        max_b: Self::PAPER_MAXIMA.2,
    };

    /// `(max_y, max_a, max_b)`.
    #[must_use]
    pub fn maxima(&self) -> (f64, f64, f64) {
        match *self {
            Self::Learned {
                max_y,
                max_a,
                max_b,
            }
            | Self::Fixed {
                max_y,
                max_a,
                max_b,
            } => (max_y, max_a, max_b),
        }
    }
}

/// All variant choices of the cell (docs/model.md#rnn-cell-as-trained lists them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellConfig {
    /// Rectification of `z`.
    pub input: InputDrive,
    /// Rectification before or after `W_r`.
    pub recurrent: RecurrentDrive,
    /// Effective recurrent matrix.
    pub recurrence: RecurrentMatrix,
    /// Normalisation weights.
    pub norm_weights: NormWeights,
    /// Time constants.
    pub time_constants: TimeConstants,
}

impl CellConfig {
    /// The NeurIPS-era cell of docs/model.md#rnn-cell-as-trained (the Table 2 configuration).
    pub const NEURIPS: Self = Self {
        input: InputDrive::Linear,
        recurrent: RecurrentDrive::RectifyBefore,
        recurrence: RecurrentMatrix::IdentityPlusSpectralNorm,
        norm_weights: NormWeights::Exp,
        time_constants: TimeConstants::PAPER_LEARNED,
    };

    /// The post-NeurIPS HEAD cell of docs/model.md#rnn-cell-as-trained.
    pub const HEAD: Self = Self {
        input: InputDrive::Rectified,
        recurrent: RecurrentDrive::RectifyAfter,
        recurrence: RecurrentMatrix::Free,
        norm_weights: NormWeights::ExpClamped,
        time_constants: TimeConstants::PAPER_LEARNED,
    };
}

impl Default for CellConfig {
    fn default() -> Self {
        Self::NEURIPS
    }
}

/// Sizes of the cell: `n` units, `m` inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellDims {
    /// Number of principal (and of modulatory) neurons.
    pub n: usize,
    /// Input dimension.
    pub m: usize,
}

/// Effective, packed weights of the cell (see the module docs for the layouts).
#[derive(Debug, Clone, Copy)]
pub struct CellWeights<'a, S> {
    /// Sizes.
    pub dims: CellDims,
    /// `[W_zx; W_bx0; W_bx1]`, `3n x m`.
    pub wx: &'a [S],
    /// Effective `W_r`, `n x n`.
    pub wr: &'a [S],
    /// `[[W_by0, W_ba0]; [W_by1, W_ba1]]`, `2n x 2n`.
    pub wg: &'a [S],
    /// Effective normalisation weights `W`, `n x n`.
    pub w: &'a [S],
    /// `[δ_y | δ_a | δ_b0 | δ_b1]`, `4n`.
    pub dt: &'a [S],
    /// `σ²`, `n`.
    pub sigma2: &'a [S],
}

/// Gradients with respect to the packed weights (same layouts as [`CellWeights`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CellWeightGrads<S> {
    /// `3n x m`.
    pub wx: Vec<S>,
    /// `n x n`.
    pub wr: Vec<S>,
    /// `2n x 2n`.
    pub wg: Vec<S>,
    /// `n x n`.
    pub w: Vec<S>,
    /// `4n`.
    pub dt: Vec<S>,
    /// `n`.
    pub sigma2: Vec<S>,
}

impl<S: Scalar> CellWeightGrads<S> {
    /// Zero gradients for the given sizes.
    #[must_use]
    pub fn zeros(d: CellDims) -> Self {
        let n = d.n;
        Self {
            wx: vec![S::ZERO; 3 * n * d.m],
            wr: vec![S::ZERO; n * n],
            wg: vec![S::ZERO; 4 * n * n],
            w: vec![S::ZERO; n * n],
            dt: vec![S::ZERO; 4 * n],
            sigma2: vec![S::ZERO; n],
        }
    }

    /// Sets every entry to zero (keeping the buffers).
    pub fn clear(&mut self) {
        for v in [
            &mut self.wx,
            &mut self.wr,
            &mut self.wg,
            &mut self.w,
            &mut self.dt,
            &mut self.sigma2,
        ] {
            v.iter_mut().for_each(|x| *x = S::ZERO);
        }
    }

    /// `self += other`, in a fixed order.
    pub fn add(&mut self, other: &Self) {
        crate::linalg::add_assign(&mut self.wx, &other.wx);
        crate::linalg::add_assign(&mut self.wr, &other.wr);
        crate::linalg::add_assign(&mut self.wg, &other.wg);
        crate::linalg::add_assign(&mut self.w, &other.w);
        crate::linalg::add_assign(&mut self.dt, &other.dt);
        crate::linalg::add_assign(&mut self.sigma2, &other.sigma2);
    }
}

/// Per-step scratch of the forward and backward kernels (grown on demand, then reused), and
/// the vector instruction set the element-wise loops run with (see [`crate::simd`]).
#[derive(Debug, Clone, Default)]
pub struct StepScratch<S> {
    p: Vec<S>,
    r: Vec<S>,
    v: Vec<S>,
    t: Vec<S>,
    isa: InstructionSet,
    /// The phase timing of the steps run with this scratch (off unless the engine asks).
    pub(crate) watch: Stopwatch,
}

impl<S: Scalar> StepScratch<S> {
    /// Sets the instruction set of the element-wise loops (keeps the buffers).
    pub fn set_instruction_set(&mut self, isa: InstructionSet) {
        self.isa = isa;
    }

    /// Empty scratch whose element-wise loops run with the given instruction set (the default
    /// detects the widest one; every choice gives bit-identical results).
    #[must_use]
    pub fn with_instruction_set(isa: InstructionSet) -> Self {
        Self {
            isa,
            ..Self::default()
        }
    }

    fn ensure(&mut self, rows: usize, n: usize) {
        for (buf, len) in [
            (&mut self.p, rows * 3 * n),
            (&mut self.r, rows * n),
            (&mut self.v, rows * n),
            (&mut self.t, rows * n),
        ] {
            if buf.len() < len {
                buf.resize(len, S::ZERO);
            }
        }
    }
}

/// The cotangents and GEMM inputs one backward step produces for the weight gradients.
///
/// Each buffer holds `rows` rows; [`accumulate_weight_grads`] consumes blocks of them.
#[derive(Debug)]
pub struct StepRecord<'a, S> {
    /// `p̄ = [z̄ | ḡ_0 | ḡ_1]`, `rows x 3n`; the last `2n` columns are the gate cotangents `ḡ`.
    pub dp: &'a mut [S],
    /// `\bar{\hat y}` (before the rectification mask if any, i.e. the cotangent of `W_r·input`), `rows x n`.
    pub dyhat: &'a mut [S],
    /// `ū`, `rows x n`.
    pub du: &'a mut [S],
    /// `⌊y⌋` (the input of `W_r` when rectifying before it; unused otherwise), `rows x n`.
    pub r: &'a mut [S],
    /// `⌊y⌋² ⊙ ⌊a⌋`, `rows x n`.
    pub v: &'a mut [S],
}

/// Length of one state row (`4n`).
#[must_use]
pub const fn state_width(n: usize) -> usize {
    4 * n
}

/// Length of one cache row (`4n`: `[ŷ | u | s0 | s1]`).
#[must_use]
pub const fn cache_width(n: usize) -> usize {
    4 * n
}

/// Four consecutive length-`n` pieces of `s`.
#[inline]
fn split4<S>(s: &[S], n: usize) -> (&[S], &[S], &[S], &[S]) {
    (&s[..n], &s[n..2 * n], &s[2 * n..3 * n], &s[3 * n..4 * n])
}

/// Four consecutive mutable length-`n` pieces of `s`.
#[inline]
fn split4_mut<S>(s: &mut [S], n: usize) -> (&mut [S], &mut [S], &mut [S], &mut [S]) {
    let (p, rest) = s[..4 * n].split_at_mut(n);
    let (q, rest) = rest.split_at_mut(n);
    let (r, t) = rest.split_at_mut(n);
    (p, q, r, t)
}

/// Three consecutive length-`n` pieces of `s`.
#[inline]
fn split3<S>(s: &[S], n: usize) -> (&[S], &[S], &[S]) {
    (&s[..n], &s[n..2 * n], &s[2 * n..3 * n])
}

/// Lower bound used by `max` to implement an optional rectification without a branch:
/// `0` rectifies, `−∞` leaves the value unchanged.
fn rect_floor<S: Scalar>(rectify: bool) -> S {
    if rectify {
        S::ZERO
    } else {
        S::from_f64(f64::NEG_INFINITY)
    }
}

/// One forward Euler step for `rows` batch rows: reads `x` (`rows x m`) and `state`
/// (`rows x 4n`), writes `next` (`rows x 4n`) and `cache` (`rows x 4n`).
///
/// # Panics
/// If a buffer is too short for `rows`.
#[track_caller]
pub fn forward_step<S: Scalar>(
    cfg: &CellConfig,
    w: &CellWeights<'_, S>,
    rows: usize,
    x: &[S],
    state: &[S],
    next: &mut [S],
    cache: &mut [S],
    scratch: &mut StepScratch<S>,
) {
    let CellDims { n, m } = w.dims;
    let sw = state_width(n);
    let cw = cache_width(n);
    assert!(
        x.len() >= rows * m
            && state.len() >= rows * sw
            && next.len() >= rows * sw
            && cache.len() >= rows * cw,
        "cell forward: buffer too short"
    );
    scratch.ensure(rows, n);
    let StepScratch {
        p,
        r,
        v,
        isa,
        watch,
        ..
    } = scratch;
    let isa = *isa;
    let p = &mut p[..rows * 3 * n];
    let r = &mut r[..rows * n];
    let v = &mut v[..rows * n];
    watch.lap(Phase::Other);

    // p = x wxᵀ: [z_pre | gx0 | gx1].
    gemm(
        ViewMut::new(p, rows, 3 * n),
        Beta::Overwrite,
        View::new(x, rows, m),
        Trans::No,
        View::new(w.wx, 3 * n, m),
        Trans::Yes,
    );
    watch.lap(Phase::ForwardGemm);
    // r = ⌊y⌋, v = ⌊y⌋² ⌊a⌋.
    isa.dispatch(RectifiedRows {
        rows,
        n,
        sw,
        state,
        r,
        v,
    });
    watch.lap(Phase::ForwardElementwise);
    // ŷ (before the mask in the RectifyAfter variant).
    let wr_input = match cfg.recurrent {
        RecurrentDrive::RectifyBefore => View::new(r, rows, n),
        RecurrentDrive::RectifyAfter => View::strided(state, rows, n, sw),
    };
    gemm(
        ViewMut::strided(cache, rows, n, cw),
        Beta::Overwrite,
        wr_input,
        Trans::No,
        View::new(w.wr, n, n),
        Trans::Yes,
    );
    // u = v Wᵀ.
    gemm(
        ViewMut::strided(&mut cache[n..], rows, n, cw),
        Beta::Overwrite,
        View::new(v, rows, n),
        Trans::No,
        View::new(w.w, n, n),
        Trans::Yes,
    );
    // Gate drive [y a] wgᵀ.
    gemm(
        ViewMut::strided(&mut cache[2 * n..], rows, 2 * n, cw),
        Beta::Overwrite,
        View::strided(state, rows, 2 * n, sw),
        Trans::No,
        View::new(w.wg, 2 * n, 2 * n),
        Trans::Yes,
    );

    let (dty, dta, dtb0, dtb1) = split4(w.dt, n);
    let sig2 = &w.sigma2[..n];
    let z_floor: S = rect_floor(cfg.input == InputDrive::Rectified);
    let yh_floor: S = rect_floor(cfg.recurrent == RecurrentDrive::RectifyAfter);
    watch.lap(Phase::ForwardGemm);
    isa.dispatch(ForwardRows {
        rows,
        n,
        sw,
        cw,
        state,
        next,
        cache,
        p,
        dty,
        dta,
        dtb0,
        dtb1,
        sig2,
        z_floor,
        yh_floor,
    });
    watch.lap(Phase::ForwardElementwise);
}

simd_kernel! {
    /// `r = ⌊y⌋`, `v = ⌊y⌋² ⌊a⌋` for every row of a forward step.
    RectifiedRows<'a> {
        rows: usize, n: usize, sw: usize, state: &'a [S], r: &'a mut [S], v: &'a mut [S],
    }
    {
        for b in 0..rows {
            let (y, a, _, _) = split4(&state[b * sw..(b + 1) * sw], n);
            rectified_row(y, a, &mut r[b * n..(b + 1) * n], &mut v[b * n..(b + 1) * n]);
        }
    }
}

simd_kernel! {
    /// The element-wise part of [`forward_step`] for every row.
    ///
    /// The next state's rows go to memory that no recent step touched (the stored states of a
    /// training pass), four interleaved runs of `n` values per row. Each store waits for its
    /// line to be read first, so the loop asks for the next row's lines
    /// [`STORE_PREFETCH_ROWS`] ahead.
    ForwardRows<'a> {
        rows: usize, n: usize, sw: usize, cw: usize,
        state: &'a [S], next: &'a mut [S], cache: &'a mut [S], p: &'a [S],
        dty: &'a [S], dta: &'a [S], dtb0: &'a [S], dtb1: &'a [S], sig2: &'a [S],
        z_floor: S, yh_floor: S,
    }
    {
        let pf = Prefetch::new();
        for b in 0..rows {
            let ahead = b + STORE_PREFETCH_ROWS;
            if ahead < rows {
                pf.lines(&next[ahead * sw..(ahead + 1) * sw]);
            }
            let (y, a, b0, b1) = split4(&state[b * sw..(b + 1) * sw], n);
            let (ny, na, nb0, nb1) = split4_mut(&mut next[b * sw..(b + 1) * sw], n);
            let (yh, u, s0, s1) = split4_mut(&mut cache[b * cw..(b + 1) * cw], n);
            let (zp, gx0, gx1) = split3(&p[b * 3 * n..(b + 1) * 3 * n], n);
            forward_row(
                y, a, b0, b1, zp, gx0, gx1, dty, dta, dtb0, dtb1, sig2, yh, u, s0, s1, ny, na,
                nb0, nb1, z_floor, yh_floor,
            );
        }
    }
}

simd_kernel! {
    /// The element-wise part of [`backward_step`] before its GEMMs, for every row.
    ///
    /// The state and cache rows of a step were stored by the forward pass long before and come
    /// from memory. Each row reads them as eight interleaved runs of `n` values, too short for
    /// the hardware prefetcher to follow, so the loop asks for the rows
    /// [`PREFETCH_ROWS`] ahead itself.
    BackwardRows<'a> {
        rows: usize, n: usize, sw: usize, cw: usize,
        state: &'a [S], cache: &'a [S], g_next: &'a [S], g_state: &'a mut [S], p: &'a [S],
        dp: &'a mut [S], dyhat: &'a mut [S], du: &'a mut [S], rr: &'a mut [S], vv: &'a mut [S],
        dty: &'a [S], dta: &'a [S], dtb0: &'a [S], dtb1: &'a [S], sig2: &'a [S],
        ddty: &'a mut [S], ddta: &'a mut [S], ddtb0: &'a mut [S], ddtb1: &'a mut [S],
        dsig2: &'a mut [S], z_floor: S, yh_floor: S,
    }
    {
        let pf = Prefetch::new();
        for b in 0..rows {
            let ahead = b + PREFETCH_ROWS;
            if ahead < rows {
                pf.lines(&state[ahead * sw..(ahead + 1) * sw]);
                pf.lines(&cache[ahead * cw..(ahead + 1) * cw]);
            }
            let (y, a, b0, b1) = split4(&state[b * sw..(b + 1) * sw], n);
            let (yh, u, s0, s1) = split4(&cache[b * cw..(b + 1) * cw], n);
            let (gy, ga, gb0, gb1) = split4(&g_next[b * sw..(b + 1) * sw], n);
            let (oy, oa, ob0, ob1) = split4_mut(&mut g_state[b * sw..(b + 1) * sw], n);
            let (zp, _, _) = split3(&p[b * 3 * n..(b + 1) * 3 * n], n);
            let (dz, rest) = dp[b * 3 * n..(b + 1) * 3 * n].split_at_mut(n);
            let (dg0, dg1) = rest.split_at_mut(n);
            let rows_n = b * n..(b + 1) * n;
            backward_row(
                y,
                a,
                b0,
                b1,
                zp,
                yh,
                u,
                s0,
                s1,
                gy,
                ga,
                gb0,
                gb1,
                dty,
                dta,
                dtb0,
                dtb1,
                sig2,
                oy,
                oa,
                ob0,
                ob1,
                dz,
                dg0,
                dg1,
                &mut dyhat[rows_n.clone()],
                &mut du[rows_n.clone()],
                &mut rr[rows_n.clone()],
                &mut vv[rows_n],
                ddty,
                ddta,
                ddtb0,
                ddtb1,
                dsig2,
                z_floor,
                yh_floor,
            );
        }
    }
}

simd_kernel! {
    /// The element-wise part of [`backward_step`] after its GEMMs, for every row.
    GemmTermRows<'a> {
        rows: usize, n: usize, sw: usize,
        state: &'a [S], g_state: &'a mut [S], t: &'a [S], t2: &'a [S],
    }
    {
        for b in 0..rows {
            let (y, a, _, _) = split4(&state[b * sw..(b + 1) * sw], n);
            let (oy, oa, _, _) = split4_mut(&mut g_state[b * sw..(b + 1) * sw], n);
            backward_row_gemm_terms(
                y,
                a,
                &t[b * n..(b + 1) * n],
                &t2[b * n..(b + 1) * n],
                oy,
                oa,
            );
        }
    }
}

/// `r = ⌊y⌋`, `v = ⌊y⌋² ⌊a⌋` for one batch row.
#[inline(always)]
fn rectified_row<S: Scalar>(y: &[S], a: &[S], r: &mut [S], v: &mut [S]) {
    let n = y.len();
    let (a, r, v) = (&a[..n], &mut r[..n], &mut v[..n]);
    for i in 0..n {
        let ry = y[i].relu();
        r[i] = ry;
        v[i] = (ry * ry * a[i].relu()).flush_subnormal();
    }
}

/// The element-wise part of [`forward_step`] for one batch row. Every buffer is its own
/// slice argument, which the compiler knows does not alias the others, so the loop
/// vectorises without run-time overlap checks. Always inlined, so that it is compiled for
/// each instruction set [`InstructionSet::dispatch`] enables.
#[inline(always)]
fn forward_row<S: Scalar>(
    y: &[S],
    a: &[S],
    b0: &[S],
    b1: &[S],
    zp: &[S],
    gx0: &[S],
    gx1: &[S],
    dty: &[S],
    dta: &[S],
    dtb0: &[S],
    dtb1: &[S],
    sig2: &[S],
    yh: &mut [S],
    u: &mut [S],
    s0: &mut [S],
    s1: &mut [S],
    ny: &mut [S],
    na: &mut [S],
    nb0: &mut [S],
    nb1: &mut [S],
    z_floor: S,
    yh_floor: S,
) {
    let n = y.len();
    let (a, b0, b1, zp, gx0, gx1) = (&a[..n], &b0[..n], &b1[..n], &zp[..n], &gx0[..n], &gx1[..n]);
    let (dty, dta, dtb0, dtb1, sig2) = (&dty[..n], &dta[..n], &dtb0[..n], &dtb1[..n], &sig2[..n]);
    let (yh, u, s0, s1) = (&mut yh[..n], &mut u[..n], &mut s0[..n], &mut s1[..n]);
    let (ny, na, nb0, nb1) = (&mut ny[..n], &mut na[..n], &mut nb0[..n], &mut nb1[..n]);
    for i in 0..n {
        let z = zp[i].max(z_floor);
        let h = yh[i].max(yh_floor).flush_subnormal();
        yh[i] = h;
        let uu = u[i].flush_subnormal();
        u[i] = uu;
        // σ saturates at 4.2e-18 (see `Scalar::sigmoid`), so gates are never subnormal, and
        // nor are b0, b1 (convex combinations of their previous values and the gates).
        let (g0, g1) = S::sigmoid_pair(s0[i] + gx0[i], s1[i] + gx1[i]);
        s0[i] = g0;
        s1[i] = g1;
        let rho = a[i].relu().sqrt();
        ny[i] = (y[i] + dty[i] * (-y[i] + b1[i] * z + (S::ONE - rho) * h)).flush_subnormal();
        na[i] = (a[i] + dta[i] * (-a[i] + sig2[i] * b0[i] * b0[i] + uu)).flush_subnormal();
        nb0[i] = b0[i] + dtb0[i] * (-b0[i] + g0);
        nb1[i] = b1[i] + dtb1[i] * (-b1[i] + g1);
    }
}

/// One backward step: given `g_next = ∂L/∂next` (`rows x 4n`), overwrites `g_state` with
/// `∂L/∂state`, accumulates `δ̄` into `ddt` and `σ̄²` into `dsigma2`, and fills `rec` with the
/// cotangents from which [`accumulate_weight_grads`] forms the weight gradients. If `dx` is
/// given, it receives `∂L/∂x` (overwritten).
///
/// # Panics
/// If a buffer is too short for `rows`.
#[track_caller]
pub fn backward_step<S: Scalar>(
    cfg: &CellConfig,
    w: &CellWeights<'_, S>,
    rows: usize,
    x: &[S],
    state: &[S],
    cache: &[S],
    g_next: &[S],
    g_state: &mut [S],
    rec: StepRecord<'_, S>,
    ddt: &mut [S],
    dsigma2: &mut [S],
    dx: Option<&mut [S]>,
    scratch: &mut StepScratch<S>,
) {
    let CellDims { n, m } = w.dims;
    let sw = state_width(n);
    let cw = cache_width(n);
    assert!(
        x.len() >= rows * m
            && state.len() >= rows * sw
            && cache.len() >= rows * cw
            && g_next.len() >= rows * sw
            && g_state.len() >= rows * sw,
        "cell backward: buffer too short"
    );
    assert!(
        ddt.len() >= 4 * n && dsigma2.len() >= n,
        "cell backward: gradient buffers too short"
    );
    scratch.ensure(rows, n);
    let StepScratch {
        p,
        t,
        v: t2,
        isa,
        watch,
        ..
    } = scratch;
    let isa = *isa;
    let p = &mut p[..rows * 3 * n];
    let t = &mut t[..rows * n];
    let t2 = &mut t2[..rows * n];
    watch.lap(Phase::Other);
    gemm(
        ViewMut::new(p, rows, 3 * n),
        Beta::Overwrite,
        View::new(x, rows, m),
        Trans::No,
        View::new(w.wx, 3 * n, m),
        Trans::Yes,
    );

    let (dty, dta, dtb0, dtb1) = split4(w.dt, n);
    let sig2 = &w.sigma2[..n];
    let (ddty, ddta, ddtb0, ddtb1) = split4_mut(ddt, n);
    let dsig2 = &mut dsigma2[..n];
    let z_floor: S = rect_floor(cfg.input == InputDrive::Rectified);
    let yh_floor: S = rect_floor(cfg.recurrent == RecurrentDrive::RectifyAfter);
    watch.lap(Phase::BackwardGemm);
    isa.dispatch(BackwardRows {
        rows,
        n,
        sw,
        cw,
        state,
        cache,
        g_next,
        g_state: &mut *g_state,
        p,
        dp: &mut *rec.dp,
        dyhat: &mut *rec.dyhat,
        du: &mut *rec.du,
        rr: &mut *rec.r,
        vv: &mut *rec.v,
        dty,
        dta,
        dtb0,
        dtb1,
        sig2,
        ddty,
        ddta,
        ddtb0,
        ddtb1,
        dsig2,
        z_floor,
        yh_floor,
    });
    watch.lap(Phase::BackwardElementwise);

    // [ȳ ā] += ḡ wg.
    gemm(
        ViewMut::strided(g_state, rows, 2 * n, sw),
        Beta::Accumulate,
        View::strided(&rec.dp[n..], rows, 2 * n, 3 * n),
        Trans::No,
        View::new(w.wg, 2 * n, 2 * n),
        Trans::No,
    );
    // Recurrent path: t = \bar{\hat y} W_r (masked by H(y) below when rectifying before W_r).
    let before = cfg.recurrent == RecurrentDrive::RectifyBefore;
    if before {
        gemm(
            ViewMut::new(t, rows, n),
            Beta::Overwrite,
            View::new(rec.dyhat, rows, n),
            Trans::No,
            View::new(w.wr, n, n),
            Trans::No,
        );
    } else {
        gemm(
            ViewMut::strided(g_state, rows, n, sw),
            Beta::Accumulate,
            View::new(rec.dyhat, rows, n),
            Trans::No,
            View::new(w.wr, n, n),
            Trans::No,
        );
        t.iter_mut().for_each(|e| *e = S::ZERO);
    }
    // Normalisation path: t2 = v̄ = ū W; ȳ += 2 r ⌊a⌋ v̄, ā += r² H(a) v̄.
    gemm(
        ViewMut::new(t2, rows, n),
        Beta::Overwrite,
        View::new(rec.du, rows, n),
        Trans::No,
        View::new(w.w, n, n),
        Trans::No,
    );
    watch.lap(Phase::BackwardGemm);
    isa.dispatch(GemmTermRows {
        rows,
        n,
        sw,
        state,
        g_state,
        t,
        t2,
    });
    watch.lap(Phase::BackwardElementwise);
    if let Some(dx) = dx {
        gemm(
            ViewMut::new(dx, rows, m),
            Beta::Overwrite,
            View::new(rec.dp, rows, 3 * n),
            Trans::No,
            View::new(w.wx, 3 * n, m),
            Trans::No,
        );
        watch.lap(Phase::BackwardGemm);
    }
}

/// The element-wise part of [`backward_step`] for one batch row (see [`forward_row`]).
#[inline(always)]
fn backward_row<S: Scalar>(
    y: &[S],
    a: &[S],
    b0: &[S],
    b1: &[S],
    zp: &[S],
    yh: &[S],
    u: &[S],
    s0: &[S],
    s1: &[S],
    gy: &[S],
    ga: &[S],
    gb0: &[S],
    gb1: &[S],
    dty: &[S],
    dta: &[S],
    dtb0: &[S],
    dtb1: &[S],
    sig2: &[S],
    oy: &mut [S],
    oa: &mut [S],
    ob0: &mut [S],
    ob1: &mut [S],
    dz: &mut [S],
    dg0: &mut [S],
    dg1: &mut [S],
    dyh: &mut [S],
    du: &mut [S],
    rr: &mut [S],
    vv: &mut [S],
    ddty: &mut [S],
    ddta: &mut [S],
    ddtb0: &mut [S],
    ddtb1: &mut [S],
    dsig2: &mut [S],
    z_floor: S,
    yh_floor: S,
) {
    let n = y.len();
    let (a, b0, b1, zp, yh, u, s0, s1) = (
        &a[..n],
        &b0[..n],
        &b1[..n],
        &zp[..n],
        &yh[..n],
        &u[..n],
        &s0[..n],
        &s1[..n],
    );
    let (gy, ga, gb0, gb1) = (&gy[..n], &ga[..n], &gb0[..n], &gb1[..n]);
    let (dty, dta, dtb0, dtb1, sig2) = (&dty[..n], &dta[..n], &dtb0[..n], &dtb1[..n], &sig2[..n]);
    let (oy, oa, ob0, ob1) = (&mut oy[..n], &mut oa[..n], &mut ob0[..n], &mut ob1[..n]);
    let (dz, dg0, dg1, dyh, du, rr, vv) = (
        &mut dz[..n],
        &mut dg0[..n],
        &mut dg1[..n],
        &mut dyh[..n],
        &mut du[..n],
        &mut rr[..n],
        &mut vv[..n],
    );
    let (ddty, ddta, ddtb0, ddtb1, dsig2) = (
        &mut ddty[..n],
        &mut ddta[..n],
        &mut ddtb0[..n],
        &mut ddtb1[..n],
        &mut dsig2[..n],
    );
    let half = S::from_f64(0.5);
    let two = S::from_f64(2.0);
    // Two passes over the row, each with 21 of the 29 streams: the `(y, a)` terms, then the
    // gain terms. One loop over all of them keeps more pointers live than x86-64 has
    // registers; the second pass rereads its shared inputs from L1. Every output is the same
    // expression as in one loop, so the bits are the same.
    for i in 0..n {
        let z = zp[i].max(z_floor);
        let ra = a[i].relu();
        let rho = ra.sqrt();
        let ry = y[i].relu();
        rr[i] = ry;
        vv[i] = (ry * ry * ra).flush_subnormal();

        // y' = y + δ_y (−y + b1 z + (1 − ρ) ŷ)
        let gyd = gy[i] * dty[i];
        ddty[i] += gy[i] * (-y[i] + b1[i] * z + (S::ONE - rho) * yh[i]);
        let hmask = if yh[i] > yh_floor { S::ONE } else { S::ZERO };
        let inv_rho = if rho > S::ZERO { half / rho } else { S::ZERO };

        // a' = a + δ_a (−a + σ² b0² + u)
        let gad = ga[i] * dta[i];
        ddta[i] += ga[i] * (-a[i] + sig2[i] * b0[i] * b0[i] + u[i]);
        dsig2[i] += gad * b0[i] * b0[i];

        // Direct terms; contributions through the GEMMs are added afterwards.
        oy[i] = gy[i] - gyd;
        oa[i] = ga[i] - gad - gyd * yh[i] * inv_rho;
        dyh[i] = (gyd * (S::ONE - rho) * hmask).flush_subnormal();
        du[i] = gad.flush_subnormal();
    }
    for i in 0..n {
        let z = zp[i].max(z_floor);
        let zmask = if zp[i] > z_floor { S::ONE } else { S::ZERO };
        let gyd = gy[i] * dty[i];
        let gad = ga[i] * dta[i];

        // b0' = b0 + δ_b0 (−b0 + s0), b1' likewise.
        let gb0d = gb0[i] * dtb0[i];
        let gb1d = gb1[i] * dtb1[i];
        ddtb0[i] += gb0[i] * (-b0[i] + s0[i]);
        ddtb1[i] += gb1[i] * (-b1[i] + s1[i]);

        ob0[i] = (gb0[i] - gb0d + two * gad * sig2[i] * b0[i]).flush_subnormal();
        ob1[i] = (gb1[i] - gb1d + gyd * z).flush_subnormal();
        dz[i] = (gyd * b1[i] * zmask).flush_subnormal();
        dg0[i] = (gb0d * s0[i] * (S::ONE - s0[i])).flush_subnormal();
        dg1[i] = (gb1d * s1[i] * (S::ONE - s1[i])).flush_subnormal();
    }
}

/// Adds the GEMM-borne terms `t ⊙ H(y) + 2 ⌊y⌋ ⌊a⌋ v̄` to `ȳ` and `⌊y⌋² H(a) v̄` to `ā`.
#[inline(always)]
fn backward_row_gemm_terms<S: Scalar>(
    y: &[S],
    a: &[S],
    t: &[S],
    vb: &[S],
    oy: &mut [S],
    oa: &mut [S],
) {
    let n = y.len();
    let (a, t, vb, oy, oa) = (&a[..n], &t[..n], &vb[..n], &mut oy[..n], &mut oa[..n]);
    let two = S::from_f64(2.0);
    for i in 0..n {
        let ry = y[i].relu();
        let ra = a[i].relu();
        oy[i] = (oy[i] + t[i] * y[i].step() + two * ry * ra * vb[i]).flush_subnormal();
        oa[i] = (oa[i] + ry * ry * a[i].step() * vb[i]).flush_subnormal();
    }
}

/// Inputs of the weight-gradient GEMMs for a block of `k` consecutive steps of `rows` rows
/// each (so `k·rows` stacked rows).
#[derive(Debug, Clone, Copy)]
pub struct WeightGradBlock<'a, S> {
    /// Stacked rows.
    pub rows: usize,
    /// Inputs `x`, `rows x m`.
    pub x: &'a [S],
    /// States the steps started from, `rows x 4n` (contiguous).
    pub states: &'a [S],
    /// Cotangents, as in [`StepRecord`].
    pub dp: &'a [S],
    /// See [`StepRecord::dyhat`].
    pub dyhat: &'a [S],
    /// See [`StepRecord::du`].
    pub du: &'a [S],
    /// See [`StepRecord::r`].
    pub r: &'a [S],
    /// See [`StepRecord::v`].
    pub v: &'a [S],
}

/// Accumulates the weight gradients of a block of stacked rows (one GEMM per weight).
pub fn accumulate_weight_grads<S: Scalar>(
    cfg: &CellConfig,
    dims: CellDims,
    blk: &WeightGradBlock<'_, S>,
    g: &mut CellWeightGrads<S>,
) {
    let CellDims { n, m } = dims;
    let rows = blk.rows;
    let sw = state_width(n);
    gemm(
        ViewMut::new(&mut g.wx, 3 * n, m),
        Beta::Accumulate,
        View::new(blk.dp, rows, 3 * n),
        Trans::Yes,
        View::new(blk.x, rows, m),
        Trans::No,
    );
    let wr_input = match cfg.recurrent {
        RecurrentDrive::RectifyBefore => View::new(blk.r, rows, n),
        RecurrentDrive::RectifyAfter => View::strided(blk.states, rows, n, sw),
    };
    gemm(
        ViewMut::new(&mut g.wr, n, n),
        Beta::Accumulate,
        View::new(blk.dyhat, rows, n),
        Trans::Yes,
        wr_input,
        Trans::No,
    );
    gemm(
        ViewMut::new(&mut g.wg, 2 * n, 2 * n),
        Beta::Accumulate,
        View::strided(&blk.dp[n..], rows, 2 * n, 3 * n),
        Trans::Yes,
        View::strided(blk.states, rows, 2 * n, sw),
        Trans::No,
    );
    gemm(
        ViewMut::new(&mut g.w, n, n),
        Beta::Accumulate,
        View::new(blk.du, rows, n),
        Trans::Yes,
        View::new(blk.v, rows, n),
        Trans::No,
    );
}

/// GEMM floating-point operations of one forward step for `rows` rows.
#[must_use]
pub fn forward_step_flops(d: CellDims, rows: usize) -> f64 {
    let n = d.n;
    crate::linalg::gemm_flops(rows, d.m, 3 * n)
        + 2.0 * crate::linalg::gemm_flops(rows, n, n)
        + crate::linalg::gemm_flops(rows, 2 * n, 2 * n)
}

/// GEMM floating-point operations of one backward step for `rows` rows, including the weight
/// gradients but not the input gradient `dx`.
#[must_use]
pub fn backward_step_flops(d: CellDims, rows: usize) -> f64 {
    let n = d.n;
    let state = crate::linalg::gemm_flops(rows, d.m, 3 * n)
        + 2.0 * crate::linalg::gemm_flops(rows, n, n)
        + crate::linalg::gemm_flops(rows, 2 * n, 2 * n);
    let weights = crate::linalg::gemm_flops(3 * n, rows, d.m)
        + 2.0 * crate::linalg::gemm_flops(n, rows, n)
        + crate::linalg::gemm_flops(2 * n, rows, 2 * n);
    state + weights
}
