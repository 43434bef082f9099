//! Helpers shared by the integration tests: scratch directories, synthetic MNIST-like files,
//! gzip, a small tar writer and fake `npm` programs.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use organics_data::idx::{self, Compression, IdxArray, IdxData};
use sha2::{Digest, Sha256};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty directory under the system temporary directory, removed on drop.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty scratch directory.
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "organics-data-test-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// IDX bytes of `count` images of `rows x cols`, pixel (k, i) = (7k + 3i) mod 256.
pub fn images_idx(count: usize, rows: usize, cols: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..count * rows * cols)
        .map(|p| {
            let (k, i) = (p / (rows * cols), p % (rows * cols));
            ((7 * k + 3 * i) % 256) as u8
        })
        .collect();
    idx::encode(
        &IdxArray::new(vec![count, rows, cols], IdxData::U8(pixels)),
        Compression::Raw,
    )
}

/// IDX bytes of labels k mod `classes`.
pub fn labels_idx(count: usize, classes: usize) -> Vec<u8> {
    idx::encode(
        &IdxArray::new(
            vec![count],
            IdxData::U8((0..count).map(|k| (k % classes) as u8).collect()),
        ),
        Compression::Raw,
    )
}

/// Four small files named like MNIST's, as (name, raw bytes).
pub fn synthetic_mnist() -> Vec<(String, Vec<u8>)> {
    vec![
        ("train-images-idx3-ubyte".into(), images_idx(12, 4, 6)),
        ("train-labels-idx1-ubyte".into(), labels_idx(12, 10)),
        ("t10k-images-idx3-ubyte".into(), images_idx(5, 4, 6)),
        ("t10k-labels-idx1-ubyte".into(), labels_idx(5, 10)),
    ]
}

/// A ustar archive (uncompressed) of regular files.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend(h);
        out.extend(*data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.extend([0u8; 1024]);
    out
}

/// An executable shell script at `dir/name` with `body`.
#[cfg(unix)]
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A fake `npm` that "packs" by copying `tgz` into the working directory.
#[cfg(unix)]
pub fn fake_npm(dir: &Path, tgz: &[u8]) -> PathBuf {
    let fixture = dir.join("fixture.tgz.src");
    std::fs::write(&fixture, tgz).unwrap();
    script(
        dir,
        "fake-npm",
        &format!("cp '{}' ./pkg-1.0.0.tgz", fixture.display()),
    )
}

/// Names of the entries of `dir`.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
