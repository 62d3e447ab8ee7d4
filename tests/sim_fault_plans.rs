//! Fault plans generated and shrunk by proptest: whatever crashes a plan
//! holds, the durable-write and journal self-tests keep their invariants.
//! A failure shrinks to a minimal plan, printed as the TOML that
//! `warden-sim run --plan FILE` replays. And a run's saved plan replays
//! that very run, in every scenario.

use std::path::Path;

use proptest::prelude::*;
use warden_sim::plan::{CrashAt, FaultPlan, HostCrash};
use warden_sim::run::{RunOptions, run_scenario};
use warden_sim::scenario;

fn plans() -> impl Strategy<Value = FaultPlan> {
    let crash = (0u64..10_000, 50u64..3_000).prop_map(|(at_ms, restart_after_ms)| HostCrash {
        at_ms,
        host: 1,
        restart_after_ms,
    });
    let point =
        (prop::sample::select(warden::env::crash::SELFTEST.iter().map(|p| p.name).collect::<Vec<_>>()), 1u64..5)
            .prop_map(|(name, hit)| CrashAt { name: name.to_owned(), hit });
    (prop::collection::vec(crash, 0..6), prop::collection::vec(point, 0..3))
        .prop_map(|(host_crashes, crash_points)| FaultPlan { host_crashes, crash_points, ..FaultPlan::default() })
}

fn holds(file: &str, seed: u64, plan: &FaultPlan) -> Result<(), TestCaseError> {
    let sc = scenario::load(Path::new(file)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let r = run_scenario(&sc, &RunOptions { seed, plan: Some(plan.clone()), ..RunOptions::default() });
    prop_assert!(r.failure.is_none(), "{file} seed {seed} failed with plan:\n{}\n{:?}", plan.to_toml(), r.failure);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn durable_write_survives_any_crash_plan(seed in 0u64..1000, plan in plans()) {
        holds("scenarios/rename-no-dirsync.toml", seed, &plan)?;
    }

    #[test]
    fn journal_survives_any_crash_plan(seed in 0u64..1000, plan in plans()) {
        holds("scenarios/torn-record-accepted.toml", seed, &plan)?;
    }
}

/// A run's saved plan, written and read back as a file would be, replays
/// that run (the same hash) in every scenario, buggify sites included: a
/// site the plan forces must not skip the draw that decided it.
#[test]
fn a_saved_plan_replays_its_run_in_every_scenario() {
    let files = scenario::files_in(Path::new("scenarios")).expect("scenarios/");
    assert!(!files.is_empty(), "no scenario files");
    for file in files {
        let sc = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        for seed in 0..6 {
            let run = run_scenario(&sc, &RunOptions { seed, ..RunOptions::default() });
            let plan = FaultPlan::parse(Path::new("saved.toml"), &run.plan.to_toml()).expect("a saved plan reads back");
            let replay = run_scenario(&sc, &RunOptions { seed, plan: Some(plan), ..RunOptions::default() });
            assert_eq!(
                run.hash,
                replay.hash,
                "{} seed {seed}: its saved plan replays as another run:\n{}",
                file.display(),
                run.plan.to_toml()
            );
        }
    }
}
