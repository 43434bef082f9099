//! The element-wise parts of the LSTM cell (PyTorch `nn.LSTM`, gate order `i, f, g, o`) and
//! of the tanh-RNN cell (`nn.RNN`), with their hand-derived VJPs. The matrix products around
//! them (the pre-activation `p` and the recurrent cotangent `p̄ W_hh`) are
//! [`crate::recurrent`]'s.
//!
//! **LSTM.** With the pre-activation `p = [p_i | p_f | p_g | p_o]` (bias included) and the
//! state `(h, c)`:
//!
//! $$
//! i = \sigma(p_i),\; f = \sigma(p_f),\; g = \tanh p_g,\; o = \sigma(p_o),\qquad
//! c' = f \odot c + i \odot g,\qquad h' = o \odot \tanh c'.
//! $$
//!
//! Its VJP, for cotangents `(h̄', c̄')` of the next state, with `τ = tanh c'`:
//!
//! ```text
//! ĉ   = c̄' + h̄' ⊙ o ⊙ (1 − τ²)            (total cotangent of c')
//! p̄_i = ĉ ⊙ g ⊙ i(1 − i),   p̄_f = ĉ ⊙ c ⊙ f(1 − f),
//! p̄_g = ĉ ⊙ i ⊙ (1 − g²),   p̄_o = h̄' ⊙ τ ⊙ o(1 − o),
//! c̄   = ĉ ⊙ f,
//! ```
//!
//! and `h̄ = p̄ W_hh` (a GEMM, in [`crate::recurrent`]). The forward pass caches the gate
//! activations `[i | f | g | o]`; `τ` is recomputed from `c'` (same function, same value).
//!
//! **tanh RNN.** `h' = tanh p`, `p̄ = h̄' ⊙ (1 − h'²)`; nothing is cached (`h'` is the next
//! state).
//!
//! **tanh.** `tanh x` is evaluated as `2σ(2x) − 1` through [`Scalar::sigmoid`] (the
//! vectorising `exp` of [`crate::scalar`]), so that these loops vectorise; in `f32` it differs
//! from the correctly rounded `tanh` by a few ulps of 1 (about `2e-7` absolute), and it is
//! exactly odd up to rounding and saturates at `±1`. The VJPs use the computed values
//! (`1 − g²`, `1 − τ²`), as PyTorch's do.

use crate::scalar::Scalar;
use crate::simd::{PREFETCH_ROWS, Prefetch, simd_kernel};

/// `tanh x = 2σ(2x) − 1` (see the module docs).
#[inline(always)]
pub fn tanh<S: Scalar>(x: S) -> S {
    let two = S::from_f64(2.0);
    two * (two * x).sigmoid() - S::ONE
}

/// `(σ(a), tanh b)` with one division ([`Scalar::sigmoid_pair`]).
#[inline(always)]
fn sigmoid_tanh<S: Scalar>(a: S, b: S) -> (S, S) {
    let two = S::from_f64(2.0);
    let (s, t) = S::sigmoid_pair(a, two * b);
    (s, two * t - S::ONE)
}

simd_kernel! {
    /// LSTM forward for every row: reads the pre-activations `p` (`rows x 4n`, without bias),
    /// the bias (`4n`) and the state rows `[h | c]`; writes the gates `[i | f | g | o]` into
    /// `cache` and `[h' | c']` into `next`.
    LstmForwardRows<'a> {
        rows: usize, n: usize,
        p: &'a [S], bias: &'a [S], state: &'a [S], cache: &'a mut [S], next: &'a mut [S],
    }
    {
        let (bi, bf, bg, bo) = split4(bias, n);
        for b in 0..rows {
            let (pi, pf, pg, po) = split4(&p[b * 4 * n..(b + 1) * 4 * n], n);
            let c = &state[b * 2 * n + n..(b + 1) * 2 * n];
            let (gi, gf, gg, go) = split4_mut(&mut cache[b * 4 * n..(b + 1) * 4 * n], n);
            let (nh, nc) = next[b * 2 * n..(b + 1) * 2 * n].split_at_mut(n);
            lstm_forward_row(pi, pf, pg, po, bi, bf, bg, bo, c, gi, gf, gg, go, nh, nc);
        }
    }
}

