//! The reverse-mode engine: a [`Tape`] of operations on batched row-major matrices.
//!
//! Every value is a `rows x cols` matrix (a batch is `batch x features`, a scalar is `1 x 1`).
//! Operations append a node holding the result; [`Tape::backward`] walks the nodes in reverse
//! and applies each operation's vector-Jacobian product (VJP)
//!
//! ```text
//! x̄_i += (∂f/∂x_i)ᵀ f̄ .
//! ```
//!
//! **Memory.** Values, gradients and saved intermediates live in arenas (`Vec`s) that
//! [`Tape::reset`] empties without freeing, so a training loop that builds the same graph each
//! step allocates only while the arenas grow during the first step. The value and gradient
//! arenas keep their contents across resets and are never zero-filled as a whole:
//!
//! - a GEMM, unary or binary node writes every entry of its value over whatever the arena
//!   held (the other operations start from zeros), and a leaf copies its data in;
//! - a gradient is written by its first contribution and accumulated by the later ones
//!   (`x̄ = c₁`, then `x̄ += c₂`, …, in reverse recording order as before). The tape records
//!   which nodes have received one; an operation whose VJP does not overwrite gets its input's
//!   gradient zero-filled just before its first contribution; a node no contribution reached
//!   propagates nothing, and [`Tape::grad`] returns zeros for it. The element-wise VJPs write
//!   `0 + c₁`, so the results equal those of accumulating into a zero-filled arena to the bit
//!   (`tests/write_once.rs`).
//!
//! **Broadcasting.** Binary element-wise operations accept operands of shape `(r, c)`,
//! `(1, c)` (a row vector repeated over rows), `(r, 1)` or `(1, 1)`; the VJP sums over the
//! repeated axis.
//!
//! **Kinks** (one-sided choices, stated once): `relu'(0) = 0`; `sqrt` is `√max(x, 0)` with
//! derivative `1/(2√x)` for `x > 0` and `0` for `x ≤ 0`; `clamp(x, lo, hi)` passes the gradient
//! where `lo ≤ x ≤ hi` (PyTorch's convention); row normalisation divides by
//! `max(‖x‖, ε)` and treats the `ε` branch as a constant.
//!
//! The tape is generic: it names no model. Linear-algebra operations beyond the element-wise
//! ones live next to their kernels, each forward pass beside its VJP ([`crate::solve`]: system
//! matrices and batched solves). A model's fused operation is a *custom operation*: a type
//! implementing `CustomOp`, whose forward pass the model computes into a node from
//! `Tape::push_custom` and whose `CustomOp::vjp` the tape calls during [`Tape::backward`]. The
//! nodes of one custom operation share one scratch value per tape (`CustomOp::Scratch`). The
//! fused ORGaNICs Euler step ([`crate::cell_op`]) is such an operation. Every operation's VJP
//! (`*_vjp`, given a `VjpCtx`) follows its forward pass; [`Tape::backward`] only dispatches on
//! the operation.

use core::any::{Any, TypeId};
use core::fmt::Debug;

use crate::error::GradError;
use crate::linalg::{Beta, Trans, View, ViewMut, gemm};
use crate::scalar::Scalar;
use crate::simd::{InstructionSet, simd_kernel};
use crate::spectral_norm::SpectralNorm;

/// Handle of a value on a [`Tape`] (valid until the next [`Tape::reset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var(u32);

impl Var {
    /// Position of the node on its tape.
    #[must_use]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Element-wise unary functions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary<S> {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^{-x})`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `e^x`.
    Exp,
    /// `x²`.
    Square,
    /// `√max(x, 0)`.
    Sqrt,
    /// `−x`.
    Neg,
    /// `c x`.
    Scale(S),
    /// `x + c`.
    AddScalar(S),
    /// `min(max(x, lo), hi)`.
    Clamp(S, S),
}

impl<S: Scalar> Unary<S> {
    #[inline(always)]
    fn apply(self, x: S) -> S {
        match self {
            Self::Relu => x.relu(),
            Self::Sigmoid => x.sigmoid(),
            Self::Tanh => x.tanh(),
            Self::Exp => x.exp(),
            Self::Square => x * x,
            Self::Sqrt => x.relu().sqrt(),
            Self::Neg => -x,
            Self::Scale(c) => c * x,
            Self::AddScalar(c) => x + c,
            Self::Clamp(lo, hi) => x.max(lo).min(hi),
        }
    }

    /// `g · f'(x)` given `y = f(x)`.
    #[inline(always)]
    fn vjp(self, x: S, y: S, g: S) -> S {
        match self {
            Self::Relu => g * x.step(),
            Self::Sigmoid => g * y * (S::ONE - y),
            Self::Tanh => g * (S::ONE - y * y),
            Self::Exp => g * y,
            Self::Square => g * S::from_f64(2.0) * x,
            Self::Sqrt => {
                if y > S::ZERO {
                    g * S::from_f64(0.5) / y
                } else {
                    S::ZERO
                }
            }
            Self::Neg => -g,
            Self::Scale(c) => g * c,
            Self::AddScalar(_) => g,
            Self::Clamp(lo, hi) => {
                if x >= lo && x <= hi {
                    g
                } else {
                    S::ZERO
                }
            }
        }
    }
}

/// Element-wise binary functions (with broadcasting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a ⊙ b`.
    Mul,
    /// `a ⊘ b`.
    Div,
}

/// The activation of [`Tape::bias_act`]: functions whose derivative is a function of their
/// value (`relu' = H(y)`, `σ' = y (1 − y)`), so that the fused node keeps only its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)` ([`Unary::Relu`]).
    Relu,
    /// `1 / (1 + e^{-x})` ([`Unary::Sigmoid`]).
    Sigmoid,
}

/// The operation that produced a node, with its inputs (the dispatch of [`Tape::backward`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op<S> {
    Leaf,
    MatMul {
        a: Var,
        ta: Trans,
        b: Var,
        tb: Trans,
    },
    Binary(Binary, Var, Var),
    Unary(Unary<S>, Var),
    BiasAct(Activation, Var, Var),
    Sum(Var),
    Mean(Var),
    SumRows(Var),
    RowL2Normalize(Var, S),
    SliceCols(Var, usize),
    ConcatCols(Var, Var),
    SoftmaxCrossEntropy(Var),
    Mse(Var, Var),
    DiagGainSystem(Var, Var),
    BatchedSolve(Var, Var),
    DiagGainSolve(Var, Var, Var),
    SpectralNorm(Var),
    /// Node `index` of the custom operation registered at position `table` of the tape.
    Custom {
        table: usize,
        index: usize,
    },
}

/// A fused operation defined outside the tape: the node's inputs (as [`Var`]s) and settings.
/// (`Send + Sync`, like the scratch, so that tapes move between threads.)
///
/// Its forward pass is computed by its owner into the node returned by [`Tape::push_custom`];
/// [`Tape::backward`] calls [`CustomOp::vjp`] for it.
pub(crate) trait CustomOp<S: Scalar>: Copy + Debug + Send + Sync + 'static {
    /// Buffers shared by every node of this operation on one tape (reused across
    /// [`Tape::reset`]).
    type Scratch: Default + Debug + Send + Sync + 'static;

    /// Adds the input cotangents of the node in `ctx` (`tmp`: the tape's reusable buffer).
    fn vjp(&self, ctx: &mut VjpCtx<'_, S>, scratch: &mut Self::Scratch, tmp: &mut Vec<S>);
}

/// The recorded nodes of one custom operation on a tape, and their shared scratch.
#[derive(Debug)]
struct CustomTable<S: Scalar, T: CustomOp<S>> {
    ops: Vec<T>,
    scratch: T::Scratch,
}

