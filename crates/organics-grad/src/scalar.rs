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
//! $$ \sigma(x) = \begin{cases} 1/(1+e^{-x}) & x \ge 0 \\ e^{x}/(1+e^{x}) & x < 0 \end{cases} $$
//!
//! and [`Scalar::flush_subnormal`] maps values with `|x| <` [`Scalar::MIN_POSITIVE`] to zero
//! (see the crate docs on subnormal numbers).

use core::fmt::{Debug, Display};
use serde::Serialize;
use serde::de::DeserializeOwned;

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

    /// Logistic function `1 / (1 + e^{-x})`, evaluated without overflow.
    #[inline]
    fn sigmoid(self) -> Self {
        if self >= Self::ZERO {
            Self::ONE / (Self::ONE + (-self).exp())
        } else {
            let e = self.exp();
            e / (Self::ONE + e)
        }
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

macro_rules! impl_scalar {
    ($t:ty) => {
        impl Scalar for $t {
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
                <$t>::exp(self)
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

impl_scalar!(f32);
impl_scalar!(f64);

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
    fn flush_subnormal_zeroes_only_subnormals() {
        let tiny = f32::MIN_POSITIVE / 4.0;
        assert!(Scalar::flush_subnormal(tiny).abs() <= 0.0);
        assert!(Scalar::flush_subnormal(f32::MIN_POSITIVE) > 0.0);
        assert!(Scalar::flush_subnormal(-1.5f32) < -1.0);
    }
}
