//! The leases of registers that did not settle, against a real etcd server
//! (feature `etcd`). A register is dropped (its deadline passed, the
//! service stopped) after etcd granted its lease and its transaction was
//! sent: etcd applies the put, under a lease no one keeps alive. The
//! deregistration of the key, and the registry's close, must remove that
//! registration at once, not a TTL later; the next register that settles
//! revokes the lease too. And a keep-alive that starts on a lease already
//! gone reports the registration gone.
//!
//! Each test polls the register by hand: the poll in which its lease is
//! granted also sends its transaction, and the register is never polled
//! again, so it never sees the reply (etcd's client sends the request from
//! its own tasks while the register future lives).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
mod etcd_support;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use etcd_support::Cluster;
use etcd_support::fleet::{block_on, serial};
use warden::env::real::RealEnv;
use warden::env::{Env, Instant};
use warden::etcd::{EtcdConfig, EtcdRegistry, Path, Reports};
use warden::gate::{Condition, Registered, Registry, RegistryError};

const PREFIX: &str = "/services/";
/// Long enough that a registration left to its TTL would still be there
/// when each test looks.
const TTL: Duration = Duration::from_secs(60);

type Register = Pin<Box<dyn Future<Output = Result<Registered, RegistryError>>>>;

async fn connect(env: &RealEnv, endpoints: &[String]) -> (EtcdRegistry<RealEnv>, Reports) {
    let config = EtcdConfig {
        endpoints: endpoints.to_vec(),
        prefix: PREFIX.into(),
        ttl: TTL,
        resync_interval: Duration::from_millis(300),
        call_timeout: Duration::from_secs(2),
    };
    EtcdRegistry::connect(env.clone(), config).await.expect("the registry connects to etcd")
}

/// (mod_revision, lease) of `key`.
async fn read(client: &mut Client, key: &str) -> Option<(i64, i64)> {
    let r = client.get(format!("{PREFIX}{key}"), None).await.expect("read");
    r.kvs().first().map(|kv| (kv.mod_revision(), kv.lease()))
}

/// How many keys are under the prefix.
async fn count(client: &mut Client) -> usize {
    client.get(PREFIX, Some(GetOptions::new().with_prefix())).await.expect("read the prefix").kvs().len()
}

/// Whether etcd still has `lease`.
async fn lease_alive(client: &mut Client, lease: i64) -> bool {
    client.lease_time_to_live(lease, None).await.expect("lease time-to-live").ttl() >= 0
}

/// Starts a register of `key` and polls it until its lease is granted
/// (and its transaction sent), then waits, polling it no more, until etcd
/// applied that transaction. Returns the register (unpolled since) and
/// the lease the key is under.
async fn applied_unseen(
    env: &RealEnv,
    registry: &EtcdRegistry<RealEnv>,
    client: &mut Client,
    key: &str,
    condition: Condition,
) -> (Register, i64) {
    let end = env.now() + Duration::from_secs(10);
    let mut register: Register = Box::pin(registry.register(key, condition, Instant::BOOT));
    while registry.unsettled(key).is_empty() {
        if let Poll::Ready(r) = futures::poll!(register.as_mut()) {
            panic!("{key}: the register ended before its lease was granted: {r:?}");
        }
        assert!(env.now() < end, "{key}: no lease granted within 10 s");
        env.sleep(Duration::from_millis(5)).await;
    }
    let granted = registry.unsettled(key);
    loop {
        if let Some((_, lease)) = read(client, key).await {
            assert_eq!(granted, [lease], "{key}: put under another lease than its register's");
            return (register, lease);
        }
        assert!(env.now() < end, "{key}: the transaction of its register never reached etcd");
        env.sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_register_dropped_after_its_transaction_was_sent_does_not_outlive_the_deregistration() {
    let _one = serial();
    let cluster = Cluster::start("dropped", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        let (registry, _reports) = connect(&env, &endpoints).await;
        registry.set_value("web", "127.0.0.1:8080");
        let (register, lease) =
            applied_unseen(&env, &registry, &mut client, "web", Condition::NotRegisteredSince(0)).await;
        // The service stops: its driver drops the register, then the key is
        // deregistered. Nothing is held for it.
        drop(register);
        assert!(registry.held().is_empty(), "a dropped register holds nothing: {:?}", registry.held());
        registry.deregister_key("web").await.expect("deregisters");
        assert_eq!(count(&mut client).await, 0, "the dropped register's registration outlived the deregistration");
        assert!(!lease_alive(&mut client, lease).await, "its lease {lease} is still alive");
        assert!(registry.unsettled("web").is_empty());
        registry.close().await;
    });
    drop(cluster);
}

#[test]
fn a_register_dropped_after_its_transaction_was_sent_does_not_outlive_the_close() {
    let _one = serial();
    let cluster = Cluster::start("dropped-close", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        let (registry, _reports) = connect(&env, &endpoints).await;
        registry.set_value("web", "127.0.0.1:8080");
        let (register, lease) = applied_unseen(&env, &registry, &mut client, "web", Condition::Always).await;
        drop(register);
        registry.close().await;
        assert_eq!(count(&mut client).await, 0, "the dropped register's registration outlived the close");
        assert!(!lease_alive(&mut client, lease).await, "its lease {lease} is still alive");
    });
    drop(cluster);
}

