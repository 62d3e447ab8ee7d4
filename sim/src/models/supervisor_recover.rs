//! Seed 002's run-with-recover under cancellation: subsystems that panic a
//! few times, then either return cleanly or serve until cancelled, some
//! panicking right after the cancellation. A canceller stops them all at a
//! random time. Correct: a panic restarts after 1 s, 2 s, 4 s, ...; a
//! clean return ends the loop; cancellation ends it at once, also during a
//! backoff sleep; no task is left afterwards. Mutant
//! `recover-restarts-clean-return`: a clean return is restarted.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use warden::env::{CancellationToken, Env, Instant};
use warden::supervisor::{BackoffConfig, run_with_recover};

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::check::Checks;
use crate::env::SimEnv;

/// The recovery model.
pub(super) struct Recover;

/// Polls the app process may make in its idle second after the loops ended.
const IDLE_POLLS_PER_SECOND_MAX: u32 = 8;
/// How long after the cancellation a loop may take to end (its function
/// returns within a millisecond of seeing the cancellation).
const CANCEL_LATENCY_MAX: Duration = Duration::from_millis(50);

static SPEC: ModelSpec = ModelSpec {
    name: "supervisor.recover",
    about: "run-with-recover: panics, clean returns, cancellation at a random time (seed 002)",
    invariants: &[
        "clean-return-ends",
        "backoff-respected",
        "cancel-stops-at-once",
        "loops-end",
        "no-task-after-stop",
        "idle-without-polling",
    ],
    coverage: &[
        ("panic-after-cancel", "a subsystem (reached if it panicked after the cancellation)"),
        ("cancel-during-backoff", "a subsystem (reached if the cancellation came during a backoff sleep)"),
    ],
    params: &[
        Param { name: "subsystems", default: 6, min: 1, max: 256, about: "concurrent run-with-recover loops" },
        Param {
            name: "cancel_s_max",
            default: 12,
            min: 1,
            max: 3600,
            about: "the cancellation comes within this many seconds",
        },
    ],
};

#[derive(Default)]
struct Sub {
    calls: Cell<u32>,
    returned_clean: Cell<bool>,
    starts: RefCell<Vec<Instant>>,
    ended: Cell<Option<Instant>>,
    in_backoff: Cell<bool>,
    panicked_after_cancel: Cell<bool>,
}

/// What one call of a subsystem's function does.
#[derive(Clone, Copy)]
struct Plan {
    panics_first: u32,
    clean_after_ms: Option<u64>,
    panic_on_cancel: bool,
}

fn check_backoff(checks: &Checks, name: &str, starts: &[Instant]) {
    // Start k+1 follows a panic at or after start k, and waits at least
    // the k-th delay of 1 s, 2 s, 4 s, ... (capped at 30 s) after start k.
    for (k, w) in starts.windows(2).enumerate() {
        let want = Duration::from_secs((1u64 << k.min(5)).min(30));
        if w[1].saturating_duration_since(w[0]) < want {
            checks.fail(
                "backoff-respected",
                format!("{name}: restart {} came {:?} after the previous start (< {want:?})", k + 1, w[1] - w[0]),
            );
        }
    }
}

