//! The re-register gate on etcd v3 (cargo feature `etcd`): an
//! [`EtcdRegistry`] is a [`Registry`](crate::gate::Registry) whose
//! registrations are keys under leases kept alive, and [`Reports`] is how
//! etcd tells the gate that one is gone.
//!
//! - **A registration** of gate key `k` is the etcd key `prefix + k` with
//!   its configured value, put under a lease of its own (TTL
//!   [`EtcdConfig::ttl`]) that a keep-alive stream renews. Its runtime id
//!   is `k@R`, R the revision of its put (unique: revisions never repeat).
//! - **Gone** is the key deleted or its lease expired, seen three ways at
//!   once: a watch on the prefix (the delete event's revision is the gate's
//!   mark), the lease's keep-alive answering that the lease is gone, and a
//!   resync loop that reads the prefix (a key absent at the read's revision
//!   H was deleted at or before H). Each reports [`Gone`] for the
//!   registration the registry holds for that key, never for one it does
//!   not hold (a registration it deregistered, or replaced).
//! - **Register** is one transaction: compare the key's `mod_revision`
//!   with the revision the gate saw it deleted at (a deleted key compares
//!   as 0), then put under a new lease; else read the key, and answer
//!   "already registered at R" with R its `mod_revision`, adopting the
//!   lease it is under (a retry of a register whose reply was lost); one
//!   in place with another value (a warden restarted within the TTL with a
//!   changed config) is replaced, if still unchanged. The response
//!   header's revision is the success watermark. A key is written by one
//!   warden: the registry keeps alive the lease of a registration it
//!   adopts.
//! - **Deregister** forgets the registration first (so its delete is no
//!   report), deletes the key if it is still that registration, and
//!   revokes the lease; it also revokes the leases of the key's registers
//!   that did not settle (dropped after their transaction was sent, which
//!   etcd may have applied or may still apply: revoking a lease deletes
//!   its keys, and a put under a revoked lease fails).
//!
//! The client (etcd-client, over tonic) talks to the network itself: this
//! module is the real edge, like `env::real`; its timers and tasks still
//! go through [`Env`](crate::env::Env).

mod held;
mod keepalive;
mod leases;
mod registry;
mod reports;

use std::time::Duration;

pub use registry::EtcdRegistry;
pub use reports::{Gone, Path, ReportCounts, Reports};

/// Where the registry is and how it keeps registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs of the cluster's members (`http://127.0.0.1:2379`).
    pub endpoints: Vec<String>,
    /// Prepended to every gate key to make its etcd key (`/services/`).
    pub prefix: String,
    /// The lease TTL of each registration (whole seconds, at least 1).
    pub ttl: Duration,
    /// How often the resync loop reads the prefix.
    pub resync_interval: Duration,
    /// Deadline of one call made outside the gate (watch, keep-alive,
    /// resync, deregister, connect).
    pub call_timeout: Duration,
}

impl EtcdConfig {
    /// Defaults for `endpoints`: prefix `/warden/`, TTL 10 s, resync every
    /// 5 s, calls bounded by 5 s.
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdConfig {
            endpoints,
            prefix: "/warden/".to_owned(),
            ttl: Duration::from_secs(10),
            resync_interval: Duration::from_secs(5),
            call_timeout: Duration::from_secs(5),
        }
    }

    /// The etcd key of gate key `key`.
    pub fn etcd_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The gate key of etcd key `etcd_key`, if it is under the prefix.
    pub fn gate_key<'a>(&self, etcd_key: &'a str) -> Option<&'a str> {
        etcd_key.strip_prefix(self.prefix.as_str()).filter(|k| !k.is_empty())
    }

    /// The TTL etcd is asked for, in whole seconds.
    pub fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX).max(1)
    }
}

/// The runtime id of the registration of `key` put at `revision`.
pub fn runtime_id(key: &str, revision: u64) -> String {
    format!("{key}@{revision}")
}

/// The key and revision of a runtime id made by [`runtime_id`].
pub fn parse_runtime_id(id: &str) -> Option<(&str, u64)> {
    let (key, rev) = id.rsplit_once('@')?;
    Some((key, rev.parse().ok()?))
}

/// A call to etcd that failed or timed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("etcd: {0}")]
pub struct EtcdError(pub String);

impl From<etcd_client::Error> for EtcdError {
    fn from(e: etcd_client::Error) -> Self {
        EtcdError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_runtime_ids_round_trip() {
        let c = EtcdConfig::new(vec!["http://127.0.0.1:2379".into()]);
        assert_eq!(c.etcd_key("web"), "/warden/web");
        assert_eq!(c.gate_key("/warden/web"), Some("web"));
        assert_eq!(c.gate_key("/warden/"), None);
        assert_eq!(c.gate_key("/other/web"), None);
        assert_eq!(parse_runtime_id(&runtime_id("a@b", 42)), Some(("a@b", 42)));
        assert_eq!(parse_runtime_id("web"), None);
        let short = EtcdConfig { ttl: Duration::from_millis(300), ..c };
        assert_eq!(short.ttl_secs(), 1);
    }
}
