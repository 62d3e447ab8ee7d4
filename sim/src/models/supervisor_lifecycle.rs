//! Seed 003's lifecycle controller in a simulated process: services that
//! run until cancelled, serve in the background, fail a few times (or for
//! ever), and stops that sometimes ignore their deadline; SIGTERM at a
//! random time and sometimes a second one during the stop; readiness asked
//! from the start; `start` called twice. See `supervisor-lifecycle.toml`
//! for the mutants it catches.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use warden::env::{CancellationToken, Env, ExitStatus, Instant, ProcessEnv, ProcessSpec, Signal};
use warden::supervisor::lifecycle::{Controller, ControllerOptions, Service, SignalMode, StopReport};
use warden::supervisor::{BackoffConfig, Intensity, RunError};

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::check::Checks;
use crate::env::SimEnv;

/// The lifecycle model.
pub(super) struct Lifecycle;

const IDLE_POLLS_PER_SECOND_MAX: u32 = 8;
const STOP_TIMEOUT: Duration = Duration::from_secs(1);
/// Registered services with a stop function, times the stop deadline, plus
/// the bounded wait for the service loops, plus slack.
const STOP_BOUND: Duration = Duration::from_secs(10);
const INTENSITY: Intensity = Intensity { max_restarts: 5, period: Duration::from_secs(10) };

static SPEC: ModelSpec = ModelSpec {
    name: "supervisor.lifecycle",
    about: "the service lifecycle controller under signals, hanging stops and failing services (seed 003)",
    invariants: &[
        "start-idempotent",
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
    ],
};

/// What the app observed, shared with the model's checker.
#[derive(Default)]
struct Observed {
    stops: RefCell<Vec<(String, Instant)>>,
    report: RefCell<Option<StopReport>>,
    stopping_since: Cell<Option<Instant>>,
    stopped_at: Cell<Option<Instant>>,
    hanging: RefCell<Vec<String>>,
}

fn stop_fn(
    name: &'static str,
    hang: bool,
    obs: &Rc<Observed>,
) -> impl Fn(SimEnv, CancellationToken) -> futures::future::LocalBoxFuture<'static, Result<(), RunError>> + 'static {
    let obs = obs.clone();
    if hang {
        obs.hanging.borrow_mut().push(name.to_owned());
    }
    move |env: SimEnv, _deadline| {
        let obs = obs.clone();
        Box::pin(async move {
            obs.stops.borrow_mut().push((name.to_owned(), env.now()));
            if obs.stopping_since.get().is_none() {
                obs.stopping_since.set(Some(env.now()));
            }
            if hang {
                // Ignores its deadline.
                std::future::pending::<()>().await;
            }
            env.sleep(Duration::from_millis(env.random_below(300))).await;
            Ok(())
        })
    }
}

