//! Fetches and verifies MNIST, then prints the label histograms.
//!
//! `cargo run --release -p organics-data --example fetch_mnist [DIR]` (default: the cache
//! directory, see `organics_data::default_dir`). Expected output ends with the published
//! histograms: train 5923 6742 5958 6131 5842 5421 5918 6265 5851 5949, test 980 1135 1032
//! 1010 982 892 958 1028 974 1009.

use std::path::PathBuf;

use organics_data::{Mnist, Progress, default_dir, fetch};

fn main() -> Result<(), organics_data::DataError> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(default_dir);
    let report = fetch(&dir, Progress::Bar)?;
    for failure in &report.failures {
        println!("failed: {}: {}", failure.source, failure.reason);
    }
    for file in &report.files {
        println!("{}  {}  from {}", file.sha256, file.name, file.origin);
    }
    let mnist = Mnist::load(&dir)?;
    println!("train {:?}", mnist.train.label_histogram());
    println!("test  {:?}", mnist.test.label_histogram());
    Ok(())
}