/// [`CustomTable`] with its operation type erased (one per operation type on a tape).
trait AnyCustomTable<S: Scalar>: Debug + Send + Sync {
    fn vjp(&mut self, index: usize, ctx: &mut VjpCtx<'_, S>, tmp: &mut Vec<S>);
    fn len(&self) -> usize;
    fn clear(&mut self);
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<S: Scalar, T: CustomOp<S>> AnyCustomTable<S> for CustomTable<S, T> {
    fn vjp(&mut self, index: usize, ctx: &mut VjpCtx<'_, S>, tmp: &mut Vec<S>) {
        self.ops[index].vjp(ctx, &mut self.scratch, tmp);
    }

    fn len(&self) -> usize {
        self.ops.len()
    }

    fn clear(&mut self) {
        self.ops.clear();
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// What a custom operation's forward pass writes into its new node (see [`Tape::push_custom`]).
pub(crate) struct CustomOut<'a, S, X> {
    /// The new node.
    pub(crate) var: Var,
    /// Every node of the tape.
    pub(crate) nodes: &'a [Node<S>],
    /// The value arena below the node (the values of its inputs; see [`Tape::val`]).
    pub(crate) lo: &'a [S],
    /// The node's value.
    pub(crate) out: &'a mut [S],
    /// The node's saved intermediates.
    pub(crate) aux: &'a mut [S],
    /// The operation's scratch on this tape.
    pub(crate) scratch: &'a mut X,
}

/// One recorded value: its shape, its offsets in the arenas and the operation behind it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<S> {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    /// Offset of the value (and of its gradient) in the value arena.
    pub(crate) off: usize,
    /// Offset of the operation's saved intermediates in the `aux` arena.
    pub(crate) aux: usize,
    /// Offset of its saved integers in the `ints` arena.
    pub(crate) ints: usize,
    pub(crate) needs_grad: bool,
    pub(crate) op: Op<S>,
}

impl<S> Node<S> {
    pub(crate) fn len(&self) -> usize {
        self.rows * self.cols
    }
}

/// Reserves `len` entries at the top (`used`) of an arena kept across [`Tape::reset`],
/// growing it with `zero` only when a graph is longer than every earlier one; returns their
/// offset. What the entries held before (an earlier graph's values) is left in place.
fn claim_in<T: Clone>(arena: &mut Vec<T>, used: &mut usize, len: usize, zero: T) -> usize {
    let off = *used;
    *used += len;
    if arena.len() < *used {
        arena.resize(*used, zero);
    }
    off
}

/// A reverse-mode tape over `S`-valued matrices.
#[derive(Debug, Default)]
pub struct Tape<S: Scalar> {
    pub(crate) nodes: Vec<Node<S>>,
    /// The value arena: nodes' values at their offsets below `used`; what lies above is stale
    /// (the arena is kept across [`Tape::reset`] and only grows).
    pub(crate) values: Vec<S>,
    /// Length of the value arena in use.
    used: usize,
    /// The gradient arena, laid out as `values`; kept across [`Tape::reset`] and never
    /// zero-filled as a whole: a node's gradient is valid only where `ready` says so.
    grads: Vec<S>,
    /// Per node, during and after [`Tape::backward`]: whether its gradient has received its
    /// first contribution (written over the stale arena, see [`VjpCtx::grad_write`]).
    ready: Vec<bool>,
    /// Zeros, as long as the longest node the last backward pass did not reach: what
    /// [`Tape::grad`] returns for such a node.
    zeros: Vec<S>,
    /// Per-node auxiliary values (saved factors, norms), laid out like `values`: in use below
    /// `aux_used`, stale above (kept across [`Tape::reset`], only grows).
    pub(crate) aux: Vec<S>,
    aux_used: usize,
    /// Per-node auxiliary integers (pivots, labels), as `aux`.
    pub(crate) ints: Vec<usize>,
    ints_used: usize,
    /// The custom operations recorded on this tape, one table per operation type.
    custom: Vec<(TypeId, Box<dyn AnyCustomTable<S>>)>,
    tmp: Vec<S>,
    /// The instruction set of the element-wise loops ([`Tape::unary`], [`Tape::binary`] and
    /// their VJPs); every choice gives bit-identical results (see [`crate::simd`]).
    isa: InstructionSet,
}

// Tapes move between threads (organics-train records one per batch chunk in parallel).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Tape<f32>>();
    send_sync::<Tape<f64>>();
};

impl<S: Scalar> Tape<S> {
    /// An empty tape.
    #[must_use]
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            values: Vec::new(),
            used: 0,
            grads: Vec::new(),
            ready: Vec::new(),
            zeros: Vec::new(),
            aux: Vec::new(),
            aux_used: 0,
            ints: Vec::new(),
            ints_used: 0,
            custom: Vec::new(),
            tmp: Vec::new(),
            isa: InstructionSet::Detect,
        }
    }

    /// Sets the instruction set of the element-wise loops (bit-identical results for every
    /// choice; [`InstructionSet::Baseline`] is the reference for tests).
    pub fn set_instruction_set(&mut self, isa: InstructionSet) {
        self.isa = isa;
    }

    /// Forgets every node, keeping the arenas' capacity.
    pub fn reset(&mut self) {
        self.nodes.clear();
        self.used = 0;
        self.ready.clear();
        self.aux_used = 0;
        self.ints_used = 0;
        for (_, table) in &mut self.custom {
            table.clear();
        }
    }

    /// Number of nodes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tape has no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `(rows, cols)` of a value.
    #[must_use]
    pub fn shape(&self, v: Var) -> (usize, usize) {
        let n = &self.nodes[v.index()];
        (n.rows, n.cols)
    }

    /// The value of `v` (row-major).
    #[must_use]
    pub fn value(&self, v: Var) -> &[S] {
        let n = &self.nodes[v.index()];
        &self.values[n.off..n.off + n.len()]
    }

    /// The value of a `1 x 1` variable.
    ///
    /// # Panics
    /// If `v` is not `1 x 1`.
    #[track_caller]
    #[must_use]
    pub fn scalar(&self, v: Var) -> S {
        assert_eq!(self.shape(v), (1, 1), "scalar(): not a 1 x 1 value");
        self.value(v)[0]
    }

    /// `∂loss/∂v` after [`Tape::backward`] (zeros for values the loss does not depend on).
    #[must_use]
    pub fn grad(&self, v: Var) -> &[S] {
        let n = &self.nodes[v.index()];
        match self.ready.get(v.index()) {
            // No backward pass since the node was recorded.
            None => &[],
            Some(true) => &self.grads[n.off..n.off + n.len()],
            Some(false) => &self.zeros[..n.len()],
        }
    }

    pub(crate) fn push(
        &mut self,
        rows: usize,
        cols: usize,
        op: Op<S>,
        needs_grad: bool,
        aux_len: usize,
        int_len: usize,
    ) -> Var {
        let var = self.push_overwritten(rows, cols, op, needs_grad, aux_len, int_len);
        let node = self.nodes[var.index()];
        self.values[node.off..node.off + rows * cols].fill(S::ZERO);
        self.aux[node.aux..node.aux + aux_len].fill(S::ZERO);
        self.ints[node.ints..node.ints + int_len].fill(0);
        var
    }

    /// As [`Self::push`], but the node's value, auxiliary values and integers keep whatever
    /// the arenas held there (stale values of an earlier graph): for operations that write
    /// every entry of all three (the fused solves, whose factor buffers are large).
    pub(crate) fn push_overwritten(
        &mut self,
        rows: usize,
        cols: usize,
        op: Op<S>,
        needs_grad: bool,
        aux_len: usize,
        int_len: usize,
    ) -> Var {
        let off = self.claim(rows * cols);
        self.record(off, rows, cols, op, needs_grad, aux_len, int_len)
    }

    /// As [`Self::push`], but the node's value keeps whatever the arena held there (stale
    /// values of an earlier graph): for operations that write every entry of their output.
    fn push_written(&mut self, rows: usize, cols: usize, op: Op<S>, needs_grad: bool) -> Var {
        self.push_overwritten(rows, cols, op, needs_grad, 0, 0)
    }

    /// Reserves `len` values at the top of the value arena (growing it with zeros only when
    /// a graph is longer than every earlier one); returns their offset.
    fn claim(&mut self, len: usize) -> usize {
        claim_in(&mut self.values, &mut self.used, len, S::ZERO)
    }

    /// Appends the node whose value already lies at `off..` in the value arena (see
    /// [`Self::push`]).
    fn record(
        &mut self,
        off: usize,
        rows: usize,
        cols: usize,
        op: Op<S>,
        needs_grad: bool,
        aux_len: usize,
        int_len: usize,
    ) -> Var {
        // Claimed like values: grown (with zeros) only past every earlier graph's length.
        let aux = claim_in(&mut self.aux, &mut self.aux_used, aux_len, S::ZERO);
        let ints = claim_in(&mut self.ints, &mut self.ints_used, int_len, 0);
        let id = u32::try_from(self.nodes.len()).expect("tape longer than u32::MAX nodes");
        self.nodes.push(Node {
            rows,
            cols,
            off,
            aux,
            ints,
            needs_grad,
            op,
        });
        Var(id)
    }

    /// Appends a node of the custom operation `op` (shape, gradient flag and arena lengths as
    /// for every node) and hands its owner what the forward pass writes into.
    pub(crate) fn push_custom<T: CustomOp<S>>(
        &mut self,
        rows: usize,
        cols: usize,
        op: T,
        needs_grad: bool,
        aux_len: usize,
    ) -> CustomOut<'_, S, T::Scratch> {
        let id = TypeId::of::<T>();
        let table = match self.custom.iter().position(|(t, _)| *t == id) {
            Some(i) => i,
            None => {
                let empty = CustomTable::<S, T> {
                    ops: Vec::new(),
                    scratch: T::Scratch::default(),
                };
                self.custom.push((id, Box::new(empty)));
                self.custom.len() - 1
            }
        };
        let index = self.custom[table].1.len();
        let var = self.push(
            rows,
            cols,
            Op::Custom { table, index },
            needs_grad,
            aux_len,
            0,
        );
        let node = self.nodes[var.index()];
        let (lo, hi) = self.values.split_at_mut(node.off);
        let typed = self.custom[table]
            .1
            .as_any_mut()
            .downcast_mut::<CustomTable<S, T>>()
            .expect("custom operation table keyed by its type");
        typed.ops.push(op);
        CustomOut {
            var,
            nodes: &self.nodes,
            lo,
            out: &mut hi[..node.len()],
            aux: &mut self.aux[node.aux..node.aux + aux_len],
            scratch: &mut typed.scratch,
        }
    }

    pub(crate) fn node(&self, v: Var) -> Node<S> {
        self.nodes[v.index()]
    }

    /// Splits the value arena into (everything before `v`, `v`'s own value).
    pub(crate) fn out_split(&mut self, v: Var) -> (&[S], &mut [S]) {
        let n = self.nodes[v.index()];
        let (lo, hi) = self.values.split_at_mut(n.off);
        (lo, &mut hi[..n.len()])
    }

    pub(crate) fn val<'a>(lo: &'a [S], n: &Node<S>) -> &'a [S] {
        &lo[n.off..n.off + n.len()]
    }

    /// A differentiable leaf (a parameter) holding a copy of `data`.
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    #[track_caller]
    pub fn param(&mut self, rows: usize, cols: usize, data: &[S]) -> Var {
        self.leaf(rows, cols, data, true)
    }

    /// A constant leaf (no gradient is propagated into it).
    ///
    /// # Panics
    /// If `data.len() != rows * cols`.
    #[track_caller]
    pub fn constant(&mut self, rows: usize, cols: usize, data: &[S]) -> Var {
        self.leaf(rows, cols, data, false)
    }

    #[track_caller]
    fn leaf(&mut self, rows: usize, cols: usize, data: &[S], needs_grad: bool) -> Var {
        assert_eq!(
            data.len(),
            rows * cols,
            "leaf: data length {} != {rows} x {cols}",
            data.len()
        );
        // Copied straight into the arena (not zero-filled first: leaves are the parameters,
        // most of the arena).
        let off = self.claim(data.len());
        self.values[off..off + data.len()].copy_from_slice(data);
        self.record(off, rows, cols, Op::Leaf, needs_grad, 0, 0)
    }

    /// `op(A) op(B)` (faer GEMM).
    ///
    /// # Panics
    /// If the inner dimensions differ.
    #[track_caller]
    pub fn matmul(&mut self, a: Var, ta: Trans, b: Var, tb: Trans) -> Var {
        let (na, nb) = (self.node(a), self.node(b));
        let (m, k) = if ta == Trans::No {
            (na.rows, na.cols)
        } else {
            (na.cols, na.rows)
        };
        let (k2, n) = if tb == Trans::No {
            (nb.rows, nb.cols)
        } else {
            (nb.cols, nb.rows)
        };
        assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2} differ");
        // The product overwrites every entry (see `gemm`).
        let out = self.push_written(
            m,
            n,
            Op::MatMul { a, ta, b, tb },
            na.needs_grad || nb.needs_grad,
        );
        let (lo, o) = self.out_split(out);
        gemm(
            ViewMut::new(o, m, n),
            Beta::Overwrite,
            View::new(Self::val(lo, &na), na.rows, na.cols),
            ta,
            View::new(Self::val(lo, &nb), nb.rows, nb.cols),
            tb,
        );
        out
    }

    /// The VJP of [`Self::matmul`].
    fn matmul_vjp(ctx: &mut VjpCtx<'_, S>, a: Var, ta: Trans, b: Var, tb: Trans) {
        let (g, node, nodes, r) = (ctx.g, ctx.node, ctx.nodes, ctx.reader());
        let (na, nb) = (nodes[a.index()], nodes[b.index()]);
        let gv = View::new(g, node.rows, node.cols);
        let av = View::new(r.val(a), na.rows, na.cols);
        let bv = View::new(r.val(b), nb.rows, nb.cols);
        if let Some((ga, beta)) = ctx.grad_write(a) {
            let dst = ViewMut::new(ga, na.rows, na.cols);
            match ta {
                Trans::No => gemm(dst, beta, gv, Trans::No, bv, flip(tb)),
                Trans::Yes => gemm(dst, beta, bv, tb, gv, Trans::Yes),
            }
        }
        if let Some((gb, beta)) = ctx.grad_write(b) {
            let dst = ViewMut::new(gb, nb.rows, nb.cols);
            match tb {
                Trans::No => gemm(dst, beta, av, flip(ta), gv, Trans::No),
                Trans::Yes => gemm(dst, beta, gv, Trans::Yes, av, ta),
            }
        }
    }

    /// A linear layer without bias on a batch: `X Wᵀ` for `W` stored `out x in`.
    #[track_caller]
    pub fn linear(&mut self, x: Var, w: Var) -> Var {
        self.matmul(x, Trans::No, w, Trans::Yes)
    }

    /// Element-wise binary operation with broadcasting.
    ///
    /// # Panics
    /// If the shapes cannot be broadcast together.
    #[track_caller]
    pub fn binary(&mut self, f: Binary, a: Var, b: Var) -> Var {
        let (na, nb) = (self.node(a), self.node(b));
        let rows = broadcast_dim(na.rows, nb.rows);
        let cols = broadcast_dim(na.cols, nb.cols);
        // Each of the loops below writes every entry.
        let out = self.push_written(
            rows,
            cols,
            Op::Binary(f, a, b),
            na.needs_grad || nb.needs_grad,
        );
        let isa = self.isa;
        let (lo, o) = self.out_split(out);
        let (av, bv) = (Self::val(lo, &na), Self::val(lo, &nb));
        let apply = |x: S, y: S| match f {
            Binary::Add => x + y,
            Binary::Sub => x - y,
            Binary::Mul => x * y,
            Binary::Div => x / y,
        };
        if na.rows == nb.rows && na.cols == nb.cols {
            isa.dispatch(BinaryForward {
                f,
                x: av,
                y: bv,
                out: o,
            });
        } else if rows_line_up(&na, &nb, cols) {
            // One operand is a row repeated over the other's rows (a bias): one contiguous
            // loop per row, the same expression as below.
            for i in 0..rows {
                isa.dispatch(BinaryForward {
                    f,
                    x: &av[row_range(&na, i)],
                    y: &bv[row_range(&nb, i)],
                    out: &mut o[i * cols..(i + 1) * cols],
                });
            }
        } else {
            for i in 0..rows {
                for j in 0..cols {
                    o[i * cols + j] = apply(av[bidx(&na, i, j)], bv[bidx(&nb, i, j)]);
                }
            }
        }
        out
    }

    /// The VJP of [`Self::binary`].
    fn binary_vjp(ctx: &mut VjpCtx<'_, S>, f: Binary, a: Var, b: Var, isa: InstructionSet) {
        let (g, node, nodes, r) = (ctx.g, ctx.node, ctx.nodes, ctx.reader());
        let (na, nb) = (nodes[a.index()], nodes[b.index()]);
        let (av, bv) = (r.val(a), r.val(b));
        let cols = node.cols;
        if na.len() == node.len() && nb.len() == node.len() {
            // No broadcasting: contiguous loops, one per function.
            for (side, v) in [(Side::Left, a), (Side::Right, b)] {
                if let Some((grad, beta)) = ctx.grad_write(v) {
                    isa.dispatch(BinaryVjp {
                        f,
                        side,
                        beta,
                        g,
                        x: av,
                        y: bv,
                        grad,
                    });
                }
            }
            return;
        }
        if rows_line_up(&na, &nb, cols) {
            // A repeated row (a bias): its gradient sums the rows' contributions in row order,
            // as the element loops below do, so the results are the same to the bit.
            let g_row = |i: usize| &g[i * cols..(i + 1) * cols];
            for (side, v, nv) in [(Side::Left, a, &na), (Side::Right, b, &nb)] {
                if let Some((grad, first)) = ctx.grad_write(v) {
                    for i in 0..node.rows {
                        // A repeated row is written by row 0 (if it is the first
                        // contribution) and accumulated over the later rows.
                        let beta = if nv.rows == 1 && i > 0 {
                            Beta::Accumulate
                        } else {
                            first
                        };
                        isa.dispatch(BinaryVjp {
                            f,
                            side,
                            beta,
                            g: g_row(i),
                            x: &av[row_range(&na, i)],
                            y: &bv[row_range(&nb, i)],
                            grad: &mut grad[row_range(nv, i)],
                        });
                    }
                }
            }
            return;
        }
        if let Some(ga) = ctx.grad_mut(a) {
            for i in 0..node.rows {
                for j in 0..cols {
                    let gij = g[i * cols + j];
                    let y = bv[bidx(&nb, i, j)];
                    ga[bidx(&na, i, j)] += match f {
                        Binary::Add | Binary::Sub => gij,
                        Binary::Mul => gij * y,
                        Binary::Div => gij / y,
                    };
                }
            }
        }
        if let Some(gb) = ctx.grad_mut(b) {
            for i in 0..node.rows {
                for j in 0..cols {
                    let gij = g[i * cols + j];
                    let x = av[bidx(&na, i, j)];
                    let y = bv[bidx(&nb, i, j)];
                    gb[bidx(&nb, i, j)] += match f {
                        Binary::Add => gij,
                        Binary::Sub => -gij,
                        Binary::Mul => gij * x,
                        Binary::Div => -gij * x / (y * y),
                    };
                }
            }
        }
    }

    /// `a + b` (broadcasting).
    #[track_caller]
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Add, a, b)
    }

    /// `a − b` (broadcasting).
    #[track_caller]
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Sub, a, b)
    }

    /// `a ⊙ b` (broadcasting).
    #[track_caller]
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Mul, a, b)
    }

    /// `a ⊘ b` (broadcasting).
    #[track_caller]
    pub fn div(&mut self, a: Var, b: Var) -> Var {
        self.binary(Binary::Div, a, b)
    }

    /// Element-wise unary function.
    pub fn unary(&mut self, f: Unary<S>, a: Var) -> Var {
        let na = self.node(a);
        let out = self.push_written(na.rows, na.cols, Op::Unary(f, a), na.needs_grad);
        let isa = self.isa;
        let (lo, o) = self.out_split(out);
        let x = Self::val(lo, &na);
        isa.dispatch(UnaryForward { f, x, out: o });
        out
    }

    /// The VJP of [`Self::unary`].
    fn unary_vjp(ctx: &mut VjpCtx<'_, S>, f: Unary<S>, a: Var, isa: InstructionSet) {
        let (g, y, r) = (ctx.g, ctx.out(), ctx.reader());
        if let Some((grad, beta)) = ctx.grad_write(a) {
            let x = r.val(a);
            isa.dispatch(UnaryVjp {
                f,
                beta,
                x,
                y,
                g,
                grad,
            });
        }
    }

    /// `f(h + b)` for a `rows x cols` value `h` and a `1 x cols` bias `b` (a row repeated
    /// over the rows): [`Tape::add`] then [`Tape::relu`] or [`Tape::sigmoid`] as one node,
    /// one pass over the values forward and one backward instead of two. The same IEEE
    /// operations in the same order, so values and gradients are bit-identical to the two
    /// nodes' (the tests check it).
    ///
    /// # Panics
    /// If `b` is not `1 x cols`.
    #[track_caller]
    pub fn bias_act(&mut self, h: Var, b: Var, f: Activation) -> Var {
        let (nh, nb) = (self.node(h), self.node(b));
        assert!(
            nb.rows == 1 && nb.cols == nh.cols,
            "bias_act: the bias must be 1 x {}, not {} x {}",
            nh.cols,
            nb.rows,
            nb.cols
        );
        let out = self.push_written(
            nh.rows,
            nh.cols,
            Op::BiasAct(f, h, b),
            nh.needs_grad || nb.needs_grad,
        );
        let isa = self.isa;
        let (lo, o) = self.out_split(out);
        let (hv, bv) = (Self::val(lo, &nh), Self::val(lo, &nb));
        isa.dispatch(BiasActForward {
            f,
            h: hv,
            b: bv,
            out: o,
        });
        out
    }

    /// The VJP of [`Self::bias_act`]: `x̄ = 0 + f'(y) ḡ` (as the activation node writes it),
    /// then `h̄ (=|+=) x̄` and `b̄ (=|+=) Σ_rows x̄` in row order (as the bias add does).
    fn bias_act_vjp(
        ctx: &mut VjpCtx<'_, S>,
        f: Activation,
        h: Var,
        b: Var,
        isa: InstructionSet,
        tmp: &mut Vec<S>,
    ) {
        let (g, y, node) = (ctx.g, ctx.out(), ctx.node);
        let cols = node.cols;
        // Sized, not cleared: the kernel writes every entry.
        tmp.resize(node.len(), S::ZERO);
        isa.dispatch(BiasActVjp { f, g, y, gx: tmp });
        if let Some((grad, beta)) = ctx.grad_write(h) {
            isa.dispatch(BiasActAdd {
                beta,
                gx: tmp,
                grad,
            });
        }
        if cols > 0
            && let Some((grad, first)) = ctx.grad_write(b)
        {
            for (i, row) in tmp.chunks_exact(cols).enumerate() {
                let beta = if i > 0 { Beta::Accumulate } else { first };
                isa.dispatch(BiasActAdd {
                    beta,
                    gx: row,
                    grad: &mut *grad,
                });
            }
        }
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, a: Var) -> Var {
        self.unary(Unary::Relu, a)
    }

    /// Logistic sigmoid.
    pub fn sigmoid(&mut self, a: Var) -> Var {
        self.unary(Unary::Sigmoid, a)
    }

    /// `tanh`.
    pub fn tanh(&mut self, a: Var) -> Var {
        self.unary(Unary::Tanh, a)
    }

    /// `exp`.
    pub fn exp(&mut self, a: Var) -> Var {
        self.unary(Unary::Exp, a)
    }

    /// `x²`.
    pub fn square(&mut self, a: Var) -> Var {
        self.unary(Unary::Square, a)
    }

    /// `√max(x, 0)` (derivative 0 for `x ≤ 0`).
    pub fn sqrt(&mut self, a: Var) -> Var {
        self.unary(Unary::Sqrt, a)
    }

    /// `−x`.
    pub fn neg(&mut self, a: Var) -> Var {
        self.unary(Unary::Neg, a)
    }

    /// `c x`.
    pub fn scale(&mut self, a: Var, c: S) -> Var {
        self.unary(Unary::Scale(c), a)
    }

    /// `x + c`.
    pub fn add_scalar(&mut self, a: Var, c: S) -> Var {
        self.unary(Unary::AddScalar(c), a)
    }

    /// `min(max(x, lo), hi)`.
    pub fn clamp(&mut self, a: Var, lo: S, hi: S) -> Var {
        self.unary(Unary::Clamp(lo, hi), a)
    }

    /// Sum of all entries (`1 x 1`).
    pub fn sum(&mut self, a: Var) -> Var {
        let na = self.node(a);
        let out = self.push(1, 1, Op::Sum(a), na.needs_grad, 0, 0);
        let (lo, o) = self.out_split(out);
        o[0] = Self::val(lo, &na).iter().copied().sum();
        out
    }

    /// Mean of all entries (`1 x 1`).
    pub fn mean(&mut self, a: Var) -> Var {
        let na = self.node(a);
        let out = self.push(1, 1, Op::Mean(a), na.needs_grad, 0, 0);
        let (lo, o) = self.out_split(out);
        o[0] = Self::val(lo, &na).iter().copied().sum::<S>() / S::from_f64(na.len() as f64);
        out
    }

    /// The VJP of [`Self::mean`].
    fn sum_vjp(ctx: &mut VjpCtx<'_, S>, a: Var) {
        let (g, node, nodes) = (ctx.g, ctx.node, ctx.nodes);
        let scale = if matches!(node.op, Op::Mean(_)) {
            S::ONE / S::from_f64(nodes[a.index()].len() as f64)
        } else {
            S::ONE
        };
        if let Some(ga) = ctx.grad_mut(a) {
            let s = g[0] * scale;
            ga.iter_mut().for_each(|x| *x += s);
        }
    }

    /// Column sums over the batch: `rows x cols → 1 x cols`.
    pub fn sum_rows(&mut self, a: Var) -> Var {
        let na = self.node(a);
        let out = self.push(1, na.cols, Op::SumRows(a), na.needs_grad, 0, 0);
        let (lo, o) = self.out_split(out);
        let av = Self::val(lo, &na);
        for i in 0..na.rows {
            crate::linalg::add_assign(o, &av[i * na.cols..(i + 1) * na.cols]);
        }
        out
    }

    /// The VJP of [`Self::sum_rows`].
    fn sum_rows_vjp(ctx: &mut VjpCtx<'_, S>, a: Var) {
        let (g, node) = (ctx.g, ctx.node);
        if let Some(ga) = ctx.grad_mut(a) {
            let c = node.cols;
            for row in ga.chunks_exact_mut(c) {
                crate::linalg::add_assign(row, g);
            }
        }
    }

    /// Each row divided by `max(‖row‖₂, eps)`.
    pub fn row_l2_normalize(&mut self, a: Var, eps: S) -> Var {
        let na = self.node(a);
        let out = self.push(
            na.rows,
            na.cols,
            Op::RowL2Normalize(a, eps),
            na.needs_grad,
            na.rows,
            0,
        );
        let node = self.nodes[out.index()];
        let (lo, o) = self.values.split_at_mut(node.off);
        let norms = &mut self.aux[node.aux..node.aux + na.rows];
        let av = Self::val(lo, &na);
        let c = na.cols;
        for i in 0..na.rows {
            let row = &av[i * c..(i + 1) * c];
            let norm = crate::linalg::dot(row, row).sqrt();
            let d = norm.max(eps);
            for j in 0..c {
                o[i * c + j] = row[j] / d;
            }
            norms[i] = norm;
        }
        out
    }

    /// The VJP of [`Self::row_l2_normalize`].
    fn row_l2_normalize_vjp(ctx: &mut VjpCtx<'_, S>, a: Var, eps: S) {
        let (g, node, out) = (ctx.g, ctx.node, ctx.out());
        let c = node.cols;
        let norms = ctx.node_aux(node.rows);
        if let Some(ga) = ctx.grad_mut(a) {
            for i in 0..node.rows {
                let yr = &out[i * c..(i + 1) * c];
                let gr = &g[i * c..(i + 1) * c];
                let gar = &mut ga[i * c..(i + 1) * c];
                if norms[i] > eps {
                    let yg = crate::linalg::dot(yr, gr);
                    for j in 0..c {
                        gar[j] += (gr[j] - yr[j] * yg) / norms[i];
                    }
                } else {
                    for j in 0..c {
                        gar[j] += gr[j] / eps;
                    }
                }
            }
        }
    }

    /// Columns `start .. start + len`.
    ///
    /// # Panics
    /// If the range exceeds the columns.
    #[track_caller]
    pub fn slice_cols(&mut self, a: Var, start: usize, len: usize) -> Var {
        let na = self.node(a);
        assert!(
            start + len <= na.cols,
            "slice_cols: {start}+{len} > {}",
            na.cols
        );
        let out = self.push(na.rows, len, Op::SliceCols(a, start), na.needs_grad, 0, 0);
        let (lo, o) = self.out_split(out);
        let av = Self::val(lo, &na);
        for i in 0..na.rows {
            o[i * len..(i + 1) * len]
                .copy_from_slice(&av[i * na.cols + start..i * na.cols + start + len]);
        }
        out
    }

    /// The VJP of [`Self::slice_cols`].
    fn slice_cols_vjp(ctx: &mut VjpCtx<'_, S>, a: Var, start: usize) {
        let (g, node, nodes) = (ctx.g, ctx.node, ctx.nodes);
        let ca = nodes[a.index()].cols;
        let c = node.cols;
        if let Some(ga) = ctx.grad_mut(a) {
            for i in 0..node.rows {
                crate::linalg::add_assign(
                    &mut ga[i * ca + start..i * ca + start + c],
                    &g[i * c..(i + 1) * c],
                );
            }
        }
    }

    /// `[a | b]` (same number of rows).
    ///
    /// # Panics
    /// If the row counts differ.
    #[track_caller]
    pub fn concat_cols(&mut self, a: Var, b: Var) -> Var {
        let (na, nb) = (self.node(a), self.node(b));
        assert_eq!(na.rows, nb.rows, "concat_cols: row counts differ");
        let c = na.cols + nb.cols;
        let out = self.push(
            na.rows,
            c,
            Op::ConcatCols(a, b),
            na.needs_grad || nb.needs_grad,
            0,
            0,
        );
        let (lo, o) = self.out_split(out);
        let (av, bv) = (Self::val(lo, &na), Self::val(lo, &nb));
        for i in 0..na.rows {
            o[i * c..i * c + na.cols].copy_from_slice(&av[i * na.cols..(i + 1) * na.cols]);
            o[i * c + na.cols..(i + 1) * c].copy_from_slice(&bv[i * nb.cols..(i + 1) * nb.cols]);
        }
        out
    }

    /// The VJP of [`Self::concat_cols`].
    fn concat_cols_vjp(ctx: &mut VjpCtx<'_, S>, a: Var, b: Var) {
        let (g, node, nodes) = (ctx.g, ctx.node, ctx.nodes);
        let (ca, cb) = (nodes[a.index()].cols, nodes[b.index()].cols);
        let c = node.cols;
        if let Some(ga) = ctx.grad_mut(a) {
            for i in 0..node.rows {
                crate::linalg::add_assign(&mut ga[i * ca..(i + 1) * ca], &g[i * c..i * c + ca]);
            }
        }
        if let Some(gb) = ctx.grad_mut(b) {
            for i in 0..node.rows {
                crate::linalg::add_assign(
                    &mut gb[i * cb..(i + 1) * cb],
                    &g[i * c + ca..(i + 1) * c],
                );
            }
        }
    }

    /// Mean softmax cross-entropy of `logits` (`batch x classes`) against `labels` (`1 x 1`).
    ///
    /// # Errors
    /// [`GradError::WrongLength`] if `labels.len()` is not the batch size,
    /// [`GradError::LabelOutOfRange`] for a bad label.
    pub fn softmax_cross_entropy(
        &mut self,
        logits: Var,
        labels: &[usize],
    ) -> Result<Var, GradError> {
        let nl = self.node(logits);
        if labels.len() != nl.rows {
            return Err(GradError::WrongLength {
                what: "labels",
                expected: nl.rows,
                found: labels.len(),
            });
        }
        crate::loss::check_labels(labels, nl.cols)?;
        let out = self.push(
            1,
            1,
            Op::SoftmaxCrossEntropy(logits),
            nl.needs_grad,
            nl.len(),
            labels.len(),
        );
        let node = self.nodes[out.index()];
        self.ints[node.ints..node.ints + labels.len()].copy_from_slice(labels);
        let (lo, o) = self.values.split_at_mut(node.off);
        let probs = &mut self.aux[node.aux..node.aux + nl.len()];
        let (sum, _) = crate::loss::softmax_xent_sum(Self::val(lo, &nl), nl.cols, labels, probs);
        o[0] = sum / S::from_f64(nl.rows as f64);
        Ok(out)
    }

    /// The VJP of [`Self::softmax_cross_entropy`].
    fn softmax_cross_entropy_vjp(ctx: &mut VjpCtx<'_, S>, logits: Var) {
        let (g, nodes) = (ctx.g, ctx.nodes);
        let nl = nodes[logits.index()];
        let probs = ctx.node_aux(nl.len());
        let labels = ctx.node_ints(nl.rows);
        if let Some(gl) = ctx.grad_mut(logits) {
            crate::loss::softmax_xent_backward(
                probs,
                nl.cols,
                labels,
                g[0] / S::from_f64(nl.rows as f64),
                gl,
            );
        }
    }

    /// Mean squared error `mean((a − b)²)` of two equal-shape values (`1 x 1`).
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub fn mse(&mut self, a: Var, b: Var) -> Var {
        let (na, nb) = (self.node(a), self.node(b));
        assert!(
            na.rows == nb.rows && na.cols == nb.cols,
            "mse: shapes differ"
        );
        let out = self.push(1, 1, Op::Mse(a, b), na.needs_grad || nb.needs_grad, 0, 0);
        let (lo, o) = self.out_split(out);
        let s: S = Self::val(lo, &na)
            .iter()
            .zip(Self::val(lo, &nb))
            .map(|(&x, &y)| (x - y) * (x - y))
            .sum();
        o[0] = s / S::from_f64(na.len() as f64);
        out
    }

    /// The VJP of [`Self::mse`].
    fn mse_vjp(ctx: &mut VjpCtx<'_, S>, a: Var, b: Var) {
        let (g, nodes, r) = (ctx.g, ctx.nodes, ctx.reader());
        let scale = S::from_f64(2.0) * g[0] / S::from_f64(nodes[a.index()].len() as f64);
        let (av, bv) = (r.val(a), r.val(b));
        if let Some(ga) = ctx.grad_mut(a) {
            for ((gi, &x), &y) in ga.iter_mut().zip(av).zip(bv) {
                *gi += scale * (x - y);
            }
        }
        if let Some(gb) = ctx.grad_mut(b) {
            for ((gi, &x), &y) in gb.iter_mut().zip(av).zip(bv) {
                *gi -= scale * (x - y);
            }
        }
    }

    /// `W / σ(W)` with the singular vectors held in `sn` (see [`crate::spectral_norm`]); the
    /// caller runs [`SpectralNorm::power_iteration`] first in training mode.
    ///
    /// # Panics
    /// If `sn` does not match the shape of `w`.
    #[track_caller]
    pub fn spectral_norm(&mut self, w: Var, sn: &SpectralNorm<S>) -> Var {
        let nw = self.node(w);
        assert!(
            sn.rows == nw.rows && sn.cols == nw.cols,
            "spectral_norm: state is {}x{}, weight {}x{}",
            sn.rows,
            sn.cols,
            nw.rows,
            nw.cols
        );
        let out = self.push(
            nw.rows,
            nw.cols,
            Op::SpectralNorm(w),
            nw.needs_grad,
            nw.rows + nw.cols + 1,
            0,
        );
        let node = self.nodes[out.index()];
        let (lo, o) = self.values.split_at_mut(node.off);
        let sigma = sn.forward(Self::val(lo, &nw), &mut o[..node.len()]);
        let aux = &mut self.aux[node.aux..node.aux + nw.rows + nw.cols + 1];
        aux[..nw.rows].copy_from_slice(&sn.u);
        aux[nw.rows..nw.rows + nw.cols].copy_from_slice(&sn.v);
        aux[nw.rows + nw.cols] = sigma;
        out
    }

    /// The VJP of [`Self::spectral_norm`].
    fn spectral_norm_vjp(ctx: &mut VjpCtx<'_, S>, w: Var) {
        let (g, nodes, r) = (ctx.g, ctx.nodes, ctx.reader());
        let nw = nodes[w.index()];
        let aux = ctx.node_aux(nw.rows + nw.cols + 1);
        if let Some(gw) = ctx.grad_mut(w) {
            crate::spectral_norm::vjp(
                r.val(w),
                &aux[..nw.rows],
                &aux[nw.rows..nw.rows + nw.cols],
                aux[nw.rows + nw.cols],
                g,
                gw,
            );
        }
    }

    /// Reverse pass from the `1 x 1` value `loss`: afterwards [`Tape::grad`] holds
    /// `∂loss/∂v` for every `v` recorded before `loss`.
    ///
    /// # Errors
    /// [`GradError::LossNotScalar`] if `loss` is not `1 x 1`.
    pub fn backward(&mut self, loss: Var) -> Result<(), GradError> {
        let nl = self.node(loss);
        if nl.len() != 1 {
            return Err(GradError::LossNotScalar {
                rows: nl.rows,
                cols: nl.cols,
            });
        }
        // The arena only grows; its stale contents are never read (see `ready`).
        if self.grads.len() < self.used {
            self.grads.resize(self.used, S::ZERO);
        }
        self.ready.clear();
        self.ready.resize(self.nodes.len(), false);
        self.grads[nl.off] = S::ONE;
        self.ready[loss.index()] = true;
        for idx in (0..=loss.index()).rev() {
            let node = self.nodes[idx];
            // A node no contribution reached has a zero cotangent: nothing to propagate.
            if !node.needs_grad || !self.ready[idx] {
                continue;
            }
            self.backward_node(idx, &node);
        }
        let unreached = self
            .nodes
            .iter()
            .zip(&self.ready)
            .filter(|(_, r)| !**r)
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0);
        if self.zeros.len() < unreached {
            self.zeros.resize(unreached, S::ZERO);
        }
        Ok(())
    }

    fn backward_node(&mut self, idx: usize, node: &Node<S>) {
        let isa = self.isa;
        let (glo, ghi) = self.grads.split_at_mut(node.off);
        let mut ctx = VjpCtx::new(
            node,
            &self.nodes,
            &self.values,
            glo,
            &mut self.ready[..idx],
            &ghi[..node.len()],
            &self.aux,
            &self.ints,
        );
        match node.op {
            Op::Leaf => {}
            Op::MatMul { a, ta, b, tb } => Self::matmul_vjp(&mut ctx, a, ta, b, tb),
            Op::Binary(f, a, b) => Self::binary_vjp(&mut ctx, f, a, b, isa),
            Op::Unary(f, a) => Self::unary_vjp(&mut ctx, f, a, isa),
            Op::BiasAct(f, h, b) => Self::bias_act_vjp(&mut ctx, f, h, b, isa, &mut self.tmp),
            Op::Sum(a) | Op::Mean(a) => Self::sum_vjp(&mut ctx, a),
            Op::SumRows(a) => Self::sum_rows_vjp(&mut ctx, a),
            Op::RowL2Normalize(a, eps) => Self::row_l2_normalize_vjp(&mut ctx, a, eps),
            Op::SliceCols(a, start) => Self::slice_cols_vjp(&mut ctx, a, start),
            Op::ConcatCols(a, b) => Self::concat_cols_vjp(&mut ctx, a, b),
            Op::SoftmaxCrossEntropy(logits) => Self::softmax_cross_entropy_vjp(&mut ctx, logits),
            Op::Mse(a, b) => Self::mse_vjp(&mut ctx, a, b),
            Op::DiagGainSystem(d, w) => crate::solve::diag_gain_system_vjp(&mut ctx, d, w),
            Op::BatchedSolve(a, r) => {
                crate::solve::batched_solve_vjp(&mut ctx, a, r, &mut self.tmp);
            }
            Op::DiagGainSolve(d, w, c) => {
                crate::solve::diag_gain_solve_vjp(&mut ctx, d, w, c, &mut self.tmp);
            }
            Op::SpectralNorm(w) => Self::spectral_norm_vjp(&mut ctx, w),
            Op::Custom { table, index } => {
                self.custom[table].1.vjp(index, &mut ctx, &mut self.tmp);
            }
        }
    }
}

