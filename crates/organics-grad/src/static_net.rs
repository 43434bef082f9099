//! The static-MNIST networks of Table 1 without a tape: [`StaticSpec`] and its engine
//! [`StaticEngine`], which writes the loss gradient of a batch straight into the caller's
//! gradient buffer.
//!
//! **Model** (docs/model.md#static-fixed-point-layer). An input `x ∈ ℝ^m` passes six affine
//! layers `A_ℓ = f_ℓ(A_{ℓ−1} W_ℓᵀ + b_ℓ)` (`A_0 = x`; widths `m → h_1 → h_2 → k → h_2 → h_1 → m`;
//! `f = relu, relu, σ, relu, relu, σ`): `A_3` is the code and `A_6 = x̂` the reconstruction.
//! The body maps the code to rates `r ∈ ℝ^n`:
//!
//! - [`StaticBody::ClosedForm`], the fixed-point ORGaNICs layer with `W_r = I`
//!   (docs/model.md#closed-form-steady-state):
//!   `p = A_3 W_zxᵀ`, `z = p / max(‖p‖, ε_z)`, `B_1 = σ(A_3 W_bxᵀ)`, `c = B_1 ⊙ z`,
//!   `W = e^{log W}`, `s_0 = (σ_0 σ(b_0))²`, `a = s_0 + (c ⊙ c) Wᵀ + ε`, `y = c / √a`,
//!   `r = ⌊y⌋²`;
//! - [`StaticBody::Relu`], the MLP baseline's hidden layer: `r = relu(A_3 W_hᵀ + b_h)`.
//!
//! The readout is `logits = r W_oᵀ + b_o` and the loss of a batch `B`
//!
//! $$ L = \frac{1}{|B|}\sum_{b\in B}\mathrm{CE}(\text{logits}_b, \ell_b)
//!      + \frac{1}{|B|\,m}\sum_{b\in B}\lVert x_b - \hat x_b\rVert^2 . $$
//!
//! **Parameters** by position in a [`ParamSet`] ([`StaticSpec::shapes`], any names): the six
//! layers' `W_ℓ` (`out x in`) and `b_ℓ` (`1 x out`) in turn; then `W_zx`, `W_bx` (`n x k`),
//! `log W` (`n x n`), `b_0` (`1 x n`) for the closed form, or `W_h` (`n x k`), `b_h` (`1 x n`)
//! for the ReLU body; then `W_o` (`classes x n`) and `b_o` (`1 x classes`). These are the
//! trainable tensors of organics-train's static models in their registration order.
//!
//! **VJP.** With `Z̄_ℓ` the cotangent of layer `ℓ`'s pre-activation,
//! `Ā_{ℓ−1} = Z̄_ℓ W_ℓ`, `Z̄_{ℓ−1} = Ā_{ℓ−1} ⊙ f'_{ℓ−1}` (`relu' = H(A)`, `σ' = A (1 − A)`),
//! `W̄_ℓ = Z̄_ℓᵀ A_{ℓ−1}`, `b̄_ℓ = Σ_rows Z̄_ℓ`; the top layer starts from
//! `Z̄_6 = 2 (x̂ − x) ⊙ x̂ (1 − x̂) / (|B| m)` and the code's cotangent is the decoder's plus
//! the body's. The readout starts from `logits̄ = (softmax − onehot) / |B|`, and
//! `r̄ = logits̄ W_o`. The closed form's, row by row:
//!
//! - `ȳ = 2 ⌊y⌋ r̄`, `c̄ = ȳ / √a`, `ā = −ȳ y / (2a)`, `ū = ā W` (`u = c ⊙ c`), `c̄ += 2 c ⊙ ū`;
//! - `B̄_1 = c̄ ⊙ z`, `z̄ = c̄ ⊙ B_1`, `ḡ = B̄_1 ⊙ B_1 (1 − B_1)`;
//! - `p̄ = (z̄ − z (z · z̄)) / ‖p‖` (or `z̄ / ε_z` where `‖p‖ ≤ ε_z`);
//! - `Ā_3 += p̄ W_zx + ḡ W_bx`; over the batch, `W̄_zx = p̄ᵀ A_3`, `W̄_bx = ḡᵀ A_3`,
//!   `log W̄ = (āᵀ u) ⊙ W`, `b̄_0 = 2 σ_0 √s_0 ⊙ σ'(b_0) ⊙ Σ_rows ā`.
//!
//! **Engine.** The batch is cut into `chunks` row blocks (rows `⌊iB/c⌋ .. ⌊(i+1)B/c⌋`) and
//! a step makes two parallel passes, one rayon task per chunk in each:
//!
//! 1. the *first pass*: each task runs its rows forward, through both losses, back through
//!    the readout and the body, and down the affine layers' input cotangents
//!    (`Ā_{ℓ−1} = Z̄_ℓ W_ℓ`, then `⊙ f'` in place), all of it row-local, with no
//!    synchronisation;
//! 2. the *weight pass*: task `i` forms its share of every affine layer's output units over
//!    the whole batch (`W̄_ℓ[o] = Z̄_ℓ[:, o]ᵀ A_{ℓ−1}`, `b̄_ℓ[o]`) and every `T`-th of the
//!    body's and readout's tensors, straight into the caller's gradient, and adds up the
//!    squares of what it wrote ([`StaticEngine::grad_norm`]).
//!
//! So the weights are read where they lie, no chunk keeps a gradient of its own and nothing
//! is summed afterwards: what a tape's step spends on parameter copies and on summing the
//! chunks' gradients (docs/performance.md, "Static step: the engine without a tape"). Every
//! buffer is the whole batch's and is reused across calls. Results are bitwise reproducible
//! for a fixed chunk count.

