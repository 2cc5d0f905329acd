#!/usr/bin/env bash
# Sets up and runs every test: formatting and lints, unit and integration tests (both UDP I/O
# backends), each criterion bench once in test mode, and the browser tests in Chromium and
# Firefox ESR. Installs what it needs (Debian packages, npm packages) idempotently.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
bash scripts/install-test-deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests"
cargo test --workspace

step "benches, once each"
cargo test --benches

step "browser tests"
cargo build --bin webcall
WEBCALL_BIN="$ROOT/target/debug/webcall" bash tests/browser/run.sh
