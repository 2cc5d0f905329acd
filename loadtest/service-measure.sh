#!/usr/bin/env bash
# Measures the service's own costs on this machine, against the release server on loopback:
#
#   drain    SESSIONS sessions in calls (pairs: rooms of two, each publishing and playing the
#            other), then SIGTERM with --drain-timeout 0: the time from the signal to the
#            process's exit, and the drain's own figures from its log line. Every session must
#            be up before the signal and the exit status must be 0, or the run fails.
#   metrics  PEERS peers (a livestream: one publisher, PEERS - 1 players), then GET /metrics
#            back to back on keep-alive connections (as Prometheus scrapes) for WINDOW seconds,
#            against a window of the same length without
#            scrapes: the control thread's extra CPU per scrape and the exposition's size. The
#            control thread is the process's main thread (/proc/PID/task/PID/stat).
#
#   loadtest/service-measure.sh [drain|metrics|both]     (default: both)
#   SESSIONS=100 PEERS=1000 WINDOW=10 loadtest/service-measure.sh
#
# The server is pinned to core 0, the load generator to core 1. Builds the release binaries
# first. Refuses to run on a busy machine; exits non-zero when a load did not come up.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=loadtest/lib.sh
source "$ROOT/loadtest/lib.sh"
WHAT="${1:-both}"
SESSIONS="${SESSIONS:-100}"
PEERS="${PEERS:-1000}"
WINDOW="${WINDOW:-10}"
HTTP=127.0.0.1:18180

build_release
TICKS="$(getconf CLK_TCK)"

fail() { echo "service-measure: $*" >&2; exit 1; }
note() { echo "service-measure: $(date +%T) $*" >&2; }

SERVER="" LOAD="" DATA=""
cleanup() {
    [[ -z "$LOAD" ]] || kill "$LOAD" 2>/dev/null || true
    [[ -z "$SERVER" ]] || kill -KILL "$SERVER" 2>/dev/null || true
    [[ -z "$DATA" ]] || rm -rf "$DATA"
}
trap cleanup EXIT

start_server() {
    DATA="$(mktemp -d)"
    NO_COLOR=1 taskset -c 0 "$SERVER_BIN" --http "$HTTP" --https 127.0.0.1:18543 --media-ip 127.0.0.1 \
        --media-port 32100 --workers 1 --data-dir "$DATA" --rtmp off --peer-timeout 60 \
        --room-capacity 64 "$@" >"$DATA/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 50); do
        curl -fsS -o /dev/null "http://$HTTP/health/ready" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$DATA/server.log" >&2
    fail "the server did not become ready"
}

# Wait until /health shows at least $1 sessions and $2 peers (60 s at most).
wait_load() {
    local want_sessions="$1" want_peers="$2" health
    for _ in $(seq 600); do
        health="$(curl -fsS "http://$HTTP/health" 2>/dev/null || true)"
        if [[ -n "$health" ]] && /usr/bin/python3 -c '
import json, sys
h = json.loads(sys.argv[1]); sys.exit(0 if h["sessions"] >= int(sys.argv[2]) and h["peers"] >= int(sys.argv[3]) else 1)
' "$health" "$want_sessions" "$want_peers"; then
            echo "$health"
            return 0
        fi
        kill -0 "$LOAD" 2>/dev/null || fail "the load generator exited before the load was up"
        sleep 0.1
    done
    fail "the load never reached $want_sessions sessions and $want_peers peers: $health"
}

main_thread_ticks() {
    awk '{ print $14 + $15 }' "/proc/$SERVER/task/$SERVER/stat"
}

stop_all() {
    note "stopping the load"
    kill -KILL "$LOAD" 2>/dev/null || true
    wait "$LOAD" 2>/dev/null || true
    LOAD=""
    kill -KILL "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    rm -rf "$DATA"
    DATA=""
}

