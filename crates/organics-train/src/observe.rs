//! Stability observers: costly diagnostics run every `observe_every` epochs between epochs,
//! never inside the backward pass.
//!
//! **Static models (docs/model.md#figures, Figs. 5 and 6).** Each fixed-point layer is, for one input, an
//! ORGaNICs circuit of the main model (Eq. 16) with the layer's `W_r` (identity or the
//! spectrally normalised learned matrix), `W = exp(log W)`, `b = B_1(x)`, `b_0 = B_0`, `σ = 1`,
//! the normalised drive `z` and `τ_y = τ_a = 2` (ms). The layer's weights are converted to
//! f64, and [`fixed_point_stability`] finds the circuit's steady state and judges it with
//! [`organics_lyapunov::steady_state`] (closed form for `W_r = I`, otherwise the iterative
//! algorithm polished by Newton, the simulated state when that one does not attract) — the same
//! analysis as `organics stability`, so `organics certify` and `organics stability` give the
//! same `max Re λ(J)` and verdict on the same circuit. The spectral abscissa (in ms⁻¹) is
//! recorded; Fig. 5 is its histogram over test inputs, Fig. 6 its maximum per epoch. A fixed
//! point is *stable* when organics-lyapunov's verdict is [`Verdict::Stable`]:
//! `max Re λ < −tol` on the balanced Jacobian, with the eigensolver's tolerance `tol`.
//!
//! **Recurrent models (Fig. 7).** The hidden trajectory `y_t`, `t = 0…T`, of test images.
//!
//! Records are appended to `observers.jsonl` in the run directory.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use faer::Mat;
use organics_core::params::CircuitParts;
use organics_core::steady_state::Method;
use organics_core::{Circuit, Model, Recurrence};
use organics_data::{Batcher, Dataset, Order, View};
use organics_grad::Tape;
use organics_lyapunov::{LyapunovError, Verdict};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::model::{Arch, Chunk, Network};
use crate::trainer::Data;

/// File of the observer records in a run directory.
pub const OBSERVERS_FILE: &str = "observers.jsonl";

/// Time constants of the analysed circuits, in ms (docs/model.md#figures).
pub const TAU_MS: f64 = 2.0;

/// Smallest input gain passed to the f64 circuit: a sigmoid that underflowed to 0 in f32 is
/// raised to this so the circuit stays valid (`b > 0`); its effect on `J` is below f64 precision.
const MIN_GAIN: f64 = 1e-30;

/// Spectral abscissae of one layer over test inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSpectrum {
    /// Layer (1-based).
    pub layer: usize,
    /// `max Re λ(J)` per input (ms⁻¹); NaN where no steady state was found.
    pub max_real: Vec<f64>,
    /// Largest value over the inputs (Fig. 6).
    pub max_over_inputs: f64,
    /// Fraction of inputs with a steady state found and judged [`Verdict::Stable`].
    pub stable_fraction: f64,
}

/// The per-input circuit of a layer: everything but the drive is shared.
struct LayerCircuit {
    n: usize,
    w_r: Recurrence,
    w: Mat<f64>,
    b0: Vec<f64>,
}

/// The steady state of one input's circuit, judged: `(max Re λ, verdict)`, or `(NaN, None)`
/// when no steady state is found. The same analysis as `organics stability`.
///
/// # Errors
/// [`TrainError::Eigen`] when the eigensolver fails, and the circuit's errors.
pub fn fixed_point_stability(circuit: &Circuit) -> Result<(f64, Option<Verdict>), TrainError> {
    let n = 2 * circuit.n();
    let judged = organics_lyapunov::steady_state(circuit, Method::Auto).map_err(|e| match e {
        LyapunovError::Core(c) => TrainError::from(c),
        _ => TrainError::Eigen { n },
    })?;
    Ok(match judged.stability {
        Some(s) if judged.report.converged() => (s.max_real, Some(s.verdict)),
        _ => (f64::NAN, None),
    })
}

fn spectral_abscissa(parts: CircuitParts) -> Result<(f64, Option<Verdict>), TrainError> {
    fixed_point_stability(&Circuit::new(parts)?)
}

