//! The thin async driver of [`Manager`]: executes its actions through
//! `Env` (spawn, signal process groups, readiness checks, output lines)
//! and feeds it child exits, readiness, signals, commands and timeouts.
//!
//! [`start`] binds the services' listeners and starts handling SIGTERM
//! and SIGINT; the future it returns supervises until the manager
//! finishes and resolves to the process exit status. [`Handle`] is how the
//! edges (control socket, admin HTTP) read status and send commands.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};

use super::config::{Config, Readiness, ServiceConfig};
use super::handoff::{self, CoordinatorProgram};
use super::manager::{Action, Command, CommandError, Manager, Mutants, Upgraded};
use super::readiness::wait_ready;
use super::status::ServiceStatus;
use crate::env::{AbortHandle, Addr, Env, ExitStatus, OutputStream, ProcessSpec, Signal, SpawnOptions};

/// How long the driver waits, after a forced stop, for the processes it
/// killed to be reaped (so none is left as a zombie of init).
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a run needs beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Variables every service inherits (before its own `env`).
    pub base_vars: Vec<(String, String)>,
    /// Send `WATCHDOG=1` to warden's own service manager this often.
    pub watchdog: Option<Duration>,
}

enum Request {
    Command(String, Command, oneshot::Sender<Result<(), CommandError>>),
    Upgrade(String, oneshot::Sender<Result<Upgraded, CommandError>>),
}

struct Shared {
    status: RefCell<Vec<ServiceStatus>>,
    running: Cell<bool>,
    stopping: Cell<bool>,
}

/// Reads status and sends commands to a running manager; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    shared: Rc<Shared>,
    requests: mpsc::UnboundedSender<Request>,
}

impl Handle {
    /// Every service's status, as of the last step.
    pub fn status(&self) -> Vec<ServiceStatus> {
        self.shared.status.borrow().clone()
    }

    /// Whether the supervision loop runs (`/livez`).
    pub fn is_running(&self) -> bool {
        self.shared.running.get()
    }

    /// Whether warden is stopping.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.get()
    }

    /// `warden start|stop|restart NAME`.
    pub async fn command(&self, name: &str, cmd: Command) -> Result<(), CommandError> {
        let (tx, rx) = oneshot::channel();
        self.requests.unbounded_send(Request::Command(name.to_owned(), cmd, tx)).map_err(|_| CommandError::Stopping)?;
        rx.await.unwrap_or(Err(CommandError::Stopping))
    }

    /// `warden upgrade NAME`: a handoff of the service to a new process.
    pub async fn upgrade(&self, name: &str) -> Result<Upgraded, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.requests.unbounded_send(Request::Upgrade(name.to_owned(), tx)).map_err(|_| CommandError::Stopping)?;
        rx.await.unwrap_or(Err(CommandError::Stopping))
    }
}

enum Event {
    Exited(usize, u64, ExitStatus),
    Ready(usize, u64),
}

struct Instance<E: Env> {
    id: u64,
    child: Rc<E::Child>,
    tasks: Vec<AbortHandle>,
}

struct Driver<E: Env> {
    env: E,
    config: Config,
    m: Manager,
    opts: RunOptions,
    coordinator: Option<CoordinatorProgram>,
    running: Vec<Option<Instance<E>>>,
    listeners: Vec<Vec<E::Fd>>,
    events: mpsc::UnboundedSender<Event>,
    shared: Rc<Shared>,
}

/// Binds the listeners and handles SIGTERM/SIGINT; returns the handle and
/// the supervision future (its output is the process exit status).
pub fn start<E: Env>(
    env: E,
    config: Config,
    opts: RunOptions,
) -> io::Result<(Handle, impl std::future::Future<Output = i32>)> {
    start_with(env, config, opts, None)
}

/// [`start`], with the program that coordinates the handoffs of services
/// with `handoff = true` (see `handoff.rs`); without one such a service
/// runs its command directly and cannot be upgraded.
pub fn start_with<E: Env>(
    env: E,
    config: Config,
    opts: RunOptions,
    coordinator: Option<CoordinatorProgram>,
) -> io::Result<(Handle, impl std::future::Future<Output = i32>)> {
    let mut listeners = Vec::with_capacity(config.services.len());
    for s in &config.services {
        let mut fds = Vec::new();
        for l in &s.listen {
            let listener = env.listen(&Addr::Tcp(l.addr)).map_err(|e| {
                io::Error::new(e.kind(), format!("service {:?}: cannot listen on {}: {e}", s.name, l.addr))
            })?;
            fds.push(env.listener_into_fd(listener));
        }
        listeners.push(fds);
    }
    let signals = env.handle_signals(&[Signal::Term, Signal::Int])?;
    let mutants = Mutants {
        stop_unordered: env.mutant("service-stop-unordered"),
        orphan_on_exit: env.mutant("service-orphan-on-exit"),
        on_failure_restarts_clean_exit: env.mutant("service-on-failure-restarts-clean-exit"),
    };
    let m = Manager::new(&config, mutants);
    let shared =
        Rc::new(Shared { status: RefCell::new(m.status()), running: Cell::new(true), stopping: Cell::new(false) });
    let (req_tx, req_rx) = mpsc::unbounded();
    let (ev_tx, ev_rx) = mpsc::unbounded();
    let running = config.services.iter().map(|_| None).collect();
    let driver =
        Driver { env, config, m, opts, coordinator, running, listeners, events: ev_tx, shared: shared.clone() };
    Ok((Handle { shared, requests: req_tx }, driver.run(signals, ev_rx, req_rx)))
}

