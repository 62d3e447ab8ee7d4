//! The registrations the etcd registry holds: per gate key, the one it
//! keeps alive and reports on, and the value it puts.

use std::collections::BTreeMap;

use crate::env::CancellationToken;

/// One registration kept alive.
#[derive(Debug, Clone)]
pub(super) struct Held {
    /// `key@revision`.
    pub(super) runtime_id: String,
    /// The revision of its put.
    pub(super) revision: u64,
    /// The lease it is under (0: none).
    pub(super) lease: i64,
    /// Stops its keep-alive.
    pub(super) keepalive: CancellationToken,
}

/// Every held registration, by gate key, and the values to register.
#[derive(Debug, Default)]
pub(super) struct HeldMap {
    by_key: BTreeMap<String, Held>,
    values: BTreeMap<String, String>,
}

impl HeldMap {
    /// Holds `held` for `key`; returns the registration it replaces.
    pub(super) fn hold(&mut self, key: &str, held: Held) -> Option<Held> {
        self.by_key.insert(key.to_owned(), held)
    }

    /// Stops holding `key`'s registration if it is `runtime_id`.
    pub(super) fn release(&mut self, key: &str, runtime_id: &str) -> Option<Held> {
        if self.by_key.get(key).is_some_and(|h| h.runtime_id == runtime_id) { self.by_key.remove(key) } else { None }
    }

    /// The registration held for `key`.
    pub(super) fn get(&self, key: &str) -> Option<&Held> {
        self.by_key.get(key)
    }

    /// Whether `runtime_id` is the registration held for `key`.
    pub(super) fn is_current(&self, key: &str, runtime_id: &str) -> bool {
        self.by_key.get(key).is_some_and(|h| h.runtime_id == runtime_id)
    }

    /// (key, runtime id, revision) of every held registration.
    pub(super) fn snapshot(&self) -> Vec<(String, String, u64)> {
        self.by_key.iter().map(|(k, h)| (k.clone(), h.runtime_id.clone(), h.revision)).collect()
    }

    /// Stops every keep-alive and forgets everything held.
    pub(super) fn clear(&mut self) -> Vec<Held> {
        let held: Vec<Held> = std::mem::take(&mut self.by_key).into_values().collect();
        for h in &held {
            h.keepalive.cancel();
        }
        held
    }

    /// Sets what `key` registers.
    pub(super) fn set_value(&mut self, key: &str, value: &str) {
        self.values.insert(key.to_owned(), value.to_owned());
    }

    /// What `key` registers (empty if never set).
    pub(super) fn value(&self, key: &str) -> String {
        self.values.get(key).cloned().unwrap_or_default()
    }
}
