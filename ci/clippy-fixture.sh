#!/usr/bin/env bash
# Asserts that every entry of clippy.toml bans something real.
#
# Runs clippy on ci/clippy-fixture/ (a standalone crate that uses each entry
# of clippy.toml exactly once, found by clippy's usual upward search for
# clippy.toml) and checks that the number of distinct
# clippy::disallowed_{methods,types,macros} diagnostics equals the number of
# entries in clippy.toml. An entry that clippy cannot resolve (typo, moved
# item, missing feature, another major version) fires nowhere, so it would
# silently ban nothing in core; here it makes the counts differ.
#
# Usage: ci/clippy-fixture.sh   (from anywhere; CARGO_BUILD_JOBS is honoured)
# Exit: 0 iff N of N entries fire and N > 0; 1 otherwise.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Beside the main target dir, so CI caches it with it.
export CARGO_TARGET_DIR="$root/target/clippy-fixture"
# Let clippy find $root/clippy.toml by its upward search from the fixture.
unset CLIPPY_CONF_DIR

json="$(mktemp)"
err="$(mktemp)"
trap 'rm -f "$json" "$err"' EXIT

set +e
(cd ci/clippy-fixture && cargo clippy --locked --quiet --message-format=json) >"$json" 2>"$err"
cargo_rc=$?
set -e

python3 - "$root/clippy.toml" "$json" "$cargo_rc" "$err" <<'PY'
import json, re, sys, tomllib
from collections import Counter

conf_path, json_path, cargo_rc, err_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
SECTIONS = {
    "disallowed-methods": "clippy::disallowed_methods",
    "disallowed-types": "clippy::disallowed_types",
    "disallowed-macros": "clippy::disallowed_macros",
}

with open(conf_path, "rb") as f:
    conf = tomllib.load(f)

# One entry = one `path = ...` table (or a bare string, which clippy accepts).
entries = []  # (lint code, path)
for section, code in SECTIONS.items():
    for e in conf.get(section, []):
        entries.append((code, e if isinstance(e, str) else e["path"]))
n = len(entries)
dupes = [k for k, c in Counter(entries).items() if c > 1]

fired = Counter()      # (code, path) -> uses in the fixture's own source
other_errors = []
unresolved = []  # clippy's own "`x` does not refer to a reachable function"
with open(json_path) as f:
    for line in f:
        try:
            m = json.loads(line)
        except json.JSONDecodeError:
            continue
        if m.get("reason") != "compiler-message":
            continue
        msg = m["message"]
        code = (msg.get("code") or {}).get("code")
        if code in SECTIONS.values():
            # Recursive macros (tokio::select!) also report once per inner
            # expansion, with the primary span inside the macro's own crate:
            # count only diagnostics whose primary span is in the fixture.
            primary = [s for s in msg["spans"] if s["is_primary"]]
            if not (primary and primary[0]["file_name"].startswith("src/")):
                continue
            path = re.search(r"`([^`]+)`", msg["message"])
            fired[(code, path.group(1) if path else msg["message"])] += 1
        elif "does not refer to a reachable" in msg["message"]:
            unresolved.append(msg["message"])
        elif msg.get("level") in ("error", "error: internal compiler error"):
            other_errors.append(msg.get("rendered") or msg["message"])

def cargo_stderr():
    with open(err_path) as f:
        sys.stdout.write(f.read())

if other_errors:
    sys.stdout.write("clippy fixture: the fixture does not compile:\n")
    for r in other_errors:
        sys.stdout.write(r)
    sys.exit(1)
if cargo_rc != 0 and not fired:
    print(f"clippy fixture: cargo clippy failed (exit {cargo_rc}) and reported nothing:")
    cargo_stderr()
    sys.exit(1)

conf_set = set(entries)
missing = sorted(conf_set - set(fired))
unknown = sorted(set(fired) - conf_set)
twice = sorted(k for k, c in fired.items() if c > 1)
count = sum(1 for e in entries if e in fired and fired[e] == 1 and e not in dupes)

ok = n > 0 and count == n and not missing and not unknown and not twice and not dupes
print(f"clippy fixture: {count} of {n} banned APIs fire")
short = lambda code: code.split("::")[1]
for code, path in missing:
    print(f"  did not fire: {path} ({short(code)}): unresolvable path in clippy.toml,"
          " the same item as another entry (a re-export), or not used in ci/clippy-fixture/src/lib.rs")
for code, path in dupes:
    print(f"  listed more than once in clippy.toml: {path} ({short(code)})")
for code, path in twice:
    print(f"  used {fired[(code, path)]} times in the fixture (must be once): {path} ({short(code)})")
for code, path in unknown:
    print(f"  fired but not in clippy.toml: {path} ({short(code)})")
if n == 0:
    print("  clippy.toml has no entries")
for u in unresolved:
    print(f"  clippy: {u}")
sys.exit(0 if ok else 1)
PY
