//! The fused cell, the tape's element-wise operations and Adam give bit-identical results
//! with every vector instruction set.
//!
//! [`InstructionSet::Detect`] runs the element-wise loops compiled for the widest set this
//! processor has (AVX-512 or AVX2 on current x86-64), [`InstructionSet::Baseline`] the build's
//! baseline (SSE2). Rust never fuses `a·b + c` and every operation in the loops is correctly
//! rounded or integer bit manipulation, so the outputs must agree bit for bit: no tolerance.
//! On a processor without wider vectors both runs take the baseline path and the test is
//! vacuous there; on the project's machines (AVX-512) it compares AVX-512 against SSE2, and on
//! an AVX2-only machine AVX2 against SSE2.
//!
//! The inputs cover every branch of the loops: both signs of `y` and `a` (the rectification
//! and square-root kinks), gate drives far beyond the sigmoid floor, values that would be
//! subnormal without flushing, and widths that are not a multiple of any vector length.

use organics_grad::Scalar;
use organics_grad::cell::{
    self, CellConfig, CellDims, CellWeights, InputDrive, NormWeights, RecurrentDrive,
    RecurrentMatrix, StepRecord, StepScratch, TimeConstants,
};
use organics_grad::optim::{AdamConfig, Optimizer, WeightDecay};
use organics_grad::simd::InstructionSet;
use organics_grad::tape::{Binary, Unary};
use organics_grad::{ParamSet, Tape};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Everything one forward and one backward step write, for bitwise comparison.
#[derive(Debug, PartialEq)]
struct Outputs<S> {
    next: Vec<S>,
    cache: Vec<S>,
    g_state: Vec<S>,
    dp: Vec<S>,
    dyhat: Vec<S>,
    du: Vec<S>,
    r: Vec<S>,
    v: Vec<S>,
    ddt: Vec<S>,
    dsigma2: Vec<S>,
    dx: Vec<S>,
}

/// Random values on `[−scale, scale]`, with about one in eight replaced by a tiny value
/// (`±1e-30` relative to the type's smallest normal number, i.e. subnormal-producing products)
/// and one in eight by zero.
fn values<S: Scalar>(rng: &mut ChaCha8Rng, len: usize, scale: f64) -> Vec<S> {
    (0..len)
        .map(|_| {
            let u: f64 = rng.random();
            let x = scale * (2.0 * rng.random::<f64>() - 1.0);
            let v = if u < 0.125 {
                0.0
            } else if u < 0.25 {
                x.signum() * S::MIN_POSITIVE.to_f64() * 4.0
            } else {
                x
            };
            S::from_f64(v)
        })
        .collect()
}

fn positive<S: Scalar>(rng: &mut ChaCha8Rng, len: usize, lo: f64, hi: f64) -> Vec<S> {
    (0..len)
        .map(|_| S::from_f64(lo + (hi - lo) * rng.random::<f64>()))
        .collect()
}

