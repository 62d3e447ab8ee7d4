//! The runnable tree in the simulator: seed 000's TestDoneDelay, duplicate
//! names, programming errors, groups (a group restart is charged once, its
//! cancelled members restart at once), restarts that clear children,
//! backoff reset, restart intensity at the root, waiting until the tree is
//! settled, pending restarts, state changes, stale contexts.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use warden::env::Instant;
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

type Starts = Rc<RefCell<std::collections::BTreeMap<String, Vec<Instant>>>>;

/// A root running a group of `n` members; member `m0` fails on its runs
/// listed in `fail_runs` after `fail_after` (counted from its start).
fn group_root(
    n: usize,
    fail_runs: &'static [usize],
    fail_after: Duration,
    starts: Starts,
) -> warden::supervisor::Runnable<SimEnv> {
    runnable(move |ctx: Ctx<SimEnv>| {
        let starts = starts.clone();
        async move {
            let members = (0..n)
                .map(|i| {
                    let starts = starts.clone();
                    let member = runnable(move |ctx: Ctx<SimEnv>| {
                        let starts = starts.clone();
                        async move {
                            let run = {
                                let mut s = starts.borrow_mut();
                                let v = s.entry(ctx.dn().to_owned()).or_default();
                                v.push(ctx.env().now());
                                v.len()
                            };
                            ctx.signal(RunnableSignal::Healthy)?;
                            if i == 0 && fail_runs.contains(&run) {
                                ctx.env().sleep(fail_after).await;
                                return Err(RunError::new(format!("m0 crashes (run {run})")));
                            }
                            ctx.token().cancelled().await;
                            Ok(())
                        }
                    });
                    (format!("m{i}"), member)
                })
                .collect::<Vec<_>>();
            ctx.run_group(members.iter().map(|(n, r)| (n.as_str(), r.clone())).collect())?;
            ctx.signal(RunnableSignal::Healthy)?;
            ctx.token().cancelled().await;
            Ok(())
        }
    })
}

/// The default limits (10 restarts in 60 s) and backoff (500 ms, jittered
/// down to 250 ms), internal errors fatal.
fn defaults() -> TreeConfig {
    TreeConfig { test_mode: true, ..TreeConfig::default() }
}

#[test]
fn a_group_of_eleven_with_one_crash_keeps_running() {
    check("a_group_of_eleven_with_one_crash_keeps_running", Duration::from_secs(120), |env: SimEnv| async move {
        let starts: Starts = Rc::default();
        let root = group_root(11, &[1], Duration::from_millis(100), starts.clone());
        let sup = Rc::new(Supervisor::new(env.clone(), root, defaults()));
        let stop = CancellationToken::new();
        let (s2, st2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { s2.run(st2).await });
        env.sleep(Duration::from_secs(2)).await;
        sup.settled(Duration::from_secs(10)).await.expect("the group restarted and settled");
        assert!(starts.borrow().values().all(|v| v.len() == 2), "every member ran twice: {:?}", starts.borrow());
        assert_eq!(sup.metrics().restarts, 11);
        stop.cancel();
        assert_eq!(run.await.expect("run task"), Ok(()), "one crash in a group of 11 is one restart, not 11");
    });
}

#[test]
fn a_member_failing_three_times_in_twenty_seconds_keeps_running() {
    check("a_member_failing_three_times_in_twenty_seconds", Duration::from_secs(120), |env: SimEnv| async move {
        let starts: Starts = Rc::default();
        let root = group_root(11, &[1, 2, 3], Duration::from_secs(5), starts.clone());
        let sup = Rc::new(Supervisor::new(env.clone(), root, defaults()));
        let stop = CancellationToken::new();
        let (s2, st2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { s2.run(st2).await });
        env.sleep(Duration::from_secs(20)).await;
        sup.settled(Duration::from_secs(10)).await.expect("settled after the third failure");
        let m0 = starts.borrow()["root.m0"].clone();
        assert_eq!(m0.len(), 4, "three failures, three group restarts");
        assert!(m0[3] - m0[0] < Duration::from_secs(20), "three failures within 20 s: {m0:?}");
        stop.cancel();
        assert_eq!(run.await.expect("run task"), Ok(()), "33 charges before the fix, 3 now: within 10 in 60 s");
    });
}

