#!/usr/bin/env bash
# The handoff under load, measured (not part of CI; about a minute with a
# warm build): HANDOFF_UPGRADES (default 20) upgrades of the demo service
# under a real load client, then as many stop-then-start restarts of the
# same service on the same port. Prints exactly two lines on stdout:
#   handoff: U upgrades, begin->commit p50 X ms p99 Y ms, requests A sent B answered, C refused, D reset
#   naive: U restarts, stop->serving p50 X ms p99 Y ms, requests A sent B answered, C refused, D reset
set -euo pipefail
cd "$(dirname "$0")/.."
export HANDOFF_UPGRADES="${HANDOFF_UPGRADES:-20}"
exec cargo bench -q -p warden --bench handoff
