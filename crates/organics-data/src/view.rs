//! Views: how an image becomes a model input, as a sequence of `T` steps of `D` values.
//!
//! For an image `x ∈ [0, 1]^{r×c}` flattened row-major to `x_k`, `k = i c + j`:
//!
//! | view | `T` | `D` | step `t`, component `d` |
//! |---|---|---|---|
//! | [`View::Static`] | 1 | `rc` | `x_d` |
//! | [`View::Sequential`] | `rc` | 1 | `x_t` (pixel by pixel, row-major scan) |
//! | [`View::PaperPermutedSequential`] | `rc` | 1 | `x_{π_t}`, the paper's permutation `π` (784 pixels) |
//! | [`View::PermutedSequential`] | `rc` | 1 | `x_{π_t}`, one fixed permutation `π` from the seed |
//! | [`View::RowWise`] | `r` | `c` | `x_{tc+d}` (row `t`) |
//! | [`View::Downsampled14`] | `(r/2)(c/2)` | 1 | `¼ Σ_{a,b ∈ {0,1}} x_{(2i+a)c + 2j + b}` with `t = i·c/2 + j` |
//!
//! For MNIST (`28 × 28`) that is 784 x 1 (sMNIST, psMNIST), 28 x 28 (row-wise) and
//! 196 x 1 (a `14 × 14` image from 2x2 average pooling, for quick runs).
//!
//! The permuted view applies `π` as torch's `x[:, perm]` does: step `t` reads pixel `π_t`.
//! The paper's permutation is `torch.randperm(784, generator = manual_seed(73))`, shipped with
//! this crate as drawn by torch ([`crate::draws`]); `permuted:SEED` draws a ChaCha8
//! Fisher–Yates permutation instead (see [`crate::shuffle`]). Any fixed permutation makes the
//! same task in distribution; the paper's makes the same task sample for sample.
//!
//! A view is only a description: it is applied while a batch is filled
//! ([`crate::Batcher`]), never by copying the dataset.
//!
//! ```
//! use organics_data::View;
//!
//! let image: Vec<f32> = (0..16).map(|k| k as f32).collect(); // a 4x4 "image"
//! assert_eq!(View::RowWise.apply(&image, 4, 4).unwrap()[4..8], [4.0, 5.0, 6.0, 7.0]);
//! // 2x2 pooling of the top-left block: (0 + 1 + 4 + 5) / 4.
//! assert_eq!(View::Downsampled14.apply(&image, 4, 4).unwrap()[0], 2.5);
//! let shape = View::Sequential.shape(28, 28).unwrap();
//! assert_eq!((shape.steps, shape.input_dim), (784, 1));
//! ```

use std::fmt;
use std::str::FromStr;

use crate::draws::{PAPER_PERMUTATION_LEN, paper_pixel_permutation};
use crate::error::DataError;
use crate::shuffle::{Purpose, permutation};

/// How an image is presented to a model (see the module doc for the formulas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum View {
    /// The whole image as one vector of `rows * cols` values (1 step).
    Static,
    /// One pixel per step in row-major scan order (sequential MNIST, 784 x 1).
    Sequential,
    /// One pixel per step in the paper's fixed order (permuted sequential MNIST): the
    /// authors' torch permutation of the 784 pixels, shipped with this crate (see
    /// [`crate::draws`]). 28 × 28 images only.
    PaperPermutedSequential,
    /// One pixel per step in a fixed random order drawn from this crate's ChaCha8 stream.
    PermutedSequential {
        /// Seed of the pixel permutation.
        seed: u64,
    },
    /// One image row per step (28 steps x 28 for MNIST).
    RowWise,
    /// One pixel per step of the image down-sampled by 2x2 average pooling (14x14 = 196 steps
    /// for MNIST). Needs even image sides.
    Downsampled14,
}

