//! The gate against real etcd servers (feature `etcd`): registrations are
//! keys under leases, deleted in waves (the key deleted, or its lease
//! revoked) while the watch, the keep-alives and the resync loop all report;
//! etcd paused past the lease TTL; etcd killed and restarted on its data
//! dir; a three-member cluster with one member killed. Each test reads the
//! prefix's whole history from etcd at the end: every key's history must be
//! put, (delete, put)*, with the last put present: one registration per
//! deletion, every deletion recovered.
//!
//! In front of etcd sits a registry wrapper that delays registers and, for
//! some, loses the reply after etcd applied them, so the gate's retry is
//! answered "already registered at R" by etcd's compare.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod etcd_support;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant as StdInstant};

use etcd_client::Client;
use etcd_support::{Cluster, check_one_per_deletion, history};
use warden::env::real::RealEnv;
use warden::env::{Env, Instant};
use warden::etcd::{EtcdConfig, EtcdRegistry, ReportCounts};
use warden::gate::{
    Condition, GateConfig, HeartbeatAck, Recovery, RecoveryConfig, Registered, Registry, RegistryError,
};

/// One test at a time: each starts its own etcd, and the pause test is
/// about timing on a 2-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn block_on<F: Future>(f: F) -> F::Output {
    RealEnv::block_on(f).expect("cannot start the runtime")
}

/// What the wrapper did.
#[derive(Debug, Default, Clone, Copy)]
struct FlakyStats {
    registers: u64,
    /// Applied by etcd, reply dropped before the gate saw it.
    lost_after_apply: u64,
    /// Answered "already registered".
    already: u64,
}

/// A registry in front of etcd that delays each register by up to
/// `delay_max` and loses `lose_percent` of the replies of applied ones.
#[derive(Clone)]
struct Flaky {
    inner: EtcdRegistry<RealEnv>,
    env: RealEnv,
    delay_max: Duration,
    lose_percent: u64,
    stats: Rc<RefCell<FlakyStats>>,
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
        let (inner, key, stats) = (self.inner.clone(), key.to_owned(), self.stats.clone());
        async move {
            env.sleep(delay).await;
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
struct Fleet {
    registry: EtcdRegistry<RealEnv>,
    recovery: Recovery<RealEnv, Flaky>,
    flaky: Rc<RefCell<FlakyStats>>,
    keys: Vec<String>,
    prefix: String,
}

struct Knobs {
    keys: usize,
    ttl: Duration,
    resync: Duration,
    delay_max: Duration,
    lose_percent: u64,
}

async fn fleet(env: &RealEnv, endpoints: Vec<String>, k: Knobs) -> Fleet {
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
    let front = Flaky {
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
    Fleet { registry, recovery, flaky, keys, prefix }
}

impl Fleet {
    fn etcd_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Waits until every key is registered in etcd and the driver holds
    /// exactly that registration (no recovery left to run).
    async fn converged(&self, env: &RealEnv, client: &mut Client, timeout: Duration) {
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
    async fn wave(&self, client: &Client, victims: &[(String, bool)]) -> usize {
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
    async fn shutdown(self, client: &mut Client) {
        self.recovery.shutdown().await;
        self.registry.close();
        let r = client.get(self.prefix.clone(), Some(etcd_client::GetOptions::new().with_prefix())).await;
        let left = r.map(|r| r.kvs().len()).unwrap_or(usize::MAX);
        assert_eq!(left, 0, "registrations left after deregistration");
    }
}

/// A small deterministic stream of choices for the waves.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = warden::env::splitmix64(&mut self.0);
        self.0 % n.max(1)
    }
}

fn report(name: &str, started: StdInstant, counts: ReportCounts, flaky: FlakyStats, deletions: usize) {
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

#[test]
fn waves_of_deletions_register_once_per_deletion_while_every_path_reports() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = StdInstant::now();
    let cluster = Cluster::start("waves", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let knobs = Knobs {
            keys: 10,
            ttl: Duration::from_secs(2),
            resync: Duration::from_millis(200),
            delay_max: Duration::from_millis(800),
            lose_percent: 25,
        };
        let f = fleet(&env, endpoints.clone(), knobs).await;
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        f.converged(&env, &mut client, Duration::from_secs(20)).await;
        let mut dice = Dice(16);
        let mut deleted = 0;
        for wave in 0..8 {
            let n = 1 + dice.below(5) as usize;
            let mut victims: Vec<(String, bool)> = Vec::new();
            while victims.len() < n {
                let key = f.keys[dice.below(f.keys.len() as u64) as usize].clone();
                if !victims.iter().any(|(k, _)| *k == key) {
                    victims.push((key, dice.below(2) == 0));
                }
            }
            deleted += f.wave(&client, &victims).await;
            if wave % 3 == 2 {
                // The same key again, while its recovery may be in flight.
                env.sleep(Duration::from_millis(dice.below(400))).await;
                deleted += f.wave(&client, &victims[..1]).await;
            }
            f.converged(&env, &mut client, Duration::from_secs(20)).await;
        }
        let (changes, present) = history(&endpoints, &f.prefix).await;
        let keys: Vec<String> = f.keys.iter().map(|k| f.etcd_key(k)).collect();
        let deletions = check_one_per_deletion(&changes, &present, &keys);
        assert_eq!(deletions, deleted, "etcd's history has {deletions} deletions; the waves made {deleted}");
        let (counts, flaky) = (f.registry.report_counts(), *f.flaky.borrow());
        report("waves", started, counts, flaky, deletions);
        assert!(counts.watch > 0 && counts.keep_alive > 0 && counts.resync > 0, "a path never reported: {counts:?}");
        assert!(flaky.lost_after_apply > 0 && flaky.already > 0, "no lost reply was answered 'already': {flaky:?}");
        f.shutdown(&mut client).await;
    });
    drop(cluster);
}

#[test]
fn etcd_paused_past_the_lease_ttl_every_deletion_is_recovered_once() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = StdInstant::now();
    let cluster = Cluster::start("pause", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let knobs = Knobs {
            keys: 8,
            ttl: Duration::from_secs(2),
            resync: Duration::from_millis(500),
            delay_max: Duration::from_millis(100),
            lose_percent: 10,
        };
        let f = fleet(&env, endpoints.clone(), knobs).await;
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        f.converged(&env, &mut client, Duration::from_secs(20)).await;
        let before: Vec<Vec<String>> = f.keys.iter().map(|k| f.recovery.runtime_ids_of(k)).collect();
        cluster.members[0].signal(libc::SIGSTOP);
        env.sleep(Duration::from_secs(6)).await;
        cluster.members[0].signal(libc::SIGCONT);
        // Every lease expired during the pause: wait until every key holds a
        // registration made after it.
        let end = env.now() + Duration::from_secs(30);
        while f.keys.iter().zip(&before).any(|(k, b)| f.recovery.runtime_ids_of(k) == *b) {
            assert!(env.now() < end, "registrations from before the pause are still held");
            env.sleep(Duration::from_millis(100)).await;
        }
        f.converged(&env, &mut client, Duration::from_secs(30)).await;
        let (changes, present) = history(&endpoints, &f.prefix).await;
        let keys: Vec<String> = f.keys.iter().map(|k| f.etcd_key(k)).collect();
        let deletions = check_one_per_deletion(&changes, &present, &keys);
        for key in &keys {
            assert_eq!(changes[key].len(), 3, "{key}: its lease expired once, so put, delete, put: {:?}", changes[key]);
        }
        report("pause", started, f.registry.report_counts(), *f.flaky.borrow(), deletions);
        f.shutdown(&mut client).await;
    });
    drop(cluster);
}

