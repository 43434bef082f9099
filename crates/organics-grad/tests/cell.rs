//! The fused ORGaNICs cell: equality with the cell composed from primitives (values and
//! gradients), and finite-difference checks of its hand-derived VJP (f64).

mod common;

use common::{FD_TOL, away_from_zero, input, max_grad_error, uniform};
use organics_grad::cell::{
    CellConfig, InputDrive, NormWeights, RecurrentDrive, RecurrentMatrix, TimeConstants,
};
use organics_grad::cell_op::CellVars;
use organics_grad::composed::organics_cell_composed;
use organics_grad::{Tape, Var};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn config(input: InputDrive, recurrent: RecurrentDrive) -> CellConfig {
    CellConfig {
        input,
        recurrent,
        recurrence: RecurrentMatrix::Free,
        norm_weights: NormWeights::Exp,
        time_constants: TimeConstants::PAPER_LEARNED,
    }
}

/// Random inputs: x, state, W_zx, W_bx0, W_bx1, W_r, W_by0, W_ba0, W_by1, W_ba1, W, dt, σ².
fn inputs(seed: u64, rows: usize, n: usize, m: usize) -> Vec<common::Input> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let mut state = Vec::new();
    for _ in 0..rows {
        state.extend(away_from_zero(&mut r, n, 0.05, 1.0)); // y, both signs
        state.extend(away_from_zero(&mut r, n, 0.05, 1.0)); // a, both signs (exercises ⌊a⌋)
        state.extend(uniform(&mut r, 2 * n, 0.1, 1.0)); // b0, b1
    }
    let mut v = vec![
        input(rows, m, uniform(&mut r, rows * m, 0.0, 1.0)),
        input(rows, 4 * n, state),
    ];
    for _ in 0..3 {
        v.push(input(n, m, uniform(&mut r, n * m, -1.0, 1.0)));
    }
    for _ in 0..5 {
        v.push(input(n, n, uniform(&mut r, n * n, -1.0, 1.0)));
    }
    v.push(input(n, n, uniform(&mut r, n * n, 0.1, 1.0)));
    // Large Euler factors so that every term matters at O(1).
    v.push(input(1, 4 * n, uniform(&mut r, 4 * n, 0.2, 0.9)));
    v.push(input(1, n, uniform(&mut r, n, 0.5, 1.5)));
    v
}

fn vars(v: &[Var]) -> CellVars {
    CellVars {
        w_zx: v[2],
        w_bx0: v[3],
        w_bx1: v[4],
        w_r: v[5],
        w_by0: v[6],
        w_ba0: v[7],
        w_by1: v[8],
        w_ba1: v[9],
        w_norm: v[10],
        dt: v[11],
        sigma2: v[12],
    }
}

/// Smallest distance of a kink argument (z_pre if rectified, W_r y if rectified after) to 0.
fn kink_margin(cfg: &CellConfig, ins: &[common::Input]) -> f64 {
    let mut t = Tape::<f64>::new();
    let v: Vec<Var> = ins
        .iter()
        .map(|i| t.param(i.rows, i.cols, &i.data))
        .collect();
    let n = ins[5].rows;
    let mut margin = f64::INFINITY;
    if cfg.input == InputDrive::Rectified {
        let z = t.linear(v[0], v[2]);
        margin = t.value(z).iter().fold(margin, |m, x| m.min(x.abs()));
    }
    if cfg.recurrent == RecurrentDrive::RectifyAfter {
        let y = t.slice_cols(v[1], 0, n);
        let h = t.linear(y, v[5]);
        margin = t.value(h).iter().fold(margin, |m, x| m.min(x.abs()));
    }
    margin
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Fused and composed cells agree in value and in every input gradient.
    #[test]
    fn fused_equals_composed(seed in any::<u64>(), rows in 1usize..4, n in 1usize..5, m in 1usize..3, zi in 0usize..2, ri in 0usize..2) {
        let cfg = config([InputDrive::Linear, InputDrive::Rectified][zi], [RecurrentDrive::RectifyBefore, RecurrentDrive::RectifyAfter][ri]);
        let ins = inputs(seed, rows, n, m);
        let run = |fused: bool| {
            let mut t = Tape::<f64>::new();
            let v: Vec<Var> = ins.iter().map(|i| t.param(i.rows, i.cols, &i.data)).collect();
            let cv = vars(&v);
            let out = if fused { t.organics_cell(&cfg, v[0], v[1], &cv) } else { organics_cell_composed(&mut t, &cfg, v[0], v[1], &cv) };
            // Random cotangent through a second step, so that the output gradient is generic.
            let out2 = if fused { t.organics_cell(&cfg, v[0], out, &cv) } else { organics_cell_composed(&mut t, &cfg, v[0], out, &cv) };
            let sq = t.square(out2);
            let l = t.sum(sq);
            t.backward(l).unwrap();
            let grads: Vec<Vec<f64>> = v.iter().map(|&x| t.grad(x).to_vec()).collect();
            (t.value(out2).to_vec(), grads)
        };
        let (vf, gf) = run(true);
        let (vc, gc) = run(false);
        // Same arithmetic up to the order of a few additions: agreement to ~1e-15 relative;
        // 1e-12 leaves room for accumulation order in the GEMM-based weight gradients.
        for (a, b) in vf.iter().zip(&vc) {
            prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "value {a} vs {b}");
        }
        for (k, (ga, gb)) in gf.iter().zip(&gc).enumerate() {
            for (a, b) in ga.iter().zip(gb) {
                prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "input {k}: grad {a} vs {b}");
            }
        }
    }

    /// The fused cell's VJP against central differences, for every input.
    #[test]
    fn fused_cell_matches_finite_differences(seed in any::<u64>(), rows in 1usize..3, n in 1usize..4, m in 1usize..3, zi in 0usize..2, ri in 0usize..2) {
        let cfg = config([InputDrive::Linear, InputDrive::Rectified][zi], [RecurrentDrive::RectifyBefore, RecurrentDrive::RectifyAfter][ri]);
        let ins = inputs(seed, rows, n, m);
        // Finite differences are meaningless across a kink: skip draws that sit within 1e-3 of one.
        prop_assume!(kink_margin(&cfg, &ins) > 1e-3);
        let e = max_grad_error(&ins, &|t, v| t.organics_cell(&cfg, v[0], v[1], &vars(v)));
        prop_assert!(e < FD_TOL, "max scaled gradient error {e:e}");
    }
}
