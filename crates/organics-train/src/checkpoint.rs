//! Checkpoints: a directory holding
//!
//! - `model.safetensors`: every tensor of the model (parameters and buffers) under its
//!   reference PyTorch `state_dict` name, f32 (metadata `format: pt`);
//! - `optimizer.safetensors`: the moments of organics-grad's Adam
//!   ([`organics_grad::optim::Optimizer::Adam`]), `exp_avg.{name}` and `exp_avg_sq.{name}`
//!   for every trainable tensor, and its step count (metadata `step`);
//! - `state.json`: [`TrainingState`] (epoch, position in the epoch, Adam's step, best
//!   validation accuracy, the config) and the sha256 of both tensor files.
//!
//! A checkpoint is written to `NAME.tmp/`, then swapped in by renames (`NAME` → `NAME.old`,
//! `NAME.tmp` → `NAME`, `NAME.old` removed), so an interruption leaves either the previous or
//! the new checkpoint; [`resolve`] falls back to `NAME.old` if `NAME` is missing.
//!
//! **Random state.** Nothing random is consumed during training after initialisation: the order
//! of epoch `e` is a pure function of `(seed, e)` ([`organics_data::Order::Shuffled`]). The
//! position `(epoch, batch)` therefore *is* the random state; resuming skips the batches already
//! taken in that epoch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use organics_grad::optim::{AdamConfig, Optimizer, WeightDecay};

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::params::StateDict;

/// Version of the checkpoint layout. Format 2 numbers epochs from 1 (`best`, and the run's
/// `metrics.jsonl`); format 1 numbered them from 0 and is converted on reading
/// ([`read_state_with_format`]).
pub const FORMAT: u32 = 2;
/// File of the model tensors.
pub const MODEL_FILE: &str = "model.safetensors";
/// File of the optimiser moments.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// File of the training state.
pub const STATE_FILE: &str = "state.json";

/// Where training stands, saved in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingState {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Epochs finished (the epoch under way, if any, is `epoch + 1`; for the `best`
    /// checkpoint, the number of its epoch).
    pub epoch: u64,
    /// Batches of `epoch` already taken.
    pub batch_in_epoch: u64,
    /// Optimiser steps taken in total.
    pub global_step: u64,
    /// Whether every epoch has run.
    pub finished: bool,
    /// Best validation accuracy so far and its epoch (from 1).
    pub best: Option<(f64, u64)>,
    /// Seconds of training so far.
    pub train_seconds: f64,
    /// Trainable parameters.
    pub parameter_count: usize,
    /// The run's config.
    pub config: TrainConfig,
    /// sha256 (hex) of the tensor files, by file name.
    pub sha256: HashMap<String, String>,
}

