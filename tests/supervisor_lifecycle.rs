//! Seed 003's verification plan, ported to the simulator: busy spin, the
//! restart table, idempotent start, missing functions, signals, force-stop,
//! readiness through the API; and the controller's peer semantics: the
//! restart counter resets after 30 s healthy (not after a 30 s run), stop
//! cancels each context in reverse start order after the later services
//! stopped, a service starts once the one before it is ready.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use warden::env::{CancellationToken, Env, ExitStatus, ProcessEnv, ProcessSpec, Signal};
use warden::supervisor::lifecycle::{Controller, ControllerOptions, RestartPolicy, Service, SignalMode};
use warden::supervisor::{BackoffConfig, Intensity, RunError};
use warden_sim::env::SimEnv;
use warden_sim::models::{Probe, World};
use warden_sim::testing::{check, check_in_world};

fn options(signals: SignalMode) -> ControllerOptions {
    ControllerOptions {
        signals,
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier_percent: 200,
            jitter_permille: 0,
        },
        intensity: Intensity { max_restarts: 100, period: Duration::from_secs(60) },
        stop_timeout: Duration::from_secs(1),
        check_interval: Duration::from_millis(100),
        ..ControllerOptions::default()
    }
}

fn serving(name: &str) -> Service<SimEnv> {
    Service::new(name).with_start(|_e: SimEnv, t: CancellationToken| async move {
        t.cancelled().await;
        Ok(())
    })
}

/// Busy spin: after stop, the controller's tasks have all ended and an
/// idle virtual second sees (almost) no polls of the process.
#[test]
fn busy_spin_regression() {
    let probe: Rc<RefCell<Option<Probe>>> = Rc::default();
    let p2 = probe.clone();
    check_in_world(
        "busy_spin_regression",
        Duration::from_secs(60),
        move |w: &World| *p2.borrow_mut() = Some(w.probe()),
        move |env: SimEnv| {
            let probe = probe.borrow().clone().expect("probe");
            async move {
                let before = probe.stats(env.proc_id()).live_tasks;
                let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
                ctrl.register(serving("a")).unwrap();
                ctrl.register(Service::new("b").with_readiness(|_e: SimEnv| async { true })).unwrap();
                ctrl.start().unwrap();
                env.sleep(Duration::from_millis(500)).await;
                assert!(probe.stats(env.proc_id()).live_tasks > before, "the controller runs tasks");
                ctrl.stop();
                let report = ctrl.wait().await;
                assert_eq!(report.code, 0);
                let second = (env.now().as_nanos() / 1_000_000_000 + 1) as usize;
                env.sleep(Duration::from_secs(2)).await;
                let stats = probe.stats(env.proc_id());
                assert_eq!(stats.live_tasks, before, "every controller task ended after stop");
                assert!(
                    stats.polls_by_second[second] <= 8,
                    "{} polls in an idle second",
                    stats.polls_by_second[second]
                );
            }
        },
    );
}

