//! What a simulation test needs in scope: `use warden_sim::prelude::*;`.

pub use std::time::Duration;

pub use warden::env::{DiskEnv, Env, NetEnv, ProcessEnv};

pub use crate::check::Checks;
pub use crate::env::SimEnv;
pub use crate::faults::Faults;
pub use crate::models::{Catalog, FinalCheck, Model, ModelSpec, Param, Params};
pub use crate::run::RunReport;
pub use crate::sched::SchedulerKind;
pub use crate::testing::{SimFailure, SimTest};
pub use crate::world::facade::{Probe, World, WorldHandle};