/// What an operation's VJP sees: its node, every value, the cotangent `g` of its output, the
/// gradient arena below the node (the gradients of its inputs) and the saved intermediates.
pub(crate) struct VjpCtx<'a, S> {
    pub(crate) node: Node<S>,
    pub(crate) nodes: &'a [Node<S>],
    values: &'a [S],
    /// The gradient arena below the node; an entry is valid only where `ready` says so.
    grads: &'a mut [S],
    /// Which nodes below this one have received a gradient contribution.
    ready: &'a mut [bool],
    pub(crate) g: &'a [S],
    aux: &'a [S],
    ints: &'a [usize],
}

/// Read access to every value of a tape during a VJP.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a, S> {
    nodes: &'a [Node<S>],
    values: &'a [S],
}

impl<'a, S> Reader<'a, S> {
    /// The value of `v`.
    pub(crate) fn val(&self, v: Var) -> &'a [S] {
        let n = &self.nodes[v.index()];
        &self.values[n.off..n.off + n.len()]
    }
}

impl<'a, S: Scalar> VjpCtx<'a, S> {
    fn new(
        node: &Node<S>,
        nodes: &'a [Node<S>],
        values: &'a [S],
        grads: &'a mut [S],
        ready: &'a mut [bool],
        g: &'a [S],
        aux: &'a [S],
        ints: &'a [usize],
    ) -> Self {
        Self {
            node: *node,
            nodes,
            values,
            grads,
            ready,
            g,
            aux,
            ints,
        }
    }

