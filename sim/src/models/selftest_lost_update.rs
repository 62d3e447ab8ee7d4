//! Self-test: workers increment a shared counter with a yield between read
//! and write. Correct: the read-yield-write holds an async lock. Mutant
//! `selftest-lost-update`: no lock, so random scheduling loses updates.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use warden::env::Env;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};

/// The lost-update model.
pub(super) struct LostUpdate;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.lost-update",
    about: "workers do read, yield, write on one counter",
    invariants: &["no-lost-update"],
    coverage: &[("overlapping-increments", "an increment during which another worker started one")],
    params: &[
        Param { name: "workers", default: 3, min: 1, max: 64, about: "concurrent workers" },
        Param { name: "increments", default: 4, min: 1, max: 1000, about: "increments per worker" },
    ],
};

impl Model for LostUpdate {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let checks = world.checks();
        let workers = params.count("workers");
        let increments = params.count("increments");
        let counter = Rc::new(Cell::new(0u64));
        let started = Rc::new(Cell::new(0u64));
        let lock = Rc::new(tokio::sync::Mutex::new(()));
        let order = Rc::new(RefCell::new(Vec::new()));
        for w in 0..workers {
            let (env2, counter, started, lock, checks, order) =
                (env.clone(), counter.clone(), started.clone(), lock.clone(), checks.clone(), order.clone());
            drop(env.spawn("worker", async move {
                for _ in 0..increments {
                    let seen_start = started.get();
                    started.set(seen_start + 1);
                    let guard = if env2.mutant("selftest-lost-update") { None } else { Some(lock.lock().await) };
                    let v = counter.get();
                    env2.yield_now().await;
                    counter.set(v + 1);
                    drop(guard);
                    order.borrow_mut().push(w);
                    tracing::debug!(worker = w, value = v + 1, "increment");
                    checks.cover("overlapping-increments", started.get() > seen_start + 1);
                }
            }));
        }
        Box::new(move |checks| {
            let want = workers * increments;
            if counter.get() != want {
                checks.fail(
                    "no-lost-update",
                    format!(
                        "counter is {} after {want} increments (completion order {:?})",
                        counter.get(),
                        order.borrow()
                    ),
                );
            }
        })
    }
}
