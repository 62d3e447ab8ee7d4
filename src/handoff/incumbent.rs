//! O, the incumbent, as a state machine (no I/O, no clock of its own).
//!
//! Call order: construct with [`Incumbent::new`]; feed inputs with
//! [`Incumbent::handle_event`] (each takes `now`); drain
//! [`Incumbent::poll_action`] until `None`; sleep until
//! [`Incumbent::poll_timeout`] and call [`Incumbent::handle_timeout`].
//! The driver (`app::driver`) owns the sockets, the accept loops and the
//! application's hooks, and reports their results back as events.
//!
//! O serves until PrepareHandoff; then it stops accepting (the listener
//! stays open, so clients queue in its backlog), waits for its open
//! connections up to the drain grace, reports Drained, and seals on
//! SealRequest. Sealed, it serves again only after ResumeAfterAbort, and
//! it exits after Commit once its last connections are done.

use std::collections::VecDeque;
use std::time::Duration;

use super::id::Token;
use super::id::{HandoffId, PeerState, Role};
use super::session::{AppEvent, Attach, SessionId};
use super::wire::{Frame, Hello};
use crate::env::{Instant, Pid};

/// Timings of O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncumbentConfig {
    /// Period of Heartbeat frames while sealing.
    pub heartbeat: Duration,
    /// Not yet sealed and the coordinator gone this long: serve again.
    pub orphan_grace: Duration,
    /// Sealed (or sealing) and the coordinator gone this long: give up and exit.
    pub orphan_deadline: Duration,
    /// After Commit, how long open connections get before O exits.
    pub exit_grace: Duration,
}

impl Default for IncumbentConfig {
    fn default() -> Self {
        IncumbentConfig {
            heartbeat: Duration::from_secs(1),
            orphan_grace: Duration::from_secs(30),
            orphan_deadline: Duration::from_secs(600),
            exit_grace: Duration::from_secs(30),
        }
    }
}

/// Where O is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IncumbentPhase {
    /// Accepting; no handoff.
    Serving,
    /// Not accepting; waiting for open connections.
    Draining,
    /// Reported Drained; waiting for SealRequest.
    Drained,
    /// Running the application's seal.
    Sealing,
    /// Sealed; waiting for Commit or ResumeAfterAbort.
    Sealed,
    /// Running the application's resume.
    Resuming,
    /// Finishing its last connections before it exits.
    Exiting,
}

impl IncumbentPhase {
    /// How O reports this phase in Hello.
    pub fn peer_state(self) -> PeerState {
        match self {
            IncumbentPhase::Serving => PeerState::Serving,
            IncumbentPhase::Draining => PeerState::Draining,
            IncumbentPhase::Drained => PeerState::Drained,
            IncumbentPhase::Sealing => PeerState::Sealing,
            IncumbentPhase::Sealed => PeerState::Sealed,
            IncumbentPhase::Resuming => PeerState::Resuming,
            IncumbentPhase::Exiting => PeerState::Exiting,
        }
    }
}

/// What O learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncumbentEvent {
    /// The coordinator connected (a newer session replaces an older one).
    SessionOpened(SessionId),
    /// A frame arrived on a session.
    Frame(SessionId, Frame),
    /// A session ended.
    SessionClosed(SessionId),
    /// The drain of handoff `id` ended with `open_conns` still open.
    DrainDone {
        /// The handoff it was for.
        id: HandoffId,
        /// Connections still open.
        open_conns: u32,
    },
    /// The application's seal for handoff `id` returned.
    SealDone {
        /// The handoff it was for.
        id: HandoffId,
        /// Its outcome.
        result: Result<(), String>,
    },
    /// The application's resume returned.
    ResumeDone(Result<(), String>),
}

