//! The fixed-point layer (closed form against the iteration, fixed-point residuals, gradients)
//! and the tape-built baselines (gradients).

mod common;

use organics_grad::baselines::{Mlp, RecurrentBaseline, RecurrentKind};
use organics_grad::fixed_point::{
    FixedPointConfig, FixedPointLayer, FixedPointRecurrence, InputGain, SystemMatrix,
};
use organics_grad::spectral_norm::SpectralNorm;
use organics_grad::{ParamSet, SequenceBatch, Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const M: usize = 5;
const N: usize = 4;
const B: usize = 3;

fn inputs(seed: u64) -> Vec<f64> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..B * M).map(|_| r.random::<f64>()).collect()
}

fn layer(
    rec: FixedPointRecurrence,
    system: SystemMatrix,
    seed: u64,
) -> (FixedPointLayer, ParamSet<f64>, Option<SpectralNorm<f64>>) {
    let mut p = ParamSet::new();
    let cfg = FixedPointConfig {
        input: M,
        units: N,
        recurrence: rec,
        system,
        gain: InputGain::Attention,
    };
    let (l, sn) = FixedPointLayer::new(cfg, &mut p, "org.", seed).unwrap();
    (l, p, sn)
}

fn run(
    l: &FixedPointLayer,
    p: &ParamSet<f64>,
    sn: Option<&SpectralNorm<f64>>,
    x: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut t = Tape::new();
    let vars = p.record(&mut t);
    let xv = t.constant(B, M, x);
    let out = l.forward(&mut t, &vars, xv, sn).unwrap();
    (t.value(out.y).to_vec(), t.value(out.a).to_vec())
}

/// With W_r = I the iteration (√a system) reaches the closed form after two sweeps: the first
/// solve gives y = B1 z / √a₀, the next a-update is the closed-form a.
#[test]
fn iteration_with_identity_recurrence_equals_closed_form() {
    let x = inputs(1);
    let (lc, pc, _) = layer(FixedPointRecurrence::Identity, SystemMatrix::SqrtA, 9);
    let (li, pi, sn) = layer(
        FixedPointRecurrence::SpectralNorm { iterations: 3 },
        SystemMatrix::SqrtA,
        9,
    );
    let (yc, ac) = run(&lc, &pc, None, &x);
    let (yi, ai) = run(&li, &pi, sn.as_ref(), &x);
    // SN(I) = I up to rounding of σ = uᵀ I v ≈ 1, then a few well-conditioned solves.
    for (u, v) in yc.iter().zip(&yi).chain(ac.iter().zip(&ai)) {
        assert!((u - v).abs() < 1e-12, "{u} vs {v}");
    }
    // The reference code's diag(a) system gives a different map (spec §B.4).
    let (ll, pl, snl) = layer(
        FixedPointRecurrence::SpectralNorm { iterations: 3 },
        SystemMatrix::LegacyDiagA,
        9,
    );
    let (yl, _) = run(&ll, &pl, snl.as_ref(), &x);
    assert!(yc.iter().zip(&yl).any(|(u, v)| (u - v).abs() > 1e-3));
}

