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
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
FEATURES=(--no-default-features --features aws-lc-rs,rcgen)

if [[ "${1:-}" != "--measure" ]]; then
    cargo test "${FEATURES[@]}"
    exit 0
fi

# --measure: a handshake's CPU and memory on the server side (tests/handshake_cost.rs, release),
# for dimpl 0.9.0 as published and for this fork, one after the other. The published crate's
# source is fetched into cargo's registry cache by a throwaway manifest that depends on it.
measure() {
    cargo test --release "${FEATURES[@]}" --test handshake_cost -- --ignored --nocapture 2>&1 | grep '^# ' | sed "s/^# /# $1: /"
}
FETCH="$(mktemp -d)"
trap 'rm -rf "$COPY" "$FETCH"' EXIT
mkdir -p "$FETCH/src" && touch "$FETCH/src/lib.rs"
printf '[package]\nname = "fetch-dimpl"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ndimpl = "=0.9.0"\n[workspace]\n' > "$FETCH/Cargo.toml"
(cd "$FETCH" && cargo fetch --quiet)
UPSTREAM="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/dimpl-0.9.0 | head -1)"
cp -r src "$FETCH/fork-src"
rm -rf src && cp -r "$UPSTREAM/src" src
measure "dimpl 0.9.0"
rm -rf src && cp -r "$FETCH/fork-src" src
measure "fork"