#[test]
fn etcd_killed_and_restarted_on_its_data_dir_loses_and_doubles_nothing() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = StdInstant::now();
    let mut cluster = Cluster::start("restart", 1);
    let endpoints = cluster.endpoints();
    let env = RealEnv::new();
    let knobs = Knobs {
        keys: 8,
        ttl: Duration::from_secs(5),
        resync: Duration::from_millis(500),
        delay_max: Duration::from_millis(100),
        lose_percent: 10,
    };
    // The runtime stays up while etcd is killed and restarted under it.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    let f = local.block_on(&rt, fleet(&env, endpoints.clone(), knobs));
    let mut client = local.block_on(&rt, Client::connect(&endpoints, None)).expect("checking client");
    local.block_on(&rt, f.converged(&env, &mut client, Duration::from_secs(20)));
    let before: Vec<Vec<String>> = f.keys.iter().map(|k| f.recovery.runtime_ids_of(k)).collect();
    cluster.members[0].kill();
    local.block_on(&rt, async { env.sleep(Duration::from_secs(1)).await });
    cluster.restart(0);
    cluster.wait_healthy(Duration::from_secs(30));
    local.block_on(&rt, async {
        // Past a TTL: a lease the keep-alive did not get back would expire.
        env.sleep(Duration::from_secs(6)).await;
        f.converged(&env, &mut client, Duration::from_secs(30)).await;
        let after: Vec<Vec<String>> = f.keys.iter().map(|k| f.recovery.runtime_ids_of(k)).collect();
        // Then a wave, so the watch and the keep-alives are known to work
        // against the restarted server.
        let victims: Vec<(String, bool)> =
            f.keys.iter().take(3).enumerate().map(|(i, k)| (k.clone(), i == 0)).collect();
        let deleted = f.wave(&client, &victims).await;
        f.converged(&env, &mut client, Duration::from_secs(30)).await;
        let (changes, present) = history(&endpoints, &f.prefix).await;
        let keys: Vec<String> = f.keys.iter().map(|k| f.etcd_key(k)).collect();
        let deletions = check_one_per_deletion(&changes, &present, &keys);
        let kept = before.iter().zip(&after).filter(|(b, a)| b == a).count();
        eprintln!("restart: {kept} of {} registrations kept through the restart", f.keys.len());
        assert!(deletions >= deleted, "the wave's {deleted} deletions are not in the history");
        report("restart", started, f.registry.report_counts(), *f.flaky.borrow(), deletions);
        f.shutdown(&mut client).await;
    });
    drop(cluster);
}

