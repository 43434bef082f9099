#!/usr/bin/env python3
"""The sMNIST ORGaNICs training step in JAX/XLA: a second, compiled reference next to PyTorch.

The same step as `bench/torch_reference.py` (`train_step`): batch 256, n = 128, T = 784 pixel
steps of the rectified, gated ORGaNICs cell (spec D.2, docs/model.md), Linear(n, 10) readout on
y_T, mean cross-entropy, Adam(lr 0.01, betas (0.9, 0.999), eps 1e-8) with weight decay 1e-5
added to the gradient as L2 (torch.optim.Adam's convention). Written independently in JAX: the
time loop is one `jax.lax.scan`, and the whole step (forward, reverse-mode gradient through the
scan, Adam) is one `jax.jit` function. Compilation is excluded (a warm-up step), each step is
timed to `block_until_ready`, and the median of the repetitions is printed as

    jax_train_step_1t: median_s=<seconds> gflops=<GFLOP/s>

with the same explicit GEMM FLOP count as torch_reference (so the GFLOP/s are comparable).

Threads. Each thread count runs in its own child process whose CPU affinity is set (with
`os.sched_setaffinity`, before jax is imported) to the first k CPUs this process may use; every
thread XLA starts afterwards inherits that mask, so the k-thread run uses k cores whatever the
sizes of XLA's thread pools (not checked here). The 1-thread run also sets `XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`
(single-threaded Eigen GEMMs and convolutions). Intra-op thread counts of TensorFlow
(`intra_op_parallelism_threads`) are not XLA flags and have no effect here.

Flush-to-zero: XLA's CPU client runs compiled code with FTZ and DAZ set (denormal results and
operands are zero); the worker measures this on a denormal input and prints it as a `# ` line.

`--check` (needs torch and jax in one interpreter, or see `--dump`/`--compare`): on identical
weights and inputs (seeded numpy, batch 8, T = 28) the JAX loss, gradients and one Adam step
agree with torch_reference's OrganicsRnn; see `check()` for the tolerances.

Usage: python3 bench/jax_reference.py [--quick] [--threads 1 2]
       python3 bench/jax_reference.py --check
       python3 bench/jax_reference.py --dump F.npz   (torch interpreter)
       python3 bench/jax_reference.py --compare F.npz (jax interpreter)
Nothing here is needed to build or test the Rust crates.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

BATCH = 256
HIDDEN = 128
STEPS = 784
CLASSES = 10
MAX_Y, MAX_A, MAX_B = 0.02, 0.005, 0.1
LR, WEIGHT_DECAY, BETA1, BETA2, ADAM_EPS = 0.01, 1e-5, 0.9, 0.999, 1e-8
NORM_EPS = 1e-12  # F.normalize's eps in torch's spectral-norm power iteration

# Parameter names, matching torch_reference's OrganicsRnn.named_parameters().
TORCH_NAMES = {
    "W_zx": "cell.W_zx",
    "W_bx0": "cell.W_bx0",
    "W_by0": "cell.W_by0",
    "W_ba0": "cell.W_ba0",
    "W_bx1": "cell.W_bx1",
    "W_by1": "cell.W_by1",
    "W_ba1": "cell.W_ba1",
    "W_r": "cell.W_r.parametrizations.weight.original",
    "log_W": "cell.log_W",
    "p_y": "cell.p_y",
    "p_a": "cell.p_a",
    "p_b0": "cell.p_b0",
    "p_b1": "cell.p_b1",
    "fc_w": "readout.weight",
    "fc_b": "readout.bias",
}


def step_flops(rows_per_thread):
    """GEMM FLOPs of one step. Copied formula (not imported, importing would pull torch) from
    bench/torch_reference.py `step_flops`, itself organics_grad::bptt::train_step_flops."""
    n, m = HIDDEN, 1

    def g(a, b, c):
        return 2.0 * a * b * c

    total = 0.0
    for r in rows_per_thread:
        fwd = g(r, m, 3 * n) + 2 * g(r, n, n) + g(r, 2 * n, 2 * n)
        bwd_state = g(r, m, 3 * n) + 2 * g(r, n, n) + g(r, 2 * n, 2 * n)
        bwd_w = g(3 * n, r, m) + 2 * g(n, r, n) + g(2 * n, r, 2 * n)
        total += STEPS * (fwd + bwd_state + bwd_w) + 3 * g(r, n, CLASSES)
    return total


def init_model(seed, n=HIDDEN, m=1, classes=CLASSES, dtype=np.float32):
    """Parameters and buffers with torch_reference's initial distributions, from numpy."""
    rng = np.random.default_rng(seed)

    def kaiming(shape, fan_in):  # kaiming_uniform_(a=sqrt 5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        b = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape)

    def unit(k):
        u = rng.standard_normal(k)
        return u / np.linalg.norm(u)

    p = {k: kaiming((n, m), m) for k in ("W_zx", "W_bx0", "W_bx1")}
    p.update({k: kaiming((n, n), n) for k in ("W_by0", "W_ba0", "W_by1", "W_ba1")})
    p["W_zx"] /= np.linalg.norm(p["W_zx"], 2)
    p["W_r"] = np.eye(n)
    log_w = -rng.random((n, n))
    np.fill_diagonal(log_w, 0.0)
    p["log_W"] = log_w
    for k in ("p_y", "p_a", "p_b0", "p_b1"):
        p[k] = rng.standard_normal(n)
    p["fc_w"] = kaiming((classes, n), n)
    p["fc_b"] = kaiming((classes,), n)
    bufs = {
        "y0": unit(n),
        "a0": rng.random(n),
        "b0_0": np.ones(n),
        "b1_0": rng.random(n),
        "sigma": np.ones(n),
        "sn_u": unit(n),
        "sn_v": unit(n),
    }
    cast = lambda d: {k: np.asarray(v, dtype) for k, v in d.items()}  # noqa: E731
    return cast(p), cast(bufs)


