//! The coordinator's async driver: a thin shell that executes the
//! machine's actions through [`Env`] and feeds back what happens (session
//! frames, exits, admin requests) as events.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::future::{Either, select};

use super::admin::{parse_request, read_line, reply_line};
use super::fdstore::FdStore;
use super::machine::Coordinator;
use super::types::{
    CoordinatorAction as A, CoordinatorBugs, CoordinatorConfig, CoordinatorEvent as Ev, GenSpec, HandoffError, Outcome,
    RequestId,
};
use super::vars;
use crate::env::{Addr, Env, JoinHandle, ProcessSpec, Signal, SpawnOptions};
use crate::handoff::id::{HandoffId, Role, Token};
use crate::handoff::journal::Journal;
use crate::handoff::session::SessionId;
use crate::handoff::wire::{Frame, FrameReader, PROTO_MIN, encode};
use crate::{buggify, crash_point};

/// Everything S needs to run.
#[derive(Debug, Clone)]
pub struct CoordinatorSetup {
    /// Timings.
    pub config: CoordinatorConfig,
    /// Holds the journal; S locks it (one S at a time).
    pub state_dir: PathBuf,
    /// Holds one handoff socket per generation (`<token>.sock`).
    pub ctl_dir: PathBuf,
    /// Where operators ask for handoffs.
    pub admin: Addr,
    /// The service's listeners: names and addresses.
    pub listeners: Vec<(String, Addr)>,
    /// The generation to start when there is no journal.
    pub first: GenSpec,
    /// Extra variables every generation gets.
    pub vars: Vec<(String, String)>,
}

/// What a host process gives S beyond its setup: listeners it bound
/// already, and how generations are spawned.
pub struct CoordinatorHost<E: Env> {
    /// Listeners the host holds, by name (`warden run` binds a service's
    /// `listen` sockets and passes them at spawn): the fd store starts with
    /// these instead of binding their addresses.
    pub held: Vec<(String, E::Fd)>,
    /// How generations are spawned (the default is
    /// [`ProcessEnv::spawn_process`](crate::env::ProcessEnv::spawn_process)'s).
    pub spawn: SpawnOptions,
}

impl<E: Env> Default for CoordinatorHost<E> {
    fn default() -> Self {
        CoordinatorHost { held: Vec::new(), spawn: SpawnOptions::default() }
    }
}

/// Exit code of S when it cannot lock its state directory.
pub const EXIT_LOCKED: i32 = 73;

/// Journal writes are tried this many times before the machine hears of a failure.
const JOURNAL_TRIES: u32 = 3;

type Responders = Rc<RefCell<BTreeMap<RequestId, oneshot::Sender<Result<Outcome, HandoffError>>>>>;

/// What S holds for one generation.
struct Slot<E: Env> {
    child: Option<Rc<E::Child>>,
    watcher: Option<JoinHandle<()>>,
    session: Option<(SessionId, Rc<E::Stream>, JoinHandle<()>)>,
    version: u16,
    /// The last frame sent for an earlier handoff (the late-frame fault site).
    earlier: Option<(HandoffId, Frame)>,
}

impl<E: Env> Default for Slot<E> {
    fn default() -> Self {
        Slot { child: None, watcher: None, session: None, version: PROTO_MIN, earlier: None }
    }
}

struct Driver<E: Env> {
    env: E,
    setup: CoordinatorSetup,
    journal: Journal,
    store: Rc<RefCell<FdStore<E>>>,
    slots: BTreeMap<Token, Slot<E>>,
    tx: mpsc::UnboundedSender<Ev>,
    responders: Responders,
    next_session: SessionId,
    give_away_listeners: bool,
    /// S is recovering: any generation's Hello may refill the fd store.
    recovering: bool,
    spawn_options: SpawnOptions,
}

/// Runs S until it cannot go on (it never returns in normal operation).
pub async fn run<E: Env>(env: E, setup: CoordinatorSetup) -> i32 {
    run_hosted(env, setup, CoordinatorHost::default()).await
}

