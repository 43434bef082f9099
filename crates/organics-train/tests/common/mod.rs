//! Synthetic data, a small trainer and the list of models shared by the training tests.
#![allow(dead_code)]

use organics_data::{Batch, Batcher, Dataset, Order};
use organics_train::trainer::Trainer;
use organics_train::{Data, ModelKind, Task, TrainConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `count` 28x28 images; class `k` lights a 4-pixel-high horizontal band starting at row
/// `2k + 4`, plus uniform noise in [0, 0.3), so the classes are separable but not trivially.
pub fn synthetic(count: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(count * 784);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let k = (i % 10) as u8;
        for r in 0..28 {
            for _ in 0..28 {
                let band = r >= 2 * usize::from(k) + 4 && r < 2 * usize::from(k) + 8;
                let v = rng.random::<f32>() * 0.3 + if band { 0.7 } else { 0.0 };
                pixels.push(v.min(1.0));
            }
        }
        labels.push(k);
    }
    Dataset::from_pixels(pixels, labels, 28, 28, 10)
}

/// A small trainer of `model` on `task` (12 units, 6 in a second layer, batches of 10 on 2
/// threads; sequences downsampled to 14 x 14) and the first batch of 10 synthetic images of
/// `seed`.
pub fn small_trainer(model: ModelKind, task: Task, seed: u64) -> (Trainer, Batch) {
    let mut cfg = TrainConfig::preset(task, model);
    cfg.hidden = 12;
    cfg.hidden2 = 6;
    cfg.batch_size = 10;
    cfg.threads = 2;
    if task.is_sequential() {
        cfg.view = organics_data::View::Downsampled14;
    }
    let data = synthetic(10, seed);
    let shape = cfg.view.shape(28, 28).expect("shape");
    let trainer = Trainer::new(&cfg, shape.steps, shape.input_dim).expect("trainer");
    (trainer, first_batch(&data, cfg.view, cfg.batch_size))
}

/// The first batch of `size` images of `data` in order, presented as `view`.
pub fn first_batch(data: &Dataset, view: organics_data::View, size: usize) -> Batch {
    Batcher::new(data, view, size, Order::InOrder)
        .expect("batcher")
        .epoch(0)
        .next_batch()
        .expect("one batch")
        .clone()
}

/// Every model the trainer trains, each on a task it takes: the static one- and two-layer
/// models and the MLP (on tapes or organics-grad's fused engine), the ORGaNICs RNN, the LSTM
/// and the tanh RNN (its BPTT engines).
pub const MODELS: [(ModelKind, Task); 6] = [
    (ModelKind::Organics, Task::Mnist),
    (ModelKind::Organics2Layer, Task::Mnist),
    (ModelKind::Mlp, Task::Mnist),
    (ModelKind::Organics, Task::Smnist),
    (ModelKind::Lstm, Task::Smnist),
    (ModelKind::Rnn, Task::Smnist),
];

/// Train / validation / test sets of synthetic images.
pub fn data(train: usize, eval: usize) -> Data {
    Data {
        train: synthetic(train, 1),
        validation: synthetic(eval, 2),
        test: synthetic(eval, 3),
    }
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("organics-train-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
