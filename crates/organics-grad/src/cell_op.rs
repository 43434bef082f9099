//! The fused ORGaNICs Euler step ([`crate::cell`]) as a custom tape operation: its inputs
//! ([`CellVars`]), its forward pass ([`Tape::organics_cell`]) and its VJP side by side, with the
//! packing of the individual weight matrices into the kernel's layout and back. The nodes of
//! one tape share one set of kernel buffers (the operation's scratch).
//!
//! Forward: `[W_zx; W_bx0; W_bx1]` and `[[W_by0, W_ba0]; [W_by1, W_ba1]]` are packed into the
//! node's saved buffer (next to the step cache), and [`cell::forward_step`] computes the next
//! state. VJP: [`cell::backward_step`] gives the state, input, `δ` and `σ²` cotangents,
//! [`cell::accumulate_weight_grads`] the packed weight cotangents, which are unpacked onto the
//! individual weight leaves.

use crate::cell::{
    self, CellConfig, CellDims, CellWeightGrads, CellWeights, StepRecord, StepScratch,
    WeightGradBlock,
};
use crate::scalar::Scalar;
use crate::tape::{CustomOp, CustomOut, Node, Tape, Var, VjpCtx};

/// Inputs of the fused ORGaNICs cell on a tape (effective weights, see [`crate::cell`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellVars {
    /// `W_zx`, `n x m`.
    pub w_zx: Var,
    /// `W_bx0`, `n x m`.
    pub w_bx0: Var,
    /// `W_bx1`, `n x m`.
    pub w_bx1: Var,
    /// Effective `W_r`, `n x n`.
    pub w_r: Var,
    /// `W_by0`, `n x n`.
    pub w_by0: Var,
    /// `W_ba0`, `n x n`.
    pub w_ba0: Var,
    /// `W_by1`, `n x n`.
    pub w_by1: Var,
    /// `W_ba1`, `n x n`.
    pub w_ba1: Var,
    /// Effective normalisation weights `W`, `n x n`.
    pub w_norm: Var,
    /// `[δ_y | δ_a | δ_b0 | δ_b1]`, `1 x 4n`.
    pub dt: Var,
    /// `σ²`, `1 x n`.
    pub sigma2: Var,
}

/// One recorded cell step: its inputs and settings.
#[derive(Debug, Clone, Copy)]
struct CellOp {
    x: Var,
    state: Var,
    v: CellVars,
    cfg: CellConfig,
}

/// The kernel buffers the cell steps of one tape share (grown on demand, then reused).
#[derive(Debug, Default)]
struct CellScratch<S> {
    step: StepScratch<S>,
    grads: Option<CellWeightGrads<S>>,
}

impl<S: Scalar> CustomOp<S> for CellOp {
    type Scratch = CellScratch<S>;

    fn vjp(&self, ctx: &mut VjpCtx<'_, S>, scratch: &mut CellScratch<S>, tmp: &mut Vec<S>) {
        organics_cell_vjp(ctx, self, tmp, scratch);
    }
}

