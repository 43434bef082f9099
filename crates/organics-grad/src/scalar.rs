//! The floating-point element type: [`Scalar`], implemented for `f32` (training) and `f64`
//! (gradient checks).
//!
//! Every kernel in this crate is generic over `S: Scalar`, so one implementation serves the
//! fast `f32` training path and the `f64` finite-difference checks. The trait bundles faer's
//! [`RealField`](faer::traits::RealField) (so that faer's GEMM accepts it) with the handful of
//! elementary functions the kernels need.
//!
//! The logistic function is evaluated in the overflow-free form
//!
//! ```text
//! σ(x) = 1 / (1 + e^{−x})     for x ≥ 0
//! σ(x) = eˣ / (1 + eˣ)        for x < 0
//! ```
//!
//! and [`Scalar::flush_subnormal`] maps values with `|x| <` [`Scalar::MIN_POSITIVE`] to zero
//! (see the crate docs on subnormal numbers).

use crate::lane_lu::{LANES, Lane, PANEL};
use core::fmt::{Debug, Display};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `σ(x)` is evaluated as `σ(max(x, −40))`: `σ(−40) ≈ 4.2e-18` is far above the subnormal
/// threshold `1.2e-38`, and `(1 + e^{40})² ≈ 5.5e34` is finite in `f32`, which
/// [`Scalar::sigmoid_pair`] relies on. Below the floor the true value is smaller than
/// `4.2e-18`, so the change is at most `4.2e-18` in value and in slope.
pub const SIGMOID_FLOOR_ARG: f64 = 40.0;

/// A real floating-point type usable by every kernel of this crate (`f32` or `f64`).
pub trait Scalar:
    faer::traits::RealField
    + Copy
    + Default
    + Send
    + Sync
    + Debug
    + Display
    + PartialOrd
    + core::ops::Neg<Output = Self>
    + core::iter::Sum
    + Serialize
    + DeserializeOwned
    + 'static
{
    /// Machine epsilon.
    const EPSILON: Self;
    /// Smallest positive normal number; anything smaller in magnitude is subnormal.
    const MIN_POSITIVE: Self;
    /// Zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;
    /// Lossy conversion from `f64` (round to nearest).
    fn from_f64(x: f64) -> Self;
    /// Conversion to `f64` (exact for `f32` and `f64`).
    fn to_f64(self) -> f64;
    /// `e^x`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// The larger of two values (the non-NaN one if one is NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller of two values (the non-NaN one if one is NaN).
    fn min(self, other: Self) -> Self;
    /// Whether the value is finite.
    fn is_finite(self) -> bool;
    /// `x ← x − m ⊙ u` element-wise over equal-length slices, in `simd`'s explicit vectors of
    /// this type (a multiplication and a subtraction, each correctly rounded: the same values
    /// as the scalar loop). The kernel of [`crate::lane_lu`]: written with explicit vectors
    /// because, left to itself, the compiler vectorises the loops around it across the wrong
    /// index (gathering strided scalars).
    fn sub_mul_simd<A: pulp::Simd>(simd: A, x: &mut [Self], m: &[Self], u: &[Self]);

    /// `x_e ← x_e − m_{e mod L} u_e` over equal-length slices whose length is a multiple of
    /// `L` = [`LANES`]: a row of interleaved lane vectors times one multiplier per lane
    /// (see [`crate::lane_lu`]), as flat vectors of `simd`'s full width (a vector wider than
    /// `L` covers several entries, the multipliers repeated). Each element gets the one
    /// multiplication and subtraction of [`Scalar::sub_mul_simd`].
    fn sub_mul_lanes_simd<A: pulp::Simd>(simd: A, x: &mut [Self], m: &Lane<Self>, u: &[Self]);

    /// `x_e ← (…((x_e − m⁰_{e mod L} u⁰_e) − m¹_{e mod L} u¹_e) − …) − m^{P−1}_{e mod L} u^{P−1}_e`
    /// (`P` = [`PANEL`], `L` = [`LANES`]): the trailing update of [`crate::lane_lu`]'s
    /// blocked elimination for one row, with the accumulators held in registers, in the order
    /// and roundings of `P` calls of [`Scalar::sub_mul_lanes_simd`].
    fn sub_mul_panel_simd<A: pulp::Simd>(
        simd: A,
        x: &mut [Self],
        m: &[Lane<Self>; PANEL],
        u: &[&[Self]; PANEL],
    );

    /// [`Scalar::sub_mul_panel_simd`] for two rows at once, each vector of `u` loaded once
    /// for both (each entry gets the same operations in the same order, so the same bits).
    /// Vectors of fewer than `2 L` entries (AVX2's 8 `f32`) update the rows one at a time:
    /// the two rows' multipliers would not fit in their 16 registers.
    fn sub_mul_panel2_simd<A: pulp::Simd>(
        simd: A,
        x: [&mut [Self]; 2],
        m: [&[Lane<Self>; PANEL]; 2],
        u: &[&[Self]; PANEL],
    );

    /// Logistic function `1 / (1 + e^{-x})`, branch-free, saturating at
    /// `σ(−SIGMOID_FLOOR_ARG) ≈ 4.2e-18` for very negative `x` (so saturated gates never
    /// produce subnormals).
    #[inline]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).min(Self::from_f64(SIGMOID_FLOOR_ARG)).exp())
    }

    /// `(σ(x), σ(y))` with a single division: `d_x = 1 + e^{-x}`, `d_y = 1 + e^{-y}`,
    /// `σ(x) = d_y / (d_x d_y)`, `σ(y) = d_x / (d_x d_y)` (about three roundings).
    #[inline]
    fn sigmoid_pair(x: Self, y: Self) -> (Self, Self) {
        let floor = Self::from_f64(SIGMOID_FLOOR_ARG);
        let dx = Self::ONE + (-x).min(floor).exp();
        let dy = Self::ONE + (-y).min(floor).exp();
        let inv = Self::ONE / (dx * dy);
        (dy * inv, dx * inv)
    }

    /// `max(x, 0)`.
    #[inline]
    fn relu(self) -> Self {
        if self > Self::ZERO { self } else { Self::ZERO }
    }

    /// Heaviside step with `H(0) = 0`: the derivative of [`Scalar::relu`] used everywhere.
    #[inline]
    fn step(self) -> Self {
        if self > Self::ZERO {
            Self::ONE
        } else {
            Self::ZERO
        }
    }

    /// `x` if `|x| >= MIN_POSITIVE`, else `0` (keeps kernels out of the subnormal range).
    #[inline]
    fn flush_subnormal(self) -> Self {
        if self.abs() < Self::MIN_POSITIVE {
            Self::ZERO
        } else {
            self
        }
    }
}

