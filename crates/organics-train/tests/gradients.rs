//! Tape gradients of the training models (fixed-point layer, LSTM, tanh RNN) against central
//! finite differences.
//!
//! The models run in `f32` only, so the check is an `f32` one: every trainable scalar (and the
//! fixed-point layer's input) is perturbed by `±h` and the scalar loss `L = Σ out ⊙ R` (fixed
//! random cotangent `R`) re-evaluated. With `h = 10⁻²`, the truncation error `h²|L'''|/6` is
//! ~1e-5 for these O(1) smooth functions and the rounding error `ε_L/h` (loss rounding
//! `ε_L ≲ 1e-6` for a few hundred f32 operations) is ~1e-4, so a correct gradient is off by
//! ≲ 1e-3 of `1 + |fd|`, while a wrong VJP (a missing term, a transposed factor) is off by O(1).

use organics_grad::{Tape, Var};
use organics_train::model::fixed_point::FixedPointLayer;
use organics_train::model::lstm::Lstm;
use organics_train::model::tanh_rnn::TanhRnn;
use organics_train::params::StateDict;
use organics_train::{FixedPointSolver, FixedPointSystem, StaticRecurrence};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Central-difference step (see the module doc for the error budget).
const H: f32 = 1e-2;

/// Accepted scaled error `|g − fd| / (1 + |fd|)`: twice the f32 error budget of the module doc
/// (observed: ≤ 1.4e-4 for these seeds), while the largest gradients here are 0.1–1, so even a
/// 2 % error in them (let alone an O(1) VJP mistake) fails.
const TOL: f64 = 2e-3;

/// The forward pass under test: tape, parameter handles, parameter values, input leaf.
type Build<'a> = dyn Fn(&mut Tape<f32>, &[Var], &StateDict, Var) -> Var + 'a;

fn uniform(seed: u64, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| lo + (hi - lo) * r.random::<f32>())
        .collect()
}

/// `L = Σ out ⊙ R`, with the parameter handles and the input leaf.
fn loss(
    tape: &mut Tape<f32>,
    params: &StateDict,
    x: &(usize, usize, Vec<f32>),
    build: &Build<'_>,
) -> (Var, Vec<Var>, Var) {
    tape.reset();
    let vars = params.to_tape(tape);
    let xv = tape.param(x.0, x.1, &x.2);
    let out = build(tape, &vars, params, xv);
    let (r, c) = tape.shape(out);
    let cot = uniform(0xC0DE, r * c, -1.0, 1.0);
    let cv = tape.constant(r, c, &cot);
    let prod = tape.mul(out, cv);
    (tape.sum(prod), vars, xv)
}

/// Worst scaled error `|g − fd| / (1 + |fd|)` over every trainable scalar and the input, and
/// the largest `|fd|` seen (so a test can check that the gradient is not trivially zero).
fn max_grad_error(
    params: &StateDict,
    x: &(usize, usize, Vec<f32>),
    build: &Build<'_>,
) -> (f64, f64) {
    let mut tape = Tape::new();
    let (l, vars, xv) = loss(&mut tape, params, x, build);
    tape.backward(l).unwrap();
    let eval = |p: &StateDict, x: &(usize, usize, Vec<f32>)| {
        let mut t = Tape::new();
        let (l, _, _) = loss(&mut t, p, x, build);
        f64::from(t.scalar(l))
    };
    let (mut worst, mut largest) = (0.0f64, 0.0f64);
    let mut compare = |g: f32, fp: f64, fm: f64| {
        let fd = (fp - fm) / (2.0 * f64::from(H));
        worst = worst.max((f64::from(g) - fd).abs() / (1.0 + fd.abs()));
        largest = largest.max(fd.abs());
    };
    let mut work = params.clone();
    for id in params.trainable_ids() {
        let g = tape.grad(vars[id.0]).to_vec();
        for (j, &x0) in params.data(id).iter().enumerate() {
            work.data_mut(id)[j] = x0 + H;
            let fp = eval(&work, x);
            work.data_mut(id)[j] = x0 - H;
            let fm = eval(&work, x);
            work.data_mut(id)[j] = x0;
            compare(g[j], fp, fm);
        }
    }
    let g = tape.grad(xv).to_vec();
    let mut xw = x.clone();
    for j in 0..x.2.len() {
        let x0 = x.2[j];
        xw.2[j] = x0 + H;
        let fp = eval(params, &xw);
        xw.2[j] = x0 - H;
        let fm = eval(params, &xw);
        xw.2[j] = x0;
        compare(g[j], fp, fm);
    }
    (worst, largest)
}