impl<E: Env> Driver<E> {
    async fn run(
        mut self,
        mut signals: E::Signals,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut requests: mpsc::UnboundedReceiver<Request>,
    ) -> i32 {
        let env = self.env.clone();
        self.m.handle_start(env.now());
        let mut code = None;
        let mut notified_ready = false;
        let mut next_watchdog = self.opts.watchdog.map(|w| env.now() + w);
        loop {
            while let Some(a) = self.m.poll_action() {
                let point = match a {
                    Action::Spawn { .. } => Some("service.driver.after_spawn"),
                    Action::Signal { .. } => Some("service.driver.after_signal"),
                    Action::Forget { .. } | Action::Finished { .. } => None,
                };
                if let Some(c) = self.execute(a) {
                    code = Some(c);
                }
                if let Some(point) = point {
                    crate::crash_point!(env, point).await;
                }
            }
            *self.shared.status.borrow_mut() = self.m.status();
            self.shared.stopping.set(self.m.is_stopping());
            if !notified_ready {
                notified_ready = true;
                self.notify("READY=1");
            }
            if let Some(code) = code {
                self.shared.running.set(false);
                self.reap_killed().await;
                tracing::info!(code, "every service stopped");
                return code;
            }
            // A real supervisor can be preempted here, between deciding and
            // learning what happened meanwhile (DESIGN.md rule 4).
            env.yield_now().await;
            let deadline = [self.m.poll_timeout(), next_watchdog].into_iter().flatten().min();
            let sleep = match deadline {
                Some(d) => env.sleep_until(d).boxed_local(),
                None => std::future::pending().boxed_local(),
            };
            let was_stopping = self.m.is_stopping();
            futures::select_biased! {
                sig = env.next_signal(&mut signals).fuse() => self.m.handle_signal(env.now(), sig),
                ev = events.next() => match ev {
                    Some(Event::Exited(svc, id, status)) => {
                        self.exited(svc, id, status);
                        crate::crash_point!(env, "service.driver.after_exit").await;
                    }
                    Some(Event::Ready(svc, id)) => self.m.handle_ready(env.now(), svc, id),
                    None => {}
                },
                req = requests.next() => match req {
                    Some(Request::Command(name, cmd, reply)) => {
                        let _ = reply.send(self.m.handle_command(env.now(), &name, cmd));
                    }
                    Some(Request::Upgrade(name, reply)) => self.upgrade(&name, reply),
                    None => {}
                },
                () = sleep.fuse() => {
                    let now = env.now();
                    if next_watchdog.is_some_and(|w| w <= now) {
                        self.notify("WATCHDOG=1");
                        next_watchdog = self.opts.watchdog.map(|w| now + w);
                    }
                    self.m.handle_timeout(now);
                }
            }
            if !was_stopping && self.m.is_stopping() {
                self.notify("STOPPING=1");
            }
        }
    }

    fn notify(&self, state: &str) {
        if let Err(e) = self.env.notify(state) {
            tracing::warn!(state, error = %e, "cannot notify the service manager");
        }
    }

