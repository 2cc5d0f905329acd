#!/usr/bin/env bash
# The Debian package's test, run as root (CI is): builds the package (scripts/build-deb.sh),
# lints it, installs it, checks the installed files and the unit (systemd-analyze verify and
# security), runs the unit's ExecStart as written with its Environment= on the default ports
# and checks that it serves and stops cleanly on SIGTERM, then purges the package. One line
# per check; cleans up after itself, also on failure, so it can run again at once.
# WEBCALL_DEB_NO_BUILD=1 packages the binary already built instead of building it, and
# WEBCALL_DEB_PROFILE=dev the dev-profile one (scripts/build-deb.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ $(id -u) -ne 0 ]]; then
    echo "skipped: needs root"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
EXPOSURE_MAX=2.5
# The server drains for drain_timeout (30 s by default) at most; idle, it exits at once.
STOP_WITHIN=30
STATE=/var/lib/webcall
TMP="$(mktemp -d)"
PID=""
MADE_STATE=""
passed=0
declare -A SYSCTL_BEFORE=()
for key in net.core.rmem_max net.core.wmem_max net.core.netdev_max_backlog; do
    SYSCTL_BEFORE[$key]="$(cat "/proc/sys/${key//.//}")"
done

ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() {
    echo "FAIL: $*" >&2
    echo "package: $passed passed, 1 failed"
    exit 1
}

cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
    if dpkg-query -W -f='${Status}' webcall 2>/dev/null | grep -q "ok installed\|config-files"; then
        dpkg --purge webcall >/dev/null 2>&1 || true
    fi
    [[ -z "$MADE_STATE" ]] || rm -rf "$STATE"
    # The postinst raised these; the machine gets back what it had.
    for key in "${!SYSCTL_BEFORE[@]}"; do
        echo "${SYSCTL_BEFORE[$key]}" >"/proc/sys/${key//.//}" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# Tools: lintian, systemd-analyze (Debian's systemd), curl, ss (iproute2), setpriv, readelf.
need=()
for pair in lintian:lintian systemd-analyze:systemd curl:curl ss:iproute2 setpriv:util-linux readelf:binutils; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if ((${#need[@]})); then
    apt-get -o DPkg::Lock::Timeout=600 install -y "${need[@]}" >/dev/null 2>&1 || {
        apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
        apt-get -o DPkg::Lock::Timeout=600 install -y "${need[@]}" >/dev/null
    }
fi

DEB="$(bash scripts/build-deb.sh 2>"$TMP/build.log" | tail -1)" || { cat "$TMP/build.log" >&2; fail "build-deb.sh"; }
[[ -f "$DEB" ]] || { cat "$TMP/build.log" >&2; fail "build-deb.sh printed no package"; }
ok "built $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"

lintian "$DEB" >"$TMP/lintian.txt" 2>&1 || true
sed 's/^/  lintian: /' "$TMP/lintian.txt"
if grep -q '^E:' "$TMP/lintian.txt"; then fail "lintian reports errors"; fi
ok "lintian: no errors ($(grep -c '^W:' "$TMP/lintian.txt" || true) warnings)"

dpkg -i "$DEB" >"$TMP/dpkg.log" 2>&1 || { cat "$TMP/dpkg.log" >&2; fail "dpkg -i"; }
grep -q 'not applied now' "$TMP/dpkg.log" && applied="not applied (read-only /proc/sys?)" || applied=applied
ok "dpkg -i (sysctl drop-in $applied: net.core.rmem_max = $(cat /proc/sys/net/core/rmem_max))"

UNIT=/usr/lib/systemd/system/webcall.service
[[ -f "$UNIT" ]] || UNIT=/lib/systemd/system/webcall.service
for f in /usr/bin/webcall /etc/webcall/webcall.toml "$UNIT" /usr/lib/sysctl.d/60-webcall.conf \
    /usr/share/man/man1/webcall.1.gz /usr/share/doc/webcall/copyright; do
    [[ -f "$f" ]] || fail "installed file missing: $f"
done
ok "installed: binary, config, unit, sysctl drop-in, man page, copyright"
# The installed config is webcall.example.toml with only data_dir set.
if diff <(sed 's|^# data_dir = .*|data_dir = "/var/lib/webcall"|' webcall.example.toml) \
    /etc/webcall/webcall.toml >"$TMP/config.diff" &&
    [[ "$(grep -Ev '^[[:space:]]*(#|$)' /etc/webcall/webcall.toml)" == 'data_dir = "/var/lib/webcall"' ]]; then
    ok "/etc/webcall/webcall.toml: every setting commented, data_dir set"
else
    cat "$TMP/config.diff" >&2
    fail "/etc/webcall/webcall.toml differs from webcall.example.toml by more than data_dir"
fi
[[ -L /etc/systemd/system/multi-user.target.wants/webcall.service ]] || fail "webcall.service not enabled"
ok "webcall.service enabled (multi-user.target.wants)"
if readelf -S /usr/bin/webcall | grep -q '\.debug_info'; then
    fail "/usr/bin/webcall is not stripped"
fi
ok "/usr/bin/webcall stripped ($(du -h /usr/bin/webcall | cut -f1))"

man_check=()
command -v man >/dev/null || man_check=(--man=no)
systemd-analyze verify "${man_check[@]}" "$UNIT" >"$TMP/verify.txt" 2>&1 || {
    cat "$TMP/verify.txt" >&2
    fail "systemd-analyze verify $UNIT"
}
[[ ! -s "$TMP/verify.txt" ]] || sed 's/^/  verify: /' "$TMP/verify.txt"
ok "systemd-analyze verify $UNIT"

systemd-analyze security --offline=yes "$UNIT" >"$TMP/security.txt" 2>&1 || true
exposure="$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$TMP/security.txt")"
[[ -n "$exposure" ]] || { cat "$TMP/security.txt" >&2; fail "no exposure level from systemd-analyze security"; }
awk -v e="$exposure" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(e <= m) }' ||
    fail "systemd-analyze security: exposure $exposure > $EXPOSURE_MAX"
ok "systemd-analyze security --offline=yes: exposure $exposure <= $EXPOSURE_MAX"

# The unit's ExecStart and Environment=, as written (no quoting or specifiers in them).
exec_start="$(sed -n 's/^ExecStart=//p' "$UNIT")"
[[ -n "$exec_start" && "$exec_start" == /* ]] || fail "no plain ExecStart= in $UNIT"
read -ra command <<<"$exec_start"
environment=()
while read -r line; do
    read -ra words <<<"$line"
    environment+=("${words[@]}")
done < <(sed -n 's/^Environment=//p' "$UNIT")

# Its default ports must be free: TCP 8080, 8443, 1935 and UDP 31000 + one per worker (core).
workers="$(nproc)"
busy="$(ss -Hltn '( sport = :8080 or sport = :8443 or sport = :1935 )')$(ss -Hlun \
    "( sport >= :31000 and sport < :$((31000 + workers)) )")"
[[ -z "$busy" ]] || fail "default ports in use (stop what holds them): $busy"
ok "ports 8080, 8443, 1935/tcp and 31000-$((31000 + workers - 1))/udp free"

# The unit's LimitNOFILE= and LimitMEMLOCK= (infinity is prlimit's unlimited).
limit() { sed -n "s/^$1=//p" "$UNIT" | sed 's/^infinity$/unlimited/'; }
nofile="$(limit LimitNOFILE)"
memlock="$(limit LimitMEMLOCK)"
# A container may cap what even root can set (its own hard limit): run with that instead, and
# say so.
if ! prlimit --nofile="$nofile:$nofile" true 2>/dev/null; then
    echo "  note: LimitNOFILE=$nofile cannot be set here; running with this shell's hard limit $(ulimit -Hn)"
    nofile="$(ulimit -Hn)"
fi
if ! prlimit --memlock="$memlock:$memlock" true 2>/dev/null; then
    echo "  note: LimitMEMLOCK=$memlock cannot be set here; running with this shell's hard limit $(ulimit -Hl)"
    memlock="$(ulimit -Hl)"
fi

# As systemd would: the state directory made, a user that is not root, UMask=0027.
if [[ ! -e "$STATE" ]]; then
    MADE_STATE=1
    install -d -m 0750 -o nobody -g nogroup "$STATE"
fi
(
    umask 0027
    exec env "${environment[@]}" prlimit --nofile="$nofile:$nofile" --memlock="$memlock:$memlock" \
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "${command[@]}"
) >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 40); do
    curl -fsS -o "$TMP/health" http://127.0.0.1:8080/health 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/server.log" >&2; fail "the server exited at start"; }
    sleep 0.5
done
[[ -s "$TMP/health" ]] || { cat "$TMP/server.log" >&2; fail "/health did not answer within 20 s"; }
ok "ExecStart as written (${environment[*]}, as nobody, nofile $nofile, memlock $memlock): /health answers: $(head -c 80 "$TMP/health")"

type="$(curl -fsS -o "$TMP/index" -w '%{content_type}' http://127.0.0.1:8080/)" || fail "GET / failed"
[[ "$type" == text/html* ]] && grep -qi '<html' "$TMP/index" || fail "GET / is not HTML ($type)"
ok "GET / serves HTML"
[[ -n "$(ls -A "$STATE")" ]] || fail "nothing written to data_dir $STATE"
ok "data_dir from the installed config: $STATE holds $(ls "$STATE" | tr '\n' ' ')"

kill -TERM "$PID"
for _ in $(seq 1 $((STOP_WITHIN * 10))); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$PID" 2>/dev/null; then
    cat "$TMP/server.log" >&2
    fail "still running ${STOP_WITHIN} s after SIGTERM"
fi
status=0
wait "$PID" || status=$?
PID=""
((status == 0)) || { tail -20 "$TMP/server.log" >&2; fail "exit status $status after SIGTERM"; }
ok "SIGTERM: exited with status 0"

dpkg --purge webcall >"$TMP/purge.log" 2>&1 || { cat "$TMP/purge.log" >&2; fail "dpkg --purge"; }
for f in /usr/bin/webcall /etc/webcall/webcall.toml "$UNIT" /etc/systemd/system/multi-user.target.wants/webcall.service; do
    [[ ! -e "$f" && ! -L "$f" ]] || fail "left after purge: $f"
done
ok "dpkg --purge webcall: binary, config, unit and enable link gone"

echo "package: $passed passed, 0 failed"
