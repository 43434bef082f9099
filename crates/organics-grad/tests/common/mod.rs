//! Finite-difference gradient checking shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use organics_grad::{Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Central-difference step. With `f64` and O(1) values, truncation error is `O(h²) ≈ 1e-12`
/// and rounding error `O(ε/h) ≈ 1e-10`.
pub const FD_STEP: f64 = 1e-6;

/// A matrix input of a gradient check.
#[derive(Debug, Clone)]
pub struct Input {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

/// Values in `±[lo, lo + width]`: bounded away from zero by `lo` so that relu-type kinks are
/// never within a finite-difference step.
pub fn away_from_zero(rng: &mut ChaCha8Rng, len: usize, lo: f64, width: f64) -> Vec<f64> {
    (0..len)
        .map(|_| {
            let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
            s * (lo + width * rng.random::<f64>())
        })
        .collect()
}

/// `max |a − b| / max(1, max |b|)`: the largest difference, relative to the reference's scale
/// (absolute below 1).
pub fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().map(|x| x.abs()).fold(1.0, f64::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Uniform values in `[lo, hi)`.
pub fn uniform(rng: &mut ChaCha8Rng, len: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..len)
        .map(|_| lo + (hi - lo) * rng.random::<f64>())
        .collect()
}

pub fn input(rows: usize, cols: usize, data: Vec<f64>) -> Input {
    assert_eq!(data.len(), rows * cols);
    Input { rows, cols, data }
}

/// `L = Σ out ⊙ R` with a fixed random cotangent `R` (so the whole VJP is exercised).
fn loss_of(
    tape: &mut Tape<f64>,
    inputs: &[Input],
    build: &dyn Fn(&mut Tape<f64>, &[Var]) -> Var,
) -> (Var, Vec<Var>) {
    tape.reset();
    let vars: Vec<Var> = inputs
        .iter()
        .map(|i| tape.param(i.rows, i.cols, &i.data))
        .collect();
    let out = build(tape, &vars);
    let (r, c) = tape.shape(out);
    let mut rng = ChaCha8Rng::seed_from_u64(0xC0DE);
    let cot: Vec<f64> = (0..r * c)
        .map(|_| rng.random::<f64>() * 2.0 - 1.0)
        .collect();
    let cv = tape.constant(r, c, &cot);
    let prod = tape.mul(out, cv);
    (tape.sum(prod), vars)
}

/// Compares tape gradients with central differences; returns the worst scaled error
/// `|g − fd| / (1 + |fd|)`.
pub fn max_grad_error(inputs: &[Input], build: &dyn Fn(&mut Tape<f64>, &[Var]) -> Var) -> f64 {
    let mut tape = Tape::new();
    let (loss, vars) = loss_of(&mut tape, inputs, build);
    tape.backward(loss).unwrap();
    let analytic: Vec<Vec<f64>> = vars.iter().map(|&v| tape.grad(v).to_vec()).collect();
    let mut worst = 0.0f64;
    let mut work = inputs.to_vec();
    for k in 0..inputs.len() {
        for j in 0..inputs[k].data.len() {
            let x0 = work[k].data[j];
            work[k].data[j] = x0 + FD_STEP;
            let (lp, _) = loss_of(&mut tape, &work, build);
            let fp = tape.scalar(lp);
            work[k].data[j] = x0 - FD_STEP;
            let (lm, _) = loss_of(&mut tape, &work, build);
            let fm = tape.scalar(lm);
            work[k].data[j] = x0;
            let fd = (fp - fm) / (2.0 * FD_STEP);
            let err = (analytic[k][j] - fd).abs() / (1.0 + fd.abs());
            worst = worst.max(err);
        }
    }
    worst
}

/// Tolerance of [`max_grad_error`] for smooth O(1) functions: well above the ~1e-9 total
/// finite-difference error, far below any real VJP mistake (which is O(1)).
pub const FD_TOL: f64 = 1e-6;