/// [`run`] inside a host that holds the listeners already or spawns
/// generations its own way.
pub async fn run_hosted<E: Env>(env: E, setup: CoordinatorSetup, host: CoordinatorHost<E>) -> i32 {
    let journal = Journal::new(setup.state_dir.clone());
    let _lock = match lock(&env, &setup).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, dir = %setup.state_dir.display(), "cannot lock the state directory");
            return EXIT_LOCKED;
        }
    };
    let _ = env.create_dir_all(&setup.ctl_dir).await;
    let bugs = CoordinatorBugs {
        seal_timeout_no_resume: env.mutant("handoff-seal-timeout-no-resume"),
        commit_unhealthy: env.mutant("handoff-commit-unhealthy"),
        journal_ignored: env.mutant("handoff-journal-ignored-on-restart"),
        incumbent_death_unhandled: env.mutant("handoff-incumbent-death-unhandled"),
        stale_frames_accepted: env.mutant("handoff-stale-frame-accepted"),
    };
    let mut m = Coordinator::new(setup.config, bugs, setup.first.clone(), env.random_u64());
    let (tx, mut rx) = mpsc::unbounded();
    let responders: Responders = Rc::default();
    let admin = match listen_admin(&env, &setup.admin).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, addr = %setup.admin, "cannot listen on the admin socket");
            return 1;
        }
    };
    let _admin_task = env.spawn("handoff-admin", accept_admin(env.clone(), admin, tx.clone(), responders.clone()));
    let mut store = FdStore::new(&setup.listeners);
    for (name, fd) in host.held {
        store.hold(&name, fd);
    }
    let mut d = Driver {
        store: Rc::new(RefCell::new(store)),
        spawn_options: host.spawn,
        env: env.clone(),
        give_away_listeners: env.mutant("handoff-listener-closed-early"),
        setup,
        journal,
        slots: BTreeMap::new(),
        tx,
        responders,
        next_session: 1,
        recovering: false,
    };
    loop {
        while let Some(a) = m.poll_action() {
            d.recovering = m.phase() == super::types::CoordinatorPhase::Recovering;
            if let Some(feedback) = d.execute(a).await {
                m.handle_event(d.env.now(), feedback);
            }
        }
        let event = match m.poll_timeout() {
            Some(at) => match select(rx.next(), std::pin::pin!(env.sleep_until(at))).await {
                Either::Left((e, _)) => e,
                Either::Right(((), _)) => {
                    m.handle_timeout(env.now());
                    continue;
                }
            },
            None => rx.next().await,
        };
        match event {
            Some(e) => m.handle_event(env.now(), e),
            None => return 1,
        }
    }
}

