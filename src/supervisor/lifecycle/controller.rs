//! The lifecycle controller (seed 003): a thin async driver over the
//! [`Lifecycle`] machine. It feeds the machine what happens (calls, run
//! ends, stop returns, check results, signals, timers) and executes its
//! actions through `Env`; it decides nothing itself.
//!
//! Call order: [`Controller::new`] with options, [`Controller::register`]
//! each service, [`Controller::start`] (installs signal handling, so only
//! after the options are applied), then [`Controller::wait`], which returns
//! once everything stopped and every internal task was ended.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::FutureExt;

use super::machine::{Action, Input, Lifecycle, LifecycleBugs, LifecycleConfig, LifecycleError, Phase};
use super::outcome::{RunOutcome, classify};
use super::probe::probe_live;
use super::report::{LifecycleStats, ServiceFailure, StopReport};
use super::service::Service;
use super::signals::{SignalMode, SignalSource};
use crate::env::{AbortHandle, CancellationToken, Env, JoinError, Signal};
use crate::supervisor::backoff::BackoffConfig;
use crate::supervisor::error::{RunError, RunResult};
use crate::supervisor::intensity::Intensity;

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
    /// Deadline of each service's stop.
    pub stop_timeout: Duration,
    /// Period of readiness checks and of the liveness watch of services
    /// that serve in the background.
    pub check_interval: Duration,
    /// How long a started service may take to become ready before the
    /// controller gives up.
    pub ready_timeout: Duration,
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
            ready_timeout: Duration::from_secs(60),
        }
    }
}

impl ControllerOptions {
    fn config(&self) -> LifecycleConfig {
        LifecycleConfig {
            restart_reset_interval: self.restart_reset_interval,
            backoff: self.backoff,
            intensity: self.intensity,
            stop_timeout: self.stop_timeout,
            check_interval: self.check_interval,
            ready_timeout: self.ready_timeout,
        }
    }
}

/// The current run of a service: its context and its task.
struct Run {
    token: CancellationToken,
    task: Option<AbortHandle>,
}

/// A stop function in flight: its id, deadline token and task.
struct StopTask {
    id: u64,
    deadline: CancellationToken,
    task: AbortHandle,
}

struct Inner<E: Env> {
    env: E,
    machine: RefCell<Lifecycle>,
    services: RefCell<Vec<Service<E>>>,
    runs: RefCell<BTreeMap<usize, Run>>,
    stops: RefCell<BTreeMap<usize, StopTask>>,
    /// Every task in flight (a spawned function and its watcher), by id.
    tasks: RefCell<BTreeMap<u64, [AbortHandle; 2]>>,
    next_task: Cell<u64>,
    signal_mode: RefCell<Option<SignalMode>>,
    signal_task: RefCell<Option<AbortHandle>>,
    /// Wakes the timer task: the machine's deadline may have moved.
    wake: tokio::sync::Notify,
    /// Wakes `wait` once finished.
    done: tokio::sync::Notify,
    finished: Cell<bool>,
    timer_started: Cell<bool>,
}

/// The lifecycle controller; cheap to clone.
#[derive(Clone)]
pub struct Controller<E: Env> {
    inner: Rc<Inner<E>>,
}

impl<E: Env> Controller<E> {
    /// A controller with `options`; nothing is installed or started yet.
    pub fn new(env: E, mut options: ControllerOptions) -> Self {
        let mode = std::mem::replace(&mut options.signals, SignalMode::Disabled);
        let bugs = LifecycleBugs {
            start_not_idempotent: env.mutant("start-not-idempotent"),
            immediate_return_is_exit: env.mutant("immediate-return-is-exit"),
            stop_waits_forever: env.mutant("stop-waits-forever"),
            readiness_fails_open: env.mutant("readiness-fails-open"),
        };
        let machine = Lifecycle::new(options.config(), env.random_u64()).with_bugs(bugs);
        Controller {
            inner: Rc::new(Inner {
                env,
                machine: RefCell::new(machine),
                services: RefCell::default(),
                runs: RefCell::default(),
                stops: RefCell::default(),
                tasks: RefCell::default(),
                next_task: Cell::new(0),
                signal_mode: RefCell::new(Some(mode)),
                signal_task: RefCell::new(None),
                wake: tokio::sync::Notify::new(),
                done: tokio::sync::Notify::new(),
                finished: Cell::new(false),
                timer_started: Cell::new(false),
            }),
        }
    }