use crate::bptt::{BatchStats, even_ranges};
use crate::error::GradError;
use crate::linalg::{Beta, Trans, View, ViewMut, add_assign, gemm};
use crate::params::{ParamId, ParamSet, Tensor, sum_of_squares};
use crate::scalar::Scalar;
use crate::simd::{InstructionSet, simd_kernel};
use crate::tape::Activation;
use rayon::prelude::*;

/// Affine layers of the autoencoder.
pub const LAYERS: usize = 6;

/// The activations `f_1 … f_6` of the autoencoder's layers.
pub const ACTIVATIONS: [Activation; LAYERS] = [
    Activation::Relu,
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Relu,
    Activation::Relu,
    Activation::Sigmoid,
];

/// The hidden part between the code and the readout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StaticBody {
    /// The fixed-point ORGaNICs layer with `W_r = I` in closed form.
    ClosedForm {
        /// Units `n`.
        units: usize,
        /// Semi-saturation constant `σ_0`.
        sigma: f64,
        /// `ε` added to `a`.
        eps: f64,
        /// `ε_z` of the row normalisation of `z`.
        norm_eps: f64,
    },
    /// A ReLU layer of `units` units (the MLP baseline).
    Relu {
        /// Units `n`.
        units: usize,
    },
}

impl StaticBody {
    /// Units `n`.
    #[must_use]
    pub const fn units(&self) -> usize {
        match *self {
            Self::ClosedForm { units, .. } | Self::Relu { units } => units,
        }
    }
}

/// Sizes of a static network (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StaticSpec {
    /// Input width `m`.
    pub input: usize,
    /// Hidden widths `h_1`, `h_2` of the encoder (reversed in the decoder).
    pub hidden: [usize; 2],
    /// Code width `k`.
    pub code: usize,
    /// The body.
    pub body: StaticBody,
    /// Classes of the readout.
    pub classes: usize,
}

/// Position of the readout weight: after the six layers' and the body's tensors.
const fn readout(body: &StaticBody) -> usize {
    2 * LAYERS
        + match body {
            StaticBody::ClosedForm { .. } => 4,
            StaticBody::Relu { .. } => 2,
        }
}

impl StaticSpec {
    /// `(in, out)` of the six affine layers.
    #[must_use]
    pub fn layer_widths(&self) -> [(usize, usize); LAYERS] {
        let [h1, h2] = self.hidden;
        let (m, k) = (self.input, self.code);
        [(m, h1), (h1, h2), (h2, k), (k, h2), (h2, h1), (h1, m)]
    }

    /// `(rows, cols)` of every parameter, in order (module docs).
    #[must_use]
    pub fn shapes(&self) -> Vec<(usize, usize)> {
        let mut s: Vec<(usize, usize)> = self
            .layer_widths()
            .iter()
            .flat_map(|&(i, o)| [(o, i), (1, o)])
            .collect();
        let (n, k) = (self.body.units(), self.code);
        match self.body {
            StaticBody::ClosedForm { .. } => s.extend([(n, k), (n, k), (n, n), (1, n)]),
            StaticBody::Relu { .. } => s.extend([(n, k), (1, n)]),
        }
        s.extend([(self.classes, n), (1, self.classes)]);
        s
    }

    /// Checks the sizes and the layout of `params` ([`Self::shapes`]).
    ///
    /// # Errors
    /// [`GradError::InvalidConfig`] for a zero size, [`GradError::UnknownParameter`] for a
    /// wrong tensor count, [`GradError::ShapeMismatch`] naming the first misshapen tensor.
    pub fn check_params<S: Scalar>(&self, params: &ParamSet<S>) -> Result<(), GradError> {
        let [h1, h2] = self.hidden;
        crate::params::check_sizes(&[
            ("input", self.input),
            ("hidden", h1),
            ("hidden", h2),
            ("code", self.code),
            ("units", self.body.units()),
            ("classes", self.classes),
        ])?;
        params.check_shapes(
            &self.shapes(),
            "the static network",
            "six affine layers' weights and biases, the body's tensors, the readout's weight \
             and bias",
        )
    }

    /// Checks a `batch x input` row-major input and its labels.
    fn check_batch<S: Scalar>(&self, x: &[S], labels: &[usize]) -> Result<usize, GradError> {
        let batch = labels.len();
        if batch == 0 {
            return Err(GradError::EmptyInput { what: "batch" });
        }
        if x.len() != batch * self.input {
            return Err(GradError::WrongLength {
                what: "inputs (batch x input, one row per label)",
                expected: batch * self.input,
                found: x.len(),
            });
        }
        crate::loss::check_labels(labels, self.classes)?;
        Ok(batch)
    }
}

/// The whole batch's values of the body, each `batch x n` (`norms`: `batch`).
#[derive(Debug, Default)]
struct BodyBufs<S> {
    /// Closed form: `z`; ReLU: unused.
    z: Vec<S>,
    /// `‖p‖` per row.
    norms: Vec<S>,
    /// `B_1`.
    b1: Vec<S>,
    /// `c`.
    c: Vec<S>,
    /// `u = c ⊙ c`.
    u: Vec<S>,
    /// `a`.
    a: Vec<S>,
    /// `y`.
    y: Vec<S>,
    /// The rates `r` (ReLU: the hidden layer's output).
    rates: Vec<S>,
    /// `r̄`, then (closed form) `ū`.
    g_rates: Vec<S>,
    /// `ā`.
    g_a: Vec<S>,
    /// `p̄` (ReLU: the pre-activation's cotangent).
    g_p: Vec<S>,
    /// `ḡ`.
    g_g: Vec<S>,
}

