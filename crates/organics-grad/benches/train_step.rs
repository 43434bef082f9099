//! Criterion benchmarks at the paper's sequential-MNIST size (n = 128, batch 256, T = 784):
//! one fused Euler step forward and backward for a 128-row chunk, and one full training step
//! (forward, BPTT, Adam) on 1 and on 2 threads. Throughput counts GEMM floating-point
//! operations (criterion prints them as "elem/s", i.e. FLOP/s). `examples/bench.rs` prints the same
//! training step against its GEMM roofline.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use organics_grad::bptt::train_step_flops;
use organics_grad::cell::{
    self, CellConfig, CellDims, CellWeights, StepRecord, StepScratch, forward_step_flops,
};
use organics_grad::optim::{AdamConfig, Optimizer};
use organics_grad::rnn::Prepared;
use organics_grad::spectral_norm::PowerIteration;
use organics_grad::{Bptt, BpttConfig, OrganicsRnn, RnnConfig, SequenceBatch};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

const N: usize = 128;
const ROWS: usize = 128;

fn cell_steps(c: &mut Criterion) {
    let model = OrganicsRnn::<f32>::new(RnnConfig::smnist(N), 1).expect("model");
    let mut prep = Prepared::default();
    model.prepare(&mut prep);
    let dims = CellDims { n: N, m: 1 };
    let w = CellWeights {
        dims,
        wx: &prep.wx,
        wr: &prep.wr,
        wg: &prep.wg,
        w: &prep.w,
        dt: &prep.dt,
        sigma2: &prep.sigma2,
    };
    let cfg = CellConfig::NEURIPS;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f32> = (0..ROWS).map(|_| rng.random()).collect();
    let init = model.initial_state();
    let state: Vec<f32> = (0..ROWS).flat_map(|_| init.iter().copied()).collect();
    let mut next = vec![0.0f32; ROWS * 4 * N];
    let mut cache = vec![0.0f32; ROWS * 4 * N];
    let mut scratch = StepScratch::default();
    let mut g = c.benchmark_group("cell_step_rows128_n128");
    g.throughput(Throughput::Elements(forward_step_flops(dims, ROWS) as u64));
    g.bench_function("forward", |b| {
        b.iter(|| {
            cell::forward_step(
                &cfg,
                &w,
                ROWS,
                black_box(&x),
                black_box(&state),
                &mut next,
                &mut cache,
                &mut scratch,
            )
        })
    });
    let g_next: Vec<f32> = (0..ROWS * 4 * N)
        .map(|_| rng.random::<f32>() - 0.5)
        .collect();
    let mut g_state = vec![0.0f32; ROWS * 4 * N];
    let (mut dp, mut dyhat, mut du, mut r, mut v) = (
        vec![0.0f32; ROWS * 3 * N],
        vec![0.0f32; ROWS * N],
        vec![0.0f32; ROWS * N],
        vec![0.0f32; ROWS * N],
        vec![0.0f32; ROWS * N],
    );
    let (mut ddt, mut ds) = (vec![0.0f32; 4 * N], vec![0.0f32; N]);
    // The state-gradient GEMMs of a backward step have the forward step's shapes; weight
    // gradients are formed per block elsewhere (`accumulate_weight_grads`).
    g.throughput(Throughput::Elements(forward_step_flops(dims, ROWS) as u64));
    g.bench_function("backward_state_only", |b| {
        b.iter(|| {
            let rec = StepRecord {
                dp: &mut dp,
                dyhat: &mut dyhat,
                du: &mut du,
                r: &mut r,
                v: &mut v,
            };
            cell::backward_step(
                &cfg,
                &w,
                ROWS,
                &x,
                &state,
                &cache,
                black_box(&g_next),
                &mut g_state,
                rec,
                &mut ddt,
                &mut ds,
                None,
                &mut scratch,
            );
        });
    });
    g.finish();
}

fn train_step(c: &mut Criterion) {
    const STEPS: usize = 784;
    const BATCH: usize = 256;
    let mut model = OrganicsRnn::<f32>::new(RnnConfig::smnist(N), 7).expect("model");
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let data: Vec<f32> = (0..STEPS * BATCH)
        .map(|_| {
            if rng.random::<f32>() < 0.8 {
                0.0
            } else {
                rng.random()
            }
        })
        .collect();
    let labels: Vec<usize> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();
    let batch = SequenceBatch {
        data: &data,
        steps: STEPS,
        batch: BATCH,
        input: 1,
    };
    let mut g = c.benchmark_group("smnist_train_step_b256_n128_t784");
    g.sample_size(10);
    // One and two threads, each on its own pool (the batch is cut into one chunk per thread).
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(|_| {
                organics_ftz::enable(); // as the trainer's pool (organics-ftz)
            })
            .build()
            .expect("thread pool");
        let mut grads = model.params.zeros_like();
        let mut opt = Optimizer::adam(AdamConfig::default(), &model.params);
        let mut engine = Bptt::new(BpttConfig::default()).expect("engine");
        let rows: Vec<usize> = (0..threads)
            .map(|i| (i + 1) * BATCH / threads - i * BATCH / threads)
            .collect();
        g.throughput(Throughput::Elements(train_step_flops(
            CellDims { n: N, m: 1 },
            10,
            STEPS,
            &rows,
            BpttConfig::default().checkpointing,
        ) as u64));
        g.bench_function(format!("{threads}_threads"), |b| {
            pool.install(|| {
                b.iter(|| {
                    engine
                        .loss_and_grad(
                            &mut model,
                            &batch,
                            &labels,
                            PowerIteration::Update,
                            &mut grads,
                        )
                        .expect("step");
                    opt.step(&mut model.params, &grads, 0.01).expect("adam");
                });
            });
        });
    }
    g.finish();
}

criterion_group!(benches, cell_steps, train_step);
criterion_main!(benches);
