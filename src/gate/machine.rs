//! The gate as a pure state machine: one slot per registration key, `now`
//! passed in, no I/O.
//!
//! Call order for one recovery: [`Gate::claim`] with the event's mark; on
//! [`Claim::Granted`] run one register attempt before
//! [`Gate::ticket_deadline`], then [`Gate::complete`] with the ticket and
//! its outcome; a [`Completion::FollowUp`] hands over a new ticket to run
//! at once, a [`Completion::RetryAt`] says when to claim again.

use std::collections::BTreeMap;
use std::time::Duration;

use super::mark::Mark;
use crate::env::Instant;

/// Timings of the gate (the seed's constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// How long claims coalesce behind a claim (the seed's 30 s); also the
    /// slot a successful claim keeps under `gate-slot-kept-on-success`.
    pub coalesce_window: Duration,
    /// How long no claim is granted after a failed register (60 s).
    pub failure_backoff: Duration,
    /// Deadline of one register attempt (25 s), shorter than the window so
    /// a holder always completes before the seed's slot would have expired.
    pub register_deadline: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            coalesce_window: Duration::from_secs(30),
            failure_backoff: Duration::from_secs(60),
            register_deadline: Duration::from_secs(25),
        }
    }
}

/// A configuration that would let a slow register outlive the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("register deadline {deadline:?} must be shorter than the coalesce window {window:?}")]
pub struct DeadlineNotShorter {
    /// The register deadline asked for.
    pub deadline: Duration,
    /// The coalesce window asked for.
    pub window: Duration,
}

/// Historical bugs the driver switches on from `env.mutant(..)`; all off
/// in production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateBugs {
    /// `gate-no-watermark`: no straggler check at all.
    pub no_watermark: bool,
    /// `gate-stamp-on-failure`: a failed register moves the watermark.
    pub stamp_on_failure: bool,
    /// `gate-slot-kept-on-success`: success leaves the slot until the end
    /// of the window, suppressing a distinct later deletion.
    pub slot_kept_on_success: bool,
    /// `gate-no-follow-up`: a claim coalesced behind a holder is dropped.
    pub no_follow_up: bool,
}

/// The right to run one register attempt for a key; owned, so a stale
/// holder cannot release a newer claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The key it was granted for.
    pub key: String,
    /// Unique per gate, so completions of old tickets are recognised.
    pub id: u64,
    /// The newest event this attempt must cover.
    pub mark: Mark,
    /// When the attempt must have completed.
    pub deadline: Instant,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Run the attempt.
    Granted(Ticket),
    /// A holder is in flight; a follow-up was marked if this event may be
    /// newer than what the holder registers.
    Coalesced,
    /// A registration at or after this event already succeeded: a straggler.
    Covered,
    /// A failure (or, with a bug on, a kept slot) bars claims until `until`.
    BackingOff {
        /// When claims are granted again.
        until: Instant,
    },
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The registry applied the registration at `revision` (if it has them).
    Registered {
        /// The registry revision it was applied at.
        revision: Option<u64>,
    },
    /// The register failed or missed its deadline.
    Failed,
    /// The attempt was cancelled (shutdown): releases the slot only.
    Abandoned,
}

/// What the holder does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Nothing: the recovery is over.
    Done,
    /// The ticket was not the slot's holder; nothing changed.
    Stale,
    /// An event newer than the registration arrived meanwhile: run one
    /// more attempt with this ticket (the slot stays held).
    FollowUp(Ticket),
    /// The attempt failed: claim again with `mark` at `at`.
    RetryAt {
        /// End of the failure backoff.
        at: Instant,
        /// The events still to cover.
        mark: Mark,
    },
}

/// The seed's per-key maps (`reregisterNextAttempt`,
/// `reregisterLastCompletedAt`) plus the holder and the follow-up mark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Slot {
    holder: Option<(u64, Mark)>,
    /// No claim is granted before this (failure backoff).
    barred_until: Option<Instant>,
    /// The last successful registration.
    last_success: Option<Mark>,
    /// The newest event that arrived while claims could not be granted.
    follow_up: Option<Mark>,
}

/// Counts of claim outcomes, for coverage and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    /// Claims granted (first attempts, retries and follow-ups).
    pub granted: u64,
    /// Claims coalesced behind a holder.
    pub coalesced: u64,
    /// Stragglers that reached the gate after a covering success.
    pub covered: u64,
    /// Claims refused during a backoff.
    pub backing_off: u64,
    /// Follow-ups handed over at completion.
    pub follow_ups: u64,
}

/// The re-register gate for every key.
#[derive(Debug, Clone)]
pub struct Gate {
    config: GateConfig,
    bugs: GateBugs,
    slots: BTreeMap<String, Slot>,
    next_ticket: u64,
    stats: GateStats,
}