/// Restart table: clean exit, cancel and error paths; a start that returns
/// at once is not restarted; a valid error is clean; `Never` does not
/// restart; no empty error is ever reported.
#[test]
fn restart_table() {
    check("restart_table", Duration::from_secs(60), |env: SimEnv| async move {
        let counts: Rc<RefCell<std::collections::BTreeMap<&'static str, u32>>> = Rc::default();
        let counted = |name: &'static str, result: fn(u32) -> Result<(), RunError>, wait: bool| {
            let c = counts.clone();
            Service::new(name).with_start(move |_e: SimEnv, t: CancellationToken| {
                let n = {
                    let mut c = c.borrow_mut();
                    let e = c.entry(name).or_default();
                    *e += 1;
                    *e
                };
                async move {
                    if wait {
                        t.cancelled().await;
                    }
                    result(n)
                }
            })
        };
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        ctrl.register(counted("http-background", |_| Ok(()), false)).unwrap();
        ctrl.register(counted("cancelled", |_| Err(RunError::new("context canceled")), true)).unwrap();
        ctrl.register(counted(
            "flaky",
            |n| if n < 3 { Err(RunError::new(format!("boom {n}"))) } else { Ok(()) },
            false,
        ))
        .unwrap();
        ctrl.register(
            counted("closed", |_| Err(RunError::new("server closed")), false)
                .with_valid_error(|e| e.message() == "server closed"),
        )
        .unwrap();
        ctrl.register(counted("never", |_| Err(RunError::new("fatal")), false).with_policy(RestartPolicy::Never))
            .unwrap();
        ctrl.register(counted("empty", |n| if n < 2 { Err(RunError::new("")) } else { Ok(()) }, false)).unwrap();
        ctrl.start().unwrap();
        env.sleep(Duration::from_secs(5)).await;
        ctrl.stop();
        ctrl.wait().await;
        let c = counts.borrow();
        assert_eq!(c["http-background"], 1, "a start that returns at once is a clean start");
        assert_eq!(c["cancelled"], 1, "cancelled is not restarted");
        assert_eq!(c["flaky"], 3, "errors restart until a clean run");
        assert_eq!(c["closed"], 1, "a valid error ends the run as clean");
        assert_eq!(c["never"], 1, "policy Never");
        let failures = ctrl.failures();
        let of = |n: &str| failures.iter().filter(|f| f.service == n).count();
        assert_eq!((of("flaky"), of("closed"), of("never"), of("cancelled"), of("http-background")), (2, 0, 1, 0, 0));
        assert!(failures.iter().all(|f| !f.error.message().is_empty()), "no empty error: {failures:?}");
        assert!(!failures.iter().find(|f| f.service == "never").unwrap().restarting);
    });
}

/// Idempotent start: a second start starts nothing and wait still returns.
#[test]
fn idempotent_start() {
    check("idempotent_start", Duration::from_secs(60), |env: SimEnv| async move {
        let starts = Rc::new(Cell::new(0));
        let s = starts.clone();
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        ctrl.register(Service::new("svc").with_start(move |_e: SimEnv, t: CancellationToken| {
            s.set(s.get() + 1);
            async move {
                t.cancelled().await;
                Ok(())
            }
        }))
        .unwrap();
        ctrl.start().unwrap();
        assert!(ctrl.start().is_err(), "second start refused");
        env.sleep(Duration::from_millis(100)).await;
        assert_eq!(starts.get(), 1);
        ctrl.stop();
        let r = env.timeout(Duration::from_secs(10), ctrl.wait()).await.expect("wait returns");
        assert_eq!(r.stopped, vec!["svc".to_owned()]);
    });
}

/// Nil funcs: a service with no start or stop does not crash.
#[test]
fn missing_functions_are_no_ops() {
    check("missing_functions_are_no_ops", Duration::from_secs(60), |env: SimEnv| async move {
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        ctrl.register(Service::new("bare")).unwrap();
        assert!(ctrl.register(Service::new("bare")).is_err(), "duplicate name");
        ctrl.start().unwrap();
        env.sleep(Duration::from_millis(100)).await;
        assert!(ctrl.is_live());
        ctrl.stop();
        let r = ctrl.wait().await;
        assert_eq!((r.code, r.stopped.clone(), r.abandoned.len()), (0, vec!["bare".to_owned()], 0));
    });
}

async fn signal_app(env: SimEnv, args: Vec<String>) -> i32 {
    let mode = match args.first().map(String::as_str) {
        Some("disabled") => SignalMode::Disabled,
        _ => SignalMode::Os(vec![Signal::Term, Signal::Int]),
    };
    let hang = args.get(1).is_some_and(|a| a == "hang");
    let ctrl = Controller::new(env.clone(), options(mode));
    let svc = serving("svc").with_stop(move |e: SimEnv, _t| async move {
        if hang {
            std::future::pending::<()>().await;
        }
        e.sleep(Duration::from_millis(10)).await;
        Ok(())
    });
    ctrl.register(svc).unwrap();
    ctrl.start().unwrap();
    let r = ctrl.wait().await;
    if r.forced_by.is_some() {
        return r.code;
    }
    // Handling ended with wait: a SIGTERM now finds the default disposition.
    env.sleep(Duration::from_secs(30)).await;
    r.code + 100
}

