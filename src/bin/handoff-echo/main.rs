//! `handoff-echo`: the handoff's demo service. An HTTP/1.1 server on the
//! listener it adopts through `warden::handoff::app`, answering every
//! request with its generation and pid (`generation G pid P`). While it
//! drains it finishes the requests in flight and closes keep-alive
//! connections politely (the next answer says `Connection: close`); then
//! it seals. Flags make it misbehave, for the handoff's end-to-end tests.
//!
//! Run it under a coordinator: `warden handoff-coordinator` (or a
//! `warden run` service with `handoff = true`) starts it with the
//! listeners at fds 3.. and its handoff socket; alone it exits with 64.
// A program's edge, like `src/main.rs`: it may reach the OS directly.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod http;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use warden::env::real::{RealEnv, RealStream};
use warden::env::{Env, ProcessEnv};
use warden::handoff::app::{self, App, AppConfig};
use warden::handoff::session::AppEvent;

/// The handoff demo: an HTTP/1.1 echo of its generation and pid.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
struct Opts {
    /// The generation it reports (default: its handoff token).
    #[arg(long)]
    generation: Option<String>,
    /// As a successor, never report Ready (its health check never returns).
    #[arg(long)]
    never_ready: bool,
    /// Report unhealthy: Ready with a failed health check.
    #[arg(long)]
    unhealthy: bool,
    /// Take this long to seal (milliseconds).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    seal_ms: u64,
    /// Fail the seal.
    #[arg(long)]
    fail_seal: bool,
    /// SIGKILL itself at the first hit of this handoff crash point
    /// (`handoff.o.*`, `handoff.n.*`; needs the `crash-points` build).
    #[arg(long, value_name = "POINT")]
    crash_at: Option<String>,
    /// Keep clearing O_NONBLOCK on the inherited listeners (the open file
    /// description other generations share).
    #[arg(long)]
    clear_nonblock: bool,
    /// Start a grandchild (`sleep 30`) that must inherit no listener.
    #[arg(long)]
    grandchild: bool,
}

/// The service: one per process.
struct Echo {
    generation: String,
    pid: u32,
    opts: Opts,
    /// Not accepting: answers carry `Connection: close`.
    drain: Rc<http::Drain>,
    /// `--grandchild`: started once the listeners are adopted.
    grandchild: RefCell<Option<std::process::Child>>,
}

impl App<RealEnv> for Echo {
    fn serve(&self, env: &RealEnv, conn: RealStream) -> impl Future<Output = ()> + 'static {
        let me = http::Me { generation: self.generation.clone(), pid: self.pid, unhealthy: self.opts.unhealthy };
        http::serve(env.clone(), conn, me, self.drain.clone())
    }

    fn seal(&self, env: &RealEnv) -> impl Future<Output = Result<(), String>> + 'static {
        let (env, ms, fail) = (env.clone(), self.opts.seal_ms, self.opts.fail_seal);
        async move {
            env.sleep(Duration::from_millis(ms)).await;
            if fail { Err("told to fail the seal (--fail-seal)".into()) } else { Ok(()) }
        }
    }

    fn resume(&self, _: &RealEnv, _sealed: bool) -> impl Future<Output = Result<(), String>> + 'static {
        std::future::ready(Ok(()))
    }

    fn health(&self, _: &RealEnv) -> impl Future<Output = (bool, Vec<u64>)> + 'static {
        let (never, healthy) = (self.opts.never_ready, !self.opts.unhealthy);
        async move {
            if never {
                std::future::pending::<()>().await;
            }
            (healthy, vec![1])
        }
    }

    fn event(&self, _: &RealEnv, event: &AppEvent) {
        if let AppEvent::Accepting(on) = event {
            self.drain.on.set(!on);
            self.drain.changed.notify_waiters();
            if *on && self.opts.grandchild && self.grandchild.borrow().is_none() {
                // Only now: `app::run` made the inherited fds close-on-exec
                // when it adopted them; a child forked before would hold them.
                match std::process::Command::new("sleep").arg("30").spawn() {
                    Ok(c) => *self.grandchild.borrow_mut() = Some(c),
                    Err(e) => tracing::error!(error = %e, "cannot start the grandchild"),
                }
            }
        }
        tracing::info!(generation = %self.generation, ?event, "handoff event");
    }
}

fn main() {
    let opts = Opts::parse();
    if let Some(point) = &opts.crash_at {
        // SAFETY: first thing in main, before any thread exists, so no
        // other thread reads the environment concurrently.
        unsafe { std::env::set_var("WARDEN_CRASH_AT", point) };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).init();
    let out = RealEnv::block_on(async move {
        let env = RealEnv::new();
        let generation = opts
            .generation
            .clone()
            .or_else(|| env.var(warden::handoff::coordinator::vars::TOKEN))
            .unwrap_or_else(|| "?".into());
        if opts.clear_nonblock {
            drop(env.spawn("clear-nonblock", clear_nonblock(env.clone())));
        }
        let echo =
            Rc::new(Echo { generation, pid: env.pid(), opts, drain: Rc::default(), grandchild: RefCell::default() });
        let code = app::run(env, echo.clone(), AppConfig::default()).await;
        if let Some(mut c) = echo.grandchild.borrow_mut().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        code
    });
    std::process::exit(out.unwrap_or(70));
}

/// Clears O_NONBLOCK on fds 3.. (the inherited listeners) every 2 ms.
async fn clear_nonblock(env: RealEnv) {
    let n: i32 = env.var("LISTEN_FDS").and_then(|v| v.parse().ok()).unwrap_or(0);
    loop {
        for fd in 3..3 + n {
            // SAFETY: fcntl F_GETFL/F_SETFL on an fd number; a closed one fails harmlessly.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                    libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
                }
            }
        }
        env.sleep(Duration::from_millis(2)).await;
    }
}
