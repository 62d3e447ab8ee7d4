//! Model check of the gate: random interleavings of deletions, reports
//! (fresh and straggling), registers reaching the registry (once, twice,
//! or late, after their holder gave up), replies seen or lost, failures and
//! time steps, against a small reference registry that evaluates each
//! register's condition, and the invariants, with the gate's own retry
//! policy: a failure is always retried, no sooner than its backoff and no
//! later than the backoff's cap. A register the registry applied may still
//! complete as failed (its reply lost, timed out or reset): nothing assumes
//! that an applied register completes as registered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use warden::env::Instant;
use warden::gate::{Claim, Completion, Condition, Gate, GateBugs, GateConfig, Mark, Outcome, Ticket};

const KEYS: [&str; 2] = ["ws-0", "ws-1"];

/// The seed's timings, with a backoff that grows (60 s to 240 s) so the
/// policy's doubling and cap are exercised.
fn config() -> GateConfig {
    GateConfig { failure_backoff_max: Duration::from_secs(240), ..GateConfig::default() }
}

#[derive(Debug, Clone)]
enum Op {
    /// The registry deletes a registration of key `k`.
    Delete(usize),
    /// A report of the `nth` deletion of key `k` (modulo): old ones are
    /// stragglers.
    Report(usize, usize),
    /// The register of key `k`'s holder reaches the registry, which
    /// evaluates its condition (its reply is still on the way).
    Deliver(usize),
    /// The `nth` register ever sent (modulo) reaches the registry again or
    /// late: delivered twice, or stalled past its deadline and applied
    /// after its holder gave up.
    Redeliver(usize),
    /// The holder of key `k` completes: with the registry's reply if it
    /// has one and `seen`, else failed (never delivered, or its reply lost,
    /// timed out or reset after the registry applied it).
    Complete(usize, bool),
    /// Completes a ticket that is no longer the holder.
    CompleteStale(usize),
    /// Time passes (milliseconds).
    Step(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..2usize).prop_map(Op::Delete),
        4 => (0..2usize, 0..8usize).prop_map(|(k, n)| Op::Report(k, n)),
        2 => (0..2usize).prop_map(Op::Deliver),
        1 => (0..16usize).prop_map(Op::Redeliver),
        3 => (0..2usize, prop::bool::weighted(0.6)).prop_map(|(k, seen)| Op::Complete(k, seen)),
        1 => (0..2usize).prop_map(Op::CompleteStale),
        2 => (1..90_000u64).prop_map(Op::Step),
    ]
}

/// The reference registry: revisions, and what each key still owes.
#[derive(Default)]
struct Reference {
    revision: u64,
    /// key -> revisions of its deletions.
    deletions: BTreeMap<usize, Vec<u64>>,
    /// key -> revision of the last applied registration.
    applied: BTreeMap<usize, u64>,
    /// key -> a deletion happened since the last registration.
    owed: BTreeMap<usize, bool>,
    /// Deletions reported at least once: (key, revision).
    reported: BTreeSet<(usize, u64)>,
}

impl Reference {
    /// Evaluates a register of key `k` under `condition` as etcd would
    /// (a key deleted since its last registration compares as never
    /// registered): the revision it was applied at, or the one already
    /// there. Fails the check when it applies with no deletion since the
    /// key's last registration.
    fn register(&mut self, k: usize, condition: Condition) -> u64 {
        let last = self.applied.get(&k).copied();
        let owed = self.owed.get(&k).copied().unwrap_or(false);
        let holds = match condition {
            Condition::Always => true,
            Condition::NotRegisteredSince(since) => owed || last.is_none_or(|r| r <= since),
        };
        if let (false, Some(r)) = (holds, last) {
            return r;
        }
        self.revision += 1;
        assert!(last.is_none() || owed, "{} registered twice with no deletion between", KEYS[k]);
        self.applied.insert(k, self.revision);
        self.owed.insert(k, false);
        self.revision
    }
}

/// The driver's side: tickets held, replies, retries scheduled, old tickets.
struct Harness {
    gate: Gate,
    now: Instant,
    reference: Reference,
    holders: BTreeMap<usize, Ticket>,
    /// key -> the registry's reply to its holder's register, once delivered.
    replies: BTreeMap<usize, u64>,
    /// Every register sent: (key, condition); any may arrive again or late.
    sent: Vec<(usize, Condition)>,
    retries: Vec<(usize, Instant, Mark)>,
    stale: Vec<Ticket>,
    /// key -> claims are refused until (after a failure).
    barred: BTreeMap<usize, Instant>,
}

