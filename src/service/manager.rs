//! The service manager as a state machine (no I/O, no clock of its own).
//!
//! Call order, as in quinn-proto: feed inputs with `handle_*` (each takes
//! `now`), then drain [`Manager::poll_action`] until `None`, sleep until
//! [`Manager::poll_timeout`], then call [`Manager::handle_timeout`]. The
//! driver in `driver.rs` executes the actions through `Env` and answers
//! [`Action::Spawn`] with [`Manager::handle_spawned`] before anything else.
//!
//! Start: a waiting service is spawned once every service it starts
//! `after` is ready (or has exited cleanly, like a one-shot). Restarts
//! after a backoff do not wait for dependencies again. Stop (a signal, or a
//! critical service that failed): every service is stopped once nothing
//! that depends on it has a process left, each with its stop signal and
//! SIGKILL at its stop timeout, all under the whole-stop deadline; a
//! second signal kills every process group at once.

use std::collections::VecDeque;
use std::time::Duration;

pub use super::action::{Action, Command, CommandError, Mutants, Upgraded};
use super::config::{Config, Readiness, RestartPolicy, ServiceConfig};
use super::graph::Graph;
use super::state::{Effect, SvcEvent, SvcState, Then, step};
use super::status::ServiceStatus;
use crate::env::{ExitStatus, Instant, Pid, Signal};
use crate::supervisor::{Backoff, IntensityWindow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping { deadline: Instant, code: i32 },
    Finished,
}

struct Svc {
    cfg: ServiceConfig,
    state: SvcState,
    instance: u64,
    pid: Option<Pid>,
    ready: bool,
    restarts: u64,
    last_exit: Option<ExitStatus>,
    backoff: Backoff,
    intensity: IntensityWindow,
}

/// The manager: every service's state, the start and stop order.
pub struct Manager {
    svcs: Vec<Svc>,
    graph: Graph,
    stop_timeout_all: Duration,
    phase: Phase,
    actions: VecDeque<Action>,
    mutants: Mutants,
}

impl Manager {
    /// A manager for `config`'s services, none started yet.
    pub fn new(config: &Config, mutants: Mutants) -> Manager {
        let svcs = config
            .services
            .iter()
            .map(|c| Svc {
                cfg: c.clone(),
                state: SvcState::Waiting,
                instance: 0,
                pid: None,
                ready: false,
                restarts: 0,
                last_exit: None,
                backoff: Backoff::new(c.backoff),
                intensity: IntensityWindow::new(c.intensity),
            })
            .collect();
        Manager {
            svcs,
            graph: config.graph.clone(),
            stop_timeout_all: config.warden.stop_timeout,
            phase: Phase::Running,
            actions: VecDeque::new(),
            mutants,
        }
    }

    /// Starts every service whose dependencies allow it.
    pub fn handle_start(&mut self, now: Instant) {
        self.advance(now);
    }

    /// The driver spawned `instance` of `svc` (`Ok(pid)`) or could not.
    pub fn handle_spawned(&mut self, now: Instant, svc: usize, instance: u64, pid: Result<Pid, String>) {
        if self.svcs[svc].instance != instance {
            return;
        }
        if self.phase == Phase::Finished {
            // Spawned after a forced stop was decided: it must not outlive us.
            if pid.is_ok() {
                self.actions.push_back(Action::Signal { svc, instance, signal: Signal::Kill });
            }
            return;
        }
        let event = match pid {
            Ok(pid) => {
                self.svcs[svc].pid = Some(pid);
                self.svcs[svc].ready = self.svcs[svc].cfg.ready == Readiness::None;
                SvcEvent::Spawned(pid)
            }
            Err(e) => {
                tracing::error!(service = self.svcs[svc].cfg.name.as_str(), error = e.as_str(), "cannot spawn");
                SvcEvent::SpawnFailed
            }
        };
        self.apply(now, svc, event, 0);
    }

