//! The controller app, its services in registration order: an http
//! service whose start returns at once (readiness that panics first), a
//! worker that fails a few times and may relapse after a healthy spell, a
//! service with no functions, a store that runs until cancelled (its first
//! readiness check slow, so readiness is asked before it completed);
//! stops that sometimes ignore their deadline; `start()` called twice.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use warden::env::{CancellationToken, Env, Signal, sleep_or_cancelled};
use warden::supervisor::lifecycle::{Controller, ControllerOptions, Service, SignalMode};
use warden::supervisor::{BackoffConfig, Intensity, RunError};

use super::observed::Observed;
use crate::check::Checks;
use crate::env::SimEnv;
use crate::models::Probe;

const IDLE_POLLS_PER_SECOND_MAX: u32 = 8;
/// The stop deadline of each service.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(1);
pub(super) const INTENSITY: Intensity = Intensity { max_restarts: 5, period: Duration::from_secs(10) };
/// Quick failures of a relapse: with up to three before it, more than the
/// intensity allows unless the counter was reset.
const RELAPSE_FAILURES: u32 = 3;

/// The app's knobs (from the scenario's parameters).
#[derive(Clone, Copy)]
pub(super) struct AppParams {
    pub(super) hang_permille: u64,
    pub(super) fail_forever: bool,
    pub(super) reset_interval: Duration,
    pub(super) relapse_permille: u64,
}

type StopFuture = LocalBoxFuture<'static, Result<(), RunError>>;

fn stop_fn(
    name: &'static str,
    hang: bool,
    obs: &Rc<Observed>,
) -> impl Fn(SimEnv, CancellationToken) -> StopFuture + use<> {
    let obs = obs.clone();
    obs.svc(name).hangs.set(hang);
    move |env: SimEnv, _deadline| {
        let obs = obs.clone();
        Box::pin(async move {
            obs.stops.borrow_mut().push(name);
            obs.svc(name).stop_called.set(Some(env.now()));
            if hang {
                // Ignores its deadline.
                std::future::pending::<()>().await;
            }
            env.sleep(Duration::from_millis(env.random_below(300))).await;
            obs.svc(name).stop_returned.set(Some(env.now()));
            Ok(())
        })
    }
}

/// What the worker's run number `run` does.
#[derive(Clone, Copy)]
struct WorkerPlan {
    failures: u32,
    relapse: bool,
    reset_interval: Duration,
}

impl WorkerPlan {
    /// `Some(after)`: the run fails after that long; `None`: it serves
    /// until cancelled.
    fn fails_after(&self, run: u32, env: &SimEnv) -> Option<Duration> {
        let healthy = self.failures + 1;
        match run {
            r if r < healthy => Some(Duration::from_millis(10)),
            r if r == healthy && self.relapse => {
                Some(self.reset_interval + Duration::from_millis(env.random_below(500)))
            }
            r if self.relapse && r < healthy + RELAPSE_FAILURES => Some(Duration::from_millis(10)),
            _ => None,
        }
    }
}

fn worker(env: &SimEnv, obs: &Rc<Observed>, checks: &Checks, p: AppParams) -> Service<SimEnv> {
    let plan = WorkerPlan {
        failures: if p.fail_forever { u32::MAX - 1 } else { env.random_below(4) as u32 },
        relapse: env.random_below(1000) < p.relapse_permille,
        reset_interval: p.reset_interval,
    };
    let runs = Rc::new(Cell::new(0u32));
    let (o, c) = (obs.clone(), checks.clone());
    Service::new("worker")
        .with_start(move |env: SimEnv, t: CancellationToken| {
            let run = runs.get() + 1;
            runs.set(run);
            let (o, fails_after) = (o.clone(), plan.fails_after(run, &env));
            o.run_begins(&c, "worker", env.now());
            async move {
                if let Some(after) = fails_after
                    && sleep_or_cancelled(&env, env.now() + after, &t).await.is_ok()
                {
                    o.run_returns("worker", true, &t);
                    return Err(RunError::new(format!("transient failure {run}")));
                }
                t.cancelled().await;
                o.svc("worker").ctx_cancelled.set(Some(env.now()));
                o.run_returns("worker", false, &t);
                Err(RunError::new("server closed"))
            }
        })
        .with_stop(stop_fn("worker", env.random_below(1000) < p.hang_permille, obs))
        .with_valid_error(|e| e.message() == "server closed")
}

