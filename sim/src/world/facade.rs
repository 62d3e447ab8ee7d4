//! The facade through which models reach the simulated world: hosts,
//! programs, processes, init, scheduled actions, network settings, pid
//! ranges, the run's checks and counters. Models see nothing else of the
//! simulation (no executor, no world state).

use std::rc::Rc;

use crate::check::Checks;
use crate::env::SimEnv;
use crate::exec::ProcStats;
use crate::simulation::Simulation;

/// What a model sees of the simulated world.
pub struct World {
    pub(crate) sim: Rc<Simulation>,
    pub(crate) checks: Checks,
    pub(crate) main_proc: u32,
    pub(crate) seed: u64,
}

impl World {
    /// Sets up host 0 ("model") with the model's own process.
    pub(crate) fn new(sim: Rc<Simulation>, checks: Checks, seed: u64) -> World {
        sim.world.borrow_mut().add_host("model", 0);
        let main_proc = crate::world::bare_process(&sim, 0, "model");
        World { sim, checks, main_proc, seed }
    }

    /// The run's seed, for workloads defined in terms of it (the benchmark's
    /// crash schedule); everything else draws from `env.random_u64()`.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The environment of the model's own process on host 0.
    pub fn main_env(&self) -> SimEnv {
        SimEnv::new(self.sim.clone(), self.main_proc, 0, 0)
    }

    /// Adds a host (up from now on); returns its index (the model's own
    /// host is index 0, so the first added host is 1).
    pub fn add_host(&self, name: &str) -> u32 {
        self.sim.world.borrow_mut().add_host(name, self.sim.now_ns())
    }

    /// The address of host `host`.
    pub fn host_ip(&self, host: u32) -> std::net::IpAddr {
        std::net::IpAddr::V4(self.sim.world.borrow().hosts[host as usize].ip)
    }

    /// Registers a program under `name`, for `start` and `spawn_process`.
    pub fn register<F, Fut>(&self, name: &str, program: F)
    where
        F: Fn(SimEnv, Vec<String>) -> Fut + 'static,
        Fut: std::future::Future<Output = i32> + 'static,
    {
        let p: crate::world::Program = Rc::new(move |env, args| Box::pin(program(env, args)));
        self.sim.world.borrow_mut().programs.insert(name.to_owned(), p);
    }

    /// Starts a registered program on `host` (no parent); returns the
    /// process's global id.
    pub fn start(&self, host: u32, program: &str, args: Vec<String>) -> std::io::Result<u32> {
        crate::world::start_process(&self.sim, crate::world::Launch::new(host, program, args))
    }

    /// Makes host init start `program` at every boot (now too, if the host
    /// is up), restarting it whenever it exits when `restart` is set.
    pub fn add_init(&self, host: u32, program: &str, args: Vec<String>, restart: bool) -> std::io::Result<u32> {
        let entry = {
            let mut w = self.sim.world.borrow_mut();
            let h = &mut w.hosts[host as usize];
            h.init.push(crate::world::InitEntry { program: program.to_owned(), args: args.clone(), restart });
            h.init.len() - 1
        };
        crate::world::start_process(
            &self.sim,
            crate::world::Launch { init_entry: Some(entry), ..crate::world::Launch::new(host, program, args) },
        )
    }

    /// Power loss of `host`.
    pub fn crash_host(&self, host: u32) {
        crate::world::crash_host(&self.sim, host);
    }

    /// Boots `host` again.
    pub fn restart_host(&self, host: u32) {
        crate::world::restart_host(&self.sim, host);
    }

    /// Runs `action` at virtual time `at` (from the start of the run),
    /// before any timer due at the same instant that is registered later.
    pub fn at(&self, at: std::time::Duration, action: impl FnOnce() + 'static) {
        let at_ns = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.sim.exec.schedule(at_ns, Box::new(action));
    }

    /// A handle for scheduled actions to reach the world later.
    pub fn handle(&self) -> WorldHandle {
        WorldHandle(Rc::downgrade(&self.sim))
    }

    /// Changes network behaviour.
    pub fn configure_net(&self, f: impl FnOnce(&mut crate::world::NetConfig)) {
        f(&mut self.sim.world.borrow_mut().net);
    }

    /// Makes pids wrap after `max` (small values make reuse reachable).
    pub fn set_pid_max(&self, max: u32) {
        self.sim.world.borrow_mut().pid_max = max;
    }

    /// The run's checker.
    pub fn checks(&self) -> Checks {
        self.checks.clone()
    }

    /// A probe that reads process counters while the run goes on.
    pub fn probe(&self) -> Probe {
        Probe(Rc::downgrade(&self.sim))
    }
}

/// Reaches the world from scheduled actions (empty once the run is over).
#[derive(Clone)]
pub struct WorldHandle(std::rc::Weak<Simulation>);

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
        self.0.upgrade().is_some_and(|k| !k.exec.is_dead(proc))
    }

    /// Whether `host` is up, and how many times it booted (a checker
    /// excuses what a power loss broke).
    pub fn host_boots(&self, host: u32) -> Option<(bool, u32)> {
        let sim = self.0.upgrade()?;
        let w = sim.world.borrow();
        w.hosts.get(host as usize).map(|h| (h.up, h.boots))
    }
}

/// Reads live tasks and polls per virtual second of a process.
#[derive(Clone)]
pub struct Probe(std::rc::Weak<Simulation>);

impl Probe {
    /// Counters of process `pid` (empty once the run is over).
    pub fn stats(&self, pid: u32) -> ProcStats {
        self.0.upgrade().map(|k| k.exec.proc_stats(pid)).unwrap_or_default()
    }

    /// Open fds of process `proc` (a checker's "no fd leaks").
    pub fn open_fds(&self, proc: u32) -> usize {
        self.0.upgrade().and_then(|k| k.world.borrow().procs.get(&proc).map(|p| p.fds.len())).unwrap_or(0)
    }
}