/// The training engine of a [`StaticSpec`] network: every buffer of a batch, reused across
/// calls (module docs).
#[derive(Debug)]
pub struct StaticEngine<S: Scalar> {
    chunks: usize,
    isa: InstructionSet,
    /// `A_1 … A_6`, each `batch x out_ℓ`.
    acts: [Vec<S>; LAYERS],
    /// `Z̄_1 … Z̄_6`, each `batch x out_ℓ` (`Z̄_3` first holds the body's share of `Ā_3`).
    g_acts: [Vec<S>; LAYERS],
    body: BodyBufs<S>,
    logits: Vec<S>,
    probs: Vec<S>,
    g_logits: Vec<S>,
    /// The global L2 norm of the last gradient.
    grad_norm: f64,
    /// `W = e^{log W}`, `σ(b_0)` and `s_0` of the step.
    w: Vec<S>,
    b0: Vec<S>,
    s0: Vec<S>,
}

/// One chunk's rows of every whole-batch buffer the first pass writes.
struct ChunkRows<'a, S> {
    x: &'a [S],
    labels: &'a [usize],
    acts: [&'a mut [S]; LAYERS],
    g_acts: [&'a mut [S]; LAYERS],
    z: &'a mut [S],
    norms: &'a mut [S],
    b1: &'a mut [S],
    c: &'a mut [S],
    u: &'a mut [S],
    a: &'a mut [S],
    y: &'a mut [S],
    rates: &'a mut [S],
    g_rates: &'a mut [S],
    g_a: &'a mut [S],
    g_p: &'a mut [S],
    g_g: &'a mut [S],
    logits: &'a mut [S],
    probs: &'a mut [S],
    g_logits: &'a mut [S],
}

/// What every task of the first pass reads.
struct Shared<'a, S: Scalar> {
    spec: StaticSpec,
    isa: InstructionSet,
    params: &'a ParamSet<S>,
    batch: usize,
    train: bool,
    w: &'a [S],
    s0: &'a [S],
}

/// One chunk's sums: cross-entropy, squared reconstruction error, correct rows.
#[derive(Debug, Clone, Copy, Default)]
struct ChunkSums {
    xent: f64,
    recon: f64,
    correct: usize,
}

/// Cuts `buf` (rows of `width`) into the row ranges `ranges`, in order.
fn split_rows<'a, S>(
    buf: &'a mut [S],
    width: usize,
    ranges: &[(usize, usize)],
) -> std::vec::IntoIter<&'a mut [S]> {
    let mut rest = buf;
    let mut parts = Vec::with_capacity(ranges.len());
    for &(_, rows) in ranges {
        let (head, tail) = rest.split_at_mut(rows * width);
        parts.push(head);
        rest = tail;
    }
    parts.into_iter()
}

/// The next chunk's part of a buffer cut by [`split_rows`].
fn part<'a, S>(parts: &mut std::vec::IntoIter<&'a mut [S]>) -> &'a mut [S] {
    parts.next().expect("one part per chunk")
}

fn resize<S: Scalar>(v: &mut Vec<S>, len: usize) {
    v.resize(len, S::ZERO);
}

impl<S: Scalar> StaticEngine<S> {
    /// An engine that cuts batches into `chunks` row blocks, its element-wise loops compiled
    /// for `isa`.
    ///
    /// # Errors
    /// [`GradError::InvalidConfig`] for `chunks = 0`.
    pub fn new(chunks: usize, isa: InstructionSet) -> Result<Self, GradError> {
        crate::params::check_sizes(&[("chunks", chunks)])?;
        Ok(Self {
            chunks,
            isa,
            acts: Default::default(),
            g_acts: Default::default(),
            body: BodyBufs::default(),
            logits: Vec::new(),
            probs: Vec::new(),
            g_logits: Vec::new(),
            grad_norm: f64::NAN,
            w: Vec::new(),
            b0: Vec::new(),
            s0: Vec::new(),
        })
    }

    /// One forward and backward pass on the `batch x input` row-major `x` with class
    /// `labels`: writes `∂L/∂θ` into `grads` (every tensor overwritten; the layout of
    /// `params`).
    ///
    /// # Errors
    /// A bad layout or batch ([`StaticSpec::check_params`]; [`GradError::EmptyInput`],
    /// [`GradError::WrongLength`], [`GradError::LabelOutOfRange`]), or
    /// [`GradError::NonFinite`] if the loss is not finite.
    pub fn loss_and_grad(
        &mut self,
        spec: &StaticSpec,
        params: &ParamSet<S>,
        x: &[S],
        labels: &[usize],
        grads: &mut ParamSet<S>,
    ) -> Result<BatchStats, GradError> {
        spec.check_params(params)?;
        params.check_same_layout(grads)?;
        spec.check_batch(x, labels)?;
        let stats = self.first_pass(spec, params, x, labels, true);
        if !stats.loss.is_finite() {
            return Err(GradError::NonFinite {
                what: "training loss",
                value: stats.loss,
            });
        }
        self.grad_norm = self.weight_pass(spec, x, grads);
        Ok(stats)
    }

    /// The global L2 norm of the gradient the last [`Self::loss_and_grad`] wrote (`NaN`
    /// before the first), formed as each part was written, while in cache: each task's
    /// share of a weight and bias, summed in `f64` in a fixed order (so bitwise reproducible
    /// for a fixed chunk count; equal to [`ParamSet::global_norm`] up to the order of the
    /// sum).
    #[must_use]
    pub fn grad_norm(&self) -> f64 {
        self.grad_norm
    }

