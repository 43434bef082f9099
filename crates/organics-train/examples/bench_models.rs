//! Training-step times of the models `organics train` runs on a tape, one line each,
//! `NAME: median_s=<seconds> gflops=<GFLOP/s>` (the format `cargo xtask bench` reads):
//!
//! - `static_step_early`: one step (forward, backward, Adam; batch 256, 2 threads) of the
//!   one-layer static ORGaNICs model (784 → 360 → 120 → 40 autoencoder, 50 units) from its
//!   initialisation, on organics-grad's fused static engine (the preset);
//! - `static_step_tape`: the same step recorded on tapes (`StaticPath::Tape`);
//! - `static_step_late`: the same step from a late-training state — the weights of the
//!   always-black border pixels and their Adam moments subnormal, as weight decay leaves them
//!   after a few epochs — with the trainer's flush-to-zero mode (organics-ftz);
//! - `static_step_late_gradual`: the same late step with the trainer's workers switched to
//!   gradual underflow, i.e. what the flush mode saves on this CPU;
//! - `static_gemm_roofline`: the GEMMs of that step alone (same shapes, same per-thread split
//!   as the fused engine's, same transposes), i.e. the ceiling the step's GFLOP/s is measured
//!   against;
//! - `static_gemm_placed`: the same GEMMs placed in memory as the engine places them: each
//!   layer's own weights, shared by the threads, each layer's output the next one's input,
//!   and the weight gradients reading rows the other thread wrote. Slower than the roofline,
//!   whose operands stay in each thread's cache;
//! - `static_gemm_placed_adam`: those GEMMs, then Adam's update (the trainer's settings) of
//!   the weights they read from the weight gradients they wrote, on the same threads, as the
//!   step runs them: the step's GEMMs and its optimiser with nothing else, the tightest floor
//!   of the step, which `cargo xtask bench` sets beside the 85 % target;
//! - `static_adam`: Adam's update of the same parameters alone, on the trainer's threads, at
//!   its fastest (warm threads and caches, the fastest of three consecutive updates): a pass
//!   any implementation of this training makes besides its GEMMs. Its `gbps` counts the
//!   bytes it reads and writes (parameters, gradient and both moments read; parameters and
//!   moments written: 28 bytes a parameter). `cargo xtask bench` sets it beside the roofline;
//! - `two_layer_step`: the two-layer static model (120 → 60 units, learned `W_r`, 10
//!   iterations of the fixed-point algorithm, its systems solved by sweeps: the preset);
//! - `two_layer_step_lu`: the same step with the systems factorised (the solver of the runs
//!   before the sweeps);
//! - `two_layer_step_trained`, `two_layer_step_trained_lu` (with `--two-layer-weights DIR`):
//!   both from a trained model's weights, where the second layer's sweeps converge slower;
//! - `lstm_step_2t`: the LSTM baseline on sequential MNIST (n = 128, T = 784, batch 256,
//!   2 threads), on organics-grad's recurrent BPTT engine (as `organics train` runs it);
//! - `tanh_rnn_step_2t`: the tanh-RNN baseline, same settings.
//!
//! After the static lines, a `# static_step_early phases` line splits a few more early steps
//! into their phases (organics-train's `trainer::phases`): the chunks' passes, the gradient
//! sum, the norm, the optimiser, and per chunk the parameter copies, forward and backward.
//!
//! Lines measured together are interleaved repetition by repetition, each timed right after
//! an untimed run of its own, as a training step follows a step of the same trainer.
//!
//! Images are synthetic (uniform pixels inside a 20 × 20 centre, black 4-pixel border, like
//! MNIST's), so the bench needs no data files. GFLOP/s counts the dense products as
//! executed: every affine layer `6 · B · in · out` (forward, and input and weight gradients;
//! `4 · B · in · out` for the first, whose input is the image),
//! each per-sample LU `⅔ n³` with its solves `2 n²` forward and `2 n²` backward (for both
//! two-layer lines: the nominal work of the solves, which the sweeps do with fewer flops), and for the
//! recurrent baselines the GEMMs of [`organics_grad::recurrent::train_step_flops`] (per time
//! step `6 · B · (D + n) · Gn`, `G` = 4 gates for the LSTM, 1 for the tanh RNN).
//!
//! Usage: `cargo run --release -p organics-train --example bench_models [-- --quick]
//! [--only NAME] [--reps N] [--two-layer-weights DIR]` (`--only` runs the groups whose name
//! starts with NAME or that contain the line NAME; `--reps` overrides the repetition count, e.g.
//! for profiling; `--two-layer-weights` adds the two-layer steps from a
//! checkpoint's weights, e.g. `models/mnist-organics-2layer`).