impl Harness {
    fn new() -> Self {
        Self::with_bugs(GateBugs::default())
    }

    fn with_bugs(bugs: GateBugs) -> Self {
        Harness {
            gate: Gate::new(config()).expect("valid").with_bugs(bugs),
            now: Instant::BOOT,
            reference: Reference::default(),
            holders: BTreeMap::new(),
            replies: BTreeMap::new(),
            sent: Vec::new(),
            retries: Vec::new(),
            stale: Vec::new(),
            barred: BTreeMap::new(),
        }
    }

    fn claim(&mut self, k: usize, mark: Mark) {
        match self.gate.claim(KEYS[k], mark, self.now) {
            Claim::Granted(t) => {
                assert!(!self.holders.contains_key(&k), "two holders for {}", KEYS[k]);
                assert!(self.barred.get(&k).is_none_or(|b| self.now >= *b), "claim granted during the backoff");
                self.hold(k, t);
            }
            Claim::Covered => {
                let applied = self.reference.applied.get(&k).copied();
                assert!(
                    mark.revision.zip(applied).is_some_and(|(m, a)| m <= a),
                    "an uncovered event ({mark:?}) bailed as a straggler (applied {applied:?})"
                );
            }
            Claim::Coalesced => assert!(self.holders.contains_key(&k), "coalesced with no holder"),
            Claim::BackingOff { .. } => {}
        }
    }

    /// `t` becomes key `k`'s holder; its register is sent.
    fn hold(&mut self, k: usize, t: Ticket) {
        self.sent.push((k, t.condition));
        self.replies.remove(&k);
        self.holders.insert(k, t);
    }

    /// The holder's register of key `k` reaches the registry (once: a
    /// second delivery is [`Op::Redeliver`]'s).
    fn deliver(&mut self, k: usize) {
        let Some(t) = self.holders.get(&k) else { return };
        if self.replies.contains_key(&k) {
            return;
        }
        let revision = self.reference.register(k, t.condition);
        self.replies.insert(k, revision);
    }

    fn complete(&mut self, k: usize, seen: bool) {
        let Some(t) = self.holders.remove(&k) else { return };
        let reply = self.replies.remove(&k).filter(|_| seen);
        let ok = reply.is_some();
        let before = self.gate.last_success(KEYS[k]);
        let outcome = match reply {
            Some(revision) => Outcome::Registered { revision: Some(revision) },
            None => Outcome::Failed,
        };
        let done = self.gate.complete(&t, outcome, self.now);
        if !ok {
            assert_eq!(self.gate.last_success(KEYS[k]), before, "a failure moved the watermark");
        }
        self.stale.push(t);
        match done {
            Completion::Done => assert!(ok, "the gate gave up on {} after a failure", KEYS[k]),
            Completion::Stale => panic!("the holder's own ticket was stale"),
            Completion::FollowUp(next) => {
                assert!(ok, "a follow-up after a failure");
                self.hold(k, next);
            }
            Completion::RetryAt { at, mark } => {
                assert!(!ok, "a retry after a success");
                assert!(at >= self.now + config().failure_backoff, "retry sooner than the backoff");
                assert!(at <= self.now + config().failure_backoff_max, "retry later than the backoff's cap");
                self.barred.insert(k, at);
                self.retries.push((k, at, mark));
            }
        }
    }

    /// A holder that runs to a seen success: delivered, then completed.
    fn succeed(&mut self, k: usize) {
        self.deliver(k);
        self.complete(k, true);
    }