/// The sequence shape a view gives: `steps` steps of `input_dim` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ViewShape {
    /// Number of time steps `T` (1 for [`View::Static`]).
    pub steps: usize,
    /// Values per step `D`.
    pub input_dim: usize,
}

impl ViewShape {
    /// Values per sample, `steps * input_dim`.
    pub fn features(&self) -> usize {
        self.steps * self.input_dim
    }
}

impl View {
    /// The seed the paper gives `torch.randperm` for its pixel permutation (docs/model.md#sequential-mnist-training).
    pub const PAPER_PERMUTATION_SEED: u64 = 73;

    /// The paper's permuted view, [`View::PaperPermutedSequential`].
    pub fn paper_permuted() -> View {
        View::PaperPermutedSequential
    }

    /// The view's name as [`FromStr`] accepts it (without the seed).
    pub fn name(&self) -> &'static str {
        match self {
            View::Static => "static",
            View::Sequential => "sequential",
            View::PaperPermutedSequential => "permuted",
            View::PermutedSequential { .. } => "permuted",
            View::RowWise => "row-wise",
            View::Downsampled14 => "downsampled14",
        }
    }

    /// The sequence shape for `rows x cols` images.
    pub fn shape(&self, rows: usize, cols: usize) -> Result<ViewShape, DataError> {
        let n = rows * cols;
        Ok(match self {
            View::Static => ViewShape {
                steps: 1,
                input_dim: n,
            },
            View::Sequential | View::PermutedSequential { .. } => ViewShape {
                steps: n,
                input_dim: 1,
            },
            View::PaperPermutedSequential => {
                paper_permutation_fits(n)?;
                ViewShape {
                    steps: n,
                    input_dim: 1,
                }
            }
            View::RowWise => ViewShape {
                steps: rows,
                input_dim: cols,
            },
            View::Downsampled14 => {
                if !rows.is_multiple_of(2) || !cols.is_multiple_of(2) {
                    return Err(DataError::ViewShape {
                        view: self.name(),
                        rows,
                        cols,
                    });
                }
                ViewShape {
                    steps: n / 4,
                    input_dim: 1,
                }
            }
        })
    }

    /// The permutation a permuted view applies to `len` pixels: step `t` reads pixel
    /// `perm[t]`. `Ok(None)` for the other views; an error if the paper's permutation is asked
    /// to order other than its 784 pixels.
    pub fn permutation(&self, len: usize) -> Result<Option<Vec<u32>>, DataError> {
        match *self {
            View::PermutedSequential { seed } => {
                Ok(Some(permutation(len, Purpose::PixelPermutation, seed, 0)))
            }
            View::PaperPermutedSequential => {
                paper_permutation_fits(len)?;
                paper_pixel_permutation().map(Some)
            }
            _ => Ok(None),
        }
    }

    /// One image as the view presents it: `steps * input_dim` values, step after step.
    ///
    /// # Panics
    /// If `image.len() != rows * cols`.
    pub fn apply(&self, image: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>, DataError> {
        let gather = Gather::new(*self, rows, cols)?;
        let mut out = vec![0.0; gather.shape.features()];
        gather.fill_batch(&[image], &mut out);
        Ok(out)
    }
}

