#!/usr/bin/env bash
# Builds the Debian package and prints its path (target/debian/webcall_VERSION-1_ARCH.deb) as
# the last line. Installs what it needs when missing: cargo-deb (pinned, from crates.io) and
# Debian's help2man. The release binary is built (a no-op when up to date; skipped with
# WEBCALL_DEB_NO_BUILD=1, which packages the binary already there) and packaged stripped;
# cargo-deb never compiles webcall a second time (--no-build). WEBCALL_DEB_PROFILE=dev packages
# the dev-profile binary instead (the test suite's, already built: the package round trip is
# the same and CI is spared a release build); a package for servers is the release one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_DEB_VERSION=3.8.0
PKG="$ROOT/target/package"
# Cargo's output directory, where cargo-deb finds the binary and writes the package.
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"

log() { echo "build-deb: $*" >&2; }

if ! cargo deb --version >/dev/null 2>&1; then
    log "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
if ! command -v help2man >/dev/null; then
    log "installing help2man"
    SUDO=()
    [[ $(id -u) -eq 0 ]] || SUDO=(sudo)
    if ! "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y help2man >&2; then
        "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update >&2
        "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y help2man >&2
    fi
fi

PROFILE="${WEBCALL_DEB_PROFILE:-release}"
case "$PROFILE" in
    release) BIN="$TARGET/release/webcall" ;;
    dev) BIN="$TARGET/debug/webcall" ;;
    *) log "WEBCALL_DEB_PROFILE must be release or dev"; exit 1 ;;
esac
if [[ "${WEBCALL_DEB_NO_BUILD:-}" == 1 ]]; then
    log "WEBCALL_DEB_NO_BUILD=1: packaging $BIN as it is"
    [[ -x "$BIN" ]] || { log "no $BIN"; exit 1; }
else
    log "cargo build --profile $PROFILE --bin webcall"
    cargo build --profile "$PROFILE" --bin webcall >&2
fi
VERSION="$(awk -F'"' '/^\[package\]/ { p = 1 } p && /^version *=/ { print $2; exit }' Cargo.toml)"
mkdir -p "$PKG"

# Dated by the last commit, so that a rebuild of the same tree makes the same files.
WHEN="$(git log -1 --format=%ct 2>/dev/null || date +%s)"

# The man page, from --help and --version, with COMMANDS, FILES and SEE ALSO from
# packaging/webcall.h2m.
SOURCE_DATE_EPOCH="$WHEN" help2man --no-info --section=1 \
    --name="WebRTC SFU speaking the Flashphoner WCS room protocol" \
    --include=packaging/webcall.h2m --output="$PKG/webcall.1" "$BIN"
gzip -9nf "$PKG/webcall.1"

# /etc/webcall/webcall.toml: webcall.example.toml (every setting, commented) with the
# service's data directory set.
sed 's|^# data_dir = .*|data_dir = "/var/lib/webcall"|' webcall.example.toml >"$PKG/webcall.toml"
grep -q '^data_dir = "/var/lib/webcall"$' "$PKG/webcall.toml" || { log "no data_dir line in webcall.example.toml"; exit 1; }

# The Debian changelog cargo-deb installs as changelog.Debian.gz: one entry for this version.
MAINTAINER="$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
cat >"$PKG/changelog" <<EOF
webcall ($VERSION-1) unstable; urgency=medium

  * webcall $VERSION.

 -- $MAINTAINER  $(LC_ALL=C date -u -R -d "@$WHEN")
EOF

log "cargo deb --no-build --strip --profile $PROFILE"
cargo deb --no-build --strip --profile "$PROFILE" --package webcall >&2
DEB="$TARGET/debian/webcall_${VERSION}-1_$(dpkg --print-architecture).deb"
[[ -f "$DEB" ]] || { log "no $DEB"; exit 1; }
echo "$DEB"
