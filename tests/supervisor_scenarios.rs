//! The supervisor's scenarios under `cargo test`: each passes its
//! `SIM_SEEDS` seeds (or exactly `SIM_SEED`) on the real code. Mutants are
//! caught in `sim_selftests`'s sweep over every scenario's `catches`.

use warden_sim::testing::check_scenario;

#[test]
fn gc_between_done_and_exit_is_clean() {
    check_scenario("scenarios/gc-between-done-and-exit.toml", None);
}

#[test]
fn supervisor_recover_is_clean() {
    check_scenario("scenarios/supervisor-recover.toml", None);
}

#[test]
fn supervisor_lifecycle_is_clean() {
    check_scenario("scenarios/supervisor-lifecycle.toml", None);
}

#[test]
fn supervisor_restart_intensity_is_clean() {
    check_scenario("scenarios/supervisor-restart-intensity.toml", None);
}
