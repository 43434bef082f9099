//! The fused cell gives bit-identical results with every vector instruction set.
//!
//! [`InstructionSet::Detect`] runs the element-wise loops compiled for the widest set this
//! processor has (AVX2 on current x86-64), [`InstructionSet::Baseline`] the build's
//! baseline (SSE2). Rust never fuses `a·b + c` and every operation in the loops is correctly
//! rounded or integer bit manipulation, so the outputs must agree bit for bit: no tolerance.
//! On a processor without wider vectors both runs take the baseline path and the test is
//! vacuous there; on the project's machines it compares AVX2 against SSE2.
//!
//! The inputs cover every branch of the loops: both signs of `y` and `a` (the rectification
//! and square-root kinks), gate drives far beyond the sigmoid floor, values that would be
//! subnormal without flushing, and widths that are not a multiple of any vector length.

use organics_grad::Scalar;
use organics_grad::cell::{
    self, CellConfig, CellDims, CellWeights, InputDrive, NormWeights, RecurrentDrive,
    RecurrentMatrix, StepRecord, StepScratch, TimeConstants,
};
use organics_grad::simd::InstructionSet;
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
