//! A restarted S converges from its journal: it re-identifies the
//! generations the record names (token and pid proven over their handoff
//! sockets, see `peers.rs`), then finishes the handoff the record
//! describes so that exactly one generation serves:
//!
//! | journal | O | N | decision |
//! |---|---|---|---|
//! | Idle | alive | - | serve on |
//! | Idle | gone | - | start O's program again |
//! | Started, Prepared | any | any | abort (resume O, or restart it) unless O reports Sealed and N lives: then go on as from Sealed |
//! | Sealed | any | alive | Begin N (unless it began), wait for Ready, commit if healthy |
//! | Sealed | any | gone | abort |
//! | Committing | any | any | commit again (idempotent); a gone N is started again from its program |
//! | Aborting | any | any | abort again (idempotent) |

use super::machine::{After, Coordinator, Handoff};
use super::peers::{Gen, Status};
use super::types::{CoordinatorAction as A, CoordinatorPhase as P};
use crate::env::Instant;
use crate::handoff::id::{PeerState, Role};
use crate::handoff::journal::{JournalPhase, Record};

impl Coordinator {
    /// The journal held `rec`: reach every generation it names.
    pub(super) fn recover(&mut self, now: Instant, rec: Record) {
        self.actions.push_back(A::CrashPoint("handoff.s.recover.after_journal_read"));
        tracing::warn!(phase = %rec.phase, handoff = %rec.id, "journal found; recovering");
        self.incumbent = Some(Gen::new(rec.incumbent.clone(), Role::Incumbent, false));
        self.successor = rec.successor.clone().map(|g| Gen::new(g, Role::Successor, false));
        if rec.in_progress() {
            self.handoff = Some(Handoff {
                id: rec.id,
                req: None,
                started: now,
                o_prepared: rec.phase >= JournalPhase::Prepared,
                o_sealed: matches!(rec.phase, JournalPhase::Sealed | JournalPhase::Committing),
                ready: None,
                reason: rec.reason.clone(),
                no_resume: false,
            });
        }
        self.journal = Some(rec);
        self.phase = P::Recovering;
        for g in [self.incumbent.as_mut(), self.successor.as_mut()].into_iter().flatten() {
            if g.token().0 == 0 {
                g.status = Status::Gone;
            } else {
                self.actions.push_back(A::Connect(g.token()));
            }
        }
        self.deadline = Some(now + self.cfg.hello_timeout);
        self.resolve(now, false);
    }

    /// A generation was reached or found gone; decide once all are known
    /// (or the hello deadline passed: the unknown ones count as gone).
    pub(super) fn resolve(&mut self, now: Instant, timed_out: bool) {
        let gens = || [self.incumbent.as_ref(), self.successor.as_ref()].into_iter().flatten();
        if gens().any(|g| g.status == Status::Unknown) && !timed_out {
            return;
        }
        for g in [self.incumbent.as_mut(), self.successor.as_mut()].into_iter().flatten() {
            if g.status == Status::Unknown {
                tracing::warn!(token = %g.token(), "generation did not prove who it is in time; counted as gone");
                g.status = Status::Gone;
            }
        }
        self.deadline = None;
        self.actions.push_back(A::CrashPoint("handoff.s.recover.after_reidentify"));
        self.recovering = true;
        self.decide(now);
        if self.writing.is_none() && std::mem::take(&mut self.recovering) {
            self.actions.push_back(A::CrashPoint("handoff.s.recover.after_decision"));
        }
    }

    fn decide(&mut self, now: Instant) {
        let Some(rec) = self.journal.clone() else { return };
        let o_alive = self.incumbent.as_ref().is_some_and(Gen::attached);
        let o_state = self.incumbent.as_ref().and_then(Gen::state);
        let n_alive = self.successor.as_ref().is_some_and(Gen::attached);
        let n_state = self.successor.as_ref().and_then(Gen::state);
        tracing::info!(phase = %rec.phase, o_alive, ?o_state, n_alive, ?n_state, "recovery decides");
        match rec.phase {
            JournalPhase::Idle if o_alive => {
                self.phase = P::Idle;
                self.successor = None;
            }
            JournalPhase::Idle => self.restart_after_pause(now),
            JournalPhase::Started | JournalPhase::Prepared | JournalPhase::Sealed => {
                let sealed = rec.phase == JournalPhase::Sealed || o_state == Some(PeerState::Sealed);
                if n_alive && sealed {
                    if let Some(h) = self.handoff.as_mut() {
                        h.o_prepared = true;
                        h.o_sealed = true;
                        h.ready = h.ready.or(match n_state {
                            Some(PeerState::Ready) => Some(true),
                            Some(PeerState::ReadyUnhealthy) => Some(false),
                            _ => None,
                        });
                    }
                    self.phase = P::Beginning;
                    self.journal_phase(now, JournalPhase::Sealed, After::Sealed);
                } else {
                    self.abort(now, "coordinator restarted before the successor began".into(), false);
                }
            }
            JournalPhase::Committing => self.commit(now),
            JournalPhase::Aborting => {
                let reason = rec.reason.clone();
                self.abort(now, reason, false);
            }
        }
    }
}
