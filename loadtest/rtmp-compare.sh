#!/usr/bin/env bash
# One RTMP publisher, N RTMP players: webcall against Debian's nginx-rtmp, the same load on the
# same core, one after the other; prints CPU per delivered message and memory per player for
# each, and their ratio.
#
#   loadtest/rtmp-compare.sh [N players (200)] [SECONDS (20)]
#
# The server is pinned to core 0; the publisher (ffmpeg -c copy of a cached 1 Mbit/s FLV,
# 30 fps, AAC) and the players (webcall-rtmp-load, light players that count what they get)
# to core 1. The server's CPU is its utime+stime over the measured window (/proc), its memory
# the RSS growth from before the players to the end. A run whose players failed or got no
# video fails loudly instead of printing numbers. Installs nginx and libnginx-mod-rtmp when
# missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-200}"
SECONDS_RUN="${2:-20}"
OUT="$ROOT/target/rtmp-compare"
mkdir -p "$OUT"

if ! dpkg-query -W -f='${Status}' libnginx-mod-rtmp 2>/dev/null | grep -q "install ok installed"; then
    SUDO=(); [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends nginx libnginx-mod-rtmp
fi
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p webcall --bin webcall
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p webcall-loadtest --bin webcall-rtmp-load
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/webcall-loadtest"
mkdir -p "$CACHE"
CLIP="$CACHE/rtmp-720p-1mbit-30fps-aac.flv"
if [[ ! -s "$CLIP" ]]; then
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
        -f lavfi -i sine=frequency=440:sample_rate=44100 -t 30 \
        -c:v libx264 -profile:v baseline -bf 0 -g 60 -b:v 1M -maxrate 1M -bufsize 1M \
        -c:a aac -b:a 128k -ar 44100 -f flv "$CLIP.tmp" && mv "$CLIP.tmp" "$CLIP"
fi

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# The server process: nginx's worker (not its master), or webcall itself.
server_pid() {
    if [[ "$1" == nginx ]]; then pgrep -P "$2" | head -1; else echo "$2"; fi
}

measure() {
    local kind="$1" port="$2" pid="$3"
    local url="rtmp://127.0.0.1:$port/live/bench"
    taskset -c 1 ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$CLIP" -c copy -f flv "$url" &
    PIDS+=($!)
    sleep 3
    local spid; spid="$(server_pid "$kind" "$pid")"
    local rss0 t0; rss0="$(rss_kb "$spid")"; t0="$(cpu_ticks "$spid")"
    local report
    if ! report="$(taskset -c 1 "$BIN/webcall-rtmp-load" --url "$url" --players "$N" --seconds "$SECONDS_RUN")"; then
        echo "rtmp-compare: the $kind load failed: $report" >&2
        exit 1
    fi
    local t1 rss1; t1="$(cpu_ticks "$spid")"; rss1="$(rss_kb "$spid")"
    kill "${PIDS[-1]}" 2>/dev/null || true
    echo "$report" > "$OUT/$kind.json"
    /usr/bin/python3 - "$kind" "$report" "$t0" "$t1" "$rss0" "$rss1" "$N" <<'PY'
import json, os, sys
kind, report, t0, t1, rss0, rss1, n = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:])
hz = os.sysconf("SC_CLK_TCK")
cpu_us = (t1 - t0) * 1e6 / hz
messages = report["video_messages"] + report["audio_messages"]
print(json.dumps({"server": kind, "cpu_s": cpu_us / 1e6, "messages": messages,
                  "cpu_us_per_message": cpu_us / max(1, messages),
                  "rss_growth_kib_per_player": (rss1 - rss0) / n,
                  "first_video_ms_p50": report["first_video_ms_p50"], "first_video_ms_p99": report["first_video_ms_p99"]}))
PY
}

# nginx-rtmp, one worker process on core 0.
NGINX_PORT="$(free_port)"
cat > "$TMP/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity 01;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log;
events { worker_connections 4096; }
rtmp { server { listen 127.0.0.1:$NGINX_PORT; chunk_size 4096; application live { live on; } } }
EOF
taskset -c 0 nginx -c "$TMP/nginx.conf" -p "$TMP" &
NGINX=$!
PIDS+=("$NGINX")
sleep 1
NGINX_LINE="$(measure nginx "$NGINX_PORT" "$NGINX")"
kill "$NGINX"; wait "$NGINX" 2>/dev/null || true

# webcall, one worker, pinned to core 0 with its control thread.
WEBCALL_PORT="$(free_port)"
HTTP_PORT="$(free_port)"
taskset -c 0 "$BIN/webcall" --http "127.0.0.1:$HTTP_PORT" --https "127.0.0.1:$(free_port)" \
    --media-ip 127.0.0.1 --media-port 39000 --workers 1 --data-dir "$TMP/webcall" \
    --rtmp "127.0.0.1:$WEBCALL_PORT" --rtmp-connections-per-ip $((N + 8)) > "$TMP/webcall.log" 2>&1 &
WEBCALL=$!
PIDS+=("$WEBCALL")
sleep 1
WEBCALL_LINE="$(measure webcall "$WEBCALL_PORT" "$WEBCALL")"

echo "$NGINX_LINE"
echo "$WEBCALL_LINE"
/usr/bin/python3 - "$NGINX_LINE" "$WEBCALL_LINE" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"CPU per delivered message: nginx-rtmp {a['cpu_us_per_message']:.2f} us, webcall {b['cpu_us_per_message']:.2f} us "
      f"-> webcall needs {b['cpu_us_per_message'] / a['cpu_us_per_message']:.2f}x nginx-rtmp's CPU "
      f"({a['cpu_us_per_message'] / b['cpu_us_per_message']:.2f}x its throughput per CPU-second)")
print(f"memory per player: nginx-rtmp {a['rss_growth_kib_per_player']:.1f} KiB, webcall {b['rss_growth_kib_per_player']:.1f} KiB")
print(f"first video message after play: nginx-rtmp p50 {a['first_video_ms_p50']} ms, webcall p50 {b['first_video_ms_p50']} ms")
PY
