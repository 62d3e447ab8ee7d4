//! Self-test for PCT: a bug of depth 3.
//!
//! Reader B takes `b_steps` steps and, from step `b_prefix` on, checks a
//! pair that writer A sets to (1, 1) at its step `a_prefix`. Mutant
//! `selftest-pct-depth3`: A yields between the two writes, so B can read
//! the pair torn, but only if (1) B ran `b_prefix` steps before A ran
//! `a_prefix`, (2) A then reached its write, and (3) B ran before A's
//! second write: three ordering constraints, two preemptions. Random
//! scheduling meets (1) with probability about 2^-(b_prefix); PCT with
//! depth 3 finds it with probability at least 1 / (n · k²).

use std::cell::Cell;
use std::rc::Rc;

use warden::env::Env;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};

/// The depth-3 model.
pub(super) struct Depth3;

static SPEC: ModelSpec = ModelSpec {
    name: "selftest.pct-depth3",
    about: "a reader that must run after exactly two preemptions to see a torn pair",
    invariants: &["no-torn-read"],
    coverage: &[(
        "reader-ahead-then-writer",
        "a seed in which the reader got b_prefix steps ahead before the writer wrote, and read after it",
    )],
    params: &[
        Param { name: "a_steps", default: 6, min: 1, max: 10_000, about: "writer steps" },
        Param { name: "a_prefix", default: 3, min: 0, max: 10_000, about: "writer step that writes the pair" },
        Param { name: "b_steps", default: 24, min: 1, max: 10_000, about: "reader steps" },
        Param {
            name: "b_prefix",
            default: 20,
            min: 0,
            max: 10_000,
            about: "reader step from which it checks the pair",
        },
    ],
};

impl Model for Depth3 {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let checks = world.checks();
        let (a_steps, a_prefix) = (params.count("a_steps"), params.count("a_prefix"));
        let (b_steps, b_prefix) = (params.count("b_steps"), params.count("b_prefix"));
        let pair = Rc::new(Cell::new((0u8, 0u8)));
        let b_done = Rc::new(Cell::new(0u64));
        // B's progress when A wrote, and whether B checked after that.
        let b_at_write = Rc::new(Cell::new(None::<u64>));
        let checked_after_write = Rc::new(Cell::new(false));

        let (env_a, pair_a, b_done_a, b_at_write_a) = (env.clone(), pair.clone(), b_done.clone(), b_at_write.clone());
        drop(env.spawn("writer", async move {
            for step in 0..a_steps {
                if step == a_prefix {
                    b_at_write_a.set(Some(b_done_a.get()));
                    pair_a.set((1, pair_a.get().1));
                    if env_a.mutant("selftest-pct-depth3") {
                        env_a.yield_now().await;
                    }
                    pair_a.set((1, 1));
                }
                env_a.yield_now().await;
            }
        }));
        let (env_b, checks_b, checked) = (env.clone(), checks.clone(), checked_after_write.clone());
        let b_at_write_b = b_at_write.clone();
        drop(env.spawn("reader", async move {
            for step in 0..b_steps {
                b_done.set(step + 1);
                if step >= b_prefix {
                    let (x, y) = pair.get();
                    if b_at_write_b.get().is_some() {
                        checked.set(true);
                    }
                    if x != y {
                        tracing::info!(step, "torn read");
                        checks_b
                            .fail("no-torn-read", format!("reader saw the pair torn ({x}, {y}) at its step {step}"));
                    }
                }
                env_b.yield_now().await;
            }
        }));
        Box::new(move |checks| {
            let ahead = b_at_write.get().is_some_and(|b| b >= b_prefix);
            checks.cover("reader-ahead-then-writer", ahead && checked_after_write.get());
        })
    }
}
