//! Same-process re-runs: after a sweep, a sample of its seeds runs again in
//! the same OS process. A run that differs from its first run read state an
//! earlier run left behind (a static, a thread-local), so what `explore`
//! saw for that seed is not what `run --seed N` reproduces. Two fresh
//! processes running the same seeds in the same order cannot see this.

use super::{ExploreOptions, run_one};
use crate::check::{Failure, FailureClass};
use crate::determinism::first_divergence;
use crate::scenario::Scenario;

/// How many of a sweep's first seeds run again at its end.
pub const RERUN_SAMPLE: u64 = 4;

/// A sampled seed's first run: its hash and every hashed event.
#[derive(Debug, Clone)]
pub(crate) struct FirstRun {
    pub(crate) seed: u64,
    pub(crate) hash: u64,
    pub(crate) dump: Vec<String>,
}

/// Re-runs each sampled seed with `mutant`; the first whose re-run differs
/// from its first run, as a nondeterminism failure that names the first
/// divergent event.
pub(crate) fn rerun(
    scenario: &Scenario,
    opts: &ExploreOptions,
    mutant: Option<&'static str>,
    first: &[FirstRun],
) -> Option<(u64, Failure)> {
    for f in first {
        let again = run_one(scenario, opts, f.seed, mutant, true);
        if again.hash == f.hash {
            continue;
        }
        let (i, a, b) = first_divergence(&f.dump, &again.dump);
        let message = format!(
            "seed {} re-run in the same process gave hash {:016x}, its first run {:016x}: state outlived a run (a static, a thread-local); first divergence: event #{}\n  first run: {a}\n  re-run:    {b}",
            f.seed,
            again.hash,
            f.hash,
            i + 1
        );
        return Some((
            f.seed,
            Failure { class: FailureClass::Nondeterminism, invariant: "same-run-in-one-process".into(), message },
        ));
    }
    None
}

/// Whether a seed that diverged with the mutant replays the same in this
/// process without it (so the mutant, not the scenario, leaks).
pub(crate) fn stable_without_mutant(scenario: &Scenario, opts: &ExploreOptions, seed: u64) -> bool {
    let a = run_one(scenario, opts, seed, None, false);
    let b = run_one(scenario, opts, seed, None, false);
    a.hash == b.hash
}