simd_kernel! {
    /// LSTM VJP for every row: reads `g_next = [h̄' | c̄']`, the state `[h | c]`, the next
    /// state `[h' | c']` and the gates; writes `p̄` into `dp` (`rows x 4n`), `c̄` into the `c`
    /// half of `g_state` (its `h` half is the caller's GEMM), and adds `Σ_rows p̄` to `db`.
    LstmBackwardRows<'a> {
        rows: usize, n: usize,
        g_next: &'a [S], state: &'a [S], next: &'a [S], cache: &'a [S],
        dp: &'a mut [S], g_state: &'a mut [S], db: &'a mut [S],
    }
    {
        let (dbi, rest) = db[..4 * n].split_at_mut(n);
        let (dbf, rest) = rest.split_at_mut(n);
        let (dbg, dbo) = rest.split_at_mut(n);
        let pf = Prefetch::new();
        for b in 0..rows {
            let ahead = b + PREFETCH_ROWS;
            if ahead < rows {
                pf.lines(&cache[ahead * 4 * n..(ahead + 1) * 4 * n]);
                pf.lines(&state[ahead * 2 * n + n..(ahead + 1) * 2 * n]);
                pf.lines(&next[ahead * 2 * n + n..(ahead + 1) * 2 * n]);
            }
            let (gh, gc) = g_next[b * 2 * n..(b + 1) * 2 * n].split_at(n);
            let c = &state[b * 2 * n + n..(b + 1) * 2 * n];
            let c2 = &next[b * 2 * n + n..(b + 1) * 2 * n];
            let (gi, gf, gg, go) = split4(&cache[b * 4 * n..(b + 1) * 4 * n], n);
            let (dpi, dpf, dpg, dpo) = split4_mut(&mut dp[b * 4 * n..(b + 1) * 4 * n], n);
            let oc = &mut g_state[b * 2 * n + n..(b + 1) * 2 * n];
            lstm_backward_row(
                gh, gc, c, c2, gi, gf, gg, go, dpi, dpf, dpg, dpo, oc, dbi, dbf, dbg, dbo,
            );
        }
    }
}

simd_kernel! {
    /// tanh-RNN forward for every row: `h' = tanh(p + bias)`.
    TanhForwardRows<'a> {
        rows: usize, n: usize, p: &'a [S], bias: &'a [S], next: &'a mut [S],
    }
    {
        for b in 0..rows {
            tanh_forward_row(&p[b * n..(b + 1) * n], bias, &mut next[b * n..(b + 1) * n]);
        }
    }
}

simd_kernel! {
    /// tanh-RNN VJP for every row: `p̄ = h̄' (1 − h'²)` into `dp`, `Σ_rows p̄` added to `db`.
    TanhBackwardRows<'a> {
        rows: usize, n: usize, g_next: &'a [S], next: &'a [S], dp: &'a mut [S], db: &'a mut [S],
    }
    {
        for b in 0..rows {
            let r = b * n..(b + 1) * n;
            tanh_backward_row(&g_next[r.clone()], &next[r.clone()], &mut dp[r], db);
        }
    }
}

/// Runs the LSTM forward kernel (see [`LstmForwardRows`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_forward<S: Scalar>(
    isa: crate::simd::InstructionSet,
    rows: usize,
    n: usize,
    p: &[S],
    bias: &[S],
    state: &[S],
    cache: &mut [S],
    next: &mut [S],
) {
    isa.dispatch(LstmForwardRows {
        rows,
        n,
        p,
        bias,
        state,
        cache,
        next,
    });
}

/// Runs the LSTM VJP kernel (see [`LstmBackwardRows`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_backward<S: Scalar>(
    isa: crate::simd::InstructionSet,
    rows: usize,
    n: usize,
    g_next: &[S],
    state: &[S],
    next: &[S],
    cache: &[S],
    dp: &mut [S],
    g_state: &mut [S],
    db: &mut [S],
) {
    isa.dispatch(LstmBackwardRows {
        rows,
        n,
        g_next,
        state,
        next,
        cache,
        dp,
        g_state,
        db,
    });
}

/// Runs the tanh-RNN forward kernel (see [`TanhForwardRows`]).
pub(crate) fn tanh_forward<S: Scalar>(
    isa: crate::simd::InstructionSet,
    rows: usize,
    n: usize,
    p: &[S],
    bias: &[S],
    next: &mut [S],
) {
    isa.dispatch(TanhForwardRows {
        rows,
        n,
        p,
        bias,
        next,
    });
}

/// Runs the tanh-RNN VJP kernel (see [`TanhBackwardRows`]).
pub(crate) fn tanh_backward<S: Scalar>(
    isa: crate::simd::InstructionSet,
    rows: usize,
    n: usize,
    g_next: &[S],
    next: &[S],
    dp: &mut [S],
    db: &mut [S],
) {
    isa.dispatch(TanhBackwardRows {
        rows,
        n,
        g_next,
        next,
        dp,
        db,
    });
}

/// Four consecutive length-`n` pieces of `s`.
#[inline(always)]
fn split4<S>(s: &[S], n: usize) -> (&[S], &[S], &[S], &[S]) {
    (&s[..n], &s[n..2 * n], &s[2 * n..3 * n], &s[3 * n..4 * n])
}