/// For a general W_r (unit spectral norm) the converged iterate satisfies the fixed-point
/// equations of spec §B.2: (I − W_r + diag(√a) W_r) y = B1 z and a = B0² + W (y² a) + ε.
#[test]
fn converged_iteration_satisfies_the_fixed_point_equations() {
    let x = inputs(2);
    let (l, mut p, _) = layer(
        FixedPointRecurrence::SpectralNorm { iterations: 60 },
        SystemMatrix::SqrtA,
        4,
    );
    let mut r = ChaCha8Rng::seed_from_u64(5);
    let wr_id = l.w_r.unwrap();
    for w in p.data_mut(wr_id) {
        *w += 0.5 * (r.random::<f64>() - 0.5);
    }
    let raw = p.data(wr_id).to_vec();
    let mut sn = SpectralNorm::new(&raw, N, N, 3);
    for _ in 0..200 {
        sn.power_iteration(&raw);
    }
    let mut t = Tape::new();
    let vars = p.record(&mut t);
    let xv = t.constant(B, M, &x);
    let out = l.forward(&mut t, &vars, xv, Some(&sn)).unwrap();
    let (y, a) = (t.value(out.y).to_vec(), t.value(out.a).to_vec());
    // Recompute the ingredients independently of the layer.
    let wr: Vec<f64> = {
        let s = sn.sigma(&raw);
        raw.iter().map(|w| w / s).collect()
    };
    let w: Vec<f64> = p.data(l.log_w).iter().map(|v| v.exp()).collect();
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let b0: Vec<f64> = p.data(l.b0).iter().map(|&v| sig(v)).collect();
    for b in 0..B {
        let xb = &x[b * M..(b + 1) * M];
        let lin = |wm: &[f64], i: usize| (0..M).map(|j| wm[i * M + j] * xb[j]).sum::<f64>();
        let zr: Vec<f64> = (0..N).map(|i| lin(p.data(l.w_zx), i)).collect();
        let zn = zr.iter().map(|v| v * v).sum::<f64>().sqrt();
        let drive: Vec<f64> = (0..N)
            .map(|i| sig(lin(p.data(l.w_bx.unwrap()), i)) * zr[i] / zn)
            .collect();
        let (yb, ab) = (&y[b * N..(b + 1) * N], &a[b * N..(b + 1) * N]);
        // The last a-update follows the last solve, so the y-equation holds up to one sweep's
        // change, which has converged (contraction factor < 1 per sweep) to below 1e-9.
        for i in 0..N {
            let wry: f64 = (0..N).map(|j| wr[i * N + j] * yb[j]).sum();
            let res_y = yb[i] - wry + ab[i].sqrt() * wry - drive[i];
            let wya: f64 = (0..N).map(|j| w[i * N + j] * yb[j] * yb[j] * ab[j]).sum();
            let res_a = ab[i] - (b0[i] * b0[i] + wya + 1e-10);
            assert!(
                res_y.abs() < 1e-9 && res_a.abs() < 1e-9,
                "row {b} unit {i}: {res_y:e} {res_a:e}"
            );
        }
    }
}

/// Gradients through the closed form and through the unrolled iteration (with its batched
/// solves) against central differences.
#[test]
fn fixed_point_gradients_match_finite_differences() {
    for rec in [
        FixedPointRecurrence::Identity,
        FixedPointRecurrence::SpectralNorm { iterations: 3 },
    ] {
        let (l, mut p, _) = layer(rec, SystemMatrix::SqrtA, 6);
        if let Some(id) = l.w_r {
            let mut r = ChaCha8Rng::seed_from_u64(8);
            for w in p.data_mut(id) {
                *w += 0.4 * (r.random::<f64>() - 0.5);
            }
        }
        let sn = l.w_r.map(|id| SpectralNorm::new(p.data(id), N, N, 1));
        let x = inputs(3);
        let mut ins: Vec<common::Input> = p
            .tensors()
            .iter()
            .map(|t| common::input(t.rows, t.cols, t.data.clone()))
            .collect();
        ins.push(common::input(B, M, x));
        let k = ins.len() - 1;
        let e = common::max_grad_error(&ins, &|t, v: &[Var]| {
            l.forward(t, v, v[k], sn.as_ref()).unwrap().rate
        });
        assert!(e < common::FD_TOL, "{rec:?}: max scaled error {e:e}");
    }
}

/// MLP, tanh RNN and LSTM gradients against central differences (short sequences).
#[test]
fn baseline_gradients_match_finite_differences() {
    let mut p = ParamSet::<f64>::new();
    let mlp = Mlp::new(&[3, 4, 2], &mut p, "mlp.", 1);
    let x = inputs(4)[..2 * 3].to_vec();
    let mut ins: Vec<common::Input> = p
        .tensors()
        .iter()
        .map(|t| common::input(t.rows, t.cols, t.data.clone()))
        .collect();
    ins.push(common::input(2, 3, x));
    let k = ins.len() - 1;
    let e = common::max_grad_error(&ins, &|t, v: &[Var]| mlp.forward(t, v, v[k]));
    assert!(e < common::FD_TOL, "mlp: {e:e}");

    let seq: Vec<f64> = [inputs(5), inputs(6)].concat()[..4 * 2 * 2].to_vec(); // T = 4, batch 2, input 2
    for kind in [RecurrentKind::Tanh, RecurrentKind::Lstm] {
        let mut p = ParamSet::<f64>::new();
        let rnn = RecurrentBaseline::new(kind, 2, 3, &mut p, "rnn.", 2);
        let ins: Vec<common::Input> = p
            .tensors()
            .iter()
            .map(|t| common::input(t.rows, t.cols, t.data.clone()))
            .collect();
        let batch = SequenceBatch {
            data: &seq,
            steps: 4,
            batch: 2,
            input: 2,
        };
        let e = common::max_grad_error(&ins, &|t, v: &[Var]| rnn.forward(t, v, &batch));
        assert!(e < common::FD_TOL, "{kind:?}: {e:e}");
    }
}