fn register_signal_app(w: &World) {
    w.register("signal-app", signal_app);
}

/// Signals: disabled handling leaves SIGTERM's default disposition; OS
/// handling stops the services on the first signal and restores the
/// default afterwards; a second signal during the stop forces exit 143; a
/// custom channel actually receives.
#[test]
fn signals() {
    check_in_world("signals", Duration::from_secs(120), register_signal_app, |env: SimEnv| async move {
        let run = |args: &[&str]| {
            env.spawn_process(ProcessSpec {
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                ..ProcessSpec::new("signal-app")
            })
            .expect("spawn")
        };
        let disabled = run(&["disabled"]);
        env.sleep(Duration::from_millis(100)).await;
        env.signal_child(&disabled, Signal::Term).unwrap();
        assert_eq!(
            env.wait_child(&disabled).await,
            ExitStatus::Signaled(Signal::Term),
            "disabled: default disposition"
        );

        let handled = run(&["os"]);
        env.sleep(Duration::from_millis(100)).await;
        env.signal_child(&handled, Signal::Term).unwrap();
        env.sleep(Duration::from_secs(1)).await;
        env.signal_child(&handled, Signal::Term).unwrap();
        assert_eq!(
            env.wait_child(&handled).await,
            ExitStatus::Signaled(Signal::Term),
            "default restored after shutdown"
        );

        let forced = run(&["os", "hang"]);
        env.sleep(Duration::from_millis(100)).await;
        env.signal_child(&forced, Signal::Term).unwrap();
        env.sleep(Duration::from_millis(200)).await;
        env.signal_child(&forced, Signal::Int).unwrap();
        assert_eq!(env.wait_child(&forced).await, ExitStatus::Code(128 + 2), "second signal forces 128 + signo");

        let (tx, rx) = futures::channel::mpsc::unbounded();
        let ctrl = Controller::new(env.clone(), options(SignalMode::Channel(rx)));
        ctrl.register(serving("svc")).unwrap();
        ctrl.start().unwrap();
        tx.unbounded_send(Signal::Term).unwrap();
        let r = env.timeout(Duration::from_secs(5), ctrl.wait()).await.expect("the custom channel receives");
        assert_eq!((r.code, r.stopped), (0, vec!["svc".to_owned()]));
    });
}

/// Force-stop: a stop that ignores its context is abandoned at its
/// deadline, the others still run in reverse order, and wait returns.
#[test]
fn force_stop() {
    check("force_stop", Duration::from_secs(60), |env: SimEnv| async move {
        let order = Rc::new(RefCell::new(Vec::new()));
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        for (name, hang) in [("first", false), ("stuck", true), ("last", false)] {
            let o = order.clone();
            ctrl.register(serving(name).with_stop(move |_e: SimEnv, _deadline| {
                o.borrow_mut().push(name);
                async move {
                    if hang {
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                }
            }))
            .unwrap();
        }
        ctrl.start().unwrap();
        env.sleep(Duration::from_millis(10)).await;
        let t0 = env.now();
        ctrl.stop();
        let r = env.timeout(Duration::from_secs(30), ctrl.wait()).await.expect("wait returns");
        assert_eq!(*order.borrow(), ["last", "stuck", "first"], "reverse registration order");
        assert_eq!(r.abandoned, vec!["stuck".to_owned()]);
        assert_eq!(r.stopped, vec!["last".to_owned(), "first".to_owned()]);
        let took = env.now() - t0;
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(3), "bounded by the deadline: {took:?}");
    });
}