impl<S: Scalar> Tape<S> {
    /// One fused ORGaNICs Euler step (see [`crate::cell`]): `x` is `batch x m`, `state` is
    /// `batch x 4n` (`[y | a | b0 | b1]`); returns the next state.
    ///
    /// # Panics
    /// If the shapes do not fit.
    #[track_caller]
    pub fn organics_cell(&mut self, cfg: &CellConfig, x: Var, state: Var, v: &CellVars) -> Var {
        let (nx, ns) = (self.node(x), self.node(state));
        let n = ns.cols / 4;
        let m = nx.cols;
        let rows = nx.rows;
        assert!(
            ns.cols == 4 * n && ns.rows == rows,
            "organics_cell: state must be batch x 4n"
        );
        for (name, var, r, c) in [
            ("w_zx", v.w_zx, n, m),
            ("w_bx0", v.w_bx0, n, m),
            ("w_bx1", v.w_bx1, n, m),
            ("w_r", v.w_r, n, n),
            ("w_by0", v.w_by0, n, n),
            ("w_ba0", v.w_ba0, n, n),
            ("w_by1", v.w_by1, n, n),
            ("w_ba1", v.w_ba1, n, n),
            ("w_norm", v.w_norm, n, n),
            ("dt", v.dt, 1, 4 * n),
            ("sigma2", v.sigma2, 1, n),
        ] {
            assert_eq!(
                self.shape(var),
                (r, c),
                "organics_cell: {name} must be {r} x {c}"
            );
        }
        let needs = [
            x, state, v.w_zx, v.w_bx0, v.w_bx1, v.w_r, v.w_by0, v.w_ba0, v.w_by1, v.w_ba1,
            v.w_norm, v.dt, v.sigma2,
        ]
        .iter()
        .any(|&u| self.nodes[u.index()].needs_grad);
        let dims = CellDims { n, m };
        let aux_len = 3 * n * m + 4 * n * n + rows * cell::cache_width(n);
        let op = CellOp {
            x,
            state,
            v: *v,
            cfg: *cfg,
        };
        let CustomOut {
            var,
            nodes,
            lo,
            out,
            aux,
            scratch,
        } = self.push_custom(rows, 4 * n, op, needs, aux_len);
        let (packed, cache) = aux.split_at_mut(3 * n * m + 4 * n * n);
        pack_cell_weights(lo, nodes, v, dims, packed);
        let (wx, wg) = packed.split_at(3 * n * m);
        let weights = CellWeights {
            dims,
            wx,
            wr: Self::val(lo, &nodes[v.w_r.index()]),
            wg,
            w: Self::val(lo, &nodes[v.w_norm.index()]),
            dt: Self::val(lo, &nodes[v.dt.index()]),
            sigma2: Self::val(lo, &nodes[v.sigma2.index()]),
        };
        cell::forward_step(
            cfg,
            &weights,
            rows,
            Self::val(lo, &nx),
            Self::val(lo, &ns),
            out,
            cache,
            &mut scratch.step,
        );
        var
    }
}

/// The VJP of [`Tape::organics_cell`] for its node in `ctx` (`tmp`, `scratch`: the tape's
/// reusable buffers).
fn organics_cell_vjp<S: Scalar>(
    ctx: &mut VjpCtx<'_, S>,
    &CellOp { x, state, v, cfg }: &CellOp,
    tmp: &mut Vec<S>,
    scratch: &mut CellScratch<S>,
) {
    let CellScratch {
        step: scratch,
        grads: cell_grads,
    } = scratch;
    let (g, node) = (ctx.g, ctx.node);
    let nx = ctx.nodes[x.index()];
    let n = node.cols / 4;
    let m = nx.cols;
    let rows = node.rows;
    let dims = CellDims { n, m };
    let aux = ctx.node_aux(3 * n * m + 4 * n * n + rows * cell::cache_width(n));
    let (packed, cache) = aux.split_at(3 * n * m + 4 * n * n);
    let (wx, wg) = packed.split_at(3 * n * m);
    let weights = CellWeights {
        dims,
        wx,
        wr: ctx.val(v.w_r),
        wg,
        w: ctx.val(v.w_norm),
        dt: ctx.val(v.dt),
        sigma2: ctx.val(v.sigma2),
    };
    let grads = cell_grads.get_or_insert_with(|| CellWeightGrads::zeros(dims));
    if grads.wx.len() != 3 * n * m || grads.wr.len() != n * n {
        *grads = CellWeightGrads::zeros(dims);
    } else {
        grads.clear();
    }
    // Record buffers and the state gradient in `tmp`.
    let sw = cell::state_width(n);
    let sizes = [
        rows * sw,
        rows * 3 * n,
        rows * n,
        rows * n,
        rows * n,
        rows * n,
        rows * m,
    ];
    let total: usize = sizes.iter().sum();
    tmp.clear();
    tmp.resize(total, S::ZERO);
    let (gstate, rest) = tmp.split_at_mut(sizes[0]);
    let (dp, rest) = rest.split_at_mut(sizes[1]);
    let (dyhat, rest) = rest.split_at_mut(sizes[2]);
    let (du, rest) = rest.split_at_mut(sizes[3]);
    let (r, rest) = rest.split_at_mut(sizes[4]);
    let (vbuf, dx) = rest.split_at_mut(sizes[5]);
    let want_dx = nx.needs_grad;
    cell::backward_step(
        &cfg,
        &weights,
        rows,
        ctx.val(x),
        ctx.val(state),
        cache,
        g,
        gstate,
        StepRecord {
            dp,
            dyhat,
            du,
            r,
            v: vbuf,
        },
        &mut grads.dt,
        &mut grads.sigma2,
        if want_dx { Some(dx) } else { None },
        scratch,
    );
    let blk = WeightGradBlock {
        rows,
        x: ctx.val(x),
        states: ctx.val(state),
        dp,
        dyhat,
        du,
        r,
        v: vbuf,
    };
    cell::accumulate_weight_grads(&cfg, dims, &blk, grads);
    if let Some(gs) = ctx.grad_mut(state) {
        crate::linalg::add_assign(gs, gstate);
    }
    if let Some(gx) = ctx.grad_mut(x) {
        crate::linalg::add_assign(gx, dx);
    }
    unpack_cell_grads(ctx, &v, dims, grads);
}

