//! Errors of the runnable tree and of runnables.

use std::collections::BTreeMap;

use super::intensity::IntensityExceeded;
use super::state::{IllegalTransition, NodeState};
use super::tree::PendingRestart;

/// Why a runnable failed: never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RunError(String);

impl RunError {
    /// An error with `message` (an empty one is replaced: never an empty
    /// error).
    pub fn new(message: impl Into<String>) -> Self {
        let m = message.into();
        RunError(if m.trim().is_empty() { "error with no message".to_owned() } else { m })
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<&str> for RunError {
    fn from(s: &str) -> Self {
        RunError::new(s)
    }
}

impl From<String> for RunError {
    fn from(s: String) -> Self {
        RunError::new(s)
    }
}

/// What a runnable returns.
pub type RunResult = Result<(), RunError>;

/// A refused tree call fails the runnable that made it, so `ctx.run(..)?`
/// and `ctx.signal(..)?` need no `map_err`.
impl From<TreeError> for RunError {
    fn from(e: TreeError) -> Self {
        RunError::new(e.to_string())
    }
}

/// A request to the tree that it refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A child of that name already exists under the parent.
    #[error("{parent} already has a child named {name:?}")]
    DuplicateName {
        /// The parent's name.
        parent: String,
        /// The rejected name.
        name: String,
    },
    /// A name is empty or contains a dot.
    #[error("invalid runnable name {0:?} (non-empty, no dots)")]
    InvalidName(String),
    /// The node (at that instance) is not in the tree when the supervisor
    /// processes an exit: an internal error.
    #[error("could not find {dn} (instance {instance}) in the tree")]
    NodeNotFound {
        /// Its hierarchical name.
        dn: String,
        /// The instance that asked.
        instance: u64,
    },
    /// A runnable called the tree through the context of an instance that
    /// is no longer current (it kept a `Ctx` past its own return, or past
    /// a restart): the runnable's programming error.
    #[error("stale context: {dn} instance {instance} is no longer in the tree")]
    StaleContext {
        /// Its hierarchical name.
        dn: String,
        /// The instance the context belongs to.
        instance: u64,
    },
    /// Only a running runnable may start children.
    #[error("{0} is not running and cannot start children")]
    ParentNotRunning(String),
    /// A runnable broke the signalling protocol (a programming error).
    #[error("node {dn}: {error}")]
    Programming {
        /// Its hierarchical name.
        dn: String,
        /// What it did.
        error: IllegalTransition,
    },
}

/// Why a supervisor stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// Restart intensity was exceeded at the root.
    #[error("restart intensity exceeded at {dn}: {limit}")]
    IntensityExceeded {
        /// The node whose children restarted too often (or `root`).
        dn: String,
        /// The limit.
        limit: IntensityExceeded,
    },
    /// Shutdown was asked for and these runnables had not returned when
    /// the grace period ended; they were aborted.
    #[error("runnables still running {grace:?} after shutdown, aborted: {still_running:?}")]
    ShutdownTimedOut {
        /// The grace period.
        grace: std::time::Duration,
        /// Instances that had not returned.
        still_running: usize,
    },
    /// Test mode: an internal error or a programming error ended the run.
    #[error("internal error (test mode): {0}")]
    Internal(TreeError),
}

/// [`Supervisor::settled`](super::Supervisor::settled) ran out of time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tree not settled: nodes {unsettled:?}, pending restarts {pending:?}")]
pub struct NotSettled {
    /// Nodes neither HEALTHY nor DONE, and their states.
    pub unsettled: BTreeMap<String, NodeState>,
    /// Restarts still pending.
    pub pending: Vec<PendingRestart>,
}
