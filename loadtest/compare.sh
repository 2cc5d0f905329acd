#!/usr/bin/env bash
# Runs the same load against Janus (VideoRoom) and webcall, one after the other, and prints
# both summaries side by side with their ratios.
#
#   sudo loadtest/compare.sh [--out DIR] [--io uring|mmsg] [N] [-- loadtest args]
#   e.g. sudo loadtest/compare.sh 100 -- --duration 10 --warmup 2 --decrypt-every 20
#
# Janus gathers no ICE candidates on loopback interfaces, so both servers run in a network
# namespace of their own ("server", 10.77.0.1 on a veth) and the load generator in another
# ("client", 10.77.0.2 on the peer veth); both are created here and deleted at exit. Each
# emulated peer keeps its 127.1.x.y address: the client namespace owns 127.0.0.0/8 on its
# loopback, the server namespace routes 127.1.0.0/16 to 10.77.0.2, and both allow 127/8 on
# the veth (route_localnet). No traffic leaves the two namespaces.
#
# The server (Janus, then webcall with one worker) is pinned to core 0, the load generator to
# core 1. Needs root (namespaces); installs Debian's janus package when it is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=loadtest/lib.sh
source "$ROOT/loadtest/lib.sh"
OUT="$ROOT/target/compare"
IO=mmsg
N=100
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) OUT="$2"; shift 2 ;;
        --io) IO="$2"; shift 2 ;;
        --) shift; break ;;
        *) N="$1"; shift ;;
    esac
done
EXTRA=("$@")
[[ $(id -u) -eq 0 ]] || { echo "compare.sh: needs root (network namespaces)" >&2; exit 1; }
command -v janus >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y janus
JANUS_LIB="$(dirname "$(dpkg -L janus | grep -m1 '/janus/plugins/libjanus_videoroom.so$')")/.."
JANUS_LIB="$(cd "$JANUS_LIB" && pwd)"

mkdir -p "$OUT"
build_release

SRV_NS="wcsrv$$"
CLI_NS="wccli$$"
SRV_IF="wcs$$"
CLI_IF="wcc$$"
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
TMP="$(mktemp -d)"
SERVER=""
PROBE=""

