//! The lifecycle controller (seed 003): registers services, starts them
//! once, supervises them, reports readiness and liveness, and stops them in
//! reverse order under deadlines when asked to or signalled.
//!
//! Call order: [`Controller::new`] with options, [`Controller::register`]
//! each service, [`Controller::start`] (installs signal handling, so only
//! after the options are applied), then [`Controller::wait`], which returns
//! once everything stopped and every internal task ended.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc;

use super::readiness;
use super::service::Service;
use super::service_loop;
use super::signals::{self, SignalMode};
use super::stop::{self, StopReport};
use crate::env::{AbortHandle, CancellationToken, Env, JoinHandle, Signal};
use crate::supervisor::backoff::BackoffConfig;
use crate::supervisor::error::RunError;
use crate::supervisor::intensity::{Intensity, IntensityWindow};

/// How the controller behaves.
pub struct ControllerOptions {
    /// Where shutdown signals come from.
    pub signals: SignalMode,
    /// A service healthy this long has its restart count reset.
    pub restart_reset_interval: Duration,
    /// Delays between restarts of one service.
    pub backoff: BackoffConfig,
    /// Restarts allowed per service; one more fails the controller.
    pub intensity: Intensity,
    /// Deadline of each stop function.
    pub stop_timeout: Duration,
    /// Period of readiness checks and of the liveness watch of services
    /// that serve in the background.
    pub check_interval: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            signals: SignalMode::Os(vec![Signal::Term, Signal::Int]),
            restart_reset_interval: Duration::from_secs(30),
            backoff: BackoffConfig::RECOVER,
            intensity: Intensity::DEFAULT,
            stop_timeout: Duration::from_secs(10),
            check_interval: Duration::from_secs(1),
        }
    }
}

/// Where the controller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not started.
    Unknown,
    /// Started.
    Running,
    /// Stopping services.
    Stopping,
    /// Everything stopped.
    Stopped,
}

/// A service failure, as reported on the error channel: never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    /// The service.
    pub service: String,
    /// What went wrong.
    pub error: RunError,
    /// Whether it will be restarted.
    pub restarting: bool,
}

/// Refused calls.
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
}

pub(crate) struct Slot<E: Env> {
    pub(crate) service: Service<E>,
    /// The context of its runs.
    pub(crate) token: CancellationToken,
    /// Last readiness result; `None` until the first check completed.
    pub(crate) ready: Cell<Option<bool>>,
    pub(crate) window: RefCell<IntensityWindow>,
}

pub(crate) struct Inner<E: Env> {
    pub(crate) env: E,
    pub(crate) options: ControllerOptions,
    pub(crate) slots: RefCell<Vec<Rc<Slot<E>>>>,
    pub(crate) phase: Cell<Phase>,
    /// Cancelled to begin the stop sequence.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled by a second signal: exit now.
    pub(crate) force: CancellationToken,
    pub(crate) forced_by: Cell<Option<Signal>>,
    /// Restart intensity exceeded: exit non-zero.
    pub(crate) fatal: Cell<bool>,
    /// Cancelled when `wait` finished: the signal task ends.
    pub(crate) finished: CancellationToken,
    /// Taken by `start` to install signal handling.
    pub(crate) signal_mode: RefCell<Option<SignalMode>>,
    /// Shutdown signals received so far.
    pub(crate) signals_seen: Cell<u32>,
    /// Cancelled to stop handling signals (default disposition again).
    pub(crate) signals_off: CancellationToken,
    pub(crate) errs: RefCell<Option<mpsc::UnboundedSender<ServiceFailure>>>,
    pub(crate) failures: RefCell<Vec<ServiceFailure>>,
    /// Every task the controller spawned.
    pub(crate) tasks: RefCell<Vec<AbortHandle>>,
    pub(crate) loops: RefCell<Vec<JoinHandle<()>>>,
    pub(crate) report: RefCell<Option<StopReport>>,
    /// `wait` is running: later callers wait for its report.
    pub(crate) waiting: Cell<bool>,
}

impl<E: Env> Inner<E> {
    /// All spawning goes through here, so stop can end every task.
    pub(crate) fn spawn(&self, name: &str, fut: impl std::future::Future<Output = ()> + 'static) -> JoinHandle<()> {
        self.spawn_value(name, fut)
    }

    /// [`Inner::spawn`] for a future with an output.
    pub(crate) fn spawn_value<T: 'static>(
        &self,
        name: &str,
        fut: impl std::future::Future<Output = T> + 'static,
    ) -> JoinHandle<T> {
        let h = self.env.spawn(name, fut);
        let mut tasks = self.tasks.borrow_mut();
        tasks.retain(|t| !t.is_aborted());
        tasks.push(h.abort_handle());
        h
    }

    pub(crate) fn report_failure(&self, f: ServiceFailure) {
        tracing::warn!(
            service = f.service.as_str(),
            error = f.error.message(),
            restarting = f.restarting,
            "service failed"
        );
        if let Some(tx) = self.errs.borrow().as_ref() {
            let _ = tx.unbounded_send(f);
        }
    }
}

