//! Throughput of one sequential-MNIST training step against the GEMM roofline.
//!
//! Prints one line per benchmark, `NAME: median_s=<seconds> gflops=<GFLOP/s>`:
//!
//! - `train_step_{1,2}t`: one full step of the paper's sMNIST model (batch 256, n = 128,
//!   T = 784; forward, BPTT backward, Adam) on 1 and 2 threads;
//! - `gemm_roofline_{1,2}t`: exactly the GEMMs that step executes (same shapes, same count,
//!   same per-thread split), with nothing else;
//! - `train_step_saturated_2t`: the same step from a "late-training" state with saturated
//!   gates and tiny normalisation weights (the regime where subnormal floats appear);
//! - `train_step_baseline_isa_2t`: the same step with the element-wise loops on the build's
//!   baseline instructions (SSE2) instead of the widest detected set (see `simd`);
//! - `state_traffic_{1,2}t`: the step's unavoidable memory traffic with nothing else: every
//!   state and cache row the step stores (`2 × 785 × 256 × 4n` values, 0.82 GB) written in
//!   time order, then read back in reverse, as the forward and backward passes do, on the
//!   same per-thread split (`GB/s` counts the bytes written and read). The stored states are
//!   far larger than any cache, so each of their bytes crosses the memory bus twice whatever
//!   the element-wise loops compute; `cargo xtask bench` sets this time beside the roofline.
//!
//! `train_step_Nt`, `gemm_roofline_Nt` and `state_traffic_Nt` run alternately, repetition by
//! repetition, when they are asked for together, so that a drift of the machine's speed falls
//! on the step and its ceilings alike.
//!
//! After each `train_step_*` line, a `# NAME phases` line splits the step's passes into its
//! GEMM and element-wise phases (`organics_grad::phases`, from a few more steps with the
//! timing on): the GEMMs against the roofline, the element-wise loops as the rest.
//!
//! - `fma_peak_{1,2}t`: the processor's fused multiply-add throughput, measured: a loop of
//!   independent multiply-adds on vector registers at the widest detected instruction set,
//!   nothing loaded or stored, on 1 thread and on 2 threads at once (`gflops` sums them).
//!   `cargo xtask bench` sets each GEMM roofline beside it: how far the GEMMs themselves are
//!   from what the cores can do.
//!
//! Every thread computes with flush-to-zero on, as `organics train`'s do (organics-ftz).
//! GFLOP/s counts GEMM floating-point operations only (`2mkn` per product), as executed.
//! The traffic lines print `gbps=` (GB/s) instead of `gflops=`.
//! Usage: `cargo run --release -p organics-grad --example bench [-- --quick] [--checkpoint K]
//! [--only NAME] [--block K]` (`--block`: steps per weight-gradient GEMM, default 4, the
//! engine's default; the roofline uses the same blocks).

use organics_grad::bptt::train_step_flops;
use organics_grad::cell::{CellDims, backward_step_flops, forward_step_flops};
use organics_grad::linalg::{Beta, Trans, View, ViewMut, gemm};
use organics_grad::optim::{AdamConfig, Optimizer};
use organics_grad::phases::PhaseTiming;
use organics_grad::simd::InstructionSet;
use organics_grad::spectral_norm::PowerIteration;
use organics_grad::{
    Bptt, BpttConfig, Checkpointing, Chunks, OrganicsRnn, ParamSet, RnnConfig, SequenceBatch,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::time::Instant;

const BATCH: usize = 256;
const HIDDEN: usize = 128;
const STEPS: usize = 784;
const CLASSES: usize = 10;

/// A pool of `threads` workers computing with flush-to-zero on, as the trainer's.
fn ftz_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| {
            organics_ftz::enable(); // as the trainer's pool (organics-ftz)
        })
        .build()
        .expect("thread pool")
}

/// Accumulators of [`FmaPeak`]: enough independent chains to cover the multiply-add latency
/// on every port (4 cycles × 2 ports needs 8) with room to spare, and few enough to stay in
/// registers (16 on AVX2, 32 on AVX-512).
const FMA_CHAINS: usize = 12;

/// `iterations` rounds of `acc ← acc · a + b` on [`FMA_CHAINS`] vector registers.
struct FmaPeak {
    iterations: usize,
}

