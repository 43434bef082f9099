//! The kind of a fixed point of a planar system, from the trace and determinant of its 2 × 2
//! Jacobian.
//!
//! With `τ = tr J`, `Δ = det J` and the discriminant `δ = τ² − 4Δ`, the eigenvalues are
//! `λ± = (τ ± √δ) / 2`:
//!
//! | condition | kind |
//! |---|---|
//! | `Δ = 0` | degenerate (a zero eigenvalue) |
//! | `Δ < 0` | saddle (real eigenvalues of opposite sign) |
//! | `Δ > 0`, `τ = 0` | center (purely imaginary pair) |
//! | `Δ > 0`, `δ < 0` | focus, stable if `τ < 0` (complex pair) |
//! | `Δ > 0`, `δ ≥ 0` | node, stable if `τ < 0` (two real eigenvalues of one sign) |
//!
//! "= 0" is decided with a tolerance relative to the size of the matrix, see
//! [`Kind::from_matrix`].

/// The kind of a planar fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Two negative real eigenvalues.
    StableNode,
    /// A complex pair with negative real part.
    StableFocus,
    /// Two positive real eigenvalues.
    UnstableNode,
    /// A complex pair with positive real part.
    UnstableFocus,
    /// Real eigenvalues of opposite signs.
    Saddle,
    /// A purely imaginary pair.
    Center,
    /// A zero eigenvalue.
    Degenerate,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 7] = [
        Kind::StableNode,
        Kind::StableFocus,
        Kind::UnstableNode,
        Kind::UnstableFocus,
        Kind::Saddle,
        Kind::Center,
        Kind::Degenerate,
    ];

    /// The name used in reports: `stable-node`, `stable-focus`, `unstable-node`,
    /// `unstable-focus`, `saddle`, `center`, `degenerate`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::StableNode => "stable-node",
            Kind::StableFocus => "stable-focus",
            Kind::UnstableNode => "unstable-node",
            Kind::UnstableFocus => "unstable-focus",
            Kind::Saddle => "saddle",
            Kind::Center => "center",
            Kind::Degenerate => "degenerate",
        }
    }

    /// Whether the kind is asymptotically stable (stable node or focus).
    pub fn is_stable(self) -> bool {
        matches!(self, Kind::StableNode | Kind::StableFocus)
    }

    /// Classify from the trace and determinant, treating `|τ| ≤ tol_trace`,
    /// `|Δ| ≤ tol_det` and `|δ| ≤ tol_disc` as zero (a repeated real eigenvalue is a node).
    pub fn from_trace_det(trace: f64, det: f64, tol_trace: f64, tol_det: f64) -> Kind {
        let disc = trace * trace - 4.0 * det;
        // δ is a difference of two terms of size up to tr² and 4|Δ|: its rounding error scales
        // with both.
        let tol_disc = 4.0 * f64::EPSILON * (trace * trace + 4.0 * det.abs()) + 4.0 * tol_det;
        if det.abs() <= tol_det {
            Kind::Degenerate
        } else if det < 0.0 {
            Kind::Saddle
        } else if trace.abs() <= tol_trace {
            Kind::Center
        } else if disc < -tol_disc {
            if trace < 0.0 {
                Kind::StableFocus
            } else {
                Kind::UnstableFocus
            }
        } else if trace < 0.0 {
            Kind::StableNode
        } else {
            Kind::UnstableNode
        }
    }

    /// Classify a 2 × 2 matrix `[[j11, j12], [j21, j22]]`.
    ///
    /// The tolerances are rounding-level: with `ν = ‖J‖_F`, the computed trace is exact to
    /// about `2ε ν` and the determinant `j11 j22 − j12 j21` to about `2ε ν²`; we allow four
    /// times that, so only values that are zero up to the rounding of their own evaluation
    /// count as zero.
    pub fn from_matrix(j: [[f64; 2]; 2]) -> Kind {
        let nu2 = j.iter().flatten().map(|v| v * v).sum::<f64>();
        let trace = j[0][0] + j[1][1];
        let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
        let eps = f64::EPSILON;
        Kind::from_trace_det(trace, det, 8.0 * eps * nu2.sqrt(), 8.0 * eps * nu2)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn names_are_distinct_and_kebab_case() {
        let names: std::collections::HashSet<_> = Kind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), Kind::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
    }

    #[test]
    fn textbook_matrices() {
        // diag(−1, −2): stable node; diag(1, 2): unstable node; diag(−1, 1): saddle.
        assert_eq!(
            Kind::from_matrix([[-1.0, 0.0], [0.0, -2.0]]),
            Kind::StableNode
        );
        assert_eq!(
            Kind::from_matrix([[1.0, 0.0], [0.0, 2.0]]),
            Kind::UnstableNode
        );
        assert_eq!(Kind::from_matrix([[-1.0, 0.0], [0.0, 1.0]]), Kind::Saddle);
        // Rotation generators: eigenvalues ±i (center), −0.1 ± i, 0.1 ± i.
        assert_eq!(Kind::from_matrix([[0.0, -1.0], [1.0, 0.0]]), Kind::Center);
        assert_eq!(
            Kind::from_matrix([[-0.1, -1.0], [1.0, -0.1]]),
            Kind::StableFocus
        );
        assert_eq!(
            Kind::from_matrix([[0.1, -1.0], [1.0, 0.1]]),
            Kind::UnstableFocus
        );
        // A rank-one matrix has a zero eigenvalue.
        assert_eq!(
            Kind::from_matrix([[1.0, 2.0], [2.0, 4.0]]),
            Kind::Degenerate
        );
        // A Jordan block with eigenvalue −1 (δ = 0) counts as a node.
        assert_eq!(
            Kind::from_matrix([[-1.0, 1.0], [0.0, -1.0]]),
            Kind::StableNode
        );
    }
}
