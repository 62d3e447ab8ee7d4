//! What the simulated services saw, and the invariants checked on it:
//! `restart-policy-obeyed`, `start-after-dependencies-ready`,
//! `stop-reverse-order`, `no-orphan-process`, `intensity-respected`.
//! Each check runs at the moment its event happens (a spawn, a stop
//! signal, warden's exit), from what the processes themselves observed.

use std::cell::RefCell;
use std::time::Duration;

use warden::env::Instant;
use warden::service::{Config, RestartPolicy};

use super::super::WorldHandle;
use crate::check::Checks;

/// Windows are compared on exit times, which precede warden's decisions
/// by the cost of a few polls.
const WINDOW_SLACK: Duration = Duration::from_millis(10);

/// One process of one service.
#[derive(Debug, Clone)]
pub(super) struct Inst {
    pub(super) svc: usize,
    pub(super) proc: u32,
    /// The warden process that started it.
    pub(super) warden: u32,
    pub(super) spawned_at: Instant,
    pub(super) ready_at: Option<Instant>,
    pub(super) got_term: bool,
    pub(super) ignored_term: bool,
    /// Its own exit: code and time (not set when a signal killed it).
    pub(super) exit: Option<(i32, Instant)>,
    /// It exited on its own while its warden was stopping.
    pub(super) exit_during_stop: bool,
}

/// Everything observed in a run.
pub(super) struct Observed {
    pub(super) config: Config,
    pub(super) checks: Checks,
    pub(super) world: WorldHandle,
    pub(super) insts: RefCell<Vec<Inst>>,
    /// Wardens that were asked to stop, by process id.
    pub(super) stopping: RefCell<Vec<u32>>,
    /// Wardens started: (pid, process id), latest last.
    pub(super) wardens: RefCell<Vec<(u32, u32)>>,
}

impl Observed {
    fn name(&self, svc: usize) -> &str {
        &self.config.services[svc].name
    }

    /// A service process started: checks the spawn was allowed.
    pub(super) fn spawned(&self, svc: usize, proc: u32, warden: u32, now: Instant) {
        let insts = self.insts.borrow();
        let mine: Vec<&Inst> = insts.iter().filter(|i| i.warden == warden && i.svc == svc).collect();
        let cfg = &self.config.services[svc];
        match mine.last() {
            None => {}
            Some(prev) => {
                if self.world.is_running(prev.proc) {
                    self.checks.fail(
                        "restart-policy-obeyed",
                        format!("{} spawned while its previous process {} still runs", cfg.name, prev.proc),
                    );
                }
                let why = match (prev.got_term, prev.exit, cfg.restart) {
                    (true, _, _) => Some("after warden stopped it".to_owned()),
                    (false, Some((0, _)), RestartPolicy::OnFailure | RestartPolicy::Never) => {
                        Some(format!("after a clean exit under restart = {}", cfg.restart))
                    }
                    (false, _, RestartPolicy::Never) => Some("under restart = never".to_owned()),
                    (false, _, RestartPolicy::Always | RestartPolicy::OnFailure) => None,
                };
                if let Some(why) = why {
                    self.checks.fail("restart-policy-obeyed", format!("{} restarted {why}", cfg.name));
                }
                let exits: Vec<Instant> = mine.iter().filter_map(|i| i.exit.map(|(_, t)| t)).collect();
                self.check_intensity(svc, &exits, now);
            }
        }
        drop(insts);
        self.insts.borrow_mut().push(Inst {
            svc,
            proc,
            warden,
            spawned_at: now,
            ready_at: None,
            got_term: false,
            ignored_term: false,
            exit: None,
            exit_during_stop: false,
        });
    }

    /// Restarts decided at `exits` (the last one leads to this spawn): no
    /// more than `restarts` within any window of `within`.
    fn check_intensity(&self, svc: usize, exits: &[Instant], now: Instant) {
        let limit = self.config.services[svc].intensity;
        let n = limit.max_restarts as usize;
        if exits.len() <= n {
            return;
        }
        let (first, last) = (exits[exits.len() - 1 - n], exits[exits.len() - 1]);
        if last.saturating_duration_since(first) + WINDOW_SLACK < limit.period {
            self.checks.fail(
                "intensity-respected",
                format!(
                    "{} restarted at {now} after {} restarts within {:?} (limit {n} per {:?})",
                    self.name(svc),
                    n + 1,
                    last.saturating_duration_since(first),
                    limit.period
                ),
            );
        }
    }