async fn app(env: SimEnv, checks: Checks, probe: super::Probe, obs: Rc<Observed>, p: (u64, bool)) -> i32 {
    let (hang_permille, fail_forever) = p;
    let opts = ControllerOptions {
        signals: SignalMode::Os(vec![Signal::Term, Signal::Int]),
        restart_reset_interval: Duration::from_secs(30),
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier_percent: 200,
            jitter_permille: 0,
        },
        intensity: INTENSITY,
        stop_timeout: STOP_TIMEOUT,
        check_interval: Duration::from_millis(200),
    };
    let ctrl = Controller::new(env.clone(), opts);
    let store_checked = Rc::new(Cell::new(false));
    let http_starts = Rc::new(Cell::new(0u32));
    let worker_failures = if fail_forever { u32::MAX } else { env.random_below(4) as u32 };
    let worker_runs = Rc::new(Cell::new(0u32));
    let hang = |env: &SimEnv| env.random_below(1000) < hang_permille;

    let sc = store_checked.clone();
    let first_check_ms = env.random_below(1500);
    let store = Service::new("store")
        .with_start(|_env: SimEnv, t: CancellationToken| async move {
            t.cancelled().await;
            Ok(())
        })
        .with_stop(stop_fn("store", hang(&env), &obs))
        .with_readiness(move |env: SimEnv| {
            let sc = sc.clone();
            async move {
                if !sc.get() {
                    env.sleep(Duration::from_millis(first_check_ms)).await;
                    sc.set(true);
                }
                true
            }
        });
    let hs = http_starts.clone();
    let http_checks = Rc::new(Cell::new(0u32));
    let http = Service::new("http")
        .with_start(move |_env: SimEnv, _t| {
            hs.set(hs.get() + 1);
            // Serves in the background: returns at once.
            async { Ok(()) }
        })
        .with_stop(stop_fn("http", hang(&env), &obs))
        .with_liveness(|| true)
        .with_readiness(move |_env: SimEnv| {
            let n = http_checks.get() + 1;
            http_checks.set(n);
            async move {
                if n == 1 {
                    panic!("readiness probe panics on its first call");
                }
                true
            }
        });
    let wr = worker_runs.clone();
    let worker = Service::new("worker")
        .with_start(move |env: SimEnv, t: CancellationToken| {
            let run = wr.get() + 1;
            wr.set(run);
            async move {
                env.sleep(Duration::from_millis(10)).await;
                if run <= worker_failures {
                    return Err(RunError::new(format!("transient failure {run}")));
                }
                t.cancelled().await;
                Err(RunError::new("server closed"))
            }
        })
        .with_stop(stop_fn("worker", hang(&env), &obs))
        .with_valid_error(|e| e.message() == "server closed");
    for s in [store, http, worker, Service::new("bare")] {
        if let Err(e) = ctrl.register(s) {
            checks.fail("start-idempotent", format!("register refused: {e}"));
        }
    }
    // Readiness, asked from the start.
    let (c2, env2, sc2, checks2) = (ctrl.clone(), env.clone(), store_checked.clone(), checks.clone());
    let asked_early = Rc::new(Cell::new(false));
    let ae = asked_early.clone();
    let observer = env.spawn("readiness-observer", async move {
        loop {
            let ready = c2.is_ready();
            ae.set(ae.get() || !sc2.get());
            if ready && !sc2.get() {
                checks2.fail("readiness-fails-closed", "ready before the store's first readiness check completed");
            }
            env2.sleep(Duration::from_millis(20)).await;
        }
    });
    if let Err(e) = ctrl.start() {
        checks.fail("start-idempotent", format!("first start refused: {e}"));
    }
    if ctrl.start().is_ok() {
        checks.fail("start-idempotent", "a second start() was accepted");
    }
    let report = ctrl.wait().await;
    obs.stopped_at.set(Some(env.now()));
    observer.abort();
    checks.cover("ready-asked-before-first-check", asked_early.get());
    if http_starts.get() != 1 {
        checks.fail(
            "background-start-not-restarted",
            format!("http (serves in the background) started {} times", http_starts.get()),
        );
    }
    let failures = ctrl.failures();
    if failures.iter().any(|f| f.error.message().is_empty()) {
        checks.fail("failures-reported", "an empty error was reported");
    }
    if !fail_forever {
        let worker_reported = failures.iter().filter(|f| f.service == "worker").count() as u32;
        let expected = worker_failures.min(worker_runs.get());
        if worker_reported != expected {
            checks.fail("failures-reported", format!("worker failed {expected} times, {worker_reported} reported"));
        }
    } else if report.forced_by.is_none() && (report.code != 1 || !report.fatal) {
        checks
            .fail("intensity-exits-nonzero", format!("worker always fails, but the controller ended with {report:?}"));
    } else if worker_runs.get() > INTENSITY.max_restarts + 1 {
        checks.fail(
            "intensity-exits-nonzero",
            format!("worker ran {} times (at most {} restarts)", worker_runs.get(), INTENSITY.max_restarts),
        );
    }
    let forced = report.forced_by.is_some();
    *obs.report.borrow_mut() = Some(report);
    if forced {
        // A forced exit exits now; what is left dies with the process.
        return obs.report.borrow().as_ref().map_or(0, |r| r.code);
    }
    // Idle: every internal task has ended, nothing polls.
    let second = (env.now().as_nanos() / 1_000_000_000 + 1) as usize;
    env.sleep(Duration::from_secs(2)).await;
    let stats = probe.stats(env.proc_id());
    if stats.live_tasks > 1 {
        checks.fail(
            "no-task-after-stop",
            format!("{} controller tasks alive after wait() returned", stats.live_tasks - 1),
        );
    }
    let polls = stats.polls_by_second.get(second).copied().unwrap_or(0);
    if polls > IDLE_POLLS_PER_SECOND_MAX {
        checks.fail("idle-without-polling", format!("{polls} polls in idle virtual second {second} after stop"));
    }
    obs.report.borrow().as_ref().map_or(0, |r| r.code)
}

fn check_stops(checks: &Checks, obs: &Observed) {
    let stops = obs.stops.borrow();
    let report = obs.report.borrow();
    let Some(report) = report.as_ref() else { return };
    let order: Vec<&str> = stops.iter().map(|(n, _)| n.as_str()).collect();
    let want = ["worker", "http", "store"];
    let forced = report.forced_by.is_some();
    if (!forced && order != want) || (forced && !want.starts_with(&order)) {
        checks.fail("stop-order", format!("stops ran in order {order:?}, want {want:?} (reverse registration)"));
    }
    for w in stops.windows(2) {
        let (prev, next) = (&w[0], &w[1]);
        let prev_hung = obs.hanging.borrow().contains(&prev.0);
        // The stop task starts a poll after its deadline was armed.
        if prev_hung && next.1 - prev.1 < STOP_TIMEOUT - Duration::from_millis(10) {
            checks.fail("stop-order", format!("{} stopped before {}'s deadline: stops overlap", next.0, prev.0));
        }
    }
    let hung_called: Vec<String> =
        stops.iter().map(|(n, _)| n.clone()).filter(|n| obs.hanging.borrow().contains(n)).collect();
    if !forced && report.abandoned != hung_called {
        checks.fail("abandoned-reported", format!("abandoned {:?}, hanging stops {hung_called:?}", report.abandoned));
    }
    checks.cover("stop-abandoned", !report.abandoned.is_empty());
}

impl Model for Lifecycle {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let (checks, probe) = (world.checks(), world.probe());
        let obs = Rc::new(Observed::default());
        let hang_permille = params.count("hang_permille");
        let second_permille = params.count("second_signal_permille");
        let fail_forever = params.get("fail_forever") == 1;
        let o2 = obs.clone();
        world.register("controller-app", move |env: SimEnv, _| {
            app(env, checks.clone(), probe.clone(), o2.clone(), (hang_permille, fail_forever))
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
            let first_at = Duration::from_millis(if fail_forever { 20_000 } else { 500 + env.random_below(3500) });
            env.sleep(first_at).await;
            let mut second: Option<(Instant, bool)> = None;
            let child_alive = status.get().is_none();
            if child_alive {
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
                let deadline = t1 + STOP_BOUND;
                env.sleep_until(deadline).await;
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
            check_stops(checks, &obs);
            if !exited.get() {
                checks.pending("app-exits", "the controller app never exited");
            }
        })
    }
}
