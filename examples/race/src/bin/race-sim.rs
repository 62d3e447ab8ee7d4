//! This project's own simulator command line: `run`, `explore`,
//! `check-determinism`, `shrink` and `list` over its scenario files.
//!   cargo run --features cli --bin race-sim -- explore scenarios/lost-update.toml

fn main() -> std::process::ExitCode {
    warden_sim::cli::main_with(race_example::model::MODELS)
}
