//! Crash points in the simulated world: the targets a fault plan set (the
//! k-th hit of a named point kills the process that reaches it), the hits
//! counted so far, and the points where a process actually died.

use std::collections::BTreeMap;
use std::rc::Rc;

use warden::env::{ExitStatus, Signal};

use super::exit_process;
use crate::check::FailureClass;
use crate::simulation::Simulation;
use crate::trace::{self, Kind};

/// Where processes of this run die.
#[derive(Default)]
pub(crate) struct CrashTargets {
    /// (point, hit, spent): each target kills at most once.
    targets: Vec<(String, u64, bool)>,
    hits: BTreeMap<&'static str, u64>,
    died_at: Vec<&'static str>,
}

impl CrashTargets {
    /// Kills at the `hit`-th hit of each named point.
    pub(crate) fn set(&mut self, targets: impl IntoIterator<Item = (String, u64)>) {
        self.targets = targets.into_iter().map(|(n, k)| (n, k, false)).collect();
    }

    /// Counts a hit of `name`; whether it kills.
    fn hit(&mut self, name: &'static str) -> bool {
        let hits = self.hits.entry(name).or_default();
        *hits += 1;
        let n = *hits;
        let Some(t) = self.targets.iter_mut().find(|(p, k, spent)| !spent && p == name && *k == n) else {
            return false;
        };
        t.2 = true;
        self.died_at.push(name);
        true
    }

    /// Whether a process died at the last target: the point a seed drew
    /// (any earlier target only leads there).
    pub(crate) fn last_target_reached(&self) -> Option<(&str, bool)> {
        self.targets.last().map(|(p, _, _)| (p.as_str(), self.died_at.contains(&p.as_str())))
    }
}

/// Counts a hit of crash point `name` in `proc`; at a hit the fault plan
/// names, kills the process (SIGKILL semantics) and returns `true`.
pub(crate) fn hit_crash_point(sim: &Rc<Simulation>, proc: u32, name: &'static str) -> bool {
    if sim.exec.is_dead(proc) {
        return true;
    }
    if !warden::env::crash::is_declared(name) {
        sim.checks.fail_class(
            FailureClass::SimError,
            "known-crash-point",
            format!("crash_point!({name:?}) is not declared in warden::env::crash::ALL"),
        );
        return false;
    }
    let crash = sim.world.borrow_mut().crashes.hit(name);
    trace::sim_event(Kind::CrashPoint, u64::from(proc), u64::from(crash), || {
        format!("crash point {name} in proc {proc}{}", if crash { ": killed" } else { "" })
    });
    if crash {
        exit_process(sim, proc, ExitStatus::Signaled(Signal::Kill));
    }
    crash
}
