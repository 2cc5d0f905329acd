#!/usr/bin/env bash
# Runs the browser tests (Chromium and Firefox ESR against the webcall binary), and the room
# SDK's unit tests under Node (tests/sdk/; alone: node --test tests/sdk/).
#   WEBCALL_BIN     server binary (default: target/debug/webcall)
#   WEBCALL_NETNS=1 run everything (server, page server, browsers) inside a fresh network
#                   namespace that has only `lo` (needs root; the namespace is deleted after)
#   Extra arguments go to `node --test`, e.g. --test-name-pattern=H.264
# Exit code: 0 when all pass, else the number of failed tests (at least 1).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${WEBCALL_BIN:-}" ]]; then
    WEBCALL_BIN="$(realpath -m -- "$WEBCALL_BIN")"
    export WEBCALL_BIN
fi
cd "$HERE"

if [[ ! -d node_modules/puppeteer-core || ! -d node_modules/@flashphoner/websdk ]]; then
    echo "tests/browser: node_modules missing; run scripts/install-test-deps.sh first" >&2
    exit 1
fi

if [[ "${WEBCALL_NETNS:-}" == "1" ]]; then
    ns="webcall-browser-$$"
    ip netns add "$ns" || exit 1
    trap 'ip netns delete "$ns" 2>/dev/null' EXIT
    ip -n "$ns" link set lo up || exit 1
    ip netns exec "$ns" env WEBCALL_NETNS=inside WEBCALL_ONLY_LOOPBACK=1 "$HERE/run.sh" "$@"
    exit $?
fi

mkdir -p ../../target/browser-screenshots
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

node --test --test-concurrency=1 --test-reporter=spec "$@" \
    room.test.mjs minimal-page.test.mjs bad-input.test.mjs \
    conference.test.mjs video-chat.test.mjs video-chat-screen.test.mjs reconnect.test.mjs sdk-example.test.mjs \
    recording.test.mjs rtmp.test.mjs access.test.mjs drain.test.mjs whip.test.mjs \
    ../sdk/protocol.test.mjs ../sdk/session.test.mjs 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

count() { grep -E "^ℹ $1 [0-9]+" "$log" | tail -1 | awk '{print $3}'; }
failed=$(( $(count fail || true) + 0 ))
cancelled=$(( $(count cancelled || true) + 0 ))
bad=$(( failed + cancelled ))
if (( bad > 0 )); then
    exit $(( bad > 125 ? 125 : bad ))
fi
exit "$status"
