//! The lifecycle controller as a sans-IO state machine (seed 003, D1–D7).
//!
//! Call order, as in quinn-proto: feed every input with
//! [`Lifecycle::handle`] (`now` and one [`Input`]), then drain
//! [`Lifecycle::poll_action`] until `None` and execute the actions, sleep
//! until [`Lifecycle::poll_timeout`] and feed [`Input::Timeout`]. The
//! driver (`Controller`) does only that; every decision is here: the start
//! order, restarts and their counter, readiness, liveness, the stop
//! sequence and its deadlines, the second signal.
//!
//! The controller's phases × inputs are one exhaustive match in
//! [`Lifecycle::handle`]; per service, the run state lives in `slot.rs`
//! and its transitions in `running.rs` (while the controller runs) and
//! `stopping.rs` (the stop sequence).

use std::collections::VecDeque;
use std::time::Duration;

use super::outcome::RunOutcome;
use super::report::{LifecycleStats, ServiceFailure, StopReport};
use super::slot::{ServiceSpec, Slot};
use crate::env::{Instant, Signal};
use crate::supervisor::backoff::BackoffConfig;
use crate::supervisor::error::RunError;
use crate::supervisor::intensity::Intensity;

/// The machine's timings and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// A service healthy this long has its restart counter reset.
    pub restart_reset_interval: Duration,
    /// Delays between restarts of one service.
    pub backoff: BackoffConfig,
    /// Restarts allowed per service; one more fails the controller.
    pub intensity: Intensity,
    /// Deadline of each service's stop (its stop function and its run).
    pub stop_timeout: Duration,
    /// Period of readiness checks and of liveness probes.
    pub check_interval: Duration,
    /// How long a started service may take to become ready before the
    /// controller gives up (the services after it depend on it).
    pub ready_timeout: Duration,
}

/// Historical bugs the driver switches on from `env.mutant(..)`; all off
/// in production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleBugs {
    /// `start-not-idempotent`: a second start starts every service again.
    pub start_not_idempotent: bool,
    /// `immediate-return-is-exit`: a clean start is taken for an exit.
    pub immediate_return_is_exit: bool,
    /// `stop-waits-forever`: stops have no deadline.
    pub stop_waits_forever: bool,
    /// `readiness-fails-open`: a check not yet completed counts as ready.
    pub readiness_fails_open: bool,
}

/// Where the controller is; phases only ever move forward, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Not started: services are registered.
    Unknown,
    /// Starting services in registration order, each once the one before
    /// it is ready.
    Starting,
    /// Every service started.
    Running,
    /// Stopping services in reverse start order.
    Stopping,
    /// Everything stopped.
    Stopped,
}

/// What happens to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A service is registered.
    Register(ServiceSpec),
    /// `start` was called.
    Start,
    /// `stop` was called.
    Stop,
    /// A shutdown signal arrived.
    Signal(Signal),
    /// Run `run` of service `service` ended with `outcome`.
    RunEnded {
        /// The service's index (registration order).
        service: usize,
        /// The run, as [`Action::StartRun`] named it.
        run: u64,
        /// How it ended.
        outcome: RunOutcome,
    },
    /// Stop `stop` of service `service` returned.
    StopEnded {
        /// The service's index.
        service: usize,
        /// The stop, as [`Action::RunStop`] named it.
        stop: u64,
        /// Its result (a panic is an error).
        result: Result<(), RunError>,
    },
    /// A readiness check of service `service` completed.
    Readiness {
        /// The service's index.
        service: usize,
        /// Whether it passed (a panic fails).
        ok: bool,
    },
    /// A liveness probe of service `service` answered.
    Liveness {
        /// The service's index.
        service: usize,
        /// Whether it passed (a panic fails).
        ok: bool,
    },
    /// [`Lifecycle::poll_timeout`] was reached.
    Timeout,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Run the start function of `service` under a fresh context, as run
    /// `run`, and report its end.
    StartRun {
        /// The service's index.
        service: usize,
        /// The run's id.
        run: u64,
    },
    /// Cancel the context of `service`'s current run.
    CancelRun {
        /// The service's index.
        service: usize,
    },
    /// Abandon `service`'s current run: abort its task.
    AbortRun {
        /// The service's index.
        service: usize,
    },
    /// Run the stop function of `service` as stop `stop`, and report it.
    RunStop {
        /// The service's index.
        service: usize,
        /// The stop's id.
        stop: u64,
    },
    /// Stop `stop` of `service` missed its deadline: cancel its deadline
    /// token and abort its task.
    AbortStop {
        /// The service's index.
        service: usize,
        /// The stop's id.
        stop: u64,
    },
    /// Run a readiness check of `service` and report it.
    CheckReadiness {
        /// The service's index.
        service: usize,
    },
    /// Ask the liveness probe of `service` and report it.
    ProbeLiveness {
        /// The service's index.
        service: usize,
    },
    /// Everything stopped: restore signal dispositions, end every task,
    /// hand the report to waiters.
    Finish,
}

