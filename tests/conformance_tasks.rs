//! Conformance of the clock, timer and task facets: each behaviour is one
//! `async fn<E: Env>` run on both backends (`_sim` in the simulator over
//! `SIM_SEEDS` seeds, `_real` on tokio). Real-time checks assert order and
//! outcome with generous deadlines, never tight timings.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use warden::env::real::RealEnv;
use warden::env::{CancellationToken, Env, JoinError};

async fn timers_fire_in_deadline_order<E: Env>(env: E) {
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut joins = Vec::new();
    for (label, ms) in [(3, 30u64), (1, 10), (2, 20)] {
        let (env2, order) = (env.clone(), order.clone());
        joins.push(env.spawn("timer", async move {
            env2.sleep(Duration::from_millis(ms)).await;
            order.borrow_mut().push(label);
        }));
    }
    let t0 = env.now();
    for j in joins {
        j.await.expect("timer task");
    }
    assert_eq!(*order.borrow(), [1, 2, 3]);
    assert!(env.now() - t0 >= Duration::from_millis(30), "slept less than the longest timer");
}

async fn timeout_elapses_and_ready_future_wins<E: Env>(env: E) {
    let r = env.timeout(Duration::from_millis(20), std::future::pending::<()>()).await;
    assert!(r.is_err(), "a pending future times out");
    let r = env.timeout(Duration::from_secs(60), async { 7 }).await;
    assert_eq!(r, Ok(7));
}

async fn abort_cancels_and_join_reports_it<E: Env>(env: E) {
    let dropped = Rc::new(RefCell::new(false));
    struct Flag(Rc<RefCell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let flag = Flag(dropped.clone());
    let env2 = env.clone();
    let h = env.spawn("sleeper", async move {
        let _flag = flag;
        env2.sleep(Duration::from_secs(3600)).await;
    });
    env.sleep(Duration::from_millis(5)).await;
    h.abort();
    assert_eq!(h.await, Err(JoinError::Cancelled));
    assert!(*dropped.borrow(), "an aborted task's state is dropped");
}

async fn panics_reach_the_join_handle<E: Env>(env: E) {
    let h = env.spawn("panics", async { panic!("boom {}", 42) });
    match h.await {
        Err(JoinError::Panicked(m)) => {
            assert!(m.starts_with("boom 42 (at tests/conformance_tasks.rs:"), "message and location: {m:?}")
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

async fn cancellation_token_stops_a_loop<E: Env>(env: E) {
    let token = CancellationToken::new();
    let ticks = Rc::new(RefCell::new(0u32));
    let (env2, t2, ticks2) = (env.clone(), token.clone(), ticks.clone());
    let h = env.spawn("ticker", async move {
        loop {
            let tick = std::pin::pin!(env2.sleep(Duration::from_millis(10)));
            let cancelled = std::pin::pin!(t2.cancelled());
            match futures::future::select(cancelled, tick).await {
                futures::future::Either::Left(_) => return,
                futures::future::Either::Right(_) => *ticks2.borrow_mut() += 1,
            }
        }
    });
    env.sleep(Duration::from_millis(55)).await;
    token.cancel();
    h.await.expect("ticker ends on cancel");
    assert!(*ticks.borrow() >= 1, "the loop ran before it was cancelled");
}

async fn yield_lets_other_tasks_run<E: Env>(env: E) {
    let flag = Rc::new(RefCell::new(false));
    let f2 = flag.clone();
    let h = env.spawn("setter", async move { *f2.borrow_mut() = true });
    let mut spins = 0;
    while !*flag.borrow() {
        env.yield_now().await;
        spins += 1;
        assert!(spins < 1000, "yield never let the other task run");
    }
    h.await.expect("setter");
}

async fn random_draws_stay_in_range<E: Env>(env: E) {
    for _ in 0..100 {
        assert!(env.random_below(7) < 7);
        assert!(env.random_duration(Duration::from_millis(3)) <= Duration::from_millis(3));
    }
    assert!(!env.mutant("selftest-lost-update"), "no mutant is on in a conformance run");
}

macro_rules! both_backends {
    ($($name:ident => $sim:ident, $real:ident;)*) => {
        $(
            #[test]
            fn $sim() {
                warden_sim::testing::check(stringify!($sim), Duration::from_secs(600), $name);
            }

            #[test]
            fn $real() {
                let env = RealEnv::new();
                // Generous: a loaded CI machine must not turn order checks
                // into timing failures.
                let out = RealEnv::block_on(async move {
                    let env2 = env.clone();
                    env.timeout(Duration::from_secs(60), $name(env2)).await
                });
                out.expect("runtime").expect("finished within 60 s");
            }
        )*
    };
}

both_backends! {
    timers_fire_in_deadline_order => timers_fire_in_deadline_order_sim, timers_fire_in_deadline_order_real;
    timeout_elapses_and_ready_future_wins => timeout_elapses_and_ready_future_wins_sim, timeout_elapses_and_ready_future_wins_real;
    abort_cancels_and_join_reports_it => abort_cancels_and_join_reports_it_sim, abort_cancels_and_join_reports_it_real;
    panics_reach_the_join_handle => panics_reach_the_join_handle_sim, panics_reach_the_join_handle_real;
    cancellation_token_stops_a_loop => cancellation_token_stops_a_loop_sim, cancellation_token_stops_a_loop_real;
    yield_lets_other_tasks_run => yield_lets_other_tasks_run_sim, yield_lets_other_tasks_run_real;
    random_draws_stay_in_range => random_draws_stay_in_range_sim, random_draws_stay_in_range_real;
}
