//! The crate's error type, [`GradError`].
//!
//! Shape mistakes made by code that builds a tape are contract violations and panic (with
//! `#[track_caller]`); data handed in from outside (batches, labels, checkpoints) is checked and
//! rejected with one of these variants, each carrying the numbers involved.

use thiserror::Error;

/// Everything that can go wrong in this crate at run time.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum GradError {
    /// A buffer handed in has the wrong length.
    #[error("{what}: expected length {expected}, found {found}")]
    WrongLength {
        /// Which argument.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length received.
        found: usize,
    },
    /// A class label is outside `0..classes`.
    #[error("label {label} at batch row {row} is not below the number of classes {classes}")]
    LabelOutOfRange {
        /// Offending label.
        label: usize,
        /// Batch row holding it.
        row: usize,
        /// Number of classes of the readout.
        classes: usize,
    },
    /// `backward` was called on a value that is not a 1 x 1 scalar.
    #[error("backward needs a 1 x 1 loss, got a {rows} x {cols} value")]
    LossNotScalar {
        /// Rows of the value.
        rows: usize,
        /// Columns of the value.
        cols: usize,
    },
    /// A batched linear solve met a (numerically) singular matrix.
    #[error(
        "batched solve: matrix of sample {sample} is singular (pivot {pivot:e} in column {column})"
    )]
    SingularSystem {
        /// Batch row whose system failed.
        sample: usize,
        /// Column where elimination found no usable pivot.
        column: usize,
        /// Magnitude of the best pivot found.
        pivot: f64,
    },
    /// A loss or gradient became NaN or infinite.
    #[error("non-finite {what} ({value})")]
    NonFinite {
        /// Which quantity.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// A named parameter was not found in a parameter set.
    #[error("no parameter named {name:?}")]
    UnknownParameter {
        /// Requested name.
        name: String,
    },
    /// Two parameter sets (for example parameters and optimiser moments) do not match.
    #[error(
        "parameter {name:?}: expected {expected_rows} x {expected_cols}, found {rows} x {cols}"
    )]
    ShapeMismatch {
        /// Parameter name.
        name: String,
        /// Expected rows.
        expected_rows: usize,
        /// Expected columns.
        expected_cols: usize,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
    },
    /// An input with no rows or no time steps.
    #[error("{what} is empty")]
    EmptyInput {
        /// Which input.
        what: &'static str,
    },
    /// An invalid configuration value.
    #[error("invalid {field}: {value} ({reason})")]
    InvalidConfig {
        /// Configuration field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// What is required.
        reason: &'static str,
    },
}