/// Packs `[W_zx; W_bx0; W_bx1]` and `[[W_by0, W_ba0]; [W_by1, W_ba1]]` into `packed`.
fn pack_cell_weights<S: Scalar>(
    values: &[S],
    nodes: &[Node<S>],
    v: &CellVars,
    d: CellDims,
    packed: &mut [S],
) {
    let CellDims { n, m } = d;
    let val = |u: Var| {
        let nd = &nodes[u.index()];
        &values[nd.off..nd.off + nd.len()]
    };
    let (wx, wg) = packed.split_at_mut(3 * n * m);
    wx[..n * m].copy_from_slice(val(v.w_zx));
    wx[n * m..2 * n * m].copy_from_slice(val(v.w_bx0));
    wx[2 * n * m..].copy_from_slice(val(v.w_bx1));
    for (blk_row, (left, right)) in [(0, (v.w_by0, v.w_ba0)), (1, (v.w_by1, v.w_ba1))] {
        let (l, r) = (val(left), val(right));
        for i in 0..n {
            let row = &mut wg[(blk_row * n + i) * 2 * n..(blk_row * n + i + 1) * 2 * n];
            row[..n].copy_from_slice(&l[i * n..(i + 1) * n]);
            row[n..].copy_from_slice(&r[i * n..(i + 1) * n]);
        }
    }
}

/// Adds packed-weight gradients to the gradients of the individual cell inputs.
fn unpack_cell_grads<S: Scalar>(
    ctx: &mut VjpCtx<'_, S>,
    v: &CellVars,
    d: CellDims,
    g: &CellWeightGrads<S>,
) {
    let CellDims { n, m } = d;
    let mut add = |u: Var, src: &mut dyn FnMut(&mut [S])| {
        if let Some(dst) = ctx.grad_mut(u) {
            src(dst);
        }
    };
    add(v.w_zx, &mut |dst| {
        crate::linalg::add_assign(dst, &g.wx[..n * m])
    });
    add(v.w_bx0, &mut |dst| {
        crate::linalg::add_assign(dst, &g.wx[n * m..2 * n * m])
    });
    add(v.w_bx1, &mut |dst| {
        crate::linalg::add_assign(dst, &g.wx[2 * n * m..])
    });
    add(v.w_r, &mut |dst| crate::linalg::add_assign(dst, &g.wr));
    add(v.w_norm, &mut |dst| crate::linalg::add_assign(dst, &g.w));
    add(v.dt, &mut |dst| crate::linalg::add_assign(dst, &g.dt));
    add(v.sigma2, &mut |dst| {
        crate::linalg::add_assign(dst, &g.sigma2)
    });
    for (blk_row, (left, right)) in [(0usize, (v.w_by0, v.w_ba0)), (1, (v.w_by1, v.w_ba1))] {
        add(left, &mut |dst| {
            for i in 0..n {
                let row = &g.wg[(blk_row * n + i) * 2 * n..(blk_row * n + i + 1) * 2 * n];
                crate::linalg::add_assign(&mut dst[i * n..(i + 1) * n], &row[..n]);
            }
        });
        add(right, &mut |dst| {
            for i in 0..n {
                let row = &g.wg[(blk_row * n + i) * 2 * n..(blk_row * n + i + 1) * 2 * n];
                crate::linalg::add_assign(&mut dst[i * n..(i + 1) * n], &row[n..]);
            }
        });
    }
}
