#!/usr/bin/env bash
# Runs the tests of the dimpl fork in vendor/dimpl: its own unit tests and
# tests/rsa_client.rs, where an OpenSSL DTLS 1.2 client with an RSA certificate (PKCS#1 v1.5
# and PSS signatures) connects to dimpl's server and an altered CertificateVerify is refused.
#
# As for str0m (test-str0m.sh), the tests run on a copy in a temporary directory that is its
# own workspace, seeded with the project's Cargo.lock so shared dependencies stay at
# webcall's versions. The OpenSSL peer links the system's libssl (Debian's libssl-dev,
# installed by scripts/install-test-deps.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COPY="$(mktemp -d)"
trap 'rm -rf "$COPY"' EXIT

cp -r "$ROOT/vendor/dimpl/." "$COPY/"
cp "$ROOT/Cargo.lock" "$COPY/Cargo.lock"
cat >> "$COPY/Cargo.toml" <<'TOML'

[workspace]

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
TOML

cd "$COPY"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo test --no-default-features --features aws-lc-rs,rcgen
