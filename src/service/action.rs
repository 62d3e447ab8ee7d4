//! What goes in and out of the [`Manager`](super::Manager) besides time:
//! the actions the driver executes, the commands of the control socket and
//! why they are refused, and the mutants the simulator switches on.

use crate::env::Signal;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn service `svc` as `instance`; answer with
    /// [`Manager::handle_spawned`](super::Manager::handle_spawned) before anything else.
    Spawn {
        /// Service index.
        svc: usize,
        /// The new instance's number.
        instance: u64,
    },
    /// Signal the process group of `svc`'s current instance.
    Signal {
        /// Service index.
        svc: usize,
        /// The instance the signal is meant for.
        instance: u64,
        /// Which signal.
        signal: Signal,
    },
    /// Stop watching `svc`'s instance (mutant `service-orphan-on-exit`:
    /// the manager forgets a process that is still alive).
    Forget {
        /// Service index.
        svc: usize,
    },
    /// The manager has stopped: exit with this status.
    Finished {
        /// Process exit status: 0, 1 or 128 + signal.
        code: i32,
    },
}

/// A command from the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Start a stopped, exited or failed service (resets its intensity).
    Start,
    /// Stop it and keep it stopped.
    Stop,
    /// Stop it, then start it again.
    Restart,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No service has that name.
    #[error("no service named {0:?}")]
    UnknownService(String),
    /// warden is stopping.
    #[error("warden is stopping")]
    Stopping,
    /// The service does not declare `handoff = true`.
    #[error("service {0:?} does not declare handoff = true")]
    NoHandoff(String),
    /// `warden upgrade` needs the handoff protocol, which this build lacks.
    #[error("warden upgrade is not available yet: this build has no handoff protocol")]
    UpgradeNotAvailable,
}

/// Bugs the simulator re-introduces (see `env::mutants`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mutants {
    /// `service-stop-unordered`: every service is stopped at once.
    pub stop_unordered: bool,
    /// `service-orphan-on-exit`: a service that ignores its stop signal is
    /// forgotten instead of killed.
    pub orphan_on_exit: bool,
    /// `service-on-failure-restarts-clean-exit`.
    pub on_failure_restarts_clean_exit: bool,
}