fn run<S: Scalar>(
    cfg: &CellConfig,
    seed: u64,
    rows: usize,
    n: usize,
    m: usize,
    isa: InstructionSet,
) -> Outputs<S> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dims = CellDims { n, m };
    // Large input weights drive the gates far past the sigmoid floor (|drive| up to ~100).
    let wx = values::<S>(&mut rng, 3 * n * m, 30.0);
    let wr = values::<S>(&mut rng, n * n, 1.0);
    let wg = values::<S>(&mut rng, 4 * n * n, 10.0);
    let w = positive::<S>(&mut rng, n * n, 0.0, 1.0);
    let dt = positive::<S>(&mut rng, 4 * n, 0.01, 0.9);
    let sigma2 = positive::<S>(&mut rng, n, 0.1, 2.0);
    let x = values::<S>(&mut rng, rows * m, 3.0);
    let state = values::<S>(&mut rng, rows * 4 * n, 2.0);
    let g_next = values::<S>(&mut rng, rows * 4 * n, 1.0);
    let weights = CellWeights {
        dims,
        wx: &wx,
        wr: &wr,
        wg: &wg,
        w: &w,
        dt: &dt,
        sigma2: &sigma2,
    };
    let mut scratch = StepScratch::with_instruction_set(isa);
    let mut out = Outputs {
        next: vec![S::ZERO; rows * 4 * n],
        cache: vec![S::ZERO; rows * 4 * n],
        g_state: vec![S::ZERO; rows * 4 * n],
        dp: vec![S::ZERO; rows * 3 * n],
        dyhat: vec![S::ZERO; rows * n],
        du: vec![S::ZERO; rows * n],
        r: vec![S::ZERO; rows * n],
        v: vec![S::ZERO; rows * n],
        ddt: vec![S::ZERO; 4 * n],
        dsigma2: vec![S::ZERO; n],
        dx: vec![S::ZERO; rows * m],
    };
    cell::forward_step(
        cfg,
        &weights,
        rows,
        &x,
        &state,
        &mut out.next,
        &mut out.cache,
        &mut scratch,
    );
    let rec = StepRecord {
        dp: &mut out.dp,
        dyhat: &mut out.dyhat,
        du: &mut out.du,
        r: &mut out.r,
        v: &mut out.v,
    };
    cell::backward_step(
        cfg,
        &weights,
        rows,
        &x,
        &state,
        &out.cache,
        &g_next,
        &mut out.g_state,
        rec,
        &mut out.ddt,
        &mut out.dsigma2,
        Some(&mut out.dx),
        &mut scratch,
    );
    out
}

fn config(zi: usize, ri: usize) -> CellConfig {
    CellConfig {
        input: [InputDrive::Linear, InputDrive::Rectified][zi],
        recurrent: [RecurrentDrive::RectifyBefore, RecurrentDrive::RectifyAfter][ri],
        recurrence: RecurrentMatrix::Free,
        norm_weights: NormWeights::Exp,
        time_constants: TimeConstants::PAPER_LEARNED,
    }
}

/// Bitwise equality (NaN-safe: the inputs are finite, so NaN would itself be a failure).
fn same_bits<S: Scalar>(a: &[S], b: &[S]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits())
}

fn assert_identical<S: Scalar>(a: &Outputs<S>, b: &Outputs<S>) {
    for (what, x, y) in [
        ("next", &a.next, &b.next),
        ("cache", &a.cache, &b.cache),
        ("g_state", &a.g_state, &b.g_state),
        ("dp", &a.dp, &b.dp),
        ("dyhat", &a.dyhat, &b.dyhat),
        ("du", &a.du, &b.du),
        ("r", &a.r, &b.r),
        ("v", &a.v, &b.v),
        ("ddt", &a.ddt, &b.ddt),
        ("dsigma2", &a.dsigma2, &b.dsigma2),
        ("dx", &a.dx, &b.dx),
    ] {
        assert!(
            same_bits(x, y),
            "{what} differs between the detected and the baseline instruction set"
        );
        assert!(x.iter().all(|v| v.is_finite()), "{what} is not finite");
    }
}

/// Runs one forward and backward step both ways and compares every output bitwise.
fn check<S: Scalar>(seed: u64, rows: usize, n: usize, m: usize, cfg: &CellConfig) {
    let wide = run::<S>(cfg, seed, rows, n, m, InstructionSet::Detect);
    let base = run::<S>(cfg, seed, rows, n, m, InstructionSet::Baseline);
    assert_identical(&wide, &base);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn f32_cell_is_bit_identical_across_instruction_sets(
        seed in any::<u64>(), rows in 1usize..6, n in 1usize..40, m in 1usize..4,
        zi in 0usize..2, ri in 0usize..2,
    ) {
        check::<f32>(seed, rows, n, m, &config(zi, ri));
    }

    #[test]
    fn f64_cell_is_bit_identical_across_instruction_sets(
        seed in any::<u64>(), rows in 1usize..4, n in 1usize..20, m in 1usize..3,
        zi in 0usize..2, ri in 0usize..2,
    ) {
        check::<f64>(seed, rows, n, m, &config(zi, ri));
    }
}

#[test]
fn paper_size_chunk_is_bit_identical_across_instruction_sets() {
    // One 128-row chunk at n = 128, m = 1: the shape the sMNIST training step runs.
    check::<f32>(7, 128, 128, 1, &CellConfig::NEURIPS);
}

