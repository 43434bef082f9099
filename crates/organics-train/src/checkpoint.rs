//! Checkpoints: a directory holding
//!
//! - `model.safetensors`: every tensor of the model (parameters and buffers) under its
//!   reference PyTorch `state_dict` name, f32 (metadata `format: pt`);
//! - `optimizer.safetensors`: Adam's moments, `exp_avg.{name}` and `exp_avg_sq.{name}`;
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

use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::optim::Adam;
use crate::params::{ParamSet, Role};

/// Version of the checkpoint layout.
pub const FORMAT: u32 = 1;
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
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Batches of `epoch` already taken.
    pub batch_in_epoch: u64,
    /// Optimiser steps taken in total.
    pub global_step: u64,
    /// Whether every epoch has run.
    pub finished: bool,
    /// Best validation accuracy so far and its epoch.
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

/// Writes a checkpoint directory `dir` (atomically replacing an existing one).
pub fn save(
    dir: &Path,
    params: &ParamSet,
    adam: &Adam,
    state: &TrainingState,
) -> Result<(), TrainError> {
    let tmp = with_suffix(dir, "tmp");
    let old = with_suffix(dir, "old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(TrainError::io(&tmp))?;
    let model: Vec<_> = params
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone(), to_bytes(&t.data)))
        .collect();
    // One metadata entry only: safetensors writes the metadata map in the map's iteration
    // order, so a single key keeps the file bytes a function of the tensors alone.
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    let model_bytes = serialize(&model, Some(meta), dir)?;
    let trainable = params.tensors.iter().filter(|t| t.role == Role::Trainable);
    let mut opt = Vec::new();
    for ((t, m), v) in trainable.zip(&adam.exp_avg).zip(&adam.exp_avg_sq) {
        opt.push((format!("exp_avg.{}", t.name), t.shape.clone(), to_bytes(m)));
        opt.push((
            format!("exp_avg_sq.{}", t.name),
            t.shape.clone(),
            to_bytes(v),
        ));
    }
    let mut opt_meta = HashMap::new();
    opt_meta.insert("step".to_string(), adam.step.to_string());
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

fn with_suffix(dir: &Path, suffix: &str) -> PathBuf {
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

/// Reads `state.json` of the checkpoint directory `dir`.
pub fn read_state(dir: &Path) -> Result<TrainingState, TrainError> {
    let p = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&p).map_err(TrainError::io(&p))?;
    let state: TrainingState = serde_json::from_str(&text)
        .map_err(|e| TrainError::checkpoint(&p, format!("invalid state: {e}")))?;
    if state.format != FORMAT {
        return Err(TrainError::checkpoint(
            &p,
            format!("format {} (this build reads format {FORMAT})", state.format),
        ));
    }
    state.config.validate()?;
    Ok(state)
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

fn load_into(
    bytes: &[u8],
    path: &Path,
    name_of: impl Fn(&str) -> String,
    targets: Vec<(&str, &[usize], &mut Vec<f32>)>,
) -> Result<(), TrainError> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| TrainError::checkpoint(path, format!("not a safetensors file: {e}")))?;
    let expected = targets.len();
    if st.len() != expected {
        return Err(TrainError::checkpoint(
            path,
            format!("{} tensors, the model needs {expected}", st.len()),
        ));
    }
    for (name, shape, data) in targets {
        let key = name_of(name);
        let view = st
            .tensor(&key)
            .map_err(|_| TrainError::checkpoint(path, format!("missing tensor {key:?}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(TrainError::checkpoint(
                path,
                format!("tensor {key:?} has dtype {:?}, expected F32", view.dtype()),
            ));
        }
        if view.shape() != shape {
            return Err(TrainError::CheckpointShape {
                path: path.to_path_buf(),
                name: key,
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        *data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
    }
    Ok(())
}

/// Loads the model tensors of checkpoint `dir` into `params` (names and shapes must match).
pub fn load_model(
    dir: &Path,
    state: &TrainingState,
    params: &mut ParamSet,
) -> Result<(), TrainError> {
    let bytes = read_verified(dir, MODEL_FILE, state)?;
    let p = dir.join(MODEL_FILE);
    let targets = params
        .tensors
        .iter_mut()
        .map(|t| (t.name.as_str(), t.shape.as_slice(), &mut t.data))
        .collect();
    load_into(&bytes, &p, str::to_string, targets)
}

/// Loads Adam's moments of checkpoint `dir` (for `params`' trainable tensors).
pub fn load_optimizer(
    dir: &Path,
    state: &TrainingState,
    params: &ParamSet,
) -> Result<Adam, TrainError> {
    let bytes = read_verified(dir, OPTIMIZER_FILE, state)?;
    let p = dir.join(OPTIMIZER_FILE);
    let mut adam = Adam::new(params);
    let trainable: Vec<_> = params
        .tensors
        .iter()
        .filter(|t| t.role == Role::Trainable)
        .collect();
    let mut targets = Vec::new();
    let mut names = Vec::new();
    for t in &trainable {
        names.push((
            format!("exp_avg.{}", t.name),
            format!("exp_avg_sq.{}", t.name),
        ));
    }
    for ((t, (n1, n2)), (m, v)) in trainable
        .iter()
        .zip(&names)
        .zip(adam.exp_avg.iter_mut().zip(adam.exp_avg_sq.iter_mut()))
    {
        targets.push((n1.as_str(), t.shape.as_slice(), m));
        targets.push((n2.as_str(), t.shape.as_slice(), v));
    }
    load_into(&bytes, &p, str::to_string, targets)?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| TrainError::checkpoint(&p, e.to_string()))?;
    let step = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("step"))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| TrainError::checkpoint(&p, "metadata has no optimiser step"))?;
    adam.step = step;
    Ok(adam)
}
