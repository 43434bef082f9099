#!/usr/bin/env python3
"""Evaluate an `organics train` sMNIST / psMNIST checkpoint in an independent PyTorch model.

The ORGaNICs RNN is written out here from the paper's equations (NeurIPS-era cell, docs/model.md
and the paper's Appendix D), as a plain `torch.nn.Module` whose `state_dict` names are the ones
the checkpoint uses. The LSTM and tanh-RNN baselines are PyTorch's own `nn.LSTM` / `nn.RNN`
(one layer, batch first) with a `nn.Linear` readout of the last hidden state, the layouts and
names the checkpoints use. The checkpoint's `model.safetensors` is loaded with
`load_state_dict(strict=True)`, so a missing, extra or misshapen tensor is an error, and the
model is evaluated on the MNIST test set. The accuracy printed here is computed by PyTorch alone;
compare it with `organics eval RUN_DIR` (the script does that itself when `--organics BIN` is
given, and exits 1 if the two disagree).

Usage:
    python3 scripts/torch_eval_checkpoint.py RUN_DIR [--checkpoint best|last]
        [--data DIR] [--limit N] [--organics target/release/organics] [--float64]

Needs torch, numpy and safetensors (pip install torch numpy safetensors). Supports the ORGaNICs
RNN with the `paper` cell preset (learned or fixed time constants), the LSTM and the tanh RNN, on
the sequential, downsampled14 and the paper's permuted views.
"""

import argparse
import copy
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.nn.utils import parametrizations

# Maxima of dt/tau for y, a and the gains b0, b1 (the paper's runs).
DT_TAU_MAX = {"y": 0.02, "a": 0.005, "b0": 0.1, "b1": 0.1}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_idx(path):
    """An IDX file (raw; gzip if the name ends in .gz) as a numpy array."""
    opener = open
    if path.endswith(".gz"):
        import gzip

        opener = gzip.open
    with opener(path, "rb") as f:
        data = f.read()
    zero, zero2, code, rank = struct.unpack(">BBBB", data[:4])
    assert zero == 0 and zero2 == 0, path
    dims = struct.unpack(">%dI" % rank, data[4 : 4 + 4 * rank])
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * rank).reshape(dims)


def mnist_test(data_dir):
    def find(name):
        for candidate in (name, name + ".gz"):
            path = os.path.join(data_dir, candidate)
            if os.path.exists(path):
                return path
        sys.exit(f"error: {name} not found in {data_dir} (run `organics data fetch`)")

    images = read_idx(find("t10k-images-idx3-ubyte")).astype(np.float32) / 255.0
    labels = read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


def sequences(images, view):
    """(B, 28, 28) images as (B, T, 1) sequences for the checkpoint's view."""
    kind = view["kind"]
    if kind == "sequential":
        return images.reshape(len(images), -1, 1)
    if kind == "downsampled14":
        pooled = F.avg_pool2d(images.unsqueeze(1), 2).squeeze(1)
        return pooled.reshape(len(images), -1, 1)
    if kind == "paper-permuted-sequential":
        perm = read_idx(os.path.join(REPO, "crates/organics-data/draws/permutation-784-73.idx"))
        perm = torch.from_numpy(perm.astype(np.int64))
        return images.reshape(len(images), -1)[:, perm].unsqueeze(-1)
    sys.exit(f"error: view {view} is not supported here (ChaCha8 permutations live in Rust only)")


