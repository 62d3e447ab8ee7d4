//! N, the successor, as a state machine (no I/O, no clock of its own).
//!
//! Call order: construct with [`Successor::new`] once the listeners are
//! adopted; feed inputs with [`Successor::handle_event`]; drain
//! [`Successor::poll_action`]; sleep until [`Successor::poll_timeout`]
//! and call [`Successor::handle_timeout`]. After
//! [`SuccessorAction::BecomeIncumbent`] the driver continues with an
//! [`Incumbent`](super::incumbent::Incumbent) on the same session.
//!
//! N holds the listeners from spawn but accepts only after Begin (O has
//! sealed by then); it runs the application's health check and reports
//! Ready. It is committed by Commit, or told to give up by Abort: then it
//! stops accepting, finishes its open connections and exits.

use std::collections::VecDeque;
use std::time::Duration;

use super::id::{HandoffId, PeerState, Role, Token};
use super::session::{AppEvent, Attach, SessionId};
use super::wire::{Frame, Hello, PROTO_MAX, PROTO_MIN};
use crate::env::{Instant, Pid};

/// Timings of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessorConfig {
    /// No Begin within this after spawn: exit (the coordinator gave up).
    pub begin_deadline: Duration,
    /// After Abort, how long open connections get before N exits.
    pub abort_grace: Duration,
}

impl Default for SuccessorConfig {
    fn default() -> Self {
        SuccessorConfig { begin_deadline: Duration::from_secs(600), abort_grace: Duration::from_secs(5) }
    }
}

/// Where N is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SuccessorPhase {
    /// Holds the listeners, does not accept; waits for Begin.
    Waiting,
    /// Accepts; its health check runs.
    Begun,
    /// Reported Ready; waits for Commit or Abort.
    Ready,
    /// Committed: the driver continues as the incumbent.
    Committed,
    /// Gave up: finishing its connections before it exits.
    Exiting,
}

/// What N learns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuccessorEvent {
    /// The coordinator connected (a newer session replaces an older one).
    SessionOpened(SessionId),
    /// A frame arrived on a session.
    Frame(SessionId, Frame),
    /// A session ended.
    SessionClosed(SessionId),
    /// The application's health check returned.
    Health {
        /// It passed.
        healthz_ok: bool,
        /// Revisions the application serves.
        revisions: Vec<u64>,
    },
}

/// What the driver does for N.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuccessorAction {
    /// Write a frame (Hello goes with dups of the listeners attached).
    Send(SessionId, Frame),
    /// Close a session.
    CloseSession(SessionId),
    /// Start the accept loops.
    StartAccepting,
    /// Stop the accept loops.
    StopAccepting,
    /// Run the application's health check, then report Health.
    CheckHealth,
    /// Stop the health check if it still runs.
    CancelHealth,
    /// Continue as the incumbent on the current session.
    BecomeIncumbent(Attach),
    /// Wait for open connections (at most `grace`), then exit with `code`.
    Exit {
        /// Longest wait.
        grace: Duration,
        /// Exit code.
        code: i32,
    },
    /// Tell the application.
    Notify(AppEvent),
    /// A named crash point.
    CrashPoint(&'static str),
}

/// Exit code of a successor that never got Begin.
pub const EXIT_NEVER_BEGUN: i32 = 75;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    Begin,
    Commit,
    Abort,
    Unexpected(&'static str),
    SessionLost,
    Health(bool, Vec<u64>),
    Timer,
}

/// The successor.
#[derive(Debug)]
pub struct Successor {
    config: SuccessorConfig,
    phase: SuccessorPhase,
    id: HandoffId,
    me: (Pid, Token),
    listeners: Vec<String>,
    attach: Attach,
    begin_by: Instant,
    ready: Option<Frame>,
    actions: VecDeque<SuccessorAction>,
    stale_frames_accepted: bool,
}

impl Successor {
    /// N of handoff `id`, spawned at `now` holding `listeners`.
    /// `stale_frames_accepted` is the mutant `handoff-stale-frame-accepted`.
    pub fn new(
        now: Instant,
        config: SuccessorConfig,
        id: HandoffId,
        me: (Pid, Token),
        listeners: Vec<String>,
        stale_frames_accepted: bool,
    ) -> Self {
        let mut n = Successor {
            config,
            phase: SuccessorPhase::Waiting,
            id,
            me,
            listeners,
            attach: Attach::default(),
            begin_by: now + config.begin_deadline,
            ready: None,
            actions: VecDeque::new(),
            stale_frames_accepted,
        };
        n.actions.push_back(SuccessorAction::CrashPoint("handoff.n.after_listeners_adopted"));
        n
    }

    /// Where N is.
    pub fn phase(&self) -> SuccessorPhase {
        self.phase
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<SuccessorAction> {
        self.actions.pop_front()
    }

    /// When to call [`Successor::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        (self.phase == SuccessorPhase::Waiting).then_some(self.begin_by)
    }

