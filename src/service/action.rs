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
    /// The service has no running process to hand off from.
    #[error("service {0:?} is not running")]
    NotRunning(String),
    /// The coordinator refused the handoff (another one is in progress,
    /// it is starting, ...): nothing changed.
    #[error("upgrade refused: {0}")]
    UpgradeRefused(String),
    /// The coordinator gave no outcome (it died, or did not answer in
    /// time); a restarted coordinator starts the service afresh.
    #[error("upgrade outcome unknown: {0}")]
    UpgradeUnknown(String),
    /// The handoff was given up: the old process serves on (or its
    /// program was started again).
    #[error("upgrade given up: {0}; the old process serves on")]
    UpgradeAborted(String),
}

/// A committed `warden upgrade`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The handoff's id (16 hex digits).
    pub handoff: String,
    /// The pid of the process that serves now.
    pub pid: crate::env::Pid,
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
