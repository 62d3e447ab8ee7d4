//! Run with recover (seed 002): a long-running loop whose panics are caught,
//! logged and restarted with backoff, instead of silently killing the
//! subsystem for everyone.

use std::future::Future;
use std::panic::Location;

use super::backoff::{Backoff, BackoffConfig};
use crate::env::{CancellationToken, Env, JoinError, sleep_or_cancelled};

/// How [`run_with_recover`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverExit {
    /// The function returned without panicking: it decided to stop.
    Returned {
        /// Panics recovered before that.
        panics: u32,
    },
    /// The context was cancelled (during a run or a backoff sleep).
    Cancelled {
        /// Panics recovered before that.
        panics: u32,
    },
}

/// Runs `f` until it returns; a panic is caught, logged with its message,
/// the subsystem name and the call site, and `f` runs again after a
/// backoff (`config`, seed 002's 1 s → 2 s → … → 30 s by default).
/// Cancelling `token` stops the loop at once, also during a backoff sleep;
/// a panic after cancellation is not restarted.
#[track_caller]
pub fn run_with_recover<E, F, Fut>(
    env: &E,
    token: &CancellationToken,
    name: &str,
    config: BackoffConfig,
    mut f: F,
) -> impl Future<Output = RecoverExit> + 'static
where
    E: Env,
    F: FnMut(CancellationToken) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let site = Location::caller();
    let (env, token, name) = (env.clone(), token.clone(), name.to_owned());
    async move {
        let mut backoff = Backoff::new(config);
        let mut panics = 0u32;
        loop {
            if token.is_cancelled() {
                return RecoverExit::Cancelled { panics };
            }
            let outcome = env.spawn(&name, f(token.clone())).await;
            if crate::buggify!(env, "supervisor.recover.slow_return") {
                // Slow to decide, not deaf: a cancel still ends the wait.
                let until = env.now() + env.random_duration(std::time::Duration::from_millis(50));
                let _ = sleep_or_cancelled(&env, until, &token).await;
            }
            match outcome {
                // It saw the cancellation and stopped.
                Ok(()) if token.is_cancelled() => return RecoverExit::Cancelled { panics },
                Ok(()) if env.mutant("recover-restarts-clean-return") => {
                    tracing::info!(subsystem = name.as_str(), "returned; restarting (mutant)");
                }
                Ok(()) => {
                    tracing::info!(subsystem = name.as_str(), "returned cleanly; not restarting");
                    return RecoverExit::Returned { panics };
                }
                Err(JoinError::Panicked(message)) => {
                    panics += 1;
                    tracing::error!(
                        subsystem = name.as_str(),
                        panic = message.as_str(),
                        site = %site,
                        panics,
                        "recovered panic"
                    );
                }
                Err(JoinError::Cancelled) => return RecoverExit::Cancelled { panics },
            }
            if token.is_cancelled() {
                return RecoverExit::Cancelled { panics };
            }
            let delay = backoff.next_delay(env.random_u64());
            tracing::info!(subsystem = name.as_str(), delay_ms = delay.as_millis() as u64, "restart after backoff");
            if sleep_or_cancelled(&env, env.now() + delay, &token).await.is_err() {
                return RecoverExit::Cancelled { panics };
            }
        }
    }
}
