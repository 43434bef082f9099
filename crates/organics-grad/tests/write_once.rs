//! The tape writes each gradient on its first contribution and adds the later ones, over an
//! arena it never zero-fills and keeps across [`Tape::reset`]. These tests check that this is
//! the textbook accumulation `x̄ = 0 + c₁ + c₂ + …` to the bit (the contributions arrive in
//! reverse recording order), that no stale value of an earlier graph is ever read, and that
//! a value the loss does not reach reads as zeros.

use organics_grad::linalg::Trans;
use organics_grad::{ParamSet, Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

/// `sum(sigmoid(X Wᵀ))`: one use of `W` (a GEMM VJP).
fn branch(t: &mut Tape<f32>, x: Var, w: Var) -> Var {
    let h = t.matmul(x, Trans::No, w, Trans::Yes);
    let s = t.sigmoid(h);
    t.sum(s)
}

#[test]
fn a_leaf_used_twice_gets_its_uses_summed_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (w, b) = (data(&mut rng, 3 * 4), data(&mut rng, 3));
    let (x, y) = (data(&mut rng, 5 * 4), data(&mut rng, 5 * 4));
    // Each use alone, on its own tape (the only contribution: written once).
    let alone = |input: &[f32]| {
        let mut t = Tape::<f32>::new();
        let wv = t.param(3, 4, &w);
        let xv = t.constant(5, 4, input);
        let l = branch(&mut t, xv, wv);
        t.backward(l).unwrap();
        t.grad(wv).to_vec()
    };
    let (first, second) = (alone(&x), alone(&y));
    // Both uses on one tape, plus `b ⊙ b` (the same leaf on both sides of one node).
    let mut t = Tape::<f32>::new();
    let (wv, bv) = (t.param(3, 4, &w), t.param(1, 3, &b));
    let (xv, yv) = (t.constant(5, 4, &x), t.constant(5, 4, &y));
    let l1 = branch(&mut t, xv, wv);
    let l2 = branch(&mut t, yv, wv);
    let bb = t.mul(bv, bv);
    let l3 = t.sum(bb);
    let l12 = t.add(l1, l2);
    let loss = t.add(l12, l3);
    t.backward(loss).unwrap();
    // The reverse pass meets the later use first: `(0 + second) + first`; for `b`, the left
    // side of `b ⊙ b` (`1·b`), then the right one (`1·b`).
    for (k, (&g, (&s, &f))) in t.grad(wv).iter().zip(second.iter().zip(&first)).enumerate() {
        assert_eq!(
            g.to_bits(),
            (s + f).to_bits(),
            "W entry {k}: {g} vs {}",
            s + f
        );
    }
    for k in 0..3 {
        let expected = b[k] + b[k];
        let g = t.grad(bv)[k];
        assert_eq!(
            g.to_bits(),
            expected.to_bits(),
            "b entry {k}: {g} vs {expected}"
        );
    }
}

/// A graph of several operations whose VJPs write first (GEMM, element-wise, repeated row)
/// or add into a zero-filled gradient (sums, slices, concatenation, mean squared error),
/// with a fourth parameter that the loss reaches only if `reach` says so. Returns every
/// parameter's gradient, then the loss (values are also written over a stale arena).
fn graph(t: &mut Tape<f32>, p: &[Vec<f32>], reach: bool) -> Vec<Vec<f32>> {
    let w = t.param(6, 4, &p[0]);
    let b = t.param(1, 6, &p[1]);
    let x = t.param(5, 4, &p[2]);
    let unused = t.param(2, 2, &p[3]);
    let h = t.linear(x, w);
    let h = t.add(h, b);
    let r = t.tanh(h);
    let left = t.slice_cols(r, 0, 3);
    let right = t.slice_cols(r, 3, 3);
    let both = t.concat_cols(right, left);
    let rows = t.sum_rows(both);
    let target = t.constant(5, 6, &p[4]);
    let mse = t.mse(both, target);
    let s = t.sum(rows);
    let sq = t.square(unused);
    let extra = t.sum(sq);
    let loss = t.add(s, mse);
    let loss = if reach { t.add(loss, extra) } else { loss };
    t.backward(loss).unwrap();
    let mut out: Vec<Vec<f32>> = [w, b, x, unused]
        .iter()
        .map(|&v| t.grad(v).to_vec())
        .collect();
    out.push(t.value(loss).to_vec());
    out
}