/// Fixed-point layer gradients, through the closed form (`W_r = I`) and through three unrolled
/// iterations with their batched solves (learned `W_r`, both linear systems), with respect to
/// every parameter and the layer's input.
#[test]
fn fixed_point_layer_gradients_match_finite_differences() {
    let (m, n, b) = (5, 4, 3);
    let cases = [
        (
            StaticRecurrence::Identity,
            FixedPointSystem::SqrtA,
            FixedPointSolver::Lu,
        ),
        (
            StaticRecurrence::SpectralNorm,
            FixedPointSystem::SqrtA,
            FixedPointSolver::Lu,
        ),
        (
            StaticRecurrence::SpectralNorm,
            FixedPointSystem::SqrtA,
            FixedPointSolver::Sweeps,
        ),
        (
            StaticRecurrence::SpectralNorm,
            FixedPointSystem::LegacyDiagA,
            FixedPointSolver::Lu,
        ),
        (
            StaticRecurrence::SpectralNorm,
            FixedPointSystem::LegacyDiagA,
            FixedPointSolver::Sweeps,
        ),
    ];
    for (rec, system, solver) in cases {
        let mut params = StateDict::default();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let layer =
            FixedPointLayer::new(&mut params, &mut rng, "org", m, n, rec, system, solver, 3);
        if let Some(sn) = layer.w_r {
            // Move W_r away from I (where the iteration is exact after one sweep), then let
            // the power iteration settle on the new weight.
            for (w, d) in params
                .data_mut(sn.weight)
                .iter_mut()
                .zip(uniform(8, n * n, -0.2, 0.2))
            {
                *w += d;
            }
            for _ in 0..20 {
                sn.power_iteration(&mut params);
            }
        }
        // Inputs in (0, 1), as the autoencoder's sigmoid code is.
        let x = (b, m, uniform(3, b * m, 0.05, 1.0));
        let build = |t: &mut Tape<f32>, v: &[Var], p: &StateDict, xv: Var| {
            layer.forward(t, v, p, xv).unwrap().rates
        };
        let (e, largest) = max_grad_error(&params, &x, &build);
        assert!(
            e < TOL,
            "{rec:?} {system:?} {solver:?}: max scaled error {e:e}"
        );
        assert!(
            largest > 1e-2,
            "{rec:?} {system:?} {solver:?}: gradient ~0 ({largest:e})"
        );
    }
}

/// LSTM and tanh-RNN gradients (readout included) through a short sequence, with respect to
/// every parameter.
#[test]
fn recurrent_baseline_gradients_match_finite_differences() {
    let (steps, rows, dim, units) = (4, 2, 2, 3);
    let seq = uniform(5, steps * rows * dim, -1.0, 1.0);
    let step = |t: usize| &seq[t * rows * dim..(t + 1) * rows * dim];
    // The input leaf is unused by these models (their inputs are constants); a 1 x 1 dummy
    // keeps the helper's signature, and its gradient (0) is checked against a zero difference.
    let x = (1, 1, vec![0.0f32]);
    for lstm in [true, false] {
        let mut params = StateDict::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (e, largest) = if lstm {
            let model = Lstm::new(&mut params, &mut rng, dim, units);
            let build = |t: &mut Tape<f32>, v: &[Var], _: &StateDict, _: Var| {
                model.forward(t, v, rows, steps, step, |_, _| {})
            };
            max_grad_error(&params, &x, &build)
        } else {
            let model = TanhRnn::new(&mut params, &mut rng, dim, units);
            let build = |t: &mut Tape<f32>, v: &[Var], _: &StateDict, _: Var| {
                model.forward(t, v, rows, steps, step, |_, _| {})
            };
            max_grad_error(&params, &x, &build)
        };
        let name = if lstm { "lstm" } else { "tanh rnn" };
        assert!(e < TOL, "{name}: max scaled error {e:e}");
        assert!(largest > 1e-2, "{name}: gradient ~0 ({largest:e})");
    }
}
