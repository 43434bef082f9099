#!/usr/bin/env python3
"""Generate the paper's train/validation split and psMNIST pixel permutation with PyTorch.

The authors split the 60 000 MNIST training images with
`torch.utils.data.random_split(train, [57000, 3000], generator=torch.Generator().manual_seed(73))`
and permute the pixels of psMNIST with `torch.randperm(784, generator=torch.Generator().manual_seed(73))`.
Both come from torch's own generator, which Rust cannot reproduce without re-implementing it, so
this script draws them once, through the same calls, and writes them as IDX files of 32-bit
integers (the format organics-data already reads):

    split-73.idx          rank 1, length 60 000: the 57 000 training indices, then the 3 000
                          validation indices, each in the order random_split returns them
    permutation-784-73.idx  rank 1, length 784: step t reads pixel perm[t] (x[:, perm])

and prints the sha256 of each file, which organics-data checks before using them.

Generated with torch 2.15.0 (`python3 generate.py` in this folder; needs torch only).
"""

import hashlib
import struct
import sys

import torch
from torch.utils.data import random_split

SEED = 73
TRAIN, VALIDATION = 57_000, 3_000
PIXELS = 784


def write_idx_i32(path, values):
    """IDX: magic 0x0000 0x0C (int32) 0x01 (rank 1), the length, then big-endian int32s."""
    data = struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", len(values))
    data += struct.pack(">%di" % len(values), *values)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def main():
    # random_split on a dataset whose items are their own indices returns the split itself.
    indices = list(range(TRAIN + VALIDATION))
    generator = torch.Generator().manual_seed(SEED)
    train, validation = random_split(indices, [TRAIN, VALIDATION], generator=generator)
    order = [indices[i] for i in train.indices] + [indices[i] for i in validation.indices]
    assert sorted(order) == indices

    perm = torch.randperm(PIXELS, generator=torch.Generator().manual_seed(SEED)).tolist()
    assert sorted(perm) == list(range(PIXELS))

    print("torch", torch.__version__, file=sys.stderr)
    print("split-73.idx", write_idx_i32("split-73.idx", order))
    print("permutation-784-73.idx", write_idx_i32("permutation-784-73.idx", perm))


if __name__ == "__main__":
    main()
