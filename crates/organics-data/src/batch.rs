//! Deterministic mini-batches in contiguous, time-major `f32` buffers.
//!
//! An epoch `e` visits the `N` samples in the order `σ⁽ᵉ⁾`, a permutation drawn from
//! ChaCha8 keyed by `(seed, e)` ([`Order::Shuffled`]) or the identity ([`Order::InOrder`]), and
//! cuts it into `⌈N / B⌉` batches of `B` samples; the last batch holds the
//! remaining `N − B⌊(N−1)/B⌋` samples (torch's default `drop_last=False`). The same
//! seed and epoch give the same batches on every machine; the dataset is never copied: an epoch
//! is an index list and one reusable buffer.
//!
//! # Layout
//!
//! A batch of `b` samples under a view with `T` steps of `D` values is stored **time-major**:
//!
//! ```text
//! inputs[(t·b + i)·D + d] = value d of step t of sample i,
//! ```
//!
//! i.e. `[T][b][D]` in row-major order. A recurrent network consumes step `t` as the contiguous
//! row-major `b × D` matrix [`Batch::step`]`(t)`, ready for a GEMM with no gather. For
//! [`View::Static`] (`T = 1`) this is the ordinary `[b][D]` row-major matrix.
//!
//! ```
//! use organics_data::{Batch, Batcher, Dataset, Order, View};
//!
//! // Ten 2x2 images; image k has every pixel k / 255 and label k % 3.
//! let pixels: Vec<f32> = (0..10).flat_map(|k| [k as f32 / 255.0; 4]).collect();
//! let data = Dataset::from_pixels(pixels, (0..10).map(|k| k % 3).collect(), 2, 2, 3);
//! let batcher = Batcher::new(&data, View::Sequential, 4, Order::Shuffled { seed: 1 }).unwrap();
//! assert_eq!(batcher.num_batches(), 3); // 4 + 4 + 2
//!
//! let mut epoch = batcher.epoch(0);
//! let mut sizes = vec![];
//! while let Some(batch) = epoch.next_batch() {
//!     assert_eq!(batch.inputs().len(), 4 * batch.size()); // T = 4 steps, D = 1
//!     assert_eq!(batch.step(0).len(), batch.size());     // step 0 for every sample
//!     sizes.push(batch.size());
//! }
//! assert_eq!(sizes, [4, 4, 2]);
//! ```

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::shuffle::{Purpose, permutation};
use crate::view::{Gather, View, ViewShape};

/// The order in which an epoch visits the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Order {
    /// A fresh permutation every epoch, from ChaCha8 keyed by `(seed, epoch)`.
    Shuffled {
        /// The shuffle seed.
        seed: u64,
    },
    /// Dataset order every epoch (for evaluation).
    InOrder,
}

/// Cuts a dataset into batches under a view. Cheap to build; holds no per-epoch state.
#[derive(Debug, Clone)]
pub struct Batcher {
    dataset: Dataset,
    view: View,
    gather: Gather,
    batch_size: usize,
    order: Order,
}

/// One batch: inputs in the time-major layout of the module doc, and labels.
///
/// Reused from batch to batch: its buffers keep their capacity.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    inputs: Vec<f32>,
    labels: Vec<u8>,
    positions: Vec<u32>,
    steps: usize,
    input_dim: usize,
}

/// The batches of one epoch, handed out one at a time in a reused buffer.
#[derive(Debug)]
pub struct Epoch<'a> {
    batcher: &'a Batcher,
    order: Vec<u32>,
    cursor: usize,
    batch: Batch,
}

impl Batcher {
    /// A batcher over `dataset` (a cheap clone is kept) presenting samples through `view`.
    ///
    /// Fails on a zero `batch_size` ([`DataError::InvalidBatchSize`]) or a view the image shape
    /// does not support ([`DataError::ViewShape`]).
    pub fn new(
        dataset: &Dataset,
        view: View,
        batch_size: usize,
        order: Order,
    ) -> Result<Batcher, DataError> {
        if batch_size == 0 {
            return Err(DataError::InvalidBatchSize { batch_size });
        }
        let gather = Gather::new(view, dataset.rows(), dataset.cols())?;
        Ok(Batcher {
            dataset: dataset.clone(),
            view,
            gather,
            batch_size,
            order,
        })
    }

