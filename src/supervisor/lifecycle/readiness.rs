//! Readiness and liveness probes (D5, D7): a readiness check's result is
//! cached, and until the first check completed the service is not ready;
//! a probe that panics is recovered and counts as failing.

use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use super::controller::{Inner, Slot};
use super::service::Service;
use crate::env::{Env, JoinError, panic_message};

/// Runs `slot`'s readiness check every check interval until shutdown.
pub(crate) async fn watch<E: Env>(inner: Rc<Inner<E>>, slot: Rc<Slot<E>>) {
    let Some(check) = slot.service.readiness.clone() else { return };
    let env = inner.env.clone();
    loop {
        let ok = match inner.spawn_value("controller.readiness-check", check(env.clone())).await {
            Ok(ok) => ok,
            Err(JoinError::Panicked(m)) => {
                tracing::warn!(service = slot.service.name.as_str(), panic = m.as_str(), "readiness check panicked");
                false
            }
            Err(JoinError::Cancelled) => return,
        };
        slot.ready.set(Some(ok));
        let sleep = std::pin::pin!(env.sleep(inner.options.check_interval));
        let stop = std::pin::pin!(inner.shutdown.cancelled());
        if let futures::future::Either::Right(_) = futures::future::select(sleep, stop).await {
            return;
        }
    }
}

/// The liveness probe's answer; a missing probe passes, a panic fails.
pub(crate) fn probe_live<E: Env>(service: &Service<E>) -> bool {
    let Some(probe) = &service.liveness else { return true };
    match std::panic::catch_unwind(AssertUnwindSafe(|| probe())) {
        Ok(live) => live,
        Err(payload) => {
            tracing::warn!(
                service = service.name.as_str(),
                panic = panic_message(&*payload).as_str(),
                "liveness probe panicked"
            );
            false
        }
    }
}
