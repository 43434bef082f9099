//! numpy in and out, and the Rust errors as Python exceptions.

use crate::ComputationError;
use faer::Mat;
use numpy::ndarray::{Array2, ArrayD};
use numpy::{AllowTypeChange, Complex64, IntoPyArray, PyArray1, PyArray2, PyArrayLikeDyn};
use organics_core::CoreError;
use organics_lyapunov::LyapunovError;
use organics_train::TrainError;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

/// A `ValueError` whose message starts with the field, as the command line's messages do.
pub fn bad(field: &str, what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{field}: {what}"))
}

/// A `ComputationError` carrying `report` (any Python object) in its `report` attribute.
pub fn failed(py: Python<'_>, message: String, report: Option<Bound<'_, PyAny>>) -> PyErr {
    let err = ComputationError::new_err(message);
    let value = err.value(py);
    let report = report.unwrap_or_else(|| py.None().into_bound(py));
    // Setting an attribute on a fresh exception instance cannot fail.
    let _ = value.setattr("report", report);
    err
}

/// organics-core's errors: invalid input → `ValueError`, a failed computation →
/// `ComputationError` (the split of the command line's exit statuses 2 and 1).
pub fn core_err(py: Python<'_>, e: CoreError) -> PyErr {
    if e.is_invalid_input() {
        PyValueError::new_err(e.to_string())
    } else {
        failed(py, e.to_string(), None)
    }
}

/// organics-lyapunov's errors, split as [`core_err`]; a figure directory that cannot be
/// created is an `OSError`.
pub fn lyapunov_err(py: Python<'_>, e: LyapunovError) -> PyErr {
    match e {
        LyapunovError::Core(c) => core_err(py, c),
        LyapunovError::Io { .. } => PyOSError::new_err(e.to_string()),
        e if e.is_invalid_input() => PyValueError::new_err(e.to_string()),
        e => failed(py, e.to_string(), None),
    }
}

/// organics-train's errors, split as [`core_err`]; file-system errors are `OSError`.
pub fn train_err(py: Python<'_>, e: TrainError) -> PyErr {
    match e {
        TrainError::Io { .. } => PyOSError::new_err(e.to_string()),
        e if e.is_invalid_input() => PyValueError::new_err(e.to_string()),
        e => failed(py, e.to_string(), None),
    }
}

/// Any array-like of numbers (a number, a list, a numpy array of any real dtype) as an owned
/// f64 array; `None`, strings and ragged lists are a `ValueError` naming `field`.
pub fn array(field: &str, obj: &Bound<'_, PyAny>) -> PyResult<ArrayD<f64>> {
    let expected = "expected a number or an array of numbers";
    if obj.is_none() {
        return Err(bad(field, format!("{expected}, found None")));
    }
    let a: PyArrayLikeDyn<'_, f64, AllowTypeChange> = obj.extract().map_err(|_| {
        let found = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        bad(field, format!("{expected}, found {found}"))
    })?;
    Ok(a.as_array().to_owned())
}

/// A 1-D array-like of length `n`.
pub fn vector(field: &str, obj: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<f64>> {
    let a = array(field, obj)?;
    if a.ndim() != 1 || a.len() != n {
        return Err(bad(
            field,
            format!(
                "expected a 1-D array of length {n}, found shape {:?}",
                a.shape()
            ),
        ));
    }
    Ok(a.iter().copied().collect())
}

/// The rows of a 2-D array.
pub fn rows(a: &ArrayD<f64>) -> Vec<Vec<f64>> {
    a.outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect()
}

/// A vector as a numpy array.
pub fn vec1(py: Python<'_>, v: Vec<f64>) -> Py<PyArray1<f64>> {
    PyArray1::from_vec(py, v).unbind()
}

/// `(Re, Im)` pairs as a complex numpy array.
pub fn complex1(py: Python<'_>, v: &[(f64, f64)]) -> Py<PyArray1<Complex64>> {
    let c: Vec<Complex64> = v.iter().map(|&(re, im)| Complex64::new(re, im)).collect();
    PyArray1::from_vec(py, c).unbind()
}

/// A row-major `rows × cols` buffer as a 2-D numpy array.
pub fn flat2(py: Python<'_>, data: Vec<f64>, rows: usize, cols: usize) -> Py<PyArray2<f64>> {
    Array2::from_shape_vec((rows, cols), data)
        .expect("buffer holds rows x cols values")
        .into_pyarray(py)
        .unbind()
}

/// A faer matrix as a 2-D numpy array.
pub fn mat(py: Python<'_>, m: &Mat<f64>) -> Py<PyArray2<f64>> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
        .into_pyarray(py)
        .unbind()
}

/// A JSON value as Python objects (dicts, lists, numbers, strings), through the `json` module.
pub fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}
