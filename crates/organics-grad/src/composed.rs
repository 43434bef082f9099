//! The ORGaNICs Euler cell written with primitive [`Tape`] operations only.
//!
//! It computes exactly the step documented in [`crate::cell`] (same variants, same kinks) one
//! primitive at a time. It is the reference the fused operation [`Tape::organics_cell`] is
//! tested against, and a readable statement of the model:
//!
//! ```text
//! z   = W_zx x                      (⌊·⌋ if InputDrive::Rectified)
//! ŷ   = W_r ⌊y⌋  |  ⌊W_r y⌋
//! s0  = σ(W_bx0 x + W_by0 y + W_ba0 a),   s1 = σ(W_bx1 x + W_by1 y + W_ba1 a)
//! y'  = y  + δ_y  (−y + b1 z + (1 − √⌊a⌋) ŷ)
//! a'  = a  + δ_a  (−a + σ² b0² + W (⌊y⌋² ⌊a⌋))
//! b0' = b0 + δ_b0 (−b0 + s0),             b1' = b1 + δ_b1 (−b1 + s1)
//! ```

use crate::cell::{CellConfig, InputDrive, RecurrentDrive};
use crate::cell_op::CellVars;
use crate::scalar::Scalar;
use crate::tape::{Tape, Var};

/// One Euler step built from primitives; same inputs and output as [`Tape::organics_cell`].
///
/// # Panics
/// If the shapes do not fit (as the fused operation).
#[track_caller]
pub fn organics_cell_composed<S: Scalar>(
    t: &mut Tape<S>,
    cfg: &CellConfig,
    x: Var,
    state: Var,
    v: &CellVars,
) -> Var {
    let n = t.shape(state).1 / 4;
    let y = t.slice_cols(state, 0, n);
    let a = t.slice_cols(state, n, n);
    let b0 = t.slice_cols(state, 2 * n, n);
    let b1 = t.slice_cols(state, 3 * n, n);
    let dty = t.slice_cols(v.dt, 0, n);
    let dta = t.slice_cols(v.dt, n, n);
    let dtb0 = t.slice_cols(v.dt, 2 * n, n);
    let dtb1 = t.slice_cols(v.dt, 3 * n, n);

    let zp = t.linear(x, v.w_zx);
    let z = match cfg.input {
        InputDrive::Linear => zp,
        InputDrive::Rectified => t.relu(zp),
    };
    let ry = t.relu(y);
    let yhat = match cfg.recurrent {
        RecurrentDrive::RectifyBefore => t.linear(ry, v.w_r),
        RecurrentDrive::RectifyAfter => {
            let pre = t.linear(y, v.w_r);
            t.relu(pre)
        }
    };
    let gate = |t: &mut Tape<S>, wx: Var, wy: Var, wa: Var| {
        let gx = t.linear(x, wx);
        let gy = t.linear(y, wy);
        let ga = t.linear(a, wa);
        let s = t.add(gx, gy);
        let s = t.add(s, ga);
        t.sigmoid(s)
    };
    let s0 = gate(t, v.w_bx0, v.w_by0, v.w_ba0);
    let s1 = gate(t, v.w_bx1, v.w_by1, v.w_ba1);
    let ra = t.relu(a);
    let ry2 = t.square(ry);
    let vv = t.mul(ry2, ra);
    let u = t.linear(vv, v.w_norm);
    let rho = t.sqrt(a);

    // y' = y + δ_y (−y + b1 z + (1 − ρ) ŷ)
    let b1z = t.mul(b1, z);
    let neg_rho = t.neg(rho);
    let one_minus_rho = t.add_scalar(neg_rho, S::ONE);
    let gated = t.mul(one_minus_rho, yhat);
    let dy = t.sub(b1z, y);
    let dy = t.add(dy, gated);
    let dy = t.mul(dty, dy);
    let ny = t.add(y, dy);

    // a' = a + δ_a (−a + σ² b0² + u)
    let b0sq = t.square(b0);
    let drive = t.mul(v.sigma2, b0sq);
    let da = t.sub(drive, a);
    let da = t.add(da, u);
    let da = t.mul(dta, da);
    let na = t.add(a, da);

    // b_k' = b_k + δ_bk (−b_k + s_k)
    let db0 = t.sub(s0, b0);
    let db0 = t.mul(dtb0, db0);
    let nb0 = t.add(b0, db0);
    let db1 = t.sub(s1, b1);
    let db1 = t.mul(dtb1, db1);
    let nb1 = t.add(b1, db1);

    let ya = t.concat_cols(ny, na);
    let bb = t.concat_cols(nb0, nb1);
    t.concat_cols(ya, bb)
}
