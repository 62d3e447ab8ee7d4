//! The service lifecycle controller (seed 003, decisions D1–D7): explicit
//! run outcomes, a restart policy with a counter that resets after a
//! healthy interval, idempotent start, no busy loop and no task left after
//! stop, missing functions as no-ops, recovered probes, signal handling
//! installed after options and restored at the end, a second signal that
//! forces the exit, reverse-order bounded stop, readiness that fails
//! closed.

mod controller;
mod outcome;
mod readiness;
mod service;
mod service_loop;
mod signals;
mod stop;

pub use controller::{Controller, ControllerOptions, LifecycleError, Phase, ServiceFailure};
pub use outcome::{RestartPolicy, RunOutcome, classify, should_restart};
pub use service::{Probe, ReadinessCheck, Service, StartFn, StopFn, ValidError};
pub use signals::SignalMode;
pub use stop::StopReport;