    fn step(&mut self, d: Duration) {
        self.now += d;
        let due: Vec<_> = self.retries.iter().filter(|(_, at, _)| *at <= self.now).cloned().collect();
        self.retries.retain(|(_, at, _)| *at > self.now);
        for (k, _, mark) in due {
            self.claim(k, mark);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Delete(k) => {
                self.reference.revision += 1;
                let r = self.reference.revision;
                self.reference.deletions.entry(k).or_default().push(r);
                self.reference.owed.insert(k, true);
            }
            Op::Report(k, n) => {
                let dels = self.reference.deletions.get(&k).cloned().unwrap_or_default();
                if let Some(r) = dels.get(n % dels.len().max(1)) {
                    self.reference.reported.insert((k, *r));
                    self.claim(k, Mark::revision(*r, self.now));
                }
            }
            Op::Deliver(k) => self.deliver(k),
            Op::Redeliver(n) => {
                if let Some(&(k, condition)) = self.sent.get(n % self.sent.len().max(1)) {
                    self.reference.register(k, condition);
                }
            }
            Op::Complete(k, seen) => self.complete(k, seen),
            Op::CompleteStale(i) => {
                if let Some(t) = self.stale.get(i % self.stale.len().max(1)).cloned() {
                    let held = self.holders.get(&KEYS.iter().position(|k| *k == t.key).unwrap_or(0)).cloned();
                    if held.as_ref() != Some(&t) {
                        assert_eq!(
                            self.gate.complete(&t, Outcome::Registered { revision: None }, self.now),
                            Completion::Stale
                        );
                    }
                }
            }
            Op::Step(ms) => self.step(Duration::from_millis(ms)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn gate_matches_the_reference(ops in prop::collection::vec(op(), 1..120)) {
        let mut h = Harness::new();
        // Every key registers once first.
        for k in 0..KEYS.len() {
            h.claim(k, Mark::time(h.now));
            h.succeed(k);
        }
        for op in &ops {
            h.apply(op);
        }
        // Quiesce: the registry is reachable again. Registers still on the
        // way arrive (late); deletions never reported are reported now (a
        // report already made is not repeated: the gate must not have lost
        // it); holders and retries run to success.
        for (k, condition) in h.sent.clone() {
            h.reference.register(k, condition);
        }
        for k in 0..KEYS.len() {
            for r in h.reference.deletions.get(&k).cloned().unwrap_or_default() {
                if !h.reference.reported.contains(&(k, r)) {
                    h.claim(k, Mark::revision(r, h.now));
                }
            }
        }
        for _ in 0..16 {
            for k in 0..KEYS.len() {
                h.succeed(k);
            }
            h.step(config().failure_backoff_max);
        }
        for (k, name) in KEYS.iter().enumerate() {
            prop_assert!(!h.holders.contains_key(&k), "{} still held", name);
            prop_assert!(
                !h.reference.owed.get(&k).copied().unwrap_or(false),
                "{}: a deletion was never followed by a registration", name
            );
        }
    }
}

/// The check has teeth: the old give-up after a count (mutant
/// `gate-gives-up`) fails it on a plain registry outage.
#[test]
fn the_model_check_catches_a_gate_that_gives_up() {
    let outage = || {
        let mut h = Harness::with_bugs(GateBugs { gives_up: true, ..GateBugs::default() });
        h.claim(0, Mark::time(h.now));
        h.succeed(0);
        h.apply(&Op::Delete(0));
        h.apply(&Op::Report(0, 0));
        for _ in 0..8 {
            h.apply(&Op::Complete(0, false));
            h.apply(&Op::Step(config().failure_backoff_max.as_millis() as u64));
        }
    };
    let caught = std::panic::catch_unwind(outage).expect_err("a gate that gives up passed the model check");
    let message = warden::env::panic_message(&*caught);
    assert!(message.contains("gave up"), "{message}");
}

/// The check has teeth for lost replies: a register that applies
/// unconditionally (mutant `gate-unconditional-register`) registers twice
/// when the reply of an applied register is lost and the gate retries.
#[test]
fn the_model_check_catches_an_unconditional_register() {
    let lost_reply = |bugs: GateBugs| {
        let mut h = Harness::with_bugs(bugs);
        h.claim(0, Mark::time(h.now));
        h.succeed(0);
        h.apply(&Op::Delete(0));
        h.apply(&Op::Report(0, 0));
        h.apply(&Op::Deliver(0));
        h.apply(&Op::Complete(0, false));
        h.apply(&Op::Step(config().failure_backoff_max.as_millis() as u64));
        h.succeed(0);
        assert!(h.holders.is_empty(), "the retry did not complete");
    };
    lost_reply(GateBugs::default());
    let bugs = GateBugs { unconditional_register: true, ..GateBugs::default() };
    let caught = std::panic::catch_unwind(move || lost_reply(bugs)).expect_err("an unconditional register passed");
    let message = warden::env::panic_message(&*caught);
    assert!(message.contains("registered twice"), "{message}");
}