/// What the driver does for O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncumbentAction {
    /// Write a frame (Hello goes with dups of the listeners attached).
    Send(SessionId, Frame),
    /// Close a session.
    CloseSession(SessionId),
    /// Start the accept loops.
    StartAccepting,
    /// Stop the accept loops (the listeners stay open).
    StopAccepting,
    /// Wait for open connections (at most `grace`), then report DrainDone.
    Drain {
        /// The handoff.
        id: HandoffId,
        /// Longest wait.
        grace: Duration,
    },
    /// Run the application's seal, then report SealDone.
    Seal {
        /// The handoff.
        id: HandoffId,
    },
    /// Run the application's resume (after a seal if `sealed`), then report ResumeDone.
    Resume {
        /// Whether a seal ran (and must be undone).
        sealed: bool,
    },
    /// Wait for open connections (at most `grace`), then exit with `code`.
    Exit {
        /// Longest wait.
        grace: Duration,
        /// Exit code.
        code: i32,
    },
    /// Tell the application (logs, metrics).
    Notify(AppEvent),
    /// A named crash point.
    CrashPoint(&'static str),
}

/// Exit code of an incumbent abandoned by its coordinator while sealed.
pub const EXIT_ABANDONED: i32 = 75;
/// Exit code of an incumbent whose resume failed.
pub const EXIT_RESUME_FAILED: i32 = 70;

/// Inputs after session bookkeeping, for the one match below.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Prepare { id: HandoffId, grace: Duration },
    SealRequest,
    Commit,
    Resume,
    Unexpected(&'static str),
    SessionLost,
    DrainDone(u32),
    SealDone(Result<(), String>),
    ResumeDone(Result<(), String>),
    Timer,
}

/// The incumbent.
#[derive(Debug)]
pub struct Incumbent {
    config: IncumbentConfig,
    phase: IncumbentPhase,
    id: HandoffId,
    me: (Pid, Token),
    listeners: Vec<String>,
    attach: Attach,
    /// ResumeAfterAbort arrived while the seal still ran.
    resume_pending: bool,
    /// The coordinator is gone since (for the orphan timers).
    orphaned_at: Option<Instant>,
    next_heartbeat: Option<Instant>,
    actions: VecDeque<IncumbentAction>,
    stale_frames_accepted: bool,
}

impl Incumbent {
    /// O serving with `listeners`; `accepting` is false for a fresh
    /// process (it is told to start) and true for a committed successor
    /// that already accepts. `stale_frames_accepted` is the mutant
    /// `handoff-stale-frame-accepted`.
    pub fn new(
        config: IncumbentConfig,
        me: (Pid, Token),
        listeners: Vec<String>,
        accepting: bool,
        stale_frames_accepted: bool,
    ) -> Self {
        let mut o = Incumbent {
            config,
            phase: IncumbentPhase::Serving,
            id: HandoffId::NONE,
            me,
            listeners,
            attach: Attach::default(),
            resume_pending: false,
            orphaned_at: None,
            next_heartbeat: None,
            actions: VecDeque::new(),
            stale_frames_accepted,
        };
        if !accepting {
            o.actions.push_back(IncumbentAction::StartAccepting);
        }
        o
    }

    /// Takes over the session of a committed successor.
    pub fn with_session(mut self, attach: Attach) -> Self {
        self.attach = attach;
        self
    }

    /// Where O is.
    pub fn phase(&self) -> IncumbentPhase {
        self.phase
    }

