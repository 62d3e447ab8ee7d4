//! `cargo test` integration: run a sim test over `SIM_SEEDS` seeds
//! (default 16) or exactly `SIM_SEED`, and on failure print the seed and
//! the command that replays it.

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Env, JoinError};

use crate::check::FailureClass;
use crate::env::SimEnv;
use crate::models::World;
use crate::run::{RunOptions, RunReport, RunShape, run, run_scenario};
use crate::scenario;
use crate::sched::SchedulerKind;

/// Seeds a sim test runs: `SIM_SEED=N` alone, else `0..SIM_SEEDS`
/// (default 16).
pub fn seeds() -> Vec<u64> {
    #[allow(clippy::disallowed_methods)] // the test harness's own configuration
    let one = std::env::var("SIM_SEED").ok();
    if let Some(s) = one {
        match s.trim().parse() {
            Ok(seed) => return vec![seed],
            Err(_) => panic!("SIM_SEED={s:?} is not an unsigned integer"),
        }
    }
    #[allow(clippy::disallowed_methods)]
    let n = std::env::var("SIM_SEEDS").ok().map(|s| match s.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => panic!("SIM_SEEDS={s:?} is not an unsigned integer"),
    });
    let n = n.unwrap_or(16);
    assert!(
        n > 0,
        "SIM_SEEDS=0 runs no seed and proves nothing: set SIM_SEEDS to 1 or more, or SIM_SEED=N for one seed"
    );
    (0..n).collect()
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

fn fail_with(report: &RunReport, replay: &str) -> ! {
    let f = report.failure.as_ref().map_or_else(|| "no failure".to_owned(), ToString::to_string);
    let mut msg = format!("sim test failed at seed {}: {f}\nreplay: {replay}\n", report.seed);
    for n in &report.notes {
        msg.push_str(&format!("note: {n}\n"));
    }
    panic!("{msg}");
}

/// Runs every seed of [`seeds`] of the scenario file at `path` (relative
/// to the package being tested), with `mutant` on; panics at the first
/// failure with its seed and replay command. Returns the reports.
pub fn check_scenario(path: impl AsRef<Path>, mutant: Option<&'static str>) -> Vec<RunReport> {
    let path = path.as_ref();
    let sc = scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let mut reports = Vec::new();
    for seed in seeds() {
        let report = run_scenario(&sc, &RunOptions { seed, mutant, watchdog: true, ..RunOptions::default() });
        println!(
            "seed={} hash={:016x} result={}",
            seed,
            report.hash,
            if report.failure.is_some() { "fail" } else { "pass" }
        );
        if report.failure.is_some() {
            let m = mutant.map(|m| format!(" --mutant {m}")).unwrap_or_default();
            fail_with(
                &report,
                &format!("warden-sim run {} --seed {seed}{m}   (or SIM_SEED={seed} cargo test)", path.display()),
            );
        }
        reports.push(report);
    }
    reports
}

/// Runs `body` in a fresh simulation for every seed of [`seeds`], with a
/// random scheduler and `limit` of virtual time; panics (with the seed and
/// `SIM_SEED=N cargo test <name>`) if it panics, fails a check or does not
/// finish.
pub fn check<F, Fut>(name: &str, limit: Duration, body: F)
where
    F: Fn(SimEnv) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    check_in_world(name, limit, |_| {}, body);
}

/// Like [`check`], with `setup` run first on each fresh world (to register
/// programs, add hosts).
pub fn check_in_world<S, F, Fut>(name: &str, limit: Duration, setup: S, body: F)
where
    S: Fn(&World),
    F: Fn(SimEnv) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let shape = RunShape {
        name,
        replayer: cargo_test_replayer(name),
        duration: limit,
        liveness: Duration::ZERO,
        scheduler: SchedulerKind::Random,
        faults: crate::faults::Faults { buggify: true, ..Default::default() },
        invariants: vec!["test-body".to_owned()],
        extra_header: Vec::new(),
    };
    for seed in seeds() {
        let report = run(&shape, &RunOptions { seed, watchdog: true, ..RunOptions::default() }, &|world| {
            setup(world);
            let env = world.main_env();
            let result: Rc<RefCell<Option<Result<(), JoinError>>>> = Rc::default();
            let (slot, handle) = (result.clone(), env.spawn(name, body(env.clone())));
            drop(env.spawn("test-join", async move {
                *slot.borrow_mut() = Some(handle.await);
            }));
            Box::new(move |checks| match result.borrow_mut().take() {
                Some(Ok(())) => {}
                Some(Err(e)) => checks.fail_class(FailureClass::Safety, "test-body", e),
                None => checks.fail_class(
                    FailureClass::Liveness,
                    "test-body",
                    format!("did not finish within {limit:?} of virtual time"),
                ),
            })
        });
        if report.failure.is_some() {
            fail_with(&report, &report.replay);
        }
    }
}
