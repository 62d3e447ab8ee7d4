//! The executor's self-tests under `cargo test`: every scenario passes its
//! `SIM_SEEDS` seeds (or exactly `SIM_SEED`), and every mutant a scenario
//! lists in `catches` is caught within the scenario's seeds.

use std::path::Path;

use warden_sim::explore::{ExploreOptions, explore};
use warden_sim::scenario;
use warden_sim::testing::check_scenario;

fn scenario_files() -> Vec<std::path::PathBuf> {
    scenario::files_in(Path::new("scenarios")).expect("scenarios/ is readable")
}

#[test]
fn selftest_lost_update_is_clean() {
    check_scenario("scenarios/selftest-lost-update.toml", None);
}

#[test]
fn selftest_pct_depth3_is_clean() {
    check_scenario("scenarios/selftest-pct-depth3.toml", None);
}

#[test]
fn selftest_busy_loop_is_clean() {
    check_scenario("scenarios/selftest-busy-loop.toml", None);
}

#[test]
fn selftest_nondeterministic_is_clean() {
    check_scenario("scenarios/selftest-nondeterministic.toml", None);
}

#[test]
fn every_scenario_catches_a_mutant_and_mutants_are_caught() {
    assert!(warden::env::mutants::enabled(), "run the tests with --features mutants (the README's command does)");
    for file in scenario_files() {
        let sc = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!sc.catches.is_empty(), "{}: every scenario catches at least one mutant", file.display());
        // A nondeterminism catch is seen by explore's same-process re-runs
        // (across OS processes: see sim/tests/cli.rs).
        for (mutant, _) in &sc.catches {
            let m = warden::env::mutants::find(mutant).expect("validated").name;
            let opts = ExploreOptions { mutant: Some(m), ..ExploreOptions::default() };
            let sweep = explore(&sc, &opts, &|_| {});
            let seed =
                sweep.caught_by.unwrap_or_else(|| panic!("{}: mutant {m} not caught in {} seeds", sc.name, sc.seeds));
            println!("{}: mutant {m} caught by seed {seed} after {} seeds", sc.name, sweep.ran);
        }
    }
}