use organics_data::{Batch, Batcher, Dataset, Order};
use organics_ftz::Mode;
use organics_grad::ParamSet;
use organics_grad::bptt::Checkpointing;
use organics_grad::optim::Optimizer;
use organics_grad::recurrent::train_step_flops;
use organics_grad::{RecurrentCell, RecurrentSpec};
use organics_train::checkpoint;
use organics_train::model::autoencoder::HIDDEN;
use organics_train::trainer::{PhaseTiming, StepTimes, Trainer};
use organics_train::{FixedPointSolver, ModelKind, StaticPath, Task, TrainConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const SIDE: usize = 28;
const BORDER: usize = 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
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

fn is_border(pixel: usize) -> bool {
    let (r, c) = (pixel / SIDE, pixel % SIDE);
    r < BORDER || c < BORDER || r >= SIDE - BORDER || c >= SIDE - BORDER
}

/// `count` images, pixels uniform in [0, 1) inside the border and 0 on it.
fn images(count: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(count * SIDE * SIDE);
    for _ in 0..count {
        for p in 0..SIDE * SIDE {
            pixels.push(if is_border(p) {
                0.0
            } else {
                rng.random::<f32>()
            });
        }
    }
    let labels = (0..count).map(|i| (i % 10) as u8).collect();
    Dataset::from_pixels(pixels, labels, SIDE, SIDE, 10)
}

fn trainer_and_batch(cfg: &TrainConfig) -> (Trainer, Batch) {
    let data = images(cfg.batch_size, 1);
    let shape = cfg.view.shape(SIDE, SIDE).expect("view");
    let trainer = Trainer::new(cfg, shape.steps, shape.input_dim).expect("trainer");
    let batch = Batcher::new(&data, cfg.view, cfg.batch_size, Order::InOrder)
        .expect("batcher")
        .epoch(0)
        .next_batch()
        .expect("one batch")
        .clone();
    (trainer, batch)
}

/// A late-training state: the border pixels' weights of the first encoder layer, and their
/// Adam moments, subnormal (`2⁻¹²⁶ / 8`, alternating in sign).
fn make_late(trainer: &mut Trainer) {
    let tiny = f32::MIN_POSITIVE / 8.0;
    let index = trainer
        .net
        .params
        .trainable()
        .tensors()
        .iter()
        .position(|t| t.name == "autoencoder.encoder.0.weight")
        .expect("the encoder's first weight");
    let plant = |set: &mut organics_grad::ParamSet<f32>| {
        let t = &mut set.tensors_mut()[index];
        let cols = t.data.len() / HIDDEN[0];
        for (k, x) in t.data.iter_mut().enumerate() {
            if is_border(k % cols) {
                *x = if k % 2 == 0 { tiny } else { -tiny };
            }
        }
    };
    plant(trainer.net.params.trainable_mut());
    if let Optimizer::Adam { m, v, .. } = &mut trainer.optimizer {
        plant(m);
        plant(v);
    }
}

/// The affine layers of a static step, as `(inputs, outputs, count, input_gradient)`: the
/// autoencoder's six layers (the first one's input is the image, which needs no gradient);
/// per ORGaNICs layer `m → n`, `W_zx` and `W_bx` (`m → n`, twice) and `W` (`n → n`) once for
/// the closed form of the one-layer model or `1 + K` times for the two-layer model's `K`
/// iterations (`W c²`, then `W (y² a)` per iteration), plus `W_r c` there; and the read-out.
fn affines(cfg: &TrainConfig) -> Vec<(usize, usize, usize, bool)> {
    let [h1, h2] = HIDDEN;
    let (pixels, code) = (SIDE * SIDE, cfg.code_dim);
    let mut list = vec![
        (pixels, h1, 1, false),
        (h1, h2, 1, true),
        (h2, code, 1, true),
        (code, h2, 1, true),
        (h2, h1, 1, true),
        (h1, pixels, 1, true),
    ];
    let two = cfg.model == ModelKind::Organics2Layer;
    let mut layers = vec![(code, cfg.hidden)];
    if two {
        layers.push((cfg.hidden, cfg.hidden2));
    }
    let iterations = if two { cfg.fixed_point_iterations } else { 0 };
    for &(m, n) in &layers {
        list.push((m, n, 2, true));
        list.push((n, n, 1 + iterations + usize::from(two), true));
    }
    list.push((layers.last().expect("a layer").1, 10, 1, true));
    list
}

/// Dense FLOPs of one static step (see the module docs): `6 · B · in · out` per affine layer
/// (`4 ·` without the input gradient) and, for the two-layer model, each sample's LU and
/// solves per iteration.
fn static_flops(cfg: &TrainConfig) -> f64 {
    let b = cfg.batch_size as f64;
    let mut f: f64 = affines(cfg)
        .iter()
        .map(|&(i, o, count, input_gradient)| {
            let per = if input_gradient { 6.0 } else { 4.0 };
            per * b * i as f64 * o as f64 * count as f64
        })
        .sum();
    if cfg.model == ModelKind::Organics2Layer {
        let iterations = cfg.fixed_point_iterations as f64;
        for n in [cfg.hidden as f64, cfg.hidden2 as f64] {
            f += b * iterations * (2.0 / 3.0 * n * n * n + 4.0 * n * n);
        }
    }
    f
}

/// The one-layer static step's GEMMs alone, as organics-grad's fused engine runs them
/// (`organics_grad::static_net`): the batch split into one block of rows per thread, and per
/// affine layer `in → out` with `W` stored `out x in`: each thread's forward `X Wᵀ` and input
/// gradient `Ȳ W` on its rows (skipped for the image), and its share of the output units'
/// weight gradient `Ȳ[:, o]ᵀ X` over the whole batch. Each thread reads whole-batch buffers
/// of its own, so no cache line moves between cores: if anything, a ceiling that errs high.
struct StaticGemms {
    affines: Vec<(usize, usize, usize, bool)>,
    batch: usize,
    rows: Vec<usize>,
    /// Per thread: whole-batch activation and output buffers, weight and weight-gradient
    /// buffers, each large enough for every layer.
    buffers: Vec<[Vec<f32>; 4]>,
    pool: rayon::ThreadPool,
}

impl StaticGemms {
    fn new(cfg: &TrainConfig) -> Self {
        let affines = affines(cfg);
        let (b, threads) = (cfg.batch_size, cfg.threads);
        let rows: Vec<usize> = even_ranges(b, threads)
            .iter()
            .map(|&(r0, r1)| r1 - r0)
            .collect();
        let widest = affines
            .iter()
            .map(|&(i, o, ..)| i.max(o))
            .max()
            .unwrap_or(1);
        let fill = |len: usize| (0..len).map(|k| ((k % 7) as f32 - 3.0) * 0.01).collect();
        let buffers = rows
            .iter()
            .map(|_| {
                [
                    fill(b * widest),
                    fill(b * widest),
                    fill(widest * widest),
                    fill(widest * widest),
                ]
            })
            .collect();
        let pool = ftz_pool(threads);
        StaticGemms {
            affines,
            batch: b,
            rows,
            buffers,
            pool,
        }
    }

    fn run(&mut self) {
        use organics_grad::linalg::{Beta, Trans, View, ViewMut, gemm};
        use rayon::prelude::*;
        let (affines, rows, buffers, b) =
            (&self.affines, &self.rows, &mut self.buffers, self.batch);
        let threads = rows.len();
        self.pool.install(|| {
            buffers
                .par_iter_mut()
                .zip(rows.par_iter())
                .enumerate()
                .for_each(|(t, ([x, y, w, gw], &r))| {
                    for &(i, o, count, input_gradient) in affines {
                        let (o0, o1) = (t * o / threads, (t + 1) * o / threads);
                        for _ in 0..count {
                            let (w, gw) = (&w[..o * i], &mut gw[..o * i]);
                            gemm(
                                ViewMut::new(&mut y[..r * o], r, o),
                                Beta::Overwrite,
                                View::new(&x[..r * i], r, i),
                                Trans::No,
                                View::new(w, o, i),
                                Trans::Yes,
                            );
                            if o1 > o0 {
                                gemm(
                                    ViewMut::new(&mut gw[..(o1 - o0) * i], o1 - o0, i),
                                    Beta::Overwrite,
                                    View::strided(&y[o0..b * o], b, o1 - o0, o),
                                    Trans::Yes,
                                    View::new(&x[..b * i], b, i),
                                    Trans::No,
                                );
                            }
                            if input_gradient {
                                gemm(
                                    ViewMut::new(&mut x[..r * i], r, i),
                                    Beta::Overwrite,
                                    View::new(&y[..r * o], r, o),
                                    Trans::No,
                                    View::new(w, o, i),
                                    Trans::No,
                                );
                            }
                        }
                    }
                });
        });
    }
}

/// The same GEMMs as [`StaticGemms`], placed in memory as the fused engine places them
/// (`static_gemm_placed`): every affine layer reads its own weights, shared by the threads,
/// and writes its own whole-batch activation and cotangent buffers, each layer's input being
/// the previous one's output. A first parallel region runs, on each thread's rows, the
/// forward products in layer order, then the input cotangents top down; a second, on each
/// thread's share of every layer's output units, the weight gradients over the whole batch,
/// reading rows the other thread wrote. The GEMMs, their shapes and their split are the
/// roofline's; what differs is only where the operands come from. `static_gemm_placed_adam`
/// follows them with Adam's update of those weights, which the next run's GEMMs then read
/// from lines the other core wrote, as in training. Biases, activations, losses and the
/// body's element-wise work are left out, so both are floors.
struct PlacedGemms {
    /// Per GEMM layer: `(inputs, outputs, input buffer, input_gradient)`; the input buffer
    /// is `None` for the image, else the index of an earlier layer's output.
    layers: Vec<(usize, usize, Option<usize>, bool)>,
    batch: usize,
    threads: usize,
    image: Vec<f32>,
    acts: Vec<Vec<f32>>,
    g_acts: Vec<Vec<f32>>,
    /// One tensor per layer, in layer order.
    weights: ParamSet<f32>,
    weight_grads: ParamSet<f32>,
    /// Adam with the trainer's settings, for `static_gemm_placed_adam`.
    adam: Optimizer<f32>,
    pool: rayon::ThreadPool,
}

impl PlacedGemms {
    fn new(cfg: &TrainConfig, trainer: &Trainer) -> Self {
        let (b, threads) = (cfg.batch_size, cfg.threads);
        let fill =
            |len: usize| -> Vec<f32> { (0..len).map(|k| ((k % 7) as f32 - 3.0) * 0.01).collect() };
        // Each layer reads the latest earlier output of its input width (the image first).
        let mut layers: Vec<(usize, usize, Option<usize>, bool)> = Vec::new();
        for (i, o, count, input_gradient) in affines(cfg) {
            for _ in 0..count {
                let input = layers.iter().rposition(|&(_, out, ..)| out == i);
                layers.push((i, o, input, input_gradient));
            }
        }
        let per_layer = |size: &dyn Fn(usize, usize) -> usize| -> Vec<Vec<f32>> {
            layers.iter().map(|&(i, o, ..)| fill(size(i, o))).collect()
        };
        let mut weights = ParamSet::new();
        for (l, (data, &(i, o, ..))) in per_layer(&|i, o| o * i)
            .into_iter()
            .zip(&layers)
            .enumerate()
        {
            weights.push(&format!("layer{l}"), o, i, data);
        }
        let weight_grads = weights.zeros_like();
        let Optimizer::Adam { config, .. } = &trainer.optimizer else {
            panic!("the static model trains with Adam");
        };
        Self {
            image: fill(b * SIDE * SIDE),
            acts: per_layer(&|_, o| b * o),
            g_acts: per_layer(&|_, o| b * o),
            adam: Optimizer::adam(*config, &weights),
            weights,
            weight_grads,
            layers,
            batch: b,
            threads,
            pool: ftz_pool(threads),
        }
    }

    /// The GEMMs, then with `then_adam` Adam's update of the weights they read from the
    /// weight gradients they wrote (`lr`), on the same pool.
    fn run(&mut self, then_adam: bool, lr: f64) {
        use organics_grad::linalg::{Beta, Trans, View, ViewMut, gemm};
        use rayon::prelude::*;
        let (b, threads) = (self.batch, self.threads);
        let ranges = even_ranges(b, threads);
        let Self {
            layers,
            image,
            acts,
            g_acts,
            weights,
            weight_grads,
            adam,
            pool,
            ..
        } = self;
        pool.install(|| {
            // First region: forward and input cotangents on each thread's rows. The threads
            // write disjoint rows of the shared buffers: each gets its rows of every buffer.
            let outputs: Vec<usize> = layers.iter().map(|&(_, o, ..)| o).collect();
            let acts_rows = rows_per_thread(acts, &outputs, &ranges);
            let g_rows = rows_per_thread(g_acts, &outputs, &ranges);
            let (w_all, image) = (weights.tensors(), &*image);
            acts_rows
                .into_par_iter()
                .zip(g_rows)
                .zip(ranges.par_iter())
                .for_each(|((mut acts, mut g_acts), &(r0, r1))| {
                    let r = r1 - r0;
                    for (l, &(i, o, input, _)) in layers.iter().enumerate() {
                        let (before, here) = acts.split_at_mut(l);
                        let x: &[f32] = match input {
                            None => &image[r0 * i..r1 * i],
                            Some(k) => &before[k][..],
                        };
                        gemm(
                            ViewMut::new(&mut here[0][..], r, o),
                            Beta::Overwrite,
                            View::new(x, r, i),
                            Trans::No,
                            View::new(&w_all[l].data, o, i),
                            Trans::Yes,
                        );
                    }
                    // Each input cotangent goes to the buffer of the layer that made the input,
                    // added to what a later layer (one sharing the input) put there.
                    let mut formed = vec![false; layers.len()];
                    for (l, &(i, o, input, input_gradient)) in layers.iter().enumerate().rev() {
                        let (Some(k), true) = (input, input_gradient) else {
                            continue;
                        };
                        let (before, here) = g_acts.split_at_mut(l);
                        let beta = if formed[k] {
                            Beta::Accumulate
                        } else {
                            Beta::Overwrite
                        };
                        formed[k] = true;
                        gemm(
                            ViewMut::new(&mut before[k][..], r, i),
                            beta,
                            View::new(&here[0][..], r, o),
                            Trans::No,
                            View::new(&w_all[l].data, o, i),
                            Trans::No,
                        );
                    }
                });
            // Second region: each thread's share of every layer's output units.
            let mut shares: Vec<Vec<(usize, usize, &mut [f32])>> =
                (0..threads).map(|_| Vec::new()).collect();
            for (l, (gw, &(i, o, ..))) in weight_grads
                .tensors_mut()
                .iter_mut()
                .zip(layers.iter())
                .enumerate()
            {
                let units = even_ranges(o, threads);
                for (share, (mine, &(u0, _))) in shares
                    .iter_mut()
                    .zip(cut_rows(&mut gw.data, i, &units).zip(&units))
                {
                    share.push((l, u0, mine));
                }
            }
            let (acts, g_acts) = (&*acts, &*g_acts);
            shares.into_par_iter().for_each(|share| {
                for (l, u0, gw) in share {
                    let (i, o, input, _) = layers[l];
                    let un = gw.len() / i;
                    if un == 0 {
                        continue;
                    }
                    let x: &[f32] = match input {
                        None => image,
                        Some(k) => &acts[k],
                    };
                    gemm(
                        ViewMut::new(gw, un, i),
                        Beta::Overwrite,
                        View::strided(&g_acts[l][u0..], b, un, o),
                        Trans::Yes,
                        View::new(x, b, i),
                        Trans::No,
                    );
                }
            });
            if then_adam {
                adam.step(weights, weight_grads, lr).expect("adam");
            }
        });
    }
}

/// `parts` even ranges `[start, end)` of `0..n`, as organics-grad's engines split a batch.
fn even_ranges(n: usize, parts: usize) -> Vec<(usize, usize)> {
    (0..parts)
        .map(|k| (k * n / parts, (k + 1) * n / parts))
        .collect()
}

/// `buf` (`width` entries a row) cut at the consecutive row ranges `ranges`.
fn cut_rows<'a>(
    buf: &'a mut [f32],
    width: usize,
    ranges: &[(usize, usize)],
) -> impl Iterator<Item = &'a mut [f32]> {
    let mut rest = buf;
    ranges.iter().map(move |&(r0, r1)| {
        let (part, tail) = std::mem::take(&mut rest).split_at_mut((r1 - r0) * width);
        rest = tail;
        part
    })
}

