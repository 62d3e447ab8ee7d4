#!/usr/bin/env bash
# A run's hash is the same in debug and release builds: seeds 1..5 of every
# scenario on both binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p warden-sim --features warden/mutants
cargo build -q --release -p warden-sim --features warden/mutants
target=${CARGO_TARGET_DIR:-target}
n=0
for sc in scenarios/*.toml; do
  for seed in 1 2 3 4 5; do
    d=$("$target/debug/warden-sim" run "$sc" --seed "$seed" | tail -1)
    r=$("$target/release/warden-sim" run "$sc" --seed "$seed" | tail -1)
    if [ "$d" != "$r" ]; then
      echo "debug and release differ for $sc seed $seed:"; echo "  debug:   $d"; echo "  release: $r"; exit 1
    fi
    n=$((n+1))
  done
done
echo "hash-debug-release: $n runs, same hash in debug and release"