#[test]
fn a_three_member_cluster_with_one_member_killed_registers_once_per_deletion() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = StdInstant::now();
    let mut cluster = Cluster::start("three", 3);
    let endpoints = cluster.all_endpoints();
    let env = RealEnv::new();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    let knobs = Knobs {
        keys: 6,
        ttl: Duration::from_secs(4),
        resync: Duration::from_millis(500),
        delay_max: Duration::from_millis(200),
        lose_percent: 20,
    };
    let f = local.block_on(&rt, fleet(&env, endpoints.clone(), knobs));
    let mut client = local.block_on(&rt, Client::connect(&endpoints, None)).expect("checking client");
    local.block_on(&rt, f.converged(&env, &mut client, Duration::from_secs(20)));
    cluster.members[0].kill();
    let live = cluster.endpoints();
    local.block_on(&rt, async {
        let mut client = Client::connect(&live, None).await.expect("checking client on the live members");
        let mut deleted = 0;
        for wave in 0..3 {
            let victims: Vec<(String, bool)> =
                f.keys.iter().skip(wave).step_by(2).map(|k| (k.clone(), wave == 1)).collect();
            deleted += f.wave(&client, &victims).await;
            f.converged(&env, &mut client, Duration::from_secs(30)).await;
        }
        let (changes, present) = history(&live, &f.prefix).await;
        let keys: Vec<String> = f.keys.iter().map(|k| f.etcd_key(k)).collect();
        let deletions = check_one_per_deletion(&changes, &present, &keys);
        assert_eq!(deletions, deleted, "etcd's history has {deletions} deletions; the waves made {deleted}");
        report("three members, one killed", started, f.registry.report_counts(), *f.flaky.borrow(), deletions);
        f.shutdown(&mut client).await;
    });
    drop(cluster);
}

#[test]
fn a_restarted_warden_adopts_its_registration_and_replaces_a_changed_value() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = StdInstant::now();
    let cluster = Cluster::start("adopt", 1);
    let endpoints = cluster.endpoints();
    block_on(async {
        let env = RealEnv::new();
        let mut client = Client::connect(&endpoints, None).await.expect("checking client");
        let config = EtcdConfig {
            endpoints: endpoints.clone(),
            prefix: "/services/".into(),
            ttl: Duration::from_secs(2),
            resync_interval: Duration::from_millis(500),
            call_timeout: Duration::from_secs(2),
        };
        let rc = RecoveryConfig { heartbeats: false, ..RecoveryConfig::default() };
        let keys = ["same".to_owned(), "changed".to_owned()];
        let read = |c: &mut Client, key: &'static str| {
            let mut c = c.clone();
            async move {
                let r = c.get(format!("/services/{key}"), None).await.expect("read");
                r.kvs().first().map(|kv| (kv.value_str().unwrap_or_default().to_owned(), kv.mod_revision()))
            }
        };
        // The first warden registers both, then dies without deregistering.
        let (first, _reports) = EtcdRegistry::connect(env.clone(), config.clone()).await.expect("connects");
        first.set_value("same", "a");
        first.set_value("changed", "old");
        let d1 = Recovery::new(env.clone(), first.clone(), rc).expect("valid");
        d1.start(&keys);
        let end = env.now() + Duration::from_secs(10);
        while d1.runtime_ids_of("same").is_empty() || d1.runtime_ids_of("changed").is_empty() {
            assert!(env.now() < end, "the first warden did not register");
            env.sleep(Duration::from_millis(50)).await;
        }
        let same = read(&mut client, "same").await.expect("registered");
        d1.root().cancel();
        first.close();
        // The next one, within the TTL: adopts "same" as it is and keeps its
        // lease alive; replaces "changed".
        let (second, reports) = EtcdRegistry::connect(env.clone(), config).await.expect("connects");
        second.set_value("same", "a");
        second.set_value("changed", "new");
        let d2 = Recovery::new(env.clone(), second.clone(), rc).expect("valid");
        d2.start(&keys);
        let route = d2.clone();
        drop(env.spawn("reports", reports.pump(env.clone(), move |_| Some(route.clone()))));
        env.sleep(Duration::from_secs(4)).await;
        assert_eq!(
            read(&mut client, "same").await,
            Some(same.clone()),
            "adopted, not registered again, and kept alive"
        );
        assert_eq!(d2.runtime_ids_of("same"), [format!("same@{}", same.1)]);
        let changed = read(&mut client, "changed").await.expect("registered");
        assert_eq!(changed.0, "new", "the changed value replaced the old one");
        assert_eq!(d2.runtime_ids_of("changed"), [format!("changed@{}", changed.1)]);
        d2.shutdown().await;
        second.close();
        eprintln!("adopt: {:.1} s", started.elapsed().as_secs_f64());
    });
    drop(cluster);
}
