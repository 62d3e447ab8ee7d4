#!/usr/bin/env bash
# Every test: formatting, lints (and proof that each banned API is banned),
# the core-statics check, unit and integration tests (simulator and real
# backend), docs, the outside-user example, the scenario sweep with mutants,
# and debug/release hash equality.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup.sh
step() { echo; echo "== $*"; }
step "cargo fmt --check";            cargo fmt --all -- --check
step "clippy (-D warnings)";         cargo clippy -q --workspace --all-targets --features warden/mutants -- -D warnings
step "clippy: the product alone";   cargo clippy -q -p warden --lib --bins -- -D warnings
step "clippy fixture";               ci/clippy-fixture.sh
step "core statics";                 ci/check-core-statics.sh --self-test && ci/check-core-statics.sh
step "cargo test";                   cargo test --workspace --features warden/mutants
step "handoff on real processes";    cargo test -p warden --features crash-points --test handoff_real
step "docs (-D warnings)";           RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p warden -p warden-sim
step "examples/race (outside user)"; cargo test -q --manifest-path examples/race/Cargo.toml
step "etcd registry (real etcd)";    cargo clippy -q -p warden --all-targets --features etcd -- -D warnings && for t in tests/*etcd*.rs; do cargo test --features etcd --test "$(basename "$t" .rs)"; done
step "scenario sweep";               ci/sweep.sh
step "hash: debug vs release";       ci/hash-debug-release.sh
echo; echo "all tests passed"
