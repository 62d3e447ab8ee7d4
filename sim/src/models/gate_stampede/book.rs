//! What the simulated registry knows and has done, shared with the
//! checkers: registrations by key and provider, revisions, deletions, and
//! the check `one-registration-per-deletion` at every registration it
//! applies.

use std::collections::BTreeMap;

use warden::env::Instant;
use warden::gate::Condition;

use super::wire::rev_word;
use crate::check::Checks;

/// A register's answer: applied at `revision`, or already registered there.
pub(crate) struct Answer {
    /// The revision it was applied at, or of the registration in place.
    pub revision: u64,
    /// Whether it applied.
    pub applied: bool,
    /// The key's runtimes: (id, provider).
    pub runtimes: Vec<(String, String)>,
}

/// The registry's state.
pub(crate) struct Book {
    checks: Checks,
    pub revisions: bool,
    revision: u64,
    next_id: u64,
    /// key -> provider -> current id (None once deleted).
    keys: BTreeMap<String, BTreeMap<String, Option<String>>>,
    /// id -> (key, provider, deleted at).
    ids: BTreeMap<String, (String, String, Option<u64>)>,
    /// key -> revision of the first deletion not yet followed by a
    /// registration.
    unrecovered: BTreeMap<String, u64>,
    /// key -> revision of its last registration.
    last_registration: BTreeMap<String, u64>,
    /// Every accepted registration, in revision order: (revision, key).
    pub registrations: Vec<(u64, String)>,
    /// Every deletion, in revision order: (revision, key, id).
    pub deletions: Vec<(u64, String, String)>,
    /// When the outage (if the scenario has one) began.
    pub outage_since: Option<Instant>,
    /// Registers applied whose reply a fault kept from the daemon.
    pub lost_after_apply: u64,
}

impl Book {
    /// A registry for `keys` keys with `providers` providers each.
    pub(crate) fn new(checks: Checks, keys: u64, providers: u64, revisions: bool) -> Self {
        let keys =
            (0..keys).map(|k| (format!("ws{k}"), (0..providers).map(|p| (format!("p{p}"), None)).collect())).collect();
        Book {
            checks,
            revisions,
            revision: 0,
            next_id: 1,
            keys,
            ids: BTreeMap::new(),
            unrecovered: BTreeMap::new(),
            last_registration: BTreeMap::new(),
            registrations: Vec::new(),
            deletions: Vec::new(),
            outage_since: None,
            lost_after_apply: 0,
        }
    }