measure_drain() {
    local rooms=$(( SESSIONS / 2 ))
    start_server --drain-timeout 0s
    taskset -c 1 "$LOADGEN_BIN" --url "ws://$HTTP/" --scenario pairs --rooms "$rooms" \
        --media synthetic --video-kbps 300 --warmup 600 --duration 600 >"$DATA/load.txt" 2>&1 &
    LOAD=$!
    note "waiting for $SESSIONS sessions"
    wait_load "$SESSIONS" $(( rooms * 4 )) >/dev/null
    # Time for every peer's ICE and DTLS to finish: the calls are up, not just asked for.
    note "up; SIGTERM in 5 s"
    sleep 5
    local started ended status=0
    started="$(date +%s%N)"
    kill -TERM "$SERVER"
    wait "$SERVER" || status=$?
    ended="$(date +%s%N)"
    SERVER=""
    ((status == 0)) || { tail -20 "$DATA/server.log" >&2; fail "exit status $status after SIGTERM"; }
    local drained
    drained="$(grep -o 'drained .*' "$DATA/server.log" | tail -1)"
    [[ -n "$drained" ]] || fail "no 'drained' line in the server log"
    printf 'drain: %d sessions in %d rooms, --drain-timeout 0s: SIGTERM to exit %.1f ms; server: %s\n' \
        "$SESSIONS" "$rooms" "$(( (ended - started) / 1000 ))e-3" "$drained"
    stop_all
}

measure_metrics() {
    start_server
    taskset -c 1 "$LOADGEN_BIN" --url "ws://$HTTP/" --scenario livestream --subscribers $(( PEERS - 1 )) \
        --ramp 500 --concurrency 64 --media synthetic --video-kbps 300 --warmup 600 --duration 600 \
        >"$DATA/load.txt" 2>&1 &
    LOAD=$!
    note "waiting for $PEERS peers"
    wait_load "$PEERS" "$PEERS" >/dev/null
    note "up; measuring two windows of $WINDOW s"
    sleep 3
    local quiet0 quiet1 busy0 busy1 scrapes=0 bytes end
    quiet0="$(main_thread_ticks)"
    sleep "$WINDOW"
    quiet1="$(main_thread_ticks)"
    bytes="$(curl -fsS "http://$HTTP/metrics" | wc -c)"
    busy0="$(main_thread_ticks)"
    end=$(( $(date +%s) + WINDOW ))
    # Fifty scrapes per curl, on one keep-alive connection, as Prometheus scrapes.
    local batch=()
    for _ in $(seq 50); do batch+=(-o /dev/null "http://$HTTP/metrics"); done
    while (( $(date +%s) < end )); do
        taskset -c 1 curl -fsS "${batch[@]}" || fail "a scrape failed"
        scrapes=$((scrapes + 50))
    done
    busy1="$(main_thread_ticks)"
    kill -0 "$LOAD" 2>/dev/null || fail "the load generator ended during the measurement"
    local peers
    peers="$(curl -fsS "http://$HTTP/health" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"])')"
    (( peers >= PEERS )) || fail "only $peers peers after the scrapes"
    /usr/bin/python3 - "$quiet0" "$quiet1" "$busy0" "$busy1" "$scrapes" "$TICKS" "$bytes" "$peers" "$WINDOW" <<'PY'
import sys
q0, q1, b0, b1, n, hz, size, peers, window = map(float, sys.argv[1:])
quiet = (q1 - q0) / hz
busy = (b1 - b0) / hz
per = (busy - quiet) / n if n else float("nan")
print(f"metrics: {peers:.0f} peers; control thread {quiet * 1000:.0f} ms CPU in {window:.0f} s without scrapes, "
      f"{busy * 1000:.0f} ms with {n:.0f} keep-alive scrapes back to back: {per * 1e6:.0f} us CPU per scrape "
      f"({size:.0f} bytes each; one scrape every 15 s costs {per / 15 * 100:.4f} % of a core)")
PY
    stop_all
}

[[ $(idle_pct) -ge 90 ]] || fail "machine busy (< 90 % idle): not measuring"
case "$WHAT" in
    drain) measure_drain ;;
    metrics) measure_metrics ;;
    both) measure_drain; measure_metrics ;;
    *) fail "usage: $0 [drain|metrics|both]" ;;
esac