def build(jax):
    """The loss and the jitted training step, built on an imported `jax` module."""
    jnp = jax.numpy
    sg = jax.lax.stop_gradient

    def normalize(x):
        return x / jnp.maximum(jnp.linalg.norm(x), NORM_EPS)

    def loss_fn(p, bufs, seq, labels):
        n = p["W_r"].shape[0]
        # W_r = I + SN(W): one power iteration without gradient (as torch's spectral_norm in
        # training mode), then W / (u . W v) with the gradient through W only.
        w_raw = p["W_r"]
        u = sg(normalize(w_raw @ bufs["sn_v"]))
        v = sg(normalize(w_raw.T @ u))
        wr = jnp.eye(n, dtype=w_raw.dtype) + w_raw / (u @ (w_raw @ v))
        w = jnp.exp(p["log_W"])
        dty = MAX_Y * jax.nn.sigmoid(p["p_y"])
        dta = MAX_A * jax.nn.sigmoid(p["p_a"])
        dtb0 = MAX_B * jax.nn.sigmoid(p["p_b0"])
        dtb1 = MAX_B * jax.nn.sigmoid(p["p_b1"])
        sigma2 = bufs["sigma"] ** 2
        # Fused input and gate weights: x [W_zx; W_bx0; W_bx1]^T is z | x-part of the gates,
        # [y a] Wg is the recurrent part of both gates (the FLOP count's 3n and 2n x 2n GEMMs).
        wx = jnp.concatenate([p["W_zx"], p["W_bx0"], p["W_bx1"]], axis=0).T
        wg = jnp.block([[p["W_by0"].T, p["W_by1"].T], [p["W_ba0"].T, p["W_ba1"].T]])
        wr_t, w_t = wr.T, w.T

        def cell(state, x):
            y, a, b0, b1 = state
            xp = x @ wx
            z, gx0, gx1 = xp[:, :n], xp[:, n : 2 * n], xp[:, 2 * n :]
            ry = jax.nn.relu(y)
            ra = jax.nn.relu(a)
            yhat = ry @ wr_t
            gates = jnp.concatenate([y, a], axis=1) @ wg
            s0 = jax.nn.sigmoid(gx0 + gates[:, :n])
            s1 = jax.nn.sigmoid(gx1 + gates[:, n:])
            u_a = (ry * ry * ra) @ w_t
            y_new = y + dty * (-y + b1 * z + (1.0 - jnp.sqrt(ra)) * yhat)
            a_new = a + dta * (-a + sigma2 * b0 * b0 + u_a)
            b0_new = b0 + dtb0 * (-b0 + s0)
            b1_new = b1 + dtb1 * (-b1 + s1)
            return (y_new, a_new, b0_new, b1_new), None

        batch = seq.shape[1]
        init = tuple(jnp.broadcast_to(bufs[k], (batch, n)) for k in ("y0", "a0", "b0_0", "b1_0"))
        (y, _, _, _), _ = jax.lax.scan(cell, init, seq)
        logits = y @ p["fc_w"].T + p["fc_b"]
        picked = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
        loss = jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)
        return loss, (u, v)

    def adam(p, grads, opt):
        """torch.optim.Adam (amsgrad off): L2 weight decay added to the gradient."""
        t = opt["t"] + 1
        bc1 = 1.0 - BETA1**t
        bc2 = 1.0 - BETA2**t
        g = jax.tree.map(lambda gi, pi: gi + WEIGHT_DECAY * pi, grads, p)
        m = jax.tree.map(lambda mi, gi: BETA1 * mi + (1.0 - BETA1) * gi, opt["m"], g)
        v = jax.tree.map(lambda vi, gi: BETA2 * vi + (1.0 - BETA2) * gi * gi, opt["v"], g)
        new_p = jax.tree.map(
            lambda pi, mi, vi: pi - (LR / bc1) * mi / (jnp.sqrt(vi) / jnp.sqrt(bc2) + ADAM_EPS),
            p,
            m,
            v,
        )
        return new_p, {"t": t, "m": m, "v": v}

    def train_step(p, opt, bufs, seq, labels):
        (loss, (u, v)), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, bufs, seq, labels)
        new_p, new_opt = adam(p, grads, opt)
        new_bufs = dict(bufs, sn_u=u, sn_v=v)
        return new_p, new_opt, new_bufs, loss, grads

    def init_opt(p):
        zeros = jax.tree.map(jnp.zeros_like, p)
        return {"t": jnp.zeros((), jnp.int32), "m": zeros, "v": jax.tree.map(jnp.zeros_like, p)}

    return loss_fn, train_step, init_opt


