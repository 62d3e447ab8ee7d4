//! The reporting paths: HTTP heartbeats, websocket acks and the sync loop,
//! each of which can report a registration gone.

use std::pin::pin;

use futures::future::{Either, select};

use super::driver::Recovery;
use super::mark::Mark;
use super::registry::{AckStatus, HeartbeatAck, Registry};
use crate::buggify;
use crate::env::{CancellationToken, Env, sleep_or_cancelled};

impl<E: Env, R: Registry> Recovery<E, R> {
    /// Handles a websocket heartbeat ack: a normal one records freshness
    /// (the HTTP heartbeat may skip its tick), a gone one clears it and
    /// starts recovery, an empty one records nothing.
    pub fn handle_heartbeat_ack(&self, ack: Option<&HeartbeatAck>, caller: &CancellationToken) {
        let Some(ack) = ack.filter(|a| !a.runtime_id.is_empty()) else { return };
        let now = self.0.env.now();
        match ack.status {
            AckStatus::Ok => self.0.state.borrow_mut().record_ack(&ack.runtime_id, now),
            AckStatus::Gone { revision } => {
                // A freshness mark would tell the HTTP heartbeat the
                // runtime is alive: clear it before anything else.
                self.0.state.borrow_mut().clear_ack(&ack.runtime_id);
                self.spawn_gone(&ack.runtime_id, revision, caller.clone());
            }
        }
    }

    fn spawn_gone(&self, id: &str, revision: Option<u64>, caller: CancellationToken) {
        let (me, id) = (self.clone(), id.to_owned());
        drop(self.0.env.spawn("gate.runtime-gone", async move {
            me.handle_runtime_gone(&id, revision, caller).await;
        }));
    }

    /// Starts the HTTP and websocket heartbeats of runtime `id` (once).
    pub(super) fn start_heartbeat(&self, id: &str) {
        if !self.0.config.heartbeats || self.0.heartbeats.borrow().contains_key(id) {
            return;
        }
        let token = self.0.root.child_token();
        self.0.heartbeats.borrow_mut().insert(id.to_owned(), token.clone());
        let (me, id2, t2) = (self.clone(), id.to_owned(), token.clone());
        drop(self.0.env.spawn("gate.http-heartbeat", async move { me.http_heartbeat(&id2, t2).await }));
        let (me, id) = (self.clone(), id.to_owned());
        drop(self.0.env.spawn("gate.ws-heartbeat", async move { me.ws_heartbeat(&id, token).await }));
    }

    /// Sleeps one jittered period; `false` once `token` is cancelled.
    async fn tick(&self, period: std::time::Duration, token: &CancellationToken) -> bool {
        let env = &self.0.env;
        let deadline = env.now() + period + env.random_duration(period / 4);
        sleep_or_cancelled(env, deadline, token).await.is_ok()
    }

    /// One heartbeat call under `token` and the heartbeat deadline.
    async fn beat(&self, id: &str, token: &CancellationToken) -> Option<HeartbeatAck> {
        let call = self.0.env.timeout(self.0.config.heartbeat_deadline, self.0.registry.heartbeat(id));
        match select(pin!(token.cancelled()), pin!(call)).await {
            Either::Right((Ok(Ok(ack)), _)) => Some(ack),
            _ => None,
        }
    }

    async fn http_heartbeat(&self, id: &str, token: CancellationToken) {
        let period = self.0.config.heartbeat_interval;
        while self.tick(period, &token).await {
            if self.0.state.borrow().recently_acked(id, self.0.env.now(), period) {
                continue;
            }
            if let Some(HeartbeatAck { status: AckStatus::Gone { revision }, runtime_id }) = self.beat(id, &token).await
                && runtime_id == id
            {
                self.spawn_gone(id, revision, token.clone());
            }
        }
    }

    async fn ws_heartbeat(&self, id: &str, token: CancellationToken) {
        while self.tick(self.0.config.ws_interval, &token).await {
            let ack = self.beat(id, &token).await;
            if !token.is_cancelled() {
                self.handle_heartbeat_ack(ack.as_ref(), &token);
            }
        }
    }

    /// Starts a recovery for every key whose runtime set has drained; a
    /// partial deletion is left to the straggler path.
    pub fn sync_once(&self) {
        let empty: Vec<String> = {
            let s = self.0.state.borrow();
            s.keys().filter(|k| s.needs_runtime_recovery(k)).map(str::to_owned).collect()
        };
        let now = self.0.env.now();
        for key in empty {
            let (me, root) = (self.clone(), self.root());
            drop(self.0.env.spawn("gate.sync-recover", async move {
                // RACE CONDITION SAFETY: the real daemon can be preempted
                // between reading the drained set and the gate; a peer may
                // register meanwhile, making this report a straggler whose
                // only mark is its time.
                let env = &me.0.env;
                env.yield_now().await;
                if buggify!(*env, "gate.sync.before_gate") {
                    env.sleep(env.random_duration(me.0.config.straggler_delay_max)).await;
                }
                me.recover(&key, Mark::time(now), root).await;
            }));
        }
    }

    pub(super) async fn sync_loop(&self) {
        let root = self.root();
        while self.tick(self.0.config.sync_interval, &root).await {
            self.sync_once();
        }
    }
}