    /// The value of `v`.
    pub(crate) fn val(&self, v: Var) -> &'a [S] {
        self.reader().val(v)
    }

    /// A copyable reader of the values, usable while an input gradient is borrowed.
    pub(crate) fn reader(&self) -> Reader<'a, S> {
        Reader {
            nodes: self.nodes,
            values: self.values,
        }
    }

    /// The node's own output value.
    pub(crate) fn out(&self) -> &'a [S] {
        &self.values[self.node.off..self.node.off + self.node.len()]
    }

    /// The first `len` saved intermediates of the node.
    pub(crate) fn node_aux(&self, len: usize) -> &'a [S] {
        &self.aux[self.node.aux..self.node.aux + len]
    }

    /// The first `len` saved integers of the node.
    pub(crate) fn node_ints(&self, len: usize) -> &'a [usize] {
        &self.ints[self.node.ints..self.node.ints + len]
    }

    /// The gradient of input `v`, to add a contribution to, if it needs one (zero-filled here
    /// on its first contribution).
    pub(crate) fn grad_mut(&mut self, v: Var) -> Option<&mut [S]> {
        let (grad, beta) = self.grad_write(v)?;
        if beta == Beta::Overwrite {
            grad.fill(S::ZERO);
        }
        Some(grad)
    }

    /// The gradient of input `v`, if it needs one, with how to write the contribution:
    /// [`Beta::Overwrite`] on the first one (the slice holds stale values, and the caller must
    /// write every entry), [`Beta::Accumulate`] after it. Overwriting gives the value an
    /// addition into zeros would (`0 + x = x` in IEEE arithmetic, except that `0 + (−0)` is
    /// `+0`: the element-wise kernels write `0 + x`; a GEMM may leave a `−0` where the sum was
    /// `+0`, which changes no nonzero value downstream), without zero-filling the arena.
    pub(crate) fn grad_write(&mut self, v: Var) -> Option<(&mut [S], Beta)> {
        let n = &self.nodes[v.index()];
        if !n.needs_grad {
            return None;
        }
        let ready = &mut self.ready[v.index()];
        let beta = if *ready {
            Beta::Accumulate
        } else {
            *ready = true;
            Beta::Overwrite
        };
        Some((&mut self.grads[n.off..n.off + n.len()], beta))
    }
}