#[test]
fn cancelled_siblings_restart_without_waiting() {
    check("cancelled_siblings_restart_without_waiting", Duration::from_secs(120), |env: SimEnv| async move {
        let starts: Starts = Rc::default();
        let root = group_root(3, &[1], Duration::from_millis(100), starts.clone());
        let sup = Rc::new(Supervisor::new(env.clone(), root, defaults()));
        let mut changes = sup.subscribe();
        let stop = CancellationToken::new();
        let (s2, st2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { s2.run(st2).await });
        env.sleep(Duration::from_secs(2)).await;
        let s = starts.borrow().clone();
        let crash = s["root.m0"][0] + Duration::from_millis(100);
        for sibling in ["root.m1", "root.m2"] {
            let again = s[sibling][1] - crash;
            assert!(again < Duration::from_millis(5), "{sibling} restarted {again:?} after the crash: no backoff");
        }
        let m0 = s["root.m0"][1] - crash;
        assert!(m0 >= Duration::from_millis(250), "the member that failed waits out its backoff: {m0:?}");
        stop.cancel();
        assert_eq!(run.await.expect("run task"), Ok(()));
        // Every step of every node was observable, in order.
        let mut m0_steps = Vec::new();
        while let Ok(c) = changes.try_recv() {
            if c.dn == "root.m0" {
                m0_steps.push((c.from, c.to));
            }
        }
        assert_eq!(
            &m0_steps[..5],
            &[
                (None, Some(NodeState::New)),
                (Some(NodeState::New), Some(NodeState::Healthy)),
                (Some(NodeState::Healthy), Some(NodeState::Dead)),
                (Some(NodeState::Dead), Some(NodeState::New)),
                (Some(NodeState::New), Some(NodeState::Healthy)),
            ],
            "{m0_steps:?}"
        );
    });
}

#[test]
fn pending_restarts_say_which_node_and_when() {
    check("pending_restarts_say_which_node_and_when", Duration::from_secs(120), |env: SimEnv| async move {
        let root = runnable(|ctx: Ctx<SimEnv>| async move {
            ctx.run("flaky", runnable(|_ctx: Ctx<SimEnv>| async { Err(RunError::new("fails")) }))?;
            ctx.signal(RunnableSignal::Healthy)?;
            ctx.token().cancelled().await;
            Ok(())
        });
        let mut cfg = fast(true);
        cfg.backoff = BackoffConfig { initial: Duration::from_secs(30), jitter_permille: 0, ..cfg.backoff };
        cfg.backoff.max = Duration::from_secs(60);
        let sup = Rc::new(Supervisor::new(env.clone(), root, cfg));
        let stop = CancellationToken::new();
        let (s2, st2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { s2.run(st2).await });
        env.sleep(Duration::from_secs(1)).await;
        let pending = sup.pending_restarts();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].dn, "root.flaky");
        let at = pending[0].at.expect("scheduled");
        assert!(at > env.now() && at <= env.now() + Duration::from_secs(30), "{at:?}");
        let e = sup.settled(Duration::from_secs(1)).await.expect_err("a restart is pending");
        assert_eq!(e.pending, pending);
        assert_eq!(e.unsettled.get("root.flaky"), Some(&NodeState::Dead));
        stop.cancel();
        assert_eq!(run.await.expect("run task"), Ok(()));
    });
}

#[test]
fn a_signal_through_a_stale_context_is_a_programming_error() {
    check("a_signal_through_a_stale_context", Duration::from_secs(60), |env: SimEnv| async move {
        let kept: Rc<RefCell<Option<Ctx<SimEnv>>>> = Rc::default();
        let k2 = kept.clone();
        let root = runnable(move |ctx: Ctx<SimEnv>| {
            let k2 = k2.clone();
            async move {
                let first = k2.borrow().is_none();
                if first {
                    // Keeps its context past its own return.
                    *k2.borrow_mut() = Some(ctx.clone());
                    return Err(RunError::new("first run fails"));
                }
                ctx.signal(RunnableSignal::Healthy)?;
                ctx.token().cancelled().await;
                Ok(())
            }
        });
        let sup = Rc::new(Supervisor::new(env.clone(), root, fast(false)));
        let stop = CancellationToken::new();
        let (s2, st2) = (sup.clone(), stop.clone());
        let run = env.spawn("supervisor", async move { s2.run(st2).await });
        sup.settled(Duration::from_secs(5)).await.expect("the second run is healthy");
        let stale = kept.borrow().clone().expect("kept");
        let e = stale.signal(RunnableSignal::Healthy).expect_err("stale context");
        assert!(matches!(e, TreeError::StaleContext { .. }), "{e:?}");
        let m = sup.metrics();
        assert_eq!((m.programming_errors, m.internal_errors), (1, 0), "the runnable's error, not the tree's");
        stop.cancel();
        assert_eq!(run.await.expect("run task"), Ok(()));
        // The kept context holds the tree that holds the runnable: break it.
        drop(stale);
        kept.borrow_mut().take();
    });
}