    /// Timers due at `now` fire.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|t| t <= now) {
            self.step(Input::Timer);
        }
    }

    fn state(&self) -> PeerState {
        match (self.phase, &self.ready) {
            (SuccessorPhase::Waiting, _) => PeerState::Waiting,
            (SuccessorPhase::Begun, _) => PeerState::Begun,
            (SuccessorPhase::Ready, Some(Frame::Ready { healthz_ok: false, .. })) => PeerState::ReadyUnhealthy,
            (SuccessorPhase::Ready, _) => PeerState::Ready,
            (SuccessorPhase::Committed, _) => PeerState::Serving,
            (SuccessorPhase::Exiting, _) => PeerState::Exiting,
        }
    }

    /// Feeds one event.
    pub fn handle_event(&mut self, _now: Instant, event: SuccessorEvent) {
        let input = match event {
            SuccessorEvent::SessionOpened(s) => {
                if let Some(old) = self.attach.open(s) {
                    self.actions.push_back(SuccessorAction::CloseSession(old));
                }
                let hello = Hello {
                    role: Role::Successor,
                    pid: self.me.0,
                    token: self.me.1,
                    proto_min: PROTO_MIN,
                    proto_max: PROTO_MAX,
                    state: self.state(),
                    handoff: self.id,
                    listeners: self.listeners.clone(),
                };
                self.actions.push_back(SuccessorAction::Send(s, Frame::Hello(hello)));
                return;
            }
            SuccessorEvent::SessionClosed(s) => {
                if !self.attach.close(s) {
                    return;
                }
                Input::SessionLost
            }
            SuccessorEvent::Frame(s, frame) => {
                match self.attach.filter(s, frame, self.id, self.stale_frames_accepted) {
                    Ok(Some(Frame::Begin { .. })) => Input::Begin,
                    Ok(Some(Frame::Commit { .. })) => Input::Commit,
                    Ok(Some(Frame::Abort { .. })) => Input::Abort,
                    Ok(Some(Frame::Heartbeat { id })) => {
                        self.send(Frame::Heartbeat { id });
                        return;
                    }
                    Ok(Some(other)) => Input::Unexpected(other.name()),
                    Ok(None) => {
                        if self.attach.take_fresh_ack() {
                            self.actions.push_back(SuccessorAction::Send(s, Frame::Heartbeat { id: self.id }));
                            self.actions.push_back(SuccessorAction::CrashPoint("handoff.n.after_hello"));
                            // A restarted coordinator learns readiness again.
                            if let Some(r) = self.ready.clone().filter(|_| self.phase == SuccessorPhase::Ready) {
                                self.send(r);
                            }
                        }
                        return;
                    }
                    Err(stale) => {
                        self.actions.push_back(SuccessorAction::Notify(stale));
                        return;
                    }
                }
            }
            SuccessorEvent::Health { healthz_ok, revisions } => Input::Health(healthz_ok, revisions),
        };
        self.step(input);
    }

    fn send(&mut self, frame: Frame) {
        if let Some(s) = self.attach.current() {
            self.actions.push_back(SuccessorAction::Send(s, frame));
        }
    }

    fn act(&mut self, a: SuccessorAction) {
        self.actions.push_back(a);
    }

    fn give_up(&mut self, accepting: bool, code: i32) {
        self.phase = SuccessorPhase::Exiting;
        self.act(SuccessorAction::CancelHealth);
        if accepting {
            self.act(SuccessorAction::StopAccepting);
        }
        self.act(SuccessorAction::Notify(AppEvent::Aborted(self.id)));
        self.act(SuccessorAction::Exit { grace: self.config.abort_grace, code });
    }

    fn step(&mut self, input: Input) {
        use Input as I;
        use SuccessorPhase as P;
        let id = self.id;
        match (self.phase, input) {
            (P::Waiting, I::Begin) => {
                self.phase = P::Begun;
                self.act(SuccessorAction::CrashPoint("handoff.n.after_begin_recv"));
                self.act(SuccessorAction::StartAccepting);
                self.act(SuccessorAction::Notify(AppEvent::Begun(id)));
                self.act(SuccessorAction::CheckHealth);
            }
            (P::Begun, I::Health(healthz_ok, revisions)) => {
                self.phase = P::Ready;
                let ready = Frame::Ready { id, listening_on: self.listeners.clone(), healthz_ok, revisions };
                self.ready = Some(ready.clone());
                self.send(ready);
                self.act(SuccessorAction::Notify(AppEvent::Ready { id, healthz_ok }));
                self.act(SuccessorAction::CrashPoint("handoff.n.after_ready_sent"));
            }
            // A coordinator that decided to commit (journaled) may say so
            // before it saw Ready again after its own restart.
            (P::Begun | P::Ready, I::Commit) => {
                self.phase = P::Committed;
                self.act(SuccessorAction::CancelHealth);
                self.act(SuccessorAction::CrashPoint("handoff.n.after_commit_recv"));
                self.act(SuccessorAction::Notify(AppEvent::Committed(id)));
                self.act(SuccessorAction::BecomeIncumbent(self.attach));
            }
            (P::Waiting, I::Abort) => self.give_up(false, 0),
            (P::Begun | P::Ready, I::Abort) => self.give_up(true, 0),
            (P::Waiting, I::Timer) => {
                tracing::warn!(handoff = %id, "no Begin before the deadline; exiting");
                self.give_up(false, EXIT_NEVER_BEGUN);
            }
            (P::Waiting, I::Commit) | (P::Begun | P::Ready | P::Committed | P::Exiting, I::Begin) => {
                tracing::warn!(handoff = %id, phase = ?self.phase, "frame not expected in this phase; ignored");
            }
            (P::Committed | P::Exiting, I::Commit | I::Abort)
            | (P::Waiting | P::Ready | P::Committed | P::Exiting, I::Health(..))
            | (P::Waiting | P::Begun | P::Ready | P::Committed | P::Exiting, I::SessionLost)
            | (P::Begun | P::Ready | P::Committed | P::Exiting, I::Timer) => {}
            (P::Waiting | P::Begun | P::Ready | P::Committed | P::Exiting, I::Unexpected(name)) => {
                tracing::warn!(handoff = %id, frame = name, "frame N never handles; ignored");
            }
        }
    }
}
