//! # organics-lyapunov
//!
//! Linear stability of ORGaNICs circuits (Rawat, Heeger & Martiniani, NeurIPS 2024), on top of
//! the vector fields and analytic Jacobians of [`organics_core`]:
//!
//! | module | object |
//! |---|---|
//! | [`spectrum`] | eigenvalues / eigenvectors of a real matrix (faer), with exact balancing |
//! | [`stability`](mod@stability) | spectral abscissa `max Re λ(J)`, the stable/unstable verdict and its tolerance |
//! | [`classify`] | the kind of a planar fixed point from trace and determinant |
//! | [`fixed_point_search`] | fixed points of any circuit by deflated Newton from seeded starts (an enumeration, not a proof) |
//! | [`limit_cycle`](mod@limit_cycle) | periodic orbits: detection, shooting with the variational equations, Floquet multipliers |
//! | [`oscillator`] | the damped-oscillator form `ẍ + Bẋ + Kx = 0` for W_r = I (docs/model.md#oscillator-form) |
//! | `planar` | the 2-D phase plane (n = 1): all fixed points, nullclines, flow, trajectories (feature `plot`) |
//! | `panels` | the one-neuron circuits of the paper's Figs. 1–3 (feature `plot`) |
//! | `continuation` | fixed-point branches under one parameter: pseudo-arclength continuation, folds, Hopf points, bifurcation diagrams (feature `plot`) |
//! | `conjecture` | the measured fraction of stable random circuits versus ‖W_r‖₂ (docs/model.md#general-recurrence; feature `plot`) |
//! | `portrait` | phase-portrait figures (SVG, PNG) and the paper's Figs. 1–3 (feature `plot`) |
//! | `json` | the reports as the JSON objects `organics` prints and the Python bindings return (feature `json`) |
//!
//! The default feature `plot` adds the phase plane, the figures (plotters, a bundled font,
//! nalgebra) and the experiments; `default-features = false` leaves the analysis alone. The
//! feature `json` (serde_json, off by default) adds the reports' JSON builders.
//! [`steady_state()`] is where steady states get their verdict: organics-core reports fixed
//! points without judging them (core cannot depend on this crate), and every caller that
//! needs stability — the command line's `steady-state`, `stability` and `certify`, the
//! training observers — goes through [`steady_state()`] / [`linear_stability`].
//!
//! Everything is `f64`; eigenvalues are in the inverse of the circuit's time unit (1/ms for the
//! paper's figures). Names such as `W_r`, `b0`, `tau_y` mirror the paper's symbols.
//!
//! ```
//! use organics_core::CircuitSpec;
//! let circuit = CircuitSpec::from_json(r#"{
//!     "model": "main", "tau_y": 2.0, "tau_a": 2.0, "b": 0.5, "b0": 0.5, "sigma": 0.1,
//!     "w_r": "identity", "w": 1.0, "z": [1.0] }"#).unwrap().build().unwrap();
//! let report = organics_lyapunov::stability(&circuit).unwrap();
//! assert!(report.stable && report.max_real < 0.0);
//! assert_eq!(report.kind.unwrap().name(), "stable-focus");
//! ```
#![allow(non_snake_case)]

pub mod classify;
mod error;
pub mod fixed_point_search;
#[cfg(feature = "json")]
pub mod json;
pub mod limit_cycle;
pub mod oscillator;
pub mod spectrum;
pub mod stability;
#[cfg(feature = "plot")]
mod stroke;

pub use classify::Kind;
pub use error::LyapunovError;
pub use fixed_point_search::{FoundPoint, SearchOptions, SearchReport, search_fixed_points};
pub use limit_cycle::{CycleIntegrator, CycleOptions, CycleOutcome, LimitCycle, limit_cycle};
pub use oscillator::OscillatorForm;
pub use stability::{
    LinearStability, StabilityReport, SteadyState, Verdict, linear_stability, stability,
    stability_at, stability_with, steady_state,
};
#[cfg(feature = "plot")]
pub mod planar;
#[cfg(feature = "plot")]
pub use planar::{FixedPoint2D, Window, fixed_points, newton_fixed_points};
#[cfg(feature = "plot")]
pub mod conjecture;
#[cfg(feature = "plot")]
pub mod continuation;
#[cfg(feature = "plot")]
pub mod panels;
#[cfg(feature = "plot")]
pub mod portrait;
#[cfg(feature = "plot")]
pub use portrait::{
    Portrait, PortraitOptions, default_window, phase_portrait, render_paper_figures,
};
