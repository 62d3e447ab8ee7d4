//! `cargo test` integration: a simulation test runs over `SIM_SEEDS` seeds
//! (its own default unless set; [`DEFAULT_SEEDS`] unless it says) or
//! exactly `SIM_SEED`, and on a failure prints the assertion's place and
//! the exact command that replays it:
//! `SIM_SEED=N cargo test -p PACKAGE --test TARGET NAME -- --exact`.
//!
//! [`SimTest`] is the builder (seeds, scheduler, faults, phases) that
//! returns every run's report; [`check`], [`check_in_world`] and
//! [`check_scenario`] are shorthands.

mod sim_test;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

pub use sim_test::{SimFailure, SimTest};

use crate::env::SimEnv;
use crate::run::{RunOptions, RunReport, run_scenario};
use crate::scenario;
use crate::world::facade::World;

/// Seeds a test runs when neither it nor `SIM_SEEDS` says otherwise.
pub const DEFAULT_SEEDS: u64 = 16;

/// The seeds of one test: `SIM_SEED=N` alone, else `0..SIM_SEEDS`, else
/// `0..default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSet {
    first: u64,
    count: u64,
}

impl SeedSet {
    /// The seeds the environment asks for, with `default` as the count.
    pub fn from_env(default: u64) -> SeedSet {
        #[allow(clippy::disallowed_methods)] // the test harness's own configuration
        if let Ok(s) = std::env::var("SIM_SEED") {
            match s.trim().parse() {
                Ok(seed) => return SeedSet { first: seed, count: 1 },
                Err(_) => panic!("SIM_SEED={s:?} is not an unsigned integer"),
            }
        }
        #[allow(clippy::disallowed_methods)]
        let count = match std::env::var("SIM_SEEDS") {
            Ok(s) => match s.trim().parse::<u64>() {
                Ok(n) => n,
                Err(_) => panic!("SIM_SEEDS={s:?} is not an unsigned integer"),
            },
            Err(_) => default,
        };
        assert!(
            count > 0,
            "SIM_SEEDS=0 runs no seed and proves nothing: set SIM_SEEDS to 1 or more, or SIM_SEED=N for one seed"
        );
        SeedSet { first: 0, count }
    }

    /// Every seed, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> {
        self.first..self.first.saturating_add(self.count)
    }
}

/// Seeds a sim test runs: `SIM_SEED=N` alone, else `0..SIM_SEEDS`
/// (default [`DEFAULT_SEEDS`]).
pub fn seeds() -> Vec<u64> {
    SeedSet::from_env(DEFAULT_SEEDS).iter().collect()
}

/// How `cargo test` reruns the current test: its package, its test
/// target (the test binary's name without cargo's hash) and its full name
/// (libtest names the test's thread after it).
fn cargo_test_replayer(fallback: &str) -> crate::replay::Replayer {
    #[allow(clippy::disallowed_methods)] // the test harness's own process
    let package = std::env::var("CARGO_PKG_NAME").ok();
    #[allow(clippy::disallowed_methods)]
    let target = std::env::current_exe().ok().and_then(|p| {
        let stem = p.file_stem()?.to_string_lossy().into_owned();
        let (name, hash) = stem.rsplit_once('-')?;
        hash.chars().all(|c| c.is_ascii_hexdigit()).then(|| name.to_owned())
    });
    let test = std::thread::current().name().filter(|n| *n != "main").unwrap_or(fallback).to_owned();
    crate::replay::Replayer::CargoTest { package, target, test }
}

/// Runs every seed of [`seeds`] of the scenario file at `path` (relative
/// to the package being tested), with `mutant` on; panics at the first
/// failure with its seed and replay commands. Returns the reports.
#[track_caller]
pub fn check_scenario(path: impl AsRef<Path>, mutant: Option<&'static str>) -> Vec<RunReport> {
    let path = path.as_ref();
    let sc = scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let mut reports = Vec::new();
    for seed in seeds() {
        let opts = RunOptions { seed, mutant, watchdog: true, ..RunOptions::default() };
        let mut report = run_scenario(&sc, &opts);
        println!(
            "seed={} hash={:016x} result={}",
            seed,
            report.hash,
            if report.failure.is_some() { "fail" } else { "pass" }
        );
        if report.failure.is_some() {
            // Only a failing seed pays for its trace text: the same run again.
            report = run_scenario(&sc, &RunOptions { tail: true, ..opts });
            let test = crate::replay::ReplayLine {
                replayer: &cargo_test_replayer("check_scenario"),
                seed,
                mutant: None,
                scheduler: None,
                plan_file: None,
            };
            let failure = SimFailure { report: Box::new(report), passed: reports.len() as u64 };
            panic!("{failure}\n   or: {test}");
        }
        reports.push(report);
    }
    reports
}

/// Runs `body` in a fresh simulation for every seed of [`seeds`], with a
/// random scheduler and `limit` of virtual time; panics (with the
/// assertion's place and the replay line) if it panics, fails a check or
/// does not finish. See [`SimTest`] for more control.
#[track_caller]
pub fn check<F, Fut>(name: &str, limit: Duration, body: F)
where
    F: Fn(SimEnv) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    check_in_world(name, limit, |_| {}, body);
}

/// Like [`check`], with `setup` run first on each fresh world (to register
/// programs, add hosts).
#[track_caller]
pub fn check_in_world<S, F, Fut>(name: &str, limit: Duration, setup: S, body: F)
where
    S: Fn(&World),
    F: Fn(SimEnv) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    SimTest::new(name).duration(limit).run_in_world(setup, body);
}