async fn lock<E: Env>(env: &E, setup: &CoordinatorSetup) -> std::io::Result<E::DirLock> {
    env.create_dir_all(&setup.state_dir).await?;
    let mut tries = 0;
    loop {
        match env.lock_dir(&setup.state_dir) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 100 => {
                tries += 1;
                env.sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn listen_admin<E: Env>(env: &E, addr: &Addr) -> std::io::Result<E::Listener> {
    match env.listen(addr) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            // A socket file left by an S that died (we hold the lock, so no
            // other S listens there).
            if let Addr::Unix(p) = addr {
                let _ = env.remove_file(p).await;
            }
            env.listen(addr)
        }
        Err(e) => Err(e),
    }
}

async fn accept_admin<E: Env>(env: E, l: E::Listener, tx: mpsc::UnboundedSender<Ev>, responders: Responders) {
    let mut next: RequestId = 1;
    loop {
        let Ok(s) = env.accept(&l).await else {
            env.sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (req, tx, responders, env2) = (next, tx.clone(), responders.clone(), env.clone());
        next += 1;
        drop(env.spawn("handoff-admin-request", async move {
            let reply = match env2.timeout(Duration::from_secs(10), read_line(&env2, &s)).await {
                Ok(Ok(line)) => match parse_request(&line) {
                    Some(spec) => {
                        let (rtx, rrx) = oneshot::channel();
                        responders.borrow_mut().insert(req, rtx);
                        let _ = tx.unbounded_send(Ev::Request(req, spec));
                        match rrx.await {
                            Ok(r) => reply_line(&r),
                            Err(_) => "error\tcoordinator stopped\n".to_owned(),
                        }
                    }
                    None => "error\tunreadable request\n".to_owned(),
                },
                _ => return,
            };
            let _ = env2.timeout(Duration::from_secs(10), env2.write_all(&s, reply.as_bytes())).await;
        }));
    }
}

impl<E: Env> Driver<E> {
    fn ctl_path(&self, t: Token) -> PathBuf {
        self.setup.ctl_dir.join(format!("{t}.sock"))
    }

    async fn execute(&mut self, a: A) -> Option<Ev> {
        match a {
            A::ReadJournal => Some(Ev::JournalLoaded(self.journal.read(&self.env).await.map_err(|e| e.to_string()))),
            A::WriteJournal(rec) => {
                let mut last = String::new();
                for _ in 0..JOURNAL_TRIES {
                    match self.journal.write(&self.env, &rec).await {
                        Ok(()) => return Some(Ev::JournalWritten(Ok(()))),
                        Err(e) => last = e.to_string(),
                    }
                    self.env.sleep(Duration::from_millis(20)).await;
                }
                Some(Ev::JournalWritten(Err(last)))
            }
            A::Spawn { token, role, spec, id } => Some(Ev::Spawned(token, self.spawn(token, role, &spec, id).await)),
            A::Adopt { token, pid } => Some(Ev::Adopted(
                token,
                match self.env.open_process(pid) {
                    Ok(child) => {
                        self.hold(token, child);
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                },
            )),
            A::Connect(token) => Some(self.connect(token).await),
            A::Send(token, frame) => {
                self.send(token, frame).await;
                None
            }
            A::Kill(token) => {
                if let Some(c) = self.slots.get(&token).and_then(|s| s.child.clone())
                    && let Err(e) = self.env.signal_child(&c, Signal::Kill)
                {
                    tracing::info!(%token, error = %e, "kill: already gone");
                }
                None
            }
            A::Forget(token) => {
                if let Some(slot) = self.slots.remove(&token) {
                    if let Some(w) = slot.watcher {
                        w.abort();
                    }
                    if let Some((_, _, r)) = slot.session {
                        r.abort();
                    }
                }
                let _ = self.env.remove_file(&self.ctl_path(token)).await;
                None
            }
            A::Reply(req, r) => {
                if let Some(tx) = self.responders.borrow_mut().remove(&req) {
                    let _ = tx.send(r);
                }
                None
            }
            A::CrashPoint(name) => {
                crash_point!(self.env, name).await;
                None
            }
        }
    }

    /// Takes a handle on a generation and watches it.
    fn hold(&mut self, token: Token, child: E::Child) {
        let child = Rc::new(child);
        let (env, tx, c) = (self.env.clone(), self.tx.clone(), child.clone());
        let watcher = self.env.spawn("handoff-watch", async move {
            let status = env.wait_child(&c).await;
            tracing::info!(%token, %status, "generation exited");
            let _ = tx.unbounded_send(Ev::Exited(token));
        });
        let slot = self.slots.entry(token).or_default();
        slot.child = Some(child);
        slot.watcher = Some(watcher);
    }

    async fn spawn(&mut self, token: Token, role: Role, spec: &GenSpec, id: HandoffId) -> Result<u32, String> {
        let give_away = self.give_away_listeners && role == Role::Successor;
        let fds = {
            let mut store = self.store.borrow_mut();
            store.bind_missing(&self.env).map_err(|e| format!("listeners: {e}"))?;
            store.for_child(&self.env, give_away).map_err(|e| e.to_string())?
        };
        let path = self.ctl_path(token);
        let _ = self.env.remove_file(&path).await;
        let ctl = self.env.listen(&Addr::Unix(path)).map_err(|e| format!("handoff socket: {e}"))?;
        let n = fds.len() as i32;
        let names = fds.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(":");
        let mut p = ProcessSpec::new(spec.program.clone())
            .var(vars::LISTEN_FDS, n.to_string())
            .var(vars::LISTEN_FDNAMES, names)
            .pid_var(vars::LISTEN_PID)
            .var(vars::ROLE, role.name())
            .var(vars::TOKEN, token.to_string())
            .var(vars::ID, id.to_string())
            .var(vars::CTL_FD, (3 + n).to_string());
        p.args = spec.args.clone();
        for (k, v) in &self.setup.vars {
            p = p.var(k.clone(), v.clone());
        }
        for (i, (_, fd)) in fds.into_iter().enumerate() {
            p = p.fd(fd, 3 + i as i32);
        }
        p = p.fd(self.env.listener_into_fd(ctl), 3 + n);
        let child =
            self.env.spawn_with(p, self.spawn_options.clone()).map_err(|e| format!("spawn {}: {e}", spec.program))?;
        let pid = self.env.child_pid(&child);
        tracing::info!(%token, pid, role = role.name(), program = %spec.program, "generation spawned");
        self.hold(token, child);
        Ok(pid)
    }

    async fn connect(&mut self, token: Token) -> Ev {
        let addr = Addr::Unix(self.ctl_path(token));
        let stream = match self.env.timeout(self.setup.config.hello_timeout, self.env.connect(&addr)).await {
            Ok(Ok(s)) => Rc::new(s),
            Ok(Err(e)) => return Ev::ConnectFailed(token, e.to_string()),
            Err(_) => return Ev::ConnectFailed(token, "connect timed out".into()),
        };
        let session = self.next_session;
        self.next_session += 1;
        let reader = self.env.spawn(
            "handoff-session",
            read_session(
                self.env.clone(),
                stream.clone(),
                (token, session),
                self.tx.clone(),
                self.store.clone(),
                self.recovering,
            ),
        );
        let slot = self.slots.entry(token).or_default();
        if let Some((_, _, old)) = slot.session.replace((session, stream, reader)) {
            old.abort();
        }
        Ev::SessionOpened(token, session)
    }

    async fn send(&mut self, token: Token, frame: Frame) {
        let Some(slot) = self.slots.get_mut(&token) else { return };
        if let Frame::HelloAck { version, .. } = frame {
            slot.version = version;
        }
        let Some((_, stream, _)) = slot.session.as_ref() else {
            tracing::info!(%token, frame = frame.name(), "no session; frame not sent");
            return;
        };
        let stream = stream.clone();
        let version = slot.version;
        // Fault site: a frame of an earlier handoff arrives late (a writer
        // that retried, a proxy that replays). Receivers must ignore it.
        if let (Some(id), Some((old_id, old))) = (frame.id(), slot.earlier.clone())
            && id != old_id
            && !id.is_none()
            && buggify!(self.env, "handoff.s.late_frame")
        {
            let (env, s) = (self.env.clone(), stream.clone());
            let delay = self.env.random_duration(self.setup.config.deadline);
            drop(self.env.spawn("handoff-late-frame", async move {
                env.sleep(delay).await;
                if let Ok(bytes) = encode(version, &old) {
                    tracing::info!(frame = old.name(), handoff = %old_id, "late frame of an earlier handoff delivered");
                    let _ = env.write_all(&s, &bytes).await;
                }
            }));
        }
        if let Some(id) = frame.id().filter(|i| !i.is_none()) {
            slot.earlier = Some((id, frame.clone()));
        }
        let Ok(bytes) = encode(version, &frame) else { return };
        match self.env.timeout(self.setup.config.liveness, self.env.write_all(&stream, &bytes)).await {
            Ok(Ok(())) => tracing::debug!(%token, frame = frame.name(), "sent"),
            Ok(Err(e)) => tracing::info!(%token, frame = frame.name(), error = %e, "send failed"),
            Err(_) => tracing::warn!(%token, frame = frame.name(), "send timed out"),
        }
    }
}

/// Reads frames from a generation's session until it ends; the listener
/// copies attached to a Hello refill the fd store where it lacks them.
async fn read_session<E: Env>(
    env: E,
    stream: Rc<E::Stream>,
    (token, session): (Token, SessionId),
    tx: mpsc::UnboundedSender<Ev>,
    store: Rc<RefCell<FdStore<E>>>,
    recovering: bool,
) {
    let mut reader = FrameReader::new();
    let mut buf = vec![0u8; 4096];
    let mut fds_in: Vec<E::Fd> = Vec::new();
    loop {
        let (n, fds) = match env.recv_with_fds(&stream, &mut buf).await {
            Ok((0, _)) | Err(_) => break,
            Ok(x) => x,
        };
        fds_in.extend(fds);
        let mut input = &buf[..n];
        while !input.is_empty() {
            match reader.feed(&mut input) {
                Ok(Some((_, frame))) => {
                    // S lacks a copy only after its own restart: the
                    // incumbent's (or, while recovering, any) Hello refills it.
                    if let Frame::Hello(h) = &frame
                        && (recovering || h.role == Role::Incumbent)
                    {
                        store.borrow_mut().refill(&h.listeners, std::mem::take(&mut fds_in));
                    }
                    fds_in.clear();
                    let _ = tx.unbounded_send(Ev::Frame(token, session, frame));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%token, error = %e, "bad frame; closing the session");
                    let _ = tx.unbounded_send(Ev::SessionClosed(token, session));
                    return;
                }
            }
        }
    }
    let _ = tx.unbounded_send(Ev::SessionClosed(token, session));
}
