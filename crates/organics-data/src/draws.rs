//! The paper's random draws: its train/validation split and its psMNIST pixel permutation.
//!
//! The authors draw both from PyTorch's generator seeded with 73:
//!
//! ```text
//! train, val = random_split(mnist_train, [57000, 3000], generator=Generator().manual_seed(73))
//! perm       = randperm(784, generator=Generator().manual_seed(73))      # x[:, perm]
//! ```
//!
//! Rust cannot make those draws without re-implementing torch's generator, so they were made
//! once, by those same calls, with torch 2.15.0 (`draws/generate.py` beside this crate's
//! manifest), and ship with the crate as two IDX files of 32-bit integers:
//!
//! | file | length | content |
//! |---|---|---|
//! | `draws/split-73.idx` | 60 000 | the 57 000 training indices, then the 3 000 validation indices, in `random_split`'s order |
//! | `draws/permutation-784-73.idx` | 784 | step $t$ of a sequence reads pixel `perm[t]` |
//!
//! Each is checked against its sha256 ([`PAPER_SPLIT_SHA256`], [`PAPER_PERMUTATION_SHA256`])
//! and for being a permutation before it is used. These are the defaults of the training
//! driver; the ChaCha8 draws of [`crate::shuffle`] remain available as
//! [`SplitDraw::ChaCha8`] and [`crate::View::PermutedSequential`].

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::checksum::hex;
use crate::error::DataError;
use crate::idx::{self, IdxData};

/// sha256 of `draws/split-73.idx`.
pub const PAPER_SPLIT_SHA256: &str =
    "d11d62076c5f4e3a4c6a86b8f3dc750f5b6dd3cbdb1b8426e12f71df9dfd58c6";

/// sha256 of `draws/permutation-784-73.idx`.
pub const PAPER_PERMUTATION_SHA256: &str =
    "a3f308e0a21cd17088347c5900185ed93b505666072f985f9904528cd8c74689";

/// Samples the paper's split orders: the 60 000 MNIST training images.
pub const PAPER_SPLIT_LEN: usize = 60_000;

/// Pixels the paper's permutation orders: one 28 × 28 image.
pub const PAPER_PERMUTATION_LEN: usize = 784;

const SPLIT_BYTES: &[u8] = include_bytes!("../draws/split-73.idx");
const PERMUTATION_BYTES: &[u8] = include_bytes!("../draws/permutation-784-73.idx");

/// How a dataset's train/validation split is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SplitDraw {
    /// The authors' split, drawn by torch with seed 73 (60 000 samples only).
    Paper,
    /// A Fisher–Yates permutation from this crate's ChaCha8 stream (see [`crate::shuffle`]).
    ChaCha8 {
        /// Seed of the permutation.
        seed: u64,
    },
}

impl std::fmt::Display for SplitDraw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitDraw::Paper => f.write_str("paper"),
            SplitDraw::ChaCha8 { seed } => write!(f, "chacha8:{seed}"),
        }
    }
}

impl std::str::FromStr for SplitDraw {
    type Err = DataError;

    /// Parses `paper` or `chacha8:SEED`; the inverse of [`Display`](std::fmt::Display).
    fn from_str(s: &str) -> Result<SplitDraw, DataError> {
        let unknown = || DataError::UnknownSplit {
            name: s.to_string(),
        };
        match s {
            "paper" => Ok(SplitDraw::Paper),
            _ => {
                let seed = s.strip_prefix("chacha8:").ok_or_else(unknown)?;
                Ok(SplitDraw::ChaCha8 {
                    seed: seed.parse().map_err(|_| unknown())?,
                })
            }
        }
    }
}

/// The paper's split as one order of the 60 000 training indices: the first 57 000 are the
/// training samples, the last 3 000 the validation samples.
pub fn paper_split_order() -> Result<Vec<u32>, DataError> {
    decode_permutation(
        SPLIT_BYTES,
        PAPER_SPLIT_SHA256,
        PAPER_SPLIT_LEN,
        "split-73.idx",
    )
}

/// The paper's psMNIST pixel permutation: step `t` reads pixel `perm[t]`.
pub fn paper_pixel_permutation() -> Result<Vec<u32>, DataError> {
    decode_permutation(
        PERMUTATION_BYTES,
        PAPER_PERMUTATION_SHA256,
        PAPER_PERMUTATION_LEN,
        "permutation-784-73.idx",
    )
}

