#!/usr/bin/env bash
# Installs what the build and the CI scripts need on a fresh Debian machine:
# the stable Rust toolchain's rustfmt and clippy, and python3 (the clippy
# fixture and statics checks parse TOML and Rust with it).
set -euo pipefail
need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v git >/dev/null 2>&1 || need_apt+=(git)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
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