#[test]
fn a_reused_tape_reads_no_stale_gradient() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let sizes = [24, 6, 20, 4, 30];
    let make = |rng: &mut ChaCha8Rng, scale: f32| -> Vec<Vec<f32>> {
        sizes
            .iter()
            .map(|&n| data(rng, n).into_iter().map(|v| v * scale).collect())
            .collect()
    };
    let (big, small) = (make(&mut rng, 1e3), make(&mut rng, 1.0));
    let fresh = graph(&mut Tape::new(), &small, false);
    // The same tape first runs the graph with large values (and gradients, the fourth
    // parameter's included), then the small one: every gradient must equal the fresh
    // tape's, bit for bit.
    let mut t = Tape::new();
    graph(&mut t, &big, true);
    t.reset();
    let reused = graph(&mut t, &small, false);
    for (k, (a, b)) in fresh.iter().zip(&reused).enumerate() {
        let (a, b): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(a, b, "parameter {k}");
    }
    assert_eq!(
        reused[3],
        vec![0.0; 4],
        "a parameter the loss does not reach"
    );
}

#[test]
fn all_finite_finds_one_bad_entry_anywhere_on_a_pool() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let len = 3 * (1 << 15) + 5; // several parallel blocks and a short last one
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for at in [0, 1 << 15, len - 1] {
            let mut set = ParamSet::<f32>::new();
            set.push("a", 1, 3, vec![1.0; 3]);
            let mut data = vec![0.5; len];
            data[at] = bad;
            set.push("b", len, 1, data);
            assert!(!set.all_finite(), "{bad} at {at}, on this thread");
            assert!(
                !pool.install(|| set.all_finite()),
                "{bad} at {at}, on the pool"
            );
            // The norm is non-finite exactly then.
            assert!(!set.global_norm().is_finite());
        }
    }
    let mut set = ParamSet::<f32>::new();
    set.push(
        "b",
        1,
        3,
        vec![f32::MAX, -f32::MAX, f32::MIN_POSITIVE / 8.0],
    );
    assert!(set.all_finite() && pool.install(|| set.all_finite()));
    assert!(set.global_norm().is_finite());
}

/// A graph whose nodes keep auxiliary values and integers: the fused diagonal-gain solve
/// (its interleaved factors and pivots, written over the stale arena), the unfused batched
/// solve (factors copied in), and the cross-entropy (labels). Returns the gradients of
/// `d`, `W`, `c` and the loss.
fn solve_graph(t: &mut Tape<f32>, p: &[Vec<f32>], labels: &[usize], n: usize) -> Vec<Vec<f32>> {
    let batch = labels.len();
    let d = t.param(batch, n, &p[0]);
    let w = t.param(n, n, &p[1]);
    let c = t.param(batch, n, &p[2]);
    let y = t.diag_gain_solve(d, w, c).unwrap();
    let m = t.diag_gain_system(d, w);
    let z = t.batched_solve(m, y).unwrap();
    let loss = t.softmax_cross_entropy(z, labels).unwrap();
    t.backward(loss).unwrap();
    let mut out: Vec<Vec<f32>> = [d, w, c].iter().map(|&v| t.grad(v).to_vec()).collect();
    out.push(t.value(loss).to_vec());
    out
}

#[test]
fn a_reused_tape_reads_no_stale_factors_pivots_or_labels() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (n, batch) = (9, 11); // 11 samples: a full group of 8 lanes and a partial one
    let make = |rng: &mut ChaCha8Rng, gain: f32, scale: f32| -> Vec<Vec<f32>> {
        vec![
            data(rng, batch * n)
                .iter()
                .map(|v| gain + 0.2 * v)
                .collect(),
            data(rng, n * n)
                .iter()
                .map(|v| v * scale / n as f32)
                .collect(),
            data(rng, batch * n),
        ]
    };
    let big = make(&mut rng, 3.0, 2.0);
    let small = make(&mut rng, 1.2, 0.5);
    let big_labels: Vec<usize> = (0..batch).map(|b| (7 * b + 3) % n).collect();
    let small_labels: Vec<usize> = (0..batch).map(|b| (2 * b + 1) % n).collect();
    let fresh = solve_graph(&mut Tape::new(), &small, &small_labels, n);
    // The same tape first runs a different graph (other systems, pivots and labels, and a
    // longer one: twice), then the small one; everything must equal the fresh tape's.
    let mut t = Tape::new();
    solve_graph(&mut t, &big, &big_labels, n);
    solve_graph(&mut t, &big, &big_labels, n);
    t.reset();
    let reused = solve_graph(&mut t, &small, &small_labels, n);
    for (k, (a, b)) in fresh.iter().zip(&reused).enumerate() {
        let (a, b): (Vec<u32>, Vec<u32>) = (
            a.iter().map(|v| v.to_bits()).collect(),
            b.iter().map(|v| v.to_bits()).collect(),
        );
        assert_eq!(a, b, "output {k}");
    }
}
