//! [`SimTest`]: a simulation test under `cargo test`, as a builder —
//! seeds, scheduler, faults, phases — that returns every run's report, or
//! on a failure panics with the assertion's place first and the exact line
//! that replays it.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Env, JoinError};

use super::{SeedSet, cargo_test_replayer};
use crate::check::FailureClass;
use crate::env::SimEnv;
use crate::faults::Faults;
use crate::models::FinalCheck;
use crate::run::{RunOptions, RunReport, RunShape, run};
use crate::sched::SchedulerKind;
use crate::world::facade::World;

/// A simulation test: the same workload over many seeds.
///
/// ```
/// use std::time::Duration;
/// use warden_sim::prelude::*;
///
/// let reports = SimTest::new("sleeps_end").seeds(4).run_body(|env| async move {
///     let t0 = env.now();
///     env.sleep(Duration::from_millis(5)).await;
///     assert!(env.now() - t0 >= Duration::from_millis(5));
/// });
/// assert_eq!(reports.len(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct SimTest {
    name: String,
    seeds: u64,
    only: Option<u64>,
    scheduler: SchedulerKind,
    faults: Faults,
    duration: Duration,
    liveness: Duration,
    mutant: Option<&'static str>,
}

/// A seed of a [`SimTest`] failed.
#[derive(Debug, Clone)]
pub struct SimFailure {
    /// The failing run (its seed, failure, notes, trace tail and replay
    /// line).
    pub report: Box<RunReport>,
    /// How many seeds passed before it.
    pub passed: u64,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.report;
        match &r.failure {
            Some(fail) => {
                // The assertion's place first, once.
                let (what, at) = split_location(&fail.message);
                if let Some(at) = at {
                    writeln!(f, "{at}: {what}")?;
                } else {
                    writeln!(f, "{what}")?;
                }
                writeln!(
                    f,
                    "  {} failure of {} at seed {} ({} seeds passed before it)",
                    fail.class.name(),
                    fail.invariant,
                    r.seed,
                    self.passed
                )?;
            }
            None => writeln!(f, "seed {} did not fail", r.seed)?,
        }
        for n in r.notes.iter().filter(|n| !n.starts_with("panicked: ")) {
            writeln!(f, "  note: {n}")?;
        }
        write!(f, "replay: {}", r.replay)
    }
}

/// `"message (at file:line)"` split into the message and the place.
fn split_location(message: &str) -> (&str, Option<&str>) {
    let m = message.strip_prefix("task panicked: ").unwrap_or(message);
    match m.rsplit_once(" (at ") {
        Some((what, rest)) if rest.ends_with(')') => (what, Some(&rest[..rest.len() - 1])),
        _ => (m, None),
    }
}

impl SimTest {
    /// A test called `name` (for reports; the replay line names the
    /// running test itself): [`super::DEFAULT_SEEDS`] seeds, the random
    /// scheduler, no fault (buggify included: faults are asked for with
    /// [`SimTest::faults`]), 60 s of virtual time, no liveness phase.
    pub fn new(name: &str) -> SimTest {
        SimTest {
            name: name.to_owned(),
            seeds: super::DEFAULT_SEEDS,
            only: None,
            scheduler: SchedulerKind::Random,
            faults: Faults::default(),
            duration: Duration::from_secs(60),
            liveness: Duration::ZERO,
            mutant: None,
        }
    }

    /// How many seeds this test runs (`SIM_SEEDS` overrides it, and
    /// `SIM_SEED=N` runs seed N alone). A race that shows in 15 % of seeds
    /// slips through 16 seeds 7 % of the time: give rare windows more.
    pub fn seeds(mut self, n: u64) -> SimTest {
        self.seeds = n;
        self
    }

    /// Runs exactly seed `seed`, whatever the environment says (a test
    /// that replays a failure it found).
    pub fn seed(mut self, seed: u64) -> SimTest {
        self.only = Some(seed);
        self
    }

    /// The scheduler: [`SchedulerKind::Random`] or PCT.
    pub fn scheduler(mut self, s: SchedulerKind) -> SimTest {
        self.scheduler = s;
        self
    }

    /// PCT of bug depth `depth`, k measured from each seed's run.
    pub fn pct(self, depth: u32) -> SimTest {
        self.scheduler(SchedulerKind::Pct { depth, steps: None })
    }

    /// Fault rates during the run (see [`Faults`]).
    pub fn faults(mut self, f: Faults) -> SimTest {
        self.faults = f;
        self
    }

    /// Virtual time with faults on (default 60 s).
    pub fn duration(mut self, d: Duration) -> SimTest {
        self.duration = d;
        self
    }

    /// A fault-free phase after it, before the final checks (default none).
    pub fn liveness(mut self, d: Duration) -> SimTest {
        self.liveness = d;
        self
    }

