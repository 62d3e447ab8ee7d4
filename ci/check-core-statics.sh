#!/usr/bin/env bash
# DESIGN.md "Rules for core code", rule 2: no shared memory between processes.
#
# In the simulator every simulated process shares one address space, so a
# static with interior mutability or a thread-local would survive a process
# restart and leak state between processes and runs. This check scans core
# code (every .rs file under src/ except src/env/real/ and src/main.rs) for:
#   - thread_local! (also std::thread_local!, #[thread_local]), lazy_static!
#   - static mut
#   - static items whose type names an interior-mutable type: *Cell
#     (Cell, RefCell, OnceCell, UnsafeCell, SyncUnsafeCell, LazyCell),
#     Mutex, RwLock, Atomic*, OnceLock, LazyLock, Lazy, Condvar, Barrier
# Comments and string literals are ignored; a static whose type spans
# several lines is read up to its `=` or `;`.
#
# Usage: ci/check-core-statics.sh [--root DIR]   (DIR defaults to the repo root)
#        ci/check-core-statics.sh --self-test
# Exit: 0 clean, 1 offenders found (each printed as file:line: reason),
#       2 usage error or src/ missing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

scan() {
    local dir="$1"
    if [[ ! -d "$dir/src" ]]; then
        echo "core statics: no src/ under $dir" >&2
        return 2
    fi
    python3 - "$dir" <<'PY'
import os, re, sys

root = sys.argv[1]
src = os.path.join(root, "src")
EXEMPT_DIRS = [os.path.join("src", "env", "real")]   # the real backend
EXEMPT_FILES = [os.path.join("src", "main.rs")]

def core_files():
    for d, subdirs, files in os.walk(src):
        subdirs.sort()
        rel_d = os.path.relpath(d, root)
        if any(rel_d == e or rel_d.startswith(e + os.sep) for e in EXEMPT_DIRS):
            subdirs[:] = []
            continue
        for f in sorted(files):
            rel = os.path.join(rel_d, f)
            if f.endswith(".rs") and rel not in EXEMPT_FILES:
                yield rel

# Comments, string literals and char literals, blanked out (newlines kept,
# so offsets still give line numbers).
LEXEMES = re.compile(r"""
      //[^\n]*
    | /\*.*?\*/
    | r(?P<h>\#*)".*?"(?P=h)
    | "(?:\\.|[^"\\])*"
    | '(?:\\.|[^\\'\n])'
""", re.S | re.X)

def blank(m):
    return re.sub(r"[^\n]", " ", m.group(0))

INTERIOR = re.compile(
    r"\b(?:\w*Cell|Mutex|RwLock|Atomic\w*|OnceLock|LazyLock|Lazy|Condvar|Barrier)\b")
MARKERS = [
    (re.compile(r"\bthread_local\s*!"), "thread_local!"),
    (re.compile(r"#\s*\[\s*thread_local\s*\]"), "#[thread_local]"),
    (re.compile(r"\blazy_static\s*!"), "lazy_static!"),
    (re.compile(r"(?<!')\bstatic\s+mut\b"), "static mut"),
]
# `static NAME: TYPE` up to `=` or `;`; not the lifetime `'static`.
STATIC_ITEM = re.compile(r"(?<!')\bstatic\s+(?:ref\s+)?([A-Za-z_]\w*)\s*:\s*([^=;]*)")

offenders = []
files = list(core_files())
for rel in files:
    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
        text = LEXEMES.sub(blank, f.read())
    line_of = lambda pos: text.count("\n", 0, pos) + 1
    found = {}  # line -> reason (first wins)
    for rx, reason in MARKERS:
        for m in rx.finditer(text):
            found.setdefault(line_of(m.start()), reason)
    for m in STATIC_ITEM.finditer(text):
        ty = m.group(2)
        im = INTERIOR.search(ty)
        if im:
            found.setdefault(line_of(m.start()),
                             f"static {m.group(1)} has interior mutability ({im.group(0)})")
    for line in sorted(found):
        offenders.append(f"{rel}:{line}: {found[line]}")

for o in offenders:
    print(o)
if offenders:
    print(f"core statics: {len(offenders)} offender(s): no interior-mutable static or "
          "thread-local in core (DESIGN.md rule 2); keep state in values owned by the "
          "process's tasks")
    sys.exit(1)
print(f"core statics: clean ({len(files)} files checked)")
PY
}

self_test() {
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/src/env/real" "$tmp/src/supervisor" "$tmp/src/gate"

    # One offender per kind; every line that must be flagged carries the
    # marker `expect-flag` (comments are ignored by the scan itself).
    cat >"$tmp/src/supervisor/offenders.rs" <<'RS'
use std::cell::{Cell, RefCell, OnceCell, UnsafeCell};
use std::sync::{Mutex, RwLock, OnceLock, LazyLock, Condvar};
use std::sync::atomic::{AtomicU64, AtomicBool};

static mut COUNTER: u64 = 0; // expect-flag
pub static HITS: AtomicU64 = AtomicU64::new(0); // expect-flag
pub(crate) static FLAG: AtomicBool = AtomicBool::new(false); // expect-flag
static LOCK: Mutex<Vec<u8>> = Mutex::new(Vec::new()); // expect-flag
static TABLE: RwLock<u8> = RwLock::new(0); // expect-flag
static ONCE: OnceLock<String> = OnceLock::new(); // expect-flag
static LAZY: LazyLock<String> = LazyLock::new(String::new); // expect-flag
static OC: once_cell::sync::Lazy<u8> = once_cell::sync::Lazy::new(|| 0); // expect-flag
static OCELL: once_cell::sync::OnceCell<u8> = once_cell::sync::OnceCell::new(); // expect-flag
static WAKE: Condvar = Condvar::new(); // expect-flag
static ARR: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)]; // expect-flag
static SPLIT: // expect-flag
    std::sync::Mutex<
        u8,
    > = std::sync::Mutex::new(0);
