//! The gate as a pure state machine: one slot per registration key, `now`
//! passed in, no I/O.
//!
//! Call order for one recovery: [`Gate::claim`] with the event's mark; on
//! [`Claim::Granted`] run one register attempt, conditional on the
//! ticket's `condition`, before the ticket's `deadline`, then
//! [`Gate::complete`] with the ticket and its outcome ("already registered
//! at R" is `Registered` at R; a reply lost after the registry applied is
//! `Failed`, and the retry's condition turns it into "already"); a
//! [`Completion::FollowUp`] hands over a new ticket to run at once, a
//! [`Completion::RetryAt`] says when to claim again. The retry policy is
//! the gate's: after a failure it always answers `RetryAt`, the backoff
//! doubling per consecutive failure up to its cap, so a key is retried for
//! as long as the driver lives.

use std::collections::BTreeMap;

use super::config::{DeadlineNotShorter, GIVE_UP_AFTER, GateBugs, GateConfig};
use super::mark::Mark;
use super::registry::Condition;
use crate::env::Instant;

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
    /// What the register is conditional on: nothing registered since the
    /// deletion the gate saw, so a retry of a register that was applied
    /// unseen is answered "already registered".
    pub condition: Condition,
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
    /// Retries the gate asked for after a failure.
    pub retries: u64,
    /// The most failures of one key in a row.
    pub longest_failure_streak: u32,
}

/// Where a key's slot is (the seed's `reregisterNextAttempt` made
/// explicit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No attempt in flight, no bar: a claim is granted unless covered.
    Idle,
    /// Ticket `ticket` is in flight, covering every event up to `mark`.
    Held {
        /// The holder's ticket id.
        ticket: u64,
        /// What the holder's register covers.
        mark: Mark,
    },
    /// A failure (or, under a bug, a kept slot) bars claims until `until`.
    Barred {
        /// When claims are granted again.
        until: Instant,
    },
}

/// One key: its phase, the seed's `reregisterLastCompletedAt`, the
/// follow-up mark and the consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    phase: Phase,
    /// The last successful registration.
    last_success: Option<Mark>,
    /// The newest event that arrived while claims could not be granted.
    follow_up: Option<Mark>,
    /// Failures since the last success.
    failures: u32,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { phase: Phase::Idle, last_success: None, follow_up: None, failures: 0 }
    }
}

impl Slot {
    fn fold_follow_up(&mut self, mark: Mark) {
        self.follow_up = Some(self.follow_up.map_or(mark, |f| f.merge(mark)));
    }
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
        self.slots.get(key).is_some_and(|s| matches!(s.phase, Phase::Held { .. }))
    }

    /// The mark of `key`'s last successful registration.
    pub fn last_success(&self, key: &str) -> Option<Mark> {
        self.slots.get(key).and_then(|s| s.last_success)
    }

    /// Failed attempts of `key` since its last success.
    pub fn failures(&self, key: &str) -> u32 {
        self.slots.get(key).map_or(0, |s| s.failures)
    }

    /// An event with `mark` asks to register `key` at `now`.
    pub fn claim(&mut self, key: &str, mark: Mark, now: Instant) -> Claim {
        let bugs = self.bugs;
        let slot = self.slots.entry(key.to_owned()).or_default();
        let covered = slot.last_success.is_some_and(|s| mark.covered_by(&s));
        match slot.phase {
            Phase::Held { .. } => {
                // RACE CONDITION SAFETY: the holder may have registered
                // before this deletion; remember it so completion can run
                // once more.
                if !bugs.no_follow_up && !covered {
                    slot.fold_follow_up(mark);
                }
                self.stats.coalesced += 1;
                Claim::Coalesced
            }
            Phase::Idle | Phase::Barred { .. } if covered && !bugs.no_watermark => {
                self.stats.covered += 1;
                Claim::Covered
            }
            Phase::Barred { until } if now < until => {
                // The holder's retry covers this event; keep it for that
                // retry unless the bar is a kept slot (the bug drops it).
                if !bugs.slot_kept_on_success {
                    slot.fold_follow_up(mark);
                }
                self.stats.backing_off += 1;
                Claim::BackingOff { until }
            }
            Phase::Idle | Phase::Barred { .. } => {
                self.stats.granted += 1;
                Claim::Granted(self.grant(key, mark, now))
            }
        }
    }

    fn grant(&mut self, key: &str, mark: Mark, now: Instant) -> Ticket {
        let id = self.next_ticket;
        self.next_ticket += 1;
        let slot = self.slots.entry(key.to_owned()).or_default();
        // A register applied after this grant covers every earlier event.
        let mark = slot.follow_up.take().map_or(mark, |f| f.merge(mark));
        slot.phase = Phase::Held { ticket: id, mark };
        let condition =
            if self.bugs.unconditional_register { Condition::Always } else { condition_for(mark, slot.last_success) };
        Ticket { key: key.to_owned(), id, mark, condition, deadline: now + self.config.register_deadline }
    }

    /// The attempt of `ticket` ended with `outcome` at `now`.
    pub fn complete(&mut self, ticket: &Ticket, outcome: Outcome, now: Instant) -> Completion {
        let (bugs, config) = (self.bugs, self.config);
        let Some(slot) = self.slots.get_mut(&ticket.key) else { return Completion::Stale };
        match (slot.phase, outcome) {
            (Phase::Held { ticket: id, .. }, Outcome::Registered { revision }) if id == ticket.id => {
                let applied = Mark { revision, at: now };
                slot.last_success = Some(slot.last_success.map_or(applied, |s| s.merge(applied)));
                slot.failures = 0;
                // The seed's success path deletes the slot; the bug keeps
                // it for the rest of the window.
                slot.phase = if bugs.slot_kept_on_success {
                    Phase::Barred { until: ticket.deadline - config.register_deadline + config.coalesce_window }
                } else {
                    Phase::Idle
                };
                match slot.follow_up.take() {
                    Some(f) if !f.covered_by(&applied) => {
                        self.stats.follow_ups += 1;
                        Completion::FollowUp(self.grant(&ticket.key, f, now))
                    }
                    _ => Completion::Done,
                }
            }
            (Phase::Held { ticket: id, mark: held }, Outcome::Failed) if id == ticket.id => {
                let pending = slot.follow_up.take().map_or(held, |f| f.merge(held));
                slot.failures = slot.failures.saturating_add(1);
                self.stats.longest_failure_streak = self.stats.longest_failure_streak.max(slot.failures);
                let at = now + config.failure_backoff_after(slot.failures);
                slot.phase = Phase::Barred { until: at };
                if bugs.stamp_on_failure {
                    // The historical bug: a failure stamps the watermark as
                    // if it had covered everything seen so far.
                    let stamp = Mark { revision: pending.revision, at: now };
                    slot.last_success = Some(slot.last_success.map_or(stamp, |s| s.merge(stamp)));
                }
                if bugs.gives_up && slot.failures >= GIVE_UP_AFTER {
                    // The old bounded retry: the pending events are dropped.
                    tracing::warn!(key = ticket.key.as_str(), failures = slot.failures, "recovery gave up (mutant)");
                    return Completion::Done;
                }
                self.stats.retries += 1;
                Completion::RetryAt { at, mark: pending }
            }
            (Phase::Held { ticket: id, .. }, Outcome::Abandoned) if id == ticket.id => {
                slot.phase = Phase::Idle;
                slot.follow_up = None;
                Completion::Done
            }
            (Phase::Held { .. } | Phase::Idle | Phase::Barred { .. }, _) => Completion::Stale,
        }
    }
}