    /// Switches a mutant (a declared known bug) on.
    pub fn mutant(mut self, name: &'static str) -> SimTest {
        self.mutant = Some(name);
        self
    }

    fn shape(&self, invariants: Vec<String>) -> RunShape<'_> {
        RunShape {
            name: &self.name,
            replayer: cargo_test_replayer(&self.name),
            duration: self.duration,
            liveness: self.liveness,
            scheduler: self.scheduler,
            faults: self.faults.clone(),
            invariants,
            extra_header: Vec::new(),
        }
    }

    /// Runs `setup` (hosts, programs, the final check) on a fresh world for
    /// every seed; the reports, or the first failure. `invariants` are the
    /// names the model's checks may fail (others are only noted).
    pub fn try_run<S>(&self, invariants: &[&str], setup: S) -> Result<Vec<RunReport>, SimFailure>
    where
        S: Fn(&World) -> FinalCheck,
    {
        let shape = self.shape(invariants.iter().map(|s| (*s).to_owned()).collect());
        let mut reports = Vec::new();
        let seeds: Vec<u64> = match self.only {
            Some(s) => vec![s],
            None => SeedSet::from_env(self.seeds).iter().collect(),
        };
        for seed in seeds {
            let opts = RunOptions { seed, mutant: self.mutant, watchdog: true, ..RunOptions::default() };
            let report = run(&shape, &opts, &setup);
            if report.failure.is_some() {
                // The same run again, keeping its trace tail for the report.
                let report = run(&shape, &RunOptions { tail: true, ..opts }, &setup);
                return Err(SimFailure { report: Box::new(report), passed: reports.len() as u64 });
            }
            reports.push(report);
        }
        Ok(reports)
    }

    /// [`SimTest::try_run`], panicking on a failure with the assertion's
    /// place and the replay line.
    #[track_caller]
    pub fn run<S>(&self, invariants: &[&str], setup: S) -> Vec<RunReport>
    where
        S: Fn(&World) -> FinalCheck,
    {
        match self.try_run(invariants, setup) {
            Ok(r) => r,
            Err(f) => panic!("{f}"),
        }
    }

    /// Runs `body` as a task of the model's own process for every seed; it
    /// fails the seed if it panics or has not finished when virtual time
    /// runs out. The reports, or the first failure.
    pub fn try_run_body<F, Fut>(&self, body: F) -> Result<Vec<RunReport>, SimFailure>
    where
        F: Fn(SimEnv) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        self.try_run_in_world(|_| {}, body)
    }

    /// [`SimTest::try_run_body`], panicking on a failure.
    #[track_caller]
    pub fn run_body<F, Fut>(&self, body: F) -> Vec<RunReport>
    where
        F: Fn(SimEnv) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        match self.try_run_body(body) {
            Ok(r) => r,
            Err(f) => panic!("{f}"),
        }
    }

    /// Like [`SimTest::try_run_body`], with `setup` run first on each
    /// fresh world (hosts, programs).
    pub fn try_run_in_world<S, F, Fut>(&self, setup: S, body: F) -> Result<Vec<RunReport>, SimFailure>
    where
        S: Fn(&World),
        F: Fn(SimEnv) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let limit = self.duration + self.liveness;
        self.try_run(&["test-body"], |world| {
            setup(world);
            let env = world.main_env();
            let done: Rc<RefCell<bool>> = Rc::default();
            let (finished, handle, checks) = (done.clone(), env.spawn("test-body", body(env.clone())), world.checks());
            drop(env.spawn("test-join", async move {
                // A failing body ends the run at once.
                match handle.await {
                    Ok(()) => {}
                    Err(JoinError::Panicked(m)) => checks.fail_class(FailureClass::Safety, "test-body", m),
                    Err(e) => checks.fail_class(FailureClass::Safety, "test-body", e),
                }
                *finished.borrow_mut() = true;
            }));
            Box::new(move |checks| {
                if !*done.borrow() {
                    checks.fail_class(
                        FailureClass::Liveness,
                        "test-body",
                        format!("did not finish within {limit:?} of virtual time"),
                    );
                }
            })
        })
    }

    /// [`SimTest::try_run_in_world`], panicking on a failure.
    #[track_caller]
    pub fn run_in_world<S, F, Fut>(&self, setup: S, body: F) -> Vec<RunReport>
    where
        S: Fn(&World),
        F: Fn(SimEnv) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        match self.try_run_in_world(setup, body) {
            Ok(r) => r,
            Err(f) => panic!("{f}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_splits_into_what_and_where() {
        assert_eq!(split_location("task panicked: boom (at src/x.rs:3:5)"), ("boom", Some("src/x.rs:3:5")));
        assert_eq!(split_location("plain"), ("plain", None));
    }
}
