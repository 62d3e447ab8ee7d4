//! What the handoff model's programs report, and the checkers that read it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use warden::handoff::journal::Record;

use super::super::WorldHandle;
use crate::check::Checks;

/// The service host (S, O and N run there).
pub(super) const SVC_HOST: u32 = 1;

/// One generation of the service, as the model sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct GenInfo {
    pub(super) token: String,
    pub(super) accepting: bool,
    pub(super) exited_cleanly: bool,
    pub(super) reported_unhealthy: bool,
}

/// Shared by every program of one run.
pub(super) struct Shared {
    pub(super) checks: Checks,
    pub(super) world: WorldHandle,
    /// Generations by simulator process id.
    pub(super) gens: RefCell<BTreeMap<u32, GenInfo>>,
    /// (client, request) -> the process that accepted it.
    pub(super) accepted: RefCell<BTreeMap<(u32, u32), u32>>,
    /// Connections accepted by a process whose request it has not read yet.
    pub(super) unread: RefCell<BTreeMap<u32, u64>>,
    /// Failures excused by `unread` connections of killed processes.
    pub(super) unread_excused: Cell<u64>,
    /// Requests sent and not yet answered or excused.
    pub(super) pending: RefCell<BTreeSet<(u32, u32)>>,
    /// The last journal the probe read.
    pub(super) journal: RefCell<Option<Record>>,
    /// S's processes (the last one is current).
    pub(super) coordinators: RefCell<Vec<u32>>,
    /// Boot of the service host in which a generation last accepted.
    pub(super) accepted_in_boot: Cell<u32>,
    pub(super) seal_late: Cell<bool>,
    pub(super) died_in_drain: Cell<bool>,
    pub(super) stale_ignored: Cell<u64>,
}

impl Shared {
    pub(super) fn new(checks: Checks, world: WorldHandle) -> Shared {
        Shared {
            checks,
            world,
            gens: RefCell::default(),
            accepted: RefCell::default(),
            unread: RefCell::default(),
            unread_excused: Cell::new(0),
            pending: RefCell::default(),
            journal: RefCell::default(),
            coordinators: RefCell::default(),
            accepted_in_boot: Cell::new(0),
            seal_late: Cell::new(false),
            died_in_drain: Cell::new(false),
            stale_ignored: Cell::new(0),
        }
    }

    pub(super) fn boots(&self) -> (bool, u32) {
        self.world.host_boots(SVC_HOST).unwrap_or((false, 0))
    }

    /// `proc` starts or stops accepting: at most one generation accepts.
    pub(super) fn accepting(&self, proc: u32, on: bool) {
        let mut gens = self.gens.borrow_mut();
        if on {
            let others: Vec<u32> = gens
                .iter()
                .filter(|(p, g)| **p != proc && g.accepting && self.world.is_running(**p))
                .map(|(p, _)| *p)
                .collect();
            if !others.is_empty() {
                self.checks.fail(
                    "one-generation",
                    format!("proc {proc} starts accepting while proc(s) {others:?} of another generation accept"),
                );
            }
            self.accepted_in_boot.set(self.boots().1);
        }
        gens.entry(proc).or_default().accepting = on;
    }

    fn was_killed(&self, p: u32) -> bool {
        !self.world.is_running(p) && !self.gens.borrow().get(&p).is_some_and(|g| g.exited_cleanly)
    }

    /// Whether a killed process held a connection it had not read yet
    /// (one such connection excuses one failure).
    fn unread_of_killed(&self) -> bool {
        let total: u64 = self.unread.borrow().iter().filter(|(p, _)| self.was_killed(**p)).map(|(_, n)| *n).sum();
        if total > self.unread_excused.get() {
            self.unread_excused.set(self.unread_excused.get() + 1);
            return true;
        }
        false
    }

    /// A client's request failed with `why`; excused only when a fault
    /// explains it: the server host lost power since `boot_at_start`, no
    /// generation has accepted since the host booted, or the process that
    /// accepted the connection was killed (when the request was never read:
    /// a killed process held an unread connection).
    pub(super) fn failed(&self, key: (u32, u32), boot_at_start: u32, refused: bool, why: &str) {
        self.pending.borrow_mut().remove(&key);
        let (up, boots) = self.boots();
        let host_fault = !up || boots != boot_at_start || self.accepted_in_boot.get() != boots;
        let by = self.accepted.borrow().get(&key).copied();
        let killed = match by {
            Some(p) => self.was_killed(p),
            None => !refused && self.unread_of_killed(),
        };
        if host_fault || killed {
            return;
        }
        self.checks.fail(
            "never-refused",
            format!("client {} request {}: {why} (accepted by proc {by:?}, host boots {boots})", key.0, key.1),
        );
    }

    /// Checks after the fault-free phase.
    pub(super) fn final_checks(&self, checks: &Checks, probe: &super::super::Probe) {
        checks.cover("seal-completes-after-timeout", self.seal_late.get());
        checks.cover("incumbent-died-mid-drain", self.died_in_drain.get());
        checks.cover("late-frame-ignored", self.stale_ignored.get() > 0);
        let serving_token = {
            let gens = self.gens.borrow();
            let serving: Vec<&GenInfo> =
                gens.iter().filter(|(p, g)| g.accepting && self.world.is_running(**p)).map(|(_, g)| g).collect();
            (serving.len() == 1).then(|| serving[0].token.clone())
        };
        let journal = self.journal.borrow();
        let want = serving_token;
        match (&*journal, want) {
            (Some(r), Some(t)) if !r.in_progress() && r.incumbent.token.to_string() == t => {}
            (r, t) => checks.pending(
                "journal-converges",
                format!(
                    "journal {:?} (incumbent {:?}) does not describe the serving generation {t:?}",
                    r.as_ref().map(|r| r.phase),
                    r.as_ref().map(|r| r.incumbent.token.to_string())
                ),
            ),
        }
        if let Some(key) = self.pending.borrow().iter().next() {
            checks.pending(
                "never-refused",
                format!("{} requests unanswered, e.g. client {} request {}", self.pending.borrow().len(), key.0, key.1),
            );
        }
        let gens = self.gens.borrow();
        let alive: Vec<u32> = gens.keys().copied().filter(|p| self.world.is_running(*p)).collect();
        let serving: Vec<u32> = alive.iter().copied().filter(|p| gens[p].accepting).collect();
        if serving.len() != 1 {
            checks.pending("one-generation", format!("{} generations accept at the end: {serving:?}", serving.len()));
        }
        if alive.len() != 1 {
            checks.pending("no-orphan", format!("{} generations alive at the end: {alive:?}", alive.len()));
        }
        if let Some(s) = self.coordinators.borrow().last().copied().filter(|s| self.world.is_running(*s)) {
            // The listener copy, the admin listener, the incumbent's session.
            let fds = probe.open_fds(s);
            if fds != 3 {
                checks.pending("no-orphan", format!("the coordinator holds {fds} fds at the end, 3 expected"));
            }
        }
    }
}