/// Each buffer (`width` entries a row) cut into the row ranges `ranges`, gathered per range.
fn rows_per_thread<'a>(
    buffers: &'a mut [Vec<f32>],
    widths: &[usize],
    ranges: &[(usize, usize)],
) -> Vec<Vec<&'a mut [f32]>> {
    let mut per_range: Vec<Vec<&mut [f32]>> = ranges.iter().map(|_| Vec::new()).collect();
    for (buf, &w) in buffers.iter_mut().zip(widths) {
        for (mine, part) in per_range.iter_mut().zip(cut_rows(buf, w, ranges)) {
            mine.push(part);
        }
    }
    per_range
}

/// Adam's update of a static trainer's parameters alone (`static_adam`), on a pool of the
/// trainer's size with flush-to-zero, as the trainer runs it.
struct AdamAlone {
    params: organics_grad::ParamSet<f32>,
    grads: organics_grad::ParamSet<f32>,
    optimizer: Optimizer<f32>,
    pool: rayon::ThreadPool,
}

impl AdamAlone {
    fn new(trainer: &Trainer) -> Self {
        let params = trainer.net.params.trainable().clone();
        let mut grads = params.zeros_like();
        // A gradient of training's size: small values of both signs, none zero.
        for t in grads.tensors_mut() {
            for (k, x) in t.data.iter_mut().enumerate() {
                *x = 1e-3 * ((k % 7) as f32 - 3.5);
            }
        }
        let pool = ftz_pool(trainer.config.threads);
        Self {
            params,
            grads,
            optimizer: trainer.optimizer.clone(),
            pool,
        }
    }