async fn app(env: SimEnv, checks: Checks, probe: super::Probe, subsystems: u64, cancel_s_max: u64) -> i32 {
    let token = CancellationToken::new();
    let cancel_at = Duration::from_millis(1 + env.random_below(cancel_s_max * 1000));
    let subs: Vec<Rc<Sub>> = (0..subsystems).map(|_| Rc::new(Sub::default())).collect();
    let mut loops = Vec::new();
    for (i, sub) in subs.iter().enumerate() {
        let plan = Plan {
            panics_first: env.random_below(5) as u32,
            clean_after_ms: env.random_ratio(1, 2).then(|| env.random_below(3000)),
            panic_on_cancel: env.random_ratio(1, 2),
        };
        let (env2, sub2, checks2) = (env.clone(), sub.clone(), checks.clone());
        let name = format!("subsystem-{i}");
        let n2 = name.clone();
        let f = move |t: CancellationToken| {
            let (env, sub, checks, name) = (env2.clone(), sub2.clone(), checks2.clone(), n2.clone());
            async move {
                let call = sub.calls.get() + 1;
                sub.calls.set(call);
                sub.in_backoff.set(false);
                sub.starts.borrow_mut().push(env.now());
                if sub.returned_clean.get() {
                    checks.fail("clean-return-ends", format!("{name} ran again (call {call}) after a clean return"));
                }
                let warmup = std::pin::pin!(env.sleep(Duration::from_millis(1 + env.random_below(200))));
                futures::future::select(warmup, std::pin::pin!(t.cancelled())).await;
                if call <= plan.panics_first && !t.is_cancelled() {
                    sub.in_backoff.set(true);
                    panic!("{name}: deliberate panic {call}");
                }
                if let Some(ms) = plan.clean_after_ms {
                    let sleep = std::pin::pin!(env.sleep(Duration::from_millis(ms)));
                    if let futures::future::Either::Left(_) =
                        futures::future::select(sleep, std::pin::pin!(t.cancelled())).await
                    {
                        sub.returned_clean.set(true);
                        return;
                    }
                } else {
                    t.cancelled().await;
                }
                if plan.panic_on_cancel {
                    sub.in_backoff.set(true);
                    sub.panicked_after_cancel.set(true);
                    panic!("{name}: panic under cancellation");
                }
            }
        };
        let fut = run_with_recover(&env, &token, &name, BackoffConfig::RECOVER, f);
        let (env3, sub3) = (env.clone(), sub.clone());
        loops.push(env.spawn("recover-loop", async move {
            let exit = fut.await;
            sub3.ended.set(Some(env3.now()));
            exit
        }));
    }
    env.sleep(cancel_at).await;
    let cancelled_at = env.now();
    for sub in &subs {
        checks.cover("cancel-during-backoff", sub.ended.get().is_none() && sub.in_backoff.get());
    }
    token.cancel();
    for (i, (l, sub)) in loops.into_iter().zip(&subs).enumerate() {
        let exit = l.await;
        let name = format!("subsystem-{i}");
        check_backoff(&checks, &name, &sub.starts.borrow());
        let ended = sub.ended.get().unwrap_or(cancelled_at);
        if ended > cancelled_at && ended - cancelled_at > CANCEL_LATENCY_MAX {
            checks.fail(
                "cancel-stops-at-once",
                format!("{name} ended {:?} after the cancellation", ended - cancelled_at),
            );
        }
        checks.cover("panic-after-cancel", sub.panicked_after_cancel.get());
        if exit.is_err() {
            checks.fail("loops-end", format!("{name}'s loop task ended with {exit:?}"));
        }
    }
    // Idle second: nothing but this task may be left, and nothing polls.
    let second = (env.now().as_nanos() / 1_000_000_000 + 1) as usize;
    env.sleep(Duration::from_secs(2)).await;
    let stats = probe.stats(env.proc_id());
    if stats.live_tasks > 1 {
        checks.fail("no-task-after-stop", format!("{} tasks alive after every loop ended", stats.live_tasks - 1));
    }
    let polls = stats.polls_by_second.get(second).copied().unwrap_or(0);
    if polls > IDLE_POLLS_PER_SECOND_MAX {
        checks.fail("idle-without-polling", format!("{polls} polls in idle virtual second {second}"));
    }
    0
}

impl Model for Recover {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let (checks, probe) = (world.checks(), world.probe());
        let (n, cancel_s_max) = (params.count("subsystems").max(1), params.count("cancel_s_max").max(1));
        let exited = Rc::new(Cell::new(None));
        let ex2 = exited.clone();
        world.register("recover-app", move |env: SimEnv, _| {
            let (checks, probe, ex) = (checks.clone(), probe.clone(), ex2.clone());
            async move {
                let code = app(env, checks, probe, n, cancel_s_max).await;
                ex.set(Some(code));
                code
            }
        });
        let h = world.add_host("app");
        if let Err(e) = world.start(h, "recover-app", Vec::new()) {
            world.checks().fail("loops-end", format!("cannot start the app: {e}"));
        }
        Box::new(move |checks| {
            if exited.get().is_none() {
                checks.pending("loops-end", "some run-with-recover loop never ended after the cancellation");
            }
        })
    }
}
