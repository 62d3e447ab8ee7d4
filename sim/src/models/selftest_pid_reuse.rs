//! Self-test for pid reuse: a manager starts short-lived workers and stops
//! each after a random delay, while a spawner keeps bystanders running on
//! a host whose pids wrap quickly. Correct: the manager signals through its
//! child handle (a pidfd), which never names another process. Mutant
//! `pid-reuse-trusted`: it signals the remembered pid, and once the worker
//! exited and the number was reused, kills a bystander.

use std::rc::Rc;
use std::time::Duration;

use warden::env::{Env, ExitStatus, ProcessEnv, ProcessSpec, Signal};

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::env::SimEnv;

/// The pid-reuse model.
pub(super) struct PidReuse;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.pid-reuse",
    about: "stopping exited workers on a host whose pids wrap quickly",
    invariants: &["no-stray-signal", "workers-stopped"],
    coverage: &[(
        "pid-reused-before-stop",
        "a stop issued after the worker exited and its pid was taken by another process",
    )],
    params: &[Param { name: "pid_max", default: 12, min: 3, max: 4_194_304, about: "pids wrap after this" }],
};

async fn sleep_random(env: &SimEnv, max_ms: u64) {
    env.sleep(Duration::from_millis(1 + env.random_below(max_ms))).await;
}

impl Model for PidReuse {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let h1 = world.add_host("h1");
        world.set_pid_max(params.count("pid_max").clamp(4, 1 << 22) as u32);
        world.register("short-lived", |env: SimEnv, _| async move {
            sleep_random(&env, 20).await;
            0
        });
        let checks = world.checks();
        world.register("spawner", move |env: SimEnv, _| {
            let checks = checks.clone();
            async move {
                loop {
                    match env.spawn_process(ProcessSpec::new("short-lived")) {
                        Ok(child) => {
                            let (env2, checks) = (env.clone(), checks.clone());
                            drop(env.spawn("reap", async move {
                                let status = env2.wait_child(&child).await;
                                if let ExitStatus::Signaled(s) = status {
                                    checks.fail(
                                        "no-stray-signal",
                                        format!(
                                            "bystander pid {} was killed by {s} it was never sent",
                                            env2.child_pid(&child)
                                        ),
                                    );
                                }
                            }));
                        }
                        Err(_) => sleep_random(&env, 5).await,
                    }
                    sleep_random(&env, 4).await;
                }
            }
        });
        let stops = Rc::new(std::cell::Cell::new(0u64));
        let (checks, stops2) = (world.checks(), stops.clone());
        world.register("manager", move |env: SimEnv, _| {
            let (checks, stops) = (checks.clone(), stops2.clone());
            async move {
                loop {
                    let Ok(worker) = env.spawn_process(ProcessSpec::new("short-lived")) else {
                        sleep_random(&env, 5).await;
                        continue;
                    };
                    let pid = env.child_pid(&worker);
                    sleep_random(&env, 30).await;
                    // Whether the worker is gone and its number taken.
                    let exited = env.signal_child(&worker, Signal::Cont).is_err();
                    let reused = exited && env.kill(pid, Signal::Cont).is_ok();
                    checks.cover("pid-reused-before-stop", reused);
                    let _ = if env.mutant("pid-reuse-trusted") {
                        env.kill(pid, Signal::Term)
                    } else {
                        env.signal_child(&worker, Signal::Term)
                    };
                    let _ = env.wait_child(&worker).await;
                    stops.set(stops.get() + 1);
                }
            }
        });
        for p in ["spawner", "manager"] {
            if let Err(e) = world.start(h1, p, Vec::new()) {
                world.checks().fail("workers-stopped", format!("cannot start {p}: {e}"));
            }
        }
        Box::new(move |checks| {
            if stops.get() == 0 {
                checks.pending("workers-stopped", "no worker was ever stopped");
            }
        })
    }
}