/// Refused inputs; the machine is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// `start` was already called: nothing was started again.
    #[error("controller already started")]
    AlreadyStarted,
    /// Services are registered before `start`.
    #[error("cannot register {0:?} after start")]
    RegisterAfterStart(String),
    /// Two services with one name.
    #[error("a service named {0:?} is already registered")]
    Duplicate(String),
    /// Signal handling could not be installed.
    #[error("cannot handle signals: {0}")]
    Signals(String),
    /// A report about a run, stop or check that is no longer current (or
    /// a service that does not exist).
    #[error("stale report: {0}")]
    Stale(String),
}

/// The controller's state machine.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub(super) config: LifecycleConfig,
    pub(super) bugs: LifecycleBugs,
    pub(super) phase: Phase,
    pub(super) slots: Vec<Slot>,
    /// Services `[0, started)` have been started (registration order).
    pub(super) started: usize,
    /// While starting: the started service being waited for, and until.
    pub(super) ready_by: Option<Instant>,
    /// While stopping: the service stopping now (services below it are
    /// still to stop).
    pub(super) stop_cursor: usize,
    pub(super) signals_seen: u32,
    pub(super) next_id: u64,
    pub(super) rng: u64,
    pub(super) failures: Vec<ServiceFailure>,
    pub(super) report: StopReport,
    pub(super) stats: LifecycleStats,
    pub(super) actions: VecDeque<Action>,
}

impl Lifecycle {
    /// A machine with no service yet; `seed` drives backoff jitter.
    pub fn new(config: LifecycleConfig, seed: u64) -> Self {
        Lifecycle {
            config,
            bugs: LifecycleBugs::default(),
            phase: Phase::Unknown,
            slots: Vec::new(),
            started: 0,
            ready_by: None,
            stop_cursor: 0,
            signals_seen: 0,
            next_id: 1,
            rng: seed,
            failures: Vec::new(),
            report: StopReport::default(),
            stats: LifecycleStats::default(),
            actions: VecDeque::new(),
        }
    }

