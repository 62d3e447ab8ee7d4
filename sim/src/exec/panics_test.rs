//! A panic escaping a task's poll: the run fails as `no-panic` once, the
//! thread's next run starts clean, and a task of `Env::spawn` still turns
//! its panic into a join error.

use std::time::Duration;

use warden::env::{Env, JoinError};

use crate::testing::SimTest;

#[test]
fn a_raw_task_that_panics_fails_the_run_as_no_panic() {
    let failure = SimTest::new("raw-panic")
        .seeds(2)
        .try_run_body(|env| async move {
            env.spawn_task("raw", Box::pin(async { panic!("raw boom") }));
            env.sleep(Duration::from_secs(1)).await;
        })
        .expect_err("a raw task's panic fails the run");
    let f = failure.report.failure.as_ref().expect("a failure");
    assert_eq!(f.invariant, "no-panic");
    assert!(f.message.contains("raw boom"), "{}", f.message);
    // The same thread runs the next seeds as if nothing happened.
    let reports = SimTest::new("after-raw-panic").seeds(3).run_body(|env| async move {
        let joined = env.spawn("caught", async { panic!("caught boom") }).await;
        assert!(matches!(joined, Err(JoinError::Panicked(m)) if m.contains("caught boom")));
        env.sleep(Duration::from_millis(10)).await;
    });
    assert_eq!(reports.len(), 3);
}