    /// Each service's first process under each warden started after every
    /// dependency was ready under that warden: spawned before it when it
    /// has no check (process ids grow with spawns), READY=1 sent before it
    /// was first polled otherwise, or finished cleanly. Checked once the
    /// processes have all been observed (their first polls come in any
    /// order).
    pub(super) fn check_start_order(&self) {
        let insts = self.insts.borrow();
        for (k, s) in insts.iter().enumerate() {
            if insts[..k].iter().any(|p| p.warden == s.warden && p.svc == s.svc) {
                continue;
            }
            for &d in self.config.graph.deps(s.svc) {
                let no_check = self.config.services[d].ready == warden::service::Readiness::None;
                let ok = insts.iter().any(|i| {
                    i.warden == s.warden
                        && i.svc == d
                        && ((no_check && i.proc < s.proc)
                            || i.ready_at.is_some_and(|r| r <= s.spawned_at)
                            || i.exit.is_some_and(|(code, at)| code == 0 && at <= s.spawned_at))
                });
                if !ok {
                    self.checks.fail(
                        "start-after-dependencies-ready",
                        format!(
                            "{} (proc {}) started before its dependency {} was ready",
                            self.name(s.svc),
                            s.proc,
                            self.name(d)
                        ),
                    );
                }
            }
        }
    }

    /// The process sent READY=1 (or has no check and started).
    pub(super) fn ready(&self, proc: u32, now: Instant) {
        self.with(proc, |i| i.ready_at = Some(now));
    }

    /// The process got its stop signal: nothing that depends on it runs.
    pub(super) fn got_term(&self, proc: u32, ignored: bool) {
        let Some((svc, warden)) = self.with(proc, |i| {
            i.got_term = true;
            i.ignored_term |= ignored;
            (i.svc, i.warden)
        }) else {
            return;
        };
        let insts = self.insts.borrow();
        for d in self.config.graph.all_dependents(svc) {
            if let Some(live) = insts.iter().find(|i| i.warden == warden && i.svc == d && self.world.is_running(i.proc))
            {
                self.checks.fail(
                    "stop-reverse-order",
                    format!(
                        "{} got its stop signal while its dependent {} (proc {}) runs",
                        self.name(svc),
                        self.name(d),
                        live.proc
                    ),
                );
            }
        }
    }

    /// The process exits on its own with `code`.
    pub(super) fn exiting(&self, proc: u32, code: i32, now: Instant) {
        let stopping = self.stopping.borrow().iter().any(|w| self.with(proc, |i| i.warden == *w).unwrap_or(false));
        self.with(proc, |i| {
            i.exit = Some((code, now));
            i.exit_during_stop = stopping && !i.got_term;
        });
    }

    /// Warden `warden` exited: none of its services' processes may run.
    pub(super) fn warden_exited(&self, warden: u32) {
        for i in self.insts.borrow().iter().filter(|i| i.warden == warden) {
            if self.world.is_running(i.proc) {
                self.checks.fail(
                    "no-orphan-process",
                    format!(
                        "{} (proc {}) still runs after its warden (proc {warden}) exited",
                        self.name(i.svc),
                        i.proc
                    ),
                );
            }
        }
    }

    /// The process id of the latest warden with `pid`.
    pub(super) fn warden_of(&self, pid: u32) -> Option<u32> {
        self.wardens.borrow().iter().rev().find(|(p, _)| *p == pid).map(|(_, w)| *w)
    }

    /// After a requested stop of warden `warden`: which races it reached.
    pub(super) fn cover_stop(&self, warden: u32) {
        let insts = self.insts.borrow();
        let mine = || insts.iter().filter(|i| i.warden == warden);
        self.checks.cover("stop-escalated-to-kill", mine().any(|i| i.ignored_term));
        self.checks.cover("exit-during-stop", mine().any(|i| i.exit_during_stop));
    }

    fn with<T>(&self, proc: u32, f: impl FnOnce(&mut Inst) -> T) -> Option<T> {
        self.insts.borrow_mut().iter_mut().rev().find(|i| i.proc == proc).map(f)
    }
}
