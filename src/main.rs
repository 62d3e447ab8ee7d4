//! The production binary: warden built on the real backend only.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use warden::env::real::RealEnv;
use warden::env::{Env, JoinError};

/// warden: a process and task supervisor.
///
/// The supervisor, handoff and re-register protocols are written against an
/// environment abstraction and tested in the deterministic simulator
/// `warden-sim`; this binary runs them on the real operating system.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks that this machine gives the real backend what it needs:
    /// a boot-relative monotonic clock, timers that fire in order, tasks
    /// that join, abort and report panics. Exits non-zero on the first
    /// failed check.
    CheckEnv,
}

fn main() -> anyhow::Result<()> {
    // Before any thread exists, so every thread inherits the mask: handled
    // signals are then consumed only through a signalfd, and RealEnv::block_on
    // unblocks the ones nobody handles (see warden::env::real::block_handled_signals).
    warden::env::real::block_handled_signals().context("cannot block the handled signals")?;
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    // Its own error, not one of the runtime's: the message names the variable.
    warden::env::real::check_crash_target().map_err(|e| anyhow::anyhow!(e))?;
    match cli.command {
        Command::CheckEnv => RealEnv::block_on(check_env(RealEnv::new())).context("cannot start the tokio runtime")?,
    }
}

async fn check_env(env: RealEnv) -> anyhow::Result<()> {
    let t0 = env.now();
    let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let mut joins = Vec::new();
    for (label, ms) in [("c", 30u64), ("a", 10), ("b", 20)] {
        let env2 = env.clone();
        let order = order.clone();
        joins.push(env.spawn("timer", async move {
            env2.sleep(Duration::from_millis(ms)).await;
            order.borrow_mut().push(label);
        }));
    }
    for j in joins {
        j.await.context("timer task")?;
    }
    if *order.borrow() != ["a", "b", "c"] {
        bail!("timers fired out of order: {:?}", order.borrow());
    }
    println!("ok   timers fire in deadline order");
    if env.now() <= t0 {
        bail!("monotonic clock did not advance");
    }
    println!("ok   monotonic clock advances (boot-relative now = {})", env.now());

    let stuck = env.spawn("stuck", std::future::pending::<()>());
    stuck.abort();
    if stuck.await != Err(JoinError::Cancelled) {
        bail!("aborted task did not report cancellation");
    }
    println!("ok   abort cancels a task");

    // The deliberate panic is caught by the join handle; keep the default
    // hook from printing it as if something went wrong.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let panicking = env.spawn("panics", async { panic!("deliberate") });
    let joined = panicking.await;
    std::panic::set_hook(hook);
    match joined {
        Err(JoinError::Panicked(m)) if m.starts_with("deliberate") => {
            println!("ok   a task's panic reaches its join handle")
        }
        other => bail!("panic not reported through the join handle: {other:?}"),
    }

    match env.timeout(Duration::from_millis(5), std::future::pending::<()>()).await {
        Err(_) => println!("ok   timeout elapses"),
        Ok(()) => bail!("pending future completed"),
    }
    Ok(())
}
