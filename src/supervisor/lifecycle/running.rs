//! The lifecycle machine while it starts and runs services: the start
//! order, run outcomes and restarts (D1, D2), readiness (D7) and the
//! liveness watch of services that serve in the background.

use super::machine::{Action, Lifecycle, LifecycleError, Phase};
use super::outcome::{RunOutcome, should_restart};
use super::slot::RunState;
use crate::env::{Instant, splitmix64};
use crate::supervisor::error::RunError;

impl Lifecycle {
    /// `start`: services start in registration order.
    pub(super) fn begin_starting(&mut self, now: Instant) {
        self.phase = Phase::Starting;
        self.start_next(now);
    }

    /// Starts the next service once the last one started is ready; the
    /// controller runs once all are started (whether the last one is ready
    /// is for readiness to report, not for a later service to wait on).
    fn start_next(&mut self, now: Instant) {
        while self.phase == Phase::Starting {
            if self.started == self.slots.len() {
                self.ready_by = None;
                self.phase = Phase::Running;
                tracing::info!(services = self.slots.len(), "every service started");
                return;
            }
            if let Some(last) = self.started.checked_sub(1)
                && !self.slots[last].was_ready
            {
                return;
            }
            self.ready_by = None;
            let i = self.started;
            self.started += 1;
            tracing::info!(service = self.slots[i].name(), "starting service");
            self.start_run(now, i);
            let slot = &mut self.slots[i];
            if slot.spec.has_readiness {
                slot.check_at = Some(now);
                if self.started < self.slots.len() {
                    self.ready_by = Some(now + self.config.ready_timeout);
                }
            } else {
                slot.was_ready = true;
            }
        }
    }

    /// Starts a run of `service`.
    fn start_run(&mut self, now: Instant, service: usize) {
        let run = self.next_id();
        let slot = &mut self.slots[service];
        slot.state = RunState::Running { run };
        // Healthy while running, unless a readiness check says otherwise.
        slot.healthy_since = (!slot.spec.has_readiness || slot.ready == Some(true)).then_some(now);
        self.actions.push_back(Action::StartRun { service, run });
    }

    /// The planted bug `start-not-idempotent`: every started service is
    /// started again, beside its running instance.
    pub(super) fn start_again(&mut self) {
        for (service, slot) in self.slots.iter().enumerate() {
            if let RunState::Running { run } | RunState::Serving { run, .. } = slot.state {
                self.actions.push_back(Action::StartRun { service, run });
            }
        }
    }

    pub(super) fn run_ended(
        &mut self,
        now: Instant,
        service: usize,
        run: u64,
        outcome: RunOutcome,
    ) -> Result<(), LifecycleError> {
        let (interval, bugs) = (self.config.check_interval, self.bugs);
        let slot = self.slot(service)?;
        if slot.state != (RunState::Running { run }) {
            return Err(LifecycleError::Stale(format!("{}: run {run} is not current", slot.name())));
        }
        let outcome = match outcome {
            // The planted bug: a start that returned is taken for an exit.
            RunOutcome::Clean if bugs.immediate_return_is_exit => RunOutcome::Error(RunError::new("start returned")),
            other => other,
        };
        match outcome {
            RunOutcome::Clean => {
                tracing::info!(service = slot.name(), "started (serving in the background)");
                let probe_at = slot.spec.has_liveness.then_some(now + interval);
                slot.state = RunState::Serving { run, probe_at };
            }
            RunOutcome::Cancelled => {
                tracing::info!(service = slot.name(), "run ended: cancelled");
                slot.state = RunState::Ended;
                slot.healthy_since = None;
                self.ended_before_ready(now, service);
            }
            RunOutcome::Error(error) => self.failed(now, service, error),
        }
        Ok(())
    }

    /// A run of `service` failed with `error`: restart after the backoff,
    /// or end it; past the restart intensity the controller stops.
    fn failed(&mut self, now: Instant, service: usize, error: RunError) {
        let reset_interval = self.config.restart_reset_interval;
        let slot = &mut self.slots[service];
        let restart = should_restart(&RunOutcome::Error(error.clone()), slot.spec.policy, false);
        if slot.healthy_for(reset_interval, now) && !slot.window.is_empty() {
            // Healthy long enough: count consecutive failures only (D2).
            tracing::info!(service = slot.name(), "healthy for the reset interval: restart counter reset");
            slot.window.clear();
            slot.backoff.reset();
            self.stats.counter_resets += 1;
        }
        let slot = &mut self.slots[service];
        slot.healthy_since = None;
        if !restart {
            slot.state = RunState::Ended;
            self.record_failure(service, error, false);
            self.ended_before_ready(now, service);
            return;
        }
        if let Err(limit) = slot.window.record(now) {
            tracing::error!(service = slot.name(), %limit, "restart intensity exceeded");
            slot.state = RunState::Ended;
            self.record_failure(
                service,
                RunError::new(format!("{error} (restart intensity exceeded: {limit})")),
                false,
            );
            self.fail_controller(now);
            return;
        }
        let delay = slot.backoff.next_delay(splitmix64(&mut self.rng));
        let slot = &mut self.slots[service];
        slot.state = RunState::BackingOff { until: now + delay };
        self.record_failure(service, error, true);
    }

