//! # organics-core
//!
//! The ORGaNICs circuit (oscillatory recurrent gated neural integrator circuits) of
//! Rawat, Heeger & Martiniani, *Unconditional stability of a recurrent neural circuit
//! implementing divisive normalization*, NeurIPS 2024.
//!
//! A circuit has `n` principal neurons with membrane potentials `y` and `n` modulatory neurons
//! with potentials `a`. The state is stored flat as `x = [y; a]` (length `2n`).
//!
//! The main model (paper Eq. 16), element-wise:
//!
//! ```text
//! τ_y ⊙ dy/dt = −y + b ⊙ z + (1 − √⌊a⌋) ⊙ (W_r y)
//! τ_a ⊙ da/dt = −a + b0² ⊙ σ² + W (y² ⊙ ⌊a⌋)
//! ```
//!
//! and the rectified model (paper Eq. 102) replaces `y` by `⌊y⌋` inside `W_r y` and `y²`.
//! Firing rates are `r = ⌊y⌋²`.
//!
//! | module | object |
//! |---|---|
//! | [`params`] | the validated circuit ([`Circuit`]) and its JSON description ([`CircuitSpec`]) |
//! | [`dynamics`] | the two vector fields and the [`VectorField`] trait |
//! | [`jacobian`] | the analytic Jacobian of each vector field |
//! | [`rates`] | firing rates `⌊y⌋²` |
//! | [`integrate`] | Euler, RK4, Dormand–Prince 5(4), Radau IIA 5; `simulate` and `settle` |
//! | [`steady_state`] | closed form (W_r = I), the paper's iterative algorithm, Newton polish |
//! | [`ensemble`] | seeded random circuits (the Fig. 4 ensemble and the theorem's hypotheses) |
//! | [`testing`] | test problems with closed-form solutions |
//!
//! Names such as `W_r`, `b0`, `tau_y` mirror the paper's symbols; everything is `f64`.
//!
//! ```
//! use organics_core::{CircuitSpec, steady_state};
//! let spec = CircuitSpec::from_json(r#"{
//!     "model": "main", "tau_y": 2.0, "tau_a": 2.0, "b": 0.5, "b0": 0.5, "sigma": 0.1,
//!     "w_r": "identity", "w": 1.0, "z": [1.0] }"#).unwrap();
//! let circuit = spec.build().unwrap();
//! let ss = steady_state::closed_form(&circuit).unwrap();
//! // divisive normalisation: r = (bz)² / (b0²σ² + w (bz)²)
//! let r = ss.y[0] * ss.y[0];
//! assert!((r - 0.25 / (0.0025 + 0.25)).abs() < 1e-12);
//! ```
#![allow(non_snake_case)]

pub mod dynamics;
pub mod ensemble;
mod error;
pub mod integrate;
pub mod jacobian;
pub mod params;
pub mod rates;
pub mod steady_state;
pub mod testing;

pub use dynamics::VectorField;
pub use error::CoreError;
pub use params::{Circuit, CircuitSpec, Model, Recurrence};
pub use steady_state::{SteadyStateReport, StopReason};
