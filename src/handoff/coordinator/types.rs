//! The coordinator's inputs, outputs, timings and errors.

use std::fmt;
use std::time::Duration;

use crate::env::Pid;
use crate::handoff::id::{HandoffId, Role, Token};
use crate::handoff::journal::{GenRecord, Record};
use crate::handoff::session::SessionId;
use crate::handoff::wire::Frame;

/// How to start a generation of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenSpec {
    /// The program (a registered name in the simulator, a path on the OS).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl GenSpec {
    /// What the generation of `rec` runs (to start it, or start it again).
    pub(super) fn of(rec: &GenRecord) -> GenSpec {
        GenSpec { program: rec.program.clone(), args: rec.args.clone() }
    }

    /// The record of a new generation `token` running this (its pid
    /// unknown yet).
    pub(super) fn into_record(self, token: Token) -> GenRecord {
        GenRecord { token, pid: None, program: self.program, args: self.args }
    }
}

/// A handoff request from the operator (`warden upgrade`), numbered by the driver.
pub type RequestId = u64;

/// Timings of S.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// A generation must say Hello (and answer HelloAck) within this.
    pub hello_timeout: Duration,
    /// O may wait this long for its open connections.
    pub drain_grace: Duration,
    /// From the request to SealComplete at most.
    pub deadline: Duration,
    /// From Begin to Ready at most.
    pub ready_timeout: Duration,
    /// Silence on O's session while it seals before S gives up.
    pub liveness: Duration,
    /// N must exit within this after Abort, else it is killed.
    pub abort_grace: Duration,
    /// A retired O must exit within this after Commit, else it is killed.
    pub retire_grace: Duration,
    /// Pause before retrying a failed start, journal read or reconnect.
    pub retry: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            hello_timeout: Duration::from_secs(5),
            drain_grace: Duration::from_secs(60),
            deadline: Duration::from_secs(300),
            ready_timeout: Duration::from_secs(60),
            liveness: Duration::from_secs(10),
            abort_grace: Duration::from_secs(10),
            retire_grace: Duration::from_secs(60),
            retry: Duration::from_millis(500),
        }
    }
}

/// Historical bugs, switched on from `env.mutant(..)` by the driver; all off in production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoordinatorBugs {
    /// `handoff-seal-timeout-no-resume`: a seal timeout or SealFailed
    /// aborts without ResumeAfterAbort (seed 004).
    pub seal_timeout_no_resume: bool,
    /// `handoff-commit-unhealthy`: Ready with `healthz_ok = false` is committed (seed 004).
    pub commit_unhealthy: bool,
    /// `handoff-journal-ignored-on-restart`: a restarted S ignores its journal (seed 004).
    pub journal_ignored: bool,
    /// `handoff-incumbent-death-unhandled`: O's exit during a handoff is not acted on.
    pub incumbent_death_unhandled: bool,
    /// `handoff-stale-frame-accepted`: frames of another handoff are acted on.
    pub stale_frames_accepted: bool,
}

/// What S learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorEvent {
    /// The journal was read (`Err` when the disk failed or the record is damaged).
    JournalLoaded(Result<Option<Record>, String>),
    /// The last [`CoordinatorAction::WriteJournal`] finished.
    JournalWritten(Result<(), String>),
    /// The operator asks for a handoff to `spec`.
    Request(RequestId, GenSpec),
    /// A [`CoordinatorAction::Spawn`] finished.
    Spawned(Token, Result<Pid, String>),
    /// A [`CoordinatorAction::Adopt`] finished.
    Adopted(Token, Result<(), String>),
    /// A [`CoordinatorAction::Connect`] succeeded.
    SessionOpened(Token, SessionId),
    /// A [`CoordinatorAction::Connect`] failed: nothing holds that handoff socket.
    ConnectFailed(Token, String),
    /// A frame arrived from a generation.
    Frame(Token, SessionId, Frame),
    /// A session ended.
    SessionClosed(Token, SessionId),
    /// A generation S holds a handle on exited.
    Exited(Token),
}

