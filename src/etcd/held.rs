//! The registrations the etcd registry holds: per gate key, the one it
//! keeps alive and reports on, the value it puts, and the leases granted
//! by its registers that have not settled.

use std::collections::{BTreeMap, BTreeSet};

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

/// Every held registration, by gate key, the values to register, and the
/// unsettled leases.
#[derive(Debug, Default)]
pub(super) struct HeldMap {
    by_key: BTreeMap<String, Held>,
    values: BTreeMap<String, String>,
    /// Key -> leases granted by its registers that neither hold a
    /// registration nor were revoked yet: a register dropped after its
    /// transaction was sent may have put the key under one of them.
    unsettled: BTreeMap<String, BTreeSet<i64>>,
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

    /// A register of `key` was granted `lease`.
    pub(super) fn granted(&mut self, key: &str, lease: i64) {
        self.unsettled.entry(key.to_owned()).or_default().insert(lease);
    }

    /// `lease` of `key` is held or revoked: forgets it.
    pub(super) fn settle(&mut self, key: &str, lease: i64) {
        if let Some(leases) = self.unsettled.get_mut(key) {
            leases.remove(&lease);
            if leases.is_empty() {
                self.unsettled.remove(key);
            }
        }
    }

    /// The unsettled leases of `key`.
    pub(super) fn unsettled(&self, key: &str) -> Vec<i64> {
        self.unsettled.get(key).map(|l| l.iter().copied().collect()).unwrap_or_default()
    }

    /// Forgets the unsettled leases of `key` and returns them (to revoke).
    pub(super) fn take_unsettled(&mut self, key: &str) -> Vec<i64> {
        self.unsettled.remove(key).map(|l| l.into_iter().collect()).unwrap_or_default()
    }

    /// Forgets every unsettled lease and returns them (to revoke).
    pub(super) fn take_all_unsettled(&mut self) -> Vec<i64> {
        std::mem::take(&mut self.unsettled).into_values().flatten().collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsettled_leases_are_kept_per_key_until_settled_or_taken() {
        let mut m = HeldMap::default();
        m.granted("a", 1);
        m.granted("a", 2);
        m.granted("b", 3);
        m.settle("a", 1);
        m.settle("a", 9);
        assert_eq!(m.unsettled("a"), [2]);
        assert_eq!(m.take_unsettled("a"), [2]);
        assert!(m.unsettled("a").is_empty());
        m.granted("a", 4);
        let mut all = m.take_all_unsettled();
        all.sort();
        assert_eq!(all, [3, 4]);
        assert!(m.unsettled("b").is_empty());
    }
}
