//! Cost of filling one training batch (256 samples of 28x28) under each view, on a synthetic
//! dataset of 4 096 images so the bench needs no download. Compare with the ~0.4 s floor of one
//! sMNIST BPTT step (docs: performance model): batch filling should be negligible beside it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use organics_data::{Batch, Batcher, Dataset, Order, View};

fn synthetic(n: usize) -> Dataset {
    let pixels = (0..n * 784).map(|j| (j % 251) as f32 / 255.0).collect();
    Dataset::from_pixels(pixels, (0..n).map(|k| (k % 10) as u8).collect(), 28, 28, 10)
}

fn fill(c: &mut Criterion) {
    let data = synthetic(4096);
    let mut group = c.benchmark_group("fill_batch_256");
    group.throughput(Throughput::Bytes((256 * 784 * 4) as u64));
    for view in [
        View::Static,
        View::Sequential,
        View::paper_permuted(),
        View::RowWise,
        View::Downsampled14,
    ] {
        let batcher = Batcher::new(&data, view, 256, Order::Shuffled { seed: 1 }).unwrap();
        let order = batcher.epoch_order(0);
        let mut batch = Batch::new();
        group.bench_function(view.to_string(), |b| {
            b.iter(|| {
                batcher.fill(&order[..256], &mut batch);
                std::hint::black_box(batch.inputs()[0]);
            })
        });
    }
    group.finish();
    c.bench_function("epoch_order_57000", |b| {
        let big = synthetic(57_000);
        let batcher = Batcher::new(&big, View::Static, 256, Order::Shuffled { seed: 1 }).unwrap();
        let mut e = 0;
        b.iter(|| {
            e += 1;
            std::hint::black_box(batcher.epoch_order(e).len())
        })
    });
}

criterion_group!(benches, fill);
criterion_main!(benches);
