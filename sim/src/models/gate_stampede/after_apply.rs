//! The faults a real registry has around a register it applies: the reply
//! lost after the apply (the connection stays open until the client gives
//! up), sent after the client's deadline, or the connection reset; the
//! request delivered twice; the request stalled past its deadline and
//! applied later. Each one that hides an applied register from the daemon
//! is counted in `Book::lost_after_apply` (coverage window
//! `register-reply-lost-after-apply`).

use std::time::Duration;

use warden::env::{Env, Instant};

use super::registry::{Knobs, SharedBook, answer_text, faulty};
use super::wire::{parse_condition, wall_ms};
use crate::env::SimEnv;

/// What becomes of a reply.
pub(crate) enum Fate {
    /// Sent.
    Reply,
    /// Never sent; the connection stays open until `until`, past the
    /// client's deadline.
    Lost {
        /// When the registry lets go of the connection.
        until: Instant,
    },
    /// Never sent; the connection is closed at once.
    Reset,
}

/// Longest delay of a duplicate delivery.
const DUPLICATE_DELAY_MAX: Duration = Duration::from_secs(3);
/// Longest time past its deadline a late register is applied.
const LATE_MAX: Duration = Duration::from_secs(20);
/// How far past the deadline a late reply or a held connection goes.
const PAST_DEADLINE: Duration = Duration::from_secs(1);

/// When the client's deadline (wall milliseconds on the wire) falls, on
/// this host's clock.
fn deadline_at(env: &SimEnv, deadline_ms: u64) -> Instant {
    env.now() + Duration::from_millis(deadline_ms.saturating_sub(wall_ms(env)))
}

/// Counts a register applied whose reply the daemon will never see.
fn count_lost(book: &SharedBook) {
    book.borrow_mut().lost_after_apply += 1;
}

/// Before a register is served: maybe delivers it a second time later (a
/// duplicate whose reply goes nowhere), and maybe stalls it past its
/// deadline and applies it then (`Some`: the late reply, to a client that
/// gave up).
pub(crate) async fn late_or_twice(
    env: &SimEnv,
    book: &SharedBook,
    knobs: Knobs,
    key: &str,
    since: &str,
    deadline: &str,
) -> Option<(String, Fate)> {
    let (Some(condition), Ok(deadline_ms)) = (parse_condition(since), deadline.parse::<u64>()) else { return None };
    if !faulty(env) {
        return None;
    }
    if env.random_below(100) < knobs.duplicate_percent {
        let (env2, book, key) = (env.clone(), book.clone(), key.to_owned());
        let delay = env.random_duration(DUPLICATE_DELAY_MAX);
        drop(env.spawn("registry.duplicate", async move {
            env2.sleep(delay).await;
            let applied = book.borrow_mut().register(&key, condition).is_some_and(|a| a.applied);
            if applied {
                count_lost(&book);
            }
        }));
    }
    if env.random_below(100) < knobs.late_apply_percent {
        let at = deadline_at(env, deadline_ms) + PAST_DEADLINE + env.random_duration(LATE_MAX);
        env.sleep_until(at).await;
        let answer = book.borrow_mut().register(key, condition)?;
        if answer.applied {
            count_lost(book);
        }
        return Some((answer_text(book, &answer), Fate::Reply));
    }
    None
}

/// After a register was served with `reply`: maybe its reply never
/// reaches the client.
pub(crate) async fn maybe_lose(
    env: &SimEnv,
    book: &SharedBook,
    knobs: Knobs,
    reply: String,
    deadline: &str,
) -> (String, Fate) {
    let Ok(deadline_ms) = deadline.parse::<u64>() else { return (reply, Fate::Reply) };
    if !faulty(env) || !reply.starts_with("ok ") || env.random_below(100) >= knobs.lost_reply_percent {
        return (reply, Fate::Reply);
    }
    if reply.contains(" applied ") {
        count_lost(book);
    }
    let past = deadline_at(env, deadline_ms) + PAST_DEADLINE;
    match env.random_below(3) {
        0 => (reply, Fate::Lost { until: past }),
        1 => {
            // Timed out: the reply leaves after the client gave up.
            env.sleep_until(past + env.random_duration(Duration::from_secs(4))).await;
            (reply, Fate::Reply)
        }
        _ => (reply, Fate::Reset),
    }
}
