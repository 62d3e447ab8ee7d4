//! The gate's scenarios under `cargo test`: each passes its `SIM_SEEDS`
//! seeds (or exactly `SIM_SEED`) on the real code. Mutants are caught in
//! `sim_selftests`'s sweep over every scenario's `catches`.

use warden_sim::testing::check_scenario;

#[test]
fn stampede_double_register_is_clean() {
    check_scenario("scenarios/stampede-double-register.toml", None);
}

#[test]
fn gate_long_outage_is_clean() {
    check_scenario("scenarios/gate-long-outage.toml", None);
}

#[test]
fn gate_timestamp_mode_is_clean() {
    check_scenario("scenarios/gate-timestamp-mode.toml", None);
}