/// Vector accumulators of [`Scalar::sub_mul_panel_simd`] updated side by side (independent
/// dependency chains; with its `PANEL` multipliers, 12 vector registers).
const PANEL_ACCUMULATORS: usize = 4;

/// Vector accumulators per row of [`Scalar::sub_mul_panel2_simd`] (with the two rows'
/// `2 · PANEL` multipliers, 20 of AVX-512's 32 vector registers). One and two measured the
/// same on a Zen 5 at n = 120; three, four or six, and four rows at once, were slower
/// (docs/performance.md).
const PAIR_ACCUMULATORS: usize = 2;

macro_rules! impl_scalar {
    ($t:ty, $exp:path, $vec:ident, $as_mut:ident, $as:ident, $mul:ident, $sub:ident) => {
        /// A vector of `simd`'s `width` entries (a multiple of `LANES`) holding the lane
        /// vector `m` repeated.
        macro_rules! repeated {
            ($m:expr, $width:expr) => {{
                // pulp's widest vector (AVX-512's 16 `f32`) is far below 64 entries.
                let mut buffer = [0.0 as $t; 64];
                for (e, b) in buffer[..$width].iter_mut().enumerate() {
                    *b = $m[e % LANES];
                }
                A::$as(&buffer[..$width]).0[0]
            }};
        }

        impl Scalar for $t {
            #[inline(always)]
            fn sub_mul_lanes_simd<A: pulp::Simd>(
                simd: A,
                x: &mut [Self],
                m: &Lane<Self>,
                u: &[Self],
            ) {
                debug_assert!(x.len() == u.len() && x.len() % LANES == 0);
                let width = core::mem::size_of::<A::$vec>() / core::mem::size_of::<$t>();
                if width % LANES != 0 {
                    for (x, u) in x.chunks_exact_mut(LANES).zip(u.chunks_exact(LANES)) {
                        Self::sub_mul_simd(simd, x, m, u);
                    }
                    return;
                }
                let mv = repeated!(m, width);
                let (xv, xt) = A::$as_mut(x);
                let (uv, ut) = A::$as(u);
                for (x, &u) in xv.iter_mut().zip(uv) {
                    *x = simd.$sub(*x, simd.$mul(mv, u));
                }
                // The tail starts at a multiple of `width`, itself a multiple of LANES.
                for (e, (x, &u)) in xt.iter_mut().zip(ut).enumerate() {
                    *x -= m[e % LANES] * u;
                }
            }

            #[inline(always)]
            fn sub_mul_panel_simd<A: pulp::Simd>(
                simd: A,
                x: &mut [Self],
                m: &[Lane<Self>; PANEL],
                u: &[&[Self]; PANEL],
            ) {
                debug_assert!(x.len() % LANES == 0 && u.iter().all(|u| u.len() == x.len()));
                let width = core::mem::size_of::<A::$vec>() / core::mem::size_of::<$t>();
                if width % LANES != 0 {
                    // Update by update over the whole row: each entry still gets them in order.
                    for (m, u) in m.iter().zip(u) {
                        Self::sub_mul_lanes_simd(simd, x, m, u);
                    }
                    return;
                }
                let mv: [A::$vec; PANEL] = core::array::from_fn(|p| repeated!(&m[p], width));
                let (xv, xt) = A::$as_mut(x);
                let uv: [&[A::$vec]; PANEL] = core::array::from_fn(|p| A::$as(u[p]).0);
                let mut chunks = xv.chunks_exact_mut(PANEL_ACCUMULATORS);
                let mut i = 0;
                for xc in &mut chunks {
                    let mut acc: [A::$vec; PANEL_ACCUMULATORS] = core::array::from_fn(|k| xc[k]);
                    for p in 0..PANEL {
                        let up = &uv[p][i..i + PANEL_ACCUMULATORS];
                        for k in 0..PANEL_ACCUMULATORS {
                            acc[k] = simd.$sub(acc[k], simd.$mul(mv[p], up[k]));
                        }
                    }
                    xc.copy_from_slice(&acc);
                    i += PANEL_ACCUMULATORS;
                }
                for x in chunks.into_remainder() {
                    let mut acc = *x;
                    for p in 0..PANEL {
                        acc = simd.$sub(acc, simd.$mul(mv[p], uv[p][i]));
                    }
                    *x = acc;
                    i += 1;
                }
                let base = i * width;
                for (e, x) in xt.iter_mut().enumerate() {
                    for p in 0..PANEL {
                        *x -= m[p][e % LANES] * u[p][base + e];
                    }
                }
            }

            #[inline(always)]
            fn sub_mul_panel2_simd<A: pulp::Simd>(
                simd: A,
                x: [&mut [Self]; 2],
                m: [&[Lane<Self>; PANEL]; 2],
                u: &[&[Self]; PANEL],
            ) {
                let width = core::mem::size_of::<A::$vec>() / core::mem::size_of::<$t>();
                let [x0, x1] = x;
                // Below two entries per vector (AVX2's 8 `f32`), the two rows' 2·PANEL
                // multipliers and accumulators would not fit in the registers.
                if width % LANES != 0 || width < 2 * LANES {
                    Self::sub_mul_panel_simd(simd, x0, m[0], u);
                    Self::sub_mul_panel_simd(simd, x1, m[1], u);
                    return;
                }
                let mv0: [A::$vec; PANEL] = core::array::from_fn(|p| repeated!(&m[0][p], width));
                let mv1: [A::$vec; PANEL] = core::array::from_fn(|p| repeated!(&m[1][p], width));
                let (xv0, xt0) = A::$as_mut(x0);
                let (xv1, xt1) = A::$as_mut(x1);
                let uv: [&[A::$vec]; PANEL] = core::array::from_fn(|p| A::$as(u[p]).0);
                let mut c0 = xv0.chunks_exact_mut(PAIR_ACCUMULATORS);
                let mut c1 = xv1.chunks_exact_mut(PAIR_ACCUMULATORS);
                let mut i = 0;
                for (y0, y1) in (&mut c0).zip(&mut c1) {
                    let mut a0: [A::$vec; PAIR_ACCUMULATORS] = core::array::from_fn(|k| y0[k]);
                    let mut a1: [A::$vec; PAIR_ACCUMULATORS] = core::array::from_fn(|k| y1[k]);
                    for p in 0..PANEL {
                        let up = &uv[p][i..i + PAIR_ACCUMULATORS];
                        for k in 0..PAIR_ACCUMULATORS {
                            a0[k] = simd.$sub(a0[k], simd.$mul(mv0[p], up[k]));
                            a1[k] = simd.$sub(a1[k], simd.$mul(mv1[p], up[k]));
                        }
                    }
                    y0.copy_from_slice(&a0);
                    y1.copy_from_slice(&a1);
                    i += PAIR_ACCUMULATORS;
                }
                for (y0, y1) in c0.into_remainder().iter_mut().zip(c1.into_remainder()) {
                    let (mut a0, mut a1) = (*y0, *y1);
                    for p in 0..PANEL {
                        a0 = simd.$sub(a0, simd.$mul(mv0[p], uv[p][i]));
                        a1 = simd.$sub(a1, simd.$mul(mv1[p], uv[p][i]));
                    }
                    (*y0, *y1) = (a0, a1);
                    i += 1;
                }
                let base = i * width;
                for (xt, m) in [(xt0, m[0]), (xt1, m[1])] {
                    for (e, x) in xt.iter_mut().enumerate() {
                        for p in 0..PANEL {
                            *x -= m[p][e % LANES] * u[p][base + e];
                        }
                    }
                }
            }

            #[inline(always)]
            fn sub_mul_simd<A: pulp::Simd>(simd: A, x: &mut [Self], m: &[Self], u: &[Self]) {
                let (xv, xt) = A::$as_mut(x);
                let (mv, mt) = A::$as(m);
                let (uv, ut) = A::$as(u);
                for ((x, &m), &u) in xv.iter_mut().zip(mv).zip(uv) {
                    *x = simd.$sub(*x, simd.$mul(m, u));
                }
                for ((x, &m), &u) in xt.iter_mut().zip(mt).zip(ut) {
                    *x -= m * u;
                }
            }
            const EPSILON: Self = <$t>::EPSILON;
            const MIN_POSITIVE: Self = <$t>::MIN_POSITIVE;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                f64::from(self)
            }
            #[inline]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
        }
    };
}

