//! [`EtcdRegistry`]: the gate's [`Registry`] on etcd v3 (see the module
//! docs for what register, gone and deregister mean there).

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use futures::channel::mpsc;

use super::held::{Held, HeldMap};
use super::reports::{Gone, Path, ReportCounts, Reports};
use super::{EtcdConfig, EtcdError, parse_runtime_id, runtime_id};
use crate::env::{CancellationToken, Env, Instant};
use crate::gate::{AckStatus, Condition, HeartbeatAck, Registered, Registry, RegistryError, Runtime};

/// The provider name of an etcd registration (one per key).
const PROVIDER: &str = "etcd";
/// Tries of one deregistration, and the pause between them.
pub(super) const DEREGISTER_TRIES: u32 = 5;
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(100);

pub(super) struct Inner<E: Env> {
    pub(super) env: E,
    pub(super) client: Client,
    pub(super) config: EtcdConfig,
    pub(super) held: RefCell<HeldMap>,
    reports: mpsc::UnboundedSender<Gone>,
    pub(super) counts: RefCell<ReportCounts>,
    /// Stops the watch, the resync loop and every keep-alive.
    pub(super) root: CancellationToken,
}

/// The gate's registry on etcd v3; cheap to clone.
pub struct EtcdRegistry<E: Env>(pub(super) Rc<Inner<E>>);

impl<E: Env> Clone for EtcdRegistry<E> {
    fn clone(&self) -> Self {
        EtcdRegistry(self.0.clone())
    }
}

impl<E: Env> EtcdRegistry<E> {
    /// Connects to `config.endpoints` and starts the watch and the resync
    /// loop; gone registrations come out of the returned [`Reports`].
    pub async fn connect(env: E, config: EtcdConfig) -> Result<(Self, Reports), EtcdError> {
        let options = ConnectOptions::new().with_connect_timeout(config.call_timeout);
        let connect = Client::connect(config.endpoints.clone(), Some(options));
        let mut client = bounded(&env, config.call_timeout, connect).await?;
        // The watch starts after the revision read here: what was deleted
        // before is the resync loop's to find.
        let probe = client.get(config.prefix.clone(), Some(GetOptions::new().with_prefix().with_count_only()));
        let start = revision_of(bounded(&env, config.call_timeout, probe).await?.header()) + 1;
        let (tx, rx) = mpsc::unbounded();
        let inner = Inner {
            env,
            client,
            config,
            held: RefCell::default(),
            reports: tx,
            counts: RefCell::default(),
            root: CancellationToken::new(),
        };
        let registry = EtcdRegistry(Rc::new(inner));
        registry.start_watch(start);
        registry.start_resync();
        Ok((registry, Reports::new(rx)))
    }

    /// Sets the value `key` registers (before its first register).
    pub fn set_value(&self, key: &str, value: &str) {
        self.0.held.borrow_mut().set_value(key, value);
    }

    /// (gate key, runtime id, revision) of every registration held.
    pub fn held(&self) -> Vec<(String, String, u64)> {
        self.0.held.borrow().snapshot()
    }

    /// How many gone reports each path sent so far.
    pub fn report_counts(&self) -> ReportCounts {
        *self.0.counts.borrow()
    }

    /// The configuration.
    pub fn config(&self) -> &EtcdConfig {
        &self.0.config
    }

    /// The leases granted by registers of `key` that have not settled
    /// (neither hold a registration nor were revoked): a register dropped
    /// after its transaction was sent may have put the key under one.
    pub fn unsettled(&self, key: &str) -> Vec<i64> {
        self.0.held.borrow().unsettled(key)
    }

    /// Deregisters whatever registration is held for `key` (one the gate
    /// may not know of: a register it saw fail that etcd applied), and
    /// revokes the unsettled leases of its registers (see
    /// [`EtcdRegistry::unsettled`]).
    pub async fn deregister_key(&self, key: &str) -> Result<(), EtcdError> {
        // RACE CONDITION SAFETY: a register dropped after its transaction
        // was sent (the gate stopped before this) is no held registration,
        // yet etcd may have applied it, or may still: revoking its lease
        // deletes the key put under it, and a put under a revoked lease
        // fails. Without this it would outlive the deregistration by up to
        // a TTL.
        let unsettled = self.0.held.borrow_mut().take_unsettled(key);
        let held = self.0.held.borrow().get(key).map(|h| h.runtime_id.clone());
        let deregistered = async {
            match held {
                Some(id) => self.clone().deregister_one(id).await,
                None => Ok(()),
            }
        };
        let (revoked, deregistered) = futures::future::join(self.revoke_all(unsettled), deregistered).await;
        revoked.and(deregistered)
    }