fn sha_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn serialize(
    entries: &[(String, Vec<usize>, Vec<u8>)],
    metadata: Option<HashMap<String, String>>,
    path: &Path,
) -> Result<Vec<u8>, TrainError> {
    let views = entries
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| TrainError::checkpoint(path, format!("tensor {name}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, metadata).map_err(|e| TrainError::checkpoint(path, e.to_string()))
}

/// The Adam optimiser of a run: organics-grad's [`Optimizer::Adam`] with PyTorch's defaults
/// (`β₁ = 0.9`, `β₂ = 0.999`, `ε = 10⁻⁸`) and the config's L2 weight decay, with zero moments
/// for the trainable tensors of `params`.
pub fn adam(config: &TrainConfig, params: &StateDict) -> Optimizer<f32> {
    Optimizer::adam(adam_config(config), params.trainable())
}

fn adam_config(config: &TrainConfig) -> AdamConfig {
    AdamConfig {
        weight_decay: config.weight_decay,
        decay: WeightDecay::L2,
        ..AdamConfig::default()
    }
}

/// Writes a checkpoint directory `dir` (atomically replacing an existing one).
///
/// # Errors
/// [`TrainError::Io`]; [`TrainError::Checkpoint`] if `optimizer` is not Adam (the only
/// optimiser whose state this layout stores) or does not match `params`.
pub fn save(
    dir: &Path,
    params: &StateDict,
    optimizer: &Optimizer<f32>,
    state: &TrainingState,
) -> Result<(), TrainError> {
    let Optimizer::Adam { step, m, v, .. } = optimizer else {
        return Err(TrainError::checkpoint(
            dir,
            "only Adam's state can be written (optimizer.safetensors stores exp_avg and exp_avg_sq)",
        ));
    };
    params
        .trainable()
        .check_same_layout(m)
        .and_then(|()| params.trainable().check_same_layout(v))
        .map_err(|e| TrainError::checkpoint(dir, format!("optimiser state: {e}")))?;
    let tmp = with_suffix(dir, "tmp");
    let old = with_suffix(dir, "old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
    let model: Vec<_> = params
        .ids()
        .map(|id| {
            let t = params.get(id);
            (t.name.clone(), params.shape(id).to_vec(), to_bytes(&t.data))
        })
        .collect();
    // One metadata entry only: safetensors writes the metadata map in the map's iteration
    // order, so a single key keeps the file bytes a function of the tensors alone.
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let model_bytes = serialize(&model, Some(meta), dir)?;
    let mut opt = Vec::new();
    for ((id, mt), vt) in params.trainable_ids().zip(m.tensors()).zip(v.tensors()) {
        let (name, shape) = (&params.get(id).name, params.shape(id));
        opt.push((
            format!("exp_avg.{name}"),
            shape.to_vec(),
            to_bytes(&mt.data),
        ));
        opt.push((
            format!("exp_avg_sq.{name}"),
            shape.to_vec(),
            to_bytes(&vt.data),
        ));
    }
    let mut opt_meta = HashMap::new();
    opt_meta.insert("step".to_string(), step.to_string());
    let opt_bytes = serialize(&opt, Some(opt_meta), dir)?;
    let mut state = state.clone();
    state.sha256 = HashMap::from([
        (MODEL_FILE.to_string(), sha_hex(&model_bytes)),
        (OPTIMIZER_FILE.to_string(), sha_hex(&opt_bytes)),
    ]);
    let files = [
        (MODEL_FILE, model_bytes),
        (OPTIMIZER_FILE, opt_bytes),
        (
            STATE_FILE,
            serde_json::to_vec_pretty(&state).expect("state serialises"),
        ),
    ];
    for (name, bytes) in files {
        let p = tmp.join(name);
        std::fs::write(&p, bytes).map_err(TrainError::io(&p))?;
    }
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(TrainError::io(&old))?;
        }
        std::fs::rename(dir, &old).map_err(TrainError::io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(TrainError::io(dir))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(TrainError::io(&old))?;
    }
    Ok(())
}

/// `NAME.suffix` beside the directory `dir` (`NAME`).
pub(crate) fn with_suffix(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

/// The checkpoint directory meant by `path`: a checkpoint directory itself, or a run
/// directory (then its `checkpoints/{which}`), falling back to `*.old` after an interrupted swap.
pub fn resolve(path: &Path, which: &str) -> Result<PathBuf, TrainError> {
    let candidates = [path.to_path_buf(), path.join("checkpoints").join(which)];
    for c in candidates {
        if c.join(STATE_FILE).is_file() {
            return Ok(c);
        }
        let old = with_suffix(&c, "old");
        if old.join(STATE_FILE).is_file() {
            return Ok(old);
        }
    }
    Err(TrainError::checkpoint(
        path,
        format!(
            "no {STATE_FILE} here or under checkpoints/{which}/ (not a checkpoint or run directory)"
        ),
    ))
}

/// Reads `state.json` of the checkpoint directory `dir` (in the current [`FORMAT`]).
pub fn read_state(dir: &Path) -> Result<TrainingState, TrainError> {
    read_state_with_format(dir).map(|(state, _)| state)
}

/// Reads `state.json` of the checkpoint directory `dir`, converted to the current [`FORMAT`],
/// and the format it was written in (format 1's 0-based `best` epoch becomes 1-based).
pub fn read_state_with_format(dir: &Path) -> Result<(TrainingState, u32), TrainError> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(TrainError::io(&p))?;
    let mut state: TrainingState = serde_json::from_str(&text)
        .map_err(|e| TrainError::checkpoint(&p, format!("invalid state: {e}")))?;
    let written = state.format;
    match written {
        1 => {
            state.best = state.best.map(|(v, e)| (v, e + 1));
            state.format = FORMAT;
        }
        FORMAT => {}
        f => {
            return Err(TrainError::checkpoint(
                &p,
                format!("format {f} (this build reads formats 1 and {FORMAT})"),
            ));
        }
    }
    state.config.validate()?;
    Ok((state, written))
}

fn read_verified(dir: &Path, name: &str, state: &TrainingState) -> Result<Vec<u8>, TrainError> {
    let p = dir.join(name);
    let bytes = std::fs::read(&p).map_err(TrainError::io(&p))?;
    let want = state.sha256.get(name).ok_or_else(|| {
        TrainError::checkpoint(dir, format!("{STATE_FILE} has no sha256 for {name}"))
    })?;
    let got = sha_hex(&bytes);
    if &got != want {
        return Err(TrainError::checkpoint(
            &p,
            format!(
                "sha256 {got} does not match {want} recorded in {STATE_FILE} (corrupt or partially written)"
            ),
        ));
    }
    Ok(bytes)
}

/// Copies the f32 tensor `key` of `st` (of shape `shape`) into `data`.
fn read_tensor(
    st: &SafeTensors<'_>,
    path: &Path,
    key: &str,
    shape: &[usize],
    data: &mut [f32],
) -> Result<(), TrainError> {
    let view = st
        .tensor(key)
        .map_err(|_| TrainError::checkpoint(path, format!("missing tensor {key:?}")))?;
    if view.dtype() != Dtype::F32 {
        return Err(TrainError::checkpoint(
            path,
            format!("tensor {key:?} has dtype {:?}, expected F32", view.dtype()),
        ));
    }
    if view.shape() != shape || view.data().len() != 4 * data.len() {
        return Err(TrainError::CheckpointShape {
            path: path.to_path_buf(),
            name: key.to_string(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    for (d, c) in data.iter_mut().zip(view.data().chunks_exact(4)) {
        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(())
}

/// Parses a safetensors file that must hold exactly `expected` tensors.
fn open<'a>(bytes: &'a [u8], path: &Path, expected: usize) -> Result<SafeTensors<'a>, TrainError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| TrainError::checkpoint(path, format!("not a safetensors file: {e}")))?;
    if st.len() != expected {
        return Err(TrainError::checkpoint(
            path,
            format!("{} tensors, the model needs {expected}", st.len()),
        ));
    }
    Ok(st)
}

/// One tensor of a checkpoint: its PyTorch `state_dict` name, shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The name (`layer1.w_zx`, ...).
    pub name: String,
    /// The shape, row-major.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

/// Every model tensor of a checkpoint (a checkpoint directory, or a run directory's best
/// checkpoint) with its training state, without building the model: the sha256 recorded in
/// `state.json` is checked, tensors come in the file's order.
///
/// # Errors
/// [`TrainError::Checkpoint`] for a missing, corrupt or non-f32 file, [`TrainError::Io`].
pub fn read_tensors(path: &Path) -> Result<(PathBuf, TrainingState, Vec<NamedTensor>), TrainError> {
    let dir = resolve(path, "best")?;
    let state = read_state(&dir)?;
    let bytes = read_verified(&dir, MODEL_FILE, &state)?;
    let p = dir.join(MODEL_FILE);
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| TrainError::checkpoint(&p, format!("not a safetensors file: {e}")))?;
    let mut tensors = Vec::with_capacity(st.len());
    for name in st.names() {
        let shape = st
            .tensor(name)
            .map_err(|_| TrainError::checkpoint(&p, format!("missing tensor {name:?}")))?
            .shape()
            .to_vec();
        let mut data = vec![0.0; shape.iter().product()];
        read_tensor(&st, &p, name, &shape, &mut data)?;
        tensors.push(NamedTensor {
            name: name.to_string(),
            shape,
            data,
        });
    }
    Ok((dir, state, tensors))
}

/// Loads the model tensors of checkpoint `dir` into `params` (names and shapes must match).
pub fn load_model(
    dir: &Path,
    state: &TrainingState,
    params: &mut StateDict,
) -> Result<(), TrainError> {
    let bytes = read_verified(dir, MODEL_FILE, state)?;
    let p = dir.join(MODEL_FILE);
    let st = open(&bytes, &p, params.len())?;
    for id in params.ids() {
        let (name, shape) = (params.get(id).name.clone(), params.shape(id).to_vec());
        read_tensor(&st, &p, &name, &shape, params.data_mut(id))?;
    }
    Ok(())
}

/// Loads the Adam state of checkpoint `dir` (moments of `params`' trainable tensors and the
/// step count) into an optimiser configured by `config` ([`adam`]).
pub fn load_optimizer(
    dir: &Path,
    state: &TrainingState,
    params: &StateDict,
    config: &TrainConfig,
) -> Result<Optimizer<f32>, TrainError> {
    let bytes = read_verified(dir, OPTIMIZER_FILE, state)?;
    let p = dir.join(OPTIMIZER_FILE);
    let (mut m, mut v) = (
        params.trainable().zeros_like(),
        params.trainable().zeros_like(),
    );
    let ids: Vec<_> = params.trainable_ids().collect();
    let st = open(&bytes, &p, 2 * ids.len())?;
    for (k, &id) in ids.iter().enumerate() {
        let (name, shape) = (&params.get(id).name, params.shape(id));
        let k = organics_grad::ParamId(k);
        read_tensor(&st, &p, &format!("exp_avg.{name}"), shape, m.data_mut(k))?;
        read_tensor(&st, &p, &format!("exp_avg_sq.{name}"), shape, v.data_mut(k))?;
    }
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
    let step = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("step"))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| TrainError::checkpoint(&p, "metadata has no optimiser step"))?;
    Ok(Optimizer::Adam {
        config: adam_config(config),
        step,
        m,
        v,
    })
}