    /// Switches historical bugs on (the driver passes `env.mutant(..)`).
    pub fn with_bugs(mut self, bugs: LifecycleBugs) -> Self {
        self.bugs = bugs;
        self
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The name of service `service`.
    pub fn service_name(&self, service: usize) -> Option<&str> {
        self.slots.get(service).map(Slot::name)
    }

    /// Failures recorded so far.
    pub fn failures(&self) -> &[ServiceFailure] {
        &self.failures
    }

    /// Counters of restarts and counter resets.
    pub fn stats(&self) -> LifecycleStats {
        self.stats
    }

    /// The stop report (complete once the phase is `Stopped`).
    pub fn report(&self) -> &StopReport {
        &self.report
    }

    /// Ready only while running and once every readiness check has
    /// completed and passed: fails closed until then (D7).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Running
            && self
                .slots
                .iter()
                .filter(|s| s.spec.has_readiness)
                .all(|s| s.ready.unwrap_or(self.bugs.readiness_fails_open))
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Input::Timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Unknown | Phase::Stopped => None,
            Phase::Starting | Phase::Running => {
                self.slots.iter().flat_map(|s| [s.run_timer(), s.check_at]).flatten().chain(self.ready_by).min()
            }
            Phase::Stopping => self.slots.get(self.stop_cursor).and_then(Slot::run_timer),
        }
    }

    /// Applies one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), LifecycleError> {
        use Input as I;
        use Phase as P;
        match (self.phase, input) {
            (P::Unknown, I::Register(spec)) => self.register(spec),
            (P::Starting | P::Running | P::Stopping | P::Stopped, I::Register(spec)) => {
                Err(LifecycleError::RegisterAfterStart(spec.name))
            }
            (P::Unknown, I::Start) => {
                self.begin_starting(now);
                Ok(())
            }
            (P::Starting | P::Running, I::Start) if self.bugs.start_not_idempotent => {
                self.start_again();
                Ok(())
            }
            (P::Starting | P::Running | P::Stopping | P::Stopped, I::Start) => Err(LifecycleError::AlreadyStarted),
            (P::Unknown, I::Stop | I::Signal(_)) => {
                // Nothing runs yet: stopped at once.
                self.finish();
                Ok(())
            }
            (P::Starting | P::Running, I::Stop) => {
                tracing::info!("stop requested: stopping services");
                self.begin_stopping(now);
                Ok(())
            }
            (P::Starting | P::Running, I::Signal(s)) => {
                self.signals_seen += 1;
                tracing::info!(signal = %s, "shutdown signal: stopping services");
                self.begin_stopping(now);
                Ok(())
            }
            (P::Stopping, I::Stop) | (P::Stopped, I::Stop | I::Signal(_)) => Ok(()),
            (P::Stopping, I::Signal(s)) => {
                self.signals_seen += 1;
                if self.signals_seen >= 2 {
                    self.force(s);
                }
                Ok(())
            }
            (P::Starting | P::Running, I::RunEnded { service, run, outcome }) => {
                self.run_ended(now, service, run, outcome)
            }
            (P::Stopping, I::RunEnded { service, run, outcome }) => self.stopping_run_ended(now, service, run, outcome),
            (P::Starting | P::Running, I::StopEnded { service, stop, result }) => {
                self.halt_ended(now, service, stop, result)
            }
            (P::Stopping, I::StopEnded { service, stop, result }) => {
                self.stopping_stop_ended(now, service, stop, result)
            }
            (P::Starting | P::Running, I::Readiness { service, ok }) => self.readiness(now, service, ok),
            (P::Starting | P::Running, I::Liveness { service, ok }) => self.liveness(now, service, ok),
            (P::Unknown | P::Stopped, I::RunEnded { service, .. } | I::StopEnded { service, .. }) => {
                Err(LifecycleError::Stale(format!("service {service}: nothing runs while {:?}", self.phase)))
            }
            // Checks and probes answer late once the stop began: ignored.
            (P::Unknown | P::Stopping | P::Stopped, I::Readiness { .. } | I::Liveness { .. }) => Ok(()),
            (P::Unknown | P::Stopped, I::Timeout) => Ok(()),
            (P::Starting | P::Running, I::Timeout) => {
                self.running_timeout(now);
                Ok(())
            }
            (P::Stopping, I::Timeout) => {
                self.stopping_timeout(now);
                Ok(())
            }
        }
    }

    fn register(&mut self, spec: ServiceSpec) -> Result<(), LifecycleError> {
        if self.slots.iter().any(|s| s.spec.name == spec.name) {
            return Err(LifecycleError::Duplicate(spec.name));
        }
        self.slots.push(Slot::new(spec, self.config.backoff, self.config.intensity));
        Ok(())
    }

    /// A fresh id for a run or a stop.
    pub(super) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Records a failure (never with an empty error).
    pub(super) fn record_failure(&mut self, service: usize, error: RunError, restarting: bool) {
        let name = self.slots[service].name().to_owned();
        tracing::warn!(service = name.as_str(), error = error.message(), restarting, "service failed");
        self.failures.push(ServiceFailure { service: name, error, restarting });
    }

    /// The slot of `service`, or a stale-report error.
    pub(super) fn slot(&mut self, service: usize) -> Result<&mut Slot, LifecycleError> {
        self.slots.get_mut(service).ok_or_else(|| LifecycleError::Stale(format!("no service {service}")))
    }
}
