//! The gate against etcd as the tests drive it: a registry wrapper in
//! front of etcd that delays registers and, for some, loses the reply after
//! etcd applied them (so the gate's retry is answered "already registered
//! at R" by etcd's compare), and a fleet of keys kept registered by one
//! recovery driver over it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant as StdInstant};

use etcd_client::Client;
use warden::env::real::RealEnv;
use warden::env::{Env, Instant};
use warden::etcd::{EtcdConfig, EtcdRegistry, ReportCounts};
use warden::gate::{
    Condition, GateConfig, HeartbeatAck, Recovery, RecoveryConfig, Registered, Registry, RegistryError,
};

/// One test at a time: each starts its own etcd, and the pause test is
/// about timing on a 2-core machine.
#[allow(unused_imports)]
pub use crate::common::serial;

pub fn block_on<F: Future>(f: F) -> F::Output {
    RealEnv::block_on(f).expect("cannot start the runtime")
}

/// What the wrapper did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlakyStats {
    pub registers: u64,
    /// Applied by etcd, reply dropped before the gate saw it.
    pub lost_after_apply: u64,
    /// Answered "already registered".
    pub already: u64,
}

/// A registry in front of etcd that delays each register by up to
/// `delay_max` and loses `lose_percent` of the replies of applied ones;
/// registers of a key in `paused` wait until the test takes it out.
#[derive(Clone)]
pub struct Flaky {
    inner: EtcdRegistry<RealEnv>,
    env: RealEnv,
    delay_max: Duration,
    lose_percent: u64,
    stats: Rc<RefCell<FlakyStats>>,
    paused: Rc<RefCell<BTreeSet<String>>>,
}

impl Registry for Flaky {
    fn register(
        &self,
        key: &str,
        condition: Condition,
        deadline: Instant,
    ) -> impl Future<Output = Result<Registered, RegistryError>> + 'static {
        let (env, delay) = (self.env.clone(), self.env.random_duration(self.delay_max));
        let lose = self.env.random_below(100) < self.lose_percent;
        let (inner, key, stats, paused) = (self.inner.clone(), key.to_owned(), self.stats.clone(), self.paused.clone());
        async move {
            env.sleep(delay).await;
            while paused.borrow().contains(&key) {
                env.sleep(Duration::from_millis(20)).await;
            }
            stats.borrow_mut().registers += 1;
            let r = inner.register(&key, condition, deadline).await?;
            if !r.applied {
                stats.borrow_mut().already += 1;
            } else if lose {
                stats.borrow_mut().lost_after_apply += 1;
                return Err(RegistryError("reply lost after apply".into()));
            }
            Ok(r)
        }
    }

    fn recover_orphans(&self, key: &str) -> impl Future<Output = Result<(), RegistryError>> + 'static {
        self.inner.recover_orphans(key)
    }

    fn deregister(&self, ids: &[String]) -> impl Future<Output = Result<(), RegistryError>> + 'static {
        self.inner.deregister(ids)
    }

    fn heartbeat(&self, id: &str) -> impl Future<Output = Result<HeartbeatAck, RegistryError>> + 'static {
        self.inner.heartbeat(id)
    }
}

/// Registrations of `keys` under one recovery driver.
pub struct Fleet {
    pub registry: EtcdRegistry<RealEnv>,
    pub recovery: Recovery<RealEnv, Flaky>,
    pub flaky: Rc<RefCell<FlakyStats>>,
    pub keys: Vec<String>,
    pub prefix: String,
    paused: Rc<RefCell<BTreeSet<String>>>,
}

pub struct Knobs {
    pub keys: usize,
    pub ttl: Duration,
    pub resync: Duration,
    pub delay_max: Duration,
    pub lose_percent: u64,
}

