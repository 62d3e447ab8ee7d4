//! One service's state machine: states x events as one exhaustive match
//! (as s6-supervise's table), no wildcard arm. Illegal pairs are named
//! errors and leave the service unchanged.
//!
//! The machine decides; the [`Manager`](super::Manager) around it decides
//! *when* (dependencies, shutdown order) and turns [`Effect`]s into actions.

use std::fmt;
use std::time::Duration;

use crate::env::{ExitStatus, Instant, Pid};

/// Where a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcState {
    /// Not running; starts once its dependencies are ready.
    Waiting,
    /// Its process is being spawned.
    Spawning,
    /// Its process runs (ready or not: see the ready flag).
    Running {
        /// When it was spawned.
        since: Instant,
    },
    /// Its stop signal was sent; SIGKILL at `kill_at` (`None` once sent).
    Stopping {
        /// When SIGKILL is due.
        kill_at: Option<Instant>,
        /// What follows the exit.
        then: Then,
    },
    /// It exited and restarts at `until`.
    Backoff {
        /// When the restart is due.
        until: Instant,
    },
    /// It exited cleanly and its policy does not restart it.
    Exited,
    /// It exited with a failure that is not restarted, or went over its
    /// restart intensity, or cannot be spawned: it stays failed until
    /// started by hand.
    Failed,
    /// Stopped on request.
    Stopped,
}

impl SvcState {
    /// The name `warden status` shows.
    pub fn name(self) -> &'static str {
        match self {
            SvcState::Waiting => "waiting",
            SvcState::Spawning => "starting",
            SvcState::Running { .. } => "running",
            SvcState::Stopping { .. } => "stopping",
            SvcState::Backoff { .. } => "backoff",
            SvcState::Exited => "exited",
            SvcState::Failed => "failed",
            SvcState::Stopped => "stopped",
        }
    }

    /// Whether a process of the service may be alive.
    pub fn has_process(self) -> bool {
        match self {
            SvcState::Spawning | SvcState::Running { .. } | SvcState::Stopping { .. } => true,
            SvcState::Waiting | SvcState::Backoff { .. } | SvcState::Exited | SvcState::Failed | SvcState::Stopped => {
                false
            }
        }
    }
}

impl fmt::Display for SvcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What follows a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Stay stopped.
    Stay,
    /// Start again (`warden restart`).
    Start,
}

/// What can happen to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvcEvent {
    /// Its dependencies are ready: spawn it.
    Launch,
    /// `warden start` (or the start half of `warden restart`).
    StartCmd,
    /// Its process was spawned with this pid.
    Spawned(Pid),
    /// Its process could not be spawned.
    SpawnFailed,
    /// Its readiness check passed.
    Ready,
    /// Its process exited.
    Exited(ExitStatus),
    /// Stop it, then do `Then`.
    Stop(Then),
    /// Its stop timeout passed.
    KillDue,
    /// Its backoff passed.
    RestartDue,
}

/// What the manager must do after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// Spawn a new instance.
    Spawn,
    /// Send the stop signal to the process group.
    SignalStop,
    /// Send SIGKILL to the process group.
    Kill,
    /// Decide on a restart after this exit (policy, intensity, backoff).
    DecideRestart(ExitStatus),
}

/// An event the state forbids; the service is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} while {state}")]
pub struct Illegal {
    /// The state it was in.
    pub state: SvcState,
    /// The event.
    pub event: SvcEvent,
}

