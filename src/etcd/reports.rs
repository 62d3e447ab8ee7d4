//! How etcd tells the gate a registration is gone: the watch on the
//! prefix, the resync loop (here) and the keep-alives
//! ([`super::keepalive`]) all send [`Gone`] into one channel;
//! [`Reports::pump`] hands each to the gate's recovery driver.

use std::collections::BTreeSet;
use std::pin::pin;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions};
use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::{Either, select};

use super::EtcdConfig;
use super::registry::{EtcdRegistry, bounded, revision_of};
use crate::env::{Env, sleep_or_cancelled};
use crate::gate::{Recovery, Registry};

/// The path a report came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// A delete event of the watch on the prefix.
    Watch,
    /// The lease's keep-alive answered that the lease is gone.
    KeepAlive,
    /// The resync loop found the key absent.
    Resync,
}

impl Path {
    /// Its name in logs.
    pub fn name(self) -> &'static str {
        match self {
            Path::Watch => "watch",
            Path::KeepAlive => "keep-alive",
            Path::Resync => "resync",
        }
    }
}

/// A registration the registry held is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// The gate key.
    pub key: String,
    /// The registration's runtime id (`key@revision`).
    pub runtime_id: String,
    /// A revision at which it was seen deleted: the delete event's, or the
    /// revision of a read (or keep-alive answer) that found it gone.
    pub revision: u64,
    /// Which path saw it.
    pub path: Path,
}

/// Reports sent per path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportCounts {
    /// By the watch.
    pub watch: u64,
    /// By keep-alives.
    pub keep_alive: u64,
    /// By the resync loop.
    pub resync: u64,
}

impl ReportCounts {
    pub(super) fn add(&mut self, path: Path) {
        match path {
            Path::Watch => self.watch += 1,
            Path::KeepAlive => self.keep_alive += 1,
            Path::Resync => self.resync += 1,
        }
    }
}

/// The stream of gone reports of one [`EtcdRegistry`].
pub struct Reports {
    rx: mpsc::UnboundedReceiver<Gone>,
}

impl Reports {
    pub(super) fn new(rx: mpsc::UnboundedReceiver<Gone>) -> Self {
        Reports { rx }
    }

    /// The next report; `None` once the registry is dropped.
    pub async fn next(&mut self) -> Option<Gone> {
        self.rx.next().await
    }

    /// Hands every report to the recovery driver `route` names for its key
    /// (none: the key is not registered by anyone now), each in a task of
    /// its own, so reports of all paths reach the gate at once.
    pub async fn pump<E: Env, R: Registry>(mut self, env: E, route: impl Fn(&str) -> Option<Recovery<E, R>>) {
        while let Some(gone) = self.next().await {
            let Some(recovery) = route(&gone.key) else { continue };
            drop(env.spawn("etcd.gone", async move {
                let root = recovery.root();
                recovery.handle_runtime_gone(&gone.runtime_id, Some(gone.revision), root).await;
            }));
        }
    }
}

/// Pause before a broken watch is opened again.
const REWATCH_PAUSE: Duration = Duration::from_millis(250);

impl<E: Env> EtcdRegistry<E> {
    pub(super) fn start_watch(&self, start: u64) {
        let me = self.clone();
        drop(self.0.env.spawn("etcd.watch", async move { me.watch_loop(start).await }));
    }

    pub(super) fn start_resync(&self) {
        let me = self.clone();
        drop(self.0.env.spawn("etcd.resync", async move { me.resync_loop().await }));
    }