    /// Adam's update at its fastest, as a floor (seconds): on the pool, one untimed update
    /// (it wakes every worker and brings the parameters, gradient and moments into the cache,
    /// as the step's earlier passes do before the trainer's update), then the fastest of
    /// three consecutive ones. A floor that overstated Adam's cost would overstate how far
    /// the step is from its ceiling, so each choice here errs low (docs/performance.md,
    /// "Intel Xeon: every target, and the floors beside the rooflines").
    fn run(&mut self, lr: f64) -> f64 {
        let Self {
            params,
            grads,
            optimizer,
            pool,
        } = self;
        pool.install(|| {
            optimizer.step(params, grads, lr).expect("adam");
            (0..3)
                .map(|_| {
                    let start = Instant::now();
                    optimizer.step(params, grads, lr).expect("adam");
                    start.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min)
        })
    }

    /// Bytes read and written by one update: four tensors read, three written.
    fn bytes(&self) -> f64 {
        let values: usize = self.params.tensors().iter().map(|t| t.data.len()).sum();
        7.0 * 4.0 * values as f64
    }
}

/// A `# NAME phases` line: a timed step's phases, in milliseconds per step
/// (organics-train's `trainer::phases`).
fn print_phases(name: &str, t: &StepTimes) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "# {name} phases (ms per step): step {:.3} = passes {:.3} + gradient sum {:.3} + norm \
         {:.3} + optimizer {:.3} + other {:.3}; per chunk, summed over chunks (CPU): parameter \
         copies {:.3}, forward {:.3}, backward {:.3}",
        ms(t.step),
        ms(t.passes),
        ms(t.gradient_sum),
        ms(t.norm),
        ms(t.optimizer),
        ms(t.other()),
        ms(t.chunk_copy),
        ms(t.chunk_forward),
        ms(t.chunk_backward),
    );
}

