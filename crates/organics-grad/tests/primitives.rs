//! Finite-difference checks (f64) of every primitive operation's VJP.

mod common;

use common::{FD_TOL, Input, away_from_zero, input, max_grad_error, uniform};
use organics_grad::linalg::Trans;
use organics_grad::spectral_norm::SpectralNorm;
use organics_grad::tape::{Binary, Unary};
use organics_grad::{Tape, Var};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// How a test builds `y = (I − W + diag(d) W)⁻¹ c` on the tape.
#[derive(Clone, Copy)]
enum SolveRoute {
    /// The fused node, `Tape::diag_gain_solve`.
    Fused,
    /// The per-sample systems, then `Tape::batched_solve`.
    Composed,
}

/// `y` by `route`, then the gradients of `Σ y²` with respect to `d`, `W` and `c`, concatenated
/// after `y`'s values.
fn solution_and_gradients(d: &Input, w: &Input, rhs: &Input, route: SolveRoute) -> Vec<f64> {
    let mut t = Tape::<f64>::new();
    let v: Vec<Var> = [d, w, rhs]
        .iter()
        .map(|x| t.param(x.rows, x.cols, &x.data))
        .collect();
    let y = match route {
        SolveRoute::Fused => t.diag_gain_solve(v[0], v[1], v[2]).unwrap(),
        SolveRoute::Composed => {
            let m = t.diag_gain_system(v[0], v[1]);
            t.batched_solve(m, v[2]).unwrap()
        }
    };
    let y2 = t.square(y);
    let loss = t.sum(y2);
    t.backward(loss).unwrap();
    let mut out = t.value(y).to_vec();
    for &x in &v {
        out.extend_from_slice(t.grad(x));
    }
    out
}