    /// Adds a service (before `start`); started in registration order,
    /// each once the one before it is ready; stopped in reverse.
    pub fn register(&self, service: Service<E>) -> Result<(), LifecycleError> {
        let inner = &self.inner;
        inner.machine.borrow_mut().handle(inner.env.now(), Input::Register(service.spec()))?;
        if service.start.is_none() || service.stop.is_none() {
            tracing::debug!(service = service.name.as_str(), "missing start or stop: defaulted to a no-op");
        }
        inner.services.borrow_mut().push(service);
        Ok(())
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.inner.machine.borrow().phase()
    }

    /// Starts the services once. A second call starts nothing and returns
    /// [`LifecycleError::AlreadyStarted`].
    pub fn start(&self) -> Result<(), LifecycleError> {
        let inner = &self.inner;
        if self.phase() == Phase::Unknown {
            // Signal handling only now: the options are applied (D6).
            let mode = inner.signal_mode.borrow_mut().take().unwrap_or(SignalMode::Disabled);
            let source = mode.install(&inner.env).map_err(|e| LifecycleError::Signals(e.to_string()))?;
            if let Some(source) = source {
                let task = inner.env.spawn("controller.signals", signal_loop(inner.clone(), source));
                *inner.signal_task.borrow_mut() = Some(task.abort_handle());
            }
        }
        inner.machine.borrow_mut().handle(inner.env.now(), Input::Start)?;
        if !inner.timer_started.replace(true) {
            drop(inner.env.spawn("controller.timer", timer_loop(inner.clone())));
        }
        inner.pump();
        Ok(())
    }

    /// Stops handling signals: their default disposition is back.
    pub fn disable_signals(&self) {
        let inner = &self.inner;
        if let Some(mode) = inner.signal_mode.borrow_mut().as_mut() {
            *mode = SignalMode::Disabled;
        }
        if let Some(task) = inner.signal_task.borrow_mut().take() {
            task.abort();
        }
    }

    /// Begins the stop sequence (as the first signal does).
    pub fn stop(&self) {
        self.inner.feed(Input::Stop);
    }

    /// Ready only once every service started and every readiness check has
    /// completed and passed: fails closed until then (D7).
    pub fn is_ready(&self) -> bool {
        self.inner.machine.borrow().is_ready()
    }

    /// Whether every liveness probe passes; a panicking probe fails.
    pub fn is_live(&self) -> bool {
        let probes: Vec<_> =
            self.inner.services.borrow().iter().map(|s| (s.name.clone(), s.liveness.clone())).collect();
        probes.iter().all(|(name, probe)| probe_live(name, probe.as_ref()))
    }

    /// Failures recorded so far.
    pub fn failures(&self) -> Vec<ServiceFailure> {
        self.inner.machine.borrow().failures().to_vec()
    }

    /// Counters of restarts and restart-counter resets.
    pub fn stats(&self) -> LifecycleStats {
        self.inner.machine.borrow().stats()
    }

    /// Waits until the controller stopped (after a stop request, a signal
    /// or a fatal failure): every service stopped in reverse start order
    /// under its deadline, every internal task ended, signal dispositions
    /// restored. Returns the report; later callers get it too.
    pub async fn wait(&self) -> StopReport {
        loop {
            let done = self.inner.done.notified();
            if self.inner.finished.get() {
                return self.inner.machine.borrow().report().clone();
            }
            done.await;
        }
    }
}

