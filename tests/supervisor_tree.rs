//! The runnable tree in the simulator: seed 000's TestDoneDelay, duplicate
//! names, programming errors, groups, restarts that clear children, backoff
//! reset, restart intensity at the root.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use warden::env::{CancellationToken, Env};
use warden::supervisor::{
    BackoffConfig, Ctx, IllegalTransition, Intensity, NodeState, RunError, RunnableSignal, Supervisor, SupervisorError,
    TreeConfig, TreeError, runnable,
};
use warden_sim::env::SimEnv;
use warden_sim::testing::check;

fn fast(test_mode: bool) -> TreeConfig {
    TreeConfig {
        backoff: BackoffConfig {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            multiplier_percent: 200,
            jitter_permille: 500,
        },
        intensity: Intensity { max_restarts: 1000, period: Duration::from_secs(1) },
        test_mode,
        done_on_signal: false,
        shutdown_grace: Duration::from_secs(5),
    }
}

fn err(e: TreeError) -> RunError {
    RunError::new(e.to_string())
}

type SupSlot = Rc<RefCell<Weak<Supervisor<SimEnv>>>>;

/// Seed 000's TestDoneDelay: the inner runnable signals Healthy and Done,
/// waits, sleeps 10 ms and returns; the outer fails meanwhile. In test mode
/// an exit for a node that is gone would end the run with an error.
#[test]
fn test_done_delay() {
    check("test_done_delay", Duration::from_secs(60), |env: SimEnv| async move {
        let started_inner = Rc::new(tokio::sync::Notify::new());
        let fail_outer = Rc::new(tokio::sync::Notify::new());
        let slot: SupSlot = Rc::default();
        let (si, fo, sl) = (started_inner.clone(), fail_outer.clone(), slot.clone());
        let root = runnable(move |ctx: Ctx<SimEnv>| {
            let (si, fo, sl) = (si.clone(), fo.clone(), sl.clone());
            async move {
                let sl2 = sl.clone();
                ctx.run(
                    "inner",
                    runnable(move |ctx: Ctx<SimEnv>| {
                        let (si, sl) = (si.clone(), sl2.clone());
                        async move {
                            ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                            ctx.signal(RunnableSignal::Done).map_err(err)?;
                            let (n, c) = (si.notified(), ctx.token().cancelled());
                            futures::future::select(std::pin::pin!(n), std::pin::pin!(c)).await;
                            ctx.env().sleep(Duration::from_millis(10)).await;
                            let sup = sl.borrow().upgrade().expect("supervisor alive");
                            assert_ne!(sup.state_of(ctx.dn()), Some(NodeState::Done), "DONE before return");
                            Ok(())
                        }
                    }),
                )
                .map_err(err)?;
                let (n, c) = (fo.notified(), ctx.token().cancelled());
                if let futures::future::Either::Right(_) =
                    futures::future::select(std::pin::pin!(n), std::pin::pin!(c)).await
                {
                    return Ok(());
                }
                Err(RunError::new("failed"))
            }
        });
        let sup = Rc::new(Supervisor::new(env.clone(), root, fast(true)));
        *slot.borrow_mut() = Rc::downgrade(&sup);
        let stop = CancellationToken::new();
        let (sup2, stop2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { sup2.run(stop2).await });
        env.sleep(Duration::from_millis(1)).await;
        started_inner.notify_one();
        fail_outer.notify_one();
        env.sleep(Duration::from_millis(20)).await;
        assert!(sup.metrics().restarts >= 1, "the outer failed and was restarted after the inner returned");
        stop.cancel();
        assert_eq!(run.await.expect("run task"), Ok(()));
        assert_eq!(sup.metrics().internal_errors, 0);
    });
}

