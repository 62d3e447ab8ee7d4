//! S's transitions: one exhaustive match of (phase, input).
//!
//! The happy path: Idle -Request-> Leasing (journal Started) -> Probing
//! (Heartbeat to O, echoed) -> Spawning (N spawned, Hello) -> Preparing
//! (journal Prepared) -> Draining (PrepareHandoff sent) -> Sealing
//! (SealRequest sent) -> Beginning (journal Sealed, Begin sent) ->
//! Committing (journal Committing, Commit to N and O, journal Idle{N}) ->
//! Idle. Any failure before Committing aborts: journal Aborting, Abort to
//! N, wait for N to exit (SIGKILL after the grace), then ResumeAfterAbort
//! to O, or a fresh process of O's program if O is gone; journal Idle.

use super::machine::{After, Coordinator, Handoff, Input};
use super::peers::{Gen, Status};
use super::types::{CoordinatorAction as A, CoordinatorPhase as P, GenSpec, Outcome};
use crate::env::Instant;
use crate::handoff::id::{HandoffId, Role, Token};
use crate::handoff::journal::JournalPhase;
use crate::handoff::wire::Frame;

impl Coordinator {
    pub(super) fn step(&mut self, now: Instant, input: Input) {
        use Input as I;
        match (self.phase, input) {
            (
                P::Booting
                | P::Recovering
                | P::Starting
                | P::Idle
                | P::Leasing
                | P::Probing
                | P::Spawning
                | P::Preparing
                | P::Draining
                | P::Sealing
                | P::Beginning
                | P::Committing
                | P::Aborting,
                I::JournalOk,
            ) => self.journal_ok(now),
            (
                P::Booting
                | P::Recovering
                | P::Starting
                | P::Idle
                | P::Leasing
                | P::Probing
                | P::Spawning
                | P::Preparing
                | P::Draining
                | P::Sealing
                | P::Beginning
                | P::Committing
                | P::Aborting,
                I::JournalFailed(e),
            ) => self.journal_failed(now, e),
            (P::Booting, I::Loaded(Ok(Some(rec)))) if !self.bugs.journal_ignored => self.recover(now, rec),
            (P::Booting, I::Loaded(Ok(_))) => {
                let spec = self.first.clone();
                self.start_generation(spec);
            }
            (P::Booting, I::Loaded(Err(e))) => {
                tracing::error!(error = %e, "cannot read the journal; retrying");
                self.deadline = Some(now + self.cfg.retry);
            }
            (P::Booting, I::Timer) => self.actions.push_back(A::ReadJournal),
            (P::Recovering, I::Attached(_) | I::Lost(_)) => self.resolve(now, false),
            (P::Recovering, I::Exited(t)) => {
                self.mark_gone(t);
                self.resolve(now, false);
            }
            (P::Recovering, I::Timer) => self.resolve(now, true),
            (P::Recovering, I::FromN(Frame::Ready { healthz_ok, .. })) => {
                if let Some(h) = self.handoff.as_mut() {
                    h.ready = Some(healthz_ok);
                }
            }
            (P::Starting, I::Spawned(t, Ok(pid))) if self.is_o(t) => {
                if let Some(g) = self.incumbent.as_mut() {
                    g.rec.pid = Some(pid);
                }
                self.actions.push_back(A::Connect(t));
                self.deadline = Some(now + self.cfg.hello_timeout);
            }
            (P::Starting, I::Attached(t)) if self.is_o(t) => {
                self.deadline = None;
                let rec = self.record(JournalPhase::Idle);
                self.write(rec, After::StartDone);
            }
            (P::Starting, I::Timer) if self.restart_pending => self.restart_incumbent(),
            (P::Starting, I::Timer) => self.restart_later(now),
            (P::Starting, I::Spawned(t, Err(_)) | I::Lost(t) | I::Exited(t)) if self.is_o(t) => self.restart_later(now),
            (P::Idle, I::Request(req, spec)) => self.begin(now, req, spec),
            (P::Idle, I::Exited(t)) if self.is_o(t) => {
                tracing::warn!(token = %t, "incumbent exited; starting its program again");
                self.mark_gone(t);
                self.restart_after_pause(now);
            }
            (P::Probing, I::FromO(Frame::Heartbeat { .. })) => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_o_hello"));
                self.phase = P::Spawning;
                if let (Some(n), Some(h)) = (self.successor.as_ref(), self.handoff.as_ref()) {
                    let (token, spec) = (n.token(), GenSpec::of(&n.rec));
                    self.actions.push_back(A::Spawn { token, role: Role::Successor, spec, id: h.id });
                }
                self.deadline = Some(now + self.cfg.hello_timeout);
            }
            (P::Spawning, I::Spawned(t, Err(e))) if self.is_n(t) => {
                self.abort(now, format!("cannot start the successor: {e}"), false);
            }
            (P::Spawning, I::Spawned(t, Ok(pid))) if self.is_n(t) => {
                if let Some(n) = self.successor.as_mut() {
                    n.rec.pid = Some(pid);
                }
                self.actions.push_back(A::CrashPoint("handoff.s.after_spawn_successor"));
                self.actions.push_back(A::Connect(t));
            }
            (P::Spawning, I::Attached(t)) if self.is_n(t) => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_n_hello"));
                self.phase = P::Preparing;
                self.deadline = None;
                let rec = self.record(JournalPhase::Prepared);
                self.write(rec, After::Prepared);
            }
            (P::Draining, I::FromO(Frame::Drained { .. })) => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_drained_recv"));
                let id = self.current_id();
                self.actions.push_back(A::Send(self.o_token(), Frame::SealRequest { id }));
                self.actions.push_back(A::CrashPoint("handoff.s.after_seal_request_sent"));
                self.phase = P::Sealing;
                self.seal_seen(now);
            }
            (P::Sealing, I::FromO(Frame::Heartbeat { .. } | Frame::SealProgress { .. })) => self.seal_seen(now),
            (P::Sealing, I::FromO(Frame::SealComplete { .. })) => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_seal_complete_recv"));
                if let Some(h) = self.handoff.as_mut() {
                    h.o_sealed = true;
                }
                self.phase = P::Beginning;
                self.deadline = None;
                let rec = self.record(JournalPhase::Sealed);
                self.write(rec, After::Sealed);
            }
            (P::Sealing, I::FromO(Frame::SealFailed { error, .. })) => {
                self.abort(now, format!("seal failed: {error}"), true);
            }
            (P::Sealing, I::Timer) => self.abort(now, "seal timed out".into(), true),
            (P::Beginning, I::FromN(Frame::Ready { healthz_ok, .. })) => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_ready_recv"));
                if let Some(h) = self.handoff.as_mut() {
                    h.ready = Some(healthz_ok);
                }
                self.decide_ready(now);
            }
            (
                P::Leasing | P::Probing | P::Spawning | P::Preparing | P::Draining | P::Sealing,
                I::FromO(Frame::Abort { reason, .. }),
            ) => {
                self.abort(now, format!("incumbent refused: {reason}"), false);
            }
            (P::Probing | P::Spawning | P::Draining | P::Beginning, I::Timer) => {
                let what = match self.phase {
                    P::Probing => "incumbent did not answer",
                    P::Spawning => "successor did not say Hello",
                    P::Draining => "drain timed out",
                    _ => "successor not ready in time",
                };
                self.abort(now, what.into(), false);
            }
            (
                P::Leasing | P::Probing | P::Spawning | P::Preparing | P::Draining | P::Sealing | P::Beginning,
                I::Exited(t) | I::Lost(t),
            ) if self.is_n(t) => {
                self.abort(now, "successor exited".into(), false);
            }
            (
                P::Leasing | P::Probing | P::Spawning | P::Preparing | P::Draining | P::Sealing | P::Beginning,
                I::Exited(t),
            ) if self.is_o(t) => self.incumbent_died(now, t),
            (P::Committing, I::Exited(t)) if self.is_n(t) => {
                tracing::warn!(token = %t, "committed successor exited before the commit was journaled");
                self.mark_gone(t);
            }
            (P::Aborting, I::Exited(t) | I::Lost(t)) if self.is_n(t) => self.successor_stopped(now),
            (P::Committing | P::Aborting, I::Timer) if self.retry_write.is_some() => {
                if let Some((rec, after)) = self.retry_write.take() {
                    self.write(rec, after);
                }
            }
            (P::Aborting, I::Timer) => {
                let t = self.successor.as_ref().map(Gen::token);
                match (t, self.killed_successor) {
                    (Some(t), false) => {
                        tracing::warn!(token = %t, "successor did not exit after Abort; killing it");
                        self.actions.push_back(A::Kill(t));
                        self.deadline = Some(now + self.cfg.abort_grace);
                        self.killed_successor = true;
                    }
                    _ => self.successor_stopped(now),
                }
            }
            (
                P::Booting
                | P::Starting
                | P::Idle
                | P::Leasing
                | P::Probing
                | P::Spawning
                | P::Preparing
                | P::Draining
                | P::Sealing
                | P::Beginning
                | P::Committing
                | P::Aborting,
                I::Exited(t),
            ) if self.is_o(t) || self.is_n(t) => self.mark_gone(t),
            (
                P::Booting
                | P::Recovering
                | P::Starting
                | P::Leasing
                | P::Probing
                | P::Spawning
                | P::Preparing
                | P::Draining
                | P::Sealing
                | P::Beginning
                | P::Committing
                | P::Aborting,
                I::Request(req, _),
            ) => self.refuse(req),
            (
                P::Booting
                | P::Recovering
                | P::Starting
                | P::Idle
                | P::Leasing
                | P::Probing
                | P::Spawning
                | P::Preparing
                | P::Draining
                | P::Sealing
                | P::Beginning
                | P::Committing
                | P::Aborting,
                I::Loaded(_) | I::Spawned(..) | I::Attached(_) | I::Lost(_) | I::Exited(_) | I::Timer,
            ) => {}
            (
                P::Booting
                | P::Recovering
                | P::Starting
                | P::Idle
                | P::Leasing
                | P::Probing
                | P::Spawning
                | P::Preparing
                | P::Draining
                | P::Sealing
                | P::Beginning
                | P::Committing
                | P::Aborting,
                I::FromO(f) | I::FromN(f),
            ) => {
                tracing::info!(phase = %self.phase, frame = f.name(), "frame not expected in this phase; ignored");
            }
        }
    }

    pub(super) fn o_token(&self) -> Token {
        self.incumbent.as_ref().map_or(Token(0), Gen::token)
    }

    pub(super) fn idle_record_of_successor(&self) -> crate::handoff::journal::Record {
        let mut r = self.record(JournalPhase::Idle);
        if let Some(n) = self.successor.as_ref() {
            r.incumbent = n.rec.clone();
        }
        r
    }

    fn seal_seen(&mut self, now: Instant) {
        let started = self.handoff.as_ref().map_or(now, |h| h.started);
        self.deadline = Some((started + self.cfg.deadline).min(now + self.cfg.liveness));
    }

    fn mark_gone(&mut self, t: Token) {
        if let Some(g) = self.gen_mut(t) {
            g.status = Status::Gone;
            g.session = None;
        }
    }

    /// Starts a handoff from the incumbent to `spec`.
    fn begin(&mut self, now: Instant, req: u64, spec: GenSpec) {
        let id = HandoffId(self.fresh());
        let token = Token(self.fresh());
        tracing::info!(handoff = %id, program = %spec.program, "handoff requested");
        self.handoff = Some(Handoff {
            id,
            req: Some(req),
            started: now,
            o_prepared: false,
            o_sealed: false,
            ready: None,
            reason: String::new(),
            no_resume: false,
        });
        let rec = spec.into_record(token);
        self.successor = Some(Gen::new(rec, Role::Successor, true));
        self.killed_successor = false;
        self.phase = P::Leasing;
        let rec = self.record(JournalPhase::Started);
        self.write(rec, After::Leased);
    }

    /// A fresh process of the incumbent's program, after it exited.
    pub(super) fn restart_incumbent(&mut self) {
        let spec = self.incumbent.as_ref().map_or_else(|| self.first.clone(), |g| GenSpec::of(&g.rec));
        self.start_generation(spec);
    }

    /// Journals a new incumbent (pid unknown yet), then spawns it.
    pub(super) fn start_generation(&mut self, spec: GenSpec) {
        if let Some(old) = self.incumbent.take() {
            self.actions.push_back(A::Forget(old.token()));
        }
        let token = Token(self.fresh());
        let rec = spec.into_record(token);
        self.incumbent = Some(Gen::new(rec, Role::Incumbent, true));
        self.phase = P::Starting;
        self.deadline = None;
        let rec = self.record(JournalPhase::Idle);
        self.write(rec, After::StartJournaled);
    }

    /// The incumbent is gone: its program starts again after a pause (a
    /// supervisor's backoff; clients wait in the backlog of S's copy).
    pub(super) fn restart_after_pause(&mut self, now: Instant) {
        self.phase = P::Starting;
        self.restart_pending = true;
        self.deadline = Some(now + self.cfg.retry);
    }

    pub(super) fn restart_later(&mut self, now: Instant) {
        if let Some(g) = self.incumbent.as_ref().filter(|g| g.handle && !g.gone()) {
            self.actions.push_back(A::Kill(g.token()));
        }
        tracing::warn!("starting the incumbent failed; retrying");
        self.restart_after_pause(now);
    }

    fn incumbent_died(&mut self, now: Instant, t: Token) {
        if self.bugs.incumbent_death_unhandled {
            tracing::warn!(token = %t, "incumbent exited during the handoff (not acted on)");
            return;
        }
        self.mark_gone(t);
        let sealed = self.handoff.as_ref().is_some_and(|h| h.o_sealed);
        if !sealed {
            tracing::warn!(token = %t, "incumbent exited before it sealed; aborting and restarting it");
            self.abort(now, "incumbent exited before it sealed".into(), false);
        } else {
            tracing::warn!(token = %t, "incumbent exited after it sealed; the successor may still commit");
        }
    }

    /// Gives the handoff up: journal Aborting, Abort to N, wait for N.
    pub(super) fn abort(&mut self, now: Instant, reason: String, seal_failure: bool) {
        tracing::warn!(handoff = %self.current_id(), reason, "aborting the handoff");
        let no_resume = seal_failure && self.bugs.seal_timeout_no_resume;
        if let Some(h) = self.handoff.as_mut() {
            h.reason = reason;
            h.no_resume = no_resume;
        }
        self.phase = P::Aborting;
        self.deadline = None;
        self.journal_phase(now, JournalPhase::Aborting, After::Aborting);
    }

    /// Commits N: journal Committing, then Commit to N and O.
    pub(super) fn commit(&mut self, now: Instant) {
        self.phase = P::Committing;
        self.deadline = None;
        self.journal_phase(now, JournalPhase::Committing, After::Committing);
    }

    pub(super) fn decide_ready(&mut self, now: Instant) {
        let ready = self.handoff.as_ref().and_then(|h| h.ready);
        match ready {
            Some(true) => self.commit(now),
            Some(false) if self.bugs.commit_unhealthy => self.commit(now),
            Some(false) => self.abort(now, "successor is not healthy".into(), false),
            None => self.deadline = Some(now + self.cfg.ready_timeout),
        }
    }

    /// N is gone (exited, or never reachable): O serves again.
    pub(super) fn successor_stopped(&mut self, now: Instant) {
        if let Some(n) = self.successor.take() {
            self.actions.push_back(A::Forget(n.token()));
        }
        self.deadline = None;
        let (prepared, no_resume) = self.handoff.as_ref().map_or((false, false), |h| (h.o_prepared, h.no_resume));
        let o_alive = self.incumbent.as_ref().is_some_and(|g| !g.gone());
        if !o_alive {
            let reason = self.handoff.as_ref().map(|h| h.reason.clone()).unwrap_or_default();
            let id = self.current_id();
            self.reply(Ok(Outcome::Aborted { id, reason }));
            self.handoff = None;
            self.restart_after_pause(now);
            return;
        }
        if prepared && !no_resume {
            let id = self.current_id();
            self.actions.push_back(A::Send(self.o_token(), Frame::ResumeAfterAbort { id }));
            self.actions.push_back(A::CrashPoint("handoff.s.after_resume_sent"));
        }
        let _ = now;
        let rec = self.record(JournalPhase::Idle);
        self.write(rec, After::AbortDone);
    }
}