#[test]
fn the_next_register_to_settle_revokes_the_lease_of_one_dropped() {
    let _one = serial();
    let cluster = Cluster::start("dropped-next", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        let (registry, _reports) = connect(&env, &endpoints).await;
        registry.set_value("web", "127.0.0.1:8080");
        let (register, dropped) =
            applied_unseen(&env, &registry, &mut client, "web", Condition::NotRegisteredSince(0)).await;
        drop(register);
        // Deleted (not by the registry): the next register applies.
        let deleted = client.delete(format!("{PREFIX}web"), None).await.expect("delete");
        let at = deleted.header().map_or(0, |h| h.revision());
        let since = u64::try_from(at).expect("a revision");
        let r = registry.register("web", Condition::NotRegisteredSince(since), Instant::BOOT).await.expect("registers");
        assert!(r.applied, "registered after the deletion: {r:?}");
        let (_, lease) = read(&mut client, "web").await.expect("registered");
        assert_ne!(lease, dropped);
        let end = env.now() + Duration::from_secs(5);
        while lease_alive(&mut client, dropped).await {
            assert!(env.now() < end, "the dropped register's lease {dropped} outlived the next register");
            env.sleep(Duration::from_millis(50)).await;
        }
        assert!(registry.unsettled("web").is_empty(), "left unsettled: {:?}", registry.unsettled("web"));
        assert!(lease_alive(&mut client, lease).await, "the registration's own lease is alive");
        registry.deregister_key("web").await.expect("deregisters");
        assert_eq!(count(&mut client).await, 0);
        registry.close().await;
    });
    drop(cluster);
}

#[test]
fn a_keep_alive_that_starts_on_a_lease_already_gone_reports_the_registration_gone() {
    let _one = serial();
    let cluster = Cluster::start("gone-lease", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        let (registry, mut reports) = connect(&env, &endpoints).await;
        registry.set_value("web", "127.0.0.1:8080");
        let (register, lease) =
            applied_unseen(&env, &registry, &mut client, "web", Condition::NotRegisteredSince(0)).await;
        // The lease goes before the register sees its reply: the keep-alive
        // of the registration it then holds cannot start.
        client.lease_revoke(lease).await.expect("revoke");
        let r = register.await.expect("the register's reply");
        assert!(r.applied, "{r:?}");
        let end = env.now() + Duration::from_secs(10);
        loop {
            let next = env.timeout(end.saturating_duration_since(env.now()), reports.next()).await;
            let gone = next.ok().flatten().expect("no keep-alive report within 10 s");
            assert_eq!(gone.runtime_id, r.runtimes[0].id);
            if gone.path == Path::KeepAlive {
                break;
            }
        }
        assert!(registry.report_counts().keep_alive > 0);
        registry.close().await;
    });
    drop(cluster);
}