/// Values and gradients of one tape that applies every element-wise function (unary, and
/// binary both without and with broadcasting) to random `rows x cols` inputs, with the loss
/// `Σ wᵢ outᵢ` (random weights `w`, so every VJP loop sees a different cotangent per entry).
fn tape_run<S: Scalar>(seed: u64, rows: usize, cols: usize, isa: InstructionSet) -> Vec<Vec<S>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tape = Tape::<S>::new();
    tape.set_instruction_set(isa);
    let a = tape.param(rows, cols, &values::<S>(&mut rng, rows * cols, 30.0));
    // Divisors away from zero: `b ∈ ±[0.5, 3]`.
    let bv: Vec<S> = positive::<S>(&mut rng, rows * cols, 0.5, 3.0)
        .into_iter()
        .enumerate()
        .map(|(i, x)| if i % 3 == 0 { -x } else { x })
        .collect();
    let b = tape.param(rows, cols, &bv);
    let row = tape.param(1, cols, &positive::<S>(&mut rng, cols, 0.5, 3.0));
    let (c, lo, hi) = (S::from_f64(-1.7), S::from_f64(-2.5), S::from_f64(4.0));
    let unary = [
        Unary::Relu,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Exp,
        Unary::Square,
        Unary::Sqrt,
        Unary::Neg,
        Unary::Scale(c),
        Unary::AddScalar(c),
        Unary::Clamp(lo, hi),
    ];
    let mut outs = Vec::new();
    for f in unary {
        // exp of inputs up to 30 stays finite in f32 (e^30 ≈ 1e13).
        outs.push(tape.unary(f, a));
    }
    for f in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
        outs.push(tape.binary(f, a, b));
        outs.push(tape.binary(f, a, row));
    }
    let mut loss = None;
    for o in outs.iter().copied() {
        let w = tape.constant(rows, cols, &values::<S>(&mut rng, rows * cols, 1.0));
        let t = tape.mul(o, w);
        let t = tape.sum(t);
        loss = Some(loss.map_or(t, |l| tape.add(l, t)));
    }
    let loss = loss.expect("at least one output");
    tape.backward(loss).expect("scalar loss");
    let mut all: Vec<Vec<S>> = outs.iter().map(|&o| tape.value(o).to_vec()).collect();
    all.extend([a, b, row].iter().map(|&v| tape.grad(v).to_vec()));
    all
}

/// One Adam step per weight-decay kind on random parameters, gradients and moments.
fn adam_run<S: Scalar>(seed: u64, len: usize, isa: InstructionSet) -> Vec<Vec<S>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for decay in [WeightDecay::L2, WeightDecay::Decoupled] {
        let mut params = ParamSet::<S>::new();
        params.push("w", 1, len, values::<S>(&mut rng, len, 2.0));
        let mut grads = ParamSet::<S>::new();
        grads.push("w", 1, len, values::<S>(&mut rng, len, 1.0));
        let config = AdamConfig {
            weight_decay: 1e-2,
            decay,
            ..AdamConfig::default()
        };
        let mut opt = Optimizer::adam(config, &params);
        // Two steps: the second starts from non-zero moments.
        for _ in 0..2 {
            opt.step_with(isa, &mut params, &grads, 1e-3)
                .expect("same layouts");
        }
        out.push(params.tensors()[0].data.clone());
        if let Optimizer::Adam { m, v, .. } = &opt {
            out.push(m.tensors()[0].data.clone());
            out.push(v.tensors()[0].data.clone());
        }
    }
    out
}

