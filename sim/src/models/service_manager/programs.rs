//! The simulated programs: the services (which crash, exit cleanly, fail
//! readiness, ignore or are slow at their stop signal), warden itself (the
//! production service manager), and a launcher that host init starts,
//! which runs one warden and asks it to stop, sometimes twice.

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use futures::future::Either;
use warden::env::{Env, ProcessEnv, ProcessSpec, Signal};
use warden::service::{Config, RunOptions};

use super::observed::Observed;
use crate::env::SimEnv;

/// How each service process behaves, in permille per process.
#[derive(Debug, Clone, Copy)]
pub(super) struct Behaviour {
    pub(super) crash_permille: u64,
    pub(super) clean_exit_permille: u64,
    pub(super) hang_permille: u64,
    pub(super) no_ready_permille: u64,
}

/// A service process: `args[0]` is its index in the config.
pub(super) async fn service(env: SimEnv, args: Vec<String>, obs: Rc<Observed>, b: Behaviour) -> i32 {
    let Some(svc) = args.first().and_then(|a| a.parse::<usize>().ok()) else { return 2 };
    let warden = env.var("WARDEN_ID").and_then(|w| w.parse().ok()).unwrap_or(0);
    let Ok(mut signals) = env.handle_signals(&[Signal::Term]) else { return 3 };
    let me = env.proc_id();
    obs.spawned(svc, me, warden, env.now());
    let roll = |permille: u64| env.random_below(1000) < permille;
    let (crash, clean, hang, no_ready) =
        (roll(b.crash_permille), roll(b.clean_exit_permille), roll(b.hang_permille), roll(b.no_ready_permille));
    let life = async {
        if env.var("NOTIFY_SOCKET").is_some() {
            if no_ready {
                std::future::pending::<()>().await;
            }
            env.sleep(Duration::from_millis(env.random_below(800))).await;
            obs.ready(me, env.now());
            let _ = env.notify("READY=1");
        }
        if !crash && !clean {
            std::future::pending::<()>().await;
        }
        env.sleep(Duration::from_millis(200 + env.random_below(4000))).await;
    };
    let term = env.next_signal(&mut signals);
    match futures::future::select(std::pin::pin!(life), std::pin::pin!(term)).await {
        Either::Left(((), _)) => {
            let code = if crash { 1 + env.random_below(3) as i32 } else { 0 };
            obs.exiting(me, code, env.now());
            code
        }
        Either::Right((_, _)) => {
            obs.got_term(me, hang);
            if hang {
                std::future::pending::<()>().await;
            }
            // A stop takes a while, sometimes longer than the stop timeout.
            env.sleep(Duration::from_millis(env.random_below(2500))).await;
            0
        }
    }
}

/// warden: the production service manager on the config the model wrote.
pub(super) async fn warden(env: SimEnv, text: Rc<String>, obs: Rc<Observed>) -> i32 {
    let config = match Config::parse(Path::new("/etc/warden/warden.toml"), &text) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "generated config rejected");
            return 2;
        }
    };
    obs.wardens.borrow_mut().push((env.pid(), env.proc_id()));
    let opts = RunOptions { base_vars: vec![("WARDEN_ID".to_owned(), env.proc_id().to_string())], watchdog: None };
    let me = env.proc_id();
    match warden::service::start(env, config, opts) {
        Ok((_handle, supervision)) => {
            let code = supervision.await;
            // Before it exits: the manager itself must have ended every
            // service (kill_with_parent only backs it up when warden dies).
            obs.warden_exited(me);
            code
        }
        Err(e) => {
            tracing::error!(error = %e, "warden cannot start");
            1
        }
    }
}

/// When the launcher asks warden to stop.
#[derive(Debug, Clone, Copy)]
pub(super) struct StopPlan {
    pub(super) after_ms_max: u64,
    pub(super) second_signal_permille: u64,
}

/// Host init's program: runs one warden, stops it, checks what is left.
pub(super) async fn launcher(env: SimEnv, obs: Rc<Observed>, plan: StopPlan) -> i32 {
    let child = match env.spawn_process(ProcessSpec::new("warden")) {
        Ok(c) => c,
        Err(_) => return 1,
    };
    let pid = env.child_pid(&child);
    let wait = env.wait_child(&child);
    let (obs2, exited) = (obs.clone(), Rc::new(std::cell::Cell::new(false)));
    let ex2 = exited.clone();
    let waiter = env.spawn("launcher.wait", async move {
        let _status = wait.await;
        ex2.set(true);
        // At the instant warden is gone: nothing it started may run.
        if let Some(w) = obs2.warden_of(pid) {
            obs2.warden_exited(w);
        }
    });
    env.sleep(Duration::from_millis(1000 + env.random_below(plan.after_ms_max))).await;
    if !exited.get() {
        if let Some(w) = obs.warden_of(pid) {
            obs.stopping.borrow_mut().push(w);
        }
        let _ = env.signal_child(&child, Signal::Term);
        if env.random_below(1000) < plan.second_signal_permille {
            env.sleep(Duration::from_millis(env.random_below(4000))).await;
            let _ = env.signal_child(&child, Signal::Term);
        }
        let _ = waiter.await;
        if let Some(w) = obs.warden_of(pid) {
            obs.cover_stop(w);
        }
    }
    // Stays up, with no warden, until the host loses power.
    std::future::pending::<i32>().await
}
