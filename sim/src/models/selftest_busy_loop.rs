//! Self-test for livelock detection: a consumer waits for `events`
//! notifications that a producer sends one virtual second apart. Correct:
//! it awaits a `Notify`. Mutant `selftest-busy-loop`: it spins on a flag
//! with `yield_now`, which the executor fails as a livelock. With
//! `spin_without_await = 1` the mutant spins without any `.await`, which
//! only the watchdog can catch.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use warden::env::Env;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};

/// The busy-loop model.
pub(super) struct BusyLoop;

/// Polls of the consumer's process allowed in one idle virtual second.
const IDLE_POLLS_PER_SECOND_MAX: u32 = 16;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.busy-loop",
    about: "a consumer waiting for a producer's notifications",
    invariants: &["all-events-consumed", "idle-without-polling"],
    coverage: &[("consumer-waited", "a notification the consumer was already waiting for")],
    params: &[
        Param { name: "events", default: 5, min: 1, max: 10_000, about: "notifications sent" },
        Param {
            name: "spin_without_await",
            default: 0,
            min: 0,
            max: 1,
            about: "1: the mutant spins with no .await at all",
        },
    ],
};

impl Model for BusyLoop {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let checks = world.checks();
        let probe = world.probe();
        let events = params.count("events");
        let hard_spin = params.get("spin_without_await") == 1;
        let pending = Rc::new(Cell::new(0u64));
        let consumed = Rc::new(Cell::new(0u64));
        let waiting = Rc::new(Cell::new(false));
        let notify = Rc::new(tokio::sync::Notify::new());

        let (env_p, pending_p, notify_p, waiting_p, checks_p) =
            (env.clone(), pending.clone(), notify.clone(), waiting.clone(), checks.clone());
        drop(env.spawn("producer", async move {
            for _ in 0..events {
                env_p.sleep(Duration::from_secs(1)).await;
                checks_p.cover("consumer-waited", waiting_p.get());
                pending_p.set(pending_p.get() + 1);
                notify_p.notify_one();
            }
        }));
        let (env_c, consumed_c) = (env.clone(), consumed.clone());
        drop(env.spawn("consumer", async move {
            while consumed_c.get() < events {
                waiting.set(true);
                if env_c.mutant("selftest-busy-loop") {
                    while pending.get() == 0 {
                        if hard_spin {
                            std::hint::spin_loop();
                        } else {
                            env_c.yield_now().await;
                        }
                    }
                } else {
                    while pending.get() == 0 {
                        notify.notified().await;
                    }
                }
                waiting.set(false);
                pending.set(pending.get() - 1);
                consumed_c.set(consumed_c.get() + 1);
                tracing::debug!(consumed = consumed_c.get(), "event");
            }
        }));
        Box::new(move |checks| {
            if consumed.get() != events {
                checks.pending("all-events-consumed", format!("{} of {events} events consumed", consumed.get()));
            }
            let stats = probe.stats(1);
            if let Some((sec, polls)) =
                stats.polls_by_second.iter().enumerate().find(|(_, p)| **p > IDLE_POLLS_PER_SECOND_MAX)
            {
                checks.fail(
                    "idle-without-polling",
                    format!("{polls} polls in virtual second {sec} (at most {IDLE_POLLS_PER_SECOND_MAX} while idle)"),
                );
            }
        })
    }
}
