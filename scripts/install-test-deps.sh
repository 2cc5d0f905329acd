#!/usr/bin/env bash
# Installs what the browser tests need on a fresh Debian 12 machine (run as root).
# Idempotent and quick when everything is already there: no apt call at all then.
#
#   - Debian packages: chromium, firefox-esr, ffmpeg, prometheus (promtool), and GStreamer's
#     webrtcbin with Debian's python3-gi for the standard-client tests (tests/clients/)
#   - npm packages of tests/browser (puppeteer-core, @flashphoner/websdk), from the lock file
#
# Puppeteer never downloads a browser here: the tests drive Debian's /usr/bin/chromium and
# /usr/bin/firefox-esr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BROWSER_TESTS="$ROOT/tests/browser"

export DEBIAN_FRONTEND=noninteractive
export PUPPETEER_SKIP_DOWNLOAD=1
export PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1

# prometheus: its promtool checks /metrics (the package's own server is not started: no init here).
# gstreamer1.0-*: webrtcbin (plugins-bad), libnice's ICE (nice), VP8/Opus/x264 codecs (good,
# ugly, libav) and the test sources (base); python3-gi + gir1.2-*: the webrtcbin scripts, which
# run under Debian's /usr/bin/python3. libssl-dev, pkg-config: the OpenSSL DTLS peer of the
# dimpl fork's tests (vendor/test-dimpl.sh). python3-venv: the aiortc venv (tests/clients/setup.sh).
APT_PACKAGES=(chromium firefox-esr ffmpeg prometheus
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice
    python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0
    libssl-dev pkg-config python3-venv)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    echo "install-test-deps: installing Debian packages: ${missing[*]}"
    SUDO=()
    if [[ $(id -u) -ne 0 ]]; then
        SUDO=(sudo)
    fi
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
else
    echo "install-test-deps: Debian packages present: ${APT_PACKAGES[*]}"
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-test-deps: node and npm are required (Node.js 18 or newer)" >&2
    exit 1
fi

cd "$BROWSER_TESTS"

# Skip npm when node_modules already matches the lock file (npm writes
# node_modules/.package-lock.json after a successful install).
stamp="node_modules/.package-lock.json"
up_to_date=0
if [[ -f package-lock.json && -f "$stamp" && -d node_modules/puppeteer-core && -d node_modules/@flashphoner/websdk ]]; then
    if [[ ! package-lock.json -nt "$stamp" && ! package.json -nt "$stamp" ]]; then
        up_to_date=1
    fi
fi

if ((up_to_date)); then
    echo "install-test-deps: tests/browser/node_modules is up to date"
elif [[ -f package-lock.json ]]; then
    echo "install-test-deps: npm ci in tests/browser"
    npm ci --no-audit --no-fund
else
    echo "install-test-deps: npm install in tests/browser"
    npm install --no-audit --no-fund
fi

echo "install-test-deps: done"
