//! One simulated run's shared state: the executor, the world, the seeded
//! decisions, the switches and the checks. Each part knows nothing of the
//! others; this composition root wires them together (the executor reaches
//! the rest only through [`Hooks`]), and every `SimEnv` of the run holds it.

use std::cell::RefCell;

use crate::check::{Checks, FailureClass};
use crate::exec::{Executor, Hooks, Stop};
use crate::rng::{Decisions, Stream};
use crate::switches::Switches;
use crate::world::WorldState;

/// The state of one run.
pub(crate) struct Simulation {
    /// Tasks, timers, virtual time.
    pub(crate) exec: Executor,
    /// Hosts, processes, sockets, disks.
    pub(crate) world: RefCell<WorldState>,
    /// Every random decision, per stream.
    pub(crate) decisions: RefCell<Decisions>,
    /// The mutant and buggify sites.
    pub(crate) switches: Switches,
    /// Invariants, failures, coverage.
    pub(crate) checks: Checks,
}

impl Hooks for Simulation {
    #[inline]
    fn poll_cost_bits(&self) -> u64 {
        self.decisions.borrow_mut().draw(Stream::PollCost)
    }

    #[inline]
    fn picked(&self, key: u64) {
        self.decisions.borrow_mut().note(Stream::Schedule, key);
    }

    #[inline]
    fn event(&self, token: u64) {
        crate::world::event(self, token);
    }

    #[inline]
    fn failed(&self) -> bool {
        self.checks.failed()
    }

    fn fail(&self, class: FailureClass, invariant: &str, message: String) {
        self.checks.fail_class(class, invariant, message);
    }
}

impl Simulation {
    /// Runs until virtual time reaches `limit_ns`, nothing is left to do,
    /// or a check fails.
    pub(crate) fn run_until(&self, limit_ns: u64) -> Stop {
        self.exec.run_until(limit_ns, self)
    }

    /// Virtual nanoseconds since the run began.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.exec.now_ns()
    }

    /// One draw from `stream`.
    #[inline]
    pub(crate) fn draw(&self, stream: Stream) -> u64 {
        self.decisions.borrow_mut().draw(stream)
    }

    /// Whether `name` is a declared mutant and the one switched on.
    pub(crate) fn mutant_on(&self, name: &'static str) -> bool {
        self.switches.mutant_on(name, &self.checks)
    }

    /// Whether buggify site `site` fires now.
    pub(crate) fn buggify(&self, site: &'static str) -> bool {
        self.switches.buggify(site, &self.decisions, &self.checks)
    }

    /// Whether faults may be injected now (the phase with faults).
    #[inline]
    pub(crate) fn faults_allowed(&self) -> bool {
        self.switches.faults_allowed()
    }

    /// Ends the run: drops every task and timer, then the world (its
    /// programs hold model state, which may hold environments of this run:
    /// a cycle that would otherwise outlive the run).
    pub(crate) fn shutdown(&self) {
        self.exec.shutdown();
        let world = std::mem::take(&mut *self.world.borrow_mut());
        drop(world);
        // Destructors of the world's objects may have scheduled timers.
        self.exec.shutdown();
    }
}