    /// The configured keys.
    pub(crate) fn key_names(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// The live ids of `key`, sorted.
    pub(crate) fn alive(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self.keys.get(key).into_iter().flat_map(|p| p.values().flatten().cloned()).collect();
        v.sort();
        v
    }

    /// Keys with a deletion not followed by a registration, and its revision.
    pub(crate) fn unrecovered(&self) -> &BTreeMap<String, u64> {
        &self.unrecovered
    }

    /// Whether `condition` lets a register of `key` apply, as etcd's
    /// compare of a key's revision would: a registration made after
    /// `since` blocks it only while it is whole (a key deleted or
    /// deregistered since its last registration compares as never
    /// registered).
    fn holds(&self, key: &str, condition: Condition) -> bool {
        match condition {
            Condition::Always => true,
            Condition::NotRegisteredSince(since) => {
                self.unrecovered.contains_key(key) || self.last_registration.get(key).is_none_or(|r| *r <= since)
            }
        }
    }

    /// Upserts every provider of `key` if `condition` holds; checks one
    /// registration per deletion. `None` for an unknown key.
    pub(crate) fn register(&mut self, key: &str, condition: Condition) -> Option<Answer> {
        if !self.keys.contains_key(key) {
            return None;
        }
        if !self.holds(key, condition) {
            let revision = self.last_registration.get(key).copied().unwrap_or(0);
            let runtimes = self.runtimes_of(key);
            return Some(Answer { revision, applied: false, runtimes });
        }
        self.revision += 1;
        let rev = self.revision;
        let providers = self.keys.get_mut(key)?;
        for (provider, id) in providers.iter_mut() {
            id.get_or_insert_with(|| {
                let id = format!("rt{}", self.next_id);
                self.next_id += 1;
                self.ids.insert(id.clone(), (key.to_owned(), provider.clone(), None));
                id
            });
        }
        if let Some(last) = self.last_registration.get(key)
            && !self.unrecovered.contains_key(key)
        {
            self.checks.fail(
                "one-registration-per-deletion",
                format!("{key} registered at revision {last} and again at {rev} with no deletion between"),
            );
        }
        self.last_registration.insert(key.to_owned(), rev);
        self.unrecovered.remove(key);
        self.registrations.push((rev, key.to_owned()));
        Some(Answer { revision: rev, applied: true, runtimes: self.runtimes_of(key) })
    }

    fn runtimes_of(&self, key: &str) -> Vec<(String, String)> {
        let providers = self.keys.get(key).into_iter().flatten();
        providers.filter_map(|(p, id)| id.as_ref().map(|id| (id.clone(), p.clone()))).collect()
    }

    /// Deletes runtime `id` (a wave); returns whether it was alive.
    pub(crate) fn delete(&mut self, id: &str) -> bool {
        let Some((key, provider, deleted)) = self.ids.get_mut(id) else { return false };
        if deleted.is_some() {
            return false;
        }
        self.revision += 1;
        *deleted = Some(self.revision);
        if let Some(slot) = self.keys.get_mut(key.as_str()).and_then(|p| p.get_mut(provider.as_str())) {
            *slot = None;
        }
        self.unrecovered.entry(key.clone()).or_insert(self.revision);
        self.deletions.push((self.revision, key.clone(), id.to_owned()));
        true
    }

    /// Deregistration asked by the daemon itself: removes, no deletion to
    /// recover. As on etcd, where the delete changes the key, the key then
    /// compares as never registered, and registering it again is no second
    /// registration.
    pub(crate) fn deregister(&mut self, id: &str) {
        if let Some((key, provider, deleted)) = self.ids.get_mut(id)
            && deleted.is_none()
        {
            self.revision += 1;
            *deleted = Some(self.revision);
            if let Some(slot) = self.keys.get_mut(key.as_str()).and_then(|p| p.get_mut(provider.as_str())) {
                *slot = None;
            }
            self.last_registration.remove(key.as_str());
        }
    }

    /// A heartbeat's reply.
    pub(crate) fn heartbeat(&self, id: &str) -> String {
        match self.ids.get(id) {
            Some((_, _, None)) => format!("ok {id}"),
            Some((_, _, Some(at))) => format!("gone {id} {}", rev_word(self.revisions.then_some(*at))),
            None => format!("gone {id} {}", rev_word(self.revisions.then_some(0))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Book {
        Book::new(Checks::new(["one-registration-per-deletion".to_owned()]), 1, 2, true)
    }

    #[test]
    fn a_deregistered_key_compares_as_never_registered() {
        let mut b = book();
        let first = b.register("ws0", Condition::NotRegisteredSince(0)).expect("a known key");
        assert!(first.applied);
        for (id, _) in &first.runtimes {
            b.deregister(id);
        }
        let again = b.register("ws0", Condition::NotRegisteredSince(0)).expect("a known key");
        assert!(again.applied, "the deregistered key blocked a register conditional on revision 0");
        assert!(!b.checks.failed(), "{:?}", b.checks.failure());
    }

    #[test]
    fn registering_a_deregistered_key_again_is_no_second_registration() {
        let mut b = book();
        let first = b.register("ws0", Condition::Always).expect("a known key");
        b.deregister(&first.runtimes[0].0);
        assert!(b.register("ws0", Condition::Always).expect("a known key").applied);
        assert!(!b.checks.failed(), "{:?}", b.checks.failure());
        // Still registered once, whole: a second register is.
        assert!(b.register("ws0", Condition::Always).expect("a known key").applied);
        assert!(b.checks.failed(), "two registrations with nothing between went unnoticed");
    }
}
