//! Seed 003's lifecycle controller in a simulated process (see `app.rs`
//! for its services): SIGTERM at a random time and sometimes a second one
//! during the stop; readiness asked from the start; `start` called twice.
//! See `supervisor-lifecycle.toml` for the mutants it catches.
//!
//! Checkers: services start in order, each once the one before it was
//! ready, and never twice; stops run in reverse start order and cancel
//! each service's context only after the later ones stopped; the stop is
//! bounded and hanging stops are reported; a second signal forces the
//! exit; failures are reported; the restart counter resets after a
//! healthy interval (or intensity ends the controller with status 1); no
//! task is left after `wait` and the idle process does not poll.

mod app;
mod observed;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Env, ExitStatus, Instant, ProcessEnv, ProcessSpec, Signal};

use self::app::{AppParams, STOP_TIMEOUT};
use self::observed::Observed;
use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::env::SimEnv;

/// The lifecycle model.
pub(super) struct Lifecycle;

/// Registered services with a stop function, times the stop deadline, plus
/// slack.
const STOP_BOUND: Duration = Duration::from_secs(10);

static SPEC: ModelSpec = ModelSpec {
    name: "supervisor.lifecycle",
    about: "the service lifecycle controller under signals, hanging stops and failing services (seed 003)",
    invariants: &[
        "one-start-per-service",
        "start-order",
        "background-start-not-restarted",
        "readiness-fails-closed",
        "stop-order",
        "stop-bounded",
        "abandoned-reported",
        "second-signal-forces-exit",
        "failures-reported",
        "intensity-exits-nonzero",
        "no-task-after-stop",
        "idle-without-polling",
        "app-exits",
    ],
    coverage: &[
        ("second-signal-during-stop", "a seed (reached if a second SIGTERM arrived while services were stopping)"),
        ("stop-abandoned", "a seed (reached if some stop function was abandoned at its deadline)"),
        ("ready-asked-before-first-check", "a seed (reached if readiness was asked before the first check completed)"),
        ("restart-counter-reset", "a seed (reached if a restart counter was reset after a healthy interval)"),
    ],
    params: &[
        Param {
            name: "hang_permille",
            default: 300,
            min: 0,
            max: 1000,
            about: "chance that a stop function ignores its deadline",
        },
        Param { name: "second_signal_permille", default: 500, min: 0, max: 1000, about: "chance of a second SIGTERM" },
        Param {
            name: "fail_forever",
            default: 0,
            min: 0,
            max: 1,
            about: "1: the worker always fails (restart intensity)",
        },
        Param {
            name: "signal_ms_max",
            default: 4_000,
            min: 501,
            max: 3_600_000,
            about: "the first SIGTERM comes within this",
        },
        Param {
            name: "reset_interval_ms",
            default: 30_000,
            min: 0,
            max: 3_600_000,
            about: "healthy this long resets a restart counter",
        },
        Param {
            name: "relapse_permille",
            default: 0,
            min: 0,
            max: 1000,
            about: "chance the worker fails again after a healthy spell",
        },
    ],
};

impl Model for Lifecycle {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let (checks, probe) = (world.checks(), world.probe());
        let obs = Rc::new(Observed::new());
        let p = AppParams {
            hang_permille: params.count("hang_permille"),
            fail_forever: params.get("fail_forever") == 1,
            reset_interval: Duration::from_millis(params.count("reset_interval_ms")),
            relapse_permille: params.count("relapse_permille"),
        };
        let second_permille = params.count("second_signal_permille");
        let signal_ms_max = params.count("signal_ms_max").max(501);
        let o2 = obs.clone();
        world.register("controller-app", move |env: SimEnv, _| {
            app::app(env, checks.clone(), probe.clone(), o2.clone(), p)
        });
        let env = world.main_env();
        let checks = world.checks();
        let exited = Rc::new(Cell::new(false));
        let (obs2, ex2) = (obs.clone(), exited.clone());
        drop(env.clone().spawn("signaller", async move {
            let child = match env.spawn_process(ProcessSpec::new("controller-app")) {
                Ok(c) => c,
                Err(e) => return checks.fail("app-exits", format!("cannot start the app: {e}")),
            };
            let status = Rc::new(Cell::new(None));
            let (env2, st2, child2) = (env.clone(), status.clone(), child);
            let waiter = env.spawn("waiter", async move {
                let s = env2.wait_child(&child2).await;
                st2.set(Some((s, env2.now())));
            });
            let first_at = Duration::from_millis(if p.fail_forever {
                20_000
            } else {
                500 + env.random_below(signal_ms_max - 500)
            });
            env.sleep(first_at).await;
            let mut second: Option<(Instant, bool)> = None;
            if status.get().is_none() {
                obs2.first_signal.set(Some(env.now()));
                let _ = env.signal_child(&child, Signal::Term);
                let t1 = env.now();
                if env.random_below(1000) < second_permille {
                    env.sleep(Duration::from_millis(env.random_below(2500))).await;
                    if status.get().is_none() {
                        let stopping = obs2.stopped_at.get().is_none();
                        checks.cover("second-signal-during-stop", stopping);
                        let _ = env.signal_child(&child, Signal::Term);
                        second = Some((env.now(), stopping));
                    }
                }
                env.sleep_until(t1 + STOP_BOUND).await;
                if obs2.stopped_at.get().is_none() && obs2.report.borrow().is_none() && status.get().is_none() {
                    checks.fail("stop-bounded", format!("the app is still stopping {STOP_BOUND:?} after SIGTERM"));
                }
            }
            let _ = waiter.await;
            let Some((st, at)) = status.get() else { return };
            ex2.set(true);
            match second {
                Some((_, true)) if st != ExitStatus::Code(128 + Signal::Term.number()) => checks.fail(
                    "second-signal-forces-exit",
                    format!("second SIGTERM during the stop, but the app ended with {st}"),
                ),
                Some((t2, true)) if at - t2 > Duration::from_millis(100) => checks
                    .fail("second-signal-forces-exit", format!("exit came {:?} after the second SIGTERM", at - t2)),
                Some((_, false)) if st != ExitStatus::Signaled(Signal::Term) => checks.fail(
                    "second-signal-forces-exit",
                    format!("SIGTERM after the stop found the default disposition, yet the app ended with {st}"),
                ),
                _ => {}
            }
        }));
        Box::new(move |checks| {
            observed::check_start_order(checks, &obs);
            observed::check_stops(checks, &obs, STOP_TIMEOUT);
            if !exited.get() {
                checks.pending("app-exits", "the controller app never exited");
            }
        })
    }
}
