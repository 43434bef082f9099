//! The RNN cell is explicit Euler applied to the circuit of organics-core (f64).
//!
//! organics-core's rectified vector field (`Model::Rectified`, paper Eq. 102) is
//!
//! ```text
//! τ_y ẏ = −y + b ⊙ z + (1 − √⌊a⌋) ⊙ (W_r ⌊y⌋)
//! τ_a ȧ = −a + b0² ⊙ σ² + W (⌊y⌋² ⊙ ⌊a⌋)
//! ```
//!
//! One explicit Euler step of step size `h = Δt` with `τ = Δt/δ` is `x + Δt f(x)`, i.e.
//! `x + δ ⊙ (τ f(x))`. The `paper` cell ([`CellConfig::NEURIPS`]) must equal it with `b = b1`,
//! `b0 = b0_t` (the gains of the current state), `σ`, `W_r = I + SN(W_r)`, `W = exp(log W)` and
//! `z = W_zx x`, every one of them computed here from the raw parameters, not taken from the
//! cell's prepared weights. With the gain rates on, `(y, a)` still match (the step is explicit,
//! so it uses the current gains) and `b0`, `b1` follow their own equation
//! `b' = b + δ_b (−b + sigmoid(W_bx x + W_by y + W_ba a))`. The `head` cell rectifies after
//! `W_r` (`⌊W_r y⌋`), which is not this circuit: the test asserts that the difference is large.
//!
//! **Tolerance.** Both sides evaluate the same formula in f64 in a different order (the cell
//! multiplies the bracket by `δ`; core divides by `τ = Δt/δ` and the test multiplies by `Δt`;
//! GEMM vs column-wise sums of `n = 7` terms). Each side is within a few ulps times the size of
//! the largest term (`|terms| ≤ 10` here: weights and states are `O(1)`, the `W_r`, `W` sums
//! have `n` terms), so `|difference| ≤ ~20 n · 10 · 2⁻⁵² ≈ 3e-13`; we accept `1e-12`. The
//! `head` mismatch is `δ_y (1 − √⌊a⌋) |⌊W_r y⌋ − W_r ⌊y⌋|`, of order `δ_y ≈ 0.02` for the states
//! here; we require it to exceed `1e-4`, eight orders of magnitude above the tolerance.

