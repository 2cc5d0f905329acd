#!/usr/bin/env bash
# Makes the Python venv the standard-client tests run aiortc in (target/clients-venv), from
# tests/clients/requirements.txt; idempotent and quick when it is up to date. GStreamer's
# webrtcbin needs no venv: its script runs under Debian's /usr/bin/python3 (python3-gi), which
# scripts/install-test-deps.sh installs with the GStreamer packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${WEBCALL_CLIENTS_VENV:-$ROOT/target/clients-venv}"
REQUIREMENTS="$ROOT/tests/clients/requirements.txt"
STAMP="$VENV/.requirements.txt"

if [[ -x "$VENV/bin/python" && -f "$STAMP" ]] && cmp -s "$REQUIREMENTS" "$STAMP"; then
    echo "clients venv: up to date ($VENV)"
    exit 0
fi
if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    SUDO=()
    [[ $(id -u) -ne 0 ]] && SUDO=(sudo)
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends python3-venv
fi
rm -rf "$VENV"
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
cp "$REQUIREMENTS" "$STAMP"
echo "clients venv: made ($VENV)"
