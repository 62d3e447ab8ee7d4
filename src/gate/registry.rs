//! What the recovery driver needs from a registry: register, recover
//! orphans, deregister, heartbeat.

use std::future::Future;

use crate::env::Instant;

/// One registration the registry holds for a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Runtime {
    /// The registry's id for it (a deleted one is never reused).
    pub id: String,
    /// The key (workspace) it belongs to.
    pub key: String,
    /// What it runs; the registry keeps one runtime per provider per key.
    pub provider: String,
}

/// What a register is conditional on: what the gate saw of the key, so a
/// retry of a register that was applied (its reply lost, timed out or
/// reset) or a register applied late cannot register twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Apply only if nothing was registered for the key after this registry
    /// revision: the revision at which the registration was seen deleted
    /// (or, for an event without one, the gate's last registration). `0`:
    /// only if the key was never registered.
    NotRegisteredSince(u64),
    /// Apply in any case: a registry without revisions, after the key's
    /// first registration, gives the gate nothing to compare.
    Always,
}

/// A successful register: the key's whole runtime set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Every runtime of the key, authoritative (replaces, never appends).
    pub runtimes: Vec<Runtime>,
    /// The registry revision the registration was applied at, if it has
    /// revisions; for an `applied: false` answer, the revision of the
    /// registration that was already there.
    pub revision: Option<u64>,
    /// `false`: "already registered at `revision`": the condition failed
    /// because a registration covering the event is in place (a retry of an
    /// applied register, a register applied late); the gate takes it as
    /// success.
    pub applied: bool,
}

/// What a heartbeat learned about one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckStatus {
    /// The registration is alive.
    Ok,
    /// The registration is gone (deleted at `revision`, if known).
    Gone {
        /// The revision at which it was deleted.
        revision: Option<u64>,
    },
}

/// A heartbeat reply (HTTP) or acknowledgement (websocket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The runtime it is about; empty in a malformed ack.
    pub runtime_id: String,
    /// Alive or gone.
    pub status: AckStatus,
}

/// A registry call that did not succeed (refused, unreachable, garbled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registry: {0}")]
pub struct RegistryError(pub String);

/// The registry, as the driver sees it; deadlines are the driver's job.
pub trait Registry: 'static {
    /// Registers every configured runtime of `key` (upsert: surviving ones
    /// keep their ids, deleted ones get new ids) if `condition` holds, and
    /// otherwise answers "already registered" with the key's current set.
    /// `deadline` travels with the request, so the registry can refuse one
    /// it could no longer answer in time; a registry may still apply a
    /// request whose reply the driver never sees (lost, reset, late):
    /// the condition is what keeps its retry from registering twice.
    fn register(
        &self,
        key: &str,
        condition: Condition,
        deadline: Instant,
    ) -> impl Future<Output = Result<Registered, RegistryError>> + 'static;
    /// Marks the key's work left behind by gone runtimes as orphaned.
    fn recover_orphans(&self, key: &str) -> impl Future<Output = Result<(), RegistryError>> + 'static;
    /// Removes these registrations (shutdown).
    fn deregister(&self, runtime_ids: &[String]) -> impl Future<Output = Result<(), RegistryError>> + 'static;
    /// Reports `runtime_id` alive; the reply says whether it still exists.
    fn heartbeat(&self, runtime_id: &str) -> impl Future<Output = Result<HeartbeatAck, RegistryError>> + 'static;
}