/// What the driver does for S.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorAction {
    /// Read the journal, then report JournalLoaded.
    ReadJournal,
    /// Replace the journal's record, then report JournalWritten.
    WriteJournal(Record),
    /// Start a generation (listeners from the fd store, its own handoff
    /// socket), watch it, then report Spawned.
    Spawn {
        /// Its token.
        token: Token,
        /// Its role.
        role: Role,
        /// What to run.
        spec: GenSpec,
        /// The handoff it is spawned for (NONE for an incumbent).
        id: HandoffId,
    },
    /// Take a handle on (and watch) process `pid`, found after a restart; report Adopted.
    Adopt {
        /// The generation.
        token: Token,
        /// Its pid, from its Hello.
        pid: Pid,
    },
    /// Connect to the generation's handoff socket; report SessionOpened or ConnectFailed.
    Connect(Token),
    /// Write a frame on the generation's session.
    Send(Token, Frame),
    /// SIGKILL the generation through its handle.
    Kill(Token),
    /// Drop everything held for a generation (handle, session, socket path).
    Forget(Token),
    /// Answer the operator.
    Reply(RequestId, Result<Outcome, HandoffError>),
    /// A named crash point.
    CrashPoint(&'static str),
}

/// How a handoff ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// N serves now.
    Committed {
        /// The handoff.
        id: HandoffId,
        /// N's pid.
        pid: Pid,
    },
    /// O (or a fresh process of O's program) serves.
    Aborted {
        /// The handoff.
        id: HandoffId,
        /// Why.
        reason: String,
    },
}

/// Why a handoff was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    /// Another handoff holds the lease (possibly from before a restart).
    #[error("handoff {id} is in progress (phase {phase}); one handoff at a time")]
    InProgress {
        /// The running handoff.
        id: HandoffId,
        /// Its phase.
        phase: &'static str,
    },
    /// No incumbent serves yet (S is starting or recovering).
    #[error("no incumbent to hand off from: the coordinator is {phase}")]
    Unavailable {
        /// What S is doing.
        phase: &'static str,
    },
    /// The lease could not be journaled.
    #[error("cannot journal the handoff: {0}")]
    Journal(String),
}

/// Where S is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CoordinatorPhase {
    /// Reading the journal.
    Booting,
    /// Re-identifying the generations the journal names.
    Recovering,
    /// Starting a fresh incumbent.
    Starting,
    /// An incumbent serves; no handoff.
    Idle,
    /// The lease is being journaled.
    Leasing,
    /// Checking that O answers.
    Probing,
    /// N is spawned and says Hello.
    Spawning,
    /// Both sessions are up; Prepared is being journaled.
    Preparing,
    /// Waiting for Drained.
    Draining,
    /// Waiting for SealComplete.
    Sealing,
    /// Begin sent (or about to be); waiting for Ready.
    Beginning,
    /// N wins: commits are sent and journaled.
    Committing,
    /// O stays: N is stopped, O resumes (or its program restarts).
    Aborting,
}

impl CoordinatorPhase {
    /// Lower-case name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            CoordinatorPhase::Booting => "booting",
            CoordinatorPhase::Recovering => "recovering",
            CoordinatorPhase::Starting => "starting",
            CoordinatorPhase::Idle => "idle",
            CoordinatorPhase::Leasing => "leasing",
            CoordinatorPhase::Probing => "probing",
            CoordinatorPhase::Spawning => "spawning",
            CoordinatorPhase::Preparing => "preparing",
            CoordinatorPhase::Draining => "draining",
            CoordinatorPhase::Sealing => "sealing",
            CoordinatorPhase::Beginning => "beginning",
            CoordinatorPhase::Committing => "committing",
            CoordinatorPhase::Aborting => "aborting",
        }
    }
}

impl fmt::Display for CoordinatorPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
