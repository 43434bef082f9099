//! The one-neuron circuits of the paper's phase-portrait figures (docs/model.md#figures).
//!
//! Common parameters: `b = 0.5`, `w = 1`, `|z| = 1`, τ in ms.
//!
//! | panels | model | w_r | b0 | σ | τ_y, τ_a (ms) | z |
//! |---|---|---|---|---|---|---|
//! | fig1a / fig1d | main / rectified | 0.5 | 0.5 | 0.1 | 2, 2 | 1 |
//! | fig1b / fig1e | main / rectified | 2 | 0.5 | 0.1 | 2, 2 | 1 |
//! | fig1c / fig1f | main / rectified | 2 | 1 | 1 | 2, 2 | 1 |
//! | fig2a–fig2f | as fig1a–fig1f | | | | | −1 |
//! | fig3a / fig3b / fig3c | rectified | 1 | 0.5 | 0.1 | (2, 2) / (2, 10) / (10, 2) | 1 |
//!
//! Fig. 2 of the paper was not identified; the authors' notebooks render the Fig. 1 portraits
//! with negative drive `z = −1`, so fig2* are those (docs/model.md#figures).

use organics_core::params::{CircuitParts, Recurrence};
use organics_core::{Circuit, Model};

/// One panel: a file stem, a one-neuron circuit and a title.
#[derive(Debug, Clone)]
pub struct Panel {
    /// File stem, e.g. `fig1a`.
    pub name: String,
    /// The circuit.
    pub circuit: Circuit,
    /// A human-readable title with the parameters.
    pub title: String,
}

/// The scalar parameters of a one-neuron circuit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scalars {
    /// Vector field.
    pub model: Model,
    /// τ_y (ms).
    pub tau_y: f64,
    /// τ_a (ms).
    pub tau_a: f64,
    /// b.
    pub b: f64,
    /// b0.
    pub b0: f64,
    /// σ.
    pub sigma: f64,
    /// Scalar recurrent weight.
    pub w_r: f64,
    /// Normalisation weight.
    pub w: f64,
    /// Drive.
    pub z: f64,
}

impl Scalars {
    /// The one-neuron circuit.
    ///
    /// # Errors
    /// The circuit's validation errors (non-positive gains or time constants, negative w).
    pub fn circuit(&self) -> Result<Circuit, organics_core::CoreError> {
        Circuit::new(CircuitParts {
            model: self.model,
            tau_y: vec![self.tau_y],
            tau_a: vec![self.tau_a],
            b: vec![self.b],
            b0: vec![self.b0],
            sigma: vec![self.sigma],
            w_r: Recurrence::Scaled(self.w_r),
            w: faer::Mat::from_fn(1, 1, |_, _| self.w),
            z: vec![self.z],
        })
    }

    fn title(&self) -> String {
        format!(
            "{} model: w_r = {}, b0 = {}, σ = {}, z = {}, τ_y = {} ms, τ_a = {} ms",
            self.model.name(),
            self.w_r,
            self.b0,
            self.sigma,
            self.z,
            self.tau_y,
            self.tau_a
        )
    }
}

/// The parameters of every panel, in order fig1a–f, fig2a–f, fig3a–c.
pub fn panel_scalars() -> Vec<(String, Scalars)> {
    let base = Scalars {
        model: Model::Main,
        tau_y: 2.0,
        tau_a: 2.0,
        b: 0.5,
        b0: 0.5,
        sigma: 0.1,
        w_r: 0.5,
        w: 1.0,
        z: 1.0,
    };
    let sets = [(0.5, 0.5, 0.1), (2.0, 0.5, 0.1), (2.0, 1.0, 1.0)];
    let mut out = Vec::new();
    for (fig, z) in [("fig1", 1.0), ("fig2", -1.0)] {
        for (m, model) in [Model::Main, Model::Rectified].into_iter().enumerate() {
            for (k, &(w_r, b0, sigma)) in sets.iter().enumerate() {
                let letter = char::from(b'a' + (3 * m + k) as u8);
                out.push((
                    format!("{fig}{letter}"),
                    Scalars {
                        model,
                        w_r,
                        b0,
                        sigma,
                        z,
                        ..base
                    },
                ));
            }
        }
    }
    for (letter, tau_y, tau_a) in [('a', 2.0, 2.0), ('b', 2.0, 10.0), ('c', 10.0, 2.0)] {
        out.push((
            format!("fig3{letter}"),
            Scalars {
                model: Model::Rectified,
                w_r: 1.0,
                tau_y,
                tau_a,
                ..base
            },
        ));
    }
    out
}

/// Every panel of Figs. 1–3 as circuits with titles.
pub fn paper_panels() -> Vec<Panel> {
    panel_scalars()
        .into_iter()
        .map(|(name, s)| Panel {
            name,
            // The table's parameters are all positive and finite.
            circuit: s.circuit().expect("paper parameters are valid"),
            title: s.title(),
        })
        .collect()
}