    /// Revokes every unsettled lease (bounded), then stops the watch, the
    /// resync loop and every keep-alive (after the gate's shutdown
    /// deregistered what it held); held leases not revoked then expire at
    /// their TTL.
    pub async fn close(&self) {
        let unsettled = self.0.held.borrow_mut().take_all_unsettled();
        match self.0.env.timeout(self.0.config.call_timeout, self.revoke_all(unsettled)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "etcd: cannot revoke unsettled leases; they expire at their TTL"),
            Err(_) => tracing::warn!("etcd: unsettled leases not revoked in time; they expire at their TTL"),
        }
        self.0.held.borrow_mut().clear();
        self.0.root.cancel();
    }

    /// Sends `gone` if it is about the registration held for its key.
    pub(super) fn report(&self, gone: Gone) {
        if !self.0.held.borrow().is_current(&gone.key, &gone.runtime_id) {
            return;
        }
        self.0.counts.borrow_mut().add(gone.path);
        tracing::info!(
            key = gone.key.as_str(),
            runtime = gone.runtime_id.as_str(),
            revision = gone.revision,
            path = gone.path.name(),
            "etcd: registration gone"
        );
        // The receiver is gone only at shutdown.
        let _ = self.0.reports.unbounded_send(gone);
    }

    /// Reads `key` and reports its registration `runtime_id` gone if the
    /// key is absent (at the read's revision).
    pub(super) async fn report_if_absent(&self, key: &str, runtime_id: &str, path: Path) {
        let mut client = self.0.client.clone();
        let get = client.get(self.0.config.etcd_key(key), None);
        match bounded(&self.0.env, self.0.config.call_timeout, get).await {
            Ok(r) if r.kvs().is_empty() => {
                let revision = revision_of(r.header());
                self.report(Gone { key: key.to_owned(), runtime_id: runtime_id.to_owned(), revision, path });
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(key, error = %e, "etcd: cannot read a registration"),
        }
    }

    /// Holds the registration of `key` put at `revision` under `lease` and
    /// keeps the lease alive; releases the one it replaces, and revokes the
    /// other unsettled leases of `key` (the registers they were granted to
    /// were dropped: their compare can no longer succeed, or, with no
    /// condition, they would replace this one).
    fn hold(&self, key: &str, revision: u64, lease: i64) -> String {
        let others = {
            let mut held = self.0.held.borrow_mut();
            held.settle(key, lease);
            held.take_unsettled(key)
        };
        for other in others {
            self.revoke_later(other);
        }
        let id = runtime_id(key, revision);
        let token = self.0.root.child_token();
        let held = Held { runtime_id: id.clone(), revision, lease, keepalive: token.clone() };
        let previous = self.0.held.borrow_mut().hold(key, held);
        if let Some(p) = previous {
            p.keepalive.cancel();
            if p.lease != lease {
                self.revoke_later(p.lease);
            }
        }
        if lease != 0 {
            let (me, key2, id2) = (self.clone(), key.to_owned(), id.clone());
            drop(self.0.env.spawn("etcd.keepalive", async move { me.keep_alive(&key2, &id2, lease, token).await }));
        }
        id
    }

    async fn register_once(self, key: String, condition: Condition) -> Result<Registered, EtcdError> {
        let mut client = self.0.client.clone();
        let etcd_key = self.0.config.etcd_key(&key);
        let value = self.0.held.borrow().value(&key);
        let lease = client.lease_grant(self.0.config.ttl_secs(), None).await?.id();
        // Unsettled until this register holds a registration under it or
        // revokes it: dropped after the transaction below was sent, it
        // leaves etcd a put under this lease to apply (see deregister_key).
        // Dropped before this line, nothing is put under the lease.
        self.0.held.borrow_mut().granted(&key, lease);
        let compare = match condition {
            // A deleted key compares as mod_revision 0: it always applies.
            Condition::NotRegisteredSince(since) => {
                vec![Compare::mod_revision(etcd_key.clone(), CompareOp::Less, saturating_i64(since.saturating_add(1)))]
            }
            Condition::Always => Vec::new(),
        };
        let txn = Txn::new()
            .when(compare)
            .and_then(vec![TxnOp::put(etcd_key.clone(), value.clone(), Some(PutOptions::new().with_lease(lease)))])
            .or_else(vec![TxnOp::get(etcd_key.clone(), None)]);
        // An error leaves the lease unsettled: etcd may have applied it.
        let response = client.txn(txn).await?;
        if response.succeeded() {
            let revision = revision_of(response.header());
            let id = self.hold(&key, revision, lease);
            return Ok(Registered { runtimes: vec![runtime(&key, id)], revision: Some(revision), applied: true });
        }
        let kv = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(g) => g.kvs().first().cloned(),
            _ => None,
        });
        let Some(kv) = kv else {
            self.abandon(&key, lease);
            return Err(EtcdError(format!("{key}: compare failed on an absent key")));
        };
        if kv.value() != value.as_bytes() {
            // Ours, with another value (a warden restarted within the TTL
            // with a changed config): replace it, if it is still that one.
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(etcd_key.clone(), CompareOp::Equal, kv.mod_revision())])
                .and_then(vec![TxnOp::put(etcd_key, value, Some(PutOptions::new().with_lease(lease)))]);
            let response = client.txn(txn).await?;
            if !response.succeeded() {
                self.abandon(&key, lease);
                return Err(EtcdError(format!("{key}: changed while its value was replaced")));
            }
            let revision = revision_of(response.header());
            // The lease it was under is left to expire: it may not be ours.
            let id = self.hold(&key, revision, lease);
            return Ok(Registered { runtimes: vec![runtime(&key, id)], revision: Some(revision), applied: true });
        }
        // RACE CONDITION SAFETY: a registration made after the deletion the
        // gate saw is in place (a retry whose predecessor applied, its
        // reply lost): adopt it and its lease instead of registering twice.
        self.abandon(&key, lease);
        let revision = u64::try_from(kv.mod_revision()).unwrap_or(0);
        let id = self.hold(&key, revision, kv.lease());
        Ok(Registered { runtimes: vec![runtime(&key, id)], revision: Some(revision), applied: false })
    }

    async fn deregister_one(self, id: String) -> Result<(), EtcdError> {
        let Some((key, revision)) = parse_runtime_id(&id) else { return Ok(()) };
        // Released first: the delete below is then no gone report.
        let held = self.0.held.borrow_mut().release(key, &id);
        if let Some(h) = &held {
            h.keepalive.cancel();
        }
        let etcd_key = self.0.config.etcd_key(key);
        let lease = held.map_or(0, |h| h.lease);
        let mut last = Ok(());
        // A call may go to a member that is down: try again (both steps are
        // idempotent); the lease expires at its TTL if every try fails.
        for _ in 0..DEREGISTER_TRIES {
            let mut client = self.0.client.clone();
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(etcd_key.clone(), CompareOp::Equal, saturating_i64(revision))])
                .and_then(vec![TxnOp::delete(etcd_key.clone(), None)]);
            last = bounded(&self.0.env, self.0.config.call_timeout, client.txn(txn)).await.map(drop);
            if last.is_ok() {
                break;
            }
            self.0.env.sleep(RETRY_PAUSE).await;
        }
        last?;
        if lease == 0 { Ok(()) } else { self.revoke(lease).await }
    }
}

