//! One service as the lifecycle machine tracks it: where its current run
//! is, its restart counter and backoff, and its readiness. Plain data.

use std::time::Duration;

use super::outcome::RestartPolicy;
use crate::env::Instant;
use crate::supervisor::backoff::{Backoff, BackoffConfig};
use crate::supervisor::error::RunError;
use crate::supervisor::intensity::{Intensity, IntensityWindow};

/// What the machine needs to know of a service (its functions stay with
/// the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Its name, unique per controller.
    pub name: String,
    /// Whether failed runs restart.
    pub policy: RestartPolicy,
    /// It has a stop function (else stopping it is cancelling its run).
    pub has_stop: bool,
    /// It has a readiness check (else it is ready once started).
    pub has_readiness: bool,
    /// It has a liveness probe (watched while it serves in the background).
    pub has_liveness: bool,
}

/// Where a service's run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RunState {
    /// Not started yet.
    Pending,
    /// Its start function runs (run `run`).
    Running { run: u64 },
    /// Its start function returned cleanly: it serves in the background,
    /// watched by its liveness probe (next due at `probe_at`).
    Serving { run: u64, probe_at: Option<Instant> },
    /// Its liveness probe failed: its stop function (`stop`) runs before
    /// the restart, until `until` at the latest.
    Halting { stop: u64, until: Instant, error: RunError },
    /// Failed; restarts at `until`.
    BackingOff { until: Instant },
    /// Ended and not restarted (its policy, or a cancellation).
    Ended,
    /// In the stop sequence: its context is cancelled; done once its run
    /// (`run`, while it has not ended) ended and its stop function (`stop`,
    /// while it has not returned) returned; abandoned at `until`.
    Stopping { run: Option<u64>, stop: Option<u64>, until: Option<Instant> },
    /// Stopped in the stop sequence.
    Stopped,
    /// Its stop or its run ignored the stop deadline.
    Abandoned,
}

/// A service's slot.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) spec: ServiceSpec,
    pub(super) state: RunState,
    pub(super) backoff: Backoff,
    /// Restarts within the intensity period (the restart counter).
    pub(super) window: IntensityWindow,
    /// Last readiness result; `None` until the first check completed.
    pub(super) ready: Option<bool>,
    /// When the next readiness check is due; `None` while one is in flight
    /// or checks have not begun.
    pub(super) check_at: Option<Instant>,
    /// The current run has been healthy since then (ready, or running when
    /// it has no readiness check); `None` while it is not.
    pub(super) healthy_since: Option<Instant>,
    /// It became ready once (what the next service's start waits for).
    pub(super) was_ready: bool,
}

impl Slot {
    pub(super) fn new(spec: ServiceSpec, backoff: BackoffConfig, intensity: Intensity) -> Self {
        Slot {
            spec,
            state: RunState::Pending,
            backoff: Backoff::new(backoff),
            window: IntensityWindow::new(intensity),
            ready: None,
            check_at: None,
            healthy_since: None,
            was_ready: false,
        }
    }

    /// Its name.
    pub(super) fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether it has been started (and is not merely waiting its turn).
    pub(super) fn started(&self) -> bool {
        !matches!(self.state, RunState::Pending)
    }

    /// Whether it has been healthy for `interval` at `now`.
    pub(super) fn healthy_for(&self, interval: Duration, now: Instant) -> bool {
        self.healthy_since.is_some_and(|since| now.saturating_duration_since(since) >= interval)
    }

    /// The earliest timer of its run state.
    pub(super) fn run_timer(&self) -> Option<Instant> {
        match &self.state {
            RunState::Serving { probe_at, .. } => *probe_at,
            RunState::Halting { until, .. } | RunState::BackingOff { until } => Some(*until),
            RunState::Stopping { until, .. } => *until,
            RunState::Pending
            | RunState::Running { .. }
            | RunState::Ended
            | RunState::Stopped
            | RunState::Abandoned => None,
        }
    }
}
