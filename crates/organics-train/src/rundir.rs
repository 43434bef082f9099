//! Run directories: one process per directory, no silent overwrite, no half-replaced run.
//!
//! **Lock.** A process that trains into (or resumes) the run directory `NAME` first takes an
//! exclusive lock on the file `.NAME.lock` beside it ([`std::fs::File::try_lock`], `flock(2)`
//! on Unix) and holds it for its whole life; it writes its pid, host and start time into the
//! file, so a second process is refused ([`TrainError::RunLocked`]) with a message naming the
//! holder. The operating system releases the lock when the holder ends, however it ends
//! (`kill -9` included); the file itself stays (deleting a lock file that another process may
//! have opened would let two holders in). On network file systems `flock` may be local to one
//! machine: run one job per directory there.
//!
//! **Fresh runs.** A run directory that exists and is not empty is refused
//! ([`TrainError::RunExists`]) unless [`Existing::Overwrite`] is given. The new run is written
//! to the sibling `NAME.new` and committed at its first checkpoint: `NAME` → `NAME.old`
//! (if it exists), `NAME.new` → `NAME`, `NAME.old` removed. Until then the old run is untouched,
//! so a run killed before its first checkpoint leaves the old run whole (and a stale `NAME.new`,
//! which the next run clears). A kill between the two renames leaves `NAME.old` and a complete
//! `NAME.new`; the next process on `NAME` finishes the commit ([`RunDir::create`],
//! [`RunDir::open`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::checkpoint::with_suffix as sibling;
use crate::error::TrainError;

/// What to do when a fresh run's directory already holds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Existing {
    /// Refuse with [`TrainError::RunExists`] (the default).
    #[default]
    Refuse,
    /// Replace it, once the new run has written its first checkpoint.
    Overwrite,
}

/// A locked run directory; the lock is released when this is dropped.
#[derive(Debug)]
pub struct RunDir {
    target: PathBuf,
    path: PathBuf,
    committed: bool,
    _lock: File,
}

fn lock_path(dir: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(dir.file_name().unwrap_or_default());
    name.push(".lock");
    dir.with_file_name(name)
}

/// The host name, for the lock file.
fn host() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".to_string())
}

/// `secs` after the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian calendar,
/// by the days-to-civil conversion with 400-year eras of 146 097 days).
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Takes the lock of run directory `dir`, writing this process into the lock file.
fn lock(dir: &Path) -> Result<File, TrainError> {
    let path = lock_path(dir);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(TrainError::io(parent))?;
    }
    // Not truncated on open: the holder's line must survive until the lock is ours.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(TrainError::io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(TrainError::RunLocked {
                dir: dir.to_path_buf(),
                lock: path,
                holder: if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(TryLockError::Error(e)) => return Err(TrainError::io(&path)(e)),
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = format!(
        "pid {} on host {} since {}\n",
        std::process::id(),
        host(),
        utc(since)
    );
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(TrainError::io(&path))?;
    Ok(file)
}

/// Finishes a commit that a kill interrupted between its two renames, and removes a left-over
/// `NAME.old`.
fn recover(target: &Path) -> Result<(), TrainError> {
    let (new, old) = (sibling(target, "new"), sibling(target, "old"));
    if !target.exists() && old.exists() && new.join("checkpoints").join("last").exists() {
        std::fs::rename(&new, target).map_err(TrainError::io(target))?;
    }
    if target.exists() && old.exists() {
        std::fs::remove_dir_all(&old).map_err(TrainError::io(&old))?;
    }
    Ok(())
}

fn holds_something(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

impl RunDir {
    /// Locks `target` for a fresh run and prepares its staging directory `NAME.new`.
    ///
    /// # Errors
    /// [`TrainError::RunLocked`] if another process holds it; [`TrainError::RunExists`] if it
    /// holds something and `existing` is [`Existing::Refuse`]; [`TrainError::Io`].
    pub fn create(target: &Path, existing: Existing) -> Result<RunDir, TrainError> {
        let lock = lock(target)?;
        recover(target)?;
        if existing == Existing::Refuse && holds_something(target) {
            return Err(TrainError::RunExists {
                dir: target.to_path_buf(),
            });
        }
        let path = sibling(target, "new");
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(TrainError::io(&path))?;
        }
        std::fs::create_dir_all(&path).map_err(TrainError::io(&path))?;
        Ok(RunDir {
            target: target.to_path_buf(),
            path,
            committed: false,
            _lock: lock,
        })
    }

    /// Locks the existing run directory `target` (to resume it).
    ///
    /// # Errors
    /// [`TrainError::RunLocked`]; [`TrainError::Io`].
    pub fn open(target: &Path) -> Result<RunDir, TrainError> {
        let lock = lock(target)?;
        recover(target)?;
        Ok(RunDir {
            target: target.to_path_buf(),
            path: target.to_path_buf(),
            committed: true,
            _lock: lock,
        })
    }

    /// Where the run's files are written now (`NAME.new` until the commit, then `NAME`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run directory `NAME`.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the staged run into place (call after its first checkpoint; later calls do
    /// nothing). Files open in the staging directory stay valid: renames keep them.
    pub fn commit(&mut self) -> Result<(), TrainError> {
        if self.committed {
            return Ok(());
        }
        let old = sibling(&self.target, "old");
        if self.target.exists() {
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(TrainError::io(&old))?;
            }
            std::fs::rename(&self.target, &old).map_err(TrainError::io(&self.target))?;
        }
        std::fs::rename(&self.path, &self.target).map_err(TrainError::io(&self.target))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(TrainError::io(&old))?;
        }
        self.path = self.target.clone();
        self.committed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Existing, RunDir, sibling, utc};
    use crate::error::TrainError;

    fn scratch(name: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("organics-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    #[test]
    fn a_commit_cut_between_its_renames_is_finished_by_the_next_process() {
        let root = scratch("recover");
        let run = root.join("run");
        // The state a kill leaves after `run` → `run.old` and before `run.new` → `run`.
        let (old, new) = (sibling(&run, "old"), sibling(&run, "new"));
        std::fs::create_dir_all(old.join("checkpoints/last")).unwrap();
        std::fs::write(old.join("config.json"), "old").unwrap();
        std::fs::create_dir_all(new.join("checkpoints/last")).unwrap();
        std::fs::write(new.join("config.json"), "new").unwrap();
        let dir = RunDir::open(&run).unwrap();
        assert_eq!(
            std::fs::read_to_string(run.join("config.json")).unwrap(),
            "new"
        );
        assert!(!old.exists() && !new.exists());
        drop(dir);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_lock_refuses_a_second_holder_and_is_released_on_drop() {
        let root = scratch("lock");
        let run = root.join("run");
        let first = RunDir::create(&run, Existing::Refuse).unwrap();
        // A second open file description in the same process conflicts like another process.
        match RunDir::open(&run) {
            Err(TrainError::RunLocked { holder, .. }) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                );
            }
            other => panic!("expected RunLocked, got {other:?}"),
        }
        drop(first);
        assert!(RunDir::open(&run).is_ok());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn utc_formats_known_instants() {
        // 0: the epoch; 951_782_400: 2000-02-29 (a 400-year leap day); 1_700_000_000: a date
        // read off `date -u -d @1700000000`.
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