/// The register's condition: nothing registered since the revision at which
/// the event saw the registration deleted; for an event without one (the
/// sync loop's, a first registration), since the last registration the gate
/// knows of, or ever when it knows none. Without revisions on either side
/// after a first success (a registry without them) there is nothing to
/// compare: `Always`, and a register whose reply is lost may then be
/// applied twice (the timestamp mode's limit).
fn condition_for(mark: Mark, last_success: Option<Mark>) -> Condition {
    match (mark.revision, last_success) {
        (Some(seen), _) => Condition::NotRegisteredSince(seen),
        (None, Some(Mark { revision: Some(applied), .. })) => Condition::NotRegisteredSince(applied),
        (None, Some(Mark { revision: None, .. })) => Condition::Always,
        (None, None) => Condition::NotRegisteredSince(0),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_nanos(s * 1_000_000_000)
    }

    /// Fails `key`'s attempts `n` times in a row, honouring each backoff;
    /// returns the last completion.
    fn fail_n(gate: &mut Gate, n: u32) -> (Completion, Instant) {
        let mut now = at(1);
        let mut mark = Mark::revision(1, now);
        let mut last = Completion::Done;
        for _ in 0..n {
            let Claim::Granted(t) = gate.claim("k", mark, now) else { panic!("claim refused at {now:?}") };
            last = gate.complete(&t, Outcome::Failed, now + Duration::from_secs(1));
            match &last {
                Completion::RetryAt { at, mark: m } => {
                    now = *at;
                    mark = *m;
                }
                _ => break,
            }
        }
        (last, now)
    }

    #[test]
    fn a_failing_key_is_retried_for_ever_at_the_capped_backoff() {
        let mut gate = Gate::new(GateConfig::default()).unwrap();
        let (last, _) = fail_n(&mut gate, 20);
        let Completion::RetryAt { .. } = last else { panic!("gave up: {last:?}") };
        assert_eq!(gate.failures("k"), 20);
        assert_eq!(gate.stats().retries, 20);
    }

    #[test]
    fn the_gives_up_bug_drops_the_key_after_a_count() {
        let bugs = GateBugs { gives_up: true, ..GateBugs::default() };
        let mut gate = Gate::new(GateConfig::default()).unwrap().with_bugs(bugs);
        let (last, _) = fail_n(&mut gate, 20);
        assert_eq!(last, Completion::Done, "the mutant stops retrying");
        assert_eq!(gate.failures("k"), GIVE_UP_AFTER);
    }

    #[test]
    fn a_success_resets_the_backoff() {
        let mut gate = Gate::new(GateConfig::default()).unwrap();
        let (_, now) = fail_n(&mut gate, 3);
        let Claim::Granted(t) = gate.claim("k", Mark::revision(1, now), now) else { panic!() };
        assert_eq!(gate.complete(&t, Outcome::Registered { revision: Some(2) }, now), Completion::Done);
        assert_eq!(gate.failures("k"), 0);
        let later = now + Duration::from_secs(1);
        let Claim::Granted(t) = gate.claim("k", Mark::revision(3, later), later) else { panic!() };
        let c = gate.complete(&t, Outcome::Failed, later);
        assert_eq!(c, Completion::RetryAt { at: later + GateConfig::default().failure_backoff, mark: t.mark });
    }
}