def worker(threads, reps):
    """One thread count, in this process: affinity first, then jax."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < threads:
        sys.exit(f"--threads {threads}: only {len(cpus)} CPUs available to this process")
    os.sched_setaffinity(0, cpus[:threads])
    if threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    import jax

    jax.config.update("jax_platforms", "cpu")
    jnp = jax.numpy
    _, train_step, init_opt = build(jax)
    step = jax.jit(train_step, donate_argnums=(0, 1, 2))

    if threads == 1:
        tiny = np.array([1e-39], np.float32)  # a float32 denormal
        out = float(jax.jit(lambda x: x * 2.0)(tiny)[0])
        print(f"# jax {jax.__version__}: XLA CPU {'flushes denormals to zero' if out == 0.0 else 'keeps denormals'} (2 * 1e-39 = {out:g})")

    rng = np.random.default_rng(2024)
    pixels = rng.random((STEPS, BATCH, 1), dtype=np.float32)
    keep = rng.random((STEPS, BATCH, 1)) >= 0.8
    seq = jnp.asarray(pixels * keep)  # MNIST-like: most pixels are zero
    labels = jnp.asarray(rng.integers(0, CLASSES, BATCH), jnp.int32)
    p, bufs = init_model(7)
    p = jax.tree.map(jnp.asarray, p)
    bufs = jax.tree.map(jnp.asarray, bufs)
    opt = init_opt(p)

    t0 = time.perf_counter()
    p, opt, bufs, loss, _ = step(p, opt, bufs, seq, labels)  # compiles
    jax.block_until_ready(p)
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        p, opt, bufs, loss, _ = step(p, opt, bufs, seq, labels)
        jax.block_until_ready((p, opt, bufs, loss))
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    if not np.isfinite(float(loss)):
        sys.exit(f"jax_train_step_{threads}t: loss is not finite ({float(loss)})")
    rows = [(i + 1) * BATCH // threads - i * BATCH // threads for i in range(threads)]
    print(f"# jax_train_step_{threads}t: first call (compile + one step) {compile_s:.2f} s, loss {float(loss):.4f}")
    print(f"jax_train_step_{threads}t: median_s={s:.4f} gflops={step_flops(rows) / s / 1e9:.1f}", flush=True)


# --- Cross-check against torch_reference (same weights and inputs, small T and batch)

CHECK_T, CHECK_B, CHECK_SEED = 28, 8, 11


def check_inputs():
    rng = np.random.default_rng(CHECK_SEED)
    pixels = rng.random((CHECK_T, CHECK_B, 1))
    seq = pixels * (rng.random((CHECK_T, CHECK_B, 1)) >= 0.5)
    labels = rng.integers(0, CLASSES, CHECK_B)
    return seq, labels


def torch_dump():
    """torch_reference's OrganicsRnn on init_model's weights: loss, gradients and the parameters
    after one Adam step, in float32 and float64. Returns a dict of numpy arrays."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    import torch_reference as tr

    p, bufs = init_model(CHECK_SEED, dtype=np.float64)
    # W_r away from its identity initialisation, so the power iteration (u, v) and the gradient
    # through the spectral norm u . W v are exercised (for W = I both are trivial).
    n = p["W_r"].shape[0]
    p["W_r"] = p["W_r"] + 0.3 * np.random.default_rng(CHECK_SEED + 1).standard_normal((n, n)) / np.sqrt(n)
    seq, labels = check_inputs()
    out = {"seq": seq, "labels": labels}
    out.update({f"init/{k}": v for k, v in p.items()})
    out.update({f"buf/{k}": v for k, v in bufs.items()})
    for name, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        torch.manual_seed(0)
        model = tr.OrganicsRnn().to(dtype)
        model.train()
        params = dict(model.named_parameters())
        sn = model.cell.W_r.parametrizations.weight[0]
        with torch.no_grad():
            for k, tk in TORCH_NAMES.items():
                params[tk].copy_(torch.from_numpy(p[k]))
            for k, tk in (("y0", "y0"), ("a0", "a0"), ("b0_0", "b0_0"), ("b1_0", "b1_0")):
                getattr(model, tk).copy_(torch.from_numpy(bufs[k]))
            model.cell.sigma.copy_(torch.from_numpy(bufs["sigma"]))
            sn._u.copy_(torch.from_numpy(bufs["sn_u"]))
            sn._v.copy_(torch.from_numpy(bufs["sn_v"]))
        opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        loss = model.loss(torch.from_numpy(seq).to(dtype), torch.from_numpy(labels))
        loss.backward()
        out[f"{name}/loss"] = np.array(loss.item())
        for k, tk in TORCH_NAMES.items():
            out[f"{name}/grad/{k}"] = params[tk].grad.double().numpy()
        opt.step()
        for k, tk in TORCH_NAMES.items():
            out[f"{name}/step/{k}"] = params[tk].detach().double().numpy()
    return out


