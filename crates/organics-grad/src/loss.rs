//! Losses on a batch: softmax cross-entropy and mean-squared error, with their gradients.
//!
//! Softmax cross-entropy of logits `Z ∈ ℝ^{B×C}` and labels `c_b`, averaged over the batch:
//!
//! ```text
//! L = (1/B) Σ_b ( log Σ_j exp(Z_bj) − Z_{b,c_b} ),      ∂L/∂Z_bj = (p_bj − [j = c_b]) / B
//! ```
//!
//! with `p = softmax(Z)` computed after subtracting the row maximum. Mean-squared error of two
//! equal-shape matrices: `L = mean((A − B)²)`, `∂L/∂A = 2 (A − B) / N`.

use crate::error::GradError;
use crate::scalar::Scalar;

/// Checks that every label is below `classes`.
///
/// # Errors
/// [`GradError::LabelOutOfRange`] naming the first bad row.
pub fn check_labels(labels: &[usize], classes: usize) -> Result<(), GradError> {
    match labels.iter().position(|&l| l >= classes) {
        Some(row) => Err(GradError::LabelOutOfRange {
            label: labels[row],
            row,
            classes,
        }),
        None => Ok(()),
    }
}

/// Writes the row softmax of `logits` (`rows x classes`) into `probs` and returns
/// `(Σ_b −log p_{b,c_b}, number of rows whose arg-max equals the label)`. Labels must be valid.
pub fn softmax_xent_sum<S: Scalar>(
    logits: &[S],
    classes: usize,
    labels: &[usize],
    probs: &mut [S],
) -> (S, usize) {
    let mut total = S::ZERO;
    let mut correct = 0;
    for (b, &label) in labels.iter().enumerate() {
        let row = &logits[b * classes..(b + 1) * classes];
        let p = &mut probs[b * classes..(b + 1) * classes];
        let mut arg = 0;
        let mut mx = row[0];
        for (j, &z) in row.iter().enumerate() {
            if z > mx {
                mx = z;
                arg = j;
            }
        }
        let mut sum = S::ZERO;
        for (pj, &z) in p.iter_mut().zip(row) {
            *pj = (z - mx).exp();
            sum += *pj;
        }
        for pj in p.iter_mut() {
            *pj /= sum;
        }
        total += sum.ln() - (row[label] - mx);
        if arg == label {
            correct += 1;
        }
    }
    (total, correct)
}

/// Accumulates `scale · (p − onehot)` into `g_logits`.
pub fn softmax_xent_backward<S: Scalar>(
    probs: &[S],
    classes: usize,
    labels: &[usize],
    scale: S,
    g_logits: &mut [S],
) {
    for (b, &label) in labels.iter().enumerate() {
        let p = &probs[b * classes..(b + 1) * classes];
        let g = &mut g_logits[b * classes..(b + 1) * classes];
        for (j, (gj, &pj)) in g.iter_mut().zip(p).enumerate() {
            let y = if j == label { S::ONE } else { S::ZERO };
            *gj += scale * (pj - y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_give_log_classes() {
        let logits = vec![0.3f64; 2 * 4];
        let mut probs = vec![0.0; 8];
        let (sum, _) = softmax_xent_sum(&logits, 4, &[1, 3], &mut probs);
        // Equal logits: each row contributes log 4 exactly up to rounding.
        assert!((sum / 2.0 - 4f64.ln()).abs() < 1e-14);
        assert!(check_labels(&[1, 4], 4).is_err());
    }
}