/// `max Re λ` per layer for the first `samples` inputs of `test` (static networks only).
///
/// When `interrupt` is given and becomes `true` (a signal), the computation stops after the
/// inputs under way and returns [`TrainError::Interrupted`].
pub fn static_spectra(
    net: &Network,
    test: &Dataset,
    view: View,
    samples: usize,
    interrupt: Option<&AtomicBool>,
) -> Result<Vec<LayerSpectrum>, TrainError> {
    let Arch::Static(snet) = &net.arch else {
        return Ok(Vec::new());
    };
    let data = if samples < test.len() {
        test.subset(samples)
    } else {
        test.clone()
    };
    let batcher = Batcher::new(&data, view, 256, Order::InOrder)?;
    let mut epoch = batcher.epoch(0);
    let mut per_layer: Vec<Vec<(f64, Option<Verdict>)>> = Vec::new();
    let mut tape = Tape::<f32>::new();
    while let Some(batch) = epoch.next_batch() {
        tape.reset();
        let vars = net.params.to_tape(&mut tape);
        let chunk = Chunk {
            inputs: batch.inputs(),
            batch: batch.size(),
            start: 0,
            rows: batch.size(),
            steps: batch.steps(),
            dim: batch.input_dim(),
        };
        let layers = net.static_forward(snet, &mut tape, &vars, &chunk)?.layers;
        per_layer.resize(layers.len(), Vec::new());
        for (k, (_, out)) in layers.iter().enumerate() {
            let (rows, n) = tape.shape(out.z);
            let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
            let wv = tape.value(out.w);
            let lc = LayerCircuit {
                n,
                w_r: match out.w_r {
                    None => Recurrence::Identity,
                    Some(wr) => {
                        let v = tape.value(wr);
                        Recurrence::Dense(Mat::from_fn(n, n, |i, j| f64::from(v[i * n + j])))
                    }
                },
                w: Mat::from_fn(n, n, |i, j| f64::from(wv[i * n + j])),
                b0: to64(tape.value(out.b0)),
            };
            let z = to64(tape.value(out.z));
            let b1 = to64(tape.value(out.b1));
            let values: Vec<(f64, Option<Verdict>)> = (0..rows)
                .into_par_iter()
                .map(|r| {
                    if interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
                        return Err(TrainError::Interrupted {
                            during: "the stability observers",
                        });
                    }
                    let parts = CircuitParts {
                        model: Model::Main,
                        tau_y: vec![TAU_MS; lc.n],
                        tau_a: vec![TAU_MS; lc.n],
                        b: b1[r * n..(r + 1) * n]
                            .iter()
                            .map(|&b| b.max(MIN_GAIN))
                            .collect(),
                        b0: lc.b0.iter().map(|&b| b.max(MIN_GAIN)).collect(),
                        sigma: vec![f64::from(crate::model::fixed_point::SIGMA); lc.n],
                        w_r: lc.w_r.clone(),
                        w: lc.w.clone(),
                        z: z[r * n..(r + 1) * n].to_vec(),
                    };
                    spectral_abscissa(parts)
                })
                .collect::<Result<_, _>>()?;
            per_layer[k].extend(values);
        }
    }
    Ok(per_layer
        .into_iter()
        .enumerate()
        .map(|(k, judged)| {
            let stable = judged
                .iter()
                .filter(|(_, v)| *v == Some(Verdict::Stable))
                .count();
            let max_real: Vec<f64> = judged.iter().map(|(m, _)| *m).collect();
            let max_over_inputs = max_real.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
                if b.is_nan() { f64::NAN } else { a.max(b) }
            });
            LayerSpectrum {
                layer: k + 1,
                stable_fraction: stable as f64 / max_real.len().max(1) as f64,
                max_over_inputs,
                max_real,
            }
        })
        .collect())
}

/// The hidden trajectory of one test image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Index in the test set.
    pub image: usize,
    /// Its label.
    pub label: u8,
    /// `y_t` (ORGaNICs) or `h_t` (baselines) for `t = 0…T`, each of length `n`.
    pub y: Vec<Vec<f32>>,
}