    /// Runs one action; `Some(code)` when the manager finished.
    fn execute(&mut self, action: Action) -> Option<i32> {
        match action {
            Action::Spawn { svc, instance } => {
                let now = self.env.now();
                let pid = self.spawn(svc, instance);
                self.m.handle_spawned(now, svc, instance, pid);
            }
            Action::Signal { svc, instance, signal } => {
                if let Some(run) = self.running[svc].as_ref().filter(|r| r.id == instance)
                    && let Err(e) = self.env.signal_group(&run.child, signal)
                    && e.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(service = self.config.services[svc].name.as_str(), signal = %signal, error = %e, "cannot signal");
                }
            }
            Action::Forget { svc } => {
                if let Some(run) = self.running[svc].take() {
                    run.tasks.iter().for_each(AbortHandle::abort);
                }
            }
            Action::Finished { code } => return Some(code),
        }
        None
    }

    fn exited(&mut self, svc: usize, id: u64, status: ExitStatus) {
        if let Some(run) = self.running[svc].take_if(|r| r.id == id) {
            // Whatever the service forked and left in its group goes too.
            let _ = self.env.signal_group(&run.child, Signal::Kill);
            run.tasks.iter().for_each(AbortHandle::abort);
        }
        let random = self.env.random_u64();
        self.m.handle_exited(self.env.now(), svc, id, status, random);
    }

    /// Runs the handoff of `name` (a task: it takes as long as the
    /// handoff) and answers `reply` with its outcome.
    fn upgrade(&self, name: &str, reply: oneshot::Sender<Result<Upgraded, CommandError>>) {
        let svc = match self.m.handle_upgrade(name) {
            Ok(svc) if self.coordinator.is_some() => svc,
            Ok(_) => {
                let why = "this warden runs no handoff coordinator".to_owned();
                let _ = reply.send(Err(CommandError::UpgradeRefused(why)));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let (env, cfg) = (self.env.clone(), self.config.services[svc].clone());
        let dir = handoff::state_dir(&self.config, &cfg);
        drop(self.env.spawn("service.upgrade", async move {
            let _ = reply.send(handoff::upgrade(&env, &dir, &cfg).await);
        }));
    }

    fn spawn(&mut self, svc: usize, id: u64) -> Result<u32, String> {
        let cfg = &self.config.services[svc];
        let vars = self.vars(cfg);
        // A handoff service runs under its coordinator, which starts the
        // command (and hands the service over on `warden upgrade`).
        let coordinator = self.coordinator.as_ref().filter(|_| cfg.handoff);
        let mut spec = match coordinator {
            Some(c) => {
                let mut spec = ProcessSpec::new(c.program.clone());
                spec.args = handoff::coordinator_args(c, &handoff::state_dir(&self.config, cfg), cfg);
                spec
            }
            None => {
                let mut spec = ProcessSpec::new(cfg.command[0].clone());
                spec.args = cfg.command[1..].to_vec();
                spec
            }
        };
        spec.vars = vars.clone();
        for (i, fd) in self.listeners[svc].iter().enumerate() {
            let dup = self.env.dup_fd(fd).map_err(|e| format!("cannot pass listener: {e}"))?;
            spec.fds.push((dup, 3 + i as i32));
        }
        if !cfg.listen.is_empty() {
            spec.vars.push(("LISTEN_FDS".to_owned(), cfg.listen.len().to_string()));
            let names: Vec<&str> = cfg.listen.iter().map(|l| l.name.as_str()).collect();
            spec.vars.push(("LISTEN_FDNAMES".to_owned(), names.join(":")));
        }
        let opts = SpawnOptions {
            working_dir: Some(cfg.working_dir.clone()),
            new_process_group: true,
            capture_output: true,
            search_path: true,
            notify: cfg.ready == Readiness::Notify,
            pid_var: (!cfg.listen.is_empty()).then(|| "LISTEN_PID".to_owned()),
            kill_with_parent: true,
            // The coordinator passes the listeners on to processes that
            // accept on them while it restarts: their mode stays as is.
            blocking_fds: coordinator.is_none(),
        };
        let child = Rc::new(self.env.spawn_with(spec, opts).map_err(|e| format!("{}: {e}", cfg.command[0]))?);
        let pid = self.env.child_pid(&child);
        tracing::info!(service = cfg.name.as_str(), pid, "started");
        let mut tasks = Vec::new();
        let (env, tx) = (self.env.clone(), self.events.clone());
        let wait = env.wait_child(&child);
        tasks.push(
            env.spawn("service.wait", async move {
                let status = wait.await;
                let _ = tx.unbounded_send(Event::Exited(svc, id, status));
            })
            .abort_handle(),
        );
        let (env, c, name) = (self.env.clone(), child.clone(), cfg.name.clone());
        // Not aborted at exit: lines still in the pipe are logged.
        drop(env.clone().spawn("service.output", async move {
            while let Some(line) = env.next_output_line(&c).await {
                let stream = match line.stream {
                    OutputStream::Stdout => "stdout",
                    OutputStream::Stderr => "stderr",
                };
                tracing::info!(target: "warden::service::output", service = name.as_str(), stream, "{}", line.text);
            }
        }));
        if cfg.ready != Readiness::None {
            let (env, c, tx, svc_cfg) = (self.env.clone(), child.clone(), self.events.clone(), cfg.clone());
            tasks.push(
                env.clone()
                    .spawn("service.ready", async move {
                        wait_ready(env, svc_cfg, &c, vars).await;
                        let _ = tx.unbounded_send(Event::Ready(svc, id));
                    })
                    .abort_handle(),
            );
        }
        self.running[svc] = Some(Instance { id, child, tasks });
        Ok(pid)
    }

    fn vars(&self, cfg: &ServiceConfig) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> =
            self.opts.base_vars.iter().filter(|(k, _)| !cfg.env.contains_key(k)).cloned().collect();
        vars.extend(cfg.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    /// After a forced stop: waits (bounded) until every killed process was
    /// reaped, so none is left behind as a zombie.
    async fn reap_killed(&mut self) {
        let env = self.env.clone();
        let deadline = env.now() + REAP_TIMEOUT;
        for run in self.running.iter_mut().filter_map(Option::take) {
            let wait = env.wait_child(&run.child);
            if env.timeout(deadline.saturating_duration_since(env.now()), wait).await.is_err() {
                tracing::error!(pid = env.child_pid(&run.child), "a killed service was not reaped in time");
            }
            run.tasks.iter().for_each(AbortHandle::abort);
        }
    }
}
