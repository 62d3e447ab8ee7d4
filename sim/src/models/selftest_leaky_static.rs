//! Self-test for state leaking between runs of one OS process: workers
//! take turns on a shared counter. Correct: the counter lives in the run
//! (an `Rc` the model owns). Mutant `selftest-leaky-static`: each run also
//! bumps a counter in a process-wide static hidden behind a newtype — what
//! no statics check, no clippy ban and no two fresh processes can see —
//! and lets it decide how long a worker waits, so a seed re-run in the
//! same process is another run. Only `explore`'s same-process re-runs (and
//! `check-determinism`'s warmed-up child) catch it.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use warden::env::Env;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};

/// The leaky-static model.
pub(super) struct LeakyStatic;

/// The planted bug's carrier: a counter that looks like a constant.
struct RunCounter(AtomicU64);

static RUNS_SEEN: RunCounter = RunCounter(AtomicU64::new(0));

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.leaky-static",
    about: "workers take turns on a counter; the mutant carries state between runs in a static",
    invariants: &["every-turn-taken"],
    coverage: &[("state-carried-over", "a run that read state an earlier run of the process left behind")],
    params: &[
        Param { name: "workers", default: 3, min: 1, max: 64, about: "concurrent workers" },
        Param { name: "turns", default: 4, min: 1, max: 1_000, about: "turns per worker" },
    ],
};

impl Model for LeakyStatic {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let carried = if env.mutant("selftest-leaky-static") { RUNS_SEEN.0.fetch_add(1, Ordering::Relaxed) } else { 0 };
        world.checks().cover("state-carried-over", carried > 0);
        let taken = Rc::new(Cell::new(0u64));
        let (workers, turns) = (params.count("workers"), params.count("turns"));
        for w in 0..workers {
            let (env2, taken) = (env.clone(), taken.clone());
            drop(env.spawn("worker", async move {
                for _ in 0..turns {
                    // The leak decides the wait: a later run in the same
                    // process interleaves differently.
                    let late = if carried > 0 { 37 * w } else { 0 };
                    env2.sleep(Duration::from_micros(100 * (1 + w % 3) + late)).await;
                    taken.set(taken.get() + 1);
                    tracing::debug!(worker = w, taken = taken.get(), "turn");
                }
            }));
        }
        Box::new(move |checks| {
            if taken.get() != workers * turns {
                checks.pending("every-turn-taken", format!("{} of {} turns taken", taken.get(), workers * turns));
            }
        })
    }
}
