//! Trained models: `organics.load_checkpoint` and `organics.certify`.

use crate::convert::{bad, json_to_py, train_err};
use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn};
use organics_data::DataCheck;
use organics_train::checkpoint::read_tensors;
use organics_train::observe;
use organics_train::trainer::Data;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

/// The tensors of a trained model and its configuration.
///
/// `tensors`: dict of float32 numpy arrays under their PyTorch state_dict names (the
/// checkpoint's safetensors file, sha256-checked). `config`: the training configuration
/// (dict, the run's config.json, with the fields added since it was written filled in as
/// the run used them, e.g. `fixed_point_solver: "lu"`, `weight_grad_block: 16`,
/// `static_path: "tape"`). `epoch`: epochs finished when it was written. `path`: the
/// checkpoint directory read.
#[pyclass(module = "organics", frozen, get_all)]
pub struct Checkpoint {
    path: PathBuf,
    epoch: u64,
    tensors: Py<PyDict>,
    config: Py<PyAny>,
}

#[pymethods]
impl Checkpoint {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Checkpoint(path={:?}, epoch={}, tensors={})",
            self.path,
            self.epoch,
            self.tensors.bind(py).len()
        )
    }
}

/// Load a checkpoint: a checkpoint directory, or a run directory (its best checkpoint).
/// Raises ValueError for a directory that is not a checkpoint or a corrupt one, OSError when
/// a file cannot be read.
#[pyfunction]
pub fn load_checkpoint(py: Python<'_>, path: PathBuf) -> PyResult<Checkpoint> {
    let (dir, state, tensors) = py
        .detach(|| read_tensors(&path))
        .map_err(|e| train_err(py, e))?;
    let dict = PyDict::new(py);
    for t in tensors {
        let arr = ArrayD::from_shape_vec(IxDyn(&t.shape), t.data)
            .expect("read_tensors returns shape-consistent data");
        let arr: Bound<'_, PyArrayDyn<f32>> = arr.into_pyarray(py);
        dict.set_item(t.name, arr)?;
    }
    let config = serde_json::to_value(&state.config).map_err(|e| bad("config", e))?;
    Ok(Checkpoint {
        path: dir,
        epoch: state.epoch,
        tensors: dict.unbind(),
        config: json_to_py(py, &config)?.unbind(),
    })
}

/// Certify a static-MNIST checkpoint (as `organics certify`): for the first `samples` test
/// images (all 10 000 by default), the stability of each ORGaNICs layer's fixed point
/// (circuits with τ = 2 ms). Returns a dict: checkpoint, tau_ms, and per layer the inputs
/// analysed, the stable fraction, unsolved inputs, min / median / max of max Re λ (1/ms) and a
/// 40-bin histogram. MNIST is read from `data_dir` (default: the data directory of the
/// command line, ORGANICS_DATA or ~/.cache/organics/mnist), sha256-checked.
#[pyfunction]
#[pyo3(signature = (path, samples = None, data_dir = None))]
pub fn certify<'py>(
    py: Python<'py>,
    path: PathBuf,
    samples: Option<usize>,
    data_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let report = py
        .detach(|| {
            // As the command line: inputs run in parallel, each eigensolve on one thread.
            faer::set_global_parallelism(faer::Par::Seq);
            let data = Data::for_checkpoint(&path, data_dir.as_deref(), None, DataCheck::Sha256)?;
            observe::certify(&path, &data, samples)
        })
        .map_err(|e| train_err(py, e))?;
    let v = serde_json::to_value(&report).map_err(|e| bad("certificate", e))?;
    json_to_py(py, &v)
}