/// The lifecycle controller.
#[derive(Clone)]
pub struct Controller<E: Env> {
    pub(crate) inner: Rc<Inner<E>>,
}

impl<E: Env> Controller<E> {
    /// A controller with `options`; nothing is installed or started yet.
    pub fn new(env: E, mut options: ControllerOptions) -> Self {
        let mode = std::mem::replace(&mut options.signals, SignalMode::Disabled);
        Controller {
            inner: Rc::new(Inner {
                env,
                options,
                slots: RefCell::default(),
                phase: Cell::new(Phase::Unknown),
                shutdown: CancellationToken::new(),
                force: CancellationToken::new(),
                forced_by: Cell::new(None),
                fatal: Cell::new(false),
                finished: CancellationToken::new(),
                signal_mode: RefCell::new(Some(mode)),
                signals_seen: Cell::new(0),
                signals_off: CancellationToken::new(),
                errs: RefCell::new(None),
                failures: RefCell::default(),
                tasks: RefCell::default(),
                loops: RefCell::default(),
                report: RefCell::new(None),
                waiting: Cell::new(false),
            }),
        }
    }

    /// Adds a service (before `start`); started in registration order,
    /// stopped in reverse.
    pub fn register(&self, service: Service<E>) -> Result<(), LifecycleError> {
        if self.inner.phase.get() != Phase::Unknown {
            return Err(LifecycleError::RegisterAfterStart(service.name));
        }
        let mut slots = self.inner.slots.borrow_mut();
        if slots.iter().any(|s| s.service.name == service.name) {
            return Err(LifecycleError::Duplicate(service.name));
        }
        if service.start.is_none() || service.stop.is_none() {
            tracing::debug!(service = service.name.as_str(), "missing start or stop: defaulted to a no-op");
        }
        slots.push(Rc::new(Slot {
            token: self.inner.shutdown.child_token(),
            ready: Cell::new(None),
            window: RefCell::new(IntensityWindow::new(self.inner.options.intensity)),
            service,
        }));
        Ok(())
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.inner.phase.get()
    }

    /// Starts every service once. A second call starts nothing and returns
    /// [`LifecycleError::AlreadyStarted`].
    pub fn start(&self) -> Result<(), LifecycleError> {
        let inner = &self.inner;
        if inner.phase.get() != Phase::Unknown && !inner.env.mutant("start-not-idempotent") {
            return Err(LifecycleError::AlreadyStarted);
        }
        inner.phase.set(Phase::Running);
        // Signal handling only now: the options are applied (D6).
        signals::install(inner).map_err(|e| LifecycleError::Signals(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded();
        *inner.errs.borrow_mut() = Some(tx);
        let errors = inner.spawn("controller.errors", service_loop::handle_errors(inner.clone(), rx));
        inner.loops.borrow_mut().push(errors);
        let slots: Vec<_> = inner.slots.borrow().clone();
        for slot in slots {
            tracing::info!(service = slot.service.name.as_str(), "starting service");
            let h = inner.spawn("controller.service", service_loop::run(inner.clone(), slot.clone()));
            inner.loops.borrow_mut().push(h);
            if slot.service.readiness.is_some() {
                drop(inner.spawn("controller.readiness", readiness::watch(inner.clone(), slot)));
            }
        }
        Ok(())
    }

    /// Stops handling signals: their default disposition is back.
    pub fn disable_signals(&self) {
        self.inner.signals_off.cancel();
    }

    /// Begins the stop sequence (as the first signal does).
    pub fn stop(&self) {
        self.inner.shutdown.cancel();
    }

    /// Ready only once every readiness check has completed and passed:
    /// fails closed until then (D7).
    pub fn is_ready(&self) -> bool {
        let inner = &self.inner;
        inner.phase.get() == Phase::Running
            && inner.slots.borrow().iter().filter(|s| s.service.readiness.is_some()).all(|s| match s.ready.get() {
                Some(r) => r,
                None => inner.env.mutant("readiness-fails-open"),
            })
    }

    /// Whether every liveness probe passes; a panicking probe fails.
    pub fn is_live(&self) -> bool {
        self.inner.slots.borrow().iter().all(|s| readiness::probe_live(&s.service))
    }

    /// Failures reported so far.
    pub fn failures(&self) -> Vec<ServiceFailure> {
        self.inner.failures.borrow().clone()
    }

    /// Waits for a stop request, a signal or a fatal failure, stops every
    /// service in reverse registration order (each under its deadline),
    /// ends every internal task, restores signal dispositions, and reports.
    pub async fn wait(&self) -> StopReport {
        if self.inner.waiting.replace(true) {
            self.inner.finished.cancelled().await;
            return self.inner.report.borrow().clone().unwrap_or_default();
        }
        let r = stop::run(self.inner.clone()).await;
        *self.inner.report.borrow_mut() = Some(r.clone());
        r
    }
}
