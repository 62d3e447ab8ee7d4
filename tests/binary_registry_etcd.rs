//! `warden run` with `[registry]` against a real etcd (feature `etcd`):
//! ready services are registered under the prefix, each deletion (a key
//! deleted, a lease revoked, leases lost while etcd was paused past their
//! TTL) is followed by exactly one registration, a stopped service is
//! deregistered and stays so until it starts again, and everything is
//! deregistered when warden stops. The count comes from etcd's own history.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod binary_support;
mod common;
mod etcd_support;

use std::time::{Duration, Instant};

use binary_support::{Warden, free_port, wait_for, warden_bin};
use etcd_client::Client;
use etcd_support::{Change, Cluster, history};

/// A checking client on its own runtime.
struct Etcd {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Etcd {
    fn connect(endpoints: &[String]) -> Etcd {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let client = rt.block_on(Client::connect(endpoints, None)).expect("checking client connects");
        Etcd { rt, client }
    }

    /// (value, mod_revision, lease) of `key`.
    fn get(&mut self, key: &str) -> Option<(String, i64, i64)> {
        let r = self.rt.block_on(self.client.get(key, None)).ok()?;
        r.kvs().first().map(|kv| (kv.value_str().unwrap_or_default().to_owned(), kv.mod_revision(), kv.lease()))
    }

    fn delete(&mut self, key: &str) {
        self.rt.block_on(self.client.delete(key, None)).expect("delete");
    }

    fn revoke(&mut self, lease: i64) {
        self.rt.block_on(self.client.lease_revoke(lease)).expect("revoke");
    }

    /// Waits until `key` holds `value` at a revision other than `not`.
    fn registered(&mut self, w: &Warden, key: &str, value: &str, not: i64) -> (i64, i64) {
        wait_for(Duration::from_secs(20), || {
            self.get(key).filter(|(v, rev, _)| v == value && *rev != not).map(|(_, rev, lease)| (rev, lease))
        })
        .unwrap_or_else(|| panic!("{key} not registered as {value:?} (after {not}); log:\n{}", w.log_text()))
    }

    fn absent(&mut self, w: &Warden, key: &str) {
        wait_for(Duration::from_secs(20), || self.get(key).is_none().then_some(()))
            .unwrap_or_else(|| panic!("{key} still registered; log:\n{}", w.log_text()));
    }
}

/// Puts and deletes of a key that alternate, starting with a put.
fn alternating(key: &str, h: &[Change]) -> (usize, usize) {
    for (i, c) in h.iter().enumerate() {
        let ok = matches!((i % 2, c), (0, Change::Put(_)) | (1, Change::Delete(_)));
        assert!(ok, "{key}: two registrations with no deletion between, or the reverse: {h:?}");
    }
    let puts = h.iter().filter(|c| matches!(c, Change::Put(_))).count();
    (puts, h.len() - puts)
}

#[test]
fn warden_keeps_ready_services_registered_in_etcd_once_per_deletion() {
    let started = Instant::now();
    let cluster = Cluster::start("binary", 1);
    let endpoints = cluster.endpoints();
    let port = free_port();
    let toml = format!(
        r#"
[registry]
etcd = ["{}"]
prefix = "/services/"
ttl = "2s"

[[service]]
name = "web"
command = ["sleep", "1000"]
listen = [{{ name = "http", addr = "127.0.0.1:{port}" }}]
register = {{ key = "web", value = "http://{{listen.http}}" }}

[[service]]
name = "worker"
command = ["sleep", "1000"]
ready = {{ exec = ["true"] }}
register = {{ key = "jobs/worker", value = "{{name}}" }}
"#,
        endpoints[0]
    );
    let mut w = Warden::start("registry", &toml);
    let mut etcd = Etcd::connect(&endpoints);
    let (web, worker) = ("/services/web", "/services/jobs/worker");
    let web_value = format!("http://127.0.0.1:{port}");
    let (mut web_rev, mut web_lease) = etcd.registered(&w, web, &web_value, 0);
    let (mut worker_rev, mut worker_lease) = etcd.registered(&w, worker, "worker", 0);
    // Waves: the key deleted, or its lease revoked.
    for wave in 0..3 {
        if wave % 2 == 0 {
            etcd.delete(web);
            etcd.revoke(worker_lease);
        } else {
            etcd.revoke(web_lease);
            etcd.delete(worker);
        }
        (web_rev, web_lease) = etcd.registered(&w, web, &web_value, web_rev);
        (worker_rev, worker_lease) = etcd.registered(&w, worker, "worker", worker_rev);
    }
    // A stopped service is deregistered and stays so; started, it is back.
    assert!(w.client(&["stop", "web"]).status.success(), "warden stop web");
    etcd.absent(&w, web);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(etcd.get(web).is_none(), "a stopped service was registered again");
    assert!(w.client(&["start", "web"]).status.success(), "warden start web");
    (web_rev, _) = etcd.registered(&w, web, &web_value, web_rev);
    // etcd paused past the lease TTL: every lease is lost, and each
    // registration comes back once.
    cluster.members[0].signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(5));
    cluster.members[0].signal(libc::SIGCONT);
    etcd.registered(&w, web, &web_value, web_rev);
    etcd.registered(&w, worker, "worker", worker_rev);
    // Stopping warden deregisters everything.
    w.signal(libc::SIGTERM);
    assert_eq!(w.wait_exit(Duration::from_secs(30)), 0, "log:\n{}", w.log_text());
    etcd.absent(&w, web);
    etcd.absent(&w, worker);
    let (changes, _) = etcd.rt.block_on(history(&endpoints, "/services/"));
    // web: first, 3 waves, start, pause; worker: first, 3 waves, pause.
    assert_eq!(alternating(web, &changes[web]), (6, 6), "web: {:?}", changes[web]);
    assert_eq!(alternating(worker, &changes[worker]), (5, 5), "worker: {:?}", changes[worker]);
    eprintln!("binary registry: {:.1} s", started.elapsed().as_secs_f64());
    drop(cluster);
}

#[test]
fn registry_errors_name_file_line_and_column() {
    let dir = binary_support::TempDir::new("registry-check");
    let path = dir.0.join("warden.toml");
    let text = "[registry]\netcd = [\"http://127.0.0.1:2379\"]\n\n[[service]]\nname = \"web\"\n\
                command = [\"true\"]\nregister = { key = \"web\", value = \"{listen.http}\" }\n";
    std::fs::write(&path, text).expect("write the config");
    let out = std::process::Command::new(warden_bin()).arg("check").arg("-c").arg(&path).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!("{}:7:35: register value names {{listen.http}}", path.display());
    assert!(err.contains(&want), "{err}");
}
