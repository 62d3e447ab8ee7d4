//! `RealEnv`: the production backend on tokio and the operating system.
//!
//! Core code runs on a current-thread runtime inside a `LocalSet` (see
//! [`RealEnv::block_on`]), so spawned futures need not be `Send`. This module
//! is exempt from DESIGN.md rule 1: it is where ambient time, randomness and
//! OS calls are allowed to live.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use super::{Env, Instant, LocalTask};

/// The real environment of this OS process.
#[derive(Clone)]
pub struct RealEnv {
    rng: Rc<Cell<u64>>,
}

impl RealEnv {
    /// A handle for this process; must be used inside [`RealEnv::block_on`].
    pub fn new() -> Self {
        // RandomState's keys come from the OS's entropy source once per
        // thread; two of them give an unpredictable 64-bit seed.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        RealEnv {
            rng: Rc::new(Cell::new(seed)),
        }
    }

    /// Runs `fut` to completion on a current-thread runtime with a
    /// `LocalSet`, the shape every real-backend program runs in.
    pub fn block_on<F: Future>(fut: F) -> std::io::Result<F::Output> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let local = tokio::task::LocalSet::new();
        Ok(local.block_on(&rt, fut))
    }
}

impl Default for RealEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// CLOCK_BOOTTIME: monotonic, counts suspended time, starts at boot.
fn boot_time() -> Instant {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on
    // every Linux since 2.6.39.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_BOOTTIME) failed");
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    Instant::from_nanos(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

impl Env for RealEnv {
    fn now(&self) -> Instant {
        boot_time()
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + 'static {
        tokio::time::sleep(deadline.saturating_duration_since(self.now()))
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + 'static {
        tokio::time::sleep(d)
    }

    fn yield_now(&self) -> impl Future<Output = ()> + 'static {
        tokio::task::yield_now()
    }

    fn spawn_task(&self, name: &str, task: LocalTask) {
        tracing::trace!(task = name, "spawn");
        drop(tokio::task::spawn_local(task));
    }

    fn random_u64(&self) -> u64 {
        // splitmix64: fast, full period, good enough for jitter and ids.
        let s = self.rng.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.rng.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn buggify_site(&self, _site: &'static str) -> bool {
        false
    }

    fn mutant_enabled(&self, _name: &'static str) -> bool {
        false
    }

    fn report_unobserved_panic(&self, task: &str, message: &str) {
        tracing::error!(task, message, "detached task panicked");
    }
}