class Cell(nn.Module):
    """One explicit Euler step of the rectified, gated ORGaNICs circuit (NeurIPS-era cell).

    z = W_zx x;  ŷ = (I + SN(W_r)) ⌊y⌋
    s0 = sigmoid(W_bx0 x + W_by0 y + W_ba0 a);  s1 likewise with the '1' weights
    y' = y + δ_y (−y + b1 z + (1 − √⌊a⌋) ŷ)
    a' = a + δ_a (−a + σ² b0² + W (⌊y⌋² ⌊a⌋)),  W = exp(log W)
    b0' = b0 + δ_b0 (−b0 + s0);  b1' = b1 + δ_b1 (−b1 + s1);  δ_k = max_k sigmoid(p_k)
    """

    def __init__(self, n, m):
        super().__init__()
        self.Wzx = nn.Linear(m, n, bias=False)
        self.Wr = parametrizations.spectral_norm(nn.Linear(n, n, bias=False))
        for name, fan_in in [("Wbx0", m), ("Wby0", n), ("Wba0", n), ("Wbx1", m), ("Wby1", n), ("Wba1", n)]:
            setattr(self, name, nn.Parameter(torch.zeros(n, fan_in)))
        self.log_Way = nn.Parameter(torch.zeros(n, n))
        self.register_buffer("sigma", torch.ones(n))
        for k in ("y", "a", "b0", "b1"):
            setattr(self, "param_dt_tau" + k, nn.Parameter(torch.zeros(n)))
        for k in ("y0", "a0", "b0_0", "b1_0"):
            self.register_buffer(k, torch.zeros(n))

    def dt(self, k):
        return DT_TAU_MAX[k] * torch.sigmoid(getattr(self, "param_dt_tau" + k))

    def forward(self, x, y, a, b0, b1):
        z = self.Wzx(x)
        ry = F.relu(y)
        y_hat = ry + self.Wr(ry)  # (I + SN(W_r)) ⌊y⌋
        ra = F.relu(a)
        s0 = torch.sigmoid(x @ self.Wbx0.T + y @ self.Wby0.T + a @ self.Wba0.T)
        s1 = torch.sigmoid(x @ self.Wbx1.T + y @ self.Wby1.T + a @ self.Wba1.T)
        u = (ry * ry * ra) @ torch.exp(self.log_Way).T
        y_new = y + self.dt("y") * (-y + b1 * z + (1 - torch.sqrt(ra)) * y_hat)
        a_new = a + self.dt("a") * (-a + self.sigma**2 * b0**2 + u)
        b0_new = b0 + self.dt("b0") * (-b0 + s0)
        b1_new = b1 + self.dt("b1") * (-b1 + s1)
        return y_new, a_new, b0_new, b1_new


class Net(nn.Module):
    def __init__(self, n, m):
        super().__init__()
        self.org = Cell(n, m)
        self.fc = nn.Linear(n, 10)

    def forward(self, xs):
        batch = xs.shape[0]
        c = self.org
        y, a, b0, b1 = (v.expand(batch, -1) for v in (c.y0, c.a0, c.b0_0, c.b1_0))
        for t in range(xs.shape[1]):
            y, a, b0, b1 = c(xs[:, t], y, a, b0, b1)
        return self.fc(y)


class Baseline(nn.Module):
    """PyTorch's own recurrent layer (`nn.LSTM` or `nn.RNN` with tanh) and a linear readout of
    its last hidden state, under the names the checkpoints use (`lstm.*` / `rnn.*`, `fc.*`)."""

    def __init__(self, kind, n, m):
        super().__init__()
        self.kind = kind
        layer = nn.LSTM(m, n, batch_first=True) if kind == "lstm" else nn.RNN(m, n, nonlinearity="tanh", batch_first=True)
        setattr(self, kind, layer)
        self.fc = nn.Linear(n, 10)

    def forward(self, xs):
        hs, _ = getattr(self, self.kind)(xs)
        return self.fc(hs[:, -1])


def evaluate(net, xs, labels, batch):
    """Accuracy and mean cross-entropy of `net` on the sequences `xs`, in batches."""
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(xs), batch):
            logits = net(xs[start : start + batch])
            target = labels[start : start + batch]
            correct += (logits.argmax(1) == target).sum().item()
            loss_sum += F.cross_entropy(logits.double(), target, reduction="sum").item()
    return correct / len(xs), loss_sum / len(xs)


