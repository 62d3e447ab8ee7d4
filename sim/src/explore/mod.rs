//! The explorer: many seeds of one scenario, on as many threads as asked,
//! with coverage judged over the sweep and mutants confirmed by re-running
//! the catching seed without the mutant.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

mod rerun;

pub use rerun::RERUN_SAMPLE;

use crate::check::{Failure, FailureClass};
use crate::run::{RunOptions, RunReport, run_scenario};
use crate::scenario::{Catch, Scenario};
use crate::sched::SchedulerKind;

/// A sweep judges coverage only when it ran at least this many seeds.
pub const COVERAGE_MIN_SEEDS: u64 = 200;

/// How to sweep.
#[derive(Debug, Clone)]
pub struct ExploreOptions {
    /// Seeds to run (before sharding); `None` = the scenario's `seeds`.
    pub seeds: Option<u64>,
    /// The first seed.
    pub start_seed: u64,
    /// The mutant to catch.
    pub mutant: Option<&'static str>,
    /// Overrides the scenario's scheduler.
    pub scheduler: Option<SchedulerKind>,
    /// This job's share: (k, n) with 1 <= k <= n.
    pub shard: Option<(u64, u64)>,
    /// Worker threads.
    pub jobs: usize,
    /// Registers runs with the watchdog.
    pub watchdog: bool,
    /// Records every decision of every run (kept in memory, dropped).
    pub record: bool,
    /// Switches the run hash off.
    pub no_hash: bool,
    /// Starts no new seed once this much wall time has passed.
    pub budget: Option<std::time::Duration>,
}

impl Default for ExploreOptions {
    /// The scenario's own seeds from seed 0, its scheduler, one thread,
    /// the watchdog on, hashes on, nothing recorded, no budget.
    fn default() -> Self {
        ExploreOptions {
            seeds: None,
            start_seed: 0,
            mutant: None,
            scheduler: None,
            shard: None,
            jobs: 1,
            watchdog: true,
            record: false,
            no_hash: false,
            budget: None,
        }
    }
}

/// What a sweep of one scenario found.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// Seeds run.
    pub ran: u64,
    /// Seeds that failed (with a mutant: that failed the mapped way).
    pub failed: u64,
    /// The lowest failing seed and its failure.
    pub first_failure: Option<(u64, Failure)>,
    /// Coverage: window -> (reached, opportunities).
    pub coverage: crate::check::Coverage,
    /// Coverage windows under their minimum: (name, share, minimum).
    pub coverage_short: Vec<(String, f64, f64)>,
    /// With a mutant: the seed that caught it (confirmed clean without).
    pub caught_by: Option<u64>,
    /// With a mutant: seeds that failed the mapped way but also failed
    /// without the mutant (not counted as catches).
    pub unconfirmed: Vec<u64>,
}

/// The seeds of a sweep, in order, for this shard.
pub fn seed_list(start: u64, count: u64, shard: Option<(u64, u64)>) -> SeedRange {
    let (k, n) = shard.unwrap_or((1, 1));
    // Seeds start + (k-1), start + (k-1) + n, ... below start + count.
    let len = count.saturating_sub(k - 1).div_ceil(n);
    SeedRange { first: start + (k - 1), step: n, len }
}

/// A job's seeds, computed rather than stored (a budgeted sweep asks for
/// billions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    first: u64,
    step: u64,
    len: u64,
}

impl SeedRange {
    /// How many seeds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th seed.
    pub fn get(&self, i: u64) -> Option<u64> {
        (i < self.len).then(|| self.first + i * self.step)
    }

    /// Every seed, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).map(|i| self.first + i * self.step)
    }
}

/// Whether `failure` is the one `catch` expects.
pub fn matches_catch(failure: &Failure, catch: &Catch) -> bool {
    match catch {
        Catch::Invariant(inv) => failure.invariant == *inv,
        Catch::Class(class) => failure.class == *class,
    }
}