    /// A service that can no longer become ready blocks every service
    /// after it: while starting, the controller gives up.
    fn ended_before_ready(&mut self, now: Instant, service: usize) {
        if self.phase == Phase::Starting && service + 1 == self.started && !self.slots[service].was_ready {
            let name = self.slots[service].name().to_owned();
            tracing::error!(service = name.as_str(), "ended before it became ready");
            self.fail_controller(now);
        }
    }

    /// Restart intensity exceeded, or a service never ready: exit 1.
    fn fail_controller(&mut self, now: Instant) {
        self.report.fatal = true;
        self.begin_stopping(now);
    }

    pub(super) fn readiness(&mut self, now: Instant, service: usize, ok: bool) -> Result<(), LifecycleError> {
        let interval = self.config.check_interval;
        let slot = self.slot(service)?;
        slot.ready = Some(ok);
        slot.check_at = Some(now + interval);
        let running = matches!(slot.state, RunState::Running { .. } | RunState::Serving { .. });
        slot.healthy_since = match (ok, slot.healthy_since) {
            (true, Some(since)) => Some(since),
            (true, None) if running => Some(now),
            (true, None) | (false, _) => None,
        };
        if ok && running && !slot.was_ready {
            slot.was_ready = true;
            tracing::info!(service = slot.name(), "ready");
            if service + 1 == self.started {
                self.start_next(now);
            }
        }
        Ok(())
    }

    pub(super) fn liveness(&mut self, now: Instant, service: usize, ok: bool) -> Result<(), LifecycleError> {
        let (interval, stop_timeout) = (self.config.check_interval, self.config.stop_timeout);
        let slot = self.slot(service)?;
        let RunState::Serving { run, .. } = slot.state else {
            return Err(LifecycleError::Stale(format!("{}: not serving in the background", slot.name())));
        };
        if ok {
            slot.state = RunState::Serving { run, probe_at: Some(now + interval) };
            return Ok(());
        }
        let error = RunError::new("liveness probe failed");
        if !slot.spec.has_stop {
            self.failed(now, service, error);
            return Ok(());
        }
        // Stop the background instance (bounded) before the restart.
        let stop = self.next_id();
        self.slots[service].state = RunState::Halting { stop, until: now + stop_timeout, error };
        self.actions.push_back(Action::RunStop { service, stop });
        Ok(())
    }

    /// The stop run after a failed liveness probe returned.
    pub(super) fn halt_ended(
        &mut self,
        now: Instant,
        service: usize,
        stop: u64,
        result: Result<(), RunError>,
    ) -> Result<(), LifecycleError> {
        let slot = self.slot(service)?;
        let RunState::Halting { stop: current, error, .. } = slot.state.clone() else {
            return Err(LifecycleError::Stale(format!("{}: stop {stop} is not current", slot.name())));
        };
        if current != stop {
            return Err(LifecycleError::Stale(format!("{}: stop {stop} is not current", slot.name())));
        }
        if let Err(e) = result {
            tracing::warn!(service = slot.name(), error = e.message(), "stop after a failed probe failed");
        }
        self.failed(now, service, error);
        Ok(())
    }

    /// Timers while starting or running.
    pub(super) fn running_timeout(&mut self, now: Instant) {
        if self.ready_by.is_some_and(|t| t <= now) {
            let waiting = self.started.checked_sub(1).map(|i| self.slots[i].name().to_owned());
            tracing::error!(service = waiting.as_deref().unwrap_or(""), "not ready within the ready timeout");
            self.ready_by = None;
            self.fail_controller(now);
            return;
        }
        for service in 0..self.slots.len() {
            if self.phase != Phase::Starting && self.phase != Phase::Running {
                return;
            }
            let slot = &mut self.slots[service];
            if slot.check_at.is_some_and(|t| t <= now) {
                slot.check_at = None;
                self.actions.push_back(Action::CheckReadiness { service });
            }
            let slot = &mut self.slots[service];
            match slot.state.clone() {
                RunState::BackingOff { until } if until <= now => {
                    tracing::info!(service = slot.name(), "restarting");
                    self.stats.restarts += 1;
                    self.start_run(now, service);
                }
                RunState::Serving { run, probe_at: Some(t) } if t <= now => {
                    slot.state = RunState::Serving { run, probe_at: None };
                    self.actions.push_back(Action::ProbeLiveness { service });
                }
                RunState::Halting { stop, until, error } if until <= now => {
                    tracing::warn!(service = slot.name(), "stop after a failed probe ignored its deadline");
                    self.actions.push_back(Action::AbortStop { service, stop });
                    self.failed(now, service, error);
                }
                RunState::Pending
                | RunState::Running { .. }
                | RunState::Serving { .. }
                | RunState::Halting { .. }
                | RunState::BackingOff { .. }
                | RunState::Ended
                | RunState::Stopping { .. }
                | RunState::Stopped
                | RunState::Abandoned => {}
            }
        }
    }
}
