//! The cell forms the input drive `p = x wxᵀ` of a scalar input (`m = 1`, at least two rows)
//! in its element-wise loops as the plain product `x·w` instead of with a `k = 1` GEMM: the
//! two agree bit for bit (including the sign of zero products) on every shape probed here,
//! those of the sMNIST training step included. A single row keeps the GEMM (faer then runs a
//! dot product, which turns `−0` into `+0`), as this test also records.

use organics_grad::linalg::{Beta, Trans, View, ViewMut, gemm};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn check<S: organics_grad::Scalar>(conv: impl Fn(f64) -> S, bits: impl Fn(S) -> u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut shapes: Vec<(usize, usize)> = Vec::new();
    for rows in (1..=40).chain([63, 64, 65, 127, 128, 129, 255, 256, 257, 512]) {
        for n in (1..=48).chain([63, 64, 65, 127, 128, 129, 256]) {
            shapes.push((rows, n));
        }
    }
    for (rows, n) in shapes {
        let mut pick = || -> S {
            conv(match rng.random_range(0..6) {
                0 => 0.0,
                1 => -0.0,
                2 => 1e-30,
                _ => rng.random_range(-2.0..2.0),
            })
        };
        let x: Vec<S> = (0..rows).map(|_| pick()).collect();
        let w: Vec<S> = (0..3 * n).map(|_| pick()).collect();
        let mut p = vec![conv(f64::NAN); rows * 3 * n];
        gemm(
            ViewMut::new(&mut p, rows, 3 * n),
            Beta::Overwrite,
            View::new(&x, rows, 1),
            Trans::No,
            View::new(&w, 3 * n, 1),
            Trans::Yes,
        );
        for b in 0..rows {
            for j in 0..3 * n {
                let want = if rows >= 2 {
                    x[b] * w[j]
                } else {
                    S::ZERO + x[b] * w[j]
                };
                assert_eq!(
                    bits(p[b * 3 * n + j]),
                    bits(want),
                    "rows {rows} n {n} ({b}, {j})"
                );
            }
        }
    }
}

#[test]
fn k1_gemm_is_the_plain_product_f32() {
    check(|v| v as f32, |v: f32| u64::from(v.to_bits()));
}

#[test]
fn k1_gemm_is_the_plain_product_f64() {
    check(|v| v, f64::to_bits);
}
