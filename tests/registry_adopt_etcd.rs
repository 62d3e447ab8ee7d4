//! A warden restarted within the lease TTL (feature `etcd`): it adopts the
//! registration its predecessor left in etcd, and keeps its lease alive,
//! rather than registering again; one whose value changed is replaced.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
mod etcd_support;

use std::time::{Duration, Instant as StdInstant};

use etcd_client::Client;
use etcd_support::Cluster;
use etcd_support::fleet::{block_on, serial};
use warden::env::Env;
use warden::env::real::RealEnv;
use warden::etcd::{EtcdConfig, EtcdRegistry};
use warden::gate::{Recovery, RecoveryConfig};

#[test]
fn a_restarted_warden_adopts_its_registration_and_replaces_a_changed_value() {
    let _one = serial();
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
        first.close().await;
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
        second.close().await;
        eprintln!("adopt: {:.1} s", started.elapsed().as_secs_f64());
    });
    drop(cluster);
}
