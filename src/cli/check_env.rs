//! `warden check-env`: does this machine give the real backend what it needs?

use std::time::Duration;

use anyhow::{Context, bail};
use warden::env::real::RealEnv;
use warden::env::{Env, JoinError};

pub(crate) async fn check_env(env: RealEnv) -> anyhow::Result<()> {
    let t0 = env.now();
    let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut joins = Vec::new();
    for (label, ms) in [("c", 30u64), ("a", 10), ("b", 20)] {
        let env2 = env.clone();
        let order = order.clone();
        joins.push(env.spawn("timer", async move {
            env2.sleep(Duration::from_millis(ms)).await;
            order.borrow_mut().push(label);
        }));
    }
    for j in joins {
        j.await.context("timer task")?;
    }
    if *order.borrow() != ["a", "b", "c"] {
        bail!("timers fired out of order: {:?}", order.borrow());
    }
    println!("ok   timers fire in deadline order");
    if env.now() <= t0 {
        bail!("monotonic clock did not advance");
    }
    println!("ok   monotonic clock advances (boot-relative now = {})", env.now());

    let stuck = env.spawn("stuck", std::future::pending::<()>());
    stuck.abort();
    if stuck.await != Err(JoinError::Cancelled) {
        bail!("aborted task did not report cancellation");
    }
    println!("ok   abort cancels a task");

    // The deliberate panic is caught by the join handle; keep the default
    // hook from printing it as if something went wrong.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicking = env.spawn("panics", async { panic!("deliberate") });
    let joined = panicking.await;
    std::panic::set_hook(hook);
    match joined {
        Err(JoinError::Panicked(m)) if m.starts_with("deliberate") => {
            println!("ok   a task's panic reaches its join handle")
        }
        other => bail!("panic not reported through the join handle: {other:?}"),
    }

    match env.timeout(Duration::from_millis(5), std::future::pending::<()>()).await {
        Err(_) => println!("ok   timeout elapses"),
        Ok(()) => bail!("pending future completed"),
    }
    Ok(())
}
