//! The LSTM and tanh-RNN cells ([`organics_grad::recurrent_cell`]) and their BPTT engine
//! ([`organics_grad::RecurrentBptt`]), in `f64`:
//!
//! - one step's VJP (state, `W_ih`, `W_hh`, bias) against central finite differences;
//! - the engine's whole gradient against finite differences of its own loss, and against the
//!   same model recorded on the generic tape from primitive operations (an independent route:
//!   `linear`, `sigmoid`, `tanh`, `mul` with their own VJPs);
//! - checkpointing and the instruction set leave the gradients bit-identical;
//! - bad layouts and batches are typed errors.

mod common;

use common::{FD_STEP, rel};
use organics_grad::bptt::{BpttConfig, Checkpointing, Chunks};
use organics_grad::recurrent::{
    StepScratch, StepWeights, accumulate_weight_grads, backward_step, forward_step,
};
use organics_grad::simd::InstructionSet;
use organics_grad::{
    GradError, ParamSet, RecurrentBptt, RecurrentCell, RecurrentSpec, SequenceBatch, Tape, Var,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CELLS: [RecurrentCell; 2] = [RecurrentCell::Tanh, RecurrentCell::Lstm];

fn uniform(rng: &mut ChaCha8Rng, len: usize, k: f64) -> Vec<f64> {
    (0..len)
        .map(|_| k * (2.0 * rng.random::<f64>() - 1.0))
        .collect()
}

/// Weights of an O(1)-scale model (`U(±0.8)`: gates well inside their non-saturated range).
fn params(spec: &RecurrentSpec, rng: &mut ChaCha8Rng) -> ParamSet<f64> {
    let mut p = ParamSet::new();
    let names = ["w_ih", "w_hh", "b_ih", "b_hh", "fc.weight", "fc.bias"];
    for (name, (r, c)) in names.into_iter().zip(spec.shapes()) {
        p.push(name, r, c, uniform(rng, r * c, 0.8));
    }
    p
}

/// One step's VJP against central differences of `L = ⟨ḡ, next⟩` with respect to the state,
/// `W_ih`, `W_hh` and the bias. Tolerance: central differences with `h = 1e-6` on O(1) smooth
/// functions are accurate to `O(h²) + O(ε/h) ≈ 1e-10`; we allow 1e-8 of the largest gradient.
#[test]
fn step_vjp_matches_finite_differences() {
    for cell in CELLS {
        for seed in 0..4u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (n, m, rows) = (3, 2, 2);
            let spec = RecurrentSpec {
                cell,
                hidden: n,
                input: m,
                classes: 3,
            };
            let (gn, sw, cw) = (cell.gates() * n, cell.state_width(n), cell.cache_width(n));
            let x = uniform(&mut rng, rows * m, 1.0);
            let state = uniform(&mut rng, rows * sw, 1.0);
            let w_ih = uniform(&mut rng, gn * m, 0.8);
            let w_hh = uniform(&mut rng, gn * n, 0.8);
            let bias = uniform(&mut rng, gn, 0.8);
            let cot = uniform(&mut rng, rows * sw, 1.0);
            let loss = |state: &[f64], w_ih: &[f64], w_hh: &[f64], bias: &[f64]| {
                let w = StepWeights { w_ih, w_hh, bias };
                let (mut next, mut cache) = (vec![0.0; rows * sw], vec![0.0; rows * cw]);
                let mut s = StepScratch::default();
                forward_step(&spec, &w, rows, &x, state, &mut next, &mut cache, &mut s);
                next.iter().zip(&cot).map(|(a, b)| a * b).sum::<f64>()
            };
            // Analytic.
            let w = StepWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                bias: &bias,
            };
            let (mut next, mut cache) = (vec![0.0; rows * sw], vec![0.0; rows * cw]);
            let mut s = StepScratch::default();
            forward_step(&spec, &w, rows, &x, &state, &mut next, &mut cache, &mut s);
            let mut g_state = vec![f64::NAN; rows * sw];
            let (mut dp, mut db) = (vec![0.0; rows * gn], vec![0.0; gn]);
            backward_step(
                &spec,
                &w,
                rows,
                &state,
                &next,
                &cache,
                &cot,
                &mut g_state,
                &mut dp,
                &mut db,
                &s,
            );
            let (mut g_ih, mut g_hh) = (vec![0.0; gn * m], vec![0.0; gn * n]);
            accumulate_weight_grads(&spec, rows, &dp, &x, &state, &mut g_ih, &mut g_hh);
            // Central differences, one argument at a time.
            let fd = |which: usize| -> Vec<f64> {
                let mut args = [state.clone(), w_ih.clone(), w_hh.clone(), bias.clone()];
                (0..args[which].len())
                    .map(|k| {
                        let v = args[which][k];
                        args[which][k] = v + FD_STEP;
                        let up = loss(&args[0], &args[1], &args[2], &args[3]);
                        args[which][k] = v - FD_STEP;
                        let down = loss(&args[0], &args[1], &args[2], &args[3]);
                        args[which][k] = v;
                        (up - down) / (2.0 * FD_STEP)
                    })
                    .collect()
            };
            for (which, what, analytic) in [
                (0, "state", &g_state),
                (1, "W_ih", &g_ih),
                (2, "W_hh", &g_hh),
                (3, "bias", &db),
            ] {
                let d = rel(analytic, &fd(which));
                assert!(d < 1e-8, "{cell:?} seed {seed}: {what} off by {d:e}");
            }
        }
    }
}

