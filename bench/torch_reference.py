#!/usr/bin/env python3
"""The organics-grad benchmark training step, written in PyTorch, for comparison.

One training step of the sequential-MNIST ORGaNICs RNN of the NeurIPS-era reference code
(spec section D.2): batch 256, n = 128, T = 784 pixel steps, Linear(n, 10) readout on y_T,
cross-entropy, Adam(lr 0.01, weight_decay 1e-5). It mirrors
`crates/organics-grad/examples/bench.rs` (`train_step_1t`, `train_step_2t`) and prints lines in
the same format:

    torch_train_step_1t: median_s=<seconds> gflops=<GFLOP/s>

GFLOP/s uses the same explicit GEMM FLOP count as the Rust benchmark (forward 6 and backward
12 products of 256x128x128 per step, plus the readout), so the two figures are comparable.

Usage: python3 bench/torch_reference.py [--quick] [--threads 1 2]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one timed repetition instead of five")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    reps = 1 if args.quick else 5
    gen = torch.Generator().manual_seed(2024)
    pixels = torch.rand(STEPS, BATCH, 1, generator=gen)
    keep = torch.rand(STEPS, BATCH, 1, generator=gen) >= 0.8
    seq = pixels * keep  # MNIST-like: most pixels are zero
    labels = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    for threads in args.threads:
        torch.set_num_threads(threads)
        torch.manual_seed(7)
        model = OrganicsRnn()
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-5)

        def one_step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(seq), labels)
            loss.backward()
            opt.step()

        one_step()  # warm-up
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            one_step()
            times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        rows = [(i + 1) * BATCH // threads - i * BATCH // threads for i in range(threads)]
        print(f"torch_train_step_{threads}t: median_s={s:.4f} gflops={step_flops(rows) / s / 1e9:.1f}")


if __name__ == "__main__":
    main()
