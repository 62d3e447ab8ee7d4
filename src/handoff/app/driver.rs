//! The application-side driver: executes the incumbent's or successor's
//! actions through [`Env`] and the [`App`]'s hooks.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use futures::future::{Either, select};

use super::{App, AppConfig, EXIT_USAGE, WRITE_TIMEOUT};
use crate::crash_point;
use crate::env::{Env, Instant, JoinHandle};
use crate::handoff::coordinator::vars;
use crate::handoff::id::{HandoffId, Role, Token};
use crate::handoff::incumbent::{Incumbent, IncumbentAction as OA, IncumbentEvent as OE};
use crate::handoff::session::{AppEvent, SessionId};
use crate::handoff::successor::{Successor, SuccessorAction as NA, SuccessorEvent as NE};
use crate::handoff::wire::{Frame, FrameReader, PROTO_MIN, encode};

/// What tasks report to the driver.
enum In<E: Env> {
    Opened(SessionId, Rc<E::Stream>),
    Frame(SessionId, Frame),
    Closed(SessionId),
    Drained(HandoffId, u32),
    Sealed(HandoffId, Result<(), String>),
    Resumed(Result<(), String>),
    Health(bool, Vec<u64>),
}

enum Machine {
    O(Incumbent),
    N(Successor),
}

/// A uniform view of both machines' actions.
enum Act {
    Send(SessionId, Frame),
    Close(SessionId),
    Accept(bool),
    Drain(HandoffId, Duration),
    Seal(HandoffId),
    Resume(bool),
    Health,
    CancelHealth,
    Promote(crate::handoff::session::Attach),
    Exit(Duration, i32),
    Notify(AppEvent),
    Crash(&'static str),
}

struct Conns {
    open: Cell<u32>,
    changed: tokio::sync::Notify,
}

/// What the coordinator passed at spawn.
struct Start<E: Env> {
    role: Role,
    token: Token,
    id: HandoffId,
    names: Vec<String>,
    fds: Vec<E::Fd>,
    ctl: E::Listener,
}

fn read_start<E: Env>(env: &E) -> Result<Start<E>, String> {
    let var = |k: &str| env.var(k).ok_or_else(|| format!("{k} is not set"));
    let role = Role::parse(&var(vars::ROLE)?).ok_or("bad WARDEN_HANDOFF_ROLE")?;
    let token = Token::parse(&var(vars::TOKEN)?).ok_or("bad WARDEN_HANDOFF_TOKEN")?;
    let id = env.var(vars::ID).and_then(|s| Token::parse(&s)).map_or(HandoffId::NONE, |t| HandoffId(t.0));
    let listen_pid: u32 = var(vars::LISTEN_PID)?.parse().map_err(|_| "bad LISTEN_PID")?;
    if listen_pid != env.pid() {
        return Err(format!("LISTEN_PID={listen_pid} names another process (we are {})", env.pid()));
    }
    let n: i32 = var(vars::LISTEN_FDS)?.parse().map_err(|_| "bad LISTEN_FDS")?;
    let names: Vec<String> = var(vars::LISTEN_FDNAMES)?.split(':').map(str::to_owned).collect();
    if n < 0 || names.len() != n as usize {
        return Err(format!("LISTEN_FDS={n} but {} names", names.len()));
    }
    let fds = (0..n)
        .map(|i| env.inherited_fd(3 + i).ok_or_else(|| format!("no listener at fd {}", 3 + i)))
        .collect::<Result<Vec<_>, _>>()?;
    let ctl_fd: i32 = var(vars::CTL_FD)?.parse().map_err(|_| "bad WARDEN_HANDOFF_CTL_FD")?;
    let ctl = env.inherited_fd(ctl_fd).ok_or("no handoff socket")?;
    let ctl = env.fd_into_listener(ctl).map_err(|e| format!("handoff socket: {e}"))?;
    Ok(Start { role, token, id, names, fds, ctl })
}

struct Driver<E: Env, A: App<E>> {
    env: E,
    app: Rc<A>,
    config: AppConfig,
    tx: mpsc::UnboundedSender<In<E>>,
    fds: Vec<E::Fd>,
    listeners: Vec<Rc<E::Listener>>,
    accepting: Vec<JoinHandle<()>>,
    sessions: BTreeMap<SessionId, Rc<E::Stream>>,
    health: Option<JoinHandle<()>>,
    conns: Rc<Conns>,
    names: Vec<String>,
    me: (u32, Token),
}

/// Runs the service as the generation the coordinator started; returns
/// the exit code.
pub async fn run<E: Env, A: App<E>>(env: E, app: Rc<A>, config: AppConfig) -> i32 {
    let start = match read_start(&env) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "not started by a handoff coordinator as expected");
            return EXIT_USAGE;
        }
    };
    let mut listeners = Vec::new();
    for fd in &start.fds {
        match env.dup_fd(fd).and_then(|d| env.fd_into_listener(d)) {
            Ok(l) => listeners.push(Rc::new(l)),
            Err(e) => {
                tracing::error!(error = %e, "an inherited listener is unusable");
                return EXIT_USAGE;
            }
        }
    }
    let stale = env.mutant("handoff-stale-frame-accepted");
    let me = (env.pid(), start.token);
    let mut machine = match start.role {
        Role::Incumbent => Machine::O(Incumbent::new(config.incumbent, me, start.names.clone(), false, stale)),
        Role::Successor => {
            Machine::N(Successor::new(env.now(), config.successor, start.id, me, start.names.clone(), stale))
        }
    };
    let (tx, mut rx) = mpsc::unbounded();
    let _ctl = env.spawn("handoff-ctl", accept_sessions(env.clone(), start.ctl, tx.clone()));
    let mut d = Driver {
        env: env.clone(),
        app,
        config,
        tx,
        fds: start.fds,
        listeners,
        accepting: Vec::new(),
        sessions: BTreeMap::new(),
        health: None,
        conns: Rc::new(Conns { open: Cell::new(0), changed: tokio::sync::Notify::new() }),
        names: start.names,
        me,
    };
    loop {
        while let Some(act) = next_act(&mut machine) {
            if let Some(code) = d.execute(&mut machine, act).await {
                return code;
            }
        }
        let timeout = match &machine {
            Machine::O(o) => o.poll_timeout(),
            Machine::N(n) => n.poll_timeout(),
        };
        let input = match timeout {
            Some(at) => match select(rx.next(), std::pin::pin!(env.sleep_until(at))).await {
                Either::Left((i, _)) => i,
                Either::Right(((), _)) => {
                    let now = env.now();
                    match &mut machine {
                        Machine::O(o) => o.handle_timeout(now),
                        Machine::N(n) => n.handle_timeout(now),
                    }
                    continue;
                }
            },
            None => rx.next().await,
        };
        let Some(input) = input else { return 1 };
        d.feed(&mut machine, env.now(), input);
    }
}

