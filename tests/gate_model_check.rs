//! Model check of the gate: random interleavings of deletions, reports
//! (fresh and straggling), completions, failures and time steps, against a
//! small reference model of the registry and the invariants, with the
//! gate's own retry policy: a failure is always retried, no sooner than
//! its backoff and no later than the backoff's cap.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use warden::env::Instant;
use warden::gate::{Claim, Completion, Gate, GateBugs, GateConfig, Mark, Outcome, Ticket};

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
    /// The registry applies the register of key `k`'s holder (its reply
    /// is still on the way).
    Apply(usize),
    /// The holder of key `k` completes: registered, or failed (a register
    /// already applied always completes as registered).
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
        2 => (0..2usize).prop_map(Op::Apply),
        3 => (0..2usize, prop::bool::weighted(0.7)).prop_map(|(k, ok)| Op::Complete(k, ok)),
        1 => (0..2usize).prop_map(Op::CompleteStale),
        2 => (1..90_000u64).prop_map(Op::Step),
    ]
}

/// The reference: the registry's revisions and what each key still owes.
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
    reported: std::collections::BTreeSet<(usize, u64)>,
}

/// The driver's side: tickets held, retries scheduled, old tickets.
struct Harness {
    gate: Gate,
    now: Instant,
    reference: Reference,
    holders: BTreeMap<usize, Ticket>,
    /// key -> revision its holder's register was applied at.
    applied_at: BTreeMap<usize, u64>,
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
            applied_at: BTreeMap::new(),
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
                self.holders.insert(k, t);
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

    /// The registry applies the holder's register of key `k`: it must owe
    /// a deletion (or be the key's first registration).
    fn apply_register(&mut self, k: usize) {
        if !self.holders.contains_key(&k) || self.applied_at.contains_key(&k) {
            return;
        }
        self.reference.revision += 1;
        let first = !self.reference.applied.contains_key(&k);
        let owed = self.reference.owed.get(&k).copied().unwrap_or(false);
        assert!(first || owed, "{} registered twice with no deletion between", KEYS[k]);
        self.reference.applied.insert(k, self.reference.revision);
        self.reference.owed.insert(k, false);
        self.applied_at.insert(k, self.reference.revision);
    }

    fn complete(&mut self, k: usize, ok: bool) {
        if ok {
            self.apply_register(k);
        }
        let Some(t) = self.holders.remove(&k) else { return };
        let applied = self.applied_at.remove(&k);
        let ok = applied.is_some();
        let before = self.gate.last_success(KEYS[k]);
        let outcome = match applied {
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
                self.holders.insert(k, next);
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
            Op::Apply(k) => self.apply_register(k),
            Op::Complete(k, ok) => self.complete(k, ok),
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
            h.complete(k, true);
        }
        for op in &ops {
            h.apply(op);
        }
        // Quiesce: the registry is reachable again. Deletions never
        // reported are reported now (a report already made is not repeated:
        // the gate must not have lost it); holders and retries run to
        // success.
        for k in 0..KEYS.len() {
            for r in h.reference.deletions.get(&k).cloned().unwrap_or_default() {
                if !h.reference.reported.contains(&(k, r)) {
                    h.claim(k, Mark::revision(r, h.now));
                }
            }
        }
        for _ in 0..16 {
            for k in 0..KEYS.len() {
                h.complete(k, true);
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
        h.complete(0, true);
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
