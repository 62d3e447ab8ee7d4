//! A simulated registry for the re-register gate: a program on its own
//! host, reached over simulated TCP ([`super::wire`]), serving register /
//! recover-orphans / deregister / heartbeat with revisions and gone
//! replies over the state in [`super::book`]. It can be slowed, made to
//! fail and partitioned (scenario faults), and it has the faults of a real
//! registry after it applied a register ([`super::after_apply`]); it
//! deletes registrations in waves (the model's workload).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Addr, Env, Instant, NetEnv};

use super::after_apply::{self, Fate};
use super::book::Book;
use super::wire::{parse_condition, read_frame, rev_word, wall_ms, write_frame};
use crate::env::SimEnv;

/// The registry's TCP port.
pub(crate) const PORT: u16 = 7000;
/// A register is applied only if this much of its deadline is left, so
/// the reply (delayed by a partition of at most 5 s) arrives in time; the
/// faults of [`super::after_apply`] break this on purpose.
pub(crate) const APPLY_MARGIN: Duration = Duration::from_secs(6);
/// The cap of two thirds of the stalls.
const SHORT_STALL: Duration = Duration::from_secs(2);

/// Fault knobs of the registry (from the scenario's parameters).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knobs {
    /// Percent of register / recover-orphans calls refused unapplied.
    pub fail_percent: u64,
    /// Percent of calls that stall.
    pub slow_percent: u64,
    /// Longest stall of a slow call.
    pub stall_max: Duration,
    /// The first register after `.0` (a recovery) takes the registry down
    /// for `.1`: every call fails meanwhile.
    pub outage: Option<(Duration, Duration)>,
    /// Percent of applied registers whose reply never reaches the daemon
    /// (lost, sent after its deadline, or the connection reset).
    pub lost_reply_percent: u64,
    /// Percent of registers delivered twice.
    pub duplicate_percent: u64,
    /// Percent of registers stalled past their deadline and applied later.
    pub late_apply_percent: u64,
}

/// The shared registry state.
pub(crate) type SharedBook = Rc<RefCell<Book>>;

/// Whether the registry is down now (starting the outage at the first
/// register past its start time).
fn down(env: &SimEnv, book: &SharedBook, knobs: Knobs, request: &str) -> bool {
    let Some((after, length)) = knobs.outage.filter(|_| faulty(env)) else { return false };
    let now = env.now();
    let mut b = book.borrow_mut();
    if b.outage_since.is_none() && request.starts_with("register ") && now >= Instant::BOOT + after {
        b.outage_since = Some(now);
    }
    b.outage_since.is_some_and(|since| now < since + length)
}

/// The registry program: serves calls until its process ends.
pub(crate) async fn serve(env: SimEnv, book: SharedBook, knobs: Knobs) -> i32 {
    let Ok(listener) = env.listen(&Addr::Tcp(SocketAddr::from(([0, 0, 0, 0], PORT)))) else { return 2 };
    loop {
        let Ok(s) = env.accept(&listener).await else { return 3 };
        let (env2, book) = (env.clone(), book.clone());
        drop(env.spawn("registry.conn", async move {
            let Ok(request) = read_frame(&env2, &s).await else { return };
            let (reply, fate) = handle(&env2, &book, knobs, &request).await;
            match fate {
                // The client may have given up; nothing to do then.
                Fate::Reply => drop(write_frame(&env2, &s, &reply).await),
                Fate::Lost { until } => env2.sleep_until(until).await,
                Fate::Reset => {}
            }
        }));
    }
}

/// Faults apply only in the phase with faults.
pub(crate) fn faulty(env: &SimEnv) -> bool {
    env.faults_allowed()
}

async fn stall(env: &SimEnv, knobs: Knobs, max: Duration) {
    if faulty(env) && env.random_below(100) < knobs.slow_percent {
        // Mostly short stalls, a third of them up to the longest.
        let cap = if env.random_below(3) == 0 { knobs.stall_max } else { knobs.stall_max.min(SHORT_STALL) };
        env.sleep(env.random_duration(max.min(cap))).await;
    }
}

/// Applies `register <key> <since> <deadline>`: the reply and whether it
/// reaches the client.
async fn register(env: &SimEnv, book: &SharedBook, knobs: Knobs, key: &str, since: &str, deadline: &str) -> String {
    let (Some(condition), Ok(deadline_ms)) = (parse_condition(since), deadline.parse::<u64>()) else {
        return "err bad request".into();
    };
    stall(env, knobs, knobs.stall_max).await;
    if faulty(env) && env.random_below(100) < knobs.fail_percent {
        return "err injected failure".into();
    }
    let left = Duration::from_millis(deadline_ms.saturating_sub(wall_ms(env)));
    if left <= APPLY_MARGIN {
        return "err deadline exceeded".into();
    }
    let Some(answer) = book.borrow_mut().register(key, condition) else { return "err unknown key".into() };
    // A slow reply after applying, never past what the client waits.
    stall(env, knobs, left - APPLY_MARGIN).await;
    answer_text(book, &answer)
}

/// The reply to a register.
pub(crate) fn answer_text(book: &SharedBook, answer: &super::book::Answer) -> String {
    let list: Vec<String> = answer.runtimes.iter().map(|(id, p)| format!("{id}:{p}")).collect();
    let list = if list.is_empty() { "-".to_owned() } else { list.join(",") };
    let revisions = book.borrow().revisions;
    let outcome = if answer.applied { "applied" } else { "already" };
    format!("ok {} {outcome} {list}", rev_word(revisions.then_some(answer.revision)))
}

async fn handle(env: &SimEnv, book: &SharedBook, knobs: Knobs, request: &str) -> (String, Fate) {
    if down(env, book, knobs, request) {
        return ("err registry unavailable".into(), Fate::Reply);
    }
    let mut w = request.split(' ');
    let reply = match (w.next(), w.next(), w.next(), w.next()) {
        (Some("register"), Some(key), Some(since), Some(deadline)) => {
            if let Some(faulted) = after_apply::late_or_twice(env, book, knobs, key, since, deadline).await {
                return faulted;
            }
            let reply = register(env, book, knobs, key, since, deadline).await;
            return after_apply::maybe_lose(env, book, knobs, reply, deadline).await;
        }
        (Some("orphans"), Some(_), None, None) => {
            stall(env, knobs, Duration::from_secs(2)).await;
            if faulty(env) && env.random_below(100) < knobs.fail_percent {
                "err injected failure".into()
            } else {
                "ok".into()
            }
        }
        (Some("deregister"), Some(list), None, None) => {
            for id in list.split(',').filter(|i| *i != "-") {
                book.borrow_mut().deregister(id);
            }
            "ok".into()
        }
        (Some("heartbeat"), Some(id), None, None) => {
            stall(env, knobs, Duration::from_secs(2)).await;
            book.borrow().heartbeat(id)
        }
        _ => format!("err unknown request {request:?}"),
    };
    (reply, Fate::Reply)
}