fn next_act(m: &mut Machine) -> Option<Act> {
    Some(match m {
        Machine::O(o) => match o.poll_action()? {
            OA::Send(s, f) => Act::Send(s, f),
            OA::CloseSession(s) => Act::Close(s),
            OA::StartAccepting => Act::Accept(true),
            OA::StopAccepting => Act::Accept(false),
            OA::Drain { id, grace } => Act::Drain(id, grace),
            OA::Seal { id } => Act::Seal(id),
            OA::Resume { sealed } => Act::Resume(sealed),
            OA::Exit { grace, code } => Act::Exit(grace, code),
            OA::Notify(e) => Act::Notify(e),
            OA::CrashPoint(p) => Act::Crash(p),
        },
        Machine::N(n) => match n.poll_action()? {
            NA::Send(s, f) => Act::Send(s, f),
            NA::CloseSession(s) => Act::Close(s),
            NA::StartAccepting => Act::Accept(true),
            NA::StopAccepting => Act::Accept(false),
            NA::CheckHealth => Act::Health,
            NA::CancelHealth => Act::CancelHealth,
            NA::BecomeIncumbent(a) => Act::Promote(a),
            NA::Exit { grace, code } => Act::Exit(grace, code),
            NA::Notify(e) => Act::Notify(e),
            NA::CrashPoint(p) => Act::Crash(p),
        },
    })
}

impl<E: Env, A: App<E>> Driver<E, A> {
    fn feed(&mut self, m: &mut Machine, now: Instant, input: In<E>) {
        let (oe, ne) = match input {
            In::Opened(s, stream) => {
                self.sessions.insert(s, stream);
                (Some(OE::SessionOpened(s)), Some(NE::SessionOpened(s)))
            }
            In::Frame(s, f) => (Some(OE::Frame(s, f.clone())), Some(NE::Frame(s, f))),
            In::Closed(s) => {
                self.sessions.remove(&s);
                (Some(OE::SessionClosed(s)), Some(NE::SessionClosed(s)))
            }
            In::Drained(id, open_conns) => (Some(OE::DrainDone { id, open_conns }), None),
            In::Sealed(id, result) => (Some(OE::SealDone { id, result }), None),
            In::Resumed(r) => (Some(OE::ResumeDone(r)), None),
            In::Health(healthz_ok, revisions) => (None, Some(NE::Health { healthz_ok, revisions })),
        };
        match m {
            Machine::O(o) => oe.into_iter().for_each(|e| o.handle_event(now, e)),
            Machine::N(n) => ne.into_iter().for_each(|e| n.handle_event(now, e)),
        }
    }

