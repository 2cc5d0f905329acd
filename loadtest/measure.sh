#!/usr/bin/env bash
# Measures webcall under load on this machine: the release server pinned to core 0 with one
# worker, the load generator pinned to core 1, everything on 127.0.0.1. One run per value of
# N; each leaves its JSON report in OUT_DIR and prints a one-line summary.
#
#   loadtest/measure.sh [--io uring|mmsg] [--out DIR] [--] N... [-- loadtest args]
#   e.g. loadtest/measure.sh --io mmsg 300 500 800
#        loadtest/measure.sh --io uring 200 -- --scenario audio-room --publishers 10
#
# Builds the release binaries first (cargo build --release). Refuses to run on a busy
# machine (less than 90 % idle over one second), as the figures would mean nothing.
# WEBCALL_BIN=path measures another server build (say, a copy of an earlier commit's) with
# the same load generator, for A/B runs; LOADTEST_BIN=path does the same for the load
# generator; TAG=name adds "-name" to the report file names.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=loadtest/lib.sh
source "$ROOT/loadtest/lib.sh"
IO=uring
OUT="$ROOT/target/loadtest"
NS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --io) IO="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --) shift; break ;;
        *) NS+=("$1"); shift ;;
    esac
done
EXTRA=("$@")
[[ ${#NS[@]} -gt 0 ]] || NS=(100)
mkdir -p "$OUT"
build_release

for N in "${NS[@]}"; do
    if [[ $(idle_pct) -lt 90 ]]; then
        echo "machine busy (< 90 % idle): not measuring" >&2
        exit 1
    fi
    DATA="$(mktemp -d)"
    taskset -c 0 "$SERVER_BIN" --http 127.0.0.1:18080 --https 127.0.0.1:18443 --media-ip 127.0.0.1 \
        --media-port 32000 --workers 1 --io "$IO" --data-dir "$DATA" --peer-timeout 60 \
        --room-capacity 64 >"$DATA/server.log" 2>&1 &
    SERVER=$!
    sleep 0.7
    JSON="$OUT/$IO-$N${TAG:+-$TAG}.json"
    taskset -c 1 "$LOADGEN_BIN" --url ws://127.0.0.1:18080/ --server-pid "$SERVER" \
        --subscribers "$N" --json "$JSON" "${EXTRA[@]}" >"${JSON%.json}.txt" 2>&1 || true
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
    rm -rf "$DATA"
    python3 - "$JSON" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); d = r["details"]
f = lambda v, n=2: "n/a" if v is None else round(v, n)
print(f"{r['scenario']} {sys.argv[1]}: plays={r['subscribers']} pps={r['forwarded_pps']:.0f} "
      f"cpu_s={f(r['server_cpu_seconds'])} us/pkt={f(r['cpu_us_per_packet'])} worker_us/pkt={f(r.get('worker_cpu_us_per_packet'))} loss={r['loss_pct']:.3f}% "
      f"after_nack={f(r['loss_after_nack_pct'], 3)}% p50/p99/p99.9={r['latency_us_p50']}/{r['latency_us_p99']}/"
      f"{r['latency_us_p999']}us mem/sub={f(r['mem_bytes_per_subscriber'] and r['mem_bytes_per_subscriber'] / 1024, 1)}KiB "
      f"loadgen_bound={r['loadgen_bound']} failed={d['plays_failed']} media={d.get('media', 'synthetic')}")
PY
done
