//! One service's supervision loop (D1, D2) and the error handler (D4).

use std::rc::Rc;

use futures::StreamExt;
use futures::channel::mpsc;

use super::controller::{Inner, ServiceFailure, Slot};
use super::outcome::{RunOutcome, classify, should_restart};
use super::readiness::probe_live;
use crate::env::Env;
use crate::supervisor::backoff::Backoff;
use crate::supervisor::error::RunError;

/// Runs `slot`'s service until it is cancelled, ends cleanly, or fails
/// for good. A start that returns cleanly serves in the background and is
/// watched through its liveness probe from then on.
pub(crate) async fn run<E: Env>(inner: Rc<Inner<E>>, slot: Rc<Slot<E>>) {
    let env = inner.env.clone();
    let name = slot.service.name.clone();
    let mut backoff = Backoff::new(inner.options.backoff);
    loop {
        if slot.token.is_cancelled() {
            return;
        }
        let started_at = env.now();
        let result = match slot.service.start.clone() {
            Some(start) => {
                let h = inner.spawn_value(&name, start(env.clone(), slot.token.clone()));
                h.await
            }
            None => Ok(Ok(())),
        };
        let cancelled = slot.token.is_cancelled();
        let mut outcome = classify(result, cancelled, slot.service.valid_error.as_deref());
        if outcome == RunOutcome::Clean && env.mutant("immediate-return-is-exit") {
            // The planted bug: a start that returned is taken for an exit.
            outcome = RunOutcome::Error(RunError::new("start returned"));
        }
        if outcome == RunOutcome::Clean {
            tracing::info!(service = name.as_str(), "started (serving in the background)");
            // Supervised by its liveness probe from now on.
            match watch_liveness(&inner, &slot).await {
                None => return,
                Some(e) => outcome = RunOutcome::Error(e),
            }
        }
        let RunOutcome::Error(error) = outcome else {
            tracing::info!(service = name.as_str(), "run ended: cancelled");
            return;
        };
        let cancelled = slot.token.is_cancelled();
        let restart = should_restart(&RunOutcome::Error(error.clone()), slot.service.policy, cancelled);
        if env.now().saturating_duration_since(started_at) >= inner.options.restart_reset_interval {
            // Healthy long enough: count consecutive failures only.
            slot.window.borrow_mut().clear();
            backoff.reset();
        }
        if restart && let Err(limit) = slot.window.borrow_mut().record(env.now()) {
            tracing::error!(service = name.as_str(), %limit, "restart intensity exceeded");
            inner.report_failure(ServiceFailure {
                service: name.clone(),
                error: RunError::new(format!("{error} (restart intensity exceeded: {limit})")),
                restarting: false,
            });
            inner.fatal.set(true);
            inner.shutdown.cancel();
            return;
        }
        inner.report_failure(ServiceFailure { service: name.clone(), error, restarting: restart });
        if !restart {
            return;
        }
        let delay = backoff.next_delay(env.random_u64());
        let sleep = std::pin::pin!(env.sleep(delay));
        let cancel = std::pin::pin!(slot.token.cancelled());
        if let futures::future::Either::Right(_) = futures::future::select(sleep, cancel).await {
            return;
        }
        tracing::info!(service = name.as_str(), "restarting");
    }
}

/// Watches a background service's liveness probe; `None` when cancelled,
/// the failure when the probe fails (the service is stopped first).
async fn watch_liveness<E: Env>(inner: &Rc<Inner<E>>, slot: &Rc<Slot<E>>) -> Option<RunError> {
    let env = &inner.env;
    loop {
        let sleep = std::pin::pin!(env.sleep(inner.options.check_interval));
        let cancel = std::pin::pin!(slot.token.cancelled());
        if let futures::future::Either::Right(_) = futures::future::select(sleep, cancel).await {
            return None;
        }
        if slot.service.liveness.is_some() && !probe_live(&slot.service) {
            if let Some(stop) = slot.service.stop.clone() {
                let deadline = slot.token.child_token();
                let _ = env.timeout(inner.options.stop_timeout, stop(env.clone(), deadline.clone())).await;
                deadline.cancel();
            }
            return Some(RunError::new("liveness probe failed"));
        }
    }
}

/// Receives failures until the channel closes at stop. After the shutdown
/// is seen its branch is disabled (D4), so the loop waits instead of
/// spinning, and it ends once every sender is gone.
pub(crate) async fn handle_errors<E: Env>(inner: Rc<Inner<E>>, mut rx: mpsc::UnboundedReceiver<ServiceFailure>) {
    let mut shutdown_seen = false;
    loop {
        let next = if shutdown_seen {
            rx.next().await
        } else {
            let shutdown = std::pin::pin!(inner.shutdown.cancelled());
            match futures::future::select(shutdown, rx.next()).await {
                futures::future::Either::Left(_) => {
                    if inner.env.mutant("busy-spin-after-cancel") {
                        // The planted bug: the case is never disabled.
                        inner.env.yield_now().await;
                    } else {
                        shutdown_seen = true;
                    }
                    continue;
                }
                futures::future::Either::Right((next, _)) => next,
            }
        };
        match next {
            Some(f) => inner.failures.borrow_mut().push(f),
            None => return,
        }
    }
}
