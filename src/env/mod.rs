//! The environment abstraction: everything core code may learn from or do
//! to the outside world goes through an [`Env`].
//!
//! Two backends implement it: [`real::RealEnv`] (tokio and the OS) and
//! `warden_sim::SimEnv` (seeded, virtual time). A program is an
//! `async fn<E: Env>(env: E, ..)`, so the same code runs in both.
//!
//! One thread drives core code in both backends, so futures here are not
//! `Send` and state needs no locks.

pub mod buggify;
pub mod crash;
mod disk;
mod instant;
pub mod io;
pub mod mutants;
mod net;
mod process;
pub mod real;
mod sleep;
mod splitmix;
mod task;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

pub use disk::{DiskEnv, OpenOptions};
pub use instant::Instant;
pub use net::{Addr, NetEnv};
pub use process::{
    CHILD_PID, ExitStatus, OutputLine, OutputStream, Pid, ProcessEnv, ProcessSpec, Signal, SpawnOptions,
};
pub use sleep::{Cancelled, sleep_or_cancelled};
pub use splitmix::{mix64, splitmix64};
pub use task::{AbortHandle, JoinError, JoinHandle, panic_message};
pub use tokio_util::sync::CancellationToken;

/// A future spawned onto an [`Env`]: local (not `Send`), owned, returns nothing.
pub type LocalTask = Pin<Box<dyn Future<Output = ()> + 'static>>;

/// The deadline of [`Env::timeout`] passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Clock, timers, tasks, randomness, processes, sockets and disk for one
/// process.
///
/// A handle is cheap to clone and belongs to one process: in the simulator
/// it carries the host and pid, and after that process died every call made
/// through it does nothing (a sleep never completes, a spawn is dropped).
///
/// Backends implement the required methods; core code calls the provided
/// ones ([`Env::spawn`], [`Env::timeout`], [`Env::mutant`], ...).
pub trait Env: Clone + 'static + ProcessEnv + NetEnv + DiskEnv {
    /// Monotonic, boot-relative time of this host.
    fn now(&self) -> Instant;

    /// Wall-clock time: may jump, and differs between hosts. In the
    /// simulator a scenario's clock faults give each host a skew, a drift
    /// and steps (`clock_skew_ms`, `clock_drift_ppm`, `clock_step`).
    fn wall_clock(&self) -> SystemTime;

    /// Completes once [`Env::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + 'static;

    /// Lets every other ready task run before this one continues.
    ///
    /// Drivers call it wherever the real system could be preempted between
    /// two steps that matter (DESIGN.md rule 4).
    fn yield_now(&self) -> impl Future<Output = ()> + 'static;

    /// Runs `task` concurrently, owned by this process. Use [`Env::spawn`].
    fn spawn_task(&self, name: &str, task: LocalTask);

    /// A uniformly random `u64` from this process's stream.
    fn random_u64(&self) -> u64;

    /// Whether the declared fault-injection site `site` fires now (see
    /// [`buggify`]). Use [`buggify!`](crate::buggify).
    fn buggify_site(&self, site: &'static str) -> bool;

    /// Whether the named historical bug is switched on. Use [`Env::mutant`].
    fn mutant_enabled(&self, name: &'static str) -> bool;

    /// A spawned task panicked and nobody holds its [`JoinHandle`].
    fn report_unobserved_panic(&self, task: &str, message: &str);

    /// Where the last panic caught on this thread happened (`file:line`),
    /// once: join errors carry it, so a recovered panic is logged with its
    /// location. Backends learn it from a panic hook.
    fn take_panic_location(&self) -> Option<String>;

    /// A named crash point (see [`crash`]); use [`crash_point!`](crate::crash_point).
    fn crash_point(&self, name: &'static str) -> impl Future<Output = ()> + 'static;

    /// Completes after `d` has passed on [`Env::now`].
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + 'static {
        self.sleep_until(self.now() + d)
    }

    /// Runs `fut` to completion or until `d` has passed, whichever is first.
    ///
    /// `fut` is polled before the timer, so a future that is ready at the
    /// deadline wins.
    fn timeout<F: Future>(&self, d: Duration, fut: F) -> impl Future<Output = Result<F::Output, Elapsed>> {
        let sleep = self.sleep(d);
        async move {
            let fut = std::pin::pin!(fut);
            let sleep = std::pin::pin!(sleep);
            match futures::future::select(fut, sleep).await {
                futures::future::Either::Left((out, _)) => Ok(out),
                futures::future::Either::Right(((), _)) => Err(Elapsed),
            }
        }
    }

    /// Spawns `fut` and returns a handle to join or abort it.
    ///
    /// A panic inside `fut` is caught and returned as [`JoinError::Panicked`];
    /// dropping the handle detaches the task.
    fn spawn<F>(&self, name: &str, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (handle, task) = task::wrap(self.clone(), name, fut);
        self.spawn_task(name, task);
        handle
    }

    /// Whether the named mutant (a known historical bug) is on for this run.
    ///
    /// Always `false` unless warden is built with the `mutants` feature.
    #[inline]
    fn mutant(&self, name: &'static str) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.mutant_enabled(name)
        }
        #[cfg(not(feature = "mutants"))]
        {
            let _ = name;
            false
        }
    }

    /// A uniformly random integer in `[0, bound)`; `bound` must be non-zero.
    fn random_below(&self, bound: u64) -> u64 {
        assert!(bound > 0, "random_below(0)");
        // Lemire's multiply-shift with rejection: unbiased and one draw in
        // the common case.
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let m = u128::from(self.random_u64()) * u128::from(bound);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A random duration in `[0, max]` with nanosecond resolution.
    fn random_duration(&self, max: Duration) -> Duration {
        let max_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.random_below(max_ns.saturating_add(1).max(1)))
    }

    /// `true` with probability `numerator / denominator`.
    fn random_ratio(&self, numerator: u64, denominator: u64) -> bool {
        self.random_below(denominator) < numerator
    }
}
