//! The keep-alive of one registration's lease: renews it every third of
//! its TTL for as long as the registration is held; when etcd answers that
//! the lease is gone (a renewal answered with TTL 0; when the stream cannot
//! be opened, a time-to-live answer with TTL -1), reads the key and
//! reports the registration gone if the key is absent. A broken stream or
//! an unreachable etcd is not a report (the lease may well be alive): the
//! stream is opened again, and the watch and the resync loop see what
//! happened meanwhile.

use std::pin::pin;
use std::time::Duration;

use etcd_client::{LeaseKeepAliveStream, LeaseKeeper};
use futures::future::{Either, select};

use super::registry::{EtcdRegistry, bounded};
use super::reports::Path;
use crate::env::{CancellationToken, Env, sleep_or_cancelled};

/// Shortest renewal period and pause before a stream is opened again.
const MIN_PERIOD: Duration = Duration::from_millis(200);

/// How a keep-alive stream ended.
enum Ended {
    /// The registration is no longer held.
    Cancelled,
    /// etcd answered that the lease is gone.
    LeaseGone,
    /// The stream broke or etcd did not answer in time.
    Broken,
}

impl<E: Env> EtcdRegistry<E> {
    /// Keeps `lease` of the registration `runtime_id` of `key` alive until
    /// `token` is cancelled.
    pub(super) async fn keep_alive(&self, key: &str, runtime_id: &str, lease: i64, token: CancellationToken) {
        let env = &self.0.env;
        let period = (self.0.config.ttl / 3).max(MIN_PERIOD);
        while !token.is_cancelled() {
            let mut client = self.0.client.clone();
            let opened = bounded(env, self.0.config.call_timeout, client.lease_keep_alive(lease));
            let ended = match select(pin!(token.cancelled()), pin!(opened)).await {
                Either::Left(_) => Ended::Cancelled,
                Either::Right((Ok((keeper, stream)), _)) => self.renew(keeper, stream, period, &token).await,
                // etcd refuses to open a keep-alive for a lease it no longer
                // has (its first answer has TTL 0); unreachable is an error
                // too: etcd's answer about the lease tells them apart.
                Either::Right((Err(e), _)) => {
                    tracing::debug!(key, lease, error = %e, "etcd: keep-alive cannot start");
                    if self.lease_known(lease).await == Ok(false) { Ended::LeaseGone } else { Ended::Broken }
                }
            };
            match ended {
                Ended::Cancelled => return,
                Ended::LeaseGone => {
                    self.report_if_absent(key, runtime_id, Path::KeepAlive).await;
                    return;
                }
                Ended::Broken => {
                    if sleep_or_cancelled(env, env.now() + MIN_PERIOD, &token).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Renews through one stream until it breaks, the lease is gone or
    /// `token` is cancelled.
    async fn renew(
        &self,
        mut keeper: LeaseKeeper,
        mut stream: LeaseKeepAliveStream,
        period: Duration,
        token: &CancellationToken,
    ) -> Ended {
        let env = &self.0.env;
        let limit = self.0.config.call_timeout;
        loop {
            let beat = async {
                keeper.keep_alive().await?;
                stream.message().await
            };
            match select(pin!(token.cancelled()), pin!(bounded(env, limit, beat))).await {
                Either::Left(_) => return Ended::Cancelled,
                Either::Right((Ok(Some(r)), _)) if r.ttl() > 0 => {}
                Either::Right((Ok(Some(_)), _)) => return Ended::LeaseGone,
                Either::Right((Ok(None) | Err(_), _)) => return Ended::Broken,
            }
            if sleep_or_cancelled(env, env.now() + period, token).await.is_err() {
                return Ended::Cancelled;
            }
        }
    }
}