/// The services, in registration order.
fn services(env: &SimEnv, obs: &Rc<Observed>, checks: &Checks, p: AppParams) -> Vec<Service<SimEnv>> {
    let hang = |env: &SimEnv| env.random_below(1000) < p.hang_permille;
    let first_check_ms = env.random_below(1500);
    let (o, c) = (obs.clone(), checks.clone());
    let o2 = obs.clone();
    let store = Service::new("store")
        .with_start(move |env: SimEnv, t: CancellationToken| {
            o.run_begins(&c, "store", env.now());
            let o = o.clone();
            async move {
                t.cancelled().await;
                o.svc("store").ctx_cancelled.set(Some(env.now()));
                o.run_returns("store", false, &t);
                Ok(())
            }
        })
        .with_stop(stop_fn("store", hang(env), obs))
        .with_readiness(move |env: SimEnv| {
            let o = o2.clone();
            async move {
                if o.svc("store").ready_at.get().is_none() {
                    env.sleep(Duration::from_millis(first_check_ms)).await;
                    o.svc("store").ready_at.set(Some(env.now()));
                }
                true
            }
        });
    let (o, c) = (obs.clone(), checks.clone());
    let (o2, checks_run) = (obs.clone(), Rc::new(Cell::new(0u32)));
    let http = Service::new("http")
        .with_start(move |env: SimEnv, t: CancellationToken| {
            o.run_begins(&c, "http", env.now());
            o.run_returns("http", false, &t);
            let o = o.clone();
            // Serves in the background: returns at once; its context is
            // watched for the stop.
            drop(env.clone().spawn("http-context", async move {
                t.cancelled().await;
                o.svc("http").ctx_cancelled.set(Some(env.now()));
            }));
            async { Ok(()) }
        })
        .with_stop(stop_fn("http", hang(env), obs))
        .with_liveness(|| true)
        .with_readiness(move |env: SimEnv| {
            let n = checks_run.get() + 1;
            checks_run.set(n);
            let o = o2.clone();
            async move {
                if n == 1 {
                    panic!("readiness probe panics on its first call");
                }
                if o.svc("http").ready_at.get().is_none() {
                    o.svc("http").ready_at.set(Some(env.now()));
                }
                true
            }
        });
    vec![http, worker(env, obs, checks, p), Service::new("bare"), store]
}

pub(super) async fn app(env: SimEnv, checks: Checks, probe: Probe, obs: Rc<Observed>, p: AppParams) -> i32 {
    let opts = ControllerOptions {
        signals: SignalMode::Os(vec![Signal::Term, Signal::Int]),
        restart_reset_interval: p.reset_interval,
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier_percent: 200,
            jitter_permille: 0,
        },
        intensity: INTENSITY,
        stop_timeout: STOP_TIMEOUT,
        check_interval: Duration::from_millis(200),
        ready_timeout: Duration::from_secs(60),
    };
    let ctrl = Controller::new(env.clone(), opts);
    for s in services(&env, &obs, &checks, p) {
        if let Err(e) = ctrl.register(s) {
            checks.fail("one-start-per-service", format!("register refused: {e}"));
        }
    }
    // Readiness, asked from the start.
    let (c2, env2, o2, checks2) = (ctrl.clone(), env.clone(), obs.clone(), checks.clone());
    let asked_early = Rc::new(Cell::new(false));
    let ae = asked_early.clone();
    let observer = env.spawn("readiness-observer", async move {
        loop {
            let ready = c2.is_ready();
            let store_checked = o2.svc("store").ready_at.get().is_some();
            ae.set(ae.get() || !store_checked);
            if ready && !store_checked {
                checks2.fail("readiness-fails-closed", "ready before the store's first readiness check completed");
            }
            env2.sleep(Duration::from_millis(20)).await;
        }
    });
    if let Err(e) = ctrl.start() {
        checks.fail("one-start-per-service", format!("first start refused: {e}"));
    }
    // A second start at a random time: refused or not, no service may run
    // twice at once.
    let (c3, env3) = (ctrl.clone(), env.clone());
    let again = env.spawn("second-start", async move {
        env3.sleep(Duration::from_millis(env3.random_below(3000))).await;
        let _ = c3.start();
    });
    let report = ctrl.wait().await;
    obs.stopped_at.set(Some(env.now()));
    observer.abort();
    again.abort();
    checks.cover("ready-asked-before-first-check", asked_early.get());
    checks.cover("restart-counter-reset", ctrl.stats().counter_resets > 0);
    let http_starts = obs.svc("http").starts.borrow().len();
    if http_starts > 1 {
        checks.fail(
            "background-start-not-restarted",
            format!("http (serves in the background) started {http_starts} times"),
        );
    }
    check_failures(&checks, &obs, &ctrl, &report, p.fail_forever);
    let forced = report.forced_by.is_some();
    let code = report.code;
    *obs.report.borrow_mut() = Some(report);
    if forced {
        // A forced exit exits now; what is left dies with the process.
        return code;
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
    code
}

fn check_failures(
    checks: &Checks,
    obs: &Observed,
    ctrl: &Controller<SimEnv>,
    report: &warden::supervisor::lifecycle::StopReport,
    fail_forever: bool,
) {
    let failures = ctrl.failures();
    if failures.iter().any(|f| f.error.message().is_empty()) {
        checks.fail("failures-reported", "an empty error was reported");
    }
    let worker = obs.svc("worker");
    let errors = worker.errors.borrow();
    let runs = worker.starts.borrow().len() as u32;
    if !fail_forever {
        // An error returned as the stop cancelled its context may be
        // classified as the cancellation: at most those go unreported.
        let reported = failures.iter().filter(|f| f.service == "worker").count();
        let in_stop = errors.iter().filter(|t| t.is_cancelled()).count();
        if reported > errors.len() || reported + in_stop < errors.len() {
            checks.fail("failures-reported", format!("worker failed {} times, {reported} reported", errors.len()));
        }
        if report.fatal && report.forced_by.is_none() {
            checks.fail(
                "intensity-exits-nonzero",
                format!("the worker's failures were transient, yet the controller gave up: {report:?}"),
            );
        }
    } else if report.forced_by.is_none() && (report.code != 1 || !report.fatal) {
        checks
            .fail("intensity-exits-nonzero", format!("worker always fails, but the controller ended with {report:?}"));
    } else if runs > INTENSITY.max_restarts + 1 {
        checks.fail(
            "intensity-exits-nonzero",
            format!("worker ran {runs} times (at most {} restarts)", INTENSITY.max_restarts),
        );
    }
}