struct Problem {
    spec: RecurrentSpec,
    params: ParamSet<f64>,
    data: Vec<f64>,
    labels: Vec<usize>,
    steps: usize,
    batch: usize,
}

impl Problem {
    fn new(cell: RecurrentCell, seed: u64, steps: usize, batch: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let spec = RecurrentSpec {
            cell,
            hidden: 4,
            input: 2,
            classes: 5,
        };
        let params = params(&spec, &mut rng);
        let data = uniform(&mut rng, steps * batch * spec.input, 1.0);
        let labels = (0..batch).map(|_| rng.random_range(0..5)).collect();
        Self {
            spec,
            params,
            data,
            labels,
            steps,
            batch,
        }
    }

    fn seq(&self) -> SequenceBatch<'_, f64> {
        SequenceBatch {
            data: &self.data,
            steps: self.steps,
            batch: self.batch,
            input: self.spec.input,
        }
    }
}

fn engine(checkpointing: Checkpointing, chunks: usize, block: usize) -> RecurrentBptt<f64> {
    RecurrentBptt::new(BpttConfig {
        checkpointing,
        chunks: Chunks::Fixed(chunks),
        weight_grad_block: block,
        ..BpttConfig::default()
    })
    .unwrap()
}

fn engine_grads(p: &Problem, e: &mut RecurrentBptt<f64>) -> (f64, ParamSet<f64>) {
    let mut g = p.params.zeros_like();
    let s = e
        .loss_and_grad(&p.spec, &p.params, &p.seq(), &p.labels, &mut g)
        .unwrap();
    (s.loss, g)
}

/// The model on the generic tape from primitive operations (as organics-train records it).
fn tape_grads(p: &Problem) -> (f64, Vec<Vec<f64>>) {
    let mut t = Tape::new();
    let vars: Vec<Var> = p.params.record(&mut t);
    let (n, rows) = (p.spec.hidden, p.batch);
    let zeros = vec![0.0; rows * n];
    let mut h = t.constant(rows, n, &zeros);
    let mut c = t.constant(rows, n, &zeros);
    let bias = t.add(vars[2], vars[3]);
    for step in 0..p.steps {
        let x = t.constant(rows, p.spec.input, p.seq().step_rows(step, 0, rows));
        let gx = t.linear(x, vars[0]);
        let gh = t.linear(h, vars[1]);
        let g = t.add(gx, gh);
        let g = t.add(g, bias);
        match p.spec.cell {
            RecurrentCell::Tanh => h = t.tanh(g),
            RecurrentCell::Lstm => {
                let sl = |t: &mut Tape<f64>, k: usize| t.slice_cols(g, k * n, n);
                let (gi, gf, gg, go) = (sl(&mut t, 0), sl(&mut t, 1), sl(&mut t, 2), sl(&mut t, 3));
                let (i, f, gt, o) = (t.sigmoid(gi), t.sigmoid(gf), t.tanh(gg), t.sigmoid(go));
                let fc = t.mul(f, c);
                let ig = t.mul(i, gt);
                c = t.add(fc, ig);
                let tc = t.tanh(c);
                h = t.mul(o, tc);
            }
        }
    }
    let lin = t.linear(h, vars[4]);
    let logits = t.add(lin, vars[5]);
    let loss = t.softmax_cross_entropy(logits, &p.labels).unwrap();
    t.backward(loss).unwrap();
    (
        t.scalar(loss),
        vars.iter().map(|&v| t.grad(v).to_vec()).collect(),
    )
}

