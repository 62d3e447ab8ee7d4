//! The lifecycle machine's stop sequence (D6): services stop one at a
//! time in reverse start order. Each service's context is cancelled only
//! after every service started after it stopped or was abandoned; its stop
//! function runs at the same time, and both are bounded by the stop
//! timeout. A second signal cuts the sequence short.

use super::machine::{Action, Lifecycle, LifecycleError, Phase};
use super::outcome::RunOutcome;
use super::slot::RunState;
use crate::env::{Instant, Signal};
use crate::supervisor::error::RunError;

impl Lifecycle {
    /// Begins the stop sequence from the last service started.
    pub(super) fn begin_stopping(&mut self, now: Instant) {
        self.phase = Phase::Stopping;
        self.ready_by = None;
        self.stop_cursor = self.started;
        self.advance(now);
    }

    /// Moves to the next service to stop once the current one is done.
    fn advance(&mut self, now: Instant) {
        while self.phase == Phase::Stopping {
            if self.stop_cursor < self.started
                && matches!(self.slots[self.stop_cursor].state, RunState::Stopping { .. })
            {
                return;
            }
            if self.stop_cursor == 0 {
                self.finish();
                return;
            }
            self.stop_cursor -= 1;
            self.begin_stop(now, self.stop_cursor);
        }
    }

    /// Cancels `service`'s context and runs its stop function.
    fn begin_stop(&mut self, now: Instant, service: usize) {
        let until = (!self.bugs.stop_waits_forever).then_some(now + self.config.stop_timeout);
        let has_stop = self.slots[service].spec.has_stop;
        let (run, stop) = match self.slots[service].state.clone() {
            RunState::Running { run } => (Some(run), None),
            RunState::Halting { stop, .. } => (None, Some(stop)),
            RunState::Serving { .. } | RunState::BackingOff { .. } | RunState::Ended => (None, None),
            RunState::Pending | RunState::Stopping { .. } | RunState::Stopped | RunState::Abandoned => return,
        };
        tracing::info!(service = self.slots[service].name(), "stopping service");
        self.actions.push_back(Action::CancelRun { service });
        let stop = match stop {
            Some(running) => Some(running),
            None if has_stop => {
                let id = self.next_id();
                self.actions.push_back(Action::RunStop { service, stop: id });
                Some(id)
            }
            None => None,
        };
        self.slots[service].state = RunState::Stopping { run, stop, until };
        self.complete_if_done(service);
    }

    /// A service whose run ended and whose stop returned has stopped.
    fn complete_if_done(&mut self, service: usize) {
        let slot = &mut self.slots[service];
        if let RunState::Stopping { run: None, stop: None, .. } = slot.state {
            slot.state = RunState::Stopped;
            self.report.stopped.push(slot.spec.name.clone());
        }
    }

    pub(super) fn stopping_run_ended(
        &mut self,
        now: Instant,
        service: usize,
        run: u64,
        outcome: RunOutcome,
    ) -> Result<(), LifecycleError> {
        let slot = self.slot(service)?;
        match slot.state.clone() {
            RunState::Stopping { run: Some(r), stop, until } if r == run => {
                slot.state = RunState::Stopping { run: None, stop, until };
                self.complete_if_done(service);
                self.advance(now);
            }
            RunState::Running { run: r } if r == run => {
                // Its turn has not come: it ended on its own; no restart.
                slot.state = RunState::Ended;
                if let RunOutcome::Error(error) = outcome {
                    self.record_failure(service, error, false);
                }
            }
            _ => return Err(LifecycleError::Stale(format!("{}: run {run} is not current", slot.name()))),
        }
        Ok(())
    }

    pub(super) fn stopping_stop_ended(
        &mut self,
        now: Instant,
        service: usize,
        stop: u64,
        result: Result<(), RunError>,
    ) -> Result<(), LifecycleError> {
        let slot = self.slot(service)?;
        match slot.state.clone() {
            RunState::Stopping { run, stop: Some(s), until } if s == stop => {
                slot.state = RunState::Stopping { run, stop: None, until };
                if let Err(e) = result {
                    let name = slot.spec.name.clone();
                    self.report.failed.push((name, e));
                }
                self.complete_if_done(service);
                self.advance(now);
            }
            RunState::Halting { stop: s, error, .. } if s == stop => {
                // Its turn has not come: the failed probe ends it.
                slot.state = RunState::Ended;
                self.record_failure(service, error, false);
            }
            _ => return Err(LifecycleError::Stale(format!("{}: stop {stop} is not current", slot.name()))),
        }
        Ok(())
    }

    /// The current service's stop deadline.
    pub(super) fn stopping_timeout(&mut self, now: Instant) {
        let service = self.stop_cursor;
        let Some(slot) = self.slots.get_mut(service) else { return };
        let RunState::Stopping { run, stop, until: Some(until) } = slot.state else { return };
        if until > now {
            return;
        }
        tracing::warn!(service = slot.name(), "stop ignored its deadline: abandoned");
        slot.state = RunState::Abandoned;
        self.report.abandoned.push(slot.spec.name.clone());
        if let Some(stop) = stop {
            self.actions.push_back(Action::AbortStop { service, stop });
        }
        if run.is_some() {
            self.actions.push_back(Action::AbortRun { service });
        }
        self.advance(now);
    }

    /// A second signal: exit now with 128 + its number.
    pub(super) fn force(&mut self, s: Signal) {
        tracing::warn!(signal = %s, code = 128 + s.number(), "second signal: forcing exit");
        self.report.forced_by = Some(s);
        self.finish();
    }

    /// Everything stopped (or was abandoned, or the exit was forced).
    pub(super) fn finish(&mut self) {
        self.phase = Phase::Stopped;
        self.report.not_started = self.slots.iter().filter(|s| !s.started()).map(|s| s.spec.name.clone()).collect();
        self.report.code = match (self.report.forced_by, self.report.fatal) {
            (Some(s), _) => 128 + s.number(),
            (None, true) => 1,
            (None, false) => 0,
        };
        tracing::info!(code = self.report.code, abandoned = self.report.abandoned.len(), "controller stopped");
        self.actions.push_back(Action::Finish);
    }
}
