//! MNIST: the four IDX files, their checksums, and loading them as [`Dataset`]s.
//!
//! Train: 60 000 images; test: 10 000; each $28 \times 28$ bytes, pixel $x = p/255$; labels
//! $0..9$. The paper trains on 57 000 and validates on 3 000 images split off the training set
//! by torch's generator seeded with 73; [`Mnist::paper_split`] makes exactly that split, from the
//! draw shipped with this crate (see [`crate::draws`]), and [`Mnist::split`] any other.
//!
//! ```no_run
//! use organics_data::{Mnist, fetch, Progress, default_dir};
//!
//! let dir = default_dir();
//! fetch(&dir, Progress::Bar)?;             // verified; downloads only what is missing
//! let mnist = Mnist::load(&dir)?;
//! let split = mnist.paper_split()?;        // 57 000 / 3 000
//! assert_eq!(split.train.len(), 57_000);
//! # Ok::<(), organics_data::DataError>(())
//! ```

use std::path::Path;

use crate::dataset::{Dataset, Split};
use crate::draws::SplitDraw;
use crate::error::{DataError, FETCH_HINT};

/// File name of the training images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// File name of the training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// File name of the test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// File name of the test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The four MNIST files and the sha256 of their raw (uncompressed) bytes.
pub const MNIST_FILES: [(&str, &str); 4] = [
    (
        TRAIN_IMAGES,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        TRAIN_LABELS,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        TEST_IMAGES,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        TEST_LABELS,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

/// Number of MNIST classes (digits).
pub const CLASSES: usize = 10;

/// Seed of the paper's train/validation split (torch's generator; see [`crate::draws`]).
pub const PAPER_SPLIT_SEED: u64 = 73;

/// Validation images the paper holds out of the 60 000 training images.
pub const PAPER_VALIDATION_LEN: usize = 3_000;

/// Whether [`Mnist::load_checked`] compares the files with MNIST's checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataCheck {
    /// Hash all four files at every load (about 55 MB) and refuse any whose sha256 is not the
    /// one in [`MNIST_FILES`] with [`DataError::ChecksumMismatch`] (the default).
    #[default]
    Sha256,
    /// Read the files as they are: for IDX files that are not MNIST (synthetic test sets).
    None,
}

/// MNIST's training and test sets.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The 60 000 training images.
    pub train: Dataset,
    /// The 10 000 test images.
    pub test: Dataset,
}

impl Mnist {
    /// Loads the four IDX files from `dir`, each verified by its sha256
    /// ([`DataCheck::Sha256`]).
    ///
    /// Fails with [`DataError::DataMissing`] (which says to run `organics data fetch`) if any
    /// is absent, with [`DataError::ChecksumMismatch`] if one is not MNIST's, and with the IDX
    /// errors if one is malformed.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        Mnist::load_checked(dir, DataCheck::Sha256)
    }

    /// Loads the four IDX files (raw or gzip) from `dir`, checked as `check` says.
    ///
    /// The files are hashed, then read: a file replaced between the two reads is not noticed
    /// (the check guards against changed or damaged files, not against a concurrent writer).
    pub fn load_checked(dir: &Path, check: DataCheck) -> Result<Mnist, DataError> {
        let missing: Vec<String> = MNIST_FILES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !dir.join(name).is_file())
            .map(str::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(DataError::DataMissing {
                dir: dir.to_path_buf(),
                missing,
                hint: FETCH_HINT,
            });
        }
        if check == DataCheck::Sha256 {
            crate::checksum::verify(dir)?.into_result()?;
        }
        Ok(Mnist {
            train: Dataset::from_idx_files(
                &dir.join(TRAIN_IMAGES),
                &dir.join(TRAIN_LABELS),
                CLASSES,
            )?,
            test: Dataset::from_idx_files(&dir.join(TEST_IMAGES), &dir.join(TEST_LABELS), CLASSES)?,
        })
    }

    /// The paper's split of the training set: 57 000 train, 3 000 validation, the authors'
    /// exact draw (torch, seed 73).
    pub fn paper_split(&self) -> Result<Split, DataError> {
        self.split(SplitDraw::Paper)
    }

    /// 57 000 train and 3 000 validation images, in the order `draw` gives.
    pub fn split(&self, draw: SplitDraw) -> Result<Split, DataError> {
        self.train.split_with(PAPER_VALIDATION_LEN, draw)
    }
}