/// Hidden trajectories of the test images `indices` (recurrent networks only).
pub fn hidden_trajectories(
    net: &Network,
    test: &Dataset,
    view: View,
    indices: &[usize],
) -> Result<Vec<Trajectory>, TrainError> {
    let units = match &net.arch {
        Arch::Organics(m) => m.units,
        Arch::Lstm(m) => m.cell.units,
        Arch::TanhRnn(m) => m.cell.units,
        Arch::Static(_) => return Ok(Vec::new()),
    };
    let batcher = Batcher::new(test, view, 1, Order::InOrder)?;
    let mut out = Vec::new();
    let mut tape = Tape::<f32>::new();
    let mut batch = organics_data::Batch::new();
    for &i in indices {
        let Ok(pos) = u32::try_from(i) else { continue };
        if i >= test.len() {
            continue;
        }
        batcher.fill(&[pos], &mut batch);
        tape.reset();
        let vars = net.params.to_tape(&mut tape);
        let chunk = Chunk {
            inputs: batch.inputs(),
            batch: 1,
            start: 0,
            rows: 1,
            steps: batch.steps(),
            dim: batch.input_dim(),
        };
        let mut y = Vec::new();
        net.sequence_forward(&mut tape, &vars, &chunk, |_, s| y.push(s[..units].to_vec()));
        out.push(Trajectory {
            image: i,
            label: test.label(i),
            y,
        });
    }
    Ok(out)
}

/// A line of `observers.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ObserverRecord {
    /// Spectral abscissae of the static layers.
    Spectra {
        /// Epoch (0-based) after which they were computed.
        epoch: u64,
        /// Steps taken.
        global_step: u64,
        /// One entry per layer.
        layers: Vec<LayerSpectrum>,
    },
    /// Hidden trajectories.
    Trajectories {
        /// Epoch (0-based) after which they were computed.
        epoch: u64,
        /// Steps taken.
        global_step: u64,
        /// One per image.
        trajectories: Vec<Trajectory>,
    },
}