cleanup() {
    [[ -z "$PROBE" ]] || kill "$PROBE" 2>/dev/null || true
    if [[ -n "$SERVER" ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    ip netns del "$SRV_NS" 2>/dev/null || true
    ip netns del "$CLI_NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- namespaces -------------------------------------------------------------------------
ip netns add "$SRV_NS"
ip netns add "$CLI_NS"
ip link add "$SRV_IF" type veth peer name "$CLI_IF"
ip link set "$SRV_IF" netns "$SRV_NS"
ip link set "$CLI_IF" netns "$CLI_NS"
ip -n "$SRV_NS" addr add "$SRV_IP/24" dev "$SRV_IF"
ip -n "$CLI_NS" addr add "$CLI_IP/24" dev "$CLI_IF"
# The server namespace keeps its loopback down: its 127.0.0.0/8 would otherwise swallow the
# peers' 127.1.x.y addresses. Neither server needs it.
ip -n "$SRV_NS" link set "$SRV_IF" up
ip -n "$CLI_NS" link set lo up
ip -n "$CLI_NS" link set "$CLI_IF" up
for ns in "$SRV_NS" "$CLI_NS"; do
    for k in all default; do
        ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$k.route_localnet=1" "net.ipv4.conf.$k.rp_filter=0"
    done
done
ip netns exec "$SRV_NS" sysctl -qw "net.ipv4.conf.$SRV_IF.route_localnet=1" "net.ipv4.conf.$SRV_IF.rp_filter=0"
ip netns exec "$CLI_NS" sysctl -qw "net.ipv4.conf.$CLI_IF.route_localnet=1" "net.ipv4.conf.$CLI_IF.rp_filter=0"
ip -n "$SRV_NS" route add 127.1.0.0/16 via "$CLI_IP" dev "$SRV_IF"

# --- Janus configuration ----------------------------------------------------------------
JCFG="$TMP/janus"
mkdir -p "$JCFG"
cat >"$JCFG/janus.jcfg" <<EOF
general: {
	configs_folder = "$JCFG"
	plugins_folder = "$JANUS_LIB/plugins"
	transports_folder = "$JANUS_LIB/transports"
	events_folder = "$JANUS_LIB/events"
	loggers_folder = "$JANUS_LIB/loggers"
	log_to_stdout = true
	debug_level = 4
	admin_secret = "compare"
	interface = "$SRV_IP"
	session_timeout = 120
}
certificates: {
}
media: {
	rtp_port_range = "20000-60000"
	no_media_timer = 0
}
nat: {
	ice_enforce_list = "$SRV_IF"
	ignore_mdns = true
	full_trickle = false
}
plugins: {
	disable = "libjanus_audiobridge.so,libjanus_duktape.so,libjanus_echotest.so,libjanus_lua.so,libjanus_nosip.so,libjanus_recordplay.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_voicemail.so"
}
transports: {
	disable = "libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_rabbitmq.so"
}
events: {
	broadcast = false
	disable = "libjanus_gelfevh.so,libjanus_mqttevh.so,libjanus_nanomsgevh.so,libjanus_rabbitmqevh.so,libjanus_sampleevh.so,libjanus_wsevh.so"
}
loggers: {
	disable = "libjanus_jsonlog.so"
}
EOF
cat >"$JCFG/janus.transport.websockets.jcfg" <<EOF
general: {
	json = "plain"
	ws = true
	ws_port = 8188
	ws_ip = "$SRV_IP"
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
EOF
cat >"$JCFG/janus.transport.http.jcfg" <<EOF
general: {
	json = "plain"
	http = false
	https = false
}
admin: {
	admin_base_path = "/admin"
	admin_http = true
	admin_port = 7088
	admin_ip = "$SRV_IP"
	admin_https = false
}
EOF
cat >"$JCFG/janus.plugin.videoroom.jcfg" <<EOF
general: {
}
EOF

# --- runs -------------------------------------------------------------------------------
wait_port() { # ip port
    local i
    for i in $(seq 1 100); do
        if ip netns exec "$CLI_NS" bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "compare.sh: nothing listens on $1:$2" >&2
    return 1
}

load() { # target url json
    if [[ $(idle_pct) -lt 90 ]]; then
        echo "machine busy (< 90 % idle): not measuring" >&2
        exit 1
    fi
    ip netns exec "$CLI_NS" taskset -c 1 "$BIN/webcall-loadtest" --target "$1" --url "$2" \
        --server-pid "$SERVER" --subscribers "$N" --json "$3" "${EXTRA[@]}" \
        >"${3%.json}.txt" 2>&1 || echo "compare.sh: load against $1 failed (see ${3%.json}.txt)" >&2
}

stop_server() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
}

# Janus: the SRTP profile it selected comes from the Admin API (handle_info of one handle).
ip netns exec "$SRV_NS" taskset -c 0 janus -C "$JCFG/janus.jcfg" -F "$JCFG" -o >"$OUT/janus-$N.log" 2>&1 &
SERVER=$!
wait_port "$SRV_IP" 8188
wait_port "$SRV_IP" 7088
(
    # While the load runs, read one handle's DTLS state.
    sleep 2
    admin() {
        ip netns exec "$CLI_NS" curl -s --max-time 3 -H 'Content-Type: application/json' \
            -d "{\"janus\":\"$1\",\"transaction\":\"c\",\"admin_secret\":\"compare\"}" \
            "http://$SRV_IP:7088/admin$2"
    }
    for _ in $(seq 1 60); do
        s=$(admin list_sessions "" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][-1])' 2>/dev/null) || s=""
        if [[ -n "$s" ]]; then
            h=$(admin list_handles "/$s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["handles"][-1])' 2>/dev/null) || h=""
            if [[ -n "$h" ]]; then
                p=$(admin handle_info "/$s/$h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["info"]["webrtc"]["dtls"]["srtp-profile"])' 2>/dev/null) || p=""
                if [[ -n "$p" ]]; then echo "$p" >"$OUT/janus-$N.srtp"; exit 0; fi
            fi
        fi
        sleep 1
    done
) &
PROBE=$!
load janus "ws://$SRV_IP:8188/" "$OUT/janus-$N.json"
wait "$PROBE" 2>/dev/null || true
PROBE=""
JANUS_SRTP="$(cat "$OUT/janus-$N.srtp" 2>/dev/null || echo unknown)"
stop_server

DATA="$TMP/webcall"
mkdir -p "$DATA"
ip netns exec "$SRV_NS" taskset -c 0 "$BIN/webcall" --http "$SRV_IP:18080" --https "$SRV_IP:18443" \
    --media-ip "$SRV_IP" --media-port 32000 --workers 1 --io "$IO" --data-dir "$DATA" \
    --peer-timeout 60 --room-capacity 64 >"$OUT/webcall-$N.log" 2>&1 &
SERVER=$!
wait_port "$SRV_IP" 18080
load webcall "ws://$SRV_IP:18080/" "$OUT/webcall-$N.json"
stop_server

# --- summary ----------------------------------------------------------------------------
python3 - "$OUT/janus-$N.json" "$OUT/webcall-$N.json" "$JANUS_SRTP" <<'PY'
import json, sys

def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None

j, w, jsrtp = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
print(f"reports: {sys.argv[1]} {sys.argv[2]}")
keys = sorted({k for r in (j, w) if r for k in r if k != "details"})
print(f"{'':26} {'janus':>22} {'webcall':>22}")
for k in keys:
    cell = lambda r: "no report" if r is None else json.dumps(r.get(k))
    print(f"{k:26} {cell(j):>22} {cell(w):>22}")

def pps_per_cpu(r):
    return r["forwarded_pps"] * r["duration_s"] / r["server_cpu_seconds"] if r and r.get("server_cpu_seconds") else None

def val(r, k):
    return r.get(k) if r else None

rows = [
    ("subscribers (playing)", lambda r: val(r, "subscribers")),
    ("forwarded pps", lambda r: val(r, "forwarded_pps")),
    ("server CPU s", lambda r: val(r, "server_cpu_seconds")),
    ("server CPU % of a core", lambda r: r and r.get("server_cpu_seconds") is not None
        and 100 * r["server_cpu_seconds"] / r["duration_s"] or None),
    ("forwarded pkt / CPU-s", pps_per_cpu),
    ("CPU us / packet", lambda r: val(r, "cpu_us_per_packet")),
    ("memory / subscriber KiB", lambda r: val(r, "mem_bytes_per_subscriber") and r["mem_bytes_per_subscriber"] / 1024),
    ("latency p50 us", lambda r: val(r, "latency_us_p50")),
    ("latency p99 us", lambda r: val(r, "latency_us_p99")),
    ("loss %", lambda r: val(r, "loss_pct")),
    ("loss after NACK %", lambda r: val(r, "loss_after_nack_pct")),
    ("load generator bound", lambda r: val(r, "loadgen_bound")),
]

def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    return f"{v:,.2f}" if isinstance(v, float) else f"{v:,}"

print()
print(f"{'':26} {'janus':>14} {'webcall':>14} {'webcall/janus':>14}")
for label, f in rows:
    a, b = f(j), f(w)
    ratio = b / a if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
        and not isinstance(a, bool) and a else None
    print(f"{label:26} {fmt(a):>14} {fmt(b):>14} {fmt(ratio):>14}")
print(f"{'SRTP profile':26} {jsrtp:>14} {'AEAD_AES_256_GCM':>14}")
PY