    /// Watches the prefix from revision `next` on, for as long as the
    /// registry lives, opening the watch again after every break.
    async fn watch_loop(&self, mut next: u64) {
        let (env, root) = (&self.0.env, &self.0.root);
        while !root.is_cancelled() {
            let mut client = self.0.client.clone();
            let options = WatchOptions::new().with_prefix().with_prev_key().with_start_revision(next as i64);
            let opened =
                bounded(env, self.0.config.call_timeout, client.watch(self.0.config.prefix.clone(), Some(options)));
            match opened.await {
                Ok(mut stream) => loop {
                    let message = match select(pin!(root.cancelled()), pin!(stream.message())).await {
                        Either::Left(_) => return,
                        Either::Right((m, _)) => m,
                    };
                    let Ok(Some(response)) = message else { break };
                    if response.compact_revision() > 0 {
                        // Events before it are gone: the resync loop finds
                        // what they would have said.
                        next = next.max(response.compact_revision() as u64);
                        break;
                    }
                    if response.canceled() {
                        break;
                    }
                    for event in response.events() {
                        let Some(kv) = event.kv() else { continue };
                        let revision = u64::try_from(kv.mod_revision()).unwrap_or(0);
                        next = next.max(revision + 1);
                        if event.event_type() == EventType::Delete {
                            self.deleted(kv.key_str().unwrap_or_default(), revision);
                        }
                    }
                },
                Err(e) => tracing::debug!(error = %e, "etcd: cannot watch"),
            }
            if sleep_or_cancelled(env, env.now() + REWATCH_PAUSE, root).await.is_err() {
                return;
            }
        }
    }

    /// The watch saw `etcd_key` deleted at `revision`.
    fn deleted(&self, etcd_key: &str, revision: u64) {
        let Some(key) = self.0.config.gate_key(etcd_key) else { return };
        // Only a registration put before the delete is gone by it.
        let held = self.0.held.borrow().get(key).filter(|h| h.revision < revision).map(|h| h.runtime_id.clone());
        if let Some(runtime_id) = held {
            self.report(Gone { key: key.to_owned(), runtime_id, revision, path: Path::Watch });
        }
    }

    /// Reads the prefix every resync interval and reports each held
    /// registration, put at or before the read, whose key is absent.
    async fn resync_loop(&self) {
        let (env, root) = (&self.0.env, &self.0.root);
        loop {
            if sleep_or_cancelled(env, env.now() + self.0.config.resync_interval, root).await.is_err() {
                return;
            }
            let mut client = self.0.client.clone();
            let get = client.get(self.0.config.prefix.clone(), Some(GetOptions::new().with_prefix().with_keys_only()));
            let response = match bounded(env, self.0.config.call_timeout, get).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "etcd: resync cannot read");
                    continue;
                }
            };
            let revision = revision_of(response.header());
            let present: BTreeSet<&str> = response.kvs().iter().filter_map(|kv| kv.key_str().ok()).collect();
            let held = self.0.held.borrow().snapshot();
            for gone in absent_at_read(&self.0.config, revision, &present, held) {
                self.report(gone);
            }
        }
    }
}

/// The registrations of `held` (gate key, runtime id, revision of its put)
/// that a read of the prefix at revision `read`, which found the etcd keys
/// `present`, shows gone.
fn absent_at_read(
    config: &EtcdConfig,
    read: u64,
    present: &BTreeSet<&str>,
    held: Vec<(String, String, u64)>,
) -> Vec<Gone> {
    held.into_iter()
        // RACE CONDITION SAFETY: a registration put after the read (held
        // while the read's answer was on its way) is not in it, and not
        // gone. A key present under another registration is not reported
        // either: that registration is the gate's (a reply it lost) or
        // someone else's, not a deletion.
        .filter(|(key, _, put)| *put <= read && !present.contains(config.etcd_key(key).as_str()))
        .map(|(key, runtime_id, _)| Gone { key, runtime_id, revision: read, path: Path::Resync })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_reports_only_what_it_could_see_absent() {
        let config = EtcdConfig::new(vec!["http://127.0.0.1:2379".into()]);
        let held = |key: &str, put: u64| (key.to_owned(), format!("{key}@{put}"), put);
        let present = BTreeSet::from(["/warden/kept"]);
        let held = vec![held("deleted", 5), held("kept", 7), held("after", 12), held("at", 10)];
        let gone = absent_at_read(&config, 10, &present, held);
        let ids: Vec<&str> = gone.iter().map(|g| g.runtime_id.as_str()).collect();
        assert_eq!(ids, ["deleted@5", "at@10"], "put after the read at 10: not reported");
        assert!(gone.iter().all(|g| g.revision == 10 && g.path == Path::Resync));
    }
}