    /// `instance` of `svc` passed its readiness check.
    pub fn handle_ready(&mut self, now: Instant, svc: usize, instance: u64) {
        if self.svcs[svc].instance != instance || !self.svcs[svc].state.has_process() {
            return;
        }
        tracing::info!(service = self.svcs[svc].cfg.name.as_str(), "ready");
        self.svcs[svc].ready = true;
        self.apply(now, svc, SvcEvent::Ready, 0);
    }

    /// `instance` of `svc` exited with `status`; `random` draws the jitter.
    pub fn handle_exited(&mut self, now: Instant, svc: usize, instance: u64, status: ExitStatus, random: u64) {
        let s = &mut self.svcs[svc];
        if s.instance != instance || s.pid.is_none() {
            return;
        }
        tracing::info!(service = s.cfg.name.as_str(), pid = s.pid, status = %status, "exited");
        s.pid = None;
        s.ready = false;
        s.last_exit = Some(status);
        self.apply(now, svc, SvcEvent::Exited(status), random);
    }

    /// A command for the service called `name`.
    pub fn handle_command(&mut self, now: Instant, name: &str, cmd: Command) -> Result<(), CommandError> {
        let svc = self.index(name)?;
        if self.phase != Phase::Running {
            return Err(CommandError::Stopping);
        }
        if matches!(cmd, Command::Start | Command::Restart) {
            let s = &mut self.svcs[svc];
            s.intensity.clear();
            s.backoff.reset();
        }
        let event = match cmd {
            Command::Start => SvcEvent::StartCmd,
            Command::Stop => SvcEvent::Stop(Then::Stay),
            Command::Restart => SvcEvent::Stop(Then::Start),
        };
        tracing::info!(service = name, command = ?cmd, "command");
        self.apply(now, svc, event, 0);
        Ok(())
    }

    /// `warden upgrade NAME`: whether the service can be handed off now
    /// (it declares `handoff = true` and runs); its index. The handoff
    /// itself is between the driver and the service's coordinator, which
    /// the manager supervises as the service's process.
    pub fn handle_upgrade(&self, name: &str) -> Result<usize, CommandError> {
        let svc = self.index(name)?;
        if self.phase != Phase::Running {
            return Err(CommandError::Stopping);
        }
        let s = &self.svcs[svc];
        if !s.cfg.handoff {
            return Err(CommandError::NoHandoff(name.to_owned()));
        }
        if !matches!(s.state, SvcState::Running { .. }) || s.pid.is_none() {
            return Err(CommandError::NotRunning(name.to_owned()));
        }
        Ok(svc)
    }

    /// A shutdown signal: the first starts the ordered stop (exit 0), a
    /// later one forces it (exit 128 + its number).
    pub fn handle_signal(&mut self, now: Instant, signal: Signal) {
        match self.phase {
            Phase::Running => {
                tracing::info!(signal = %signal, "stopping every service");
                self.begin_stop(now, 0);
            }
            Phase::Stopping { .. } => {
                tracing::warn!(signal = %signal, "second signal: killing every service now");
                self.kill_all_and_finish(128 + signal.number());
            }
            Phase::Finished => {}
        }
    }

