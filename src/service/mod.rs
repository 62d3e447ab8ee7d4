//! The service manager: OS processes supervised from `warden.toml`.
//!
//! Core code over `E: Env`, so `warden-sim` runs exactly what the `warden`
//! binary runs: [`Config`] (parsed and validated, with `FILE:LINE:COL`
//! errors) → [`Graph`] (dependency order) → [`Manager`] (a sans-IO state
//! machine: restart policies, backoff, intensity, ordered start and stop)
//! → [`start`] (the thin async driver over `ProcessEnv` and `NetEnv`).

mod action;
pub mod config;
mod driver;
mod graph;
mod handoff;
mod manager;
mod readiness;
mod state;
mod status;

pub use config::{
    Config, ConfigError, Listen, Readiness, Register, RegistryConfig, RestartPolicy, ServiceConfig, WardenConfig,
};
pub use driver::{Handle, RunOptions, start, start_with};
pub use graph::{Cycle, Graph};
pub use handoff::{CoordinatorProgram, state_dir as handoff_state_dir};
pub use manager::{Action, Command, CommandError, Manager, Mutants, Upgraded};
pub use state::{Effect, Illegal, SvcEvent, SvcState, Then, step};
pub use status::ServiceStatus;
