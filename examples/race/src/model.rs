//! The workload as a warden-sim model, so scenario files (and the
//! project's own `race-sim` command line) can name it.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use warden::env::Env;
use warden_sim::{Catalog, FinalCheck, Model, ModelSpec, Param, Params, SimEnv, World};

use crate::{increment, store};

/// One store and some clients on one host; the final check wants every
/// increment counted.
pub struct LostUpdate;

static SPEC: ModelSpec = ModelSpec {
    name: "counter.lost-update",
    about: "clients increment a counter store with GET then SET",
    invariants: &["no-lost-update"],
    coverage: &[],
    params: &[Param { name: "clients", default: 2, min: 1, max: 16, about: "clients incrementing at once" }],
};

/// The models this project's scenario files may name.
pub static MODELS: Catalog = Catalog(&[&LostUpdate]);

/// Sets up the world of one run: the store, `clients` clients, the check.
pub fn counter_world(world: &World, clients: u64) -> FinalCheck {
    let value = Rc::new(Cell::new(0u64));
    let host = world.add_host("app");
    let v = value.clone();
    world.register("store", move |env: SimEnv, _| {
        let v = v.clone();
        async move { if store(env, v).await.is_ok() { 0 } else { 1 } }
    });
    world.register("client", |env: SimEnv, _| async move {
        // A random think time of up to a millisecond, as real clients have.
        let think = env.random_duration(Duration::from_millis(1));
        if increment(env, think).await.is_ok() { 0 } else { 1 }
    });
    world.start(host, "store", Vec::new()).expect("store");
    for _ in 0..clients {
        world.start(host, "client", Vec::new()).expect("client");
    }
    Box::new(move |checks| {
        if value.get() != clients {
            checks.fail("no-lost-update", format!("{clients} increments left the counter at {}", value.get()));
        }
    })
}

impl Model for LostUpdate {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        counter_world(world, params.count("clients"))
    }
}