impl_scalar!(
    f32,
    exp_f32,
    f32s,
    as_mut_simd_f32s,
    as_simd_f32s,
    mul_f32s,
    sub_f32s
);
impl_scalar!(
    f64,
    f64::exp,
    f64s,
    as_mut_simd_f64s,
    as_simd_f64s,
    mul_f64s,
    sub_f64s
);

/// `e^x` in `f32` without a library call, so that loops over it vectorise: Cody–Waite range
/// reduction `x = k ln 2 + r`, `|r| ≤ ln2/2`, a degree-6 polynomial for `e^r` (Cephes
/// coefficients, relative error below 2 ulp), and `2^k` built from the exponent bits. Inputs
/// are clamped to `[−87, 88]` (results `1.6e-38 .. 1.7e38`, never subnormal or infinite);
/// NaN is returned unchanged.
#[inline]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding and subtracting it rounds to an integer
    let xc = x.clamp(-87.0, 88.0);
    // kr's bit pattern is bits(1.5 · 2^23) + k for the integer k = round(x log2 e): the
    // exponent 2^k is then built with integer operations only (no float-to-int conversion).
    let kr = xc * LOG2E + ROUND;
    let k = kr - ROUND;
    let r = xc - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits(kr.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if x.is_nan() { x } else { e * scale }
}

