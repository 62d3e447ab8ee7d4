//! S, the coordinator, as a state machine (no I/O, no clock of its own).
//!
//! Call order: construct with [`Coordinator::new`] (it asks for the
//! journal first); feed inputs with [`Coordinator::handle_event`] (each
//! takes `now`); drain [`Coordinator::poll_action`] until `None`; sleep
//! until [`Coordinator::poll_timeout`] and call
//! [`Coordinator::handle_timeout`]. A [`CoordinatorAction::WriteJournal`]
//! must be answered with `JournalWritten` before other events: events that
//! arrive meanwhile are held and replayed in order after it.

use std::collections::{BTreeMap, VecDeque};

use super::peers::{Gen, Seen};
use super::types::{
    CoordinatorAction as A, CoordinatorBugs, CoordinatorConfig, CoordinatorEvent as E, CoordinatorPhase as P, GenSpec,
    HandoffError, Outcome, RequestId,
};
use crate::env::{Instant, Pid};
use crate::handoff::id::{HandoffId, Token};
use crate::handoff::journal::{GenRecord, JournalPhase, Record};
use crate::handoff::session::SessionId;
use crate::handoff::wire::Frame;

/// What a journal write was for: the step to take once it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    StartJournaled,
    StartDone,
    Leased,
    Prepared,
    Sealed,
    Committing,
    CommitDone,
    Aborting,
    AbortDone,
}

/// The handoff in progress.
#[derive(Debug, Clone)]
pub(super) struct Handoff {
    pub(super) id: HandoffId,
    pub(super) req: Option<RequestId>,
    pub(super) started: Instant,
    pub(super) o_prepared: bool,
    pub(super) o_sealed: bool,
    /// N's Ready: its `healthz_ok`.
    pub(super) ready: Option<bool>,
    pub(super) reason: String,
    /// Mutant `handoff-seal-timeout-no-resume` applies to this abort.
    pub(super) no_resume: bool,
}

/// Inputs after session bookkeeping, for the one match in `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Input {
    Loaded(Result<Option<Record>, String>),
    JournalOk,
    JournalFailed(String),
    Request(RequestId, GenSpec),
    Spawned(Token, Result<Pid, String>),
    Attached(Token),
    Lost(Token),
    FromO(Frame),
    FromN(Frame),
    Exited(Token),
    Timer,
}

/// The coordinator.
#[derive(Debug)]
pub struct Coordinator {
    pub(super) cfg: CoordinatorConfig,
    pub(super) bugs: CoordinatorBugs,
    pub(super) first: GenSpec,
    pub(super) phase: P,
    pub(super) rng: u64,
    /// The last record known durable.
    pub(super) journal: Option<Record>,
    pub(super) writing: Option<(Record, After)>,
    pub(super) held: VecDeque<E>,
    pub(super) incumbent: Option<Gen>,
    pub(super) successor: Option<Gen>,
    pub(super) retiring: BTreeMap<Token, (Instant, bool)>,
    pub(super) handoff: Option<Handoff>,
    pub(super) deadline: Option<Instant>,
    /// Reconnect to the incumbent at this time (its session dropped).
    pub(super) reconnect_at: Option<Instant>,
    /// The next decision record written is recovery's.
    pub(super) recovering: bool,
    /// Abort sent SIGKILL to N already.
    pub(super) killed_successor: bool,
    /// Starting failed: the next timer starts the incumbent again.
    pub(super) restart_pending: bool,
    /// A journal write of an outcome to try again at the next timer.
    pub(super) retry_write: Option<(Record, After)>,
    pub(super) actions: VecDeque<A>,
}

impl Coordinator {
    /// A coordinator that starts `first` when it finds no journal; `seed`
    /// drives ids and tokens (from `env.random_u64()`).
    pub fn new(cfg: CoordinatorConfig, bugs: CoordinatorBugs, first: GenSpec, seed: u64) -> Self {
        let mut c = Coordinator {
            cfg,
            bugs,
            first,
            phase: P::Booting,
            rng: seed,
            journal: None,
            writing: None,
            held: VecDeque::new(),
            incumbent: None,
            successor: None,
            retiring: BTreeMap::new(),
            handoff: None,
            deadline: None,
            reconnect_at: None,
            recovering: false,
            killed_successor: false,
            restart_pending: false,
            retry_write: None,
            actions: VecDeque::new(),
        };
        c.actions.push_back(A::ReadJournal);
        c
    }

