//! Self-test for the determinism check: tasks are spawned in the order of
//! a map's iteration. Correct: a `BTreeMap`. Mutant
//! `selftest-nondeterministic`: a std `HashMap`, whose iteration order
//! comes from a per-process random seed, so two processes running the same
//! seed diverge.

use std::collections::BTreeMap;

use warden::env::Env;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};

/// The nondeterministic-iteration model.
pub(super) struct Nondeterministic;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.nondeterministic",
    about: "spawns one task per key in a map's iteration order",
    invariants: &["every-key-served"],
    coverage: &[("order-visible", "a seed where iteration order decided the spawn order of 2+ tasks")],
    params: &[Param { name: "keys", default: 8, min: 1, max: 64, about: "keys in the map" }],
};

impl Model for Nondeterministic {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let keys: Vec<String> = (0..params.count("keys")).map(|k| format!("key-{k}")).collect();
        let order: Vec<String> = if env.mutant("selftest-nondeterministic") {
            #[allow(clippy::disallowed_types)] // the planted bug: a randomly seeded HashMap
            let map: std::collections::HashMap<String, u64> = keys.iter().cloned().zip(0..).collect();
            map.into_keys().collect()
        } else {
            let map: BTreeMap<String, u64> = keys.iter().cloned().zip(0..).collect();
            map.into_keys().collect()
        };
        let served = std::rc::Rc::new(std::cell::Cell::new(0usize));
        for key in &order {
            let (env2, key, served) = (env.clone(), key.clone(), served.clone());
            drop(env.spawn("server", async move {
                env2.sleep(std::time::Duration::from_millis(1)).await;
                tracing::debug!(key = key.as_str(), "served");
                served.set(served.get() + 1);
            }));
        }
        let n = order.len();
        let checks = world.checks();
        checks.cover("order-visible", n >= 2);
        Box::new(move |checks| {
            if served.get() != n {
                checks.pending("every-key-served", format!("{} of {n} keys served", served.get()));
            }
        })
    }
}
