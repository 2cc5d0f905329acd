#!/usr/bin/env bash
# Runs the abuse scenario (webcall-abuse) against a webcall server it starts itself, on
# loopback: a chat flood at sessions that never read, 2,000 sessions from one address, idle TCP
# connections from two processes, slowloris and foreign origins, each beside a good room whose
# media must keep flowing while /health and new sessions answer within a second.
#
#   loadtest/abuse.sh [--quick] [--vp8] [--report FILE] [more webcall-abuse args]
#   e.g. loadtest/abuse.sh --quick                 # about a minute, as CI runs it
#        loadtest/abuse.sh --server-flag=--io --server-flag=mmsg
#
# Builds the debug binaries if needed (PROFILE=release for release ones); WEBCALL_BIN=path
# tests another server build. The JSON report goes to target/loadtest/abuse.json unless
# --report says otherwise; the summary is printed; the exit status is webcall-abuse's (0 pass,
# 1 a threshold failed or a phase did not run, 2 the scenario could not start).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${PROFILE:-debug}"
CARGO_PROFILE=()
[[ "$PROFILE" == release ]] && CARGO_PROFILE=(--release)
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z "${WEBCALL_BIN:-}" ]]; then
    cargo build --quiet "${CARGO_PROFILE[@]}" --manifest-path "$ROOT/Cargo.toml" -p webcall --bin webcall
    WEBCALL_BIN="$TARGET/$PROFILE/webcall"
fi
cargo build --quiet "${CARGO_PROFILE[@]}" --manifest-path "$ROOT/Cargo.toml" -p webcall-loadtest --bin webcall-abuse
REPORT="$TARGET/loadtest/abuse.json"
for arg in "$@"; do
    [[ "$arg" == --report || "$arg" == --report=* ]] && REPORT=""
done
ARGS=("$@")
if [[ -n "$REPORT" ]]; then
    mkdir -p "$(dirname "$REPORT")"
    ARGS+=(--report "$REPORT")
fi
status=0
"$TARGET/$PROFILE/webcall-abuse" --server-bin "$WEBCALL_BIN" "${ARGS[@]}" || status=$?
[[ -n "$REPORT" ]] && echo "report: $REPORT" >&2
exit "$status"