    /// The handoff O is in ([`HandoffId::NONE`] when serving).
    pub fn handoff(&self) -> HandoffId {
        self.id
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<IncumbentAction> {
        self.actions.pop_front()
    }

    /// When to call [`Incumbent::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let orphan = self.orphaned_at.and_then(|t| match self.phase {
            IncumbentPhase::Draining | IncumbentPhase::Drained => Some(t + self.config.orphan_grace),
            IncumbentPhase::Sealing | IncumbentPhase::Sealed => Some(t + self.config.orphan_deadline),
            IncumbentPhase::Serving | IncumbentPhase::Resuming | IncumbentPhase::Exiting => None,
        });
        [orphan, self.next_heartbeat].into_iter().flatten().min()
    }

    /// Timers due at `now` fire.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_heartbeat.is_some_and(|t| t <= now) {
            self.next_heartbeat = (self.phase == IncumbentPhase::Sealing).then(|| now + self.config.heartbeat);
            self.send(Frame::Heartbeat { id: self.id });
        }
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.step(now, Input::Timer);
        }
    }

    /// Feeds one event.
    pub fn handle_event(&mut self, now: Instant, event: IncumbentEvent) {
        let input = match event {
            IncumbentEvent::SessionOpened(s) => {
                if let Some(old) = self.attach.open(s) {
                    self.actions.push_back(IncumbentAction::CloseSession(old));
                }
                self.orphaned_at = None;
                let hello = self.hello();
                self.actions.push_back(IncumbentAction::Send(s, Frame::Hello(hello)));
                return;
            }
            IncumbentEvent::SessionClosed(s) => {
                if !self.attach.close(s) {
                    return;
                }
                Input::SessionLost
            }
            IncumbentEvent::Frame(s, frame) => {
                match self.attach.filter(s, frame, self.id, self.stale_frames_accepted) {
                    Ok(Some(f)) => match f {
                        Frame::PrepareHandoff { id, drain_grace_ms, .. } => {
                            Input::Prepare { id, grace: Duration::from_millis(drain_grace_ms) }
                        }
                        Frame::SealRequest { .. } => Input::SealRequest,
                        Frame::Commit { .. } => Input::Commit,
                        Frame::ResumeAfterAbort { .. } => Input::Resume,
                        Frame::Heartbeat { id } => {
                            self.send(Frame::Heartbeat { id });
                            return;
                        }
                        other => Input::Unexpected(other.name()),
                    },
                    Ok(None) => {
                        self.ack_if_attached(s);
                        return;
                    }
                    Err(stale) => {
                        self.actions.push_back(IncumbentAction::Notify(stale));
                        return;
                    }
                }
            }
            IncumbentEvent::DrainDone { id, open_conns } if id == self.id => Input::DrainDone(open_conns),
            IncumbentEvent::SealDone { id, result } if id == self.id => Input::SealDone(result),
            IncumbentEvent::DrainDone { .. } | IncumbentEvent::SealDone { .. } => return,
            IncumbentEvent::ResumeDone(r) => Input::ResumeDone(r),
        };
        self.step(now, input);
    }

    /// After HelloAck: the first frame back (the identity round trip).
    fn ack_if_attached(&mut self, s: SessionId) {
        if self.attach.take_fresh_ack() {
            self.actions.push_back(IncumbentAction::Send(s, Frame::Heartbeat { id: self.id }));
        }
    }

    fn hello(&self) -> Hello {
        Hello {
            role: Role::Incumbent,
            pid: self.me.0,
            token: self.me.1,
            proto_min: super::wire::PROTO_MIN,
            proto_max: super::wire::PROTO_MAX,
            state: self.phase.peer_state(),
            handoff: self.id,
            listeners: self.listeners.clone(),
        }
    }

    fn send(&mut self, frame: Frame) {
        if let Some(s) = self.attach.current() {
            self.actions.push_back(IncumbentAction::Send(s, frame));
        }
    }

    fn act(&mut self, a: IncumbentAction) {
        self.actions.push_back(a);
    }

    fn resume(&mut self, sealed: bool) {
        self.phase = IncumbentPhase::Resuming;
        self.resume_pending = false;
        self.next_heartbeat = None;
        self.act(IncumbentAction::Resume { sealed });
    }

    fn step(&mut self, now: Instant, input: Input) {
        use IncumbentPhase as P;
        use Input as I;
        let id = self.id;
        match (self.phase, input) {
            (P::Serving, I::Prepare { id, grace }) => {
                self.id = id;
                self.phase = P::Draining;
                self.act(IncumbentAction::CrashPoint("handoff.o.after_prepare_recv"));
                self.act(IncumbentAction::StopAccepting);
                self.act(IncumbentAction::Drain { id, grace });
            }
            (
                P::Draining | P::Drained | P::Sealing | P::Sealed | P::Resuming | P::Exiting,
                I::Prepare { id: new, .. },
            ) => {
                if new != id {
                    let reason = format!("busy: handoff {id} is {:?}", self.phase.peer_state());
                    self.send(Frame::Abort { id: new, reason });
                }
            }
            (P::Draining, I::DrainDone(open_conns)) => {
                self.phase = P::Drained;
                self.send(Frame::Drained { id, open_conns, accept_closed: true });
                self.act(IncumbentAction::CrashPoint("handoff.o.after_drained_sent"));
            }
            (P::Drained, I::SealRequest) => {
                self.phase = P::Sealing;
                self.act(IncumbentAction::CrashPoint("handoff.o.after_seal_request_recv"));
                self.act(IncumbentAction::Seal { id });
                self.next_heartbeat = Some(now + self.config.heartbeat);
            }
            (P::Sealing, I::SealDone(Ok(()))) => {
                self.next_heartbeat = None;
                self.send(Frame::SealComplete { id });
                if self.resume_pending {
                    // The coordinator gave up before the seal completed: the
                    // SealComplete above is late, and O serves again.
                    self.act(IncumbentAction::Notify(AppEvent::SealCompletedAfterAbort(id)));
                    self.resume(true);
                } else {
                    self.phase = P::Sealed;
                    self.act(IncumbentAction::CrashPoint("handoff.o.after_seal_complete_sent"));
                }
            }
            (P::Sealing, I::SealDone(Err(error))) => {
                self.next_heartbeat = None;
                self.send(Frame::SealFailed { id, error });
                if self.resume_pending {
                    self.resume(false);
                } else {
                    self.phase = P::Drained;
                }
            }
            (P::Sealing, I::Resume) => self.resume_pending = true,
            (P::Draining | P::Drained, I::Resume) => self.resume(false),
            (P::Sealed, I::Resume) => self.resume(true),
            (P::Sealed, I::Commit) => {
                self.phase = P::Exiting;
                self.act(IncumbentAction::CrashPoint("handoff.o.after_commit_recv"));
                self.act(IncumbentAction::Notify(AppEvent::Committed(id)));
                self.act(IncumbentAction::Exit { grace: self.config.exit_grace, code: 0 });
            }
            (P::Resuming, I::ResumeDone(Ok(()))) => {
                self.phase = P::Serving;
                self.id = HandoffId::NONE;
                self.act(IncumbentAction::StartAccepting);
                self.act(IncumbentAction::CrashPoint("handoff.o.after_resumed"));
                self.act(IncumbentAction::Notify(AppEvent::Resumed(id)));
            }
            (P::Resuming, I::ResumeDone(Err(e))) => {
                tracing::error!(handoff = %id, error = %e, "resume failed; exiting so a new generation starts");
                self.phase = P::Exiting;
                self.act(IncumbentAction::Exit { grace: Duration::ZERO, code: EXIT_RESUME_FAILED });
            }
            (P::Draining | P::Drained | P::Sealing | P::Sealed, I::SessionLost) => self.orphaned_at = Some(now),
            (P::Draining | P::Drained, I::Timer) => {
                tracing::warn!(handoff = %id, "coordinator gone before the seal; serving again");
                self.resume(false);
            }
            (P::Sealing | P::Sealed, I::Timer) => {
                tracing::error!(handoff = %id, "coordinator gone while sealed; exiting");
                self.phase = P::Exiting;
                self.act(IncumbentAction::Exit { grace: Duration::ZERO, code: EXIT_ABANDONED });
            }
            (P::Serving | P::Resuming | P::Exiting, I::SessionLost | I::Timer) => {}
            (
                P::Serving | P::Draining | P::Drained | P::Sealing | P::Sealed | P::Resuming | P::Exiting,
                I::DrainDone(_) | I::SealDone(_) | I::ResumeDone(_),
            ) => {}
            (P::Serving | P::Draining | P::Sealing | P::Sealed | P::Resuming | P::Exiting, I::SealRequest)
            | (P::Serving | P::Draining | P::Drained | P::Sealing | P::Resuming | P::Exiting, I::Commit)
            | (P::Serving | P::Resuming | P::Exiting, I::Resume) => {
                tracing::warn!(handoff = %id, phase = ?self.phase, "frame not expected in this phase; ignored");
            }
            (
                P::Serving | P::Draining | P::Drained | P::Sealing | P::Sealed | P::Resuming | P::Exiting,
                I::Unexpected(name),
            ) => {
                tracing::warn!(handoff = %id, frame = name, "frame O never handles; ignored");
            }
        }
    }
}
