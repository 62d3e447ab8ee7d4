//! Self-test for reference-counted file descriptions: process `first`
//! listens, passes a copy of the listener to `second` and exits; a client
//! connects every millisecond. Correct: the listener stays open while
//! `second` holds it. Mutant `listener-closed-with-first-holder`: the
//! description is closed when its first holder dies, and the client is
//! refused.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Addr, Env, NetEnv, ProcessEnv, ProcessSpec};

use super::{FinalCheck, Model, ModelSpec, Params, World};
use crate::env::SimEnv;

/// The listener-handoff model.
pub(super) struct ListenerHandoff;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.listener-handoff",
    about: "a listener passed to a second process outlives its first holder",
    invariants: &["no-refused-connection", "connections-served"],
    coverage: &[("connect-after-first-exit", "a seed in which a client connected after the first holder exited")],
    params: &[],
};

fn sock() -> Addr {
    Addr::Unix(PathBuf::from("/run/svc.sock"))
}

impl Model for ListenerHandoff {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, _: &Params) -> FinalCheck {
        let h1 = world.add_host("h1");
        let first_exited = Rc::new(Cell::new(false));
        let served_after = Rc::new(Cell::new(0u64));
        world.register("second", |env: SimEnv, _| async move {
            let Some(fd) = env.inherited_fd(3) else {
                return 2;
            };
            let Ok(l) = env.fd_into_listener(fd) else {
                return 3;
            };
            loop {
                match env.accept(&l).await {
                    Ok(s) => drop(s),
                    Err(_) => return 4,
                }
            }
        });
        let fe = first_exited.clone();
        world.register("first", move |env: SimEnv, _| {
            let fe = fe.clone();
            async move {
                let Ok(l) = env.listen(&sock()) else { return 2 };
                let Ok(copy) = env.dup_fd(&l) else { return 3 };
                if env.spawn_process(ProcessSpec::new("second").fd(copy, 3)).is_err() {
                    return 4;
                }
                env.sleep(Duration::from_millis(50 + env.random_below(250))).await;
                fe.set(true);
                0
            }
        });
        let (checks, fe, sa) = (world.checks(), first_exited.clone(), served_after.clone());
        world.register("client", move |env: SimEnv, _| {
            let (checks, fe, sa) = (checks.clone(), fe.clone(), sa.clone());
            async move {
                env.sleep(Duration::from_millis(20)).await;
                for _ in 0..1000 {
                    match env.connect(&sock()).await {
                        Ok(s) => {
                            if fe.get() {
                                sa.set(sa.get() + 1);
                            }
                            drop(s);
                        }
                        Err(e) => checks.fail(
                            "no-refused-connection",
                            format!("connect failed: {e} (first holder exited: {})", fe.get()),
                        ),
                    }
                    env.sleep(Duration::from_millis(1)).await;
                }
                0
            }
        });
        for p in ["first", "client"] {
            if let Err(e) = world.start(h1, p, Vec::new()) {
                world.checks().fail("connections-served", format!("cannot start {p}: {e}"));
            }
        }
        Box::new(move |checks| {
            checks.cover("connect-after-first-exit", served_after.get() > 0);
            if served_after.get() == 0 {
                checks.pending("connections-served", "no connection after the first holder exited");
            }
        })
    }
}