fn flip(t: Trans) -> Trans {
    match t {
        Trans::No => Trans::Yes,
        Trans::Yes => Trans::No,
    }
}

#[track_caller]
fn broadcast_dim(a: usize, b: usize) -> usize {
    if a == b || b == 1 {
        a
    } else if a == 1 {
        b
    } else {
        panic!("cannot broadcast dimensions {a} and {b}")
    }
}

#[inline]
fn bidx<S>(n: &Node<S>, i: usize, j: usize) -> usize {
    (if n.rows == 1 { 0 } else { i }) * n.cols + if n.cols == 1 { 0 } else { j }
}

/// Whether both operands of a broadcasting [`Tape::binary`] have the output's `cols` columns,
/// so that each is either the full output shape or one row repeated over the rows.
fn rows_line_up<S>(a: &Node<S>, b: &Node<S>, cols: usize) -> bool {
    a.cols == cols && b.cols == cols
}

/// The elements of an operand that line up with row `i` of the output (its row `i`, or its
/// only row when it is repeated).
fn row_range<S>(n: &Node<S>, i: usize) -> std::ops::Range<usize> {
    let start = if n.rows == 1 { 0 } else { i * n.cols };
    start..start + n.cols
}

/// Which operand of a [`Binary`] function a VJP loop differentiates.
#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
}

