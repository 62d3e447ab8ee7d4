#!/usr/bin/env bash
# The benchmark (shared/bench-workload.md) on warden-sim, turmoil (1 ms and
# 10 ms ticks) and madsim, each for the same wall budget, one seed after
# another on one thread, release builds. Prints one contract line per
# configuration, then the ratios measured in this run, the cost of
# warden-sim's recording and hashing, and (for report only) explore's
# rate on 1 and 2 cores.
#   BENCH_SECS=20 (default) ci/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_SECS:-20}
scenario=ci/bench/heartbeat.toml
echo "building warden-sim (release) ..." >&2
cargo build -q --release -p warden-sim
sim=target/release/warden-sim

# The first seed runs twice and must give the same run (hash covers the counts' events).
a=$("$sim" run "$scenario" --seed 1 | tail -1); b=$("$sim" run "$scenario" --seed 1 | tail -1)
[ "$a" = "$b" ] || { echo "bench: seed 1 differs between two runs: $a / $b" >&2; exit 1; }
case "$a" in *result=pass) ;; *) echo "bench: seed 1 fails its checks: $a" >&2; exit 1 ;; esac

now() { date +%s.%N; }
# sweep NAME ARGS...: explore for the budget, print "NAME: N seeds in S s = R seeds/s"
sweep() {
  local name=$1; shift
  local t0 t1 out n
  t0=$(now)
  out=$("$sim" explore "$scenario" --seeds 100000000 --budget-secs "$secs" "$@" | tail -1) \
    || { echo "bench: $name failed: $out" >&2; exit 1; }
  t1=$(now)
  n=$(sed -E 's/^explored ([0-9]+) seeds.*/\1/' <<<"$out")
  [ "${n:-0}" -gt 0 ] || { echo "bench: $name completed no seed" >&2; exit 1; }
  awk -v n="$n" -v a="$t0" -v b="$t1" -v name="$name" 'BEGIN { s = b - a; printf "%s: %d seeds in %.2f s = %.2f seeds/s\n", name, n, s, n / s }'
}
rate() { grep -E "^$1: " <<<"$2" | sed -E 's/.*= ([0-9.]+) seeds\/s/\1/'; }

full=$(sweep warden-sim --jobs 1 --record-decisions)
echo "$full"
peers=$(BENCH_SECS=$secs ci/bench/peers/run-peers.sh) || { echo "bench: a peer failed" >&2; echo "$peers"; exit 1; }
echo "$peers"
w=$(rate warden-sim "$full")
for p in turmoil-1ms turmoil-10ms madsim; do
  r=$(rate "$p" "$peers")
  [ -n "$r" ] || { echo "bench: no line for $p" >&2; exit 1; }
  awk -v w="$w" -v r="$r" -v p="$p" 'BEGIN { printf "ratio warden-sim/%s: %.1fx\n", p, w / r }'
done

bare=$(sweep warden-sim-bare --jobs 1 --no-hash)
echo "$bare"
awk -v w="$w" -v b="$(rate warden-sim-bare "$bare")" 'BEGIN { printf "feature overhead (recording + hashing): full runs at %.2f of the bare rate\n", w / b }'
one=$(sweep explore-1-core --jobs 1); two=$(sweep explore-2-cores --jobs 2)
echo "$one"; echo "$two"
