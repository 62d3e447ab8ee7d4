//! warden-sim finds the lost update within the test's seeds, and the seed
//! it prints replays the very same failing run.

use std::path::Path;
use std::time::Duration;

use race_example::model::{MODELS, counter_world};
use warden_sim::explore::{ExploreOptions, explore};
use warden_sim::prelude::*;
use warden_sim::run::{RunOptions, run_scenario};
use warden_sim::scenario;

fn counter_test() -> SimTest {
    SimTest::new("lost_update").seeds(200).duration(Duration::from_secs(1))
}

#[test]
fn the_lost_update_is_found_and_its_seed_replays_it() {
    let found = counter_test()
        .try_run(&["no-lost-update"], |w| counter_world(w, 2))
        .expect_err("the race is found within the test's seeds");
    let failure = found.report.failure.clone().expect("a failure");
    assert_eq!(failure.invariant, "no-lost-update", "{found}");
    println!("{found}");
    // The printed line names the seed: `SIM_SEED=N cargo test ...`.
    let seed: u64 = found
        .report
        .replay
        .strip_prefix("SIM_SEED=")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the replay line starts with SIM_SEED=N");
    assert_eq!(seed, found.report.seed);
    let again = counter_test()
        .seed(seed)
        .try_run(&["no-lost-update"], |w| counter_world(w, 2))
        .expect_err("the printed seed fails again");
    assert_eq!(again.report.hash, found.report.hash, "the same run, bit for bit");
    assert_eq!(again.report.failure, found.report.failure);
}

#[test]
fn the_scenario_file_finds_it_too_and_a_failing_seed_runs_the_same() {
    let sc = scenario::load_in(Path::new("scenarios/lost-update.toml"), MODELS).expect("the scenario file");
    let opts = ExploreOptions::default();
    let sweep = explore(&sc, &opts, &|_| {});
    let (seed, failure) = sweep.first_failure.expect("a seed of the scenario loses an update");
    assert_eq!(failure.invariant, "no-lost-update");
    let a = run_scenario(&sc, &RunOptions { seed, ..RunOptions::default() });
    let b = run_scenario(&sc, &RunOptions { seed, ..RunOptions::default() });
    assert_eq!(a.failure.as_ref(), Some(&failure));
    assert_eq!(a.hash, b.hash, "one seed, one run");
}