pub async fn fleet(env: &RealEnv, endpoints: Vec<String>, k: Knobs) -> Fleet {
    let prefix = "/services/".to_owned();
    let config = EtcdConfig {
        endpoints,
        prefix: prefix.clone(),
        ttl: k.ttl,
        resync_interval: k.resync,
        call_timeout: Duration::from_secs(2),
    };
    let (registry, reports) = EtcdRegistry::connect(env.clone(), config).await.expect("the registry connects to etcd");
    let keys: Vec<String> = (0..k.keys).map(|i| format!("svc-{i}")).collect();
    for key in &keys {
        registry.set_value(key, &format!("127.0.0.1:{}", 8000 + key.len()));
    }
    let flaky = Rc::new(RefCell::new(FlakyStats::default()));
    let paused = Rc::new(RefCell::new(BTreeSet::new()));
    let front = Flaky {
        paused: paused.clone(),
        inner: registry.clone(),
        env: env.clone(),
        delay_max: k.delay_max,
        lose_percent: k.lose_percent,
        stats: flaky.clone(),
    };
    let gate = GateConfig {
        coalesce_window: Duration::from_secs(10),
        failure_backoff: Duration::from_millis(300),
        failure_backoff_max: Duration::from_secs(2),
        register_deadline: Duration::from_secs(5),
    };
    let rc =
        RecoveryConfig { gate, heartbeats: false, sync_interval: Duration::from_secs(1), ..RecoveryConfig::default() };
    let recovery = Recovery::new(env.clone(), front, rc).expect("valid gate config");
    recovery.start(&keys);
    let route = recovery.clone();
    drop(env.spawn("reports", reports.pump(env.clone(), move |_| Some(route.clone()))));
    Fleet { registry, recovery, flaky, keys, prefix, paused }
}

impl Fleet {
    /// Registers of `key` wait from now on, until [`Fleet::resume`].
    pub fn pause(&self, key: &str) {
        self.paused.borrow_mut().insert(key.to_owned());
    }

    /// Registers of `key` go on.
    pub fn resume(&self, key: &str) {
        self.paused.borrow_mut().remove(key);
    }

    pub fn etcd_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Waits until every key is registered in etcd and the driver holds
    /// exactly that registration (no recovery left to run).
    pub async fn converged(&self, env: &RealEnv, client: &mut Client, timeout: Duration) {
        let end = env.now() + timeout;
        let mut last = String::new();
        while env.now() < end {
            if let Ok(r) = client.get(self.prefix.clone(), Some(etcd_client::GetOptions::new().with_prefix())).await {
                let mut missing = Vec::new();
                for key in &self.keys {
                    let kv = r.kvs().iter().find(|kv| kv.key_str().ok() == Some(self.etcd_key(key).as_str()));
                    let want = kv.map(|kv| vec![format!("{key}@{}", kv.mod_revision())]);
                    let local = self.recovery.runtime_ids_of(key);
                    if want.as_ref() != Some(&local) {
                        missing.push(format!("{key}: etcd {want:?}, driver {local:?}"));
                    }
                }
                if missing.is_empty() {
                    return;
                }
                last = missing.join("; ");
            }
            env.sleep(Duration::from_millis(100)).await;
        }
        panic!("not converged within {timeout:?}: {last}");
    }

    /// Deletes these keys at once: `revoke` picks which go by their lease
    /// being revoked rather than by a delete. Returns how many were deleted.
    pub async fn wave(&self, client: &Client, victims: &[(String, bool)]) -> usize {
        let calls = victims.iter().map(|(key, revoke)| {
            let (mut c, etcd_key, revoke) = (client.clone(), self.etcd_key(key), *revoke);
            async move {
                let kv = c.get(etcd_key.clone(), None).await.ok()?.kvs().first().cloned()?;
                if revoke && kv.lease() != 0 {
                    c.lease_revoke(kv.lease()).await.ok().map(|_| 1)
                } else {
                    c.delete(etcd_key, None).await.ok().map(|r| r.deleted() as usize)
                }
            }
        });
        futures::future::join_all(calls).await.into_iter().flatten().sum()
    }

    /// Deregisters (the gate's shutdown) and checks the prefix is empty.
    pub async fn shutdown(self, client: &mut Client) {
        self.recovery.shutdown().await;
        self.registry.close().await;
        let r = client.get(self.prefix.clone(), Some(etcd_client::GetOptions::new().with_prefix())).await;
        let left = r.map(|r| r.kvs().len()).unwrap_or(usize::MAX);
        assert_eq!(left, 0, "registrations left after deregistration");
    }
}

/// A small deterministic stream of choices for the waves.
pub struct Dice(pub u64);

impl Dice {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = warden::env::splitmix64(&mut self.0);
        self.0 % n.max(1)
    }
}

pub fn report(name: &str, started: StdInstant, counts: ReportCounts, flaky: FlakyStats, deletions: usize) {
    eprintln!(
        "{name}: {:.1} s, {deletions} deletions; reports: watch {} keep-alive {} resync {}; registers {} \
         (reply lost after apply {}, already registered {})",
        started.elapsed().as_secs_f64(),
        counts.watch,
        counts.keep_alive,
        counts.resync,
        flaky.registers,
        flaky.lost_after_apply,
        flaky.already
    );
}
