//! The fused static engine ([`organics_grad::static_net`]), in `f64`:
//!
//! - its gradient against central finite differences of its own loss, every parameter, for
//!   both bodies and several chunk counts;
//! - against the same network recorded on the generic tape from primitive operations (an
//!   independent route: `linear`, `bias_act`, `row_l2_normalize`, `sigmoid`, `exp`, `sqrt`,
//!   `div`, `softmax_cross_entropy`, `mse`, each with its own VJP);
//! - the instruction set leaves every value bit-identical;
//! - bad layouts, batches and labels are typed errors.

mod common;

use common::{FD_STEP, rel};
use organics_grad::simd::InstructionSet;
use organics_grad::static_net::{StaticBody, StaticEngine, StaticSpec};
use organics_grad::tape::Activation;
use organics_grad::{GradError, ParamId, ParamSet, Tape, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CLOSED_FORM: StaticBody = StaticBody::ClosedForm {
    units: 5,
    sigma: 0.7,
    eps: 1e-3,
    norm_eps: 1e-12,
};
const RELU: StaticBody = StaticBody::Relu { units: 5 };

fn spec(body: StaticBody) -> StaticSpec {
    StaticSpec {
        input: 13,
        hidden: [9, 7],
        code: 4,
        body,
        classes: 3,
    }
}

/// A random network, batch and labels. Weights `U(±0.6)` keep the sigmoids away from
/// saturation, biases `U(±0.3)`; `log W ~ U(−1, 0)`; pixels in `[0, 1)`.
struct Problem {
    spec: StaticSpec,
    params: ParamSet<f64>,
    x: Vec<f64>,
    labels: Vec<usize>,
}

impl Problem {
    fn new(body: StaticBody, seed: u64, batch: usize) -> Self {
        let spec = spec(body);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = ParamSet::new();
        let log_w = match body {
            StaticBody::ClosedForm { .. } => Some(2 * organics_grad::static_net::LAYERS + 2),
            StaticBody::Relu { .. } => None,
        };
        for (k, (rows, cols)) in spec.shapes().into_iter().enumerate() {
            let (lo, hi) = if Some(k) == log_w {
                (-1.0, 0.0)
            } else if rows == 1 {
                (-0.3, 0.3)
            } else {
                (-0.6, 0.6)
            };
            let data = common::uniform(&mut rng, rows * cols, lo, hi);
            params.push(&format!("p{k}"), rows, cols, data);
        }
        let x = common::uniform(&mut rng, batch * spec.input, 0.0, 1.0);
        let labels = (0..batch)
            .map(|_| rng.random_range(0..spec.classes))
            .collect();
        Self {
            spec,
            params,
            x,
            labels,
        }
    }

    fn grads(&self, engine: &mut StaticEngine<f64>) -> (f64, ParamSet<f64>) {
        let mut g = self.params.zeros_like();
        let stats = engine
            .loss_and_grad(&self.spec, &self.params, &self.x, &self.labels, &mut g)
            .expect("loss and gradient");
        (stats.loss, g)
    }

    /// The same network on the tape, from primitive operations.
    fn tape(&self) -> (f64, Vec<Vec<f64>>) {
        let mut t = Tape::<f64>::new();
        let vars = self.params.record(&mut t);
        let v = |k: usize| vars[k];
        let batch = self.labels.len();
        let x = t.constant(batch, self.spec.input, &self.x);
        let acts = organics_grad::static_net::ACTIVATIONS;
        let (mut h, mut code) = (x, x);
        for (l, f) in acts.into_iter().enumerate() {
            let z = t.linear(h, v(2 * l));
            h = t.bias_act(z, v(2 * l + 1), f);
            if l == 2 {
                code = h;
            }
        }
        let recon = t.mse(h, x);
        let b = 2 * organics_grad::static_net::LAYERS;
        let (rates, ro) = match self.spec.body {
            StaticBody::ClosedForm {
                sigma,
                eps,
                norm_eps,
                ..
            } => {
                let p = t.linear(code, v(b));
                let z = t.row_l2_normalize(p, norm_eps);
                let g = t.linear(code, v(b + 1));
                let b1 = t.sigmoid(g);
                let c = t.mul(b1, z);
                let w = t.exp(v(b + 2));
                let b0 = t.sigmoid(v(b + 3));
                let sb0 = t.scale(b0, sigma);
                let s0 = t.square(sb0);
                let c2 = t.square(c);
                let wc = t.linear(c2, w);
                let a = t.add(s0, wc);
                let a = t.add_scalar(a, eps);
                let sa = t.sqrt(a);
                let y = t.div(c, sa);
                let ry = t.relu(y);
                (t.square(ry), b + 4)
            }
            StaticBody::Relu { .. } => {
                let z = t.linear(code, v(b));
                (t.bias_act(z, v(b + 1), Activation::Relu), b + 2)
            }
        };
        let z = t.linear(rates, v(ro));
        let logits = t.add(z, v(ro + 1));
        let ce = t
            .softmax_cross_entropy(logits, &self.labels)
            .expect("labels");
        let loss = t.add(ce, recon);
        let value = t.scalar(loss);
        t.backward(loss).expect("backward");
        let grads: Vec<Vec<f64>> = vars.iter().map(|&v: &Var| t.grad(v).to_vec()).collect();
        (value, grads)
    }
}

fn engine(chunks: usize) -> StaticEngine<f64> {
    StaticEngine::new(chunks, InstructionSet::Detect).expect("engine")
}

/// Central differences of the engine's own loss, every parameter. With `f64`, O(1) values
/// and `h = 1e-6`, truncation error is `O(h²) ≈ 1e-12` and rounding `O(ε/h) ≈ 1e-10`; the
/// relu kinks are crossed with probability of order `h` per entry. 1e-7 leaves room for
/// both, while a missing or wrong term changes a gradient by O(1e-3) or more here.
#[test]
fn engine_matches_finite_differences() {
    for body in [CLOSED_FORM, RELU] {
        for (seed, batch, chunks) in [(1u64, 1usize, 1usize), (2, 5, 2), (3, 7, 3)] {
            let mut p = Problem::new(body, seed, batch);
            let mut e = engine(chunks);
            let (_, g) = p.grads(&mut e);
            for k in 0..p.params.len() {
                let id = ParamId(k);
                let mut fd = Vec::new();
                for j in 0..p.params.data(id).len() {
                    let v = p.params.data(id)[j];
                    let mut at = |x: f64| {
                        p.params.data_mut(id)[j] = x;
                        e.evaluate(&p.spec, &p.params, &p.x, &p.labels)
                            .expect("evaluate")
                            .loss
                    };
                    let (up, down) = (at(v + FD_STEP), at(v - FD_STEP));
                    p.params.data_mut(id)[j] = v;
                    fd.push((up - down) / (2.0 * FD_STEP));
                }
                let d = rel(g.data(id), &fd);
                assert!(
                    d < 1e-7,
                    "{body:?} batch {batch} chunks {chunks}: tensor {k} off by {d:e}"
                );
            }
        }
    }
}

/// The engine against the tape. Both are exact up to rounding in `f64` and differ only in
/// association order (GEMM blocking, the weight gradients over the whole batch against the
/// tape's, the order of each VJP's products): errors of order `1e-15` on O(1) values, so
/// 1e-12 is a wide margin that still catches any wrong term. The engine's norm is a sum of
/// the same squares in another order: a relative difference of a few `ε ≈ 1e-16`.
#[test]
fn engine_matches_tape() {
    for body in [CLOSED_FORM, RELU] {
        for (seed, batch) in [(4u64, 1usize), (5, 6), (6, 11)] {
            let p = Problem::new(body, seed, batch);
            let (lt, gt) = p.tape();
            for chunks in [1, 2, 3, 20] {
                let mut e = engine(chunks);
                let (le, ge) = p.grads(&mut e);
                assert!((le - lt).abs() < 1e-12, "{body:?}: loss {le} vs {lt}");
                // The norm the engine forms as it writes, against the norm of what it wrote.
                let (n, reference) = (e.grad_norm(), ge.global_norm());
                assert!(
                    (n - reference).abs() <= 1e-14 * reference,
                    "{body:?}: norm {n} vs {reference}"
                );
                for (k, (a, b)) in ge.tensors().iter().zip(&gt).enumerate() {
                    let d = rel(&a.data, b);
                    assert!(
                        d < 1e-12,
                        "{body:?} batch {batch} chunks {chunks}: tensor {k} off by {d:e}"
                    );
                }
            }
        }
    }
}

/// Every instruction set computes the same values (organics-grad's simd module), so the
/// baseline loops give the same bits as the widest; and a second call reuses the buffers
/// without carrying anything over.
#[test]
fn instruction_set_and_reuse_are_bit_identical() {
    for body in [CLOSED_FORM, RELU] {
        let p = Problem::new(body, 7, 9);
        let mut e = engine(2);
        let (l1, g1) = p.grads(&mut e);
        // A call on another batch in between.
        let other = Problem::new(body, 8, 4);
        other.grads(&mut e);
        let (l2, g2) = p.grads(&mut e);
        assert_eq!((l1.to_bits(), &g1), (l2.to_bits(), &g2), "{body:?}: reuse");
        let mut base = StaticEngine::new(2, InstructionSet::Baseline).expect("engine");
        let (l3, g3) = p.grads(&mut base);
        assert_eq!(
            (l1.to_bits(), &g1),
            (l3.to_bits(), &g3),
            "{body:?}: baseline"
        );
    }
}

/// Wrong layouts, batches and labels are errors naming what is wrong.
#[test]
fn bad_inputs_are_errors() {
    let p = Problem::new(CLOSED_FORM, 9, 3);
    let mut e = engine(2);
    let mut g = p.params.zeros_like();
    // The ReLU body has two tensors fewer.
    let err = e
        .loss_and_grad(&spec(RELU), &p.params, &p.x, &p.labels, &mut g)
        .unwrap_err();
    assert!(matches!(err, GradError::UnknownParameter { .. }), "{err}");
    let mut wide = spec(CLOSED_FORM);
    wide.code = 6;
    let err = e
        .loss_and_grad(&wide, &p.params, &p.x, &p.labels, &mut g)
        .unwrap_err();
    assert!(
        matches!(err, GradError::ShapeMismatch { ref name, .. } if name == "p4"),
        "{err}"
    );
    let err = e
        .loss_and_grad(&p.spec, &p.params, &p.x[1..], &p.labels, &mut g)
        .unwrap_err();
    assert!(matches!(err, GradError::WrongLength { .. }), "{err}");
    let err = e
        .loss_and_grad(&p.spec, &p.params, &p.x, &[0, 1, 3], &mut g)
        .unwrap_err();
    assert!(
        matches!(
            err,
            GradError::LabelOutOfRange {
                label: 3,
                row: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = e
        .loss_and_grad(&p.spec, &p.params, &[], &[], &mut g)
        .unwrap_err();
    assert!(matches!(err, GradError::EmptyInput { .. }), "{err}");
    let mut short = ParamSet::new();
    short.push("only", 1, 1, vec![0.0]);
    let err = e
        .loss_and_grad(&p.spec, &p.params, &p.x, &p.labels, &mut short)
        .unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(matches!(
        StaticEngine::<f64>::new(0, InstructionSet::Detect),
        Err(GradError::InvalidConfig {
            field: "chunks",
            ..
        })
    ));
    // A non-finite input gives a non-finite loss: refused in training.
    let mut bad = p.x.clone();
    bad[0] = f64::NAN;
    let err = e
        .loss_and_grad(&p.spec, &p.params, &bad, &p.labels, &mut g)
        .unwrap_err();
    assert!(matches!(err, GradError::NonFinite { .. }), "{err}");
}