    /// Loss and accuracy of a batch (forward only).
    ///
    /// # Errors
    /// As [`Self::loss_and_grad`], but for a non-finite loss, which is returned.
    pub fn evaluate(
        &mut self,
        spec: &StaticSpec,
        params: &ParamSet<S>,
        x: &[S],
        labels: &[usize],
    ) -> Result<BatchStats, GradError> {
        spec.check_params(params)?;
        spec.check_batch(x, labels)?;
        Ok(self.first_pass(spec, params, x, labels, false))
    }

    /// Sizes the buffers for `batch` rows and forms the body's per-step constants.
    fn prepare(&mut self, spec: &StaticSpec, params: &ParamSet<S>, batch: usize) {
        for ((a, g), &(_, o)) in self
            .acts
            .iter_mut()
            .zip(&mut self.g_acts)
            .zip(&spec.layer_widths())
        {
            resize(a, batch * o);
            resize(g, batch * o);
        }
        let n = spec.body.units();
        let b = &mut self.body;
        for v in [
            &mut b.z,
            &mut b.b1,
            &mut b.c,
            &mut b.u,
            &mut b.a,
            &mut b.y,
            &mut b.rates,
            &mut b.g_rates,
            &mut b.g_a,
            &mut b.g_p,
            &mut b.g_g,
        ] {
            resize(v, batch * n);
        }
        resize(&mut b.norms, batch);
        for v in [&mut self.logits, &mut self.probs, &mut self.g_logits] {
            resize(v, batch * spec.classes);
        }
        if let StaticBody::ClosedForm { sigma, .. } = spec.body {
            let base = 2 * LAYERS;
            self.w.clear();
            self.w
                .extend(params.data(ParamId(base + 2)).iter().map(|&v| v.exp()));
            self.b0.clear();
            self.b0
                .extend(params.data(ParamId(base + 3)).iter().map(|&v| v.sigmoid()));
            let sigma = S::from_f64(sigma);
            self.s0.clear();
            self.s0.extend(self.b0.iter().map(|&b| {
                let sb = sigma * b;
                sb * sb
            }));
        }
    }

    /// The first pass (module docs): every chunk forward through both losses and, in
    /// training, back through the readout, the body and the affine layers' input cotangents,
    /// one task each; the batch's mean loss and correct count.
    fn first_pass(
        &mut self,
        spec: &StaticSpec,
        params: &ParamSet<S>,
        x: &[S],
        labels: &[usize],
        train: bool,
    ) -> BatchStats {
        let batch = labels.len();
        self.prepare(spec, params, batch);
        let ranges = even_ranges(batch, self.chunks.min(batch));
        let widths = spec.layer_widths();
        let (n, cl) = (spec.body.units(), spec.classes);
        let mut acts: Vec<_> = self
            .acts
            .iter_mut()
            .zip(&widths)
            .map(|(a, &(_, o))| split_rows(a, o, &ranges))
            .collect();
        let mut g_acts: Vec<_> = self
            .g_acts
            .iter_mut()
            .zip(&widths)
            .map(|(g, &(_, o))| split_rows(g, o, &ranges))
            .collect();
        let b = &mut self.body;
        let mut z = split_rows(&mut b.z, n, &ranges);
        let mut norms = split_rows(&mut b.norms, 1, &ranges);
        let mut b1 = split_rows(&mut b.b1, n, &ranges);
        let mut c = split_rows(&mut b.c, n, &ranges);
        let mut u = split_rows(&mut b.u, n, &ranges);
        let mut a = split_rows(&mut b.a, n, &ranges);
        let mut y = split_rows(&mut b.y, n, &ranges);
        let mut rates = split_rows(&mut b.rates, n, &ranges);
        let mut g_rates = split_rows(&mut b.g_rates, n, &ranges);
        let mut g_a = split_rows(&mut b.g_a, n, &ranges);
        let mut g_p = split_rows(&mut b.g_p, n, &ranges);
        let mut g_g = split_rows(&mut b.g_g, n, &ranges);
        let mut logits = split_rows(&mut self.logits, cl, &ranges);
        let mut probs = split_rows(&mut self.probs, cl, &ranges);
        let mut g_logits = split_rows(&mut self.g_logits, cl, &ranges);
        let mut tasks = Vec::with_capacity(ranges.len());
        for &(start, rows) in &ranges {
            tasks.push(ChunkRows {
                x: &x[start * spec.input..(start + rows) * spec.input],
                labels: &labels[start..start + rows],
                acts: std::array::from_fn(|l| part(&mut acts[l])),
                g_acts: std::array::from_fn(|l| part(&mut g_acts[l])),
                z: part(&mut z),
                norms: part(&mut norms),
                b1: part(&mut b1),
                c: part(&mut c),
                u: part(&mut u),
                a: part(&mut a),
                y: part(&mut y),
                rates: part(&mut rates),
                g_rates: part(&mut g_rates),
                g_a: part(&mut g_a),
                g_p: part(&mut g_p),
                g_g: part(&mut g_g),
                logits: part(&mut logits),
                probs: part(&mut probs),
                g_logits: part(&mut g_logits),
            });
        }
        let shared = Shared {
            spec: *spec,
            isa: self.isa,
            params,
            batch,
            train,
            w: &self.w,
            s0: &self.s0,
        };
        let sums: Vec<ChunkSums> = if tasks.len() == 1 {
            tasks.into_iter().map(|t| chunk_pass(&shared, t)).collect()
        } else {
            tasks
                .into_par_iter()
                .map(|t| chunk_pass(&shared, t))
                .collect()
        };
        let (mut xent, mut recon, mut correct) = (0.0, 0.0, 0);
        for s in &sums {
            xent += s.xent;
            recon += s.recon;
            correct += s.correct;
        }
        BatchStats {
            loss: xent / batch as f64 + recon / (batch * spec.input) as f64,
            correct,
            batch,
        }
    }

