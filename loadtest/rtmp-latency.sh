#!/usr/bin/env bash
# RTMP to WebRTC delay on loopback: a synthetic encoder (webcall-rtmp-load --latency) publishes
# into a room over RTMP with its send time in an SEI NAL unit of every picture; a WebRTC
# player (the loadtest client) plays it and reads each picture's delay; a second player joins
# halfway through a group of pictures and reports when its first video packet came.
#
#   loadtest/rtmp-latency.sh [SECONDS (20)]
#
# Prints one JSON line: rtmp_to_webrtc_ms_p50 / _p99, pictures sent and measured, and
# late_player_first_video_ms. Fails loudly when the pictures did not arrive.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_RUN="${1:-20}"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p webcall --bin webcall
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p webcall-loadtest --bin webcall-rtmp-load
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
TMP="$(mktemp -d)"
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP="$(free_port)"; RTMP="$(free_port)"
taskset -c 0 "$BIN/webcall" --http "127.0.0.1:$HTTP" --https "127.0.0.1:$(free_port)" --media-ip 127.0.0.1 \
    --media-port 39200 --workers 1 --data-dir "$TMP" --rtmp "127.0.0.1:$RTMP" > "$TMP/webcall.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$TMP"' EXIT
sleep 1
taskset -c 1 "$BIN/webcall-rtmp-load" --latency --url "rtmp://127.0.0.1:$RTMP/room/latency/enc" \
    --ws "ws://127.0.0.1:$HTTP/" --seconds "$SECONDS_RUN"
