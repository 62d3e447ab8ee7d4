//! The handoff's scenarios under `cargo test`: each passes its `SIM_SEEDS`
//! seeds (or exactly `SIM_SEED`) on the real code. Mutants are caught in
//! `sim_selftests`'s sweep over every scenario's `catches`.

use warden_sim::testing::check_scenario;

#[test]
fn seal_timeout_is_clean() {
    check_scenario("scenarios/seal-timeout.toml", None);
}

#[test]
fn handoff_faults_is_clean() {
    check_scenario("scenarios/handoff-faults.toml", None);
}

#[test]
fn handoff_crash_points_is_clean() {
    check_scenario("scenarios/handoff-crash-points.toml", None);
}
