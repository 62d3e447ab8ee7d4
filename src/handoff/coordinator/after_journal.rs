//! What S does once a journal record is durable (or could not be
//! written): each step of the path in `step.rs` resumes here, after its
//! record, so nothing is said to a peer before the disk holds it.

use std::time::Duration;

use super::machine::{After, Coordinator};
use super::peers::Gen;
use super::types::{CoordinatorAction as A, CoordinatorPhase as P, GenSpec, HandoffError, Outcome};
use crate::env::Instant;
use crate::handoff::id::{HandoffId, Role, Token};
use crate::handoff::journal::JournalPhase;
use crate::handoff::wire::Frame;

impl Coordinator {
    pub(super) fn journal_ok(&mut self, now: Instant) {
        let Some((rec, after)) = self.writing.take() else { return };
        self.journal = Some(rec);
        if std::mem::take(&mut self.recovering) {
            self.actions.push_back(A::CrashPoint("handoff.s.recover.after_decision"));
        }
        self.journal_ok_as(now, after);
    }

    pub(super) fn journal_ok_as(&mut self, now: Instant, after: After) {
        match after {
            After::StartJournaled => {
                if let Some(g) = self.incumbent.as_ref() {
                    let spec = GenSpec::of(&g.rec);
                    self.actions.push_back(A::Spawn {
                        token: g.token(),
                        role: Role::Incumbent,
                        spec,
                        id: HandoffId::NONE,
                    });
                }
                self.deadline = Some(now + self.cfg.hello_timeout);
            }
            After::StartDone => {
                self.phase = P::Idle;
                self.restart_pending = false;
                tracing::info!(incumbent = ?self.incumbent(), "incumbent serves");
            }
            After::Leased => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_lease"));
                let id = self.current_id();
                self.actions.push_back(A::Send(self.o_token(), Frame::Heartbeat { id }));
                self.phase = P::Probing;
                self.deadline = Some(now + self.cfg.hello_timeout);
            }
            After::Prepared => {
                let id = self.current_id();
                let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                let left = self.handoff.as_ref().map_or(self.cfg.deadline, |h| (h.started + self.cfg.deadline) - now);
                let prepare =
                    Frame::PrepareHandoff { id, deadline_ms: ms(left), drain_grace_ms: ms(self.cfg.drain_grace) };
                self.actions.push_back(A::Send(self.o_token(), prepare));
                if let Some(h) = self.handoff.as_mut() {
                    h.o_prepared = true;
                }
                self.actions.push_back(A::CrashPoint("handoff.s.after_prepare_sent"));
                self.phase = P::Draining;
                self.deadline = Some(now + self.cfg.drain_grace + self.cfg.liveness);
            }
            After::Sealed => {
                let id = self.current_id();
                let n_waiting = self
                    .successor
                    .as_ref()
                    .and_then(Gen::state)
                    .is_none_or(|s| s == crate::handoff::id::PeerState::Waiting);
                if n_waiting {
                    let t = self.successor.as_ref().map_or(Token(0), Gen::token);
                    self.actions.push_back(A::Send(t, Frame::Begin { id }));
                    self.actions.push_back(A::CrashPoint("handoff.s.after_begin_sent"));
                }
                self.phase = P::Beginning;
                self.decide_ready(now);
            }
            After::Committing => {
                let id = self.current_id();
                let n = self.successor.as_ref().filter(|g| !g.gone()).map(Gen::token);
                if let Some(t) = n {
                    self.actions.push_back(A::Send(t, Frame::Commit { id }));
                }
                if self.incumbent.as_ref().is_some_and(|g| !g.gone()) {
                    self.actions.push_back(A::Send(self.o_token(), Frame::Commit { id }));
                }
                self.actions.push_back(A::CrashPoint("handoff.s.after_commit_sent"));
                // From here on the journal names N as the incumbent.
                let rec = self.idle_record_of_successor();
                self.write(rec, After::CommitDone);
            }
            After::CommitDone => {
                self.actions.push_back(A::CrashPoint("handoff.s.after_journal_clear"));
                let old = self.incumbent.take();
                self.incumbent = self.successor.take();
                if let Some(o) = old {
                    if o.gone() {
                        self.actions.push_back(A::Forget(o.token()));
                    } else {
                        self.retiring.insert(o.token(), (now + self.cfg.retire_grace, false));
                    }
                }
                let (id, pid) = (self.current_id(), self.incumbent.as_ref().and_then(|g| g.rec.pid).unwrap_or(0));
                self.reply(Ok(Outcome::Committed { id, pid }));
                self.handoff = None;
                self.phase = P::Idle;
                tracing::info!(handoff = %id, pid, "handoff committed");
                if self.incumbent.as_ref().is_none_or(Gen::gone) {
                    self.restart_after_pause(now);
                }
            }
            After::Aborting => {
                let (id, reason) =
                    self.handoff.as_ref().map_or((HandoffId::NONE, String::new()), |h| (h.id, h.reason.clone()));
                match self.successor.as_ref().filter(|g| !g.gone()) {
                    Some(n) => {
                        let t = n.token();
                        if n.attached() {
                            self.actions.push_back(A::Send(t, Frame::Abort { id, reason }));
                            self.actions.push_back(A::CrashPoint("handoff.s.after_abort_sent"));
                        } else if n.handle {
                            self.actions.push_back(A::Kill(t));
                        }
                        if n.handle {
                            self.deadline = Some(now + self.cfg.abort_grace);
                        } else {
                            self.successor_stopped(now);
                        }
                    }
                    None => self.successor_stopped(now),
                }
            }
            After::AbortDone => {
                let (id, reason) =
                    self.handoff.as_ref().map_or((HandoffId::NONE, String::new()), |h| (h.id, h.reason.clone()));
                self.reply(Ok(Outcome::Aborted { id, reason }));
                self.handoff = None;
                self.phase = P::Idle;
            }
        }
    }

    pub(super) fn journal_failed(&mut self, now: Instant, e: String) {
        let Some((_, after)) = self.writing.take() else { return };
        tracing::error!(error = %e, step = ?after, "journal write failed");
        self.recovering = false;
        match after {
            After::StartJournaled | After::StartDone => self.restart_later(now),
            After::Leased => {
                self.reply(Err(HandoffError::Journal(e)));
                if let Some(n) = self.successor.take() {
                    self.actions.push_back(A::Forget(n.token()));
                }
                // The lease may have reached the disk (only the directory
                // fsync failed): give it back by journaling Idle again.
                self.phase = P::Aborting;
                self.retry_write = Some((self.record(JournalPhase::Idle), After::AbortDone));
                self.deadline = Some(now + self.cfg.retry);
            }
            After::Prepared | After::Sealed | After::Committing => {
                self.abort(now, format!("journal: {e}"), false);
            }
            // The decision stands: its effects are idempotent, so do them
            // and journal the outcome again later.
            After::Aborting => self.journal_ok_as(now, After::Aborting),
            After::CommitDone | After::AbortDone => {
                let rec = if after == After::CommitDone {
                    self.idle_record_of_successor()
                } else {
                    self.record(JournalPhase::Idle)
                };
                self.retry_write = Some((rec, after));
                self.deadline = Some(now + self.cfg.retry);
            }
        }
    }
}