/// Runs the observers that fit the model and appends their records to `observers.jsonl`.
pub fn run_observers(
    net: &Network,
    data: &Data,
    cfg: &TrainConfig,
    epoch: u64,
    global_step: u64,
    out_dir: &Path,
    interrupt: Option<&AtomicBool>,
) -> Result<(), TrainError> {
    let record = match net.arch {
        Arch::Static(_) => ObserverRecord::Spectra {
            epoch,
            global_step,
            layers: static_spectra(net, &data.test, cfg.view, cfg.observe_samples, interrupt)?,
        },
        _ => ObserverRecord::Trajectories {
            epoch,
            global_step,
            trajectories: hidden_trajectories(net, &data.test, cfg.view, &[0])?,
        },
    };
    let path = out_dir.join(OBSERVERS_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(TrainError::io(&path))?;
    writeln!(
        f,
        "{}",
        serde_json::to_string(&record).expect("record serialises")
    )
    .map_err(TrainError::io(&path))
}

/// Reads `observers.jsonl` of a run.
pub fn read_observers(out_dir: &Path) -> Result<Vec<ObserverRecord>, TrainError> {
    let path = out_dir.join(OBSERVERS_FILE);
    let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| TrainError::checkpoint(&path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Summary statistics of `max Re λ` for `organics certify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertifyLayer {
    /// Layer (1-based).
    pub layer: usize,
    /// Inputs analysed.
    pub inputs: usize,
    /// Fraction with a stable fixed point.
    pub stable_fraction: f64,
    /// Inputs whose steady state was not found.
    pub unsolved: usize,
    /// Smallest, median and largest `max Re λ` (ms⁻¹).
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Largest.
    pub max: f64,
    /// 40-bin histogram over `[min, max]`: bin counts.
    pub histogram: Vec<usize>,
}

/// Summarises layer spectra for a certificate.
pub fn certify_summary(spectra: &[LayerSpectrum]) -> Vec<CertifyLayer> {
    spectra
        .iter()
        .map(|s| {
            let mut v: Vec<f64> = s
                .max_real
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            let (min, max) = (
                v.first().copied().unwrap_or(f64::NAN),
                v.last().copied().unwrap_or(f64::NAN),
            );
            let median = if v.is_empty() {
                f64::NAN
            } else {
                v[v.len() / 2]
            };
            let mut histogram = vec![0usize; 40];
            let width = (max - min) / 40.0;
            for x in &v {
                let k = if width > 0.0 {
                    (((x - min) / width) as usize).min(39)
                } else {
                    0
                };
                histogram[k] += 1;
            }
            CertifyLayer {
                layer: s.layer,
                inputs: s.max_real.len(),
                stable_fraction: s.stable_fraction,
                unsolved: s.max_real.len() - v.len(),
                min,
                median,
                max,
                histogram,
            }
        })
        .collect()
}

/// The stability certificate of a static checkpoint (`organics certify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// The checkpoint directory analysed.
    pub checkpoint: std::path::PathBuf,
    /// Time constants of the analysed circuits (ms).
    pub tau_ms: f64,
    /// Per-layer summary of `max Re λ` over the inputs.
    pub layers: Vec<CertifyLayer>,
}

/// Certify a static-MNIST checkpoint (a checkpoint or run directory; a run's best checkpoint):
/// the stability of each ORGaNICs layer's fixed point for the first `samples` test inputs of
/// `data` (all when `None`).
///
/// # Errors
/// [`TrainError::InvalidConfig`] for a recurrent model (no fixed point per input), and the
/// errors of loading the checkpoint and of [`static_spectra`].
pub fn certify(
    path: &Path,
    data: &Data,
    samples: Option<usize>,
) -> Result<Certificate, TrainError> {
    let loaded = crate::trainer::load(path, data.test.rows(), data.test.cols())?;
    if !matches!(loaded.trainer.net.arch, Arch::Static(_)) {
        return Err(TrainError::InvalidConfig {
            field: "model",
            value: format!("{:?}", loaded.state.config.model),
            reason: "certify analyses the fixed points of static-MNIST ORGaNICs layers; recurrent models have no fixed point per input",
        });
    }
    let samples = samples.unwrap_or(data.test.len());
    let spectra = static_spectra(
        &loaded.trainer.net,
        &data.test,
        loaded.state.config.view,
        samples,
        None,
    )?;
    Ok(Certificate {
        checkpoint: loaded.dir,
        tau_ms: TAU_MS,
        layers: certify_summary(&spectra),
    })
}

/// One point of Fig. 6: the largest spectral abscissa of a layer after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPoint {
    /// Epoch (0-based) after which it was computed.
    pub epoch: u64,
    /// Training steps taken (Fig. 6's x axis).
    pub global_step: u64,
    /// Layer (1-based).
    pub layer: usize,
    /// `max` over the observed inputs of `max Re λ` (ms⁻¹).
    pub max_over_inputs: f64,
    /// Fraction of inputs with a stable fixed point.
    pub stable_fraction: f64,
}

/// Fig. 6 data of a run: every spectra record of `observers.jsonl`, flattened per layer.
pub fn spectra_history(out_dir: &Path) -> Result<Vec<SpectrumPoint>, TrainError> {
    let mut out = Vec::new();
    for r in read_observers(out_dir)? {
        if let ObserverRecord::Spectra {
            epoch,
            global_step,
            layers,
        } = r
        {
            out.extend(layers.iter().map(|l| SpectrumPoint {
                epoch,
                global_step,
                layer: l.layer,
                max_over_inputs: l.max_over_inputs,
                stable_fraction: l.stable_fraction,
            }));
        }
    }
    Ok(out)
}

/// Fig. 5 data of a checkpoint (a checkpoint or run directory; a run's best checkpoint):
/// `max Re λ` per layer for the first `samples` test inputs.
pub fn checkpoint_spectra(
    path: &Path,
    data: &Data,
    samples: usize,
) -> Result<Vec<LayerSpectrum>, TrainError> {
    let loaded = crate::trainer::load(path, data.test.rows(), data.test.cols())?;
    static_spectra(
        &loaded.trainer.net,
        &data.test,
        loaded.state.config.view,
        samples,
        None,
    )
}

/// Fig. 7 data of a checkpoint: hidden trajectories of the test images `indices`.
pub fn checkpoint_trajectories(
    path: &Path,
    data: &Data,
    indices: &[usize],
) -> Result<Vec<Trajectory>, TrainError> {
    let loaded = crate::trainer::load(path, data.test.rows(), data.test.cols())?;
    hidden_trajectories(
        &loaded.trainer.net,
        &data.test,
        loaded.state.config.view,
        indices,
    )
}
