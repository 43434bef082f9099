//! Criterion benchmarks of the two-layer static model's solves (`n` = 120 and 60, the two
//! layers' sizes): [`organics_grad::lane_lu::factor`] of one group of `LANES` = 8 systems,
//! compiled for the widest instruction set and for AVX2 (x86-64 only), and the fused
//! [`Tape::diag_gain_solve`] forward and backward for a 128-sample chunk (one thread's share
//! of a 256 batch). Throughput counts the factorisations' `⅔ n³` and the solves' `2 n²`
//! (forward) and `2 n²` (transposed) floating-point operations per system; criterion prints
//! them as "elem/s", i.e. FLOP/s. The same chunk solved by sweeps
//! ([`Tape::diag_gain_sweeps`], from a zero start) is counted with the same nominal
//! operations, so that the two groups' rates compare directly as speeds on one problem
//! (both groups solve the systems of [`chunk`]).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use organics_grad::Tape;
use organics_grad::lane_lu::{self, LANES, Lane};
use organics_grad::sweeps::SweepSettings;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;

/// `LANES` interleaved systems `I + diag(d_l − 1) W` with `d` near 1.5, as the fixed-point
/// layer forms them.
fn systems(n: usize, seed: u64) -> Vec<Lane<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f32> = (0..n * n)
        .map(|_| (rng.random::<f32>() - 0.5) * 2.0 / n as f32)
        .collect();
    let d: Vec<Lane<f32>> = (0..n)
        .map(|_| core::array::from_fn(|_| 1.0 + rng.random::<f32>()))
        .collect();
    let mut a = vec![[0.0; LANES]; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = core::array::from_fn(|l| {
                (d[i][l] - 1.0) * w[i * n + j] + if i == j { 1.0 } else { 0.0 }
            });
        }
    }
    a
}

struct Factor<'a> {
    a: &'a mut [Lane<f32>],
    n: usize,
    piv: &'a mut [[usize; LANES]],
}

impl pulp::WithSimd for Factor<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<A: pulp::Simd>(self, simd: A) {
        lane_lu::factor(simd, self.a, self.n, self.piv, LANES).expect("regular systems");
    }
}

fn factor(c: &mut Criterion) {
    let mut g = c.benchmark_group("lane_lu_factor");
    for n in [60, 120] {
        let a0 = systems(n, 1);
        let mut a = a0.clone();
        let mut piv = vec![[0; LANES]; n];
        g.throughput(Throughput::Elements((LANES * 2 * n * n * n / 3) as u64));
        g.bench_function(format!("n{n}_widest"), |b| {
            b.iter(|| {
                a.copy_from_slice(&a0);
                pulp::Arch::new().dispatch(Factor {
                    a: &mut a,
                    n,
                    piv: &mut piv,
                });
                black_box(&a);
            });
        });
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            g.bench_function(format!("n{n}_avx2"), |b| {
                b.iter(|| {
                    a.copy_from_slice(&a0);
                    pulp::Simd::vectorize(
                        v3,
                        Factor {
                            a: &mut a,
                            n,
                            piv: &mut piv,
                        },
                    );
                    black_box(&a);
                });
            });
        }
    }
    g.finish();
}

/// One thread's chunk of the two-layer model's systems (`batch` samples of size `n`): gains
/// `d − 1` in [−0.5, 0.5] (as `√a − 1` of the trained first layer), `W` scaled to Frobenius
/// norm 1 (so that `‖diag(d − 1) W‖₂ ≤ 0.5`), right-hand sides in [0, 1).
fn chunk(n: usize, batch: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let d: Vec<f32> = (0..batch * n).map(|_| 0.5 + rng.random::<f32>()).collect();
    let mut w: Vec<f32> = (0..n * n).map(|_| rng.random::<f32>() - 0.5).collect();
    let f = w.iter().map(|x| x * x).sum::<f32>().sqrt();
    w.iter_mut().for_each(|x| *x /= f);
    let c: Vec<f32> = (0..batch * n).map(|_| rng.random::<f32>()).collect();
    (d, w, c)
}

/// How [`diag_gain`] solves the chunk.
#[derive(Clone, Copy)]
enum Route {
    /// [`Tape::diag_gain_solve`] (interleaved LU).
    Lu,
    /// [`Tape::diag_gain_sweeps`] from a zero start.
    Sweeps,
}

/// The same chunk solved, forward and backward, by each route: one group per route.
fn diag_gain(c: &mut Criterion) {
    let batch = 128;
    for (group, route) in [
        ("diag_gain_solve", Route::Lu),
        ("diag_gain_sweeps", Route::Sweeps),
    ] {
        let mut g = c.benchmark_group(group);
        for n in [60, 120] {
            let (d, w, cv) = chunk(n, batch);
            let zero = vec![0.0f32; batch * n];
            let settings = SweepSettings::for_scalar::<f32>(n);
            let mut tape = Tape::<f32>::new();
            g.throughput(Throughput::Elements(
                (batch * (2 * n * n * n / 3 + 4 * n * n)) as u64,
            ));
            g.bench_function(format!("n{n}_batch{batch}_forward_backward"), |b| {
                b.iter(|| {
                    tape.reset();
                    let dv = tape.param(batch, n, &d);
                    let wv = tape.param(n, n, &w);
                    let cvar = tape.param(batch, n, &cv);
                    let y = match route {
                        Route::Lu => tape.diag_gain_solve(dv, wv, cvar),
                        Route::Sweeps => {
                            let start = tape.constant(batch, n, &zero);
                            tape.diag_gain_sweeps(dv, wv, cvar, start, settings)
                                .map(|(y, _)| y)
                        }
                    }
                    .expect("regular systems");
                    let loss = tape.sum(y);
                    tape.backward(loss).expect("scalar loss");
                    black_box(tape.grad(wv));
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, factor, diag_gain);
criterion_main!(benches);
