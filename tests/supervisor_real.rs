//! The supervisor on `RealEnv` (tokio, real time): a panicking runnable is
//! restarted, run-with-recover restarts panics with backoff, ends on a
//! clean return and stops at once when cancelled, and stop returns within
//! its deadline in reverse order. Generous deadlines; order and outcome
//! are asserted, never tight timings. (Signal handling runs in a child:
//! `supervisor_signals_real.rs`.)

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use warden::env::real::RealEnv;
use warden::env::{CancellationToken, Env};
use warden::supervisor::lifecycle::{Controller, ControllerOptions, Service, SignalMode};
use warden::supervisor::{
    BackoffConfig, Ctx, RecoverExit, RunnableSignal, Supervisor, TreeConfig, run_with_recover, runnable,
};

const FAST: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(10),
    max: Duration::from_millis(100),
    multiplier_percent: 200,
    jitter_permille: 500,
};

#[test]
fn a_panicking_runnable_restarts() {
    let env = RealEnv::new();
    let out = RealEnv::block_on(async move {
        let starts = Rc::new(Cell::new(0u32));
        let healthy = Rc::new(tokio::sync::Notify::new());
        let (s2, h2) = (starts.clone(), healthy.clone());
        let root = runnable(move |ctx: Ctx<RealEnv>| {
            let (s2, h2) = (s2.clone(), h2.clone());
            async move {
                ctx.run(
                    "child",
                    runnable(move |ctx: Ctx<RealEnv>| {
                        let (s2, h2) = (s2.clone(), h2.clone());
                        async move {
                            s2.set(s2.get() + 1);
                            if s2.get() == 1 {
                                panic!("first run panics");
                            }
                            ctx.signal(RunnableSignal::Healthy)?;
                            h2.notify_one();
                            ctx.token().cancelled().await;
                            Ok(())
                        }
                    }),
                )?;
                ctx.signal(RunnableSignal::Healthy)?;
                ctx.token().cancelled().await;
                Ok(())
            }
        });
        let sup = Rc::new(Supervisor::new(
            env.clone(),
            root,
            TreeConfig { backoff: FAST, test_mode: true, ..TreeConfig::default() },
        ));
        let stop = CancellationToken::new();
        let (sup2, stop2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { sup2.run(stop2).await });
        env.timeout(Duration::from_secs(60), healthy.notified()).await.expect("restarted child became healthy");
        assert_eq!(starts.get(), 2);
        assert_eq!(sup.metrics().panics, 1);
        stop.cancel();
        let r = env.timeout(Duration::from_secs(60), run).await.expect("supervisor stops");
        assert_eq!(r, Ok(Ok(())));
    });
    out.expect("runtime");
}

#[test]
fn stop_returns_within_its_deadline_in_reverse_order() {
    let env = RealEnv::new();
    let out = RealEnv::block_on(async move {
        let order = Rc::new(RefCell::new(Vec::new()));
        let options = ControllerOptions {
            signals: SignalMode::Disabled,
            stop_timeout: Duration::from_millis(300),
            backoff: FAST,
            ..ControllerOptions::default()
        };
        let ctrl = Controller::new(env.clone(), options);
        for (name, hang) in [("db", false), ("cache", true), ("http", false)] {
            let o = order.clone();
            let svc = Service::new(name)
                .with_start(|_e: RealEnv, t: CancellationToken| async move {
                    t.cancelled().await;
                    Ok(())
                })
                .with_stop(move |_e: RealEnv, _deadline| {
                    o.borrow_mut().push(name);
                    async move {
                        if hang {
                            std::future::pending::<()>().await;
                        }
                        Ok(())
                    }
                });
            ctrl.register(svc).unwrap();
        }
        ctrl.start().unwrap();
        env.sleep(Duration::from_millis(50)).await;
        ctrl.stop();
        let r = env.timeout(Duration::from_secs(30), ctrl.wait()).await.expect("wait returns within the deadline");
        assert_eq!(*order.borrow(), ["http", "cache", "db"]);
        assert_eq!(r.abandoned, vec!["cache".to_owned()]);
        assert_eq!(r.code, 0);
    });
    out.expect("runtime");
}

const NO_JITTER: BackoffConfig = BackoffConfig {
    initial: Duration::from_millis(20),
    max: Duration::from_millis(200),
    multiplier_percent: 200,
    jitter_permille: 0,
};

#[test]
fn run_with_recover_restarts_panics_with_backoff_and_ends_on_a_clean_return() {
    let env = RealEnv::new();
    let out = RealEnv::block_on(async move {
        let calls = Rc::new(Cell::new(0u32));
        let c = calls.clone();
        let t0 = env.now();
        let exit = run_with_recover(&env, &CancellationToken::new(), "flaky", NO_JITTER, move |_t| {
            let c = c.clone();
            async move {
                c.set(c.get() + 1);
                if c.get() < 3 {
                    panic!("deliberate");
                }
            }
        });
        let exit = env.timeout(Duration::from_secs(30), exit).await.expect("returns in time");
        assert_eq!(exit, RecoverExit::Returned { panics: 2 });
        assert_eq!(calls.get(), 3, "two panics restarted, the clean return ended the loop");
        assert!(env.now() - t0 >= Duration::from_millis(60), "backoffs of 20 ms and 40 ms were waited");
        let once = Rc::new(Cell::new(0u32));
        let o = once.clone();
        let exit = run_with_recover(&env, &CancellationToken::new(), "clean", NO_JITTER, move |_t| {
            o.set(o.get() + 1);
            async {}
        });
        assert_eq!(env.timeout(Duration::from_secs(30), exit).await, Ok(RecoverExit::Returned { panics: 0 }));
        assert_eq!(once.get(), 1, "a clean return is not restarted");
    });
    out.expect("runtime");
}

#[test]
fn run_with_recover_stops_at_once_when_cancelled_during_a_backoff() {
    let env = RealEnv::new();
    let out = RealEnv::block_on(async move {
        let token = CancellationToken::new();
        let slow = BackoffConfig { initial: Duration::from_secs(600), ..NO_JITTER };
        let exit = run_with_recover(&env, &token, "always-panics", slow, |_t| async { panic!("always") });
        let run = env.spawn("recover", exit);
        env.sleep(Duration::from_millis(100)).await;
        token.cancel();
        let exit = env.timeout(Duration::from_secs(30), run).await.expect("cancel ends the 600 s backoff");
        assert_eq!(exit, Ok(RecoverExit::Cancelled { panics: 1 }));
    });
    out.expect("runtime");
}