    /// Where S is.
    pub fn phase(&self) -> P {
        self.phase
    }

    /// The handoff in progress, if any.
    pub fn handoff_id(&self) -> Option<HandoffId> {
        self.handoff.as_ref().map(|h| h.id)
    }

    /// The incumbent's token and pid, once known.
    pub fn incumbent(&self) -> Option<(Token, Option<Pid>)> {
        self.incumbent.as_ref().map(|g| (g.token(), g.rec.pid))
    }

    /// The last record known durable.
    pub fn journal(&self) -> Option<&Record> {
        self.journal.as_ref()
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<A> {
        self.actions.pop_front()
    }

    /// When to call [`Coordinator::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retire = self.retiring.values().map(|(t, _)| *t).min();
        [self.deadline, self.reconnect_at, retire].into_iter().flatten().min()
    }

    /// Timers due at `now` fire.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.writing.is_some() {
            return;
        }
        let due: Vec<Token> = self.retiring.iter().filter(|(_, (t, _))| *t <= now).map(|(k, _)| *k).collect();
        for t in due {
            if let Some((at, killed)) = self.retiring.get_mut(&t) {
                if *killed {
                    tracing::error!(token = %t, "retired generation survives SIGKILL; forgetting it");
                    self.retiring.remove(&t);
                    self.actions.push_back(A::Forget(t));
                } else {
                    tracing::warn!(token = %t, "retired generation did not exit in time; killing it");
                    *at = now + self.cfg.retire_grace;
                    *killed = true;
                    self.actions.push_back(A::Kill(t));
                }
            }
        }
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            if let Some(g) = self.incumbent.as_mut().filter(|g| g.session.is_none()) {
                g.reconnecting();
                let t = g.token();
                self.actions.push_back(A::Connect(t));
            }
        }
        if self.deadline.is_some_and(|t| t <= now) {
            self.deadline = None;
            self.step(now, Input::Timer);
        }
    }

    /// Feeds one event.
    pub fn handle_event(&mut self, now: Instant, event: E) {
        if self.writing.is_some() && !matches!(event, E::JournalWritten(_)) {
            self.held.push_back(event);
            return;
        }
        self.event(now, event);
        while self.writing.is_none() {
            let Some(e) = self.held.pop_front() else { break };
            self.event(now, e);
        }
    }

    fn event(&mut self, now: Instant, event: E) {
        let input = match event {
            E::JournalLoaded(r) => Input::Loaded(r),
            E::JournalWritten(Ok(())) => Input::JournalOk,
            E::JournalWritten(Err(e)) => Input::JournalFailed(e),
            E::Request(req, spec) => Input::Request(req, spec),
            E::Spawned(t, r) => Input::Spawned(t, r),
            E::Exited(t) if self.retiring.remove(&t).is_some() => {
                self.actions.push_back(A::Forget(t));
                return;
            }
            E::Exited(t) => Input::Exited(t),
            E::SessionOpened(t, s) => {
                if let Some(g) = self.gen_mut(t) {
                    g.session = Some(s);
                }
                return;
            }
            E::ConnectFailed(t, e) => {
                tracing::info!(token = %t, error = %e, "nothing answers on the generation's handoff socket");
                let Some(g) = self.gen_mut(t) else { return };
                if !(g.session_down(None) && g.gone()) {
                    return;
                }
                Input::Lost(t)
            }
            E::SessionClosed(t, s) => {
                let Some(g) = self.gen_mut(t) else { return };
                if !g.session_down(Some(s)) {
                    return;
                }
                if !g.gone() {
                    self.session_dropped(now, t);
                    return;
                }
                Input::Lost(t)
            }
            E::Adopted(t, r) => {
                let current = self.current_id();
                let Some(g) = self.gen_mut(t) else { return };
                match r.ok().and_then(|()| g.adopted(current)) {
                    Some(ack) => {
                        self.actions.push_back(A::Send(t, ack));
                        return;
                    }
                    None => {
                        g.session_down(None);
                        Input::Lost(t)
                    }
                }
            }
            E::Frame(t, s, frame) => match self.frame(t, s, frame) {
                Some(i) => i,
                None => return,
            },
        };
        self.step(now, input);
    }

    fn frame(&mut self, t: Token, s: SessionId, frame: Frame) -> Option<Input> {
        let current = self.current_id();
        let strict = !matches!(self.phase, P::Recovering);
        let is_o = self.incumbent.as_ref().is_some_and(|g| g.token() == t);
        let g = self.gen_mut(t)?;
        match g.on_frame(s, frame, current, strict) {
            Seen::Nothing => None,
            Seen::Ack(f) => {
                self.actions.push_back(A::Send(t, f));
                None
            }
            Seen::Adopt(pid) => {
                self.actions.push_back(A::Adopt { token: t, pid });
                None
            }
            Seen::Attached => Some(Input::Attached(t)),
            Seen::Refused(why) => {
                tracing::warn!(token = %t, why, "generation failed the Hello check");
                g.session_down(None);
                Some(Input::Lost(t))
            }
            Seen::Frame(f) => {
                if let Some(id) = f.id()
                    && id != current
                    && !self.bugs.stale_frames_accepted
                {
                    tracing::warn!(token = %t, frame = f.name(), frame_handoff = %id, handoff = %current,
                        "frame of another handoff ignored");
                    return None;
                }
                Some(if is_o { Input::FromO(f) } else { Input::FromN(f) })
            }
        }
    }

    pub(super) fn current_id(&self) -> HandoffId {
        self.handoff.as_ref().map_or(HandoffId::NONE, |h| h.id)
    }

    pub(super) fn gen_mut(&mut self, t: Token) -> Option<&mut Gen> {
        [self.incumbent.as_mut(), self.successor.as_mut()].into_iter().flatten().find(|g| g.token() == t)
    }

    pub(super) fn is_o(&self, t: Token) -> bool {
        self.incumbent.as_ref().is_some_and(|g| g.token() == t)
    }

    pub(super) fn is_n(&self, t: Token) -> bool {
        self.successor.as_ref().is_some_and(|g| g.token() == t)
    }

    pub(super) fn fresh(&mut self) -> u64 {
        // Never 0 (0 is HandoffId::NONE).
        loop {
            let z = crate::env::splitmix64(&mut self.rng);
            if z != 0 {
                return z;
            }
        }
    }

    /// Journals `phase` then goes on with `after`; a journal already at
    /// `phase` (a restarted S finishing what it recorded) is not written
    /// again.
    pub(super) fn journal_phase(&mut self, now: Instant, phase: JournalPhase, after: After) {
        if self.journal.as_ref().is_some_and(|r| r.phase == phase) {
            self.journal_ok_as(now, after);
        } else {
            let rec = self.record(phase);
            self.write(rec, after);
        }
    }

    pub(super) fn write(&mut self, rec: Record, after: After) {
        self.actions.push_back(A::WriteJournal(rec.clone()));
        self.writing = Some((rec, after));
    }

    pub(super) fn record(&self, phase: JournalPhase) -> Record {
        let empty = || GenRecord { token: Token(0), pid: None, program: String::new(), args: Vec::new() };
        Record {
            phase,
            id: if phase == JournalPhase::Idle { HandoffId::NONE } else { self.current_id() },
            incumbent: self.incumbent.as_ref().map_or_else(empty, |g| g.rec.clone()),
            successor: if phase == JournalPhase::Idle { None } else { self.successor.as_ref().map(|g| g.rec.clone()) },
            reason: self.handoff.as_ref().map(|h| h.reason.clone()).unwrap_or_default(),
        }
    }

    pub(super) fn reply(&mut self, r: Result<Outcome, HandoffError>) {
        if let Some(req) = self.handoff.as_mut().and_then(|h| h.req.take()) {
            self.actions.push_back(A::Reply(req, r));
        }
    }

    /// A request S cannot take now.
    pub(super) fn refuse(&mut self, req: RequestId) {
        let err = match (&self.handoff, &self.journal) {
            (Some(h), Some(r)) if self.phase == P::Recovering => {
                HandoffError::InProgress { id: h.id, phase: r.phase.name() }
            }
            (Some(h), _) => HandoffError::InProgress { id: h.id, phase: self.phase.name() },
            (None, Some(r)) if r.in_progress() => HandoffError::InProgress { id: r.id, phase: r.phase.name() },
            _ => HandoffError::Unavailable { phase: self.phase.name() },
        };
        tracing::info!(error = %err, "handoff request refused");
        self.actions.push_back(A::Reply(req, Err(err)));
    }

    fn session_dropped(&mut self, now: Instant, t: Token) {
        if self.is_o(t) && matches!(self.phase, P::Idle) {
            self.reconnect_at = Some(now + self.cfg.retry);
        }
    }
}