    /// The weight pass (module docs): every weight and bias cotangent over the whole batch,
    /// one task per chunk, each with its share of every affine layer's output units and
    /// every `T`-th of the body's and readout's tensors. Returns the gradient's global norm:
    /// the squares of what each task wrote, summed in task order.
    fn weight_pass(&self, spec: &StaticSpec, x: &[S], grads: &mut ParamSet<S>) -> f64 {
        let batch = x.len() / spec.input;
        let tasks = self.chunks.min(batch);
        let widths = spec.layer_widths();
        let mut shares: Vec<WeightTask<'_, S>> =
            (0..tasks).map(|_| WeightTask::default()).collect();
        let (layer_ts, head_ts) = grads.tensors_mut().split_at_mut(2 * LAYERS);
        for (l, pair) in layer_ts.chunks_exact_mut(2).enumerate() {
            let (inputs, out) = widths[l];
            let units = even_ranges(out, tasks);
            let (w, b) = pair.split_at_mut(1);
            let mut g_w = split_rows(&mut w[0].data, inputs, &units);
            let mut g_b = split_rows(&mut b[0].data, 1, &units);
            for (share, &u) in shares.iter_mut().zip(&units) {
                share.layers.push(LayerShare {
                    l,
                    units: u,
                    g_w: part(&mut g_w),
                    g_b: part(&mut g_b),
                });
            }
        }
        for (k, t) in head_ts.iter_mut().enumerate() {
            shares[k % tasks].head.push((k, t));
        }
        let run = |share: WeightTask<'_, S>| -> Vec<f64> {
            let mut sums = Vec::with_capacity(2 * share.layers.len() + share.head.len());
            for LayerShare {
                l,
                units: (u0, un),
                g_w,
                g_b,
            } in share.layers
            {
                let (inputs, out) = widths[l];
                let g_out = &self.g_acts[l];
                let input: &[S] = if l == 0 { x } else { &self.acts[l - 1] };
                if un > 0 {
                    gemm(
                        ViewMut::new(&mut *g_w, un, inputs),
                        Beta::Overwrite,
                        View::strided(&g_out[u0..], batch, un, out),
                        Trans::Yes,
                        View::new(input, batch, inputs),
                        Trans::No,
                    );
                    g_b.fill(S::ZERO);
                    for row in g_out.chunks_exact(out) {
                        add_assign(g_b, &row[u0..u0 + un]);
                    }
                }
                sums.push(sum_of_squares(g_w));
                sums.push(sum_of_squares(g_b));
            }
            for (k, t) in share.head {
                self.head_grad(spec, batch, k, t);
                sums.push(sum_of_squares(&t.data));
            }
            sums
        };
        let sums: Vec<Vec<f64>> = if shares.len() == 1 {
            shares.into_iter().map(run).collect()
        } else {
            shares.into_par_iter().map(run).collect()
        };
        sums.into_iter().flatten().sum::<f64>().sqrt()
    }

    /// The cotangent of the body's or readout's tensor `k` (counted from the body's first)
    /// over the whole batch (module docs).
    fn head_grad(&self, spec: &StaticSpec, batch: usize, k: usize, t: &mut Tensor<S>) {
        let (n, k_code, cl) = (spec.body.units(), spec.code, spec.classes);
        let code = View::new(&self.acts[2][..], batch, k_code);
        let b = &self.body;
        let g_logits = View::new(&self.g_logits[..], batch, cl);
        let rates = View::new(&b.rates[..], batch, n);
        match (spec.body, k) {
            (StaticBody::ClosedForm { .. } | StaticBody::Relu { .. }, 0) => {
                weight_grad(t, View::new(&b.g_p, batch, n), code);
            }
            (StaticBody::ClosedForm { .. }, 1) => {
                weight_grad(t, View::new(&b.g_g, batch, n), code);
            }
            (StaticBody::ClosedForm { .. }, 2) => {
                weight_grad(t, View::new(&b.g_a, batch, n), View::new(&b.u, batch, n));
                for (g, &w) in t.data.iter_mut().zip(&self.w) {
                    *g *= w;
                }
            }
            (StaticBody::ClosedForm { sigma, .. }, 3) => {
                col_sums(&b.g_a, n, &mut t.data);
                let two_sigma = S::from_f64(2.0 * sigma);
                for ((g, &b0), &s0) in t.data.iter_mut().zip(&self.b0).zip(&self.s0) {
                    *g = *g * two_sigma * s0.sqrt() * b0 * (S::ONE - b0);
                }
            }
            (StaticBody::Relu { .. }, 1) => col_sums(&b.g_p, n, &mut t.data),
            (StaticBody::ClosedForm { .. }, 4) | (StaticBody::Relu { .. }, 2) => {
                weight_grad(t, g_logits, rates);
            }
            _ => col_sums(&self.g_logits, cl, &mut t.data),
        }
    }
}

/// One task of the weight pass: per affine layer `(l, (first unit, units), W̄ rows, b̄ part)`,
/// and the body's and readout's tensors `(k, tensor)` it forms.
struct WeightTask<'a, S: Scalar> {
    layers: Vec<LayerShare<'a, S>>,
    head: Vec<(usize, &'a mut Tensor<S>)>,
}

/// A task's share of affine layer `l`: its output units (`start, len`) and their rows of
/// `W̄_l` and entries of `b̄_l`.
struct LayerShare<'a, S> {
    l: usize,
    units: (usize, usize),
    g_w: &'a mut [S],
    g_b: &'a mut [S],
}

impl<S: Scalar> Default for WeightTask<'_, S> {
    fn default() -> Self {
        Self {
            layers: Vec::new(),
            head: Vec::new(),
        }
    }
}