/// Readiness through the API: not ready until the first check completed.
#[test]
fn readiness_fails_closed() {
    check("readiness_fails_closed", Duration::from_secs(60), |env: SimEnv| async move {
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        ctrl.register(serving("svc").with_readiness(|e: SimEnv| async move {
            e.sleep(Duration::from_millis(500)).await;
            true
        }))
        .unwrap();
        ctrl.register(Service::new("probe-panics").with_liveness(|| panic!("probe panics"))).unwrap();
        assert!(!ctrl.is_ready(), "not started");
        ctrl.start().unwrap();
        env.sleep(Duration::from_millis(250)).await;
        assert!(!ctrl.is_ready(), "first check still running");
        env.sleep(Duration::from_millis(500)).await;
        assert!(ctrl.is_ready(), "first check completed");
        assert!(!ctrl.is_live(), "a panicking probe is recovered and fails");
        ctrl.stop();
        ctrl.wait().await;
        assert!(!ctrl.is_ready(), "stopped");
    });
}

/// What happened, in order.
type Log<T> = Rc<RefCell<Vec<T>>>;

/// Three restarts allowed in ten minutes: only a reset lets a fourth
/// failure through.
fn strict() -> ControllerOptions {
    ControllerOptions {
        intensity: Intensity { max_restarts: 3, period: Duration::from_secs(600) },
        restart_reset_interval: Duration::from_secs(30),
        ..options(SignalMode::Disabled)
    }
}

/// D2: after 30 s healthy the restart counter starts again from zero.
#[test]
fn restart_counter_resets_after_thirty_seconds_healthy() {
    check("restart_counter_resets_after_thirty_seconds_healthy", Duration::from_secs(300), |env: SimEnv| async move {
        let ctrl = Controller::new(env.clone(), strict());
        // Runs 1-3 fail at once; run 4 serves 31 s, then fails; runs 5-6
        // fail at once; run 7 serves.
        let runs = Rc::new(Cell::new(0u32));
        let r2 = runs.clone();
        ctrl.register(Service::new("svc").with_start(move |env: SimEnv, t: CancellationToken| {
            let run = r2.get() + 1;
            r2.set(run);
            async move {
                match run {
                    1..=3 | 5 | 6 => env.sleep(Duration::from_millis(10)).await,
                    4 => env.sleep(Duration::from_secs(31)).await,
                    _ => {
                        t.cancelled().await;
                        return Ok(());
                    }
                }
                Err(RunError::new(format!("run {run} fails")))
            }
        }))
        .unwrap();
        ctrl.start().unwrap();
        env.sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.get(), 7, "six failures, all restarted");
        assert_eq!(ctrl.stats().counter_resets, 1, "healthy 31 s: the counter of three was reset");
        ctrl.stop();
        let r = ctrl.wait().await;
        assert_eq!((r.code, r.fatal), (0, false), "{r:?}");
    });
}

/// "Healthy for 30 s", not "this run lasted 30 s": a run that never passed
/// its readiness check resets nothing, so the fourth failure is fatal.
#[test]
fn a_long_run_never_healthy_does_not_reset_the_counter() {
    check("a_long_run_never_healthy_does_not_reset_the_counter", Duration::from_secs(300), |env: SimEnv| async move {
        let ctrl = Controller::new(env.clone(), strict());
        // Runs 1-3 fail at once, run 4 after 31 s: never ready meanwhile.
        let runs = Rc::new(Cell::new(0u32));
        let r2 = runs.clone();
        ctrl.register(
            Service::new("svc")
                .with_start(move |env: SimEnv, _t: CancellationToken| {
                    let run = r2.get() + 1;
                    r2.set(run);
                    async move {
                        let long = if run == 4 { 31_000 } else { 10 };
                        env.sleep(Duration::from_millis(long)).await;
                        Err(RunError::new(format!("run {run} fails")))
                    }
                })
                .with_readiness(|_e: SimEnv| async { false }),
        )
        .unwrap();
        ctrl.start().unwrap();
        let r = env.timeout(Duration::from_secs(120), ctrl.wait()).await.expect("the controller gave up");
        assert_eq!(runs.get(), 4);
        assert_eq!(ctrl.stats().counter_resets, 0, "never healthy: no reset");
        assert_eq!((r.code, r.fatal), (1, true), "{r:?}");
    });
}

