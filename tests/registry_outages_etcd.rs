//! The gate while etcd itself fails (feature `etcd`): paused past the
//! lease TTL, killed and restarted on its data dir, one member of three
//! killed. etcd's own history of the prefix must be put, (delete, put)*
//! per key, with the last put present: one registration per deletion,
//! every deletion recovered, nothing lost or doubled.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
mod etcd_support;

use std::time::{Duration, Instant as StdInstant};

use etcd_client::Client;
use etcd_support::fleet::{Knobs, block_on, fleet, report, serial};
use etcd_support::{Cluster, check_one_per_deletion, history};
use warden::env::Env;
use warden::env::real::RealEnv;

#[test]
fn etcd_paused_past_the_lease_ttl_every_deletion_is_recovered_once() {
    let _one = serial();
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
    let _one = serial();
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
    let _one = serial();
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