/// Runs `$body` with `$f` bound to each variant of the [`Unary`] value `$v` as a
/// constructor expression, so that after inlining every arm is a loop of one function (which
/// vectorises) instead of one loop with a `match` per element.
macro_rules! per_unary {
    ($v:expr, |$f:ident| $body:expr) => {
        match $v {
            Unary::Relu => {
                let $f = Unary::<S>::Relu;
                $body
            }
            Unary::Sigmoid => {
                let $f = Unary::<S>::Sigmoid;
                $body
            }
            Unary::Tanh => {
                let $f = Unary::<S>::Tanh;
                $body
            }
            Unary::Exp => {
                let $f = Unary::<S>::Exp;
                $body
            }
            Unary::Square => {
                let $f = Unary::<S>::Square;
                $body
            }
            Unary::Sqrt => {
                let $f = Unary::<S>::Sqrt;
                $body
            }
            Unary::Neg => {
                let $f = Unary::<S>::Neg;
                $body
            }
            Unary::Scale(c) => {
                let $f = Unary::Scale(c);
                $body
            }
            Unary::AddScalar(c) => {
                let $f = Unary::AddScalar(c);
                $body
            }
            Unary::Clamp(lo, hi) => {
                let $f = Unary::Clamp(lo, hi);
                $body
            }
        }
    };
}

