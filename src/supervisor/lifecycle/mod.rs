//! The service lifecycle controller (seed 003, decisions D1–D7): explicit
//! run outcomes, a restart policy with a counter that resets after a
//! healthy interval, idempotent start, services started in order (each
//! once the one before it is ready), no busy loop and no task left after
//! stop, missing functions as no-ops, recovered probes, signal handling
//! installed after options and restored at the end, a second signal that
//! forces the exit, a stop that cancels each service's context in reverse
//! start order under a deadline, readiness that fails closed.
//!
//! [`Lifecycle`] is the sans-IO state machine that decides all of it;
//! [`Controller`] is the thin async driver that runs it through `Env`.

mod controller;
mod machine;
mod outcome;
mod probe;
mod report;
mod running;
mod service;
mod signals;
mod slot;
mod stopping;

pub use controller::{Controller, ControllerOptions};
pub use machine::{Action, Input, Lifecycle, LifecycleBugs, LifecycleConfig, LifecycleError, Phase};
pub use outcome::{RestartPolicy, RunOutcome, classify, should_restart};
pub use report::{LifecycleStats, ServiceFailure, StopReport};
pub use service::{Probe, ReadinessCheck, Service, StartFn, StopFn, ValidError};
pub use signals::SignalMode;
pub use slot::ServiceSpec;