def build(cfg, tensors):
    """The PyTorch model of a checkpoint's config, its weights loaded strictly."""
    if cfg["model"] == "organics":
        if cfg["cell"] != "paper":
            sys.exit(f"error: cell {cfg.get('cell')}: only the organics RNN with the paper cell is written here")
        n, m = tensors["org.Wzx.weight"].shape
        net = Net(n, m)
    elif cfg["model"] in ("lstm", "rnn"):
        kind = cfg["model"]
        m = tensors[f"{kind}.weight_ih_l0"].shape[1]
        net = Baseline(kind, tensors[f"{kind}.weight_hh_l0"].shape[1], m)
    else:
        sys.exit(f"error: model {cfg['model']}: only the sequential models (organics, lstm, rnn) are written here")
    net.load_state_dict(tensors, strict=True)
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--checkpoint", default="best", choices=["best", "last"])
    ap.add_argument("--data", default=os.environ.get("ORGANICS_DATA", os.path.expanduser("~/.cache/organics/mnist")))
    ap.add_argument("--limit", type=int, default=None, help="evaluate the first N test images only")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--organics", default=None, help="the organics binary: also run `organics eval` and compare")
    ap.add_argument("--float64", action="store_true", help="also evaluate in float64, and compare organics with that within twice PyTorch's own float32 error (for models that amplify rounding over the sequence)")
    args = ap.parse_args()

    with open(os.path.join(args.run_dir, "config.json")) as f:
        cfg = json.load(f)
    tensors = load_file(os.path.join(args.run_dir, "checkpoints", args.checkpoint, "model.safetensors"))
    net = build(cfg, tensors)
    net.eval()  # spectral norm: use the stored u, v (no power iteration), as at evaluation

    images, labels = mnist_test(args.data)
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    xs = sequences(images, cfg["view"])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    accuracy, loss = evaluate(net, xs, labels, args.batch)
    report = {"torch": torch.__version__, "checkpoint": args.checkpoint, "samples": len(xs), "test_accuracy": accuracy, "test_loss": loss}
    if args.float64:
        acc64, loss64 = evaluate(copy.deepcopy(net).double(), xs.double(), labels, args.batch)
        report.update({"float64_test_accuracy": acc64, "float64_test_loss": loss64})
    print(json.dumps(report))

    if args.organics:
        cmd = [args.organics, "eval", os.path.join(args.run_dir, "checkpoints", args.checkpoint), "--data-dir", args.data]
        if args.limit is not None:
            cmd += ["--eval-subset", str(args.limit)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        print(out.strip())
        rust = json.loads(out)["test"]
        # Both evaluate the same images; a prediction may flip only where two logits tie to
        # within float32 rounding, so allow at most one image in a thousand to differ.
        # The mean loss is an average of float32 forward passes of T recurrent steps in two
        # summation orders; for a model that damps perturbations (the ORGaNICs RNN), 1e-4
        # relative is far above that rounding and far below any change of a weight or an
        # equation.
        ref_acc, ref_loss, acc_tol, loss_tol = accuracy, loss, 1e-3, 1e-4 * abs(loss)
        if args.float64:
            # A model that amplifies perturbations over T steps turns float32 rounding into
            # differences of any size. PyTorch's own float32 result then differs from its
            # float64 result by |f32 - f64|. A second float32 implementation, rounding in
            # another order, is expected to lie that far from the float64 value too, so
            # organics is compared with float64 within twice that distance (and never
            # tighter than above).
            ref_acc, ref_loss = acc64, loss64
            acc_tol = max(acc_tol, 2 * abs(accuracy - acc64))
            loss_tol = max(1e-4 * abs(loss64), 2 * abs(loss - loss64))
            print(f"PyTorch float32 against float64: accuracy {accuracy:.4f} / {acc64:.4f}, loss {loss:.6f} / {loss64:.6f}")
        if rust["samples"] != len(xs) or abs(rust["accuracy"] - ref_acc) > acc_tol:
            sys.exit(f"error: PyTorch accuracy {ref_acc} and organics {rust['accuracy']} disagree (allowed {acc_tol:.2e})")
        if abs(rust["loss"] - ref_loss) > loss_tol:
            sys.exit(f"error: PyTorch loss {ref_loss} and organics {rust['loss']} disagree (allowed {loss_tol:.2e})")
        which = "PyTorch float64" if args.float64 else "PyTorch"
        print(f"agree: accuracy {ref_acc:.4f} / {rust['accuracy']:.4f}, loss {ref_loss:.6f} / {rust['loss']:.6f} ({which} / organics) on {len(xs)} test images")


if __name__ == "__main__":
    main()