async fn run_tree(
    env: &SimEnv,
    root: warden::supervisor::Runnable<SimEnv>,
    cfg: TreeConfig,
    for_: Duration,
) -> (Rc<Supervisor<SimEnv>>, Result<(), SupervisorError>) {
    let sup = Rc::new(Supervisor::new(env.clone(), root, cfg));
    let stop = CancellationToken::new();
    let (s2, st2) = (sup.clone(), stop.clone());
    let run = env.spawn("supervisor", async move { s2.run(st2).await });
    let env2 = env.clone();
    drop(env.spawn("stopper", async move {
        env2.sleep(for_).await;
        stop.cancel();
    }));
    let r = run.await.expect("run task");
    (sup, r)
}

#[test]
fn duplicate_names_and_programming_errors_are_reported() {
    check("duplicate_names_and_programming_errors", Duration::from_secs(60), |env: SimEnv| async move {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s2 = seen.clone();
        let root = runnable(move |ctx: Ctx<SimEnv>| {
            let seen = s2.clone();
            async move {
                let idle = || {
                    runnable(|ctx: Ctx<SimEnv>| async move {
                        ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                        ctx.token().cancelled().await;
                        Ok(())
                    })
                };
                ctx.run("a", idle()).map_err(err)?;
                seen.borrow_mut().push(ctx.run("a", idle()).map(|_| ()));
                seen.borrow_mut().push(ctx.run("x.y", idle()));
                seen.borrow_mut().push(ctx.signal(RunnableSignal::Done));
                ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                seen.borrow_mut().push(ctx.signal(RunnableSignal::Healthy));
                ctx.token().cancelled().await;
                Ok(())
            }
        });
        let (sup, r) = run_tree(&env, root, fast(false), Duration::from_millis(50)).await;
        assert_eq!(r, Ok(()));
        let seen = seen.borrow().clone();
        assert!(matches!(&seen[0], Err(TreeError::DuplicateName { name, .. }) if name == "a"), "{:?}", seen[0]);
        assert!(matches!(&seen[1], Err(TreeError::InvalidName(_))));
        assert!(matches!(&seen[2], Err(TreeError::Programming { error: IllegalTransition::DoneBeforeHealthy, .. })));
        assert!(matches!(&seen[3], Err(TreeError::Programming { error: IllegalTransition::HealthyTwice(_), .. })));
        assert_eq!(sup.metrics().programming_errors, 2);
        // In test mode the first programming error ends the run.
        let root = runnable(|ctx: Ctx<SimEnv>| async move {
            let _ = ctx.signal(RunnableSignal::Done);
            ctx.token().cancelled().await;
            Ok(())
        });
        let (_, r) = run_tree(&env, root, fast(true), Duration::from_secs(5)).await;
        assert!(matches!(r, Err(SupervisorError::Internal(TreeError::Programming { .. }))), "{r:?}");
    });
}

#[test]
fn a_failing_group_member_restarts_the_group_and_restart_clears_children() {
    check("group_restart", Duration::from_secs(60), |env: SimEnv| async move {
        let starts = Rc::new(RefCell::new(std::collections::BTreeMap::<String, u32>::new()));
        let st = starts.clone();
        let root = runnable(move |ctx: Ctx<SimEnv>| {
            let st = st.clone();
            async move {
                let member = |fail: bool, st: Rc<RefCell<std::collections::BTreeMap<String, u32>>>| {
                    runnable(move |ctx: Ctx<SimEnv>| {
                        let st = st.clone();
                        async move {
                            *st.borrow_mut().entry(ctx.dn().to_owned()).or_default() += 1;
                            ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                            if fail && st.borrow()[ctx.dn()] == 1 {
                                ctx.env().sleep(Duration::from_millis(5)).await;
                                return Err(RunError::new("member fails once"));
                            }
                            ctx.token().cancelled().await;
                            Ok(())
                        }
                    })
                };
                ctx.run_group(vec![("a", member(true, st.clone())), ("b", member(false, st.clone()))]).map_err(err)?;
                ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                ctx.token().cancelled().await;
                Ok(())
            }
        });
        let (sup, r) = run_tree(&env, root, fast(true), Duration::from_secs(2)).await;
        assert_eq!(r, Ok(()));
        let starts = starts.borrow();
        assert_eq!(starts.get("root.a"), Some(&2), "the failed member restarted");
        assert_eq!(starts.get("root.b"), Some(&2), "its group sibling was cancelled and restarted with it");
        assert!(sup.metrics().restarts >= 2);
    });
}