#[cfg(test)]
mod tests {
    use super::Scalar;

    #[test]
    fn sigmoid_is_symmetric_and_finite_at_extremes() {
        for &x in &[-1000.0f64, -30.0, -1.0, 0.0, 0.5, 30.0, 1000.0] {
            let s = Scalar::sigmoid(x);
            let t = Scalar::sigmoid(-x);
            // σ(x) + σ(−x) = 1 up to one rounding of each term.
            assert!((s + t - 1.0).abs() <= 2.0 * f64::EPSILON, "x = {x}");
            assert!(s.is_finite());
        }
    }

    #[test]
    fn sigmoid_pair_matches_two_sigmoids() {
        for &(x, y) in &[
            (-45.0f32, -45.0f32),
            (-3.0, 2.0),
            (0.0, 0.0),
            (10.0, -39.0),
            (50.0, 50.0),
        ] {
            let (a, b) = Scalar::sigmoid_pair(x, y);
            // Three extra roundings at most: a few ulps of f32.
            assert!(
                (a - Scalar::sigmoid(x)).abs() <= 4.0 * f32::EPSILON * Scalar::sigmoid(x),
                "{x}"
            );
            assert!(
                (b - Scalar::sigmoid(y)).abs() <= 4.0 * f32::EPSILON * Scalar::sigmoid(y),
                "{y}"
            );
        }
    }

    #[test]
    fn f32_exp_is_accurate_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = f64::from(x).exp();
            let got = f64::from(Scalar::exp(x));
            worst = worst.max((got - exact).abs() / exact);
            x += 0.0137;
        }
        // Polynomial error < 2 ulp of f32 (2 · 6e-8) plus the rounding of the argument.
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(Scalar::exp(f32::NAN).is_nan());
        assert!(Scalar::exp(-1000.0f32) >= f32::MIN_POSITIVE);
        assert!(Scalar::exp(1000.0f32).is_finite());
    }

    #[test]
    fn flush_subnormal_zeroes_only_subnormals() {
        let tiny = f32::MIN_POSITIVE / 4.0;
        assert!(Scalar::flush_subnormal(tiny).abs() <= 0.0);
        assert!(Scalar::flush_subnormal(f32::MIN_POSITIVE) > 0.0);
        assert!(Scalar::flush_subnormal(-1.5f32) < -1.0);
    }
}
