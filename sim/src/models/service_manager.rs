//! The production service manager (`warden::service`, what `warden run`
//! runs) in a simulated host that loses power: a config drawn from the
//! seed (dependencies, restart policies, readiness, stop timeouts,
//! intensity), services that crash, exit, fail readiness and hang on their
//! stop signal, and a launcher that asks warden to stop, sometimes twice.
//! See `scenarios/service-manager.toml` for the mutants it catches.

mod observed;
mod programs;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;

use warden::env::Env;
use warden::service::Config;

use super::{FinalCheck, Model, ModelSpec, Param, Params, World};
use crate::env::SimEnv;
use observed::Observed;
use programs::{Behaviour, StopPlan};

/// The service manager model.
pub(super) struct ServiceManager;

static SPEC: ModelSpec = ModelSpec {
    name: "service.manager",
    about: "warden's service manager supervising crashing, hanging and unready processes on a host that loses power",
    invariants: &[
        "restart-policy-obeyed",
        "start-after-dependencies-ready",
        "stop-reverse-order",
        "no-orphan-process",
        "intensity-respected",
    ],
    coverage: &[
        ("stop-escalated-to-kill", "a requested stop (reached if a service ignored its stop signal until SIGKILL)"),
        ("exit-during-stop", "a requested stop (reached if a service exited on its own while warden was stopping)"),
    ],
    params: &[
        Param { name: "services_max", default: 5, min: 3, max: 12, about: "services in the config (3 to this many)" },
        Param {
            name: "crash_permille",
            default: 300,
            min: 0,
            max: 1000,
            about: "chance that a service process crashes after a while",
        },
        Param {
            name: "clean_exit_permille",
            default: 250,
            min: 0,
            max: 1000,
            about: "chance that a service process exits 0 after a while",
        },
        Param {
            name: "hang_permille",
            default: 300,
            min: 0,
            max: 1000,
            about: "chance that a service process ignores its stop signal",
        },
        Param {
            name: "no_ready_permille",
            default: 100,
            min: 0,
            max: 1000,
            about: "chance that a notify service never sends READY=1",
        },
        Param {
            name: "stop_after_ms_max",
            default: 30_000,
            min: 1,
            max: 600000,
            about: "the stop is asked 1 s to 1 s + this after start",
        },
        Param {
            name: "second_signal_permille",
            default: 200,
            min: 0,
            max: 1000,
            about: "chance of a second SIGTERM during the stop",
        },
    ],
};

/// A config drawn from the seed: services `s0..`, each after some earlier
/// ones, so the graph is acyclic.
fn config_text(env: &SimEnv, services_max: u64) -> String {
    let n = 3 + env.random_below(services_max.saturating_sub(2).max(1));
    let mut t = String::from("[warden]\ncontrol = \"warden.sock\"\nstop_timeout = \"12s\"\n");
    for i in 0..n {
        let policy = ["always", "on-failure", "never"][env.random_below(3) as usize];
        let after: Vec<String> = (0..i).filter(|_| env.random_below(100) < 45).map(|d| format!("\"s{d}\"")).collect();
        let _ = write!(
            t,
            "\n[[service]]\nname = \"s{i}\"\ncommand = [\"svc\", \"{i}\"]\nrestart = \"{policy}\"\nafter = [{}]\n\
             stop_timeout = \"{}ms\"\nbackoff = {{ initial = \"{}ms\", max = \"2s\" }}\n\
             intensity = {{ restarts = {}, within = \"{}s\" }}\n",
            after.join(", "),
            500 + env.random_below(2000),
            50 + env.random_below(400),
            1 + env.random_below(4),
            3 + env.random_below(15),
        );
        if env.random_below(2) == 0 {
            t.push_str("ready = { notify = true }\n");
        }
    }
    t
}

impl Model for ServiceManager {
    fn spec(&self) -> &'static ModelSpec {
        &SPEC
    }

    fn start(&self, world: &World, params: &Params) -> FinalCheck {
        let env = world.main_env();
        let text = Rc::new(config_text(&env, params.count("services_max")));
        let config = match Config::parse(Path::new("/etc/warden/warden.toml"), &text) {
            Ok(c) => c,
            Err(e) => {
                world.checks().fail_class(crate::check::FailureClass::SimError, "config", e);
                return Box::new(|_| {});
            }
        };
        let obs = Rc::new(Observed {
            config,
            checks: world.checks(),
            world: world.handle(),
            insts: RefCell::new(Vec::new()),
            stopping: RefCell::new(Vec::new()),
            wardens: RefCell::new(Vec::new()),
        });
        let behaviour = Behaviour {
            crash_permille: params.count("crash_permille"),
            clean_exit_permille: params.count("clean_exit_permille"),
            hang_permille: params.count("hang_permille"),
            no_ready_permille: params.count("no_ready_permille"),
        };
        let plan = StopPlan {
            after_ms_max: params.count("stop_after_ms_max").max(1),
            second_signal_permille: params.count("second_signal_permille"),
        };
        let o = obs.clone();
        world.register("svc", move |env, args| programs::service(env, args, o.clone(), behaviour));
        let o = obs.clone();
        world.register("warden", move |env, _| programs::warden(env, text.clone(), o.clone()));
        let o = obs.clone();
        world.register("launcher", move |env, _| programs::launcher(env, o.clone(), plan));
        let host = world.add_host("box");
        if let Err(e) = world.add_init(host, "launcher", Vec::new(), false) {
            world.checks().fail_class(crate::check::FailureClass::SimError, "launcher", e);
        }
        Box::new(move |_checks| obs.check_start_order())
    }
}
