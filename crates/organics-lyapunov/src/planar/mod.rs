//! The 2-D phase plane of a one-neuron circuit (n = 1, state `(y, a)`).
//!
//! | module | object |
//! |---|---|
//! | [`field`] | planar vector fields ([`PlaneField`]), the circuit as one, and a seeded Newton search for zeros |
//! | [`fixed_points`](mod@fixed_points) | every real fixed point: the quartic in `s = √a` (main model), its piecewise branches (rectified model), classification |
//! | [`nullclines`](mod@nullclines) | the y- and a-nullclines as polylines |
//! | [`flow`] | the vector field on a grid, trajectories, and plot windows |
//! | [`manifolds`] | the stable manifolds (separatrices) of saddles |
//!
//! nalgebra's fixed-size `Vector2`/`Matrix2` are used inside this module only; the circuit's
//! slices are converted at one place ([`PlaneCircuit`]), and results are plain `f64` structs.

pub mod field;
pub mod fixed_points;
pub mod flow;
pub mod manifolds;
pub mod nullclines;

pub use field::{NewtonSearchOptions, PlaneCircuit, PlaneField, newton_search};
pub use fixed_points::{
    FixedPoint2D, fixed_points, newton_fixed_points, quartic_coefficients, real_roots,
};
pub use flow::{Trajectory2D, VectorGrid, Window, trajectory, vector_grid};
pub use manifolds::{BranchEnd, ManifoldBranch, StableManifold, stable_manifolds};
pub use nullclines::{Nullclines, nullclines};
