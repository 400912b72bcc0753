#!/usr/bin/env bash
# A bounded fuzzing campaign: every target (or the ones named) for SECONDS
# of wall time each, one at a time (one core), restarting after a finding
# until the time is up. Prints a Markdown table of executions, findings
# and peak RSS per target; logs go to fuzz/logs/, reproducers to
# fuzz/artifacts/<target>/.
#
#   fuzz/campaign.sh SECONDS [target ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags; `-s none` (no
# sanitizer: the crate forbids unsafe code) and `-a` (debug assertions and
# overflow checks, so integer overflow on untrusted sizes is a finding).
set -u
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
export RUSTC_BOOTSTRAP=1
flags=(-s none -a --codegen-units 4)
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
mkdir -p logs
echo "| target | executions | panics/crashes | timeouts | OOMs | peak RSS (MB) | seconds |"
echo "|---|---:|---:|---:|---:|---:|---:|"
total=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    execs=0 crashes=0 timeouts=0 ooms=0 rss=0 run=0
    start=$(date +%s)
    deadline=$((start + secs))
    while :; do
        left=$((deadline - $(date +%s)))
        [ "$left" -lt 2 ] && break
        log="logs/$t.$run.log"
        cargo fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
            -max_total_time="$left" -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1
        rc=$?
        n=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
        [ -z "$n" ] && n=$(grep -oE '^#[0-9]+' "$log" | tr -d '#' | sort -n | tail -1)
        execs=$((execs + ${n:-0}))
        r=$( (grep -oE 'rss: [0-9]+Mb' "$log" | grep -oE '[0-9]+'; grep -oE 'peak_rss_mb: *[0-9]+' "$log" | grep -oE '[0-9]+$'; echo 0) | sort -n | tail -1)
        [ "$r" -gt "$rss" ] && rss=$r
        if grep -q 'libFuzzer: timeout' "$log"; then
            timeouts=$((timeouts + 1))
        elif grep -q 'libFuzzer: out-of-memory' "$log"; then
            ooms=$((ooms + 1))
        elif [ "$rc" -ne 0 ]; then
            crashes=$((crashes + 1))
        fi
        run=$((run + 1))
        [ "$rc" -eq 0 ] && break
    done
    total=$((total + execs))
    echo "| $t | $execs | $crashes | $timeouts | $ooms | $rss | $(($(date +%s) - start)) |"
done
echo "| **total** | **$total** | | | | | |"