/// Sweeps `scenario`; `on_seed` is called after every seed with whether
/// it counted as a failure (progress).
pub fn explore(scenario: &Scenario, opts: &ExploreOptions, on_seed: &(dyn Fn(bool) + Sync)) -> Sweep {
    let seeds = seed_list(opts.start_seed, opts.seeds.unwrap_or(scenario.seeds), opts.shard);
    let catch = opts.mutant.and_then(|m| scenario.catch_of(m)).cloned();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let sweep = Mutex::new(Sweep::default());
    let sample = Mutex::new(Vec::new());
    #[allow(clippy::disallowed_methods)] // a wall-clock budget for benchmarks, outside any run
    let started = std::time::Instant::now();
    let worker = || {
        loop {
            #[allow(clippy::disallowed_methods)] // the benchmark's wall budget, outside any run
            let over = opts.budget.is_some_and(|b| started.elapsed() >= b);
            if stop.load(Ordering::Relaxed) || over {
                return;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(seed) = seeds.get(i) else { return };
            let sampled = i < RERUN_SAMPLE && !opts.no_hash;
            let report = run_one(scenario, opts, seed, opts.mutant, sampled);
            if sampled && report.failure.is_none() {
                let first = rerun::FirstRun { seed, hash: report.hash, dump: report.dump.clone() };
                sample.lock().unwrap_or_else(|e| e.into_inner()).push(first);
            }
            let mut counted = report.failure.clone();
            let mut confirmed = None;
            if let (Some(f), Some(c)) = (&report.failure, &catch) {
                if matches_catch(f, c) {
                    // Caught only if the same seed passes without the mutant.
                    let clean = run_one(scenario, opts, seed, None, false);
                    confirmed = Some(clean.failure.is_none());
                } else {
                    counted = None;
                }
            }
            let mut s = sweep.lock().unwrap_or_else(|e| e.into_inner());
            s.ran += 1;
            for (name, (hit, opp)) in &report.coverage {
                let e = s.coverage.entry(name.clone()).or_default();
                e.0 += hit;
                e.1 += opp;
            }
            let seed_failed = counted.is_some();
            if let Some(f) = counted {
                s.failed += 1;
                if s.first_failure.as_ref().is_none_or(|(first, _)| seed < *first) {
                    s.first_failure = Some((seed, f));
                }
                match confirmed {
                    Some(true) => {
                        s.caught_by = Some(s.caught_by.map_or(seed, |c| c.min(seed)));
                        stop.store(true, Ordering::Relaxed);
                    }
                    Some(false) => s.unconfirmed.push(seed),
                    None => {}
                }
            }
            drop(s);
            on_seed(seed_failed);
        }
    };
    #[allow(clippy::disallowed_methods)]
    // explorer workers: each runs whole, independent simulations
    std::thread::scope(|scope| {
        for _ in 1..opts.jobs.max(1) {
            scope.spawn(worker);
        }
        worker();
    });
    let mut s = sweep.into_inner().unwrap_or_else(|e| e.into_inner());
    if s.caught_by.is_none() {
        // Same-process re-runs, after every other seed of the sweep ran.
        let mut first = sample.into_inner().unwrap_or_else(|e| e.into_inner());
        first.sort_by_key(|f| f.seed);
        let diverged = rerun::rerun(scenario, opts, opts.mutant, &first);
        if let Some((seed, f)) = diverged {
            let counts = catch.as_ref().is_none_or(|c| matches_catch(&f, c));
            if counts {
                s.failed += 1;
                if s.first_failure.as_ref().is_none_or(|(first, _)| seed < *first) {
                    s.first_failure = Some((seed, f));
                }
                if catch.is_some() {
                    if rerun::stable_without_mutant(scenario, opts, seed) {
                        s.caught_by = Some(seed);
                    } else {
                        s.unconfirmed.push(seed);
                    }
                }
            }
        }
    }
    if s.ran >= COVERAGE_MIN_SEEDS && opts.mutant.is_none() {
        for (name, min) in &scenario.coverage {
            let (hit, opp) = s.coverage.get(name.as_str()).copied().unwrap_or((0, 0));
            let share = if opp == 0 { 0.0 } else { hit as f64 / opp as f64 };
            if share < *min {
                s.coverage_short.push((name.clone(), share, *min));
            }
        }
    }
    s
}

fn run_one(
    scenario: &Scenario,
    opts: &ExploreOptions,
    seed: u64,
    mutant: Option<&'static str>,
    dump: bool,
) -> RunReport {
    run_scenario(
        scenario,
        &RunOptions {
            seed,
            mutant,
            dump,
            scheduler: opts.scheduler,
            watchdog: opts.watchdog,
            record: opts.record,
            no_hash: opts.no_hash,
            ..RunOptions::default()
        },
    )
}

/// `NAME=X` for each coverage window, shares as plain decimals.
pub fn coverage_words(prefix: &str, coverage: &crate::check::Coverage) -> Vec<String> {
    coverage
        .iter()
        .map(|(name, (hit, opp))| {
            let share = if *opp == 0 { 0.0 } else { *hit as f64 / *opp as f64 };
            format!("{prefix}{name}={share:.4}")
        })
        .collect()
}

/// Whether a mutant is caught through the determinism check rather than
/// by a failing run.
pub fn needs_determinism_check(catch: Option<&Catch>) -> bool {
    matches!(catch, Some(Catch::Class(FailureClass::Nondeterminism)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_seed_range_exactly() {
        let all: Vec<u64> = seed_list(5, 103, None).iter().collect();
        let mut union: Vec<u64> =
            (1..=4).flat_map(|k| seed_list(5, 103, Some((k, 4))).iter().collect::<Vec<_>>()).collect();
        union.sort_unstable();
        assert_eq!(union, all);
    }
}
