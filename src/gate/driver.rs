//! The recovery driver (the seed's `handleRuntimeGone`): a thin async
//! shell that executes the gate's decisions through [`Env`] and a
//! [`Registry`].

use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{Either, select};

use super::config::{DeadlineNotShorter, GateBugs, GateConfig};
use super::local::{KeyHandle, LocalState};
use super::machine::{Claim, Completion, Gate, GateStats, Outcome, Ticket};
use super::mark::Mark;
use super::registry::{Registered, Registry};
use crate::buggify;
use crate::env::{CancellationToken, Env, sleep_or_cancelled};

/// Timings and switches of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// The gate's timings and retry policy.
    pub gate: GateConfig,
    /// Period of the HTTP heartbeat of each runtime.
    pub heartbeat_interval: Duration,
    /// Period of the websocket heartbeat of each runtime.
    pub ws_interval: Duration,
    /// Deadline of one heartbeat call.
    pub heartbeat_deadline: Duration,
    /// Period of the sync loop.
    pub sync_interval: Duration,
    /// Longest injected delay between pruning and the gate (buggify): the
    /// seed's lock contention, where stragglers come from.
    pub straggler_delay_max: Duration,
    /// Whether runtimes get heartbeat loops (tests of the gate alone turn
    /// them off).
    pub heartbeats: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            gate: GateConfig::default(),
            heartbeat_interval: Duration::from_secs(2),
            ws_interval: Duration::from_secs(1),
            heartbeat_deadline: Duration::from_secs(5),
            sync_interval: Duration::from_secs(5),
            straggler_delay_max: Duration::from_secs(3),
            heartbeats: true,
        }
    }
}

pub(super) struct Inner<E: Env, R: Registry> {
    pub(super) env: E,
    pub(super) registry: R,
    pub(super) config: RecoveryConfig,
    /// Recovery runs under this token: independent of every caller's,
    /// cancelled only at shutdown.
    pub(super) root: CancellationToken,
    pub(super) state: RefCell<LocalState>,
    gate: RefCell<Gate>,
    /// Each runtime's heartbeat token, cancelled when it leaves the set
    /// (the seed's `notifyRuntimeSetChanged`).
    pub(super) heartbeats: RefCell<BTreeMap<String, CancellationToken>>,
}

/// The recovery driver of one daemon; cheap to clone.
pub struct Recovery<E: Env, R: Registry>(pub(super) Rc<Inner<E, R>>);

impl<E: Env, R: Registry> Clone for Recovery<E, R> {
    fn clone(&self) -> Self {
        Recovery(self.0.clone())
    }
}

impl<E: Env, R: Registry> Recovery<E, R> {
    /// A driver with its own root token; historical bugs come from
    /// `env.mutant(..)`.
    pub fn new(env: E, registry: R, config: RecoveryConfig) -> Result<Self, DeadlineNotShorter> {
        let bugs = GateBugs {
            no_watermark: env.mutant("gate-no-watermark"),
            stamp_on_failure: env.mutant("gate-stamp-on-failure"),
            slot_kept_on_success: env.mutant("gate-slot-kept-on-success"),
            no_follow_up: env.mutant("gate-no-follow-up"),
            gives_up: env.mutant("gate-gives-up"),
            unconditional_register: env.mutant("gate-unconditional-register"),
        };
        let gate = Gate::new(config.gate)?.with_bugs(bugs);
        Ok(Recovery(Rc::new(Inner {
            env,
            registry,
            config,
            root: CancellationToken::new(),
            state: RefCell::default(),
            gate: RefCell::new(gate),
            heartbeats: RefCell::default(),
        })))
    }

    /// The root token: cancelling it is shutdown.
    pub fn root(&self) -> CancellationToken {
        self.0.root.clone()
    }