    /// Deadlines that passed by `now`: restarts, SIGKILLs, the whole stop.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Finished {
            return;
        }
        for svc in 0..self.svcs.len() {
            match self.svcs[svc].state {
                SvcState::Backoff { until } if until <= now => self.apply(now, svc, SvcEvent::RestartDue, 0),
                SvcState::Stopping { kill_at: Some(at), .. } if at <= now => self.apply(now, svc, SvcEvent::KillDue, 0),
                _ => {}
            }
        }
        if let Phase::Stopping { deadline, code } = self.phase
            && deadline <= now
        {
            tracing::warn!("whole-stop deadline passed: killing what is left");
            self.kill_all_and_finish(code);
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let svc = self.svcs.iter().filter_map(|s| match s.state {
            SvcState::Backoff { until } => Some(until),
            SvcState::Stopping { kill_at, .. } => kill_at,
            _ => None,
        });
        let all = match self.phase {
            Phase::Stopping { deadline, .. } => Some(deadline),
            Phase::Running | Phase::Finished => None,
        };
        svc.chain(all).min()
    }

    /// Whether the manager has finished.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Whether it is stopping (or stopped).
    pub fn is_stopping(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Every service's status, in config order.
    pub fn status(&self) -> Vec<ServiceStatus> {
        self.svcs
            .iter()
            .map(|s| ServiceStatus {
                name: s.cfg.name.clone(),
                state: s.state.name(),
                pid: s.pid,
                restarts: s.restarts,
                ready: s.ready,
                has_check: s.cfg.ready != Readiness::None,
                last_exit: s.last_exit.map(|e| e.to_string()),
                critical: s.cfg.critical,
            })
            .collect()
    }

    /// The pid of `svc`'s current instance.
    pub fn pid(&self, svc: usize) -> Option<Pid> {
        self.svcs[svc].pid
    }

    fn index(&self, name: &str) -> Result<usize, CommandError> {
        self.svcs.iter().position(|s| s.cfg.name == name).ok_or_else(|| CommandError::UnknownService(name.to_owned()))
    }

    fn apply(&mut self, now: Instant, svc: usize, event: SvcEvent, random: u64) {
        let ran = match self.svcs[svc].state {
            SvcState::Running { since } => Some(now.saturating_duration_since(since)),
            _ => None,
        };
        match self.step_one(now, svc, event) {
            Some(Effect::Kill) if self.mutants.orphan_on_exit => {
                // The planted bug: the process that ignored its stop signal
                // is forgotten, alive, and warden moves on.
                let s = &mut self.svcs[svc];
                s.state = SvcState::Stopped;
                s.pid = None;
                self.actions.push_back(Action::Forget { svc });
            }
            Some(Effect::Kill) => {
                let s = &self.svcs[svc];
                tracing::warn!(service = s.cfg.name.as_str(), "stop timeout passed: SIGKILL");
                self.actions.push_back(Action::Signal { svc, instance: s.instance, signal: Signal::Kill });
            }
            Some(Effect::DecideRestart(status)) => self.decide_restart(now, svc, status, random, ran),
            Some(Effect::None | Effect::Spawn | Effect::SignalStop) | None => {}
        }
        self.advance(now);
    }

    /// Steps `svc` and queues the spawn or stop signal it asks for; the
    /// other effects are the caller's.
    fn step_one(&mut self, now: Instant, svc: usize, event: SvcEvent) -> Option<Effect> {
        let s = &mut self.svcs[svc];
        let effect = match step(&mut s.state, now, s.cfg.stop_timeout, event) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(service = s.cfg.name.as_str(), error = %e, "ignored event");
                return None;
            }
        };
        match effect {
            Effect::Spawn => {
                s.instance += 1;
                s.ready = false;
                self.actions.push_back(Action::Spawn { svc, instance: s.instance });
            }
            Effect::SignalStop => {
                tracing::info!(service = s.cfg.name.as_str(), signal = %s.cfg.stop_signal, "stopping");
                let signal = s.cfg.stop_signal;
                self.actions.push_back(Action::Signal { svc, instance: s.instance, signal });
            }
            Effect::None | Effect::Kill | Effect::DecideRestart(_) => {}
        }
        Some(effect)
    }

    fn decide_restart(&mut self, now: Instant, svc: usize, status: ExitStatus, random: u64, ran: Option<Duration>) {
        let stopping = self.phase != Phase::Running;
        let on_failure_bug = self.mutants.on_failure_restarts_clean_exit;
        let s = &mut self.svcs[svc];
        let restart = match s.cfg.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !status.success() || on_failure_bug,
            RestartPolicy::Never => false,
        };
        let name = s.cfg.name.as_str();
        if stopping {
            s.state = SvcState::Stopped;
        } else if !restart {
            s.state = if status.success() { SvcState::Exited } else { SvcState::Failed };
            tracing::info!(service = name, policy = %s.cfg.restart, state = %s.state, "not restarted");
        } else if let Err(e) = s.intensity.record(now) {
            s.state = SvcState::Failed;
            tracing::error!(service = name, error = %e, "restart intensity exceeded: service failed");
        } else {
            if ran.is_some_and(|r| r >= s.cfg.backoff.max) {
                // It ran for longer than the longest delay: a fresh
                // failure, not one more in a crash loop.
                s.backoff.reset();
            }
            let delay = s.backoff.next_delay(random);
            s.restarts += 1;
            s.state = SvcState::Backoff { until: now + delay };
            tracing::info!(service = name, delay_ms = delay.as_millis() as u64, "restarting after backoff");
        }
        if s.state == SvcState::Failed && s.cfg.critical && !stopping {
            tracing::error!(service = name, "critical service failed: stopping warden");
            self.begin_stop(now, 1);
        }
    }

    fn begin_stop(&mut self, now: Instant, code: i32) {
        self.phase = Phase::Stopping { deadline: now + self.stop_timeout_all, code };
        self.advance(now);
    }

    fn kill_all_and_finish(&mut self, code: i32) {
        for svc in 0..self.svcs.len() {
            let s = &mut self.svcs[svc];
            if s.state.has_process() && s.pid.is_some() {
                if self.mutants.orphan_on_exit {
                    self.actions.push_back(Action::Forget { svc });
                } else {
                    self.actions.push_back(Action::Signal { svc, instance: s.instance, signal: Signal::Kill });
                }
            }
            if s.state != SvcState::Failed && s.state != SvcState::Exited {
                s.state = SvcState::Stopped;
            }
        }
        self.phase = Phase::Finished;
        self.actions.push_back(Action::Finished { code });
    }

    /// Whether `d` lets its dependents start: ready, or done cleanly.
    fn satisfies(&self, d: usize) -> bool {
        let s = &self.svcs[d];
        matches!(s.state, SvcState::Running { .. }) && s.ready || s.state == SvcState::Exited
    }

    /// Starts what may start, or stops what may stop, until nothing changes.
    fn advance(&mut self, now: Instant) {
        loop {
            let event = match self.phase {
                Phase::Finished => return,
                Phase::Running => self
                    .graph
                    .start_order()
                    .iter()
                    .copied()
                    .find(|&i| {
                        self.svcs[i].state == SvcState::Waiting && self.graph.deps(i).iter().all(|&d| self.satisfies(d))
                    })
                    .map(|i| (i, SvcEvent::Launch)),
                Phase::Stopping { code, .. } => {
                    if self.svcs.iter().all(|s| !s.state.has_process()) {
                        for s in &mut self.svcs {
                            if matches!(s.state, SvcState::Waiting | SvcState::Backoff { .. }) {
                                s.state = SvcState::Stopped;
                            }
                        }
                        self.phase = Phase::Finished;
                        self.actions.push_back(Action::Finished { code });
                        return;
                    }
                    let unordered = self.mutants.stop_unordered;
                    self.graph
                        .start_order()
                        .iter()
                        .rev()
                        .copied()
                        .find(|&i| {
                            let needs_stop = matches!(
                                self.svcs[i].state,
                                SvcState::Waiting
                                    | SvcState::Spawning
                                    | SvcState::Running { .. }
                                    | SvcState::Backoff { .. }
                            );
                            needs_stop
                                && (unordered
                                    || self.graph.all_dependents(i).iter().all(|&d| !self.svcs[d].state.has_process()))
                        })
                        .map(|i| (i, SvcEvent::Stop(Then::Stay)))
                }
            };
            let Some((svc, event)) = event else { return };
            self.step_one(now, svc, event);
        }
    }
}

#[cfg(test)]
mod tests;
