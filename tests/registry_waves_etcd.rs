//! The gate against a real etcd server (feature `etcd`): registrations
//! are keys under leases, deleted in waves (the key deleted, or its lease
//! revoked) while the watch, the keep-alives and the resync loop all
//! report, and registers are delayed or lose their reply after etcd
//! applied them. etcd's own history of the prefix must be put,
//! (delete, put)* per key, with the last put present: one registration
//! per deletion, every deletion recovered.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
mod etcd_support;

use std::time::{Duration, Instant as StdInstant};

use etcd_client::Client;
use etcd_support::fleet::{Dice, Fleet, Knobs, block_on, fleet, report, serial};
use etcd_support::{Cluster, check_one_per_deletion, history};
use warden::env::Env;
use warden::env::real::RealEnv;

#[test]
fn waves_of_deletions_register_once_per_deletion_while_every_path_reports() {
    let _one = serial();
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
        deleted += every_path_reports(&f, &env, &client).await;
        f.converged(&env, &mut client, Duration::from_secs(20)).await;
        let (changes, present) = history(&endpoints, &f.prefix).await;
        let keys: Vec<String> = f.keys.iter().map(|k| f.etcd_key(k)).collect();
        let deletions = check_one_per_deletion(&changes, &present, &keys);
        assert_eq!(deletions, deleted, "etcd's history has {deletions} deletions; the waves made {deleted}");
        let (counts, flaky) = (f.registry.report_counts(), *f.flaky.borrow());
        report("waves", started, counts, flaky, deletions);
        assert!(flaky.lost_after_apply > 0 && flaky.already > 0, "no lost reply was answered 'already': {flaky:?}");
        f.shutdown(&mut client).await;
    });
    drop(cluster);
}

/// Revokes the lease of one key while its registers wait, and waits until
/// the watch (its delete event), the keep-alive (its next renewal is
/// answered with TTL 0) and the resync loop (its next read) have each
/// reported the registration gone: nothing re-registers it meanwhile, so
/// each path is bound to. Returns the deletions made (1).
async fn every_path_reports(f: &Fleet, env: &RealEnv, client: &Client) -> usize {
    let before = f.registry.report_counts();
    let key = f.keys[0].clone();
    f.pause(&key);
    let deleted = f.wave(client, &[(key.clone(), true)]).await;
    assert_eq!(deleted, 1, "{key}: its lease was not revoked");
    let end = env.now() + Duration::from_secs(10);
    loop {
        let c = f.registry.report_counts();
        if c.watch > before.watch && c.keep_alive > before.keep_alive && c.resync > before.resync {
            break;
        }
        assert!(env.now() < end, "{key}: a path did not report its lease revoked within 10 s: {before:?} -> {c:?}");
        env.sleep(Duration::from_millis(50)).await;
    }
    f.resume(&key);
    deleted
}
