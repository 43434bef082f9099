//! A labelled image dataset, and cheap index views of it (subsets and splits).
//!
//! A [`Dataset`] is a shared, immutable store of $N$ images of $r \times c$ pixels, each pixel
//! $x = p / 255 \in [0, 1]$ for the stored byte $p$ (no mean/std normalisation, as in the paper's
//! `ToTensor` pipeline, spec §D.4), plus a list of indices into that store. Subsets and the
//! train/validation split only make new index lists: the pixels are never copied.
//!
//! The split draws one permutation $\pi$ of $\{0, \dots, N-1\}$ from the seed and takes
//!
//! $$ \text{train} = (\pi_0, \dots, \pi_{N-v-1}), \qquad
//!    \text{validation} = (\pi_{N-v}, \dots, \pi_{N-1}), $$
//!
//! the same construction as torch's `random_split([N - v, v])`. The permutation comes from our
//! ChaCha8 stream ([`Dataset::split`], see [`crate::shuffle`]) or, for the 60 000 MNIST
//! training images, is the paper's own, drawn by torch ([`SplitDraw::Paper`], see
//! [`crate::draws`]).
//!
//! ```
//! use organics_data::Dataset;
//!
//! // Six 2x2 images whose pixels all equal their index / 255, labels 0..3 repeated.
//! let pixels: Vec<f32> = (0..6).flat_map(|i| [i as f32 / 255.0; 4]).collect();
//! let data = Dataset::from_pixels(pixels, vec![0, 1, 2, 0, 1, 2], 2, 2, 3);
//! let split = data.split(2, 73).unwrap();
//! assert_eq!((split.train.len(), split.validation.len()), (4, 2));
//! assert_eq!(data.subset(3).label_histogram(), vec![1, 1, 1]);
//! ```

use std::path::Path;
use std::sync::Arc;

use crate::draws::{PAPER_SPLIT_LEN, SplitDraw, paper_split_order};
use crate::error::DataError;
use crate::idx::{self, IdxData, IdxType};
use crate::shuffle::{Purpose, permutation};

#[derive(Debug)]
struct Storage {
    /// `len * rows * cols` pixels in [0, 1], image-major, row-major within an image.
    pixels: Vec<f32>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
    classes: usize,
}

/// Labelled images: a shared pixel store and the indices of the samples in this view of it.
///
/// Cloning is cheap (two reference-count increments).
#[derive(Debug, Clone)]
pub struct Dataset {
    storage: Arc<Storage>,
    indices: Arc<[u32]>,
}

/// A dataset divided into a training part and a held-out validation part.
#[derive(Debug, Clone)]
pub struct Split {
    /// The samples to train on.
    pub train: Dataset,
    /// The held-out samples.
    pub validation: Dataset,
}