/// The paper's permutation orders exactly [`PAPER_PERMUTATION_LEN`] pixels.
fn paper_permutation_fits(pixels: usize) -> Result<(), DataError> {
    if pixels == PAPER_PERMUTATION_LEN {
        Ok(())
    } else {
        Err(DataError::PaperDrawLength {
            what: "pixel permutation",
            alternative: "--view permuted:SEED",
            expected: PAPER_PERMUTATION_LEN,
            actual: pixels,
        })
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            View::PermutedSequential { seed } => write!(f, "permuted:{seed}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for View {
    type Err = DataError;

    /// Parses `static`, `sequential`, `permuted` (the paper's permutation), `permuted:SEED`
    /// (a ChaCha8 permutation), `row-wise`, `downsampled14`; the inverse of
    /// [`Display`](fmt::Display).
    fn from_str(s: &str) -> Result<View, DataError> {
        let unknown = || DataError::UnknownView {
            name: s.to_string(),
        };
        Ok(match s {
            "static" => View::Static,
            "sequential" => View::Sequential,
            "permuted" => View::paper_permuted(),
            "row-wise" => View::RowWise,
            "downsampled14" => View::Downsampled14,
            _ => match s.strip_prefix("permuted:") {
                Some(seed) => View::PermutedSequential {
                    seed: seed.parse().map_err(|_| unknown())?,
                },
                None => return Err(unknown()),
            },
        })
    }
}

/// A view resolved for one image shape: the permutation is drawn once, here.
#[derive(Debug, Clone)]
pub(crate) struct Gather {
    pub(crate) shape: ViewShape,
    kind: GatherKind,
}

#[derive(Debug, Clone)]
enum GatherKind {
    /// Values in stored order (static, sequential, row-wise).
    Copy,
    /// Step `t` reads pixel `map[t]` (permuted; `input_dim` is 1).
    Map(Vec<u32>),
    /// 2x2 average pooling of an image `cols` wide (`input_dim` is 1).
    Pool2x2 { cols: usize },
}

impl Gather {
    pub(crate) fn new(view: View, rows: usize, cols: usize) -> Result<Gather, DataError> {
        let shape = view.shape(rows, cols)?;
        let kind = match view {
            View::Static | View::Sequential | View::RowWise => GatherKind::Copy,
            View::PermutedSequential { .. } | View::PaperPermutedSequential => {
                GatherKind::Map(view.permutation(rows * cols)?.unwrap_or_default())
            }
            View::Downsampled14 => GatherKind::Pool2x2 { cols },
        };
        Ok(Gather { shape, kind })
    }

    /// Writes `images` (one slice of `rows * cols` pixels per sample) into the time-major
    /// buffer `out[t][b][d]` (length `steps * images.len() * input_dim`).
    ///
    /// The loop runs over steps outside and samples inside, so writes are sequential and each
    /// image's cache lines are reused across consecutive steps.
    pub(crate) fn fill_batch(&self, images: &[&[f32]], out: &mut [f32]) {
        let ViewShape { steps, input_dim } = self.shape;
        let batch = images.len();
        assert_eq!(out.len(), steps * batch * input_dim);
        for image in images {
            assert_eq!(image.len(), steps * input_dim * self.pool_factor());
        }
        if batch == 0 {
            return;
        }
        let rows = out.chunks_exact_mut(batch * input_dim);
        match &self.kind {
            GatherKind::Copy if input_dim == 1 => {
                for (t, row) in rows.enumerate() {
                    for (o, image) in row.iter_mut().zip(images) {
                        *o = image[t];
                    }
                }
            }
            GatherKind::Copy => {
                for (t, row) in rows.enumerate() {
                    for (o, image) in row.chunks_exact_mut(input_dim).zip(images) {
                        o.copy_from_slice(&image[t * input_dim..(t + 1) * input_dim]);
                    }
                }
            }
            GatherKind::Map(map) => {
                for (row, &k) in rows.zip(map) {
                    for (o, image) in row.iter_mut().zip(images) {
                        *o = image[k as usize];
                    }
                }
            }
            GatherKind::Pool2x2 { cols } => {
                let half = cols / 2;
                for (t, row) in rows.enumerate() {
                    let top = 2 * (t / half) * cols + 2 * (t % half);
                    let bottom = top + cols;
                    for (o, x) in row.iter_mut().zip(images) {
                        *o = 0.25 * (x[top] + x[top + 1] + x[bottom] + x[bottom + 1]);
                    }
                }
            }
        }
    }

    /// Pixels per view value (4 for 2x2 pooling, else 1).
    fn pool_factor(&self) -> usize {
        match self.kind {
            GatherKind::Pool2x2 { .. } => 4,
            _ => 1,
        }
    }
}