/// Checks `bytes` against `sha256`, decodes them as a rank-1 IDX array of 32-bit integers and
/// checks that they are a permutation of `0..len`.
fn decode_permutation(
    bytes: &[u8],
    sha256: &str,
    len: usize,
    name: &str,
) -> Result<Vec<u32>, DataError> {
    let file = Path::new(name);
    let corrupt = |reason: String| DataError::CorruptDraw {
        file: name.to_string(),
        reason,
    };
    let actual = hex(&Sha256::digest(bytes));
    if actual != sha256 {
        return Err(corrupt(format!("sha256 {actual}, expected {sha256}")));
    }
    let (dims, data) = idx::decode(bytes, file)?.into_parts();
    let IdxData::I32(values) = data else {
        return Err(corrupt("elements are not 32-bit integers".into()));
    };
    if dims != [len] {
        return Err(corrupt(format!("dimensions {dims:?}, expected [{len}]")));
    }
    let mut seen = vec![false; len];
    let mut order = Vec::with_capacity(len);
    for v in values {
        let i = usize::try_from(v)
            .ok()
            .filter(|&i| i < len && !seen[i])
            .ok_or_else(|| corrupt(format!("{v} is out of range or repeated")))?;
        seen[i] = true;
        order.push(i as u32);
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_draws_are_permutations_of_the_right_length() {
        let split = paper_split_order().unwrap();
        assert_eq!(split.len(), PAPER_SPLIT_LEN);
        let perm = paper_pixel_permutation().unwrap();
        assert_eq!(perm.len(), PAPER_PERMUTATION_LEN);
        // Neither draw is the identity (a generator that returned 0..n would pass the checks
        // above).
        assert!(split.iter().enumerate().any(|(i, &v)| v as usize != i));
        assert!(perm.iter().enumerate().any(|(i, &v)| v as usize != i));
    }

    #[test]
    fn the_split_is_torchs_random_split() {
        // Under torch 2.15.0, `random_split(range(60000), [57000, 3000],
        // generator=torch.Generator().manual_seed(73))` gave training indices starting
        // [32182, 56402, 16394] and validation indices starting [7749, 28206, 56480]: an
        // independent check of the shipped file's layout (train first, then validation).
        let order = paper_split_order().unwrap();
        assert_eq!(order[..3], [32182, 56402, 16394]);
        assert_eq!(order[57_000..57_003], [7749, 28206, 56480]);
        // Through the dataset: 60 000 one-pixel images whose label is their index mod 10.
        let labels: Vec<u8> = (0..PAPER_SPLIT_LEN).map(|i| (i % 10) as u8).collect();
        let pixels = vec![0.0; PAPER_SPLIT_LEN];
        let data = crate::Dataset::from_pixels(pixels, labels, 1, 1, 10);
        let split = data.split_with(3_000, SplitDraw::Paper).unwrap();
        assert_eq!(split.validation.len(), 3_000);
        assert_eq!(split.validation.source_index(0), 7749);
        assert_eq!(split.train.source_index(2), 16394);
        // The paper's split orders 60 000 samples only.
        assert!(matches!(
            data.subset(100).split_with(10, SplitDraw::Paper),
            Err(DataError::PaperDrawLength { .. })
        ));
    }

    #[test]
    fn split_draws_parse_and_print() {
        for text in ["paper", "chacha8:73"] {
            assert_eq!(text.parse::<SplitDraw>().unwrap().to_string(), text);
        }
        for bad in ["torch", "chacha8:", "chacha8:x", "chacha8:-1"] {
            assert!(
                matches!(
                    bad.parse::<SplitDraw>(),
                    Err(DataError::UnknownSplit { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let mut bytes = PERMUTATION_BYTES.to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = decode_permutation(&bytes, PAPER_PERMUTATION_SHA256, 784, "p.idx").unwrap_err();
        assert!(err.to_string().contains("sha256"), "{err}");
    }

    #[test]
    fn a_repeated_index_is_refused_even_with_a_matching_hash() {
        // An IDX file of [0, 0]: well formed, but not a permutation.
        let mut bytes = vec![0, 0, 0x0C, 1, 0, 0, 0, 2];
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let hash = hex(&Sha256::digest(&bytes));
        let err = decode_permutation(&bytes, &hash, 2, "p.idx").unwrap_err();
        assert!(err.to_string().contains("repeated"), "{err}");
    }
}
