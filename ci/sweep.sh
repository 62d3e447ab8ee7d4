#!/usr/bin/env bash
# The main job: sweep every scenario over its default seed count (all must
# pass, coverage judged), then check that every mutant a scenario lists in
# `catches` is caught by each scenario that lists it.
#   ci/sweep.sh                 default seed counts
#   SWEEP_SEEDS=10000 ci/sweep.sh   heavier sweep (any N)
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
cargo build -q --release -p warden-sim --features warden/mutants
sim=target/release/warden-sim
seeds=()
[ -n "${SWEEP_SEEDS:-}" ] && seeds=(--seeds "$SWEEP_SEEDS")
echo "== sweep: every scenario, ${SWEEP_SEEDS:-default} seeds each"
"$sim" explore scenarios "${seeds[@]}"
echo "== mutants: each must be caught by every scenario that lists it"
# Every declared mutant: explore exits 2 if no scenario lists one, 1 if a
# listing scenario does not catch it.
for m in $("$sim" list --mutants); do
  "$sim" explore scenarios --mutant "$m" | tail -1 | sed "s/^/$m: /"
done
echo "== determinism: 20 seeds of each scenario in two OS processes"
for sc in scenarios/*.toml; do
  "$sim" check-determinism "$sc" --seeds 20 | tail -1 | sed "s|^|$sc: |"
done
echo "sweep: ok"
