//! The service under handoff: a `warden::handoff::app` application whose
//! health, seal and death are drawn from the run's parameters. It answers
//! each request line `req <client> <n>` with `ok <proc>` after a short,
//! random service time, so drains have connections to wait for.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use warden::env::{Env, NetEnv, ProcessEnv, Signal};
use warden::handoff::app::App;
use warden::handoff::session::AppEvent;

use super::state::Shared;
use crate::env::SimEnv;

/// How a generation behaves, from its arguments and the run's parameters.
#[derive(Debug, Clone, Copy)]
pub(super) struct Behaviour {
    /// `ok`, `unhealthy` or `never` (its health check never returns).
    pub(super) health: Health,
    pub(super) seal_ms: (u64, u64),
    pub(super) seal_fail_pct: u64,
    pub(super) die_in_drain_pct: u64,
    pub(super) serve_ms_max: u64,
    pub(super) drain_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    Ok,
    Unhealthy,
    Never,
}

impl Health {
    pub(super) fn name(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Unhealthy => "unhealthy",
            Health::Never => "never",
        }
    }

    pub(super) fn parse(s: &str) -> Health {
        match s {
            "unhealthy" => Health::Unhealthy,
            "never" => Health::Never,
            _ => Health::Ok,
        }
    }
}

pub(super) struct Service {
    pub(super) shared: Rc<Shared>,
    pub(super) proc: u32,
    pub(super) behaviour: Behaviour,
    /// It serves as O (started as the incumbent, or committed as N).
    pub(super) incumbent: Cell<bool>,
}

async fn read_request(env: &SimEnv, s: &crate::world::SimFd) -> Option<(u32, u32)> {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    while !line.contains(&b'\n') {
        let n = env.read(s, &mut buf).await.ok().filter(|n| *n > 0)?;
        line.extend_from_slice(&buf[..n]);
        if line.len() > 256 {
            return None;
        }
    }
    let text = String::from_utf8(line).ok()?;
    let mut f = text.split_whitespace();
    (f.next()? == "req").then_some(())?;
    Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
}

impl App<SimEnv> for Service {
    fn serve(&self, env: &SimEnv, conn: crate::world::SimFd) -> impl Future<Output = ()> + 'static {
        let (env, shared, proc, max) = (env.clone(), self.shared.clone(), self.proc, self.behaviour.serve_ms_max);
        *shared.unread.borrow_mut().entry(proc).or_default() += 1;
        async move {
            let read = env.timeout(Duration::from_secs(5), read_request(&env, &conn)).await;
            if let Some(n) = shared.unread.borrow_mut().get_mut(&proc) {
                *n = n.saturating_sub(1);
            }
            let Ok(Some(key)) = read else { return };
            shared.accepted.borrow_mut().insert(key, proc);
            env.sleep(Duration::from_millis(env.random_below(max.max(1)))).await;
            let _ = env.write_all(&conn, format!("ok {proc}\n").as_bytes()).await;
        }
    }

    fn seal(&self, env: &SimEnv) -> impl Future<Output = Result<(), String>> + 'static {
        let (env, b) = (env.clone(), self.behaviour);
        async move {
            let (lo, hi) = b.seal_ms;
            env.sleep(Duration::from_millis(lo + env.random_below(hi.saturating_sub(lo) + 1))).await;
            if env.random_below(100) < b.seal_fail_pct { Err("seal failed (injected)".into()) } else { Ok(()) }
        }
    }

    fn resume(&self, env: &SimEnv, _sealed: bool) -> impl Future<Output = Result<(), String>> + 'static {
        let env = env.clone();
        async move {
            env.sleep(Duration::from_millis(1 + env.random_below(10))).await;
            Ok(())
        }
    }

    fn health(&self, env: &SimEnv) -> impl Future<Output = (bool, Vec<u64>)> + 'static {
        let (env, health) = (env.clone(), self.behaviour.health);
        async move {
            env.sleep(Duration::from_millis(1 + env.random_below(50))).await;
            match health {
                Health::Ok => (true, vec![1]),
                Health::Unhealthy => (false, vec![1]),
                Health::Never => std::future::pending().await,
            }
        }
    }

    fn event(&self, env: &SimEnv, event: &AppEvent) {
        let s = &self.shared;
        match event {
            AppEvent::Accepting(on) => {
                s.accepting(self.proc, *on);
                if !*on && self.incumbent.get() && env.random_below(100) < self.behaviour.die_in_drain_pct {
                    // O dies mid-drain.
                    let (env2, grace, shared, proc) =
                        (env.clone(), self.behaviour.drain_grace, self.shared.clone(), self.proc);
                    drop(env.spawn("die-in-drain", async move {
                        env2.sleep(env2.random_duration(grace)).await;
                        if !shared.gens.borrow().get(&proc).is_some_and(|g| g.accepting) {
                            shared.died_in_drain.set(true);
                        }
                        let _ = env2.kill(env2.pid(), Signal::Kill);
                    }));
                }
            }
            AppEvent::StaleFrame { .. } => s.stale_ignored.set(s.stale_ignored.get() + 1),
            AppEvent::SealCompletedAfterAbort(_) => s.seal_late.set(true),
            AppEvent::Ready { healthz_ok: false, .. } => {
                s.gens.borrow_mut().entry(self.proc).or_default().reported_unhealthy = true;
            }
            AppEvent::Committed(id) => {
                let unhealthy = s.gens.borrow().get(&self.proc).is_some_and(|g| g.reported_unhealthy);
                if !self.incumbent.get() && unhealthy {
                    s.checks.fail(
                        "unhealthy-never-committed",
                        format!("handoff {id} committed proc {} although it reported healthz_ok = false", self.proc),
                    );
                }
                self.incumbent.set(true);
            }
            AppEvent::Resumed(_) | AppEvent::Aborted(_) | AppEvent::Begun(_) | AppEvent::Ready { .. } => {}
        }
    }
}
