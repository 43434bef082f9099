//! # organics-train
//!
//! The `organics` command-line binary: steady states, simulations and data management for
//! ORGaNICs circuits (see the contract in `docs/architecture.md`). The training driver grows
//! here as the gradient crate lands.
//!
//! | module | object |
//! |---|---|
//! | [`json`] | the JSON shapes the command line prints |

pub mod json;
