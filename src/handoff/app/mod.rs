//! `warden::handoff::app`: lets a Rust service be O or N.
//!
//! A service implements [`App`] (serve one connection; seal and resume its
//! exclusive state; report health) and calls [`run`] from its main. `run`
//! reads what the coordinator passed at spawn (role, token, the listeners
//! at fds 3.. with `LISTEN_FDS`/`LISTEN_FDNAMES`, checked against
//! `LISTEN_PID`, and its own handoff socket), owns the accept loops and the
//! handoff socket, drains, seals, adopts the listeners and reports
//! readiness through the incumbent and successor machines. It returns the
//! process's exit code.
//!
//! `run` takes the inherited fds first thing, which makes them
//! close-on-exec: a child the service forks before calling `run` would
//! hold the listeners (and keep them open after this generation exits);
//! one forked after does not.
//!
//! The listeners are never closed by a handoff: O stops accepting but
//! keeps its fds until it exits, S keeps its copies throughout, so a
//! client that connects at any instant waits in the backlog until O (on
//! resume) or N (after Begin) accepts it.

mod driver;

use std::future::Future;
use std::time::Duration;

pub use driver::run;

use super::incumbent::IncumbentConfig;
use super::session::AppEvent;
use super::successor::SuccessorConfig;
use crate::env::Env;

/// A service that can be handed off.
pub trait App<E: Env>: 'static {
    /// Serves one accepted connection; a drain waits for it to return.
    fn serve(&self, env: &E, conn: E::Stream) -> impl Future<Output = ()> + 'static;
    /// O: releases what N needs exclusively (flush, unlock). An error
    /// leaves O unsealed and the handoff is given up.
    fn seal(&self, env: &E) -> impl Future<Output = Result<(), String>> + 'static;
    /// O: takes back what `seal` released (`sealed` says whether it ran)
    /// after the handoff was given up. An error ends the process.
    fn resume(&self, env: &E, sealed: bool) -> impl Future<Output = Result<(), String>> + 'static;
    /// N, once it accepts: whether it is healthy and which revisions it serves.
    fn health(&self, env: &E) -> impl Future<Output = (bool, Vec<u64>)> + 'static;
    /// What the handoff did (for logs and metrics).
    fn event(&self, env: &E, event: &AppEvent) {
        let _ = (env, event);
    }
}

/// Timings of the application side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppConfig {
    /// O's timings.
    pub incumbent: IncumbentConfig,
    /// N's timings.
    pub successor: SuccessorConfig,
}

/// Exit code when the process was not started by a coordinator as expected.
pub const EXIT_USAGE: i32 = 64;

/// Longest wait for one frame write to the coordinator.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