fn runtime(key: &str, id: String) -> Runtime {
    Runtime { id, key: key.to_owned(), provider: PROVIDER.to_owned() }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The revision a response header carries (0 without one).
pub(super) fn revision_of(header: Option<&etcd_client::ResponseHeader>) -> u64 {
    header.map_or(0, |h| u64::try_from(h.revision()).unwrap_or(0))
}

/// Runs an etcd call under `limit`.
pub(super) async fn bounded<E: Env, T>(
    env: &E,
    limit: Duration,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, EtcdError> {
    match env.timeout(limit, call).await {
        Ok(r) => r.map_err(EtcdError::from),
        Err(_) => Err(EtcdError(format!("no answer within {limit:?}"))),
    }
}

impl<E: Env> Registry for EtcdRegistry<E> {
    fn register(
        &self,
        key: &str,
        condition: Condition,
        _deadline: Instant,
    ) -> impl Future<Output = Result<Registered, RegistryError>> + 'static {
        // The gate's driver bounds the attempt by its deadline.
        let once = self.clone().register_once(key.to_owned(), condition);
        async move { once.await.map_err(|e| RegistryError(e.to_string())) }
    }

    fn recover_orphans(&self, _key: &str) -> impl Future<Output = Result<(), RegistryError>> + 'static {
        // Nothing is left behind in etcd by a gone registration.
        std::future::ready(Ok(()))
    }

    fn deregister(&self, runtime_ids: &[String]) -> impl Future<Output = Result<(), RegistryError>> + 'static {
        let (me, ids) = (self.clone(), runtime_ids.to_vec());
        async move {
            let calls = ids.into_iter().map(|id| {
                let me = me.clone();
                async move { me.deregister_one(id.clone()).await.map_err(|e| format!("{id}: {e}")) }
            });
            let failed: Vec<String> =
                futures::future::join_all(calls).await.into_iter().filter_map(Result::err).collect();
            if failed.is_empty() { Ok(()) } else { Err(RegistryError(failed.join("; "))) }
        }
    }

    fn heartbeat(&self, runtime_id: &str) -> impl Future<Output = Result<HeartbeatAck, RegistryError>> + 'static {
        let (me, id) = (self.clone(), runtime_id.to_owned());
        async move {
            let Some((key, revision)) = parse_runtime_id(&id) else {
                return Err(RegistryError(format!("not an etcd runtime id: {id:?}")));
            };
            let mut client = me.0.client.clone();
            let get = client.get(me.0.config.etcd_key(key), None);
            let r =
                bounded(&me.0.env, me.0.config.call_timeout, get).await.map_err(|e| RegistryError(e.to_string()))?;
            let current = r.kvs().first().map(|kv| u64::try_from(kv.mod_revision()).unwrap_or(0));
            let status = match current {
                Some(c) if c == revision => AckStatus::Ok,
                // Replaced at `c`: gone just before it, so the gate's
                // register is answered "already registered at c".
                Some(c) => AckStatus::Gone { revision: Some(c.saturating_sub(1)) },
                None => AckStatus::Gone { revision: Some(revision_of(r.header())) },
            };
            Ok(HeartbeatAck { runtime_id: id, status })
        }
    }
}
