//! Sleeping that a cancellation cuts short: the one helper every driver
//! uses for "wait for a deadline unless told to stop", so that all of them
//! break a tie the same way.

use futures::FutureExt;

use super::{CancellationToken, Env, Instant};

/// [`sleep_or_cancelled`] was cut short: the token was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled before the deadline")]
pub struct Cancelled;

/// Sleeps until `deadline` unless `token` is cancelled first.
///
/// Cancellation wins a tie: a token already cancelled (or cancelled in the
/// same step the deadline passes) returns `Err(Cancelled)` without
/// sleeping, so a loop that checks it never runs one more round after a
/// stop was asked for.
pub async fn sleep_or_cancelled<E: Env>(
    env: &E,
    deadline: Instant,
    token: &CancellationToken,
) -> Result<(), Cancelled> {
    if token.is_cancelled() {
        return Err(Cancelled);
    }
    let mut cancelled = std::pin::pin!(token.cancelled().fuse());
    let mut slept = std::pin::pin!(env.sleep_until(deadline).fuse());
    futures::select_biased! {
        () = cancelled => Err(Cancelled),
        () = slept => if token.is_cancelled() { Err(Cancelled) } else { Ok(()) },
    }
}