/// D6: contexts are cancelled in reverse start order, each only after the
/// services started after it have stopped; every stop function runs
/// while its own context is being cancelled, one service at a time.
#[test]
fn stop_cancels_each_context_in_reverse_start_order() {
    check("stop_cancels_each_context_in_reverse_start_order", Duration::from_secs(60), |env: SimEnv| async move {
        let events: Log<(String, &'static str, warden::env::Instant)> = Rc::default();
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        for name in ["db", "cache", "http"] {
            let (e1, e2) = (events.clone(), events.clone());
            ctrl.register(
                Service::new(name)
                    .with_start(move |env: SimEnv, t: CancellationToken| {
                        let e1 = e1.clone();
                        async move {
                            t.cancelled().await;
                            e1.borrow_mut().push((name.to_owned(), "context cancelled", env.now()));
                            Ok(())
                        }
                    })
                    .with_stop(move |env: SimEnv, _deadline| {
                        let e2 = e2.clone();
                        async move {
                            env.sleep(Duration::from_millis(200)).await;
                            e2.borrow_mut().push((name.to_owned(), "stop returned", env.now()));
                            Ok(())
                        }
                    }),
            )
            .unwrap();
        }
        ctrl.start().unwrap();
        env.sleep(Duration::from_millis(100)).await;
        let t0 = env.now();
        ctrl.stop();
        let r = ctrl.wait().await;
        assert_eq!(r.stopped, ["http", "cache", "db"]);
        let ev = events.borrow();
        let order: Vec<(&str, &str)> = ev.iter().map(|(n, what, _)| (n.as_str(), *what)).collect();
        assert_eq!(
            order,
            [
                ("http", "context cancelled"),
                ("http", "stop returned"),
                ("cache", "context cancelled"),
                ("cache", "stop returned"),
                ("db", "context cancelled"),
                ("db", "stop returned"),
            ],
            "one service at a time, last started first"
        );
        let cache_cancelled = ev[2].2;
        assert!(cache_cancelled - t0 >= Duration::from_millis(200), "cache's context outlived http's stop");
    });
}

/// A service starts only once the one registered before it is ready; one
/// that never becomes ready ends the controller (exit 1), and the services
/// after it never start.
#[test]
fn each_service_starts_once_the_one_before_is_ready() {
    check("each_service_starts_once_the_one_before_is_ready", Duration::from_secs(300), |env: SimEnv| async move {
        let started: Log<(&'static str, warden::env::Instant)> = Rc::default();
        let starting = |name: &'static str, started: &Log<(&'static str, warden::env::Instant)>| {
            let s = started.clone();
            Service::new(name).with_start(move |env: SimEnv, t: CancellationToken| {
                s.borrow_mut().push((name, env.now()));
                async move {
                    t.cancelled().await;
                    Ok(())
                }
            })
        };
        let ctrl = Controller::new(env.clone(), options(SignalMode::Disabled));
        let t0 = env.now();
        ctrl.register(
            starting("db", &started)
                .with_readiness(move |env: SimEnv| async move { env.now() - t0 >= Duration::from_millis(500) }),
        )
        .unwrap();
        ctrl.register(starting("http", &started)).unwrap();
        ctrl.start().unwrap();
        env.sleep(Duration::from_secs(2)).await;
        let s = started.borrow().clone();
        assert_eq!(s.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["db", "http"]);
        assert!(s[1].1 - t0 >= Duration::from_millis(500), "http started before db was ready: {s:?}");
        assert!(ctrl.is_ready());
        ctrl.stop();
        ctrl.wait().await;

        let opts = ControllerOptions { ready_timeout: Duration::from_secs(10), ..options(SignalMode::Disabled) };
        let ctrl = Controller::new(env.clone(), opts);
        let never: Log<(&'static str, warden::env::Instant)> = Rc::default();
        ctrl.register(starting("db", &never).with_readiness(|_e: SimEnv| async { false })).unwrap();
        ctrl.register(starting("http", &never)).unwrap();
        ctrl.start().unwrap();
        let r = env.timeout(Duration::from_secs(60), ctrl.wait()).await.expect("gave up at the ready timeout");
        assert_eq!((r.code, r.fatal), (1, true), "{r:?}");
        assert_eq!(r.not_started, ["http"]);
        assert_eq!(never.borrow().iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["db"]);
    });
}