    /// The dataset batched.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// The view applied.
    pub fn view(&self) -> View {
        self.view
    }

    /// Steps and values per step of every sample.
    pub fn shape(&self) -> ViewShape {
        self.gather.shape
    }

    /// The nominal batch size (the last batch of an epoch may be smaller).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The sample order.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Batches per epoch, `⌈N / B⌉` (0 for an empty dataset).
    pub fn num_batches(&self) -> usize {
        self.dataset.len().div_ceil(self.batch_size)
    }

    /// The order in which epoch `epoch` visits the samples: positions `0..N` in the dataset.
    pub fn epoch_order(&self, epoch: u64) -> Vec<u32> {
        match self.order {
            Order::Shuffled { seed } => {
                permutation(self.dataset.len(), Purpose::EpochShuffle, seed, epoch)
            }
            Order::InOrder => (0..self.dataset.len() as u32).collect(),
        }
    }

    /// The batches of epoch `epoch` (counting from 0), in a new buffer.
    pub fn epoch(&self, epoch: u64) -> Epoch<'_> {
        self.epoch_reusing(epoch, Batch::default())
    }

    /// The batches of epoch `epoch`, filled into `buffer` (reuse the one that
    /// [`Epoch::into_buffer`] returned to avoid reallocating).
    pub fn epoch_reusing(&self, epoch: u64, buffer: Batch) -> Epoch<'_> {
        Epoch {
            batcher: self,
            order: self.epoch_order(epoch),
            cursor: 0,
            batch: buffer,
        }
    }

    /// Fills `out` with the samples at `positions` (indices into the dataset) in that order.
    ///
    /// For callers that schedule batches themselves, for example one sub-batch per thread.
    ///
    /// # Panics
    /// If a position is not below the dataset's length.
    pub fn fill(&self, positions: &[u32], out: &mut Batch) {
        let size = positions.len();
        let shape = self.gather.shape;
        out.steps = shape.steps;
        out.input_dim = shape.input_dim;
        // Every element is overwritten below, so resizing without clearing is enough.
        out.inputs.resize(shape.features() * size, 0.0);
        out.labels.clear();
        out.positions.clear();
        out.positions.extend_from_slice(positions);
        let mut images = Vec::with_capacity(size);
        for &pos in positions {
            let k = self.dataset.stored_index(pos as usize);
            images.push(self.dataset.stored_image(k));
            out.labels.push(self.dataset.stored_label(k));
        }
        self.gather.fill_batch(&images, &mut out.inputs);
    }
}

impl Batch {
    /// An empty buffer.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Samples in this batch (the nominal batch size, or fewer for an epoch's last batch).
    pub fn size(&self) -> usize {
        self.labels.len()
    }

    /// Steps per sample, `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Values per step, `D`.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// All inputs, `[T][size][D]` row-major (see the module doc).
    pub fn inputs(&self) -> &[f32] {
        &self.inputs
    }

    /// Step `t` for every sample: a row-major `size x D` matrix.
    ///
    /// # Panics
    /// If `t >= self.steps()`.
    pub fn step(&self, t: usize) -> &[f32] {
        assert!(t < self.steps, "step {t} of {}", self.steps);
        let len = self.size() * self.input_dim;
        &self.inputs[t * len..(t + 1) * len]
    }

    /// The labels, one per sample.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The samples' positions in the batched dataset.
    pub fn positions(&self) -> &[u32] {
        &self.positions
    }
}

impl Epoch<'_> {
    /// The next batch, or `None` once the epoch is over.
    pub fn next_batch(&mut self) -> Option<&Batch> {
        if self.cursor >= self.order.len() {
            return None;
        }
        let end = (self.cursor + self.batcher.batch_size).min(self.order.len());
        self.batcher
            .fill(&self.order[self.cursor..end], &mut self.batch);
        self.cursor = end;
        Some(&self.batch)
    }

    /// Batches not yet handed out.
    pub fn remaining_batches(&self) -> usize {
        (self.order.len() - self.cursor).div_ceil(self.batcher.batch_size)
    }

    /// The sample order of this epoch (positions into the dataset).
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Gives back the buffer for [`Batcher::epoch_reusing`].
    pub fn into_buffer(self) -> Batch {
        self.batch
    }
}
