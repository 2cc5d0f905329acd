#!/usr/bin/env bash
# Runs the unit tests of the str0m fork in vendor/str0m (all of str0m's own, plus the ones its
# changes added), so the fork is checked against the library's own expectations.
#
# The fork's manifest is the published one, whose optional crypto backends and test-only
# network emulator are at versions the project's registry may not carry; webcall uses none of
# them. So the tests run on a copy in a temporary directory whose manifest leaves those out,
# seeded with the project's Cargo.lock so every shared dependency stays at webcall's version.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COPY="$(mktemp -d)"
trap 'rm -rf "$COPY"' EXIT

cp -r "$ROOT/vendor/str0m/." "$COPY/"
cp "$ROOT/Cargo.lock" "$COPY/Cargo.lock"
python3 - "$COPY/Cargo.toml" <<'PY'
import re, sys

path = sys.argv[1]
manifest = open(path).read()
# The unit tests use none of these; the examples' web server (rouille) and the integration
# tests' capture reader (pcap-file) are left out with them.
left_out = ("str0m-openssl", "str0m-rust-crypto", "str0m-wincrypto", "str0m-apple-crypto",
            "str0m-netem", "netem", "dependencies.drv", "rouille", "pcap-file")
tables = re.split(r"(?m)^(?=\[)", manifest)
kept = [t for t in tables if not any(name in t.split("\n", 1)[0] for name in left_out)]
manifest = "".join(kept)
# Features that name a left-out dependency are emptied, and so are features naming those.
gone = ["str0m-openssl", "str0m-rust-crypto", "str0m-wincrypto", "str0m-apple-crypto", "drv",
        "rouille"]
while True:
    feature = re.search(r'(?m)^([\w-]+) = \[[^\]]*"(?:dep:)?(?:%s)[?/"][^\]]*\]\n' % "|".join(map(re.escape, gone)),
                        manifest)
    if not feature:
        break
    gone.append(feature.group(1))
    # Kept as an empty feature, so the code's cfg(feature = ...) still names a known one.
    manifest = manifest[:feature.start()] + feature.group(1) + " = []\n" + manifest[feature.end():]
# The copy is its own workspace, not a member of webcall's; with webcall's dev profile, so the
# dependencies both build alike are reused from webcall's target directory, not built again.
open(path, "w").write(manifest + """
[workspace]

[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
""")
PY

cd "$COPY"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo test --lib --no-default-features --features aws-lc-rs