/// A pool of `threads` workers computing with flush-to-zero on, as the trainer's.
fn ftz_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| {
            organics_ftz::enable();
        })
        .build()
        .expect("thread pool")
}

fn line(name: &str, seconds: f64, flops: f64) {
    println!(
        "{name}: median_s={seconds:.6} gflops={:.3}",
        flops / seconds / 1e9
    );
}

/// Median seconds of the two-layer step with sweeps and with LU (`[sweeps, lu]`), `reps`
/// interleaved repetitions after one warm-up, from the initialisation or from the model
/// weights of the checkpoint (or run directory) `weights`.
fn two_layer_times(
    cfg: &TrainConfig,
    weights: Option<&std::path::Path>,
    reps: usize,
    lr: f64,
) -> [f64; 2] {
    let mut lu = cfg.clone();
    lu.fixed_point_solver = FixedPointSolver::Lu;
    let (mut sweeps, batch) = trainer_and_batch(cfg);
    let (mut factorised, _) = trainer_and_batch(&lu);
    if let Some(path) = weights {
        let dir = checkpoint::resolve(path, "best").expect("a checkpoint");
        let state = checkpoint::read_state(&dir).expect("its state");
        for t in [&mut sweeps, &mut factorised] {
            checkpoint::load_model(&dir, &state, &mut t.net.params).expect("its weights");
        }
    }
    let mut times = [vec![], vec![]];
    for r in 0..=reps {
        for (t, trainer) in times.iter_mut().zip([&mut sweeps, &mut factorised]) {
            let s = second_of_two(|| {
                let start = Instant::now();
                trainer.step(&batch, lr).expect("step");
                start.elapsed().as_secs_f64()
            });
            if r > 0 {
                t.push(s);
            }
        }
    }
    times.map(median)
}

