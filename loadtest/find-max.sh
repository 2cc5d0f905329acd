#!/usr/bin/env bash
# Finds the most subscribers (or listeners) one pinned webcall core sustains: runs
# loadtest/measure.sh at growing N until a run fails, then bisects between the last pass and
# the first failure to within --precision.
#
#   loadtest/find-max.sh [--io uring|mmsg] [--start N] [--growth PCT] [--precision PCT]
#                        [--p99-max-ms MS] [-- loadtest args]
#   e.g. loadtest/find-max.sh --io mmsg --start 400 -- --duration 10 --warmup 2 --decrypt-every 20
#        loadtest/find-max.sh --start 100 -- --scenario audio-room --publishers 10 --duration 10
#
# A run passes when every play started, loss stays under 1 %, the p99 delay stays under
# --p99-max-ms (default 100: a core past its capacity shows up as queues growing through the
# window, hundreds of milliseconds to seconds, before it shows up as loss; a core that keeps
# up delivers within a few frame intervals even to its last subscriber) and the load
# generator was not the bottleneck. Each run is a full measure.sh run, with its report in
# target/loadtest/find-max/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IO=uring
START=200
GROWTH=30
PRECISION=10
P99_MAX_MS=100
OUT="$ROOT/target/loadtest/find-max"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --io) IO="$2"; shift 2 ;;
        --start) START="$2"; shift 2 ;;
        --growth) GROWTH="$2"; shift 2 ;;
        --precision) PRECISION="$2"; shift 2 ;;
        --p99-max-ms) P99_MAX_MS="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
EXTRA=("$@")

# Runs one N; prints its summary line and returns 0 when it passed.
run() {
    local n="$1" summary
    rm -f "$OUT/$IO-$n.json"
    if ! summary="$(env -u TAG "$ROOT/loadtest/measure.sh" --io "$IO" --out "$OUT" "$n" -- "${EXTRA[@]}")"; then
        echo "measure.sh failed (busy machine?): stopping" >&2
        exit 1
    fi
    echo "${summary##*$'\n'}" >&2
    python3 - "$OUT/$IO-$n.json" "$P99_MAX_MS" <<'PY'
import json, os, sys
if not os.path.exists(sys.argv[1]):
    sys.exit(1)  # the load generator wrote no report: count as a failure
r = json.load(open(sys.argv[1])); d = r["details"]
p99_max_us = int(sys.argv[2]) * 1000
ok = (d["plays_failed"] == 0 and r["loss_pct"] < 1.0 and not r["loadgen_bound"]
      and (r["latency_us_p99"] is None or r["latency_us_p99"] < p99_max_us))
sys.exit(0 if ok else 1)
PY
}

pass=0
fail=0
n="$START"
while run "$n"; do
    pass="$n"
    n=$(( n + n * GROWTH / 100 + 1 ))
done
fail="$n"
if (( pass == 0 )); then
    echo "even N=$START failed: start lower" >&2
    exit 1
fi
while (( (fail - pass) * 100 > pass * PRECISION )); do
    mid=$(( (pass + fail) / 2 ))
    if run "$mid"; then pass="$mid"; else fail="$mid"; fi
done
echo "max sustained: $pass (first failure at $fail; reports in $OUT)"