impl Gate {
    /// A gate with `config`; the register deadline must be shorter than the
    /// coalesce window.
    pub fn new(config: GateConfig) -> Result<Gate, DeadlineNotShorter> {
        if config.register_deadline >= config.coalesce_window {
            return Err(DeadlineNotShorter { deadline: config.register_deadline, window: config.coalesce_window });
        }
        Ok(Gate {
            config,
            bugs: GateBugs::default(),
            slots: BTreeMap::new(),
            next_ticket: 1,
            stats: GateStats::default(),
        })
    }

    /// Switches historical bugs on (the driver passes `env.mutant(..)`).
    pub fn with_bugs(mut self, bugs: GateBugs) -> Gate {
        self.bugs = bugs;
        self
    }

    /// The timings.
    pub fn config(&self) -> GateConfig {
        self.config
    }

    /// Claim outcome counts so far.
    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// Whether an attempt for `key` is in flight.
    pub fn is_held(&self, key: &str) -> bool {
        self.slots.get(key).is_some_and(|s| s.holder.is_some())
    }

    /// The mark of `key`'s last successful registration.
    pub fn last_success(&self, key: &str) -> Option<Mark> {
        self.slots.get(key).and_then(|s| s.last_success)
    }

    /// The earliest instant at which a barred key admits claims again.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots.values().filter(|s| s.holder.is_none()).filter_map(|s| s.barred_until).min()
    }

    /// An event with `mark` asks to register `key` at `now`.
    pub fn claim(&mut self, key: &str, mark: Mark, now: Instant) -> Claim {
        let bugs = self.bugs;
        let slot = self.slots.entry(key.to_owned()).or_default();
        if slot.holder.is_some() {
            // RACE CONDITION SAFETY: the holder may have registered before
            // this deletion; remember it so completion can run once more.
            if !bugs.no_follow_up && !slot.last_success.is_some_and(|s| mark.covered_by(&s)) {
                slot.follow_up = Some(slot.follow_up.map_or(mark, |f| f.merge(mark)));
            }
            self.stats.coalesced += 1;
            return Claim::Coalesced;
        }
        if !bugs.no_watermark && slot.last_success.is_some_and(|s| mark.covered_by(&s)) {
            self.stats.covered += 1;
            return Claim::Covered;
        }
        if let Some(until) = slot.barred_until.filter(|u| now < *u) {
            // The holder's retry covers this event; keep it for that retry
            // unless the bar is a kept slot (the bug drops it).
            if !bugs.slot_kept_on_success {
                slot.follow_up = Some(slot.follow_up.map_or(mark, |f| f.merge(mark)));
            }
            self.stats.backing_off += 1;
            return Claim::BackingOff { until };
        }
        self.stats.granted += 1;
        Claim::Granted(self.grant(key, mark, now))
    }

    fn grant(&mut self, key: &str, mark: Mark, now: Instant) -> Ticket {
        let id = self.next_ticket;
        self.next_ticket += 1;
        let slot = self.slots.entry(key.to_owned()).or_default();
        // A register applied after this grant covers every earlier event.
        let mark = slot.follow_up.take().map_or(mark, |f| f.merge(mark));
        slot.holder = Some((id, mark));
        slot.barred_until = None;
        Ticket { key: key.to_owned(), id, mark, deadline: now + self.config.register_deadline }
    }

    /// The attempt of `ticket` ended with `outcome` at `now`.
    pub fn complete(&mut self, ticket: &Ticket, outcome: Outcome, now: Instant) -> Completion {
        let bugs = self.bugs;
        let config = self.config;
        let Some(slot) = self.slots.get_mut(&ticket.key) else { return Completion::Stale };
        let Some((_, held_mark)) = slot.holder.filter(|(id, _)| *id == ticket.id) else {
            return Completion::Stale;
        };
        slot.holder = None;
        match outcome {
            Outcome::Registered { revision } => {
                let applied = Mark { revision, at: now };
                slot.last_success = Some(slot.last_success.map_or(applied, |s| s.merge(applied)));
                // The seed's success path deletes the slot; the bug keeps
                // it for the rest of the window.
                slot.barred_until = bugs
                    .slot_kept_on_success
                    .then_some(ticket.deadline - config.register_deadline + config.coalesce_window);
                match slot.follow_up.take() {
                    Some(f) if !f.covered_by(&applied) => {
                        self.stats.follow_ups += 1;
                        Completion::FollowUp(self.grant(&ticket.key, f, now))
                    }
                    _ => Completion::Done,
                }
            }
            Outcome::Failed => {
                let pending = slot.follow_up.take().map_or(held_mark, |f| f.merge(held_mark));
                let at = now + config.failure_backoff;
                slot.barred_until = Some(at);
                if bugs.stamp_on_failure {
                    // The historical bug: a failure stamps the watermark as
                    // if it had covered everything seen so far.
                    let stamp = Mark { revision: pending.revision, at: now };
                    slot.last_success = Some(slot.last_success.map_or(stamp, |s| s.merge(stamp)));
                }
                Completion::RetryAt { at, mark: pending }
            }
            Outcome::Abandoned => {
                slot.follow_up = None;
                Completion::Done
            }
        }
    }
}
