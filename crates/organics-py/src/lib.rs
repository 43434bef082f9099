//! # organics (Python)
//!
//! Python bindings of ORGaNICs-rs, built by maturin into the module `organics`. They convert
//! and call, nothing more: every equation stays in organics-core (the vector fields of paper
//! Eq. 16 and Eq. 102, their Jacobian, integrators, steady states), organics-lyapunov
//! (stability verdicts, one-neuron phase planes, portraits) and organics-train (checkpoints,
//! certificates). docs/model.md is the written home of the equations.
//!
//! | Python | Rust |
//! |---|---|
//! | `Circuit(...)`, `from_file`, `from_json`, `to_dict` | `CircuitSpec` → `Circuit` |
//! | `rhs`, `jacobian` | `Circuit::rhs`, `Circuit::jacobian` |
//! | `steady_state`, `stability` | `organics_lyapunov::steady_state`, `stability_at` |
//! | `simulate` | `integrate::simulate` with `Integrator::from_name` (euler, rk4, dopri5, radau5) |
//! | `fixed_points` | n = 1: `organics_lyapunov::planar`; n > 1: `search_fixed_points` |
//! | `continuation` | `organics_lyapunov::continuation` (and `bifurcation_diagram`) |
//! | `limit_cycle` | `organics_lyapunov::limit_cycle` |
//! | `phase_plane`, `phase_portrait` | `organics_lyapunov::planar`, `portrait` |
//! | `load_checkpoint`, `certify` | `checkpoint::read_tensors`, `observe::certify` |
//!
//! Invalid input raises `ValueError` naming the field (exit status 2 of the command line); a
//! computation that ran and failed raises `organics.ComputationError` (a `RuntimeError`) with
//! the report in its `report` attribute (exit status 1). Long computations release the GIL.

mod checkpoint;
mod circuit;
mod convert;
mod reports;

use pyo3::prelude::*;

pyo3::create_exception!(
    organics,
    ComputationError,
    pyo3::exceptions::PyRuntimeError,
    "A computation that ran and failed (a steady state that did not converge, a circuit that \
     never comes to rest, a state that became non-finite). Its `report` attribute holds the \
     solver's report, or None when there is none."
);

/// ORGaNICs circuits (Rawat, Heeger & Martiniani, NeurIPS 2024) computed in Rust.
#[pymodule]
fn organics(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ComputationError", m.py().get_type::<ComputationError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<circuit::Circuit>()?;
    m.add_class::<reports::SteadyState>()?;
    m.add_class::<reports::Stability>()?;
    m.add_class::<reports::FixedPoint>()?;
    m.add_class::<reports::Trajectory>()?;
    m.add_class::<reports::PhasePlane>()?;
    m.add_class::<checkpoint::Checkpoint>()?;
    m.add_function(wrap_pyfunction!(checkpoint::load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(checkpoint::certify, m)?)?;
    Ok(())
}