/// Four consecutive mutable length-`n` pieces of `s`.
#[inline(always)]
fn split4_mut<S>(s: &mut [S], n: usize) -> (&mut [S], &mut [S], &mut [S], &mut [S]) {
    let (p, rest) = s[..4 * n].split_at_mut(n);
    let (q, rest) = rest.split_at_mut(n);
    let (r, t) = rest.split_at_mut(n);
    (p, q, r, t)
}

/// One LSTM row forward (every slice its own argument, so the loop vectorises without
/// overlap checks; always inlined into the dispatched kernel).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_forward_row<S: Scalar>(
    pi: &[S],
    pf: &[S],
    pg: &[S],
    po: &[S],
    bi: &[S],
    bf: &[S],
    bg: &[S],
    bo: &[S],
    c: &[S],
    gi: &mut [S],
    gf: &mut [S],
    gg: &mut [S],
    go: &mut [S],
    nh: &mut [S],
    nc: &mut [S],
) {
    let n = c.len();
    let (pi, pf, pg, po) = (&pi[..n], &pf[..n], &pg[..n], &po[..n]);
    let (bi, bf, bg, bo) = (&bi[..n], &bf[..n], &bg[..n], &bo[..n]);
    let (gi, gf, gg, go) = (&mut gi[..n], &mut gf[..n], &mut gg[..n], &mut go[..n]);
    let (nh, nc) = (&mut nh[..n], &mut nc[..n]);
    for k in 0..n {
        let (i, f) = S::sigmoid_pair(pi[k] + bi[k], pf[k] + bf[k]);
        let (o, g) = sigmoid_tanh(po[k] + bo[k], pg[k] + bg[k]);
        let c2 = f * c[k] + i * g;
        gi[k] = i;
        gf[k] = f;
        gg[k] = g;
        go[k] = o;
        nc[k] = c2;
        nh[k] = o * tanh(c2);
    }
}

/// One LSTM row of the VJP (see [`lstm_forward_row`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_backward_row<S: Scalar>(
    gh: &[S],
    gc: &[S],
    c: &[S],
    c2: &[S],
    gi: &[S],
    gf: &[S],
    gg: &[S],
    go: &[S],
    dpi: &mut [S],
    dpf: &mut [S],
    dpg: &mut [S],
    dpo: &mut [S],
    oc: &mut [S],
    dbi: &mut [S],
    dbf: &mut [S],
    dbg: &mut [S],
    dbo: &mut [S],
) {
    let n = c.len();
    let (gh, gc, c2) = (&gh[..n], &gc[..n], &c2[..n]);
    let (gi, gf, gg, go) = (&gi[..n], &gf[..n], &gg[..n], &go[..n]);
    let (dpi, dpf, dpg, dpo) = (&mut dpi[..n], &mut dpf[..n], &mut dpg[..n], &mut dpo[..n]);
    let oc = &mut oc[..n];
    let (dbi, dbf, dbg, dbo) = (&mut dbi[..n], &mut dbf[..n], &mut dbg[..n], &mut dbo[..n]);
    for k in 0..n {
        let (i, f, g, o) = (gi[k], gf[k], gg[k], go[k]);
        let tc = tanh(c2[k]);
        let ct = gc[k] + gh[k] * o * (S::ONE - tc * tc);
        let di = ct * g * i * (S::ONE - i);
        let df = ct * c[k] * f * (S::ONE - f);
        let dg = ct * i * (S::ONE - g * g);
        let dq = gh[k] * tc * o * (S::ONE - o);
        dpi[k] = di;
        dpf[k] = df;
        dpg[k] = dg;
        dpo[k] = dq;
        dbi[k] += di;
        dbf[k] += df;
        dbg[k] += dg;
        dbo[k] += dq;
        oc[k] = ct * f;
    }
}

/// One tanh-RNN row forward.
#[inline(always)]
fn tanh_forward_row<S: Scalar>(p: &[S], bias: &[S], next: &mut [S]) {
    let n = p.len();
    let (bias, next) = (&bias[..n], &mut next[..n]);
    for k in 0..n {
        next[k] = tanh(p[k] + bias[k]);
    }
}

/// One tanh-RNN row of the VJP.
#[inline(always)]
fn tanh_backward_row<S: Scalar>(g_next: &[S], next: &[S], dp: &mut [S], db: &mut [S]) {
    let n = g_next.len();
    let (next, dp, db) = (&next[..n], &mut dp[..n], &mut db[..n]);
    for k in 0..n {
        let d = g_next[k] * (S::ONE - next[k] * next[k]);
        dp[k] = d;
        db[k] += d;
    }
}