impl<E: Env> Inner<E> {
    /// Feeds `input` to the machine and executes what it decided.
    fn feed(self: &Rc<Self>, input: Input) {
        let r = self.machine.borrow_mut().handle(self.env.now(), input);
        if let Err(e) = r {
            tracing::debug!(error = %e, "input refused");
        }
        self.pump();
    }

    /// Executes the machine's actions until it has none left.
    fn pump(self: &Rc<Self>) {
        loop {
            let Some(action) = self.machine.borrow_mut().poll_action() else { break };
            match action {
                Action::StartRun { service, run } => self.start_run(service, run),
                Action::CancelRun { service } => {
                    if let Some(r) = self.runs.borrow().get(&service) {
                        r.token.cancel();
                    }
                }
                Action::AbortRun { service } => {
                    if let Some(task) = self.runs.borrow().get(&service).and_then(|r| r.task.as_ref()) {
                        task.abort();
                    }
                }
                Action::RunStop { service, stop } => self.run_stop(service, stop),
                Action::AbortStop { service, stop } => {
                    let mut stops = self.stops.borrow_mut();
                    if stops.get(&service).is_some_and(|s| s.id == stop)
                        && let Some(s) = stops.remove(&service)
                    {
                        s.deadline.cancel();
                        s.task.abort();
                    }
                }
                Action::CheckReadiness { service } => self.check_readiness(service),
                Action::ProbeLiveness { service } => {
                    let (name, probe) = {
                        let services = self.services.borrow();
                        (services[service].name.clone(), services[service].liveness.clone())
                    };
                    let ok = probe_live(&name, probe.as_ref());
                    let r = self.machine.borrow_mut().handle(self.env.now(), Input::Liveness { service, ok });
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "probe result refused");
                    }
                }
                Action::Finish => self.finish(),
            }
        }
        self.wake.notify_one();
    }

    /// Spawns `fut` as its own task (so a panic is caught there) and a
    /// watcher that hands its result to `then`; both end at finish.
    fn spawn_watched<T: 'static>(
        self: &Rc<Self>,
        name: &str,
        fut: impl Future<Output = T> + 'static,
        then: impl FnOnce(&Rc<Self>, Result<T, JoinError>) + 'static,
    ) -> AbortHandle {
        let id = self.next_task.get();
        self.next_task.set(id + 1);
        let task = self.env.spawn(name, fut);
        let abort = task.abort_handle();
        let me = self.clone();
        let watcher = self.env.spawn("controller.watch", async move {
            let result = task.await;
            me.tasks.borrow_mut().remove(&id);
            then(&me, result);
        });
        self.tasks.borrow_mut().insert(id, [abort.clone(), watcher.abort_handle()]);
        abort
    }

    fn start_run(self: &Rc<Self>, service: usize, run: u64) {
        let (name, start, valid) = {
            let s = &self.services.borrow()[service];
            (s.name.clone(), s.start.clone(), s.valid_error.clone())
        };
        let token = CancellationToken::new();
        let Some(start) = start else {
            // No start function: a clean start that serves nothing.
            self.runs.borrow_mut().insert(service, Run { token, task: None });
            let input = Input::RunEnded { service, run, outcome: RunOutcome::Clean };
            let r = self.machine.borrow_mut().handle(self.env.now(), input);
            if let Err(e) = r {
                tracing::debug!(error = %e, "run end refused");
            }
            return;
        };
        let fut = start(self.env.clone(), token.clone());
        let t2 = token.clone();
        let task = self.spawn_watched(&name, fut, move |me, result: Result<RunResult, JoinError>| {
            let outcome = classify(result, t2.is_cancelled(), valid.as_deref());
            me.feed(Input::RunEnded { service, run, outcome });
        });
        self.runs.borrow_mut().insert(service, Run { token, task: Some(task) });
    }

    fn run_stop(self: &Rc<Self>, service: usize, stop: u64) {
        let Some(f) = self.services.borrow()[service].stop.clone() else { return };
        let deadline = CancellationToken::new();
        let fut = f(self.env.clone(), deadline.clone());
        let task = self.spawn_watched("controller.stop", fut, move |me, result: Result<RunResult, JoinError>| {
            let result = match result {
                Ok(r) => r,
                Err(JoinError::Panicked(m)) => Err(RunError::new(format!("stop panicked: {m}"))),
                Err(JoinError::Cancelled) => return,
            };
            let mut stops = me.stops.borrow_mut();
            if stops.get(&service).is_some_and(|s| s.id == stop) {
                stops.remove(&service);
            }
            drop(stops);
            me.feed(Input::StopEnded { service, stop, result });
        });
        self.stops.borrow_mut().insert(service, StopTask { id: stop, deadline, task });
    }

    fn check_readiness(self: &Rc<Self>, service: usize) {
        let (name, check) = {
            let s = &self.services.borrow()[service];
            (s.name.clone(), s.readiness.clone())
        };
        let Some(check) = check else { return };
        let fut = check(self.env.clone());
        self.spawn_watched("controller.readiness-check", fut, move |me, result| {
            let ok = match result {
                Ok(ok) => ok,
                Err(JoinError::Panicked(m)) => {
                    tracing::warn!(service = name.as_str(), panic = m.as_str(), "readiness check panicked");
                    false
                }
                Err(JoinError::Cancelled) => return,
            };
            me.feed(Input::Readiness { service, ok });
        });
    }

    /// Everything stopped: signal handling ends (the default disposition
    /// is back), every task is ended, waiters get the report.
    fn finish(self: &Rc<Self>) {
        self.finished.set(true);
        if let Some(task) = self.signal_task.borrow_mut().take() {
            task.abort();
        }
        for [task, watcher] in std::mem::take(&mut *self.tasks.borrow_mut()).into_values() {
            task.abort();
            watcher.abort();
        }
        for s in std::mem::take(&mut *self.stops.borrow_mut()).into_values() {
            s.deadline.cancel();
            s.task.abort();
        }
        for r in std::mem::take(&mut *self.runs.borrow_mut()).into_values() {
            if let Some(task) = r.task {
                task.abort();
            }
        }
        self.done.notify_waiters();
    }
}

