//! Firing rates of the principal neurons.
//!
//! ```text
//! r = y⁺ = ⌊y⌋²,   ⌊·⌋ = max(·, 0)
//! ```

/// Firing rates `r_i = max(y_i, 0)²`, written into `out`.
///
/// # Panics
/// If `out.len() != y.len()` (a programming error, not bad input).
pub fn firing_rates_into(y: &[f64], out: &mut [f64]) {
    assert_eq!(y.len(), out.len(), "firing_rates_into: length mismatch");
    for (o, &yi) in out.iter_mut().zip(y) {
        let p = yi.max(0.0);
        *o = p * p;
    }
}

/// Firing rates `r_i = max(y_i, 0)²` as a new vector.
pub fn firing_rates(y: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; y.len()];
    firing_rates_into(y, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rectified_squares() {
        let r = firing_rates(&[-2.0, 0.0, 3.0]);
        assert_eq!(r, vec![0.0, 0.0, 9.0]);
    }
}
