//! Models: the workloads scenarios run. A model starts the programs of a
//! run inside simulated processes and checks the invariants it declares.
//! Only the workload, simulated peers and the checkers are model code.

mod bench_heartbeat;
mod gate_stampede;
mod handoff_upgrade;
mod selftest_busy_loop;
mod selftest_durable_write;
mod selftest_journal;
mod selftest_leaky_static;
mod selftest_listener_handoff;
mod selftest_lost_update;
mod selftest_nondeterministic;
mod selftest_pct;
mod selftest_pid_reuse;
mod service_manager;
mod supervisor_done_delay;
mod supervisor_lifecycle;
mod supervisor_recover;

use std::collections::BTreeMap;

use crate::check::Checks;
pub use crate::world::facade::{Probe, World, WorldHandle};

/// A model's integer parameter with its default.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Key under `[params]`.
    pub name: &'static str,
    /// Value when the scenario does not set it.
    pub default: i64,
    /// Smallest value a scenario may set.
    pub min: i64,
    /// Largest value a scenario may set (bounded so that no scenario can
    /// ask for a run that does not fit in memory or time).
    pub max: i64,
    /// What it controls.
    pub about: &'static str,
}

/// What a model offers to scenario files.
#[derive(Debug)]
pub struct ModelSpec {
    /// The name scenarios use in `model = ".."`.
    pub name: &'static str,
    /// One line on what it exercises.
    pub about: &'static str,
    /// Invariants it can check.
    pub invariants: &'static [&'static str],
    /// Coverage windows it counts, and what one opportunity is.
    pub coverage: &'static [(&'static str, &'static str)],
    /// Parameters it accepts.
    pub params: &'static [Param],
}

/// Checks run once after the fault-free phase.
pub type FinalCheck = Box<dyn FnOnce(&Checks)>;

/// A workload.
pub trait Model: Sync {
    /// Its declaration.
    fn spec(&self) -> &'static ModelSpec;
    /// Starts the run's programs; returns the end-of-run checks.
    fn start(&self, world: &World, params: &Params) -> FinalCheck;
}

/// A set of models scenario files can name: warden's own
/// ([`Catalog::builtin`]), or a project's ([`crate::cli::main_with`]).
#[derive(Clone, Copy)]
pub struct Catalog(pub &'static [&'static dyn Model]);

impl Catalog {
    /// warden's own models.
    pub fn builtin() -> Catalog {
        Catalog(all())
    }

    /// The model called `name`.
    pub fn find(&self, name: &str) -> Option<&'static dyn Model> {
        self.0.iter().copied().find(|m| m.spec().name == name)
    }

    /// Every model.
    pub fn models(&self) -> &'static [&'static dyn Model] {
        self.0
    }
}

/// Every model of warden's own, by name.
pub fn all() -> &'static [&'static dyn Model] {
    &[
        &selftest_lost_update::LostUpdate,
        &selftest_pct::Depth3,
        &selftest_busy_loop::BusyLoop,
        &selftest_nondeterministic::Nondeterministic,
        &selftest_leaky_static::LeakyStatic,
        &selftest_durable_write::DurableWrite,
        &selftest_journal::Journal,
        &selftest_pid_reuse::PidReuse,
        &selftest_listener_handoff::ListenerHandoff,
        &bench_heartbeat::Heartbeat,
        &gate_stampede::Stampede,
        &supervisor_done_delay::DoneDelay,
        &supervisor_recover::Recover,
        &supervisor_lifecycle::Lifecycle,
        &handoff_upgrade::Upgrade,
        &service_manager::ServiceManager,
    ]
}

/// Validated parameters: the scenario's values over the model's defaults.
#[derive(Debug, Clone, Default)]
pub struct Params(BTreeMap<&'static str, i64>);

impl Params {
    /// The model's defaults overridden by `values` (already validated).
    pub fn new(spec: &ModelSpec, values: &BTreeMap<String, i64>) -> Self {
        Params(spec.params.iter().map(|p| (p.name, values.get(p.name).copied().unwrap_or(p.default))).collect())
    }

    /// The value of a declared parameter.
    pub fn get(&self, name: &str) -> i64 {
        match self.0.get(name) {
            Some(v) => *v,
            None => panic!("model reads undeclared parameter {name:?}"),
        }
    }

    /// A declared parameter as a count (negative values become 0).
    pub fn count(&self, name: &str) -> u64 {
        u64::try_from(self.get(name)).unwrap_or(0)
    }

    /// All values, for the run header.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }
}