/// How a row block's product meets a weight `W` stored `out x in`.
#[derive(Clone, Copy)]
enum Through {
    /// `A Wᵀ` for `A` of `rows x in` (a layer's forward map).
    Transposed,
    /// `A W` for `A` of `rows x out` (its input cotangent).
    AsStored,
}

/// `C (=|+=) A Wᵀ` or `A W` (see [`Through`]) on `rows` rows, for `W` stored `out x in`.
fn by_weight<S: Scalar>(
    c: &mut [S],
    beta: Beta,
    a: &[S],
    rows: usize,
    w: &[S],
    (out, inputs): (usize, usize),
    through: Through,
) {
    let (a_cols, c_cols, t) = match through {
        Through::Transposed => (inputs, out, Trans::Yes),
        Through::AsStored => (out, inputs, Trans::No),
    };
    gemm(
        ViewMut::new(c, rows, c_cols),
        beta,
        View::new(a, rows, a_cols),
        Trans::No,
        View::new(w, out, inputs),
        t,
    );
}

/// `grad = gᵀ a` over the batch (`g`: `batch x out`, `a`: `batch x in`).
fn weight_grad<S: Scalar>(grad: &mut Tensor<S>, g: View<'_, S>, a: View<'_, S>) {
    let (rows, cols) = (grad.rows, grad.cols);
    gemm(
        ViewMut::new(&mut grad.data, rows, cols),
        Beta::Overwrite,
        g,
        Trans::Yes,
        a,
        Trans::No,
    );
}

/// `out_j = Σ_rows m_{ij}` for a row-major `m` of `width` columns.
fn col_sums<S: Scalar>(m: &[S], width: usize, out: &mut [S]) {
    out.fill(S::ZERO);
    for row in m.chunks_exact(width) {
        add_assign(out, row);
    }
}

/// One chunk's first pass (module docs): forward and losses, and in training the cotangents
/// of the readout, the body and every affine layer's pre-activation on the chunk's rows.
fn chunk_pass<S: Scalar>(sh: &Shared<'_, S>, t: ChunkRows<'_, S>) -> ChunkSums {
    let spec = &sh.spec;
    let p = sh.params;
    let rows = t.labels.len();
    let widths = spec.layer_widths();
    let ChunkRows {
        x,
        labels,
        mut acts,
        mut g_acts,
        z,
        norms,
        b1,
        c,
        u,
        a,
        y,
        rates,
        g_rates,
        g_a,
        g_p,
        g_g,
        logits,
        probs,
        g_logits,
    } = t;
    for l in 0..LAYERS {
        let (i, o) = widths[l];
        let (lo, hi) = acts.split_at_mut(l);
        let input: &[S] = if l == 0 { x } else { lo[l - 1] };
        let h = &mut *hi[0];
        by_weight(
            h,
            Beta::Overwrite,
            input,
            rows,
            p.data(ParamId(2 * l)),
            (o, i),
            Through::Transposed,
        );
        sh.isa.dispatch(BiasActInPlace {
            f: ACTIVATIONS[l],
            b: p.data(ParamId(2 * l + 1)),
            h,
        });
    }
    let (code, xhat): (&[S], &[S]) = (&*acts[2], &*acts[5]);
    let [.., g_code, _, _, g_top] = &mut g_acts;
    // The reconstruction error, and Z̄_6.
    let mut lanes = [S::ZERO; RECON_LANES];
    let scale = S::from_f64(2.0 / (sh.batch * spec.input) as f64);
    sh.isa.dispatch(Recon {
        x,
        xhat,
        scale,
        train: sh.train,
        g: g_top,
        lanes: &mut lanes,
    });
    let recon: f64 = lanes.iter().map(|v| v.to_f64()).sum();
    let (n, k, cl) = (spec.body.units(), spec.code, spec.classes);
    let base = 2 * LAYERS;
    match spec.body {
        StaticBody::ClosedForm { eps, norm_eps, .. } => closed_form_forward(
            sh,
            code,
            rows,
            [
                &mut *z,
                &mut *norms,
                &mut *b1,
                &mut *c,
                &mut *u,
                &mut *a,
                &mut *y,
                &mut *rates,
            ],
            (S::from_f64(eps), S::from_f64(norm_eps)),
        ),
        StaticBody::Relu { .. } => {
            by_weight(
                rates,
                Beta::Overwrite,
                code,
                rows,
                p.data(ParamId(base)),
                (n, k),
                Through::Transposed,
            );
            sh.isa.dispatch(BiasActInPlace {
                f: Activation::Relu,
                b: p.data(ParamId(base + 1)),
                h: rates,
            });
        }
    }
    let ro = readout(&spec.body);
    by_weight(
        logits,
        Beta::Overwrite,
        rates,
        rows,
        p.data(ParamId(ro)),
        (cl, n),
        Through::Transposed,
    );
    let bias = p.data(ParamId(ro + 1));
    for row in logits.chunks_exact_mut(cl) {
        add_assign(row, bias);
    }
    let (xent, correct) = crate::loss::softmax_xent_sum(logits, cl, labels, probs);
    let sums = ChunkSums {
        xent: xent.to_f64(),
        recon,
        correct,
    };
    if !sh.train {
        return sums;
    }
    g_logits.fill(S::ZERO);
    let inv_batch = S::from_f64(1.0 / sh.batch as f64);
    crate::loss::softmax_xent_backward(probs, cl, labels, inv_batch, g_logits);
    by_weight(
        g_rates,
        Beta::Overwrite,
        g_logits,
        rows,
        p.data(ParamId(ro)),
        (cl, n),
        Through::AsStored,
    );
    match spec.body {
        StaticBody::ClosedForm { norm_eps, .. } => closed_form_backward(
            sh,
            rows,
            [z, norms, b1, c, a, y],
            [g_rates, g_a, &mut *g_p, &mut *g_g],
            S::from_f64(norm_eps),
        ),
        StaticBody::Relu { .. } => {
            for ((gp, &gr), &h) in g_p.iter_mut().zip(&*g_rates).zip(&*rates) {
                *gp = gr * h.step();
            }
        }
    }
    // The body's share of the code's cotangent: `p̄ W_zx (+ ḡ W_bx)`, or `p̄ W_h`.
    let through = Through::AsStored;
    by_weight(
        g_code,
        Beta::Overwrite,
        g_p,
        rows,
        p.data(ParamId(base)),
        (n, k),
        through,
    );
    if let StaticBody::ClosedForm { .. } = spec.body {
        let w_bx = p.data(ParamId(base + 1));
        by_weight(g_code, Beta::Accumulate, g_g, rows, w_bx, (n, k), through);
    }
    // The input cotangents of the affine layers, top down: `Ā_{l−1} = Z̄_l W_l` on this
    // chunk's rows (added to the body's share of the code's), then `⊙ f'_{l−1}`.
    for l in (1..LAYERS).rev() {
        let (i, o) = widths[l];
        let (lo, hi) = g_acts.split_at_mut(l);
        let beta = if l == 3 {
            Beta::Accumulate
        } else {
            Beta::Overwrite
        };
        let g = &mut *lo[l - 1];
        by_weight(
            g,
            beta,
            hi[0],
            rows,
            p.data(ParamId(2 * l)),
            (o, i),
            Through::AsStored,
        );
        sh.isa.dispatch(ActVjpInPlace {
            f: ACTIVATIONS[l - 1],
            y: acts[l - 1],
            g,
        });
    }
    sums
}