struct Shared(UnsafeCell<u8>);
unsafe impl Sync for Shared {}
static RAW: Shared = Shared(UnsafeCell::new(0));
static UC: SyncWrapper<UnsafeCell<u8>> = SyncWrapper::new(); // expect-flag
thread_local! { static TL: Cell<u8> = Cell::new(0); } // expect-flag
std::thread_local! { // expect-flag
    static TL2: u8 = 0;
}
lazy_static::lazy_static! { // expect-flag
    static ref GLOBAL: u8 = 0;
}
fn in_fn() -> u8 {
    static INNER: RefCell<u8> = RefCell::new(0); // expect-flag
    0
}
RS
    # `static RAW: Shared` hides its UnsafeCell behind a newtype: a textual
    # check cannot see it (documented limit; review catches it).

    cat >"$tmp/src/gate/clean.rs" <<'RS'
//! static X: Mutex<u8> in a doc comment is fine; so is thread_local! here.
use std::cell::Cell;
use std::sync::Mutex;

static GREETING: &str = "static mut in a string: thread_local!";
pub static LIMITS: [u32; 3] = [1, 2, 3];
const ZERO: Cell<u8> = Cell::new(0); // a const is copied at each use, not shared
/* static BLOCK: Mutex<u8> = Mutex::new(0); */
fn lifetimes<'a>(s: &'static str, m: &'static Mutex<u8>) -> &'static str { let _ = m; s }
fn local() { let c = Cell::new(1); c.set(2); let q = '"'; let _ = q; }
fn raw() -> &'static str { r#"static mut X: u8 = 0; "quoted" thread_local!"# }
struct S<T: 'static>(T);
RS
    # Exempt: the real backend and main.
    cat >"$tmp/src/env/real/signals.rs" <<'RS'
// The OS delivers signals to the process: the real backend needs a static.
static PENDING: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
RS
    cat >"$tmp/src/main.rs" <<'RS'
static START: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
fn main() {}
RS
    # Not exempt: a file merely named like the exempt ones.
    mkdir -p "$tmp/src/env/realistic"
    cat >"$tmp/src/env/realistic/main.rs" <<'RS'
static NOT_EXEMPT: std::cell::Cell<u8> = std::cell::Cell::new(0); // expect-flag
RS

    local expected actual out rc=0
    expected="$(cd "$tmp" && grep -rn 'expect-flag' src --include='*.rs' \
        | grep -v '^src/env/real/' | grep -v '^src/main.rs:' \
        | cut -d: -f1,2 | sort)"
    set +e
    out="$(scan "$tmp")"
    rc=$?
    set -e
    actual="$(printf '%s\n' "$out" | grep -E '^src/[^:]+:[0-9]+:' | cut -d: -f1,2 | sort)"

    local ok=1
    if [[ $rc -ne 1 ]]; then
        echo "self-test: expected exit 1 on offenders, got $rc"; ok=0
    fi
    if [[ "$expected" != "$actual" ]]; then
        echo "self-test: flagged lines differ from the expected ones"
        diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual") \
            | sed -e 's/^< /  missed:     /' -e 's/^> /  false flag: /' | grep -E 'missed|false' || true
        ok=0
    fi

    # A tree with only the clean and the exempt files passes.
    rm "$tmp/src/supervisor/offenders.rs" "$tmp/src/env/realistic/main.rs"
    set +e
    out="$(scan "$tmp")"
    rc=$?
    set -e
    if [[ $rc -ne 0 || "$out" != "core statics: clean (1 files checked)" ]]; then
        echo "self-test: clean tree not reported clean (exit $rc): $out"; ok=0
    fi

    if [[ $ok -eq 1 ]]; then
        echo "core statics self-test: ok ($(printf '%s\n' "$expected" | wc -l) offenders flagged, clean and exempt files passed)"
        return 0
    fi
    return 1
}

case "${1:-}" in
    --self-test)
        [[ $# -eq 1 ]] || { echo "usage: $0 [--root DIR | --self-test]" >&2; exit 2; }
        self_test
        ;;
    --root)
        [[ $# -eq 2 ]] || { echo "usage: $0 [--root DIR | --self-test]" >&2; exit 2; }
        [[ -d "$2" ]] || { echo "core statics: no such directory: $2" >&2; exit 2; }
        scan "$(cd "$2" && pwd)"
        ;;
    "")
        scan "$root"
        ;;
    *)
        echo "usage: $0 [--root DIR | --self-test]" >&2
        exit 2
        ;;
esac