fn check(
    inputs: &[Input],
    build: &dyn Fn(&mut Tape<f64>, &[Var]) -> Var,
) -> Result<(), TestCaseError> {
    let e = max_grad_error(inputs, build);
    prop_assert!(e < FD_TOL, "max scaled gradient error {e:e}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn matmul_all_transposes(seed in any::<u64>(), m in 1usize..4, k in 1usize..4, n in 1usize..4, ta in any::<bool>(), tb in any::<bool>()) {
        let mut r = rng(seed);
        let ta = if ta { Trans::Yes } else { Trans::No };
        let tb = if tb { Trans::Yes } else { Trans::No };
        let a = if ta == Trans::No { input(m, k, uniform(&mut r, m * k, -1.0, 1.0)) } else { input(k, m, uniform(&mut r, m * k, -1.0, 1.0)) };
        let b = if tb == Trans::No { input(k, n, uniform(&mut r, k * n, -1.0, 1.0)) } else { input(n, k, uniform(&mut r, k * n, -1.0, 1.0)) };
        check(&[a, b], &|t, v| t.matmul(v[0], ta, v[1], tb))?;
    }

    #[test]
    fn matmul_of_a_matrix_with_itself(seed in any::<u64>(), m in 1usize..4, k in 1usize..4) {
        let mut r = rng(seed);
        let a = input(m, k, uniform(&mut r, m * k, -1.0, 1.0));
        check(&[a], &|t, v| t.matmul(v[0], Trans::No, v[0], Trans::Yes))?;
    }

    #[test]
    fn binary_with_broadcasting(seed in any::<u64>(), rows in 1usize..4, cols in 1usize..4, shape in 0usize..4, op in 0usize..4) {
        let mut r = rng(seed);
        let a = input(rows, cols, away_from_zero(&mut r, rows * cols, 0.5, 1.0));
        let (br, bc) = [(rows, cols), (1, cols), (rows, 1), (1, 1)][shape];
        let b = input(br, bc, away_from_zero(&mut r, br * bc, 0.5, 1.0));
        let f = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div][op];
        check(&[a.clone(), b.clone()], &|t, v| t.binary(f, v[0], v[1]))?;
        // Broadcast operand on the left as well.
        check(&[b, a], &|t, v| t.binary(f, v[0], v[1]))?;
    }

    #[test]
    fn unary_functions(seed in any::<u64>(), rows in 1usize..4, cols in 1usize..4, op in 0usize..10) {
        let mut r = rng(seed);
        // Away from the kinks at 0 (relu, sqrt) and from the clamp bounds -0.4 / 0.45 (the
        // magnitudes below avoid them by > 1e-3).
        let mut data = away_from_zero(&mut r, rows * cols, 0.05, 1.0);
        for x in &mut data {
            if (*x + 0.4).abs() < 1e-3 || (*x - 0.45).abs() < 1e-3 {
                *x += 0.01;
            }
        }
        let f = [
            Unary::Relu, Unary::Sigmoid, Unary::Tanh, Unary::Exp, Unary::Square, Unary::Sqrt,
            Unary::Neg, Unary::Scale(1.7), Unary::AddScalar(-0.3), Unary::Clamp(-0.4, 0.45),
        ][op];
        check(&[input(rows, cols, data)], &|t, v| t.unary(f, v[0]))?;
    }

    #[test]
    fn reductions_and_reshapes(seed in any::<u64>(), rows in 1usize..4, cols in 2usize..5) {
        let mut r = rng(seed);
        let a = input(rows, cols, uniform(&mut r, rows * cols, -1.0, 1.0));
        let b = input(rows, 2, uniform(&mut r, rows * 2, -1.0, 1.0));
        check(std::slice::from_ref(&a), &|t, v| t.sum(v[0]))?;
        check(std::slice::from_ref(&a), &|t, v| t.mean(v[0]))?;
        check(std::slice::from_ref(&a), &|t, v| t.sum_rows(v[0]))?;
        check(std::slice::from_ref(&a), &|t, v| t.slice_cols(v[0], 1, cols - 1))?;
        check(&[a, b], &|t, v| t.concat_cols(v[0], v[1]))?;
    }

    #[test]
    fn row_l2_normalize(seed in any::<u64>(), rows in 1usize..4, cols in 1usize..5) {
        let mut r = rng(seed);
        let a = input(rows, cols, away_from_zero(&mut r, rows * cols, 0.1, 1.0));
        check(&[a], &|t, v| t.row_l2_normalize(v[0], 1e-12))?;
    }

    #[test]
    fn losses(seed in any::<u64>(), rows in 1usize..5, classes in 2usize..5) {
        let mut r = rng(seed);
        let logits = input(rows, classes, uniform(&mut r, rows * classes, -2.0, 2.0));
        let labels: Vec<usize> = (0..rows).map(|i| (seed as usize + i) % classes).collect();
        check(std::slice::from_ref(&logits), &|t, v| t.softmax_cross_entropy(v[0], &labels).unwrap())?;
        let other = input(rows, classes, uniform(&mut r, rows * classes, -2.0, 2.0));
        check(&[logits, other], &|t, v| t.mse(v[0], v[1]))?;
    }

    #[test]
    fn diag_gain_system_and_batched_solve(seed in any::<u64>(), rows in 1usize..20, n in 1usize..12) {
        // Up to 3 groups of 8 interleaved systems (the last one partial) and 2 panels of 8
        // columns in the fused route's factorisation (`organics_grad::lane_lu`).
        let mut r = rng(seed);
        let d = input(rows, n, uniform(&mut r, rows * n, 0.5, 1.5));
        // W with spectral radius < 1, so I − W + diag(d) W stays well conditioned.
        let w = input(n, n, uniform(&mut r, n * n, -0.3 / n as f64, 0.3 / n as f64));
        let rhs = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
        check(&[d.clone(), w.clone()], &|t, v| t.diag_gain_system(v[0], v[1]))?;
        check(&[d.clone(), w.clone(), rhs.clone()], &|t, v| {
            let m = t.diag_gain_system(v[0], v[1]);
            t.batched_solve(m, v[2]).unwrap()
        })?;
        // The fused operation against finite differences ...
        check(&[d.clone(), w.clone(), rhs.clone()], &|t, v| t.diag_gain_solve(v[0], v[1], v[2]).unwrap())?;
        // ... and against the composed route: same solution and same input gradients up to
        // the summation order of the two GEMMs of its VJP (a few ε of O(1) values; 1e-12).
        let run = |route| solution_and_gradients(&d, &w, &rhs, route);
        for (a, b) in run(SolveRoute::Fused).iter().zip(run(SolveRoute::Composed)) {
            prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn spectral_norm_with_frozen_vectors(seed in any::<u64>(), rows in 1usize..5, cols in 1usize..5) {
        let mut r = rng(seed);
        let w = input(rows, cols, uniform(&mut r, rows * cols, -1.0, 1.0));
        // u, v fixed by the unperturbed weight: the VJP treats them as constants, as PyTorch does.
        let sn = SpectralNorm::new(&w.data, rows, cols, seed);
        check(&[w], &|t, v| t.spectral_norm(v[0], &sn))?;
    }
}

/// Systems far from the identity (`d − 1` in `[1, 3]`, `W` dense), so partial pivoting swaps
/// rows, across 3 groups of interleaved systems (the last partial) and 3 panels: the fused
/// route (`lane_lu`, unblocked order) against the composed one (`solve::lu_in_place`, faer
/// GEMM trailing updates), values and all input gradients.
#[test]
fn fused_solve_pivots_like_the_composed_route_across_groups_and_panels() {
    let (rows, n) = (19, 21);
    let mut r = rng(3);
    let d = input(rows, n, uniform(&mut r, rows * n, 2.0, 4.0));
    let s = 1.0 / (n as f64).sqrt();
    let w = input(n, n, uniform(&mut r, n * n, -s, s));
    let rhs = input(rows, n, uniform(&mut r, rows * n, -1.0, 1.0));
    // Pivoting does happen: the first sample's system swaps rows.
    let mut m: Vec<f64> = (0..n * n)
        .map(|e| {
            let (i, j) = (e / n, e % n);
            (d.data[i] - 1.0) * w.data[e] + if i == j { 1.0 } else { 0.0 }
        })
        .collect();
    let mut piv = vec![0; n];
    organics_grad::solve::lu_in_place(&mut m, n, &mut piv, 0).unwrap();
    assert!(piv.iter().enumerate().any(|(k, &p)| p != k));
    let (a, b) = (
        solution_and_gradients(&d, &w, &rhs, SolveRoute::Fused),
        solution_and_gradients(&d, &w, &rhs, SolveRoute::Composed),
    );
    let scale = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (a, b) in a.iter().zip(&b) {
        // Same pivots, different summation orders: differences of rounding amplified by the
        // condition number (random 21 x 21 systems: below about 1e3), so 1e-10 of the largest
        // value is a wide margin over 1e3 · 1e-16, and a wrong pivot or factor would be O(1).
        assert!((a - b).abs() <= 1e-10 * scale, "{a} vs {b}");
    }
}

#[test]
fn backward_rejects_a_non_scalar_loss() {
    let mut t = Tape::<f64>::new();
    let a = t.param(2, 2, &[1.0, 2.0, 3.0, 4.0]);
    assert!(t.backward(a).is_err());
}

#[test]
fn reset_reuses_capacity_without_changing_results() {
    let mut t = Tape::<f64>::new();
    let mut last = None;
    for _ in 0..3 {
        t.reset();
        let a = t.param(2, 3, &[0.1, -0.2, 0.3, 0.4, -0.5, 0.6]);
        let b = t.sigmoid(a);
        let s = t.sum(b);
        t.backward(s).unwrap();
        let g = t.grad(a).to_vec();
        if let Some(prev) = &last {
            assert_eq!(prev, &g);
        }
        last = Some(g);
    }
}

/// `Tape::bias_act` against the two nodes it fuses (`add` of a repeated bias row, then the
/// activation): the same values and the same gradients to the bit, in `f32`, including the
/// accumulation paths (`h` and `b` also used elsewhere in the graph) and relu's kink at 0.
#[test]
fn bias_act_is_bitwise_the_bias_add_then_the_activation() {
    use organics_grad::tape::Activation;
    let (rows, cols) = (7, 19);
    let mut r = rng(21);
    let mut h: Vec<f32> = uniform(&mut r, rows * cols, -2.0, 2.0)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    let b: Vec<f32> = uniform(&mut r, cols, -1.0, 1.0)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    // Entries whose pre-activation is exactly 0 (relu's kink, H(0) = 0) and −0.
    h[3] = -b[3];
    h[cols + 5] = -b[5];
    let weights: Vec<f32> = uniform(&mut r, rows * cols, -1.0, 1.0)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    for act in [Activation::Relu, Activation::Sigmoid] {
        for shared in [false, true] {
            let run = |fused: bool| {
                let mut t = Tape::<f32>::new();
                let hv = t.param(rows, cols, &h);
                let bv = t.param(1, cols, &b);
                let y = if fused {
                    t.bias_act(hv, bv, act)
                } else {
                    let x = t.add(hv, bv);
                    match act {
                        Activation::Relu => t.relu(x),
                        Activation::Sigmoid => t.sigmoid(x),
                    }
                };
                let wv = t.constant(rows, cols, &weights);
                let yw = t.mul(y, wv);
                let mut loss = t.sum(yw);
                if shared {
                    // `h` and `b` also feed other nodes, so their gradients accumulate.
                    let h2 = t.square(hv);
                    let b2 = t.square(bv);
                    let s1 = t.sum(h2);
                    let s2 = t.sum(b2);
                    let s = t.add(s1, s2);
                    loss = t.add(loss, s);
                }
                t.backward(loss).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (bits(t.value(y)), bits(t.grad(hv)), bits(t.grad(bv)))
            };
            assert_eq!(run(true), run(false), "{act:?}, shared {shared}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The VJP of `Tape::bias_act` against central differences (pre-activations kept away
    /// from relu's kink).
    #[test]
    fn bias_act_matches_finite_differences(seed in any::<u64>(), rows in 1usize..5, cols in 1usize..6) {
        use organics_grad::tape::Activation;
        let mut r = rng(seed);
        let h = input(rows, cols, away_from_zero(&mut r, rows * cols, 0.1, 1.0));
        let b = input(1, cols, vec![0.0; cols]);
        check(&[h.clone(), b.clone()], &|t, v| t.bias_act(v[0], v[1], Activation::Relu))?;
        let b = input(1, cols, uniform(&mut r, cols, -1.0, 1.0));
        check(&[h, b], &|t, v| t.bias_act(v[0], v[1], Activation::Sigmoid))?;
    }
}
