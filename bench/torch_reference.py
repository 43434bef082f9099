#!/usr/bin/env python3
"""The benchmark training steps (organics-grad bench, organics-train bench_models), in PyTorch.

One training step of the sequential-MNIST ORGaNICs RNN of the NeurIPS-era reference code
(spec section D.2): batch 256, n = 128, T = 784 pixel steps, Linear(n, 10) readout on y_T,
cross-entropy, Adam(lr 0.01, weight_decay 1e-5). It mirrors
`crates/organics-grad/examples/bench.rs` (`train_step_1t`, `train_step_2t`) and prints lines in
the same format:

    torch_train_step_1t: median_s=<seconds> gflops=<GFLOP/s>

GFLOP/s uses the same explicit GEMM FLOP count as the Rust benchmark (forward 6 and backward
12 products of 256x128x128 per step, plus the readout), so the two figures are comparable.

With the models (default; --no-models leaves them out, --models-only runs them alone) it also
prints torch_static_step_early, torch_two_layer_step and torch_lstm_step_2t: the static one- and
two-layer models and torch.nn.LSTM on sequential MNIST, 2 threads, flush-to-zero on, mirroring
`crates/organics-train/examples/bench_models.rs` and its FLOP counts.

Usage: python3 bench/torch_reference.py [--quick] [--threads 1 2] [--no-models | --models-only]
Requires torch (CPU build is enough). Nothing here is needed to build or test the Rust crates.
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrizations

BATCH = 256
HIDDEN = 128
STEPS = 784
CLASSES = 10
MAX_Y, MAX_A, MAX_B = 0.02, 0.005, 0.1


class OrganicsCell(nn.Module):
    """One explicit Euler step of the rectified, gated ORGaNICs circuit (spec D.2)."""

    def __init__(self, n: int, m: int):
        super().__init__()
        self.n = n
        self.W_zx = nn.Parameter(torch.empty(n, m))
        self.W_bx0 = nn.Parameter(torch.empty(n, m))
        self.W_by0 = nn.Parameter(torch.empty(n, n))
        self.W_ba0 = nn.Parameter(torch.empty(n, n))
        self.W_bx1 = nn.Parameter(torch.empty(n, m))
        self.W_by1 = nn.Parameter(torch.empty(n, n))
        self.W_ba1 = nn.Parameter(torch.empty(n, n))
        for w in [self.W_zx, self.W_bx0, self.W_by0, self.W_ba0, self.W_bx1, self.W_by1, self.W_ba1]:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        with torch.no_grad():
            self.W_zx /= torch.linalg.matrix_norm(self.W_zx, ord=2)
        # W_r = I + SN(W_r_param), raw parameter initialised to the identity.
        self.W_r = nn.Linear(n, n, bias=False)
        with torch.no_grad():
            self.W_r.weight.copy_(torch.eye(n))
        parametrizations.spectral_norm(self.W_r)
        self.register_buffer("eye", torch.eye(n))
        log_w = -torch.rand(n, n)
        log_w.fill_diagonal_(0.0)
        self.log_W = nn.Parameter(log_w)
        self.p_y = nn.Parameter(torch.randn(n))
        self.p_a = nn.Parameter(torch.randn(n))
        self.p_b0 = nn.Parameter(torch.randn(n))
        self.p_b1 = nn.Parameter(torch.randn(n))
        self.register_buffer("sigma", torch.ones(n))

    def effective(self):
        wr = self.eye + self.W_r.weight  # one power iteration per access in training mode
        w = torch.exp(self.log_W)
        dt = (
            MAX_Y * torch.sigmoid(self.p_y),
            MAX_A * torch.sigmoid(self.p_a),
            MAX_B * torch.sigmoid(self.p_b0),
            MAX_B * torch.sigmoid(self.p_b1),
        )
        return wr, w, dt

    def forward(self, x, y, a, b0, b1, wr, w, dt):
        dty, dta, dtb0, dtb1 = dt
        z = F.linear(x, self.W_zx)
        ry = torch.relu(y)
        yhat = F.linear(ry, wr)
        s0 = torch.sigmoid(F.linear(x, self.W_bx0) + F.linear(y, self.W_by0) + F.linear(a, self.W_ba0))
        s1 = torch.sigmoid(F.linear(x, self.W_bx1) + F.linear(y, self.W_by1) + F.linear(a, self.W_ba1))
        u = F.linear(ry * ry * torch.relu(a), w)
        y_new = y + dty * (-y + b1 * z + (1.0 - torch.sqrt(torch.relu(a))) * yhat)
        a_new = a + dta * (-a + self.sigma**2 * b0 * b0 + u)
        b0_new = b0 + dtb0 * (-b0 + s0)
        b1_new = b1 + dtb1 * (-b1 + s1)
        return y_new, a_new, b0_new, b1_new


class OrganicsRnn(nn.Module):
    def __init__(self, n: int = HIDDEN, m: int = 1, classes: int = CLASSES):
        super().__init__()
        self.cell = OrganicsCell(n, m)
        self.readout = nn.Linear(n, classes)
        u = torch.rand(n)
        self.register_buffer("y0", u / u.norm())
        self.register_buffer("a0", torch.rand(n))
        self.register_buffer("b0_0", torch.ones(n))
        self.register_buffer("b1_0", torch.rand(n))

    def forward(self, seq):  # seq: (T, B, m), time-major like the Rust batch
        batch = seq.shape[1]
        y, a, b0, b1 = (v.expand(batch, -1) for v in (self.y0, self.a0, self.b0_0, self.b1_0))
        wr, w, dt = self.cell.effective()  # spectral norm evaluated once per forward, as in Rust
        for t in range(seq.shape[0]):
            y, a, b0, b1 = self.cell(seq[t], y, a, b0, b1, wr, w, dt)
        return self.readout(y)

    def loss(self, seq, labels):
        return F.cross_entropy(self(seq), labels)


def step_flops(rows_per_thread):
    """GEMM FLOPs of one step, as counted by organics_grad::bptt::train_step_flops."""
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


# --- The models `organics train` runs on a tape (crates/organics-train/examples/bench_models.rs)

SIDE, BORDER = 28, 4
AE_HIDDEN = (360, 120)
A_EPS = 1e-10


class FixedPointLayer(nn.Module):
    """The static ORGaNICs layer (spec E.1): closed form for W_r = I, else K iterations of
    y <- (I - W_r + diag(sqrt(a)) W_r)^-1 c with a spectrally normalised W_r (spec B.3)."""

    def __init__(self, m, n, learned_wr, iterations):
        super().__init__()
        self.W_zx = nn.Parameter(torch.empty(n, m))
        self.W_bx = nn.Parameter(torch.empty(n, m))
        for w in (self.W_zx, self.W_bx):
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        log_w = -torch.rand(n, n)
        log_w.fill_diagonal_(0.0)
        self.log_W = nn.Parameter(log_w)
        self.b0 = nn.Parameter(torch.zeros(n))
        self.iterations = iterations
        self.Wr = None
        if learned_wr:
            self.Wr = nn.Linear(n, n, bias=False)
            with torch.no_grad():
                self.Wr.weight.copy_(torch.eye(n))
            parametrizations.spectral_norm(self.Wr)
        self.register_buffer("eye", torch.eye(n))

    def forward(self, x):
        z = F.normalize(F.linear(x, self.W_zx), dim=1, eps=1e-12)
        s0 = torch.sigmoid(self.b0) ** 2
        c = torch.sigmoid(F.linear(x, self.W_bx)) * z
        w = torch.exp(self.log_W)
        if self.Wr is None:
            a = s0 + F.linear(c * c, w) + A_EPS
            y = c / torch.sqrt(a)
        else:
            wr = self.Wr.weight
            rc = F.linear(c, wr)
            a = s0 + F.linear(rc * rc, w) + A_EPS
            y = rc / torch.sqrt(a)
            for _ in range(self.iterations):
                m = self.eye + (torch.sqrt(a) - 1.0).unsqueeze(2) * wr
                y = torch.linalg.solve(m, c)
                a = s0 + F.linear(y * y * a, w) + A_EPS
        return torch.relu(y) ** 2


class StaticNet(nn.Module):
    """Autoencoder 784 -> 360 -> 120 -> 40 and back, fixed-point layer(s), readout."""

    def __init__(self, layers, learned_wr, code=40, iterations=10):
        super().__init__()
        h1, h2 = AE_HIDDEN
        px = SIDE * SIDE
        self.encoder = nn.Sequential(nn.Linear(px, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, code), nn.Sigmoid())
        self.decoder = nn.Sequential(nn.Linear(code, h2), nn.ReLU(), nn.Linear(h2, h1), nn.ReLU(), nn.Linear(h1, px), nn.Sigmoid())
        widths = [code] + layers
        self.layers = nn.ModuleList(FixedPointLayer(widths[i], widths[i + 1], learned_wr, iterations) for i in range(len(layers)))
        self.fc = nn.Linear(widths[-1], CLASSES)

    def loss(self, x, labels):
        code = self.encoder(x)
        h = code
        for layer in self.layers:
            h = layer(h)
        return F.cross_entropy(self.fc(h), labels) + F.mse_loss(self.decoder(code), x)


def static_flops(layers, two_layer, iterations=10, code=40):
    """Dense FLOPs of one static step, as counted by bench_models.rs."""
    b = float(BATCH)

    def affine(i, o):
        return 6.0 * b * i * o

    h1, h2 = AE_HIDDEN
    px = SIDE * SIDE
    # The first layer's input is the image: no input gradient (4, not 6, FLOPs per weight).
    f = affine(px, h1) * 4 / 6 + affine(h1, h2) + affine(h2, code) + affine(code, h2) + affine(h2, h1) + affine(h1, px)
    widths = [code] + layers
    k = iterations if two_layer else 0
    for m, n in zip(widths[:-1], widths[1:]):
        f += 2 * affine(m, n) + affine(n, n) * (1 + k)
        if two_layer:
            f += affine(n, n) + b * k * (2.0 / 3.0 * n**3 + 4.0 * n * n)
    return f + affine(widths[-1], CLASSES)


class LstmNet(nn.Module):
    def __init__(self, n=HIDDEN):
        super().__init__()
        self.lstm = nn.LSTM(1, n)
        self.fc = nn.Linear(n, CLASSES)

    def loss(self, seq, labels):
        out, _ = self.lstm(seq)
        return F.cross_entropy(self.fc(out[-1]), labels)


def time_step(model, inputs, labels, lr, reps):
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)

    def one_step():
        opt.zero_grad(set_to_none=True)
        model.loss(inputs, labels).backward()
        opt.step()

    one_step()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        one_step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tape_models(reps):
    """torch_static_step_early, torch_two_layer_step, torch_lstm_step_2t on 2 threads, with
    flush-to-zero on (as the Rust trainer runs)."""
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(2025)
    rows = torch.arange(SIDE * SIDE) // SIDE
    cols = torch.arange(SIDE * SIDE) % SIDE
    inner = (rows >= BORDER) & (rows < SIDE - BORDER) & (cols >= BORDER) & (cols < SIDE - BORDER)
    x = torch.rand(BATCH, SIDE * SIDE, generator=gen) * inner
    labels = torch.arange(BATCH) % CLASSES
    torch.manual_seed(7)
    # The static steps take milliseconds: more repetitions, so that their medians (and the
    # ratios to the Rust steps) do not move by 10-20 % with the machine's noise.
    s = time_step(StaticNet([50], False), x, labels, 1e-3, 10 * reps)
    print(f"torch_static_step_early: median_s={s:.6f} gflops={static_flops([50], False) / s / 1e9:.3f}")
    s = time_step(StaticNet([120, 60], True), x, labels, 1e-3, 2 * reps)
    print(f"torch_two_layer_step: median_s={s:.6f} gflops={static_flops([120, 60], True) / s / 1e9:.3f}")
    seq = x.t().unsqueeze(2).contiguous()  # (T, B, 1)
    s = time_step(LstmNet(), seq, labels, 1e-2, min(reps, 3))
    n = HIDDEN
    flops = 6.0 * BATCH * (1 + n) * 4 * n * STEPS + 6.0 * BATCH * n * CLASSES
    print(f"torch_lstm_step_2t: median_s={s:.6f} gflops={flops / s / 1e9:.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one timed repetition instead of five")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-models", action="store_true", help="only the sMNIST ORGaNICs step")
    ap.add_argument("--models-only", action="store_true", help="only the static and LSTM steps")
    args = ap.parse_args()
    reps = 1 if args.quick else 5
    gen = torch.Generator().manual_seed(2024)
    pixels = torch.rand(STEPS, BATCH, 1, generator=gen)
    keep = torch.rand(STEPS, BATCH, 1, generator=gen) >= 0.8
    seq = pixels * keep  # MNIST-like: most pixels are zero
    labels = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    for threads in [] if args.models_only else args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(7)
        model = OrganicsRnn()
        model.train()
        s = time_step(model, seq, labels, 0.01, reps)
        rows = [(i + 1) * BATCH // threads - i * BATCH // threads for i in range(threads)]
        print(f"torch_train_step_{threads}t: median_s={s:.4f} gflops={step_flops(rows) / s / 1e9:.1f}")
    if not args.no_models:
        tape_models(reps)


if __name__ == "__main__":
    main()
