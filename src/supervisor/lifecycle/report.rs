//! What the controller reports: failures as they happen, counters, and the
//! stop report `wait` returns. Plain data.

use crate::env::Signal;
use crate::supervisor::error::RunError;

/// A service failure, as recorded by the controller: never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    /// The service.
    pub service: String,
    /// What went wrong.
    pub error: RunError,
    /// Whether it will be restarted.
    pub restarting: bool,
}

/// Counters of the controller's decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleStats {
    /// Restarts of any service.
    pub restarts: u64,
    /// Restart counters cleared because their service had been healthy
    /// for the reset interval before it failed again (seed 003, D2).
    pub counter_resets: u64,
}

/// What `wait` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Process exit status to use: 0, 1 when restart intensity was
    /// exceeded (or a service never became ready), 128 + signal number
    /// when a second signal forced the exit.
    pub code: i32,
    /// Services that stopped (stop function returned, run ended), in the
    /// order they stopped: the reverse of the order they started.
    pub stopped: Vec<String>,
    /// Services whose stop function or run ignored the stop deadline.
    pub abandoned: Vec<String>,
    /// Stop functions that returned an error (or panicked).
    pub failed: Vec<(String, RunError)>,
    /// Services never started (the stop came first, or an earlier service
    /// never became ready): nothing to stop.
    pub not_started: Vec<String>,
    /// The second signal that forced the exit.
    pub forced_by: Option<Signal>,
    /// Restart intensity was exceeded, or a service never became ready.
    pub fatal: bool,
}