/// The closed-form layer's forward pass on a chunk's rows (module docs), into
/// `[z, norms, B_1, c, u, a, y, r]`.
fn closed_form_forward<S: Scalar>(
    sh: &Shared<'_, S>,
    code: &[S],
    rows: usize,
    out: [&mut [S]; 8],
    (eps, norm_eps): (S, S),
) {
    let p = sh.params;
    let (n, k) = (sh.spec.body.units(), sh.spec.code);
    let base = 2 * LAYERS;
    let [z, norms, b1, c, u, a, y, rates] = out;
    by_weight(
        z,
        Beta::Overwrite,
        code,
        rows,
        p.data(ParamId(base)),
        (n, k),
        Through::Transposed,
    );
    by_weight(
        b1,
        Beta::Overwrite,
        code,
        rows,
        p.data(ParamId(base + 1)),
        (n, k),
        Through::Transposed,
    );
    sh.isa.dispatch(GateRows {
        n,
        norm_eps,
        z,
        norms,
        b1,
        c,
        u,
    });
    by_weight(
        a,
        Beta::Overwrite,
        u,
        rows,
        sh.w,
        (n, n),
        Through::Transposed,
    );
    sh.isa.dispatch(RateRows {
        eps,
        s0: sh.s0,
        c,
        a,
        y,
        rates,
    });
}

/// The closed-form layer's VJP on a chunk's rows (module docs): from `r̄` (in `g[0]`) to
/// `ā`, `p̄`, `ḡ` (`g[1..]`); `g[0]` ends holding `ū`.
fn closed_form_backward<S: Scalar>(
    sh: &Shared<'_, S>,
    rows: usize,
    vals: [&mut [S]; 6],
    g: [&mut [S]; 4],
    norm_eps: S,
) {
    let n = sh.spec.body.units();
    let [z, norms, b1, c, a, y] = vals;
    let [g_r, g_a, g_p, g_g] = g;
    // ȳ (kept in ḡ's rows for now), ā.
    sh.isa.dispatch(RateRowsVjp {
        g_r,
        y,
        a,
        g_y: g_g,
        g_a,
    });
    // ū = ā W.
    by_weight(
        g_r,
        Beta::Overwrite,
        g_a,
        rows,
        sh.w,
        (n, n),
        Through::AsStored,
    );
    sh.isa.dispatch(GateRowsVjp {
        n,
        norm_eps,
        norms,
        z,
        b1,
        c,
        a,
        g_u: g_r,
        g_p,
        g_g,
    });
}

simd_kernel! {
    /// The closed form's gates, row by row: `z = p / max(‖p‖, ε_z)` (`p` in `z` on entry,
    /// `‖p‖` into `norms`), `B_1 = σ(·)` in place, `c = B_1 ⊙ z`, `u = c ⊙ c`.
    GateRows<'a> {
        n: usize, norm_eps: S, z: &'a mut [S], norms: &'a mut [S], b1: &'a mut [S],
        c: &'a mut [S], u: &'a mut [S]
    }
    {
        let rows = z
            .chunks_exact_mut(n)
            .zip(norms.iter_mut())
            .zip(b1.chunks_exact_mut(n))
            .zip(c.chunks_exact_mut(n))
            .zip(u.chunks_exact_mut(n));
        for ((((zr, nr), br), cr), ur) in rows {
            let norm = crate::linalg::dot(zr, zr).sqrt();
            let d = if norm > norm_eps { norm } else { norm_eps };
            *nr = norm;
            let it = zr.iter_mut().zip(br.iter_mut()).zip(cr.iter_mut()).zip(ur.iter_mut());
            for (((zj, bj), cj), uj) in it {
                *zj /= d;
                *bj = bj.sigmoid();
                *cj = *bj * *zj;
                *uj = *cj * *cj;
            }
        }
    }
}