    /// The local state, read-only.
    pub fn state(&self) -> Ref<'_, LocalState> {
        self.0.state.borrow()
    }

    /// Tracks `key` with no runtimes yet.
    pub fn track(&self, key: &str) -> KeyHandle {
        self.0.state.borrow_mut().insert_key(key, &[])
    }

    /// Claim outcome counts of the gate.
    pub fn stats(&self) -> GateStats {
        self.0.gate.borrow().stats()
    }

    /// The key's runtime ids, in order.
    pub fn runtime_ids_of(&self, key: &str) -> Vec<String> {
        self.0.state.borrow().key(key).map(|k| k.borrow().runtime_ids.clone()).unwrap_or_default()
    }

    /// Runtime `id` was reported gone (deleted at `revision`, if known) by
    /// a caller whose work is tied to `caller`.
    pub async fn handle_runtime_gone(&self, id: &str, revision: Option<u64>, caller: CancellationToken) {
        let env = &self.0.env;
        let entered = env.now();
        // One recovery in flight per runtime: the other paths' reports of
        // the same deletion are dropped here.
        if !self.0.state.borrow_mut().begin_gone(id) {
            tracing::debug!(runtime = id, "gone report dropped: recovery in flight");
            return;
        }
        let key = self.0.state.borrow_mut().remove_stale_runtime(id);
        let Some(key) = key else {
            self.0.state.borrow_mut().end_gone(id);
            return;
        };
        tracing::info!(runtime = id, key = key.as_str(), "runtime gone: pruned");
        let token = if env.mutant("gate-recovery-uses-caller-cancel") { caller } else { self.0.root.clone() };
        let mark = match revision {
            Some(r) => Mark::revision(r, entered),
            None => Mark::time(entered),
        };
        // RACE CONDITION SAFETY: the real daemon can be preempted between
        // pruning, notifying the runtime-set change and the gate (the
        // seed's mutex contention): a peer may register and complete
        // meanwhile, making this report a straggler. Both steps offer it.
        env.yield_now().await;
        if buggify!(*env, "gate.gone.after_prune") {
            env.sleep(env.random_duration(self.0.config.straggler_delay_max)).await;
        }
        self.stop_heartbeat(id);
        env.yield_now().await;
        if buggify!(*env, "gate.gone.before_gate") {
            env.sleep(env.random_duration(self.0.config.straggler_delay_max)).await;
        }
        self.recover(&key, mark, token).await;
        self.0.state.borrow_mut().end_gone(id);
    }

    /// Registers `key` through the gate for an event with `mark`, under
    /// `token`: follow-ups run at once, failures are retried when the gate
    /// says, for as long as `token` lives.
    pub async fn recover(&self, key: &str, mark: Mark, token: CancellationToken) {
        let env = &self.0.env;
        let mut mark = mark;
        loop {
            let claim = self.0.gate.borrow_mut().claim(key, mark, env.now());
            tracing::debug!(key, outcome = claim_name(&claim), "gate claim");
            let Claim::Granted(mut ticket) = claim else { return };
            loop {
                let outcome = self.attempt(&ticket, &token).await;
                let completion = self.0.gate.borrow_mut().complete(&ticket, outcome, env.now());
                match completion {
                    Completion::FollowUp(next) => ticket = next,
                    Completion::Done | Completion::Stale => return,
                    Completion::RetryAt { at, mark: pending } => {
                        let failures = self.0.gate.borrow().failures(key);
                        tracing::info!(key, failures, "register failed; retrying after the backoff");
                        mark = pending;
                        if sleep_or_cancelled(env, at, &token).await.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// One attempt of `ticket`: recover orphans, then register, before the
    /// ticket's deadline, unless `token` is cancelled first.
    async fn attempt(&self, ticket: &Ticket, token: &CancellationToken) -> Outcome {
        let env = &self.0.env;
        let budget = ticket.deadline.saturating_duration_since(env.now());
        self.0.state.borrow_mut().begin_attempt(&ticket.key);
        let orphans = self.0.registry.recover_orphans(&ticket.key);
        let register = self.0.registry.register(&ticket.key, ticket.condition, ticket.deadline);
        let work = async move {
            if let Err(e) = orphans.await {
                // Orphan recovery is best effort; registration matters.
                tracing::warn!(error = %e, "recover-orphans failed");
            }
            register.await
        };
        let timed = env.timeout(budget, work);
        match select(pin!(token.cancelled()), pin!(timed)).await {
            Either::Left(_) => {
                tracing::info!(key = ticket.key.as_str(), "recovery cancelled");
                Outcome::Abandoned
            }
            Either::Right((Ok(Ok(registered)), _)) => {
                let revision = registered.revision;
                self.apply(&ticket.key, &registered);
                if registered.applied {
                    tracing::info!(key = ticket.key.as_str(), revision = revision.unwrap_or(0), "registered");
                } else {
                    // RACE CONDITION SAFETY: an earlier attempt was applied
                    // and its reply lost (or it was applied late); the
                    // registry kept the condition, so this is success.
                    tracing::info!(key = ticket.key.as_str(), revision = revision.unwrap_or(0), "already registered");
                }
                Outcome::Registered { revision }
            }
            Either::Right((Ok(Err(e)), _)) => {
                tracing::warn!(key = ticket.key.as_str(), error = %e, "register failed");
                Outcome::Failed
            }
            Either::Right((Err(_), _)) => {
                tracing::warn!(key = ticket.key.as_str(), "register missed its deadline");
                Outcome::Failed
            }
        }
    }

    /// Installs `runtimes` as the key's whole set, as a register response
    /// would (restoring known registrations at start-up; tests).
    pub fn install(&self, key: &str, runtimes: &[super::registry::Runtime]) {
        self.0.state.borrow_mut().begin_attempt(key);
        self.apply(key, &Registered { runtimes: runtimes.to_vec(), revision: None, applied: true });
    }

    /// Installs a register response as the key's runtime set.
    fn apply(&self, key: &str, registered: &Registered) {
        let left = {
            let mut s = self.0.state.borrow_mut();
            if self.0.env.mutant("gate-append-runtimes") {
                s.append_runtimes(key, &registered.runtimes);
                Vec::new()
            } else {
                s.replace_runtimes(key, &registered.runtimes)
            }
        };
        for id in &left {
            self.stop_heartbeat(id);
        }
        for r in &registered.runtimes {
            self.start_heartbeat(&r.id);
        }
    }

    /// Cancels the heartbeats of `id` (it left the runtime set).
    fn stop_heartbeat(&self, id: &str) {
        if let Some(t) = self.0.heartbeats.borrow_mut().remove(id) {
            t.cancel();
        }
    }

    /// Registers `key` for the first time and keeps it registered; starts
    /// the sync loop once.
    pub fn start(&self, keys: &[String]) {
        for key in keys {
            self.track(key);
            let (me, key, root) = (self.clone(), key.clone(), self.root());
            let now = self.0.env.now();
            drop(self.0.env.spawn("gate.initial-register", async move {
                me.recover(&key, Mark::time(now), root).await;
            }));
        }
        let me = self.clone();
        drop(self.0.env.spawn("gate.sync-loop", async move { me.sync_loop().await }));
    }

    /// Shutdown: deregisters every runtime (best effort, bounded), then
    /// cancels the root token, which stops every recovery and heartbeat.
    pub async fn shutdown(&self) {
        let ids: Vec<String> = self.0.state.borrow().runtime_ids().map(str::to_owned).collect();
        let call = self.0.registry.deregister(&ids);
        match self.0.env.timeout(self.0.config.heartbeat_deadline, call).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "deregister failed"),
            Err(_) => tracing::warn!("deregister missed its deadline"),
        }
        self.0.root.cancel();
    }
}

fn claim_name(c: &Claim) -> &'static str {
    match c {
        Claim::Granted(_) => "granted",
        Claim::Coalesced => "coalesced",
        Claim::Covered => "covered",
        Claim::BackingOff { .. } => "backing-off",
    }
}
