#!/usr/bin/env bash
# Builds the benchmark peers (shared/bench-workload.md) in release and runs
# turmoil at a 1 ms tick, turmoil at a 10 ms tick and madsim, each for
# ${BENCH_SECS:-20} s of wall time, one after another.
#
# stdout gets exactly the three contract lines, e.g.
#   turmoil-1ms: 70 seeds in 20.01 s = 3.50 seeds/s
#   turmoil-10ms: 640 seeds in 20.00 s = 32.00 seeds/s
#   madsim: 2260 seeds in 20.00 s = 113.00 seeds/s
# Build output and failures go to stderr. Exits non-zero if a build fails or
# any peer fails its checks (the other peers still run).
#
# Build dirs (relative to the repo root): target/bench-turmoil and
# target/bench-madsim. Cargo honours CARGO_BUILD_JOBS as usual.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
secs="${BENCH_SECS:-20}"

build() { # <crate dir> <target dir>
    # Build from the crate's own directory so the same cargo config applies
    # whatever the caller's cwd.
    (cd "$1" && CARGO_TARGET_DIR="$2" cargo build --release --locked --quiet)
}

status=0

turmoil_bin="$root/target/bench-turmoil/release/bench-peer-turmoil"
madsim_bin="$root/target/bench-madsim/release/bench-peer-madsim"

if build "$here/turmoil" "$root/target/bench-turmoil"; then
    "$turmoil_bin" --tick-ms 1 --secs "$secs" || status=1
    "$turmoil_bin" --tick-ms 10 --secs "$secs" || status=1
else
    echo "run-peers.sh: building the turmoil peer failed" >&2
    status=1
fi

# madsim replaces tokio, time and the network only under --cfg madsim.
if RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg madsim" build "$here/madsim" "$root/target/bench-madsim"; then
    "$madsim_bin" --secs "$secs" || status=1
else
    echo "run-peers.sh: building the madsim peer failed" >&2
    status=1
fi

exit "$status"