    /// Executes one action; `Some(code)` when the process is to exit.
    async fn execute(&mut self, m: &mut Machine, act: Act) -> Option<i32> {
        match act {
            Act::Send(s, f) => self.send(s, f).await,
            Act::Close(s) => {
                if let Some(st) = self.sessions.remove(&s) {
                    let _ = self.env.shutdown_write(&st);
                }
            }
            Act::Accept(on) => self.set_accepting(on),
            Act::Drain(id, grace) => {
                let (env, conns, tx) = (self.env.clone(), self.conns.clone(), self.tx.clone());
                drop(self.env.spawn("handoff-drain", async move {
                    let open = wait_conns(&env, &conns, grace).await;
                    let _ = tx.unbounded_send(In::Drained(id, open));
                }));
            }
            Act::Seal(id) => {
                let (fut, tx) = (self.app.seal(&self.env), self.tx.clone());
                drop(self.env.spawn("handoff-seal", async move {
                    let r = fut.await;
                    let _ = tx.unbounded_send(In::Sealed(id, r));
                }));
            }
            Act::Resume(sealed) => {
                let (fut, tx) = (self.app.resume(&self.env, sealed), self.tx.clone());
                drop(self.env.spawn("handoff-resume", async move {
                    let r = fut.await;
                    let _ = tx.unbounded_send(In::Resumed(r));
                }));
            }
            Act::Health => {
                let (fut, tx) = (self.app.health(&self.env), self.tx.clone());
                self.health = Some(self.env.spawn("handoff-health", async move {
                    let (ok, revisions) = fut.await;
                    let _ = tx.unbounded_send(In::Health(ok, revisions));
                }));
            }
            Act::CancelHealth => {
                if let Some(h) = self.health.take() {
                    h.abort();
                }
            }
            Act::Promote(attach) => {
                let stale = self.env.mutant("handoff-stale-frame-accepted");
                let o = Incumbent::new(self.config.incumbent, self.me, self.names.clone(), true, stale);
                *m = Machine::O(o.with_session(attach));
            }
            Act::Exit(grace, code) => {
                self.set_accepting(false);
                if let Some(h) = self.health.take() {
                    h.abort();
                }
                let left = wait_conns(&self.env, &self.conns, grace).await;
                tracing::info!(code, open_conns = left, "generation exits");
                // Our listener fds close with the process; S and the other
                // generation keep theirs.
                self.fds.clear();
                return Some(code);
            }
            Act::Notify(e) => self.app.event(&self.env, &e),
            Act::Crash(name) => crash_point!(self.env, name).await,
        }
        None
    }

    fn set_accepting(&mut self, on: bool) {
        if on != self.accepting.is_empty() {
            return;
        }
        if on {
            for l in &self.listeners {
                let (env, l, app, conns) = (self.env.clone(), l.clone(), self.app.clone(), self.conns.clone());
                self.accepting.push(self.env.spawn("handoff-accept", accept_loop(env, l, app, conns)));
            }
        } else {
            for h in self.accepting.drain(..) {
                h.abort();
            }
        }
        self.app.event(&self.env, &AppEvent::Accepting(on));
    }

    async fn send(&mut self, s: SessionId, f: Frame) {
        let Some(stream) = self.sessions.get(&s).cloned() else { return };
        let Ok(bytes) = encode(PROTO_MIN, &f) else {
            tracing::error!(frame = f.name(), "frame exceeds the wire limits; not sent");
            return;
        };
        let attach = if matches!(f, Frame::Hello(_)) {
            self.fds.iter().filter_map(|fd| self.env.dup_fd(fd).ok()).collect()
        } else {
            Vec::new()
        };
        let r = self.env.timeout(WRITE_TIMEOUT, self.env.send_with_fds(&stream, &bytes, attach)).await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::info!(frame = f.name(), "send to the coordinator failed");
        }
    }
}

/// Waits until no connection is open or `grace` passed; returns how many are still open.
async fn wait_conns<E: Env>(env: &E, conns: &Conns, grace: Duration) -> u32 {
    let deadline = env.now() + grace;
    while conns.open.get() > 0 && env.now() < deadline {
        let changed = std::pin::pin!(conns.changed.notified());
        let _ = select(changed, std::pin::pin!(env.sleep_until(deadline))).await;
    }
    conns.open.get()
}

async fn accept_loop<E: Env, A: App<E>>(env: E, l: Rc<E::Listener>, app: Rc<A>, conns: Rc<Conns>) {
    loop {
        match env.accept(&l).await {
            Ok(c) => {
                conns.open.set(conns.open.get() + 1);
                let (conns, fut) = (conns.clone(), app.serve(&env, c));
                drop(env.spawn("handoff-conn", async move {
                    fut.await;
                    conns.open.set(conns.open.get() - 1);
                    conns.changed.notify_waiters();
                }));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                env.sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn accept_sessions<E: Env>(env: E, ctl: E::Listener, tx: mpsc::UnboundedSender<In<E>>) {
    let mut next: SessionId = 1;
    loop {
        let s = match env.accept(&ctl).await {
            Ok(s) => Rc::new(s),
            Err(_) => {
                env.sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let id = next;
        next += 1;
        let _ = tx.unbounded_send(In::Opened(id, s.clone()));
        let (env2, tx) = (env.clone(), tx.clone());
        drop(env.spawn("handoff-ctl-session", async move {
            let mut reader = FrameReader::new();
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match env2.read(&s, &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut input = &buf[..n];
                while !input.is_empty() {
                    match reader.feed(&mut input) {
                        Ok(Some((_, f))) => {
                            let _ = tx.unbounded_send(In::Frame(id, f));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "bad frame from the coordinator; session closed");
                            let _ = tx.unbounded_send(In::Closed(id));
                            return;
                        }
                    }
                }
            }
            let _ = tx.unbounded_send(In::Closed(id));
        }));
    }
}
