# Shared by the measuring scripts in loadtest/ (sourced, not run): building the release
# binaries and telling whether the machine is quiet enough to measure on.

# Build the release server and load generator (a no-op when up to date) and set BIN to their
# directory, SERVER_BIN and LOADGEN_BIN to the binaries measured (WEBCALL_BIN and
# LOADTEST_BIN pick other builds, for A/B runs). Needs ROOT, the checkout.
build_release() {
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p webcall --bin webcall
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p webcall-loadtest
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    SERVER_BIN="${WEBCALL_BIN:-$BIN/webcall}"
    LOADGEN_BIN="${LOADTEST_BIN:-$BIN/webcall-loadtest}"
}

# The machine's idle CPU over one second, in percent (from /proc/stat).
idle_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    local idle=$(( b[4] - a[4] )) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
    echo $(( 100 * idle / (total > 0 ? total : 1) ))
}
