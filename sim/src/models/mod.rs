//! Models: the workloads scenarios run. A model starts the programs of a
//! run inside simulated processes and checks the invariants it declares.
//! Only the workload, simulated peers and the checkers are model code.

mod bench_heartbeat;
mod gate_stampede;
mod selftest_busy_loop;
mod selftest_durable_write;
mod selftest_journal;
mod selftest_listener_handoff;
mod selftest_lost_update;
mod selftest_nondeterministic;
mod selftest_pct;
mod selftest_pid_reuse;
mod supervisor_done_delay;
mod supervisor_lifecycle;
mod supervisor_recover;

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::check::Checks;
use crate::env::SimEnv;
use crate::exec::{Kernel, ProcStats};

/// A model's integer parameter with its default.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Key under `[params]`.
    pub name: &'static str,
    /// Value when the scenario does not set it.
    pub default: i64,
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

/// Every model, by name.
pub fn all() -> &'static [&'static dyn Model] {
    &[
        &selftest_lost_update::LostUpdate,
        &selftest_pct::Depth3,
        &selftest_busy_loop::BusyLoop,
        &selftest_nondeterministic::Nondeterministic,
        &selftest_durable_write::DurableWrite,
        &selftest_journal::Journal,
        &selftest_pid_reuse::PidReuse,
        &selftest_listener_handoff::ListenerHandoff,
        &bench_heartbeat::Heartbeat,
        &gate_stampede::Stampede,
        &supervisor_done_delay::DoneDelay,
        &supervisor_recover::Recover,
        &supervisor_lifecycle::Lifecycle,
    ]
}

/// The model called `name`.
pub fn find(name: &str) -> Option<&'static dyn Model> {
    all().iter().copied().find(|m| m.spec().name == name)
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

/// What a model sees of the simulated world.
pub struct World {
    pub(crate) kernel: Rc<Kernel>,
    pub(crate) checks: Checks,
    pub(crate) main_proc: u32,
    pub(crate) seed: u64,
}

impl World {
    /// Sets up host 0 ("model") with the model's own process.
    pub(crate) fn new(kernel: Rc<Kernel>, checks: Checks, seed: u64) -> World {
        kernel.world.borrow_mut().add_host("model", 0);
        let main_proc = crate::world::bare_process(&kernel, 0, "model");
        World { kernel, checks, main_proc, seed }
    }

    /// The run's seed, for workloads defined in terms of it (the benchmark's
    /// crash schedule); everything else draws from `env.random_u64()`.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The environment of the model's own process on host 0.
    pub fn main_env(&self) -> SimEnv {
        SimEnv::new(self.kernel.clone(), self.main_proc, 0, 0)
    }

    /// Adds a host (up from now on); returns its index (the model's own
    /// host is index 0, so the first added host is 1).
    pub fn add_host(&self, name: &str) -> u32 {
        self.kernel.world.borrow_mut().add_host(name, self.kernel.now_ns())
    }

    /// The address of host `host`.
    pub fn host_ip(&self, host: u32) -> std::net::IpAddr {
        std::net::IpAddr::V4(self.kernel.world.borrow().hosts[host as usize].ip)
    }

    /// Registers a program under `name`, for `start` and `spawn_process`.
    pub fn register<F, Fut>(&self, name: &str, program: F)
    where
        F: Fn(SimEnv, Vec<String>) -> Fut + 'static,
        Fut: std::future::Future<Output = i32> + 'static,
    {
        let p: crate::world::Program = Rc::new(move |env, args| Box::pin(program(env, args)));
        self.kernel.world.borrow_mut().programs.insert(name.to_owned(), p);
    }

    /// Starts a registered program on `host` (no parent); returns the
    /// process's global id.
    pub fn start(&self, host: u32, program: &str, args: Vec<String>) -> std::io::Result<u32> {
        crate::world::start_process(&self.kernel, crate::world::Launch::new(host, program, args))
    }

    /// Makes host init start `program` at every boot (now too, if the host
    /// is up), restarting it whenever it exits when `restart` is set.
    pub fn add_init(&self, host: u32, program: &str, args: Vec<String>, restart: bool) -> std::io::Result<u32> {
        let entry = {
            let mut w = self.kernel.world.borrow_mut();
            let h = &mut w.hosts[host as usize];
            h.init.push(crate::world::InitEntry { program: program.to_owned(), args: args.clone(), restart });
            h.init.len() - 1
        };
        crate::world::start_process(
            &self.kernel,
            crate::world::Launch { init_entry: Some(entry), ..crate::world::Launch::new(host, program, args) },
        )
    }

    /// Power loss of `host`.
    pub fn crash_host(&self, host: u32) {
        crate::world::crash_host(&self.kernel, host);
    }

    /// Boots `host` again.
    pub fn restart_host(&self, host: u32) {
        crate::world::restart_host(&self.kernel, host);
    }

    /// Runs `action` at virtual time `at` (from the start of the run),
    /// before any timer due at the same instant that is registered later.
    pub fn at(&self, at: std::time::Duration, action: impl FnOnce() + 'static) {
        let at_ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.kernel.schedule(at_ns, Box::new(action));
    }

    /// A handle for scheduled actions to reach the world later.
    pub fn handle(&self) -> WorldHandle {
        WorldHandle(Rc::downgrade(&self.kernel))
    }

    /// Changes network behaviour.
    pub fn configure_net(&self, f: impl FnOnce(&mut crate::world::NetConfig)) {
        f(&mut self.kernel.world.borrow_mut().net);
    }

    /// Makes pids wrap after `max` (small values make reuse reachable).
    pub fn set_pid_max(&self, max: u32) {
        self.kernel.world.borrow_mut().pid_max = max;
    }

    /// The run's checker.
    pub fn checks(&self) -> Checks {
        self.checks.clone()
    }

    /// A probe that reads process counters while the run goes on.
    pub fn probe(&self) -> Probe {
        Probe(Rc::downgrade(&self.kernel))
    }
}

/// Reaches the world from scheduled actions (empty once the run is over).
#[derive(Clone)]
pub struct WorldHandle(std::rc::Weak<Kernel>);

impl WorldHandle {
    /// Power loss of `host`.
    pub fn crash_host(&self, host: u32) {
        if let Some(k) = self.0.upgrade() {
            crate::world::crash_host(&k, host);
        }
    }

    /// Boots `host` again.
    pub fn restart_host(&self, host: u32) {
        if let Some(k) = self.0.upgrade() {
            crate::world::restart_host(&k, host);
        }
    }

    /// Whether process `proc` is still running.
    pub fn is_running(&self, proc: u32) -> bool {
        self.0.upgrade().is_some_and(|k| !k.is_dead(proc))
    }
}

/// Reads live tasks and polls per virtual second of a process.
#[derive(Clone)]
pub struct Probe(std::rc::Weak<Kernel>);

impl Probe {
    /// Counters of process `pid` (empty once the run is over).
    pub fn stats(&self, pid: u32) -> ProcStats {
        self.0.upgrade().map(|k| k.proc_stats(pid)).unwrap_or_default()
    }
}