impl pulp::WithSimd for FmaPeak {
    type Output = (f32, usize);

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) -> (f32, usize) {
        // The fixed point of x ← 0.5 x + 0.5 is 1: no value overflows or turns subnormal.
        let (a, b) = (simd.splat_f32s(0.5), simd.splat_f32s(0.5));
        let mut acc: [S::f32s; FMA_CHAINS] =
            std::array::from_fn(|i| simd.splat_f32s(std::hint::black_box(i as f32)));
        for _ in 0..self.iterations {
            for x in &mut acc {
                *x = simd.mul_add_e_f32s(*x, a, b);
            }
        }
        let lanes: &[f32] = pulp::bytemuck::cast_slice(&acc);
        (lanes.iter().sum(), lanes.len())
    }
}

/// The floating-point operations of one thread's [`FmaPeak`] loop (2 per lane per
/// multiply-add), after running it at the widest instruction set.
fn fma_peak(iterations: usize) -> f64 {
    let (sum, lanes) = pulp::Arch::new().dispatch(FmaPeak { iterations });
    std::hint::black_box(sum);
    2.0 * lanes as f64 * iterations as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f(); // warm-up: grows every buffer once
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn chunk_rows(threads: usize) -> Vec<usize> {
    (0..threads)
        .map(|i| (i + 1) * BATCH / threads - i * BATCH / threads)
        .collect()
}

/// Buffers for the roofline of one chunk.
struct Gemms {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

/// The roofline of a step on `threads` threads: one chunk of GEMMs per thread.
struct Roofline {
    rows: Vec<usize>,
    bufs: Vec<Gemms>,
    forward_passes: usize,
    block: usize,
}

impl Roofline {
    fn new(threads: usize, forward_passes: usize, block: usize) -> Self {
        let rows = chunk_rows(threads);
        let big = 4 * HIDDEN * block * BATCH;
        let bufs = rows
            .iter()
            .map(|_| Gemms {
                a: vec![0.5; big],
                b: vec![0.25; big],
                c: vec![0.0; 4 * HIDDEN * 4 * HIDDEN.max(BATCH)],
            })
            .collect();
        Self {
            rows,
            bufs,
            forward_passes,
            block,
        }
    }

    /// Runs every chunk's GEMMs, one chunk per thread of the current pool.
    fn run(&mut self) {
        let (passes, block) = (self.forward_passes, self.block);
        self.bufs
            .par_iter_mut()
            .zip(&self.rows)
            .for_each(|(g, &r)| roofline_chunk(g, r, passes, block));
    }

    /// Its line, `NAME: median_s=.. gflops=..`, for a median of `seconds`.
    fn print(&self, name: &str, seconds: f64, dims: CellDims) {
        println!(
            "{name}: median_s={seconds:.4} gflops={:.1}",
            self.flops(dims) / seconds / 1e9
        );
    }

    fn flops(&self, dims: CellDims) -> f64 {
        self.rows
            .iter()
            .map(|&r| {
                STEPS as f64
                    * (self.forward_passes as f64 * forward_step_flops(dims, r)
                        + backward_step_flops(dims, r))
            })
            .sum()
    }
}

/// One chunk's stored rows: every state (`STEPS + 1` of them) and every cache (`STEPS`), each
/// `rows × 4n`, as the engine stores them for the backward pass.
struct Stored {
    states: Vec<f32>,
    caches: Vec<f32>,
    /// What the forward sweep writes: one step's rows, small enough to stay in the L2.
    source: Vec<f32>,
}

/// The stored states' memory traffic of a step on `threads` threads (`state_traffic_Nt`).
struct StateTraffic {
    chunks: Vec<Stored>,
}

impl StateTraffic {
    fn new(threads: usize) -> Self {
        let width = 4 * HIDDEN;
        let chunks = chunk_rows(threads)
            .into_iter()
            .map(|rows| Stored {
                states: vec![0.0; (STEPS + 1) * rows * width],
                caches: vec![0.0; STEPS * rows * width],
                source: (0..rows * width).map(|k| (k % 97) as f32).collect(),
            })
            .collect();
        Self { chunks }
    }

    /// Writes every step's state and cache rows in time order, then reads them back from the
    /// last step to the first, one chunk per thread of the current pool.
    fn run(&mut self) {
        self.chunks.par_iter_mut().for_each(|c| {
            pulp::Arch::new().dispatch(|| traffic_chunk(c));
        });
    }

    /// Its line, `NAME: median_s=.. gbps=..`, for a median of `seconds`.
    fn print(&self, name: &str, seconds: f64) {
        println!(
            "{name}: median_s={seconds:.4} gbps={:.1}",
            self.bytes() / seconds / 1e9
        );
    }

    /// Bytes written and read per run.
    fn bytes(&self) -> f64 {
        let values: usize = self
            .chunks
            .iter()
            .map(|c| c.states.len() + c.caches.len())
            .sum();
        2.0 * 4.0 * values as f64
    }
}

/// One chunk's traffic: the forward sweep's stores of state `t + 1` and cache `t`, then the
/// backward sweep's loads of state `t` and cache `t`, summed so that no load is dropped.
#[inline(always)]
fn traffic_chunk(c: &mut Stored) {
    let len = c.source.len();
    for t in 0..STEPS {
        c.states[(t + 1) * len..(t + 2) * len].copy_from_slice(&c.source);
        c.caches[t * len..(t + 1) * len].copy_from_slice(&c.source);
    }
    // Sixteen partial sums: a loop the compiler vectorises, so that the loads, not the
    // additions' latency, set its speed.
    let mut acc = [0.0f32; 16];
    for t in (0..STEPS).rev() {
        for rows in [
            &c.states[t * len..(t + 1) * len],
            &c.caches[t * len..(t + 1) * len],
        ] {
            for chunk in rows.chunks_exact(16) {
                for (a, &x) in acc.iter_mut().zip(chunk) {
                    *a += x;
                }
            }
        }
    }
    std::hint::black_box(acc);
}

/// One forward and backward pass of the step (spectral-norm vectors updated, as in training).
fn grad_pass(
    engine: &mut Bptt<f32>,
    model: &mut OrganicsRnn<f32>,
    batch: &SequenceBatch<'_, f32>,
    labels: &[usize],
    grads: &mut ParamSet<f32>,
) {
    engine
        .loss_and_grad(model, batch, labels, PowerIteration::Update, grads)
        .expect("step");
}

/// Medians of `runs` timed in turn, repetition by repetition, after one warm-up run of
/// each: a drift of the machine's speed falls on all of them alike.
fn time_interleaved(reps: usize, runs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for f in runs.iter_mut() {
        f();
    }
    let mut times = vec![Vec::with_capacity(reps); runs.len()];
    for _ in 0..reps {
        for (f, t) in runs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            f();
            t.push(start.elapsed().as_secs_f64());
        }
    }
    times.into_iter().map(median).collect()
}

/// The GEMMs of one chunk's training step: per time step the forward products (twice when
/// checkpointing recomputes), the state-gradient products, and per block of `block` steps the
/// weight-gradient products with inner dimension `block · rows`.
fn roofline_chunk(g: &mut Gemms, rows: usize, forward_passes: usize, block: usize) {
    let (n, m) = (HIDDEN, 1);
    let mm = |g: &mut Gemms, mr: usize, k: usize, nc: usize, tb: Trans| {
        let bshape = if tb == Trans::Yes { (nc, k) } else { (k, nc) };
        gemm(
            ViewMut::new(&mut g.c[..mr * nc], mr, nc),
            Beta::Overwrite,
            View::new(&g.a[..mr * k], mr, k),
            Trans::No,
            View::new(&g.b[..k * nc], bshape.0, bshape.1),
            tb,
        );
    };
    for t in 0..STEPS {
        for _ in 0..forward_passes {
            mm(g, rows, m, 3 * n, Trans::Yes);
            mm(g, rows, n, n, Trans::Yes);
            mm(g, rows, n, n, Trans::Yes);
            mm(g, rows, 2 * n, 2 * n, Trans::Yes);
        }
        mm(g, rows, m, 3 * n, Trans::Yes);
        mm(g, rows, 2 * n, 2 * n, Trans::No);
        mm(g, rows, n, n, Trans::No);
        mm(g, rows, n, n, Trans::No);
        if t % block == 0 {
            let k = block * rows;
            let wg = |g: &mut Gemms, mr: usize, nc: usize| {
                gemm(
                    ViewMut::new(&mut g.c[..mr * nc], mr, nc),
                    Beta::Accumulate,
                    View::new(&g.a[..k * mr], k, mr),
                    Trans::Yes,
                    View::new(&g.b[..k * nc], k, nc),
                    Trans::No,
                );
            };
            wg(g, 3 * n, m);
            wg(g, n, n);
            wg(g, 2 * n, 2 * n);
            wg(g, n, n);
        }
    }
}

fn main() {
    organics_ftz::enable(); // the calling thread too, as `organics train` runs
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let reps = if quick { 1 } else { 5 };
    let checkpointing = args
        .iter()
        .position(|a| a == "--checkpoint")
        .and_then(|i| args.get(i + 1))
        .and_then(|k| k.parse().ok())
        .map_or(Checkpointing::None, Checkpointing::Every);
    let block: usize = args
        .iter()
        .position(|a| a == "--block")
        .and_then(|i| args.get(i + 1))
        .and_then(|k| k.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(BpttConfig::default().weight_grad_block);
    // `--only NAME` runs only the benchmarks whose name contains NAME.
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let forward_passes = if matches!(checkpointing, Checkpointing::Every(k) if k < STEPS) {
        2
    } else {
        1
    };
    faer::set_global_parallelism(faer::Par::Seq);

    let dims = CellDims { n: HIDDEN, m: 1 };
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    // MNIST-like pixels: most are 0, the rest in (0, 1].
    let data: Vec<f32> = (0..STEPS * BATCH)
        .map(|_| {
            if rng.random::<f32>() < 0.8 {
                0.0
            } else {
                rng.random::<f32>()
            }
        })
        .collect();
    let labels: Vec<usize> = (0..BATCH).map(|_| rng.random_range(0..CLASSES)).collect();
    let batch = SequenceBatch {
        data: &data,
        steps: STEPS,
        batch: BATCH,
        input: 1,
    };

    println!(
        "# element-wise kernels: {}",
        InstructionSet::detected_name()
    );
    println!("# weight-gradient block: {block} steps");
    // Ceilings (rooflines, traffic) already measured beside their step.
    let mut done: Vec<String> = Vec::new();
    for (name, threads, saturated, isa) in [
        ("train_step_1t", 1, false, InstructionSet::Detect),
        ("train_step_2t", 2, false, InstructionSet::Detect),
        ("train_step_saturated_2t", 2, true, InstructionSet::Detect),
        (
            "train_step_baseline_isa_2t",
            2,
            false,
            InstructionSet::Baseline,
        ),
    ] {
        if !name.contains(&only) {
            continue;
        }
        let pool = ftz_pool(threads);
        let mut model = OrganicsRnn::<f32>::new(RnnConfig::smnist(HIDDEN), 7).expect("model");
        if saturated {
            // Late-training regime: large gate weights (saturated sigmoids at their 4e-18 floor)
            // and normalisation weights exp(log W) near the bottom of the f32 range.
            let ids = *model.ids();
            for id in [
                ids.w_by0, ids.w_ba0, ids.w_by1, ids.w_ba1, ids.w_bx0, ids.w_bx1,
            ] {
                model
                    .params
                    .data_mut(id)
                    .iter_mut()
                    .for_each(|x| *x *= 60.0);
            }
            model
                .params
                .data_mut(ids.log_w)
                .iter_mut()
                .for_each(|x| *x = *x * 3.0 - 84.0);
        }
        let mut grads = model.params.zeros_like();
        let mut opt = Optimizer::adam(AdamConfig::default(), &model.params);
        let mut engine = Bptt::new(BpttConfig {
            checkpointing,
            chunks: Chunks::PerThread,
            weight_grad_block: block,
            instruction_set: isa,
        })
        .expect("engine");
        let mut step = || {
            grad_pass(&mut engine, &mut model, &batch, &labels, &mut grads);
            opt.step(&mut model.params, &grads, 0.01).expect("adam");
        };
        // The plain steps run interleaved with their ceilings (the roofline, and the stored
        // states' traffic when every state is stored), when those are asked for too.
        let plain = !saturated && isa == InstructionSet::Detect;
        let roof_name = format!("gemm_roofline_{threads}t");
        let traffic_name = format!("state_traffic_{threads}t");
        let mut roof = (plain && roof_name.contains(&only))
            .then(|| Roofline::new(threads, forward_passes, block));
        let mut traffic = (plain && forward_passes == 1 && traffic_name.contains(&only))
            .then(|| StateTraffic::new(threads));
        let medians = pool.install(|| {
            let mut runs: Vec<&mut dyn FnMut()> = vec![&mut step];
            let mut roof_run = roof.as_mut().map(|r| move || r.run());
            let mut traffic_run = traffic.as_mut().map(|t| move || t.run());
            if let Some(f) = roof_run.as_mut() {
                runs.push(f);
            }
            if let Some(f) = traffic_run.as_mut() {
                runs.push(f);
            }
            time_interleaved(reps, &mut runs)
        });
        let mut medians = medians.into_iter();
        let s = medians.next().expect("the step's median");
        let flops = train_step_flops(dims, CLASSES, STEPS, &chunk_rows(threads), checkpointing);
        println!("{name}: median_s={s:.4} gflops={:.1}", flops / s / 1e9);
        if let Some(r) = &roof {
            r.print(
                &roof_name,
                medians.next().expect("the roofline's median"),
                dims,
            );
            done.push(roof_name);
        }
        if let Some(t) = &traffic {
            t.print(&traffic_name, medians.next().expect("the traffic's median"));
            done.push(traffic_name);
        }
        // Where the time goes: a few more steps with the phases timed (the median above ran
        // with timing off).
        engine.set_phase_timing(PhaseTiming::On);
        let timed = if quick { 1 } else { 3 };
        pool.install(|| {
            for _ in 0..timed {
                grad_pass(&mut engine, &mut model, &batch, &labels, &mut grads);
            }
        });
        let t = engine.take_phase_times();
        engine.set_phase_timing(PhaseTiming::Off);
        let per_step = |d: std::time::Duration| d.as_secs_f64() / timed as f64;
        println!(
            "# {name} phases (CPU s per step, summed over threads): GEMMs {:.4} (forward {:.4}, \
             backward {:.4}, weight gradients {:.4}), element-wise {:.4} (forward {:.4}, \
             backward {:.4}), other {:.4}",
            per_step(t.gemm()),
            per_step(t.forward_gemm),
            per_step(t.backward_gemm),
            per_step(t.weight_grad_gemm),
            per_step(t.elementwise()),
            per_step(t.forward_elementwise),
            per_step(t.backward_elementwise),
            per_step(t.other),
        );
    }

    for (name, threads) in [("gemm_roofline_1t", 1), ("gemm_roofline_2t", 2)] {
        if !name.contains(&only) || done.iter().any(|d| d == name) {
            continue;
        }
        let pool = ftz_pool(threads);
        let mut roof = Roofline::new(threads, forward_passes, block);
        let s = pool.install(|| time(reps, || roof.run()));
        roof.print(name, s, dims);
    }
    for (name, threads) in [("fma_peak_1t", 1), ("fma_peak_2t", 2)] {
        if !name.contains(&only) {
            continue;
        }
        let pool = ftz_pool(threads);
        let iterations = if quick { 1 << 20 } else { 1 << 23 };
        let mut flops = 0.0;
        let s = pool.install(|| {
            time(reps.max(3), || {
                flops = (0..threads)
                    .into_par_iter()
                    .map(|_| fma_peak(iterations))
                    .sum();
            })
        });
        println!("{name}: median_s={s:.4} gflops={:.1}", flops / s / 1e9);
    }
    for (name, threads) in [("state_traffic_1t", 1), ("state_traffic_2t", 2)] {
        if !name.contains(&only) || done.iter().any(|d| d == name) || forward_passes > 1 {
            continue;
        }
        let pool = ftz_pool(threads);
        let mut traffic = StateTraffic::new(threads);
        let s = pool.install(|| time(reps, || traffic.run()));
        traffic.print(name, s);
    }
}