/// Runs `f` twice and returns what the second run measured (its timed part, in seconds).
///
/// Interleaved lines time each step right after an untimed step of the same line, as in
/// training (and in PyTorch's reference), where a step follows a step of the same trainer.
/// Timed straight after the other lines, a step would start with its parameters, moments and
/// tapes evicted from the L3 by their buffers: about 11 % slower for the static step, 15 %
/// for its roofline (docs/performance.md, "Static step: each timed step after a step of its
/// own").
fn second_of_two(mut f: impl FnMut() -> f64) -> f64 {
    f();
    f()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
    // A group runs when NAME is a prefix of it or names one of its lines
    // (`--only static_step_early` runs the static group, whose lines are measured together).
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|o| name.starts_with(o) || o.starts_with(name))
    };
    let reps_arg: Option<usize> = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1)?.parse().ok());
    // The static steps take milliseconds, so they get more repetitions: a median of 9 moved
    // by 10-20 % between runs with this machine's noise, enough to flip the ratio to PyTorch
    // across its 2x target.
    let static_reps = reps_arg.unwrap_or(if quick { 3 } else { 50 });
    let lr = 1e-3;
    let two_layer_weights = args
        .iter()
        .position(|a| a == "--two-layer-weights")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);

    if wanted("static_step") {
        let one = TrainConfig::preset(Task::Mnist, ModelKind::Organics);
        let (mut early, batch) = trainer_and_batch(&one);
        let (mut late, _) = trainer_and_batch(&one);
        let mut on_tapes = one.clone();
        on_tapes.static_path = StaticPath::Tape;
        let (mut tape, _) = trainer_and_batch(&on_tapes);
        let flops = static_flops(&one);
        // Interleaved repetitions, so that load from other work falls on all six alike, each
        // timed after an untimed run of its own (`second_of_two`); the first round is a warm-up.
        let mut gemms = StaticGemms::new(&one);
        let mut adam = AdamAlone::new(&early);
        let mut placed = PlacedGemms::new(&one, &early);
        let mut times = [
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        for r in 0..=static_reps {
            for (k, t) in times.iter_mut().enumerate() {
                let s = if k >= 6 {
                    // The same GEMMs on the engine's own buffers, then (7) Adam's update.
                    second_of_two(|| {
                        let start = Instant::now();
                        placed.run(k == 7, lr);
                        start.elapsed().as_secs_f64()
                    })
                } else if k == 5 {
                    // The same early step recorded on tapes (`StaticPath::Tape`).
                    second_of_two(|| {
                        let start = Instant::now();
                        tape.step(&batch, lr).expect("step");
                        start.elapsed().as_secs_f64()
                    })
                } else if k == 4 {
                    adam.run(lr) // warmed inside, see `AdamAlone::run`
                } else if k == 3 {
                    // The same step's GEMMs alone, on the trainer's threads: its ceiling.
                    second_of_two(|| {
                        let start = Instant::now();
                        gemms.run();
                        start.elapsed().as_secs_f64()
                    })
                } else {
                    let trainer = if k == 0 { &mut early } else { &mut late };
                    let mode = if k == 2 {
                        Mode::Gradual
                    } else {
                        Mode::FlushToZero
                    };
                    trainer.set_float_mode(mode);
                    second_of_two(|| {
                        if k > 0 {
                            make_late(trainer); // each late step starts from the same late state
                        }
                        let start = Instant::now();
                        trainer.step(&batch, lr).expect("step");
                        start.elapsed().as_secs_f64()
                    })
                };
                if r > 0 {
                    t.push(s);
                }
            }
        }
        late.set_float_mode(Mode::FlushToZero);
        let [e, l, g, roof, a, tp, pl, pa] = times.map(median);
        line("static_step_early", e, flops);
        line("static_step_tape", tp, flops);
        line("static_step_late", l, flops);
        line("static_step_late_gradual", g, flops);
        line("static_gemm_roofline", roof, flops);
        line("static_gemm_placed", pl, flops);
        line("static_gemm_placed_adam", pa, flops);
        println!(
            "static_adam: median_s={a:.6} gbps={:.3}",
            adam.bytes() / a / 1e9
        );
        // Where the early step's time goes: a few more steps with the phases timed (the
        // medians above ran with the timing off).
        early.set_phase_timing(PhaseTiming::On);
        for _ in 0..static_reps.min(20) {
            early.step(&batch, lr).expect("step");
        }
        print_phases("static_step_early", &early.take_phase_times().per_step());
        early.set_phase_timing(PhaseTiming::Off);
    }
    if wanted("two_layer_step") {
        // The preset (sweeps) and the same model with factorised solves, interleaved: from the
        // initialisation, then (with `--two-layer-weights`) from a trained model's weights.
        let cfg = TrainConfig::preset(Task::Mnist, ModelKind::Organics2Layer);
        let reps = reps_arg.unwrap_or(if quick { 3 } else { 15 });
        let starts = [("", None), ("_trained", two_layer_weights.as_deref())];
        for (suffix, weights) in starts {
            if suffix == "_trained" && weights.is_none() {
                continue;
            }
            let [s, l] = two_layer_times(&cfg, weights, reps, lr);
            line(&format!("two_layer_step{suffix}"), s, static_flops(&cfg));
            line(&format!("two_layer_step{suffix}_lu"), l, static_flops(&cfg));
        }
    }
    for (name, model) in [
        ("lstm_step_2t", ModelKind::Lstm),
        ("tanh_rnn_step_2t", ModelKind::Rnn),
    ] {
        if !wanted(name) {
            continue;
        }
        let cfg = TrainConfig::preset(Task::Smnist, model);
        let (mut t, batch) = trainer_and_batch(&cfg);
        let spec = RecurrentSpec {
            cell: match model {
                ModelKind::Lstm => RecurrentCell::Lstm,
                _ => RecurrentCell::Tanh,
            },
            hidden: cfg.hidden,
            input: batch.input_dim(),
            classes: 10,
        };
        let rows: Vec<usize> = (0..cfg.threads)
            .map(|k| (k + 1) * cfg.batch_size / cfg.threads - k * cfg.batch_size / cfg.threads)
            .collect();
        let flops = train_step_flops(&spec, batch.steps(), &rows, Checkpointing::None);
        let s = time(reps_arg.unwrap_or(if quick { 1 } else { 3 }), || {
            t.step(&batch, 1e-2).expect("step");
        });
        line(name, s, flops);
    }
}