def rel_err(a, b):
    """max |a - b| / max |b| (max-norm relative error; b is the float64 reference)."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-300))


def jax_compare(ref):
    """Compare JAX (float64 and float32) with torch's float64 and float32 results in `ref`.

    Tolerances (max-norm relative errors against torch's float64 result). float64: 1e-10 for
    everything. Both sides evaluate the same expressions in float64 (unit roundoff 1.1e-16),
    differing only in summation order and fused vs separate GEMMs; over 28 steps forward and
    back that stays near 1e-13 (measured 1.9e-13), so 1e-10 leaves 500x headroom, while any
    modelling difference (a missing term, a transposed weight, another Adam convention) shows
    at 1e-3 or more. float32, loss and gradients: 1e-5. float32 rounding (6e-8) through dots of
    length up to 256 and 28 recurrent steps each way gives about 1e-6 (torch's own float32
    error is printed next to ours and is of the same size), 10x headroom, 100x below a
    modelling error. float32, the Adam step (new - old parameters): 1e-3. The first Adam step
    is lr g / (|g| + eps) per entry, which loses all relative accuracy in g where |g| is near
    eps, and new - old cancels about ulp(|p|) / lr = 1.2e-5 of the step for entries near 1
    (W_r's diagonal); torch's own float32 step differs from float64 by up to ~3e-4. The Adam
    formula itself is checked to 1e-10 in float64.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    jnp = jax.numpy
    loss_fn, train_step, init_opt = build(jax)
    seq, labels = ref["seq"], ref["labels"]
    p0 = {k: ref[f"init/{k}"] for k in TORCH_NAMES}
    bufs = {k[4:]: ref[k] for k in ref.files if k.startswith("buf/")}
    failures = []
    for name, dtype, tol, tol_step in (("f64", jnp.float64, 1e-10, 1e-10), ("f32", jnp.float32, 1e-5, 1e-3)):
        cast = lambda d: {k: jnp.asarray(v, dtype) for k, v in d.items()}  # noqa: E731
        p = cast(p0)
        new_p, _, _, loss, grads = jax.jit(train_step)(
            p, init_opt(p), cast(bufs), jnp.asarray(seq, dtype), jnp.asarray(labels, jnp.int32)
        )
        rows = [("loss", float(loss), ref["f64/loss"], ref[f"{name}/loss"])]
        for k in TORCH_NAMES:
            rows.append((f"grad {k}", grads[k], ref[f"f64/grad/{k}"], ref[f"{name}/grad/{k}"]))
        for k in TORCH_NAMES:
            d_ref = ref[f"f64/step/{k}"] - p0[k]
            rows.append(
                (
                    f"adam step {k}",
                    np.asarray(new_p[k], np.float64) - p0[k],
                    d_ref,
                    ref[f"{name}/step/{k}"] - p0[k],
                )
            )
        worst = {False: 0.0, True: 0.0}
        torch_worst = {False: 0.0, True: 0.0}
        for what, got, want64, torch_same in rows:
            e = rel_err(got, want64)
            is_step = what.startswith("adam")
            t = tol_step if is_step else tol
            worst[is_step] = max(worst[is_step], e)
            torch_worst[is_step] = max(torch_worst[is_step], rel_err(torch_same, want64))
            if os.environ.get("JAX_CHECK_VERBOSE"):
                print(f"  {name} {what}: jax {e:.2e} torch {rel_err(torch_same, want64):.2e}")
            if not e <= t:
                failures.append(f"{name} {what}: jax error {e:.2e} > {t:g} (torch {name} error {rel_err(torch_same, want64):.2e})")
        print(
            f"check {name}: worst relative error vs torch float64, loss and gradients: jax {worst[False]:.2e}, "
            f"torch {name} {torch_worst[False]:.2e} (tolerance {tol:g}); Adam step: jax {worst[True]:.2e}, "
            f"torch {name} {torch_worst[True]:.2e} (tolerance {tol_step:g}); loss jax {float(rows[0][1]):.10f}"
        )
    for f in failures:
        print("FAIL", f)
    return not failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one timed repetition instead of five")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--check", action="store_true", help="compare with torch_reference in this interpreter")
    ap.add_argument("--dump", metavar="NPZ", help="write torch_reference's check results (torch interpreter)")
    ap.add_argument("--compare", metavar="NPZ", help="compare JAX with a --dump file (jax interpreter)")
    args = ap.parse_args()
    reps = 1 if args.quick else 5
    if args.dump:
        np.savez(args.dump, **torch_dump())
        return
    if args.check or args.compare:
        ref = np.load(args.compare) if args.compare else None
        if ref is None:
            import io

            buf = io.BytesIO()
            np.savez(buf, **torch_dump())
            buf.seek(0)
            ref = np.load(buf)
        sys.exit(0 if jax_compare(ref) else 1)
    if args.worker:
        worker(args.worker, reps)
        return
    for threads in args.threads:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads)]
        if args.quick:
            cmd.append("--quick")
        r = subprocess.run(cmd)
        if r.returncode != 0:
            sys.exit(r.returncode)


if __name__ == "__main__":
    main()