#[test]
fn restart_intensity_at_the_root_ends_the_supervisor_with_an_error() {
    check("root_intensity", Duration::from_secs(600), |env: SimEnv| async move {
        let runs = Rc::new(Cell::new(0u32));
        let r2 = runs.clone();
        let root = runnable(move |ctx: Ctx<SimEnv>| {
            let runs = r2.clone();
            async move {
                runs.set(runs.get() + 1);
                ctx.run("child", runnable(|_ctx: Ctx<SimEnv>| async { Err(RunError::new("always fails")) }))
                    .map_err(err)?;
                ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                ctx.token().cancelled().await;
                Ok(())
            }
        });
        let mut cfg = fast(true);
        cfg.intensity = Intensity { max_restarts: 3, period: Duration::from_secs(10) };
        let (sup, r) = run_tree(&env, root, cfg, Duration::from_secs(300)).await;
        assert!(matches!(&r, Err(SupervisorError::IntensityExceeded { dn, .. }) if dn == "root"), "{r:?}");
        assert_eq!(sup.metrics().restarts, 3, "three restarts allowed, the fourth gives up");
        assert_eq!(runs.get(), 1);
    });
}

#[test]
fn backoff_grows_while_failing_and_resets_on_healthy() {
    check("backoff_reset", Duration::from_secs(600), |env: SimEnv| async move {
        let starts = Rc::new(RefCell::new(Vec::new()));
        let s2 = starts.clone();
        let root = runnable(move |ctx: Ctx<SimEnv>| {
            let s2 = s2.clone();
            async move {
                ctx.run(
                    "flaky",
                    runnable(move |ctx: Ctx<SimEnv>| {
                        let s2 = s2.clone();
                        async move {
                            s2.borrow_mut().push(ctx.env().now());
                            let n = s2.borrow().len();
                            if n == 4 {
                                ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                            }
                            Err(RunError::new("fails"))
                        }
                    }),
                )
                .map_err(err)?;
                ctx.signal(RunnableSignal::Healthy).map_err(err)?;
                ctx.token().cancelled().await;
                Ok(())
            }
        });
        let mut cfg = fast(true);
        cfg.backoff.jitter_permille = 0;
        let (_, r) = run_tree(&env, root, cfg, Duration::from_millis(300)).await;
        assert_eq!(r, Ok(()));
        let s = starts.borrow();
        let gaps: Vec<u64> = s.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect();
        assert!(gaps.len() >= 5, "{gaps:?}");
        assert_eq!(&gaps[..5], &[10, 20, 40, 10, 20], "doubling, then reset by Healthy at the 4th start: {gaps:?}");
    });
}

/// Every wait has a deadline: a runnable that ignores its cancellation is
/// aborted when the shutdown grace ends, and the run says so.
#[test]
fn shutdown_aborts_runnables_that_ignore_cancellation() {
    check("shutdown_aborts_runnables_that_ignore_cancellation", Duration::from_secs(60), |env: SimEnv| async move {
        let root = runnable(|ctx: Ctx<SimEnv>| async move {
            ctx.signal(RunnableSignal::Healthy).map_err(err)?;
            // Deaf to its token.
            ctx.env().sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        let sup = Supervisor::new(env.clone(), root, fast(true));
        let stop = CancellationToken::new();
        let (env2, stop2) = (env.clone(), stop.clone());
        drop(env.spawn("stopper", async move {
            env2.sleep(Duration::from_secs(1)).await;
            stop2.cancel();
        }));
        let t0 = env.now();
        let r = sup.run(stop).await;
        assert!(matches!(r, Err(SupervisorError::ShutdownTimedOut { still_running: 1, .. })), "run ended with {r:?}");
        let took = env.now() - t0;
        assert!(took >= Duration::from_secs(6) && took < Duration::from_secs(7), "returned after {took:?}");
    });
}