use faer::Mat;
use organics_core::params::{Circuit, CircuitParts, Model, Recurrence};
use organics_grad::OrganicsRnn;
use organics_grad::cell::{self, CellConfig, CellDims, CellWeights, StepScratch};
use organics_grad::rnn::{Prepared, RnnConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Agreement of the cell with the Euler step (module doc).
const TOL: f64 = 1e-12;
/// Smallest mismatch the `head` cell must show (module doc).
const HEAD_MISMATCH: f64 = 1e-4;
/// The Euler step size (any positive value: `τ = Δt/δ` makes `h/τ = δ`).
const DT: f64 = 0.5;

const N: usize = 7;
const M: usize = 3;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A model of `cell` with every raw parameter moved off its structured initialisation, an
/// input `x` and a state `[y | a | b0 | b1]` with both signs of `y` and `a`.
fn setup(cell: CellConfig, seed: u64) -> (OrganicsRnn<f64>, Vec<f64>, Vec<f64>) {
    let cfg = RnnConfig {
        hidden: N,
        input: M,
        classes: 10,
        cell,
    };
    let mut model = OrganicsRnn::<f64>::new(cfg, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    for t in model.params.tensors_mut() {
        for v in &mut t.data {
            *v += 0.3 * (rng.random::<f64>() - 0.5);
        }
    }
    let x: Vec<f64> = (0..M).map(|_| rng.random::<f64>()).collect();
    let mut state = Vec::with_capacity(4 * N);
    state.extend((0..N).map(|_| 2.0 * rng.random::<f64>() - 1.0)); // y
    state.extend((0..N).map(|_| 1.2 * rng.random::<f64>() - 0.2)); // a, some negative
    state.extend((0..2 * N).map(|_| 0.1 + 0.9 * rng.random::<f64>())); // b0, b1 > 0
    (model, x, state)
}

/// One cell step from `state`, with the model's prepared weights and, if `gains_frozen`, the
/// gain rates `δ_b0 = δ_b1 = 0`.
fn cell_step(model: &OrganicsRnn<f64>, x: &[f64], state: &[f64], gains_frozen: bool) -> Vec<f64> {
    let mut prep = Prepared::default();
    model.prepare(&mut prep);
    let mut dt = prep.dt.clone();
    if gains_frozen {
        dt[2 * N..].iter_mut().for_each(|d| *d = 0.0);
    }
    let w = CellWeights {
        dims: CellDims { n: N, m: M },
        wx: &prep.wx,
        wr: &prep.wr,
        wg: &prep.wg,
        w: &prep.w,
        dt: &dt,
        sigma2: &prep.sigma2,
    };
    let mut next = vec![0.0; 4 * N];
    let mut cache = vec![0.0; 4 * N];
    cell::forward_step(
        &model.config().cell,
        &w,
        1,
        x,
        state,
        &mut next,
        &mut cache,
        &mut StepScratch::default(),
    );
    next
}

fn mat_vec(a: &[f64], rows: usize, cols: usize, v: &[f64]) -> Vec<f64> {
    (0..rows)
        .map(|i| (0..cols).map(|j| a[i * cols + j] * v[j]).sum())
        .collect()
}

/// The Euler factors `δ = max · sigmoid(p)` from the raw time parameters.
fn euler_factors(model: &OrganicsRnn<f64>) -> [Vec<f64>; 4] {
    let (my, ma, mb) = model.config().cell.time_constants.maxima();
    let tau = model.ids().tau.expect("learned time constants");
    let maxima = [my, ma, mb, mb];
    std::array::from_fn(|k| {
        model
            .params
            .data(tau[k])
            .iter()
            .map(|&p| maxima[k] * sigmoid(p))
            .collect()
    })
}

/// organics-core's circuit for the `paper` cell at `state`, from the raw parameters.
fn paper_circuit(model: &OrganicsRnn<f64>, x: &[f64], state: &[f64]) -> Circuit {
    let ids = model.ids();
    let p = &model.params;
    // W_r = I + W_raw / σ, σ = uᵀ W_raw v (the spectral norm's estimate, as the cell uses it).
    let raw = p.data(ids.w_r);
    let sn = model.buffers.spectral.as_ref().expect("spectral norm");
    let sigma_wr: f64 =
        sn.u.iter()
            .zip(mat_vec(raw, N, N, &sn.v))
            .map(|(u, wv)| u * wv)
            .sum();
    let w_r = Mat::from_fn(N, N, |i, j| {
        raw[i * N + j] / sigma_wr + f64::from(u8::from(i == j))
    });
    let log_w = p.data(ids.log_w);
    let w = Mat::from_fn(N, N, |i, j| log_w[i * N + j].exp());
    circuit(model, state, w_r, w, mat_vec(p.data(ids.w_zx), N, M, x))
}

/// organics-core's rectified circuit with `τ = Δt/δ` from the model's time parameters, the
/// gains and `σ` of `state` and the model, and the given `W_r`, `W`, `z`.
fn circuit(
    model: &OrganicsRnn<f64>,
    state: &[f64],
    w_r: Mat<f64>,
    w: Mat<f64>,
    z: Vec<f64>,
) -> Circuit {
    let delta = euler_factors(model);
    Circuit::new(CircuitParts {
        model: Model::Rectified,
        tau_y: delta[0].iter().map(|d| DT / d).collect(),
        tau_a: delta[1].iter().map(|d| DT / d).collect(),
        b: state[3 * N..].to_vec(),
        b0: state[2 * N..3 * N].to_vec(),
        sigma: model.buffers.sigma.clone(),
        w_r: Recurrence::Dense(w_r),
        w,
        z,
    })
    .unwrap()
}

/// `[y; a] + Δt f([y; a])`.
fn euler_step(circuit: &Circuit, state: &[f64]) -> Vec<f64> {
    let x = &state[..2 * N];
    let mut f = vec![0.0; 2 * N];
    circuit.rhs(x, &mut f);
    x.iter().zip(&f).map(|(xi, fi)| xi + DT * fi).collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// A `paper` cell step from the state of `seed`, after checking that its `(y, a)` part is the
/// Euler step of the circuit: `(model, x, state, next state)`.
fn paper_step_checked(
    seed: u64,
    gains_frozen: bool,
) -> (OrganicsRnn<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (model, x, state) = setup(CellConfig::NEURIPS, seed);
    let next = cell_step(&model, &x, &state, gains_frozen);
    let euler = euler_step(&paper_circuit(&model, &x, &state), &state);
    let d = max_diff(&next[..2 * N], &euler);
    assert!(d < TOL, "seed {seed}: (y, a) differ by {d:e}");
    (model, x, state, next)
}

#[test]
fn paper_cell_with_frozen_gains_is_one_euler_step_of_the_circuit() {
    for seed in 0..4 {
        let (_, _, state, next) = paper_step_checked(seed, true);
        // δ_b = 0: the gains stay where they were, exactly.
        assert_eq!(&next[2 * N..], &state[2 * N..], "seed {seed}: gains moved");
        // The step is not trivial: the state moved by much more than the tolerance.
        assert!(max_diff(&next[..2 * N], &state[..2 * N]) > 1e-4);
    }
}

#[test]
fn paper_cell_with_gain_updates_keeps_the_circuit_step_for_y_and_a() {
    for seed in 0..4 {
        let (model, x, state, next) = paper_step_checked(seed, false);
        // b_k' = b_k + δ_bk (−b_k + sigmoid(W_bxk x + W_byk y + W_bak a)).
        let ids = model.ids();
        let p = &model.params;
        let delta = euler_factors(&model);
        let (y, a) = (&state[..N], &state[N..2 * N]);
        for (k, (wx, wy, wa)) in [
            (ids.w_bx0, ids.w_by0, ids.w_ba0),
            (ids.w_bx1, ids.w_by1, ids.w_ba1),
        ]
        .into_iter()
        .enumerate()
        {
            let drive: Vec<f64> = mat_vec(p.data(wx), N, M, &x)
                .iter()
                .zip(mat_vec(p.data(wy), N, N, y))
                .zip(mat_vec(p.data(wa), N, N, a))
                .map(|((u, v), w)| u + v + w)
                .collect();
            let b = &state[(2 + k) * N..(3 + k) * N];
            let want: Vec<f64> = (0..N)
                .map(|i| b[i] + delta[2 + k][i] * (-b[i] + sigmoid(drive[i])))
                .collect();
            let got = &next[(2 + k) * N..(3 + k) * N];
            let d = max_diff(got, &want);
            assert!(d < TOL, "seed {seed}: b{k} differs by {d:e}");
        }
    }
}

#[test]
fn head_cell_rectifies_after_w_r_and_is_not_this_circuit() {
    for seed in 0..4 {
        let (model, x, state) = setup(CellConfig::HEAD, seed);
        let next = cell_step(&model, &x, &state, true);
        // The closest circuit: z = ⌊W_zx x⌋ (the head cell's input), W_r as is (free),
        // W = clamp(exp(log W), 0, 1), so the only difference is ⌊W_r y⌋ against W_r ⌊y⌋.
        let ids = model.ids();
        let p = &model.params;
        let raw = p.data(ids.w_r);
        let log_w = p.data(ids.log_w);
        let circuit = circuit(
            &model,
            &state,
            Mat::from_fn(N, N, |i, j| raw[i * N + j]),
            Mat::from_fn(N, N, |i, j| log_w[i * N + j].exp().min(1.0)),
            mat_vec(p.data(ids.w_zx), N, M, &x)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect(),
        );
        let euler = euler_step(&circuit, &state);
        // a' agrees (it does not involve W_r); y' does not.
        assert!(max_diff(&next[N..2 * N], &euler[N..]) < TOL);
        let d = max_diff(&next[..N], &euler[..N]);
        assert!(
            d > HEAD_MISMATCH,
            "seed {seed}: the head cell matched the circuit's y step to {d:e}"
        );
    }
}