simd_kernel! {
    /// The closed form's rates: `a = s_0 + (W u) + ε` (`W u` in `a` on entry),
    /// `y = c / √a`, `r = ⌊y⌋²`.
    RateRows<'a> {
        eps: S, s0: &'a [S], c: &'a [S], a: &'a mut [S], y: &'a mut [S], rates: &'a mut [S]
    }
    {
        let n = s0.len();
        let rows = a
            .chunks_exact_mut(n)
            .zip(y.chunks_exact_mut(n))
            .zip(rates.chunks_exact_mut(n))
            .zip(c.chunks_exact(n));
        for (((ar, yr), rr), cr) in rows {
            for ((((aj, yj), rj), &cj), &s0) in ar.iter_mut().zip(yr).zip(rr).zip(cr).zip(s0) {
                *aj = s0 + *aj + eps;
                *yj = cj / aj.sqrt();
                let ry = yj.relu();
                *rj = ry * ry;
            }
        }
    }
}

simd_kernel! {
    /// `ȳ = 2 ⌊y⌋ r̄` and `ā = −ȳ y / (2a)`.
    RateRowsVjp<'a> {
        g_r: &'a [S], y: &'a [S], a: &'a [S], g_y: &'a mut [S], g_a: &'a mut [S]
    }
    {
        let (half, two) = (S::from_f64(0.5), S::from_f64(2.0));
        let it = g_y.iter_mut().zip(g_a.iter_mut()).zip(g_r).zip(y).zip(a);
        for ((((gy, ga), &gr), &yj), &aj) in it {
            *gy = two * yj.relu() * gr;
            *ga = -(half * *gy * yj / aj);
        }
    }
}

simd_kernel! {
    /// From `ȳ` (in `g_g` on entry) and `ū`: `c̄ = ȳ / √a + 2 c ⊙ ū`, then `p̄` (into `g_p`)
    /// and `ḡ` (into `g_g`), row by row (module docs).
    GateRowsVjp<'a> {
        n: usize, norm_eps: S, norms: &'a [S], z: &'a [S], b1: &'a [S], c: &'a [S],
        a: &'a [S], g_u: &'a [S], g_p: &'a mut [S], g_g: &'a mut [S]
    }
    {
        let two = S::from_f64(2.0);
        let rows = norms
            .iter()
            .zip(z.chunks_exact(n))
            .zip(b1.chunks_exact(n))
            .zip(c.chunks_exact(n))
            .zip(a.chunks_exact(n))
            .zip(g_u.chunks_exact(n))
            .zip(g_p.chunks_exact_mut(n))
            .zip(g_g.chunks_exact_mut(n));
        for (((((((&norm, zr), br), cr), ar), gu), gp), gg) in rows {
            let it = gp.iter_mut().zip(gg.iter_mut()).zip(zr).zip(br).zip(cr).zip(ar).zip(gu);
            for ((((((gp, gg), &zj), &bj), &cj), &aj), &uj) in it {
                let gc = *gg / aj.sqrt() + two * cj * uj;
                *gp = gc * bj;
                *gg = gc * zj * bj * (S::ONE - bj);
            }
            let zg = crate::linalg::dot(zr, gp);
            if norm > norm_eps {
                for (gp, &zj) in gp.iter_mut().zip(zr) {
                    *gp = (*gp - zj * zg) / norm;
                }
            } else {
                for gp in gp.iter_mut() {
                    *gp /= norm_eps;
                }
            }
        }
    }
}

/// Lanes of the reconstruction error's partial sums.
const RECON_LANES: usize = 16;

simd_kernel! {
    /// `h = f(h + b)` row by row, `b` one row repeated: the expressions of the tape's
    /// `bias_act`, in place.
    BiasActInPlace<'a> { f: Activation, b: &'a [S], h: &'a mut [S] }
    {
        let cols = b.len();
        if cols > 0 {
            for row in h.chunks_exact_mut(cols) {
                let it = row.iter_mut().zip(b);
                match f {
                    Activation::Relu => it.for_each(|(h, &b)| *h = (*h + b).relu()),
                    Activation::Sigmoid => it.for_each(|(h, &b)| *h = (*h + b).sigmoid()),
                }
            }
        }
    }
}

simd_kernel! {
    /// `g = g · f'` from the activation's output `y` (`relu' = H(y)`, `σ' = y (1 − y)`).
    ActVjpInPlace<'a> { f: Activation, y: &'a [S], g: &'a mut [S] }
    {
        let it = g.iter_mut().zip(y);
        match f {
            Activation::Relu => it.for_each(|(g, &y)| *g *= y.step()),
            Activation::Sigmoid => it.for_each(|(g, &y)| *g = *g * y * (S::ONE - y)),
        }
    }
}

simd_kernel! {
    /// `lanes[j] += (x̂ − x)²` over the entries `≡ j` (mod the lane count) and, in training,
    /// `g = scale (x̂ − x) x̂ (1 − x̂)`.
    Recon<'a> {
        x: &'a [S], xhat: &'a [S], scale: S, train: bool, g: &'a mut [S],
        lanes: &'a mut [S; RECON_LANES]
    }
    {
        let mut xs = x.chunks_exact(RECON_LANES);
        let mut hs = xhat.chunks_exact(RECON_LANES);
        for (xc, hc) in (&mut xs).zip(&mut hs) {
            for ((l, &xv), &hv) in lanes.iter_mut().zip(xc).zip(hc) {
                let d = hv - xv;
                *l += d * d;
            }
        }
        for ((l, &xv), &hv) in lanes.iter_mut().zip(xs.remainder()).zip(hs.remainder()) {
            let d = hv - xv;
            *l += d * d;
        }
        if train {
            for ((gv, &xv), &hv) in g.iter_mut().zip(x).zip(xhat) {
                *gv = scale * (hv - xv) * hv * (S::ONE - hv);
            }
        }
    }
}
