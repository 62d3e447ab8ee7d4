//! Invariant checks, failure classes and coverage counters of one run.
//!
//! Models report through a [`Checks`] handle: `fail` during the run for a
//! safety invariant, `pending` after the fault-free phase for a liveness
//! one, and `cover` for each opportunity to reach the window the scenario
//! targets. Only invariants the scenario lists fail the run.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

/// Coverage counters: window name -> (reached, opportunities).
pub type Coverage = BTreeMap<Cow<'static, str>, (u64, u64)>;

/// How a run failed; each class has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    /// A safety invariant failed during the run.
    Safety,
    /// Something was still pending after the fault-free phase.
    Liveness,
    /// A task made no progress (busy loop) or a poll never returned.
    Livelock,
    /// The same seed gave different runs.
    Nondeterminism,
    /// The simulator itself failed (or was misused).
    SimError,
    /// Program code panicked where nothing could observe it.
    Crash,
}

impl FailureClass {
    /// The process exit code of `run` and `check-determinism`.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Safety => 10,
            FailureClass::Liveness => 11,
            FailureClass::Livelock => 12,
            FailureClass::Nondeterminism => 13,
            FailureClass::SimError => 14,
            FailureClass::Crash => 15,
        }
    }

    /// The name used in reports and in a scenario's `catches`.
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::Safety => "safety",
            FailureClass::Liveness => "liveness",
            FailureClass::Livelock => "livelock",
            FailureClass::Nondeterminism => "nondeterminism",
            FailureClass::SimError => "sim-error",
            FailureClass::Crash => "crash",
        }
    }

    /// The class named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            FailureClass::Safety,
            FailureClass::Liveness,
            FailureClass::Livelock,
            FailureClass::Nondeterminism,
            FailureClass::SimError,
            FailureClass::Crash,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

/// The first failure of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its class.
    pub class: FailureClass,
    /// The invariant that failed.
    pub invariant: String,
    /// What happened, with the values involved.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failure: invariant {} failed: {}", self.class.name(), self.invariant, self.message)
    }
}

#[derive(Default)]
struct State {
    enforced: BTreeSet<String>,
    failure: Option<Failure>,
    coverage: Coverage,
    notes: Vec<String>,
}

/// A run's checker, shared by the model's tasks.
#[derive(Clone, Default)]
pub struct Checks(Rc<RefCell<State>>);

impl Checks {
    /// A checker that fails the run only for `enforced` invariants.
    pub fn new(enforced: impl IntoIterator<Item = String>) -> Self {
        Checks(Rc::new(RefCell::new(State { enforced: enforced.into_iter().collect(), ..State::default() })))
    }

    /// A safety invariant failed.
    pub fn fail(&self, invariant: &'static str, message: impl fmt::Display) {
        if self.0.borrow().enforced.contains(invariant) {
            self.fail_class(FailureClass::Safety, invariant, message);
        } else {
            self.0.borrow_mut().notes.push(format!("unchecked invariant {invariant} failed: {message}"));
        }
    }

    /// A liveness invariant still has `reason` pending at the end.
    pub fn pending(&self, invariant: &'static str, reason: impl fmt::Display) {
        if self.0.borrow().enforced.contains(invariant) {
            self.fail_class(FailureClass::Liveness, invariant, reason);
        }
    }

    /// Records a failure of `class` (the first one wins).
    pub fn fail_class(&self, class: FailureClass, invariant: &str, message: impl fmt::Display) {
        let mut s = self.0.borrow_mut();
        if s.failure.is_none() {
            s.failure = Some(Failure { class, invariant: invariant.to_owned(), message: message.to_string() });
        }
    }

    /// Counts one opportunity to reach coverage window `name`, and whether
    /// it was reached.
    pub fn cover(&self, name: impl Into<Cow<'static, str>>, reached: bool) {
        let mut s = self.0.borrow_mut();
        let e = s.coverage.entry(name.into()).or_default();
        e.1 += 1;
        e.0 += u64::from(reached);
    }

    /// Whether the run has failed.
    #[inline]
    pub fn failed(&self) -> bool {
        self.0.borrow().failure.is_some()
    }

    /// The first failure.
    pub fn failure(&self) -> Option<Failure> {
        self.0.borrow().failure.clone()
    }

    /// Coverage counters: name -> (reached, opportunities).
    pub fn coverage(&self) -> Coverage {
        self.0.borrow().coverage.clone()
    }

    /// Notes on unchecked invariants that failed.
    pub fn notes(&self) -> Vec<String> {
        self.0.borrow().notes.clone()
    }
}