simd_kernel! {
    /// `out = f(x)` element-wise (the forward loop of [`Tape::unary`]).
    UnaryForward<'a> { f: Unary<S>, x: &'a [S], out: &'a mut [S] }
    {
        per_unary!(f, |f| {
            for (o, &x) in out.iter_mut().zip(x) {
                *o = f.apply(x);
            }
        });
    }
}

/// `grad[i] = 0 + e(g[i], x[i], y[i])` ([`Beta::Overwrite`]) or `grad[i] += …`
/// ([`Beta::Accumulate`]): one loop each, for the element-wise VJP kernels. The `0 +` (free:
/// no memory is read) keeps the first contribution bit-identical to an addition into a
/// zero-filled arena, signed zeros included (`0 + (−0) = +0`).
#[inline(always)]
fn write_vjp<S: Scalar>(
    beta: Beta,
    grad: &mut [S],
    g: &[S],
    x: &[S],
    y: &[S],
    e: impl Fn(S, S, S) -> S,
) {
    let it = grad.iter_mut().zip(g).zip(x).zip(y);
    match beta {
        Beta::Overwrite => it.for_each(|(((d, &g), &x), &y)| *d = S::ZERO + e(g, x, y)),
        Beta::Accumulate => it.for_each(|(((d, &g), &x), &y)| *d += e(g, x, y)),
    }
}

