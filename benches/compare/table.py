"""Reads ours_*.json / seal_*.json from a directory and prints a Markdown
table: best time per operation over the rounds, and ours / SEAL."""
import glob
import json
import os
import sys

d = sys.argv[1]


def best(prefix):
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(d, prefix + "_*.json")))]
    out = {}
    for run in runs:
        for n, ops in run.items():
            for op, v in ops.items():
                key = (n, op)
                if op.endswith("_err"):
                    # precision: mean over the rounds
                    out[key] = out.get(key, 0.0) + v / len(runs)
                else:
                    out[key] = min(out.get(key, v), v)
    return out, len(runs)


ours, k = best("ours")
seal, _ = best("seal")
print(f"best of {k} rounds, process CPU time, ms per operation, one thread\n")
print("| N | operation | mofhei (ms) | SEAL 4.1 (ms) | ours / SEAL |")
print("|---|---|---:|---:|---:|")
for (n, op), v in ours.items():
    if op.endswith("_err"):
        continue
    s = seal.get((n, op))
    ratio = f"{v / s:.2f}" if s else "-"
    print(f"| 2^{n} | {op} | {v:.3f} | {s:.3f} | {ratio} |")
print()
labels = {
    "enc_pk_rel_err": "fresh public-key encryption, relative L2 error",
    "enc_sk_rel_err": "fresh secret-key encryption, relative L2 error",
    "mul_rel_err": "one mul + relin + rescale, relative L2 error",
    "mul_max_abs_err": "one mul + relin + rescale, largest absolute error",
}
print(f"precision (log2, 8 fresh encryptions pooled, mean over {k} rounds; lower is better)\n")
print("| N | quantity | mofhei | SEAL 4.1 |")
print("|---|---|---:|---:|")
for n in sorted({n for n, _ in ours}):
    for key, label in labels.items():
        print(f"| 2^{n} | {label} | {ours[(n, key)]:.2f} | {seal[(n, key)]:.2f} |")