/// Applies `event` at `now`; returns what to do. `stop_timeout` arms the
/// SIGKILL deadline of a stop.
pub fn step(state: &mut SvcState, now: Instant, stop_timeout: Duration, event: SvcEvent) -> Result<Effect, Illegal> {
    use SvcEvent as E;
    use SvcState as S;
    let illegal = Err(Illegal { state: *state, event });
    let (next, effect) = match (*state, event) {
        (S::Waiting, E::Launch) => (S::Spawning, Effect::Spawn),
        (S::Backoff { .. }, E::RestartDue) => (S::Spawning, Effect::Spawn),
        (S::Spawning, E::Spawned(_)) => (S::Running { since: now }, Effect::None),
        // Stopped while spawning: the new process gets the stop signal now.
        (S::Stopping { kill_at, then }, E::Spawned(_)) => (S::Stopping { kill_at, then }, Effect::SignalStop),
        (S::Spawning, E::SpawnFailed) => (S::Waiting, Effect::DecideRestart(ExitStatus::Code(127))),
        (S::Stopping { then: Then::Stay, .. }, E::SpawnFailed) => (S::Stopped, Effect::None),
        (S::Stopping { then: Then::Start, .. }, E::SpawnFailed) => (S::Waiting, Effect::None),
        (S::Running { since }, E::Ready) => (S::Running { since }, Effect::None),
        (S::Stopping { kill_at, then }, E::Ready) => (S::Stopping { kill_at, then }, Effect::None),
        (S::Running { .. }, E::Exited(st)) => (S::Waiting, Effect::DecideRestart(st)),
        (S::Stopping { then: Then::Stay, .. }, E::Exited(_)) => (S::Stopped, Effect::None),
        (S::Stopping { then: Then::Start, .. }, E::Exited(_)) => (S::Waiting, Effect::None),
        (S::Running { .. } | S::Spawning, E::Stop(then)) => {
            let kill_at = Some(now + stop_timeout);
            let effect = if matches!(*state, S::Running { .. }) { Effect::SignalStop } else { Effect::None };
            (S::Stopping { kill_at, then }, effect)
        }
        (S::Stopping { kill_at, .. }, E::Stop(then)) => (S::Stopping { kill_at, then }, Effect::None),
        (S::Waiting | S::Backoff { .. }, E::Stop(Then::Stay)) => (S::Stopped, Effect::None),
        (S::Waiting | S::Backoff { .. }, E::Stop(Then::Start)) => (S::Waiting, Effect::None),
        (S::Exited | S::Failed | S::Stopped, E::Stop(Then::Stay)) => (*state, Effect::None),
        (S::Exited | S::Failed | S::Stopped, E::Stop(Then::Start) | E::StartCmd) => (S::Waiting, Effect::None),
        (S::Backoff { .. }, E::StartCmd) => (S::Waiting, Effect::None),
        (S::Stopping { kill_at, .. }, E::StartCmd) => (S::Stopping { kill_at, then: Then::Start }, Effect::None),
        (S::Waiting | S::Spawning | S::Running { .. }, E::StartCmd) => (*state, Effect::None),
        (S::Stopping { kill_at: Some(_), then }, E::KillDue) => (S::Stopping { kill_at: None, then }, Effect::Kill),
        // Events that cannot happen in these states.
        (S::Spawning | S::Running { .. } | S::Stopping { .. } | S::Backoff { .. }, E::Launch)
        | (S::Exited | S::Failed | S::Stopped, E::Launch)
        | (S::Waiting | S::Running { .. } | S::Backoff { .. }, E::Spawned(_))
        | (S::Exited | S::Failed | S::Stopped, E::Spawned(_))
        | (S::Waiting | S::Running { .. } | S::Backoff { .. }, E::SpawnFailed)
        | (S::Exited | S::Failed | S::Stopped, E::SpawnFailed)
        | (S::Waiting | S::Spawning | S::Backoff { .. }, E::Ready)
        | (S::Exited | S::Failed | S::Stopped, E::Ready)
        | (S::Waiting | S::Spawning | S::Backoff { .. }, E::Exited(_))
        | (S::Exited | S::Failed | S::Stopped, E::Exited(_))
        | (S::Stopping { kill_at: None, .. }, E::KillDue)
        | (S::Waiting | S::Spawning | S::Running { .. } | S::Backoff { .. }, E::KillDue)
        | (S::Exited | S::Failed | S::Stopped, E::KillDue)
        | (S::Waiting | S::Spawning | S::Running { .. } | S::Stopping { .. }, E::RestartDue)
        | (S::Exited | S::Failed | S::Stopped, E::RestartDue) => return illegal,
    };
    *state = next;
    Ok(effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_stop_escalates_and_ends_stopped() {
        let mut s = SvcState::Waiting;
        let d = Duration::from_secs(1);
        assert_eq!(step(&mut s, t(0), d, SvcEvent::Launch), Ok(Effect::Spawn));
        assert_eq!(step(&mut s, t(0), d, SvcEvent::Spawned(7)), Ok(Effect::None));
        assert_eq!(step(&mut s, t(5), d, SvcEvent::Stop(Then::Stay)), Ok(Effect::SignalStop));
        assert_eq!(s, SvcState::Stopping { kill_at: Some(t(1005)), then: Then::Stay });
        assert_eq!(step(&mut s, t(1005), d, SvcEvent::KillDue), Ok(Effect::Kill));
        assert!(step(&mut s, t(1006), d, SvcEvent::KillDue).is_err(), "SIGKILL is sent once");
        assert_eq!(step(&mut s, t(1010), d, SvcEvent::Exited(ExitStatus::Code(0))), Ok(Effect::None));
        assert_eq!(s, SvcState::Stopped);
    }

    #[test]
    fn an_exit_while_running_asks_for_a_decision_and_illegal_pairs_change_nothing() {
        let mut s = SvcState::Running { since: t(0) };
        let d = Duration::from_secs(1);
        let st = ExitStatus::Code(3);
        assert_eq!(step(&mut s, t(9), d, SvcEvent::Exited(st)), Ok(Effect::DecideRestart(st)));
        let before = s;
        assert!(step(&mut s, t(9), d, SvcEvent::Ready).is_err());
        assert_eq!(s, before);
    }
}
