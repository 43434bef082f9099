//! Checking data files by sha256, and where the data lives.
//!
//! [`verify`] hashes the four MNIST files in a directory and reports each as verified, missing
//! or corrupt; [`crate::Mnist::load`] runs it at every load. [`default_dir`] is where the data
//! is looked for: `$ORGANICS_DATA`, else `$XDG_CACHE_HOME/organics/mnist`, else
//! `~/.cache/organics/mnist`. Nothing here spawns a process or touches the network (that is
//! [`crate::fetch`](mod@crate::fetch), behind the `fetch` feature).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, FETCH_HINT};
use crate::mnist::MNIST_FILES;

/// A file to fetch: its name in the data directory and the sha256 of its raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileSpec {
    /// File name inside the data directory.
    pub name: String,
    /// Expected sha256 of the raw (uncompressed) bytes, lower-case hex.
    pub sha256: String,
}

/// The state of one file in a [`VerifyReport`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum FileStatus {
    /// Present with the expected sha256.
    Verified,
    /// Absent.
    Missing,
    /// Present with another sha256.
    Corrupt {
        /// The digest found.
        found: String,
    },
}

/// One file checked by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileCheck {
    /// File name.
    pub name: String,
    /// Expected sha256.
    pub expected: String,
    /// What was found.
    pub status: FileStatus,
}

/// The outcome of [`verify`]: every file's status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The data directory.
    pub dir: PathBuf,
    /// One entry per wanted file.
    pub files: Vec<FileCheck>,
}

impl VerifyReport {
    /// Whether every file is present and verified.
    pub fn is_complete(&self) -> bool {
        self.files.iter().all(|f| f.status == FileStatus::Verified)
    }

    /// `Ok(self)` if complete; else the first corrupt file as [`DataError::ChecksumMismatch`],
    /// or the missing files as [`DataError::DataMissing`].
    pub fn into_result(self) -> Result<VerifyReport, DataError> {
        if let Some((f, found)) = self.files.iter().find_map(|f| match &f.status {
            FileStatus::Corrupt { found } => Some((f, found)),
            _ => None,
        }) {
            return Err(DataError::ChecksumMismatch {
                file: self.dir.join(&f.name),
                expected: f.expected.clone(),
                found: found.clone(),
            });
        }
        let missing: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.status == FileStatus::Missing)
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(DataError::DataMissing {
                dir: self.dir,
                missing,
                hint: FETCH_HINT,
            });
        }
        Ok(self)
    }
}

/// Checks the sha256 of each MNIST file in `dir`. Missing or corrupt files are reported in the
/// [`VerifyReport`], not as errors; an `Err` means a file could not be read at all.
pub fn verify(dir: &Path) -> Result<VerifyReport, DataError> {
    verify_files(dir, &mnist_files())
}

/// The four MNIST files of [`MNIST_FILES`] as [`FileSpec`]s.
pub fn mnist_files() -> Vec<FileSpec> {
    MNIST_FILES
        .iter()
        .map(|(name, sha)| FileSpec {
            name: (*name).to_string(),
            sha256: (*sha).to_string(),
        })
        .collect()
}

/// Checks the sha256 of each of `files` in `dir`.
pub fn verify_files(dir: &Path, files: &[FileSpec]) -> Result<VerifyReport, DataError> {
    let files = files
        .iter()
        .map(|spec| {
            let status = match sha256_file(&dir.join(&spec.name))? {
                None => FileStatus::Missing,
                Some(found) if found == spec.sha256 => FileStatus::Verified,
                Some(found) => FileStatus::Corrupt { found },
            };
            Ok(FileCheck {
                name: spec.name.clone(),
                expected: spec.sha256.clone(),
                status,
            })
        })
        .collect::<Result<_, DataError>>()?;
    Ok(VerifyReport {
        dir: dir.to_path_buf(),
        files,
    })
}

/// The default data directory: `$ORGANICS_DATA` if set and non-empty, else
/// `$XDG_CACHE_HOME/organics/mnist` (if that variable holds an absolute path), else
/// `$HOME/.cache/organics/mnist`, else (no home directory at all) the system temporary
/// directory's `organics/mnist`.
pub fn default_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("ORGANICS_DATA") {
        return PathBuf::from(dir);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .or_else(|| var("LOCALAPPDATA").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("organics").join("mnist")
}

/// Lower-case hex sha256 of the file at `path`, or `None` if it does not exist.
fn sha256_file(path: &Path) -> Result<Option<String>, DataError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DataError::io(path, e)),
    };
    let mut hasher = Sha256::new();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    loop {
        let chunk = reader.fill_buf().map_err(|e| DataError::io(path, e))?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        reader.consume(n);
    }
    Ok(Some(hex(&hasher.finalize())))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
