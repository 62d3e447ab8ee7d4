//! The driver's local view of its registrations (the seed's `workspaces`,
//! `runtimeIndex`, `wsHBLastAck` and `runtimeGoneInflight`), pure.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use super::registry::Runtime;
use crate::env::Instant;

/// One key's state. Shared by handle: in-flight holders keep the same
/// object, so it is only ever updated in place, never replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyState {
    /// The key.
    pub key: String,
    /// Its runtime ids, as the last register returned them minus the ones
    /// since reported gone.
    pub runtime_ids: Vec<String>,
}

/// A shared handle to a key's state.
pub type KeyHandle = Rc<RefCell<KeyState>>;

/// The local maps.
#[derive(Debug, Default)]
pub struct LocalState {
    keys: BTreeMap<String, KeyHandle>,
    runtimes: BTreeMap<String, Runtime>,
    ws_acks: BTreeMap<String, Instant>,
    gone_in_flight: BTreeSet<String>,
    /// key -> runtimes pruned since its current register attempt began:
    /// that attempt's response may predate their deletion.
    pruned_during_attempt: BTreeMap<String, BTreeSet<String>>,
}

impl LocalState {
    /// Tracks `key` with `runtimes` (its state object is created once).
    pub fn insert_key(&mut self, key: &str, runtimes: &[Runtime]) -> KeyHandle {
        let handle = self.keys.entry(key.to_owned()).or_default().clone();
        handle.borrow_mut().key = key.to_owned();
        self.begin_attempt(key);
        self.replace_runtimes(key, runtimes);
        handle
    }

    /// The state object of `key`.
    pub fn key(&self, key: &str) -> Option<KeyHandle> {
        self.keys.get(key).cloned()
    }

    /// Every tracked key.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The runtime with `id`, if known.
    pub fn runtime(&self, id: &str) -> Option<&Runtime> {
        self.runtimes.get(id)
    }

    /// Every known runtime id.
    pub fn runtime_ids(&self) -> impl Iterator<Item = &str> {
        self.runtimes.keys().map(String::as_str)
    }

    /// Forgets runtime `id` everywhere (index, its key's set, its freshness
    /// mark) and returns its key; an unknown id changes nothing.
    pub fn remove_stale_runtime(&mut self, id: &str) -> Option<String> {
        let runtime = self.runtimes.remove(id)?;
        self.ws_acks.remove(id);
        if let Some(k) = self.keys.get(&runtime.key) {
            k.borrow_mut().runtime_ids.retain(|r| r != id);
        }
        self.pruned_during_attempt.entry(runtime.key.clone()).or_default().insert(id.to_owned());
        Some(runtime.key)
    }

    /// A register attempt for `key` begins: runtimes pruned before it
    /// cannot be in its response (they were deleted before it applied).
    pub fn begin_attempt(&mut self, key: &str) {
        self.pruned_during_attempt.remove(key);
    }

    /// Makes `runtimes` the key's whole set (the register response is
    /// authoritative), except runtimes pruned while the attempt was in
    /// flight: the response predates their deletion, and resurrecting them
    /// would hide that the gate owes a follow-up. Returns the ids that left
    /// the set.
    pub fn replace_runtimes(&mut self, key: &str, runtimes: &[Runtime]) -> Vec<String> {
        let pruned = self.pruned_during_attempt.remove(key).unwrap_or_default();
        let runtimes: Vec<&Runtime> = runtimes.iter().filter(|r| !pruned.contains(&r.id)).collect();
        let handle = self.keys.entry(key.to_owned()).or_default().clone();
        let mut k = handle.borrow_mut();
        k.key = key.to_owned();
        let new: BTreeSet<&str> = runtimes.iter().map(|r| r.id.as_str()).collect();
        let left: Vec<String> = k.runtime_ids.iter().filter(|id| !new.contains(id.as_str())).cloned().collect();
        for id in &left {
            self.runtimes.remove(id);
            self.ws_acks.remove(id);
        }
        k.runtime_ids.clear();
        for r in runtimes {
            let r: &Runtime = r;
            if !k.runtime_ids.contains(&r.id) {
                k.runtime_ids.push(r.id.clone());
            }
            self.runtimes.insert(r.id.clone(), r.clone());
        }
        left
    }

    /// The historical bug `gate-append-runtimes`: adds the response to the
    /// set instead of replacing it, duplicating surviving siblings.
    pub fn append_runtimes(&mut self, key: &str, runtimes: &[Runtime]) {
        let pruned = self.pruned_during_attempt.remove(key).unwrap_or_default();
        let runtimes = runtimes.iter().filter(|r| !pruned.contains(&r.id));
        let handle = self.keys.entry(key.to_owned()).or_default().clone();
        let mut k = handle.borrow_mut();
        for r in runtimes {
            k.runtime_ids.push(r.id.clone());
            self.runtimes.insert(r.id.clone(), r.clone());
        }
    }

    /// Whether the sync loop should register `key`: tracked, and its
    /// runtime set has drained completely.
    pub fn needs_runtime_recovery(&self, key: &str) -> bool {
        self.keys.get(key).is_some_and(|k| k.borrow().runtime_ids.is_empty())
    }

    /// A websocket ack said `id` is alive at `now`.
    pub fn record_ack(&mut self, id: &str, now: Instant) {
        self.ws_acks.insert(id.to_owned(), now);
    }

    /// Drops the freshness mark of `id`.
    pub fn clear_ack(&mut self, id: &str) {
        self.ws_acks.remove(id);
    }

    /// Whether a websocket ack for `id` came within `within` before `now`,
    /// so the HTTP heartbeat may skip its tick.
    pub fn recently_acked(&self, id: &str, now: Instant, within: Duration) -> bool {
        self.ws_acks.get(id).is_some_and(|at| now.saturating_duration_since(*at) < within)
    }

    /// The number of freshness marks (tests: an empty ack records none).
    pub fn ack_count(&self) -> usize {
        self.ws_acks.len()
    }

    /// Starts a recovery for runtime `id`; `false` if one is in flight.
    pub fn begin_gone(&mut self, id: &str) -> bool {
        self.gone_in_flight.insert(id.to_owned())
    }

    /// Ends the recovery for runtime `id`.
    pub fn end_gone(&mut self, id: &str) {
        self.gone_in_flight.remove(id);
    }
}
