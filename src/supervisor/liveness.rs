//! The liveness registry (seed 002): runnables heartbeat by name at the end
//! of each tick, so an operator can tell "alive and ticking" from "alive but
//! stuck inside one tick". A value the tree owns, not a package global.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::env::{Env, Instant};

/// Last heartbeat per name; cheap to clone (clones share the registry).
#[derive(Clone)]
pub struct Liveness<E: Env> {
    env: E,
    ticks: Rc<RefCell<BTreeMap<String, Instant>>>,
}

impl<E: Env> Liveness<E> {
    /// An empty registry on `env`'s clock.
    pub fn new(env: E) -> Self {
        Liveness { env, ticks: Rc::default() }
    }

    /// Records that `name` finished a tick now.
    pub fn heartbeat(&self, name: &str) {
        let now = self.env.now();
        self.ticks.borrow_mut().insert(name.to_owned(), now);
        tracing::trace!(subsystem = name, "heartbeat");
    }

    /// When `name` last ticked; `None` if it never did.
    pub fn last_tick(&self, name: &str) -> Option<Instant> {
        self.ticks.borrow().get(name).copied()
    }

    /// A copy of every last tick: changing it changes nothing here.
    pub fn snapshot(&self) -> BTreeMap<String, Instant> {
        self.ticks.borrow().clone()
    }

    /// The names among `names` whose last tick is older than `stale_after`
    /// (or that never ticked); empty means healthy.
    pub fn stale(&self, names: &[&str], stale_after: Duration) -> Vec<String> {
        let now = self.env.now();
        let ticks = self.ticks.borrow();
        names
            .iter()
            .filter(|n| ticks.get(**n).is_none_or(|t| now.saturating_duration_since(*t) > stale_after))
            .map(|n| (*n).to_owned())
            .collect()
    }

    /// Whether every name in `names` ticked within `stale_after`, and the
    /// stale ones.
    pub fn is_healthy(&self, names: &[&str], stale_after: Duration) -> (bool, Vec<String>) {
        let stale = self.stale(names, stale_after);
        (stale.is_empty(), stale)
    }
}
