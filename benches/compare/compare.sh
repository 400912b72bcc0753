#!/usr/bin/env bash
# Side-by-side timing of mofhei's CKKS and SEAL 4.1 (through tenseal.sealapi)
# on the same machine, parameters and operations, one thread each.
#
#   benches/compare/compare.sh            # ROUNDS=3 REPS=7 by default
#
# Creates benches/compare/.venv (not committed), pip-installs tenseal,
# builds examples/ckks_timings, then alternates ours / SEAL for ROUNDS
# rounds (so both see the same machine load) and prints a table of the best
# (minimum) process-CPU milliseconds per operation and the ratio ours / SEAL.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
rounds="${ROUNDS:-3}"
export REPS="${REPS:-7}" RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import tenseal" 2>/dev/null || "$venv/bin/pip" install -q tenseal

(cd "$root" && cargo build --release --example ckks_timings >/dev/null)

out="$(mktemp -d)"
for r in $(seq 1 "$rounds"); do
  SEED="$r" "$root/target/release/examples/ckks_timings" > "$out/ours_$r.json"
  "$venv/bin/python" "$here/seal_timings.py" > "$out/seal_$r.json"
done
python3 "$here/table.py" "$out"
