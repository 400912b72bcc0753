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
                    out[key] = v
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
for n in sorted({n for n, _ in ours}):
    print(f"precision, one mul + relin + rescale at N = 2^{n}, log2 max abs error: "
          f"mofhei {ours[(n, 'mul_precision_log2_max_err')]:.2f}, "
          f"SEAL {seal[(n, 'mul_precision_log2_max_err')]:.2f}")
