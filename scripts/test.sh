#!/usr/bin/env bash
# Sets up and runs every test: formatting and lints, unit and integration tests (both UDP I/O
# backends), the tests of the forked str0m and dimpl, each criterion bench once in test mode, the
# browser tests in Chromium and Firefox ESR, and the Debian package's round trip (as root).
# Installs what it needs (Debian packages, npm packages, cargo-deb) idempotently.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# One pass over a clean tree gains nothing from incremental caches, which would add about
# 2.5 GB to target/. A developer's own cargo commands keep theirs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
bash scripts/install-test-deps.sh
bash tests/clients/setup.sh

step "format and lints"
df -h "$ROOT" | tail -1 | awk '{print "disk free under the checkout: " $4}'
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests"
cargo test --workspace

step "the str0m fork's own unit tests (vendor/README.md)"
bash vendor/test-str0m.sh

step "the dimpl fork's tests: RSA client certificates against OpenSSL (vendor/README.md)"
bash vendor/test-dimpl.sh

step "benches, once each"
cargo test --benches

step "browser tests"
# The same feature set as the tests above (their dev-dependencies included), so this build
# reuses their artifacts instead of compiling a second copy of the dependencies.
cargo build --workspace --bins --tests
WEBCALL_BIN="$ROOT/target/debug/webcall" bash tests/browser/run.sh

step "the Debian package (root only: dpkg -i, lintian, the unit offline, ExecStart as written)"
# The dev-profile binary just built goes in the package; scripts/build-deb.sh alone makes the
# release package for servers.
WEBCALL_DEB_PROFILE=dev WEBCALL_DEB_NO_BUILD=1 bash scripts/test-package.sh