fn assert_all_identical<S: Scalar>(wide: &[Vec<S>], base: &[Vec<S>], what: &str) {
    assert_eq!(wide.len(), base.len());
    for (k, (x, y)) in wide.iter().zip(base).enumerate() {
        assert!(
            same_bits(x, y),
            "{what} output {k} differs between the detected and the baseline instruction set"
        );
        assert!(
            x.iter().all(|v| v.is_finite()),
            "{what} output {k} is not finite"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn tape_elementwise_ops_are_bit_identical_across_instruction_sets(
        seed in any::<u64>(), rows in 1usize..5, cols in 1usize..40,
    ) {
        let wide = tape_run::<f32>(seed, rows, cols, InstructionSet::Detect);
        let base = tape_run::<f32>(seed, rows, cols, InstructionSet::Baseline);
        assert_all_identical(&wide, &base, "f32 tape");
        let wide = tape_run::<f64>(seed, rows, cols, InstructionSet::Detect);
        let base = tape_run::<f64>(seed, rows, cols, InstructionSet::Baseline);
        assert_all_identical(&wide, &base, "f64 tape");
    }

    #[test]
    fn adam_is_bit_identical_across_instruction_sets(seed in any::<u64>(), len in 1usize..80) {
        let wide = adam_run::<f32>(seed, len, InstructionSet::Detect);
        let base = adam_run::<f32>(seed, len, InstructionSet::Baseline);
        assert_all_identical(&wide, &base, "f32 Adam");
        let wide = adam_run::<f64>(seed, len, InstructionSet::Detect);
        let base = adam_run::<f64>(seed, len, InstructionSet::Baseline);
        assert_all_identical(&wide, &base, "f64 Adam");
    }
}

/// A row repeated over a matrix's rows (a bias, `a ∘ r` with `r` of shape `1 x cols`, on
/// either side) runs one vector loop per row; its values and gradients equal element loops
/// written here, the bias gradient summing the rows in row order, to the bit, with every
/// instruction set. Each reference entry is one correctly rounded expression and the
/// cotangent of `Σ w ⊙ out` is exactly `w`, so no tolerance is needed.
#[test]
fn row_broadcast_binary_matches_element_loops_bitwise() {
    let (rows, cols) = (5, 37);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let av = values::<f32>(&mut rng, rows * cols, 3.0);
    let rv: Vec<f32> = positive::<f32>(&mut rng, cols, 0.5, 3.0)
        .into_iter()
        .enumerate()
        .map(|(j, x)| if j % 2 == 0 { -x } else { x })
        .collect();
    let wv = values::<f32>(&mut rng, rows * cols, 1.0);
    for isa in [InstructionSet::Baseline, InstructionSet::Detect] {
        for f in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div] {
            for row_on_left in [false, true] {
                let mut tape = Tape::<f32>::new();
                tape.set_instruction_set(isa);
                let a = tape.param(rows, cols, &av);
                let r = tape.param(1, cols, &rv);
                let out = if row_on_left {
                    tape.binary(f, r, a)
                } else {
                    tape.binary(f, a, r)
                };
                let w = tape.constant(rows, cols, &wv);
                let t = tape.mul(out, w);
                let loss = tape.sum(t);
                tape.backward(loss).expect("scalar loss");
                // Reference: x is the left operand, y the right one.
                let (mut val, mut ga, mut gr) =
                    (vec![], vec![0.0f32; rows * cols], vec![0.0f32; cols]);
                for i in 0..rows {
                    for j in 0..cols {
                        let (k, g) = (i * cols + j, wv[i * cols + j]);
                        let (x, y) = if row_on_left {
                            (rv[j], av[k])
                        } else {
                            (av[k], rv[j])
                        };
                        val.push(match f {
                            Binary::Add => x + y,
                            Binary::Sub => x - y,
                            Binary::Mul => x * y,
                            Binary::Div => x / y,
                        });
                        let left = match f {
                            Binary::Add | Binary::Sub => g,
                            Binary::Mul => g * y,
                            Binary::Div => g / y,
                        };
                        let right = match f {
                            Binary::Add => g,
                            Binary::Sub => -g,
                            Binary::Mul => g * x,
                            Binary::Div => -g * x / (y * y),
                        };
                        let (for_a, for_r) = if row_on_left {
                            (right, left)
                        } else {
                            (left, right)
                        };
                        ga[k] += for_a;
                        gr[j] += for_r;
                    }
                }
                let what = format!("{f:?}, row on the left: {row_on_left}, {isa:?}");
                assert!(same_bits(tape.value(out), &val), "values of {what}");
                assert!(same_bits(tape.grad(a), &ga), "matrix gradient of {what}");
                assert!(same_bits(tape.grad(r), &gr), "row gradient of {what}");
            }
        }
    }
}