/// Feeds the process's (or the channel's) signals to the machine until it
/// is aborted, which drops the source and restores the disposition.
async fn signal_loop<E: Env>(inner: Rc<Inner<E>>, mut source: SignalSource<E>) {
    while let Some(s) = source.next(&inner.env).await {
        if crate::buggify!(inner.env, "supervisor.lifecycle.late_signal") {
            inner.env.sleep(inner.env.random_duration(std::time::Duration::from_millis(20))).await;
        }
        inner.feed(Input::Signal(s));
    }
}

/// Sleeps until the machine's next deadline (or until woken: it may have
/// moved) and feeds the timeout; ends once the machine finished.
async fn timer_loop<E: Env>(inner: Rc<Inner<E>>) {
    let spin = inner.env.mutant("busy-spin-after-cancel");
    loop {
        if inner.finished.get() {
            return;
        }
        let woken = inner.wake.notified();
        if spin && inner.machine.borrow().phase() == Phase::Stopping {
            // The planted bug (D4): the cancelled branch is never disabled,
            // so the loop spins for as long as the stop takes.
            inner.env.yield_now().await;
            continue;
        }
        let mut deadline = inner.machine.borrow().poll_timeout();
        // A spurious early wake-up: the machine acts only on what is due.
        if let Some(d) = deadline
            && crate::buggify!(inner.env, "supervisor.lifecycle.spurious_wake")
        {
            let now = inner.env.now();
            deadline = Some(now + inner.env.random_duration(d.saturating_duration_since(now)));
        }
        let env = inner.env.clone();
        let mut timer = std::pin::pin!(
            async move {
                match deadline {
                    Some(d) => env.sleep_until(d).await,
                    None => std::future::pending().await,
                }
            }
            .fuse()
        );
        let mut woken = std::pin::pin!(woken.fuse());
        futures::select_biased! {
            () = woken => {}
            () = timer => inner.feed(Input::Timeout),
        }
    }
}
