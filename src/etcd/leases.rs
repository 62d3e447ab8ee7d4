//! Revoking the leases of registrations: a lease revoked deletes the keys
//! put under it, and a put under a revoked lease fails, which is how the
//! registry ends a registration it released and what a dropped register
//! may have put or may still put (see `EtcdRegistry::unsettled`).

use super::EtcdError;
use super::registry::{DEREGISTER_TRIES, EtcdRegistry, RETRY_PAUSE, bounded};
use crate::env::Env;

impl<E: Env> EtcdRegistry<E> {
    /// Forgets `lease`, granted to a register of `key` that failed, and
    /// revokes it in the background.
    pub(super) fn abandon(&self, key: &str, lease: i64) {
        self.0.held.borrow_mut().settle(key, lease);
        self.revoke_later(lease);
    }

    /// Revokes `lease` in the background (best effort: an unrevoked lease
    /// expires at its TTL).
    pub(super) fn revoke_later(&self, lease: i64) {
        if lease == 0 {
            return;
        }
        let me = self.clone();
        drop(self.0.env.spawn("etcd.revoke", async move {
            if let Err(e) = me.revoke(lease).await {
                tracing::debug!(lease, error = %e, "etcd: cannot revoke a lease");
            }
        }));
    }

    /// Revokes every lease of `leases`, each as [`Self::revoke`] does.
    pub(super) async fn revoke_all(&self, leases: Vec<i64>) -> Result<(), EtcdError> {
        let revoked = futures::future::join_all(leases.into_iter().map(|l| self.revoke(l))).await;
        revoked.into_iter().collect()
    }

    /// Revokes `lease`, trying again while etcd cannot be reached; a lease
    /// etcd no longer has (expired, revoked before) is revoked.
    pub(super) async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        let mut last = Ok(());
        for _ in 0..DEREGISTER_TRIES {
            let mut client = self.0.client.clone();
            last = bounded(&self.0.env, self.0.config.call_timeout, client.lease_revoke(lease)).await.map(drop);
            if last.is_err() && self.lease_known(lease).await == Ok(false) {
                return Ok(());
            }
            if last.is_ok() {
                break;
            }
            self.0.env.sleep(RETRY_PAUSE).await;
        }
        last
    }

    /// Whether etcd has `lease`: its time-to-live answer for a lease it
    /// does not have carries TTL -1.
    pub(super) async fn lease_known(&self, lease: i64) -> Result<bool, EtcdError> {
        let mut client = self.0.client.clone();
        let ask = client.lease_time_to_live(lease, None);
        Ok(bounded(&self.0.env, self.0.config.call_timeout, ask).await?.ttl() >= 0)
    }
}
