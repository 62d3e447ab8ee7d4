//! Seed 000's race through the production tree: the inner runnable signals
//! Healthy and Done, is delayed before returning, and meanwhile its parent
//! fails, so GC runs between Done and the return. Correct: the inner node
//! is DONE only once it returned, so the parent restarts only after that.
//! Mutant `done-on-signal`: DONE at the signal; GC restarts the parent
//! under a still-running inner runnable, and the harm the seed describes
//! follows: two instances of the inner runnable at once (`one-instance`),
//! or an exit for a node that is gone (`no-node-not-found`). The checks
//! watch that harm, never the node's state flag.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

use warden::env::{CancellationToken, Env};
use warden::supervisor::{
    BackoffConfig, Ctx, Intensity, NodeState, ROOT, RunnableSignal, Supervisor, SupervisorError, TreeConfig, TreeError,
    runnable,
};

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::check::Checks;
use crate::env::SimEnv;

/// The done-delay model.
pub(super) struct DoneDelay;

static SPEC: ModelSpec = ModelSpec {
    name: "supervisor.done-delay",
    about: "an inner runnable signals Done and returns late while its parent fails (seed 000)",
    invariants: &["no-node-not-found", "one-instance", "no-internal-error", "rounds-complete"],
    coverage: &[(
        "gc-between-done-and-return",
        "a seed (reached if GC processed the parent's failure while an inner runnable had signalled Done and not returned)",
    )],
    params: &[
        Param { name: "rounds", default: 4, min: 1, max: 1000, about: "parent failures before it signals Done" },
        Param {
            name: "delay_ms_max",
            default: 30,
            min: 0,
            max: 60_000,
            about: "longest delay of the inner return and the parent failure",
        },
    ],
};

struct Shared {
    checks: Checks,
    sup: RefCell<Weak<Supervisor<SimEnv>>>,
    /// Inner instances running now.
    alive: Cell<u32>,
    parent_runs: Cell<u64>,
    covered: Cell<bool>,
    rounds: u64,
    delay_ms_max: u64,
}

impl Shared {
    fn sup(&self) -> Option<Rc<Supervisor<SimEnv>>> {
        self.sup.borrow().upgrade()
    }
}

fn protocol(checks: &Checks, e: TreeError) -> String {
    checks.fail("no-internal-error", format!("runnable call refused: {e}"));
    e.to_string()
}

async fn inner(s: Rc<Shared>, ctx: Ctx<SimEnv>) -> Result<(), warden::supervisor::RunError> {
    s.alive.set(s.alive.get() + 1);
    if s.alive.get() > 1 {
        s.checks.fail("one-instance", format!("{} instances of {} run at once", s.alive.get(), ctx.dn()));
    }
    ctx.signal(RunnableSignal::Healthy).map_err(|e| protocol(&s.checks, e))?;
    ctx.signal(RunnableSignal::Done).map_err(|e| protocol(&s.checks, e))?;
    // The parent instance this Done belongs to.
    let parent = ctx.dn().rsplit_once('.').map_or(ROOT, |(p, _)| p).to_owned();
    let parent_at_done = s.sup().and_then(|x| x.instance_of(&parent));
    let env = ctx.env().clone();
    env.sleep(Duration::from_millis(env.random_below(s.delay_ms_max + 1))).await;
    if let Some(sup) = s.sup() {
        // The parent's exit was processed (it is returned or already
        // restarted): GC ran while this runnable had not returned.
        let returned = sup.state_of(&parent).is_some_and(NodeState::has_returned);
        if returned || sup.instance_of(&parent) != parent_at_done {
            s.covered.set(true);
        }
    }
    s.alive.set(s.alive.get() - 1);
    Ok(())
}

async fn parent(s: Rc<Shared>, ctx: Ctx<SimEnv>) -> Result<(), warden::supervisor::RunError> {
    let run = s.parent_runs.get() + 1;
    s.parent_runs.set(run);
    let s2 = s.clone();
    ctx.run("inner", runnable(move |c| inner(s2.clone(), c))).map_err(|e| protocol(&s.checks, e))?;
    ctx.signal(RunnableSignal::Healthy).map_err(|e| protocol(&s.checks, e))?;
    let env = ctx.env().clone();
    env.sleep(Duration::from_millis(env.random_below(s.delay_ms_max + 1))).await;
    if run <= s.rounds {
        return Err(format!("parent fails (round {run})").into());
    }
    ctx.signal(RunnableSignal::Done).map_err(|e| protocol(&s.checks, e))?;
    Ok(())
}

impl Model for DoneDelay {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let s = Rc::new(Shared {
            checks: world.checks(),
            sup: RefCell::new(Weak::new()),
            alive: Cell::new(0),
            parent_runs: Cell::new(0),
            covered: Cell::new(false),
            rounds: params.count("rounds"),
            delay_ms_max: params.count("delay_ms_max").max(1),
        });
        let config = TreeConfig {
            backoff: BackoffConfig {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(50),
                multiplier_percent: 150,
                jitter_permille: 500,
            },
            intensity: Intensity { max_restarts: 100, period: Duration::from_secs(1) },
            // Internal errors fail the run (Monogon's WithPropagatePanic).
            test_mode: true,
            ..TreeConfig::default()
        };
        let s2 = s.clone();
        let sup = Rc::new(Supervisor::new(env.clone(), runnable(move |c| parent(s2.clone(), c)), config));
        *s.sup.borrow_mut() = Rc::downgrade(&sup);
        let finished = Rc::new(Cell::new(false));
        let (s3, fin) = (s.clone(), finished.clone());
        drop(env.spawn("supervisor", async move {
            let result = sup.run(CancellationToken::new()).await;
            fin.set(true);
            match result {
                Ok(()) => {}
                Err(SupervisorError::Internal(e @ TreeError::NodeNotFound { .. })) => {
                    s3.checks.fail("no-node-not-found", e);
                }
                Err(e) => s3.checks.fail("no-internal-error", e),
            }
            let m = sup.metrics();
            if m.internal_errors > 0 {
                s3.checks.fail("no-internal-error", format!("{} internal errors", m.internal_errors));
            }
        }));
        Box::new(move |checks| {
            checks.cover("gc-between-done-and-return", s.covered.get());
            if !finished.get() {
                checks.pending(
                    "rounds-complete",
                    format!("supervisor still running after {} parent runs of {}", s.parent_runs.get(), s.rounds + 1),
                );
            }
        })
    }
}
