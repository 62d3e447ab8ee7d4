//! Liveness probes (D5): a probe that panics is recovered and counts as
//! failing; a missing probe passes.

use std::panic::AssertUnwindSafe;

use super::service::Probe;
use crate::env::panic_message;

/// The answer of `service`'s liveness probe; a missing probe passes, a
/// panic fails.
pub(super) fn probe_live(service: &str, probe: Option<&Probe>) -> bool {
    let Some(probe) = probe else { return true };
    match std::panic::catch_unwind(AssertUnwindSafe(|| probe())) {
        Ok(live) => live,
        Err(payload) => {
            tracing::warn!(service, panic = panic_message(&*payload).as_str(), "liveness probe panicked");
            false
        }
    }
}
