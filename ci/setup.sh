#!/usr/bin/env bash
# Installs what the build and the CI scripts need on a fresh Debian machine:
# the stable Rust toolchain's rustfmt and clippy, python3 (the clippy
# fixture and statics checks parse TOML and Rust with it), protoc (the
# `etcd` feature's client generates its gRPC code at build time) and etcd
# (the etcd registry's tests start real servers).
set -euo pipefail
need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  # No service is started by the install: the etcd tests start their own
  # servers on free ports, and a packaged etcd would hold 2379 for nothing.
  apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no cargo on PATH; install the stable Rust toolchain (1.95+) with rustup" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