/// The engine against the tape, for every checkpoint / chunk / block setting. Both are exact
/// up to rounding in `f64` and differ only in association order (GEMM blocking, sums over
/// steps and chunks) and in `tanh` (the cell's `2σ(2x) − 1` against the library's, a few ulps):
/// errors of order `T · 1e-16` on O(1) values, so 1e-12 is a wide margin that still catches
/// any wrong term (those are O(1e-2) or larger here).
#[test]
fn engine_matches_tape() {
    for cell in CELLS {
        for (seed, steps, batch) in [(1u64, 1usize, 1usize), (2, 7, 3), (3, 23, 5)] {
            let p = Problem::new(cell, seed, steps, batch);
            let (lt, gt) = tape_grads(&p);
            for (ck, chunks, block) in [
                (Checkpointing::None, 1, 16),
                (Checkpointing::None, 2, 3),
                (Checkpointing::Every(4), 3, 2),
                (Checkpointing::Every(1), 2, 1),
            ] {
                let (le, ge) = engine_grads(&p, &mut engine(ck, chunks, block));
                assert!((le - lt).abs() < 1e-12, "{cell:?}: loss {le} vs {lt}");
                for (k, (a, b)) in ge.tensors().iter().zip(&gt).enumerate() {
                    let d = rel(&a.data, b);
                    assert!(
                        d < 1e-12,
                        "{cell:?} T={steps} {ck:?} chunks {chunks} block {block}: tensor {k} ({}) off by {d:e}",
                        a.name
                    );
                }
            }
        }
    }
}

/// The engine's gradient against central differences of its own loss (the whole BPTT,
/// readout and cross-entropy), every parameter. Tolerance as in the step test.
#[test]
fn engine_matches_finite_differences() {
    for cell in CELLS {
        let mut p = Problem::new(cell, 9, 12, 3);
        let mut e = engine(Checkpointing::Every(5), 2, 4);
        let (_, g) = engine_grads(&p, &mut e);
        for k in 0..p.params.len() {
            let id = organics_grad::ParamId(k);
            let mut fd = Vec::new();
            for j in 0..p.params.data(id).len() {
                let v = p.params.data(id)[j];
                let mut at = |x: f64| {
                    p.params.data_mut(id)[j] = x;
                    e.evaluate(&p.spec, &p.params, &p.seq(), &p.labels)
                        .unwrap()
                        .loss
                };
                let (up, down) = (at(v + FD_STEP), at(v - FD_STEP));
                p.params.data_mut(id)[j] = v;
                fd.push((up - down) / (2.0 * FD_STEP));
            }
            let d = rel(g.data(id), &fd);
            assert!(d < 1e-8, "{cell:?}: {} off by {d:e}", p.params.get(id).name);
        }
    }
}

/// Checkpointing recomputes the same states with the same kernels, and every instruction set
/// gives the same values, so the gradients are bit-identical (for intervals that are multiples
/// of the weight-gradient block, which then groups the same steps into each GEMM).
#[test]
fn checkpointing_and_instruction_set_are_bit_identical() {
    for cell in CELLS {
        let p = Problem::new(cell, 4, 19, 4);
        let (_, reference) = engine_grads(&p, &mut engine(Checkpointing::None, 2, 5));
        for ck in [
            Checkpointing::Every(5),
            Checkpointing::Every(10),
            Checkpointing::Every(40),
        ] {
            let (_, g) = engine_grads(&p, &mut engine(ck, 2, 5));
            assert_eq!(g, reference, "{cell:?} {ck:?}");
        }
        let mut base = RecurrentBptt::new(BpttConfig {
            chunks: Chunks::Fixed(2),
            weight_grad_block: 5,
            instruction_set: InstructionSet::Baseline,
            ..BpttConfig::default()
        })
        .unwrap();
        let (_, g) = engine_grads(&p, &mut base);
        assert_eq!(g, reference, "{cell:?} baseline instruction set");
    }
}

/// Wrong layouts, batches and labels are errors naming what is wrong.
#[test]
fn bad_inputs_are_errors() {
    let p = Problem::new(RecurrentCell::Lstm, 5, 3, 2);
    let mut e = engine(Checkpointing::None, 1, 4);
    let mut g = p.params.zeros_like();
    let tanh_spec = RecurrentSpec {
        cell: RecurrentCell::Tanh,
        ..p.spec
    };
    assert!(matches!(
        e.loss_and_grad(&tanh_spec, &p.params, &p.seq(), &p.labels, &mut g),
        Err(GradError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        e.loss_and_grad(&p.spec, &p.params, &p.seq(), &[0, 9], &mut g),
        Err(GradError::LabelOutOfRange { .. })
    ));
    let short = SequenceBatch {
        data: &p.data[1..],
        ..p.seq()
    };
    assert!(matches!(
        e.loss_and_grad(&p.spec, &p.params, &short, &p.labels, &mut g),
        Err(GradError::WrongLength { .. })
    ));
    let zero = RecurrentSpec {
        hidden: 0,
        ..p.spec
    };
    assert!(matches!(
        e.evaluate(&zero, &p.params, &p.seq(), &p.labels),
        Err(GradError::InvalidConfig {
            field: "hidden",
            ..
        })
    ));
    assert!(
        RecurrentBptt::<f64>::new(BpttConfig {
            weight_grad_block: 0,
            ..BpttConfig::default()
        })
        .is_err()
    );
}