simd_kernel! {
    /// `grad (=|+=) g · f'(x)` given `y = f(x)` (the VJP loop of [`Tape::unary`]).
    UnaryVjp<'a> { f: Unary<S>, beta: Beta, x: &'a [S], y: &'a [S], g: &'a [S], grad: &'a mut [S] }
    {
        per_unary!(f, |f| {
            write_vjp(beta, grad, g, x, y, |gg, x, y| f.vjp(x, y, gg));
        });
    }
}

simd_kernel! {
    /// `out = f(x, y)` element-wise for operands of the same shape ([`Tape::binary`]).
    BinaryForward<'a> { f: Binary, x: &'a [S], y: &'a [S], out: &'a mut [S] }
    {
        let it = out.iter_mut().zip(x).zip(y);
        match f {
            Binary::Add => it.for_each(|((o, &x), &y)| *o = x + y),
            Binary::Sub => it.for_each(|((o, &x), &y)| *o = x - y),
            Binary::Mul => it.for_each(|((o, &x), &y)| *o = x * y),
            Binary::Div => it.for_each(|((o, &x), &y)| *o = x / y),
        }
    }
}

simd_kernel! {
    /// `out = f(h + b)` row by row, `b` one row repeated ([`Tape::bias_act`]): the expressions
    /// of the bias add and of [`Unary::apply`].
    BiasActForward<'a> { f: Activation, h: &'a [S], b: &'a [S], out: &'a mut [S] }
    {
        let cols = b.len();
        if cols > 0 {
            for (o, h) in out.chunks_exact_mut(cols).zip(h.chunks_exact(cols)) {
                let it = o.iter_mut().zip(h).zip(b);
                match f {
                    Activation::Relu => it.for_each(|((o, &h), &b)| *o = (h + b).relu()),
                    Activation::Sigmoid => it.for_each(|((o, &h), &b)| *o = (h + b).sigmoid()),
                }
            }
        }
    }
}

simd_kernel! {
    /// `gx = 0 + f'·g` from the output `y` ([`Tape::bias_act`]'s VJP): the expressions of
    /// [`Unary::vjp`] (`H(y) = H(x)` for `y = relu(x)`), written as the activation node's
    /// first contribution is.
    BiasActVjp<'a> { f: Activation, g: &'a [S], y: &'a [S], gx: &'a mut [S] }
    {
        let it = gx.iter_mut().zip(g).zip(y);
        match f {
            Activation::Relu => it.for_each(|((d, &g), &y)| *d = S::ZERO + g * y.step()),
            Activation::Sigmoid => {
                it.for_each(|((d, &g), &y)| *d = S::ZERO + g * y * (S::ONE - y));
            }
        }
    }
}

simd_kernel! {
    /// `grad = 0 + gx` ([`Beta::Overwrite`]) or `grad += gx`: the bias add's VJP loop.
    BiasActAdd<'a> { beta: Beta, gx: &'a [S], grad: &'a mut [S] }
    {
        let it = grad.iter_mut().zip(gx);
        match beta {
            Beta::Overwrite => it.for_each(|(d, &x)| *d = S::ZERO + x),
            Beta::Accumulate => it.for_each(|(d, &x)| *d += x),
        }
    }
}

simd_kernel! {
    /// `grad += g ∂f/∂x` (`side` left) or `g ∂f/∂y` (right) for operands of the output's
    /// shape: the VJP loops of [`Tape::binary`] without broadcasting, with the same
    /// expressions (hence the same roundings) as its broadcasting loops.
    BinaryVjp<'a> {
        f: Binary, side: Side, beta: Beta, g: &'a [S], x: &'a [S], y: &'a [S], grad: &'a mut [S]
    }
    {
        match (side, f) {
            (Side::Left, Binary::Add | Binary::Sub) | (Side::Right, Binary::Add) => {
                write_vjp(beta, grad, g, x, y, |g, _, _| g);
            }
            (Side::Left, Binary::Mul) => write_vjp(beta, grad, g, x, y, |g, _, y| g * y),
            (Side::Left, Binary::Div) => write_vjp(beta, grad, g, x, y, |g, _, y| g / y),
            (Side::Right, Binary::Sub) => write_vjp(beta, grad, g, x, y, |g, _, _| -g),
            (Side::Right, Binary::Mul) => write_vjp(beta, grad, g, x, y, |g, x, _| g * x),
            (Side::Right, Binary::Div) => {
                write_vjp(beta, grad, g, x, y, |g, x, y| -g * x / (y * y));
            }
        }
    }
}