impl Dataset {
    /// A dataset from pixels already scaled to [0, 1].
    ///
    /// `pixels` holds `labels.len()` images of `rows * cols` values each, image after image,
    /// each image in row-major order.
    ///
    /// # Panics
    /// If `pixels.len() != labels.len() * rows * cols`, if a label is not below `classes`, or if
    /// there are more than `u32::MAX` samples. Data read from files is checked with typed
    /// errors by [`Dataset::from_idx_files`] before it gets here.
    #[track_caller]
    pub fn from_pixels(
        pixels: Vec<f32>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        classes: usize,
    ) -> Dataset {
        assert_eq!(
            Some(pixels.len()),
            labels
                .len()
                .checked_mul(rows)
                .and_then(|v| v.checked_mul(cols)),
            "{} pixels do not make {} images of {rows}x{cols}",
            pixels.len(),
            labels.len()
        );
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= classes)
        {
            panic!("label {l} at index {i} is out of range 0..{classes}");
        }
        let n = u32::try_from(labels.len()).expect("at most u32::MAX samples");
        Dataset {
            storage: Arc::new(Storage {
                pixels,
                labels,
                rows,
                cols,
                classes,
            }),
            indices: (0..n).collect(),
        }
    }

    /// Reads an IDX image file (`u8`, `[count, rows, cols]`) and its IDX label file (`u8`,
    /// `[count]`, each label below `classes`), raw or gzip, and scales pixels by 1/255.
    pub fn from_idx_files(
        images: &Path,
        labels: &Path,
        classes: usize,
    ) -> Result<Dataset, DataError> {
        let label_values = read_labels(labels, classes)?;
        let image_array = idx::read(images)?;
        let (dims, data) = image_array.into_parts();
        let bytes = match data {
            IdxData::U8(b) => b,
            other => {
                return Err(DataError::WrongElementType {
                    file: images.to_path_buf(),
                    expected: IdxType::U8,
                    found: other.element_type(),
                });
            }
        };
        let &[count, rows, cols] = dims.as_slice() else {
            return Err(DataError::WrongRank {
                file: images.to_path_buf(),
                expected: "[count, rows, cols]",
                found: dims,
            });
        };
        if count != label_values.len() {
            return Err(DataError::SizeMismatch {
                images: images.to_path_buf(),
                labels: labels.to_path_buf(),
                image_count: count,
                label_count: label_values.len(),
            });
        }
        let pixels = bytes.iter().map(|&p| f32::from(p) / 255.0).collect();
        Ok(Dataset::from_pixels(
            pixels,
            label_values,
            rows,
            cols,
            classes,
        ))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Image height in pixels.
    pub fn rows(&self) -> usize {
        self.storage.rows
    }

    /// Image width in pixels.
    pub fn cols(&self) -> usize {
        self.storage.cols
    }

    /// Pixels per image, `rows * cols`.
    pub fn pixels_per_image(&self) -> usize {
        self.storage.rows * self.storage.cols
    }

    /// Number of classes (labels lie in `0..classes`).
    pub fn classes(&self) -> usize {
        self.storage.classes
    }

    /// The index of sample `i` in the underlying file.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn source_index(&self, i: usize) -> usize {
        self.indices[i] as usize
    }

    /// The pixels of sample `i`, row-major, in [0, 1].
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[f32] {
        self.stored_image(self.indices[i])
    }

    /// The label of sample `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.storage.labels[self.indices[i] as usize]
    }

    /// The labels of all samples, in order.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = u8> + '_ {
        self.indices
            .iter()
            .map(|&k| self.storage.labels[k as usize])
    }

    /// How many samples carry each label, `classes` counts.
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut h = vec![0; self.classes()];
        for l in self.labels() {
            h[usize::from(l)] += 1;
        }
        h
    }

    /// The first `n` samples (all of them if `n >= self.len()`), sharing the pixel store.
    pub fn subset(&self, n: usize) -> Dataset {
        Dataset {
            storage: Arc::clone(&self.storage),
            indices: self.indices[..n.min(self.len())].into(),
        }
    }

    /// Splits off `validation` samples at random (deterministic in `seed`; see the module doc).
    pub fn split(&self, validation: usize, seed: u64) -> Result<Split, DataError> {
        self.split_with(validation, SplitDraw::ChaCha8 { seed })
    }

    /// Splits off `validation` samples in the order `draw` gives: the last `validation`
    /// positions of the order are held out. [`SplitDraw::Paper`] needs the 60 000 MNIST
    /// training images (see [`crate::draws`]).
    pub fn split_with(&self, validation: usize, draw: SplitDraw) -> Result<Split, DataError> {
        if validation > self.len() {
            return Err(DataError::SplitTooLarge {
                validation,
                available: self.len(),
            });
        }
        let order = match draw {
            SplitDraw::ChaCha8 { seed } => permutation(self.len(), Purpose::Split, seed, 0),
            SplitDraw::Paper => {
                if self.len() != PAPER_SPLIT_LEN {
                    return Err(DataError::PaperDrawLength {
                        what: "split",
                        alternative: "--split chacha8:SEED",
                        expected: PAPER_SPLIT_LEN,
                        actual: self.len(),
                    });
                }
                paper_split_order()?
            }
        };
        let pick = |positions: &[u32]| -> Dataset {
            Dataset {
                storage: Arc::clone(&self.storage),
                indices: positions
                    .iter()
                    .map(|&p| self.indices[p as usize])
                    .collect(),
            }
        };
        let (train, held_out) = order.split_at(self.len() - validation);
        Ok(Split {
            train: pick(train),
            validation: pick(held_out),
        })
    }

    /// The pixels of stored image `k` (an index into the pixel store, not into this view).
    pub(crate) fn stored_image(&self, k: u32) -> &[f32] {
        let d = self.pixels_per_image();
        let start = k as usize * d;
        &self.storage.pixels[start..start + d]
    }

    /// The stored index of sample `i`.
    pub(crate) fn stored_index(&self, i: usize) -> u32 {
        self.indices[i]
    }

    /// The label of stored sample `k`.
    pub(crate) fn stored_label(&self, k: u32) -> u8 {
        self.storage.labels[k as usize]
    }
}

/// Reads an IDX label file: `u8` elements, rank 1, every label below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, DataError> {
    let (dims, data) = idx::read(path)?.into_parts();
    let labels = match data {
        IdxData::U8(l) => l,
        other => {
            return Err(DataError::WrongElementType {
                file: path.to_path_buf(),
                expected: IdxType::U8,
                found: other.element_type(),
            });
        }
    };
    if dims.len() != 1 {
        return Err(DataError::WrongRank {
            file: path.to_path_buf(),
            expected: "[count]",
            found: dims,
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            file: path.to_path_buf(),
            index,
            label,
            classes,
        });
    }
    Ok(labels)
}
