//! Seed 002's tests, ported: run-with-recover and the liveness registry, in
//! the simulator (virtual time, so the 1 s → 2 s backoff costs nothing).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{CancellationToken, Env};
use warden::supervisor::{BackoffConfig, Liveness, RecoverExit, run_with_recover};
use warden_sim::env::SimEnv;
use warden_sim::testing::check;

#[test]
fn run_with_recover_clean_return_does_not_restart() {
    check("clean_return_does_not_restart", Duration::from_secs(60), |env: SimEnv| async move {
        let calls = Rc::new(Cell::new(0));
        let (c, token) = (calls.clone(), CancellationToken::new());
        let f = move |_t| {
            c.set(c.get() + 1);
            async {}
        };
        let out = env
            .timeout(Duration::from_secs(2), run_with_recover(&env, &token, "clean", BackoffConfig::RECOVER, f))
            .await;
        assert_eq!(out, Ok(RecoverExit::Returned { panics: 0 }), "returns after a clean fn exit");
        assert_eq!(calls.get(), 1, "fn called once on clean return");
    });
}

#[test]
fn run_with_recover_panic_restarts_with_backoff() {
    check("panic_restarts_with_backoff", Duration::from_secs(60), |env: SimEnv| async move {
        let calls = Rc::new(Cell::new(0u32));
        let starts = Rc::new(std::cell::RefCell::new(Vec::new()));
        let (c, s, e2, token) = (calls.clone(), starts.clone(), env.clone(), CancellationToken::new());
        let f = move |t: CancellationToken| {
            c.set(c.get() + 1);
            s.borrow_mut().push(e2.now());
            let n = c.get();
            async move {
                if n < 3 {
                    panic!("deliberate");
                }
                t.cancelled().await;
            }
        };
        let h = env.spawn("loop", run_with_recover(&env, &token, "panic-test", BackoffConfig::RECOVER, f));
        env.sleep(Duration::from_secs(4)).await;
        token.cancel();
        assert!(calls.get() >= 3, "fn called {} times after 4 s of restarts; want >= 3", calls.get());
        assert_eq!(h.await, Ok(RecoverExit::Cancelled { panics: 2 }));
        let s = starts.borrow();
        assert!(s[1] - s[0] >= Duration::from_secs(1) && s[2] - s[1] >= Duration::from_secs(2), "1 s then 2 s: {s:?}");
    });
}

#[test]
fn run_with_recover_ctx_done_stops_restart() {
    check("ctx_done_stops_restart", Duration::from_secs(60), |env: SimEnv| async move {
        let calls = Rc::new(Cell::new(0u32));
        let (c, token) = (calls.clone(), CancellationToken::new());
        let f = move |_t| {
            c.set(c.get() + 1);
            async { panic!("always") }
        };
        let h = env.spawn("loop", run_with_recover(&env, &token, "ctx-done", BackoffConfig::RECOVER, f));
        env.sleep(Duration::from_millis(100)).await;
        let t0 = env.now();
        token.cancel();
        let out = env.timeout(Duration::from_secs(35), h).await.expect("returns after cancel");
        assert!(matches!(out, Ok(RecoverExit::Cancelled { .. })));
        assert!(env.now() - t0 < Duration::from_millis(10), "stops at once, even in the middle of a backoff sleep");
        assert_eq!(calls.get(), 1, "no restart after cancellation");
    });
}

#[test]
fn liveness_registry() {
    check("liveness_registry", Duration::from_secs(60), |env: SimEnv| async move {
        let reg = Liveness::new(env.clone());
        let before = env.now();
        reg.heartbeat("testsubsys-A");
        let after = env.now();
        let last = reg.last_tick("testsubsys-A").expect("ticked");
        assert!(before <= last && last <= after, "LastTick={last} outside [{before}, {after}]");
        assert_eq!(reg.last_tick("nonexistent-subsys"), None, "never seen is None");
        reg.heartbeat("testsubsys-B");
        assert_eq!(reg.is_healthy(&["testsubsys-A", "testsubsys-B"], Duration::from_secs(60)), (true, vec![]));
        env.sleep(Duration::from_millis(10)).await;
        assert_eq!(
            reg.is_healthy(&["testsubsys-A"], Duration::from_nanos(1)),
            (false, vec!["testsubsys-A".to_owned()])
        );
        assert_eq!(
            reg.stale(&["never-seen"], Duration::from_secs(3600)),
            vec!["never-seen".to_owned()],
            "never seen is unhealthy"
        );
    });
}

#[test]
fn snapshot_is_copy() {
    check("snapshot_is_copy", Duration::from_secs(60), |env: SimEnv| async move {
        let reg = Liveness::new(env.clone());
        reg.heartbeat("snap-test");
        let mut s1 = reg.snapshot();
        s1.remove("snap-test");
        s1.insert("other".into(), env.now());
        assert!(reg.last_tick("snap-test").is_some(), "Snapshot returned a live reference; should be a copy");
        assert_eq!(reg.last_tick("other"), None);
    });
}
