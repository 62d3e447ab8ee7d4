//! `SimEnv`: the simulator's implementation of `warden::env::Env`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use warden::env::{Env, Instant, LocalTask};

use crate::check::FailureClass;
use crate::exec::TimerKey;
use crate::rng::Stream;
use crate::simulation::Simulation;

/// The environment of one simulated process.
#[derive(Clone)]
pub struct SimEnv {
    pub(crate) sim: Rc<Simulation>,
    /// The process's global id (never reused, unlike its pid).
    pub(crate) proc: u32,
    pub(crate) host: u32,
    /// Global virtual time the host booted: `now()` is relative to it.
    pub(crate) boot_ns: u64,
}

impl SimEnv {
    /// The environment of process `proc` on `host`, booted at `boot_ns`.
    pub(crate) fn new(sim: Rc<Simulation>, proc: u32, host: u32, boot_ns: u64) -> Self {
        SimEnv { sim, proc, host, boot_ns }
    }

    /// The process's simulator-wide id (never reused).
    pub fn proc_id(&self) -> u32 {
        self.proc
    }

    /// The host's index.
    pub fn host_index(&self) -> u32 {
        self.host
    }

    /// Whether the run is in its phase with faults (models inject their
    /// own faults, such as a registry's stalls, only then).
    pub fn faults_allowed(&self) -> bool {
        self.sim.faults_allowed()
    }
}

impl Env for SimEnv {
    #[inline]
    fn now(&self) -> Instant {
        Instant::from_nanos(self.sim.now_ns().saturating_sub(self.boot_ns))
    }

    fn wall_clock(&self) -> SystemTime {
        let clock = self.sim.world.borrow().hosts.get(self.host as usize).map(|h| h.clock).unwrap_or_default();
        clock.read(self.sim.now_ns())
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + 'static {
        Sleep { sim: self.sim.clone(), deadline: deadline.as_nanos().saturating_add(self.boot_ns), key: None }
    }

    fn yield_now(&self) -> impl Future<Output = ()> + 'static {
        YieldNow { yielded: false }
    }

    fn spawn_task(&self, name: &str, task: LocalTask) {
        if !self.sim.exec.is_dead(self.proc) {
            self.sim.exec.spawn(self.proc, name, task);
        }
    }

    fn random_u64(&self) -> u64 {
        self.sim.draw(Stream::App)
    }

    fn buggify_site(&self, site: &'static str) -> bool {
        self.sim.buggify(site)
    }

    fn mutant_enabled(&self, name: &'static str) -> bool {
        self.sim.mutant_on(name)
    }

    fn take_panic_location(&self) -> Option<String> {
        crate::panic_hook::take_location()
    }

    fn report_unobserved_panic(&self, task: &str, message: &str) {
        self.sim.checks.fail_class(
            FailureClass::Crash,
            "no-unobserved-panic",
            format!("detached task {task:?} (proc {}) panicked: {message}", self.proc),
        );
    }

    fn crash_point(&self, name: &'static str) -> impl Future<Output = ()> + 'static {
        let crashed = crate::world::hit_crash_point(&self.sim, self.proc, name);
        CrashPoint { crashed }
    }
}

/// A virtual-time sleep.
struct Sleep {
    sim: Rc<Simulation>,
    deadline: u64,
    key: Option<TimerKey>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.sim.now_ns() >= self.deadline {
            self.key = None;
            return Poll::Ready(());
        }
        match self.key {
            Some(key) => self.sim.exec.update_timer(key, cx.waker()),
            None => {
                let key = self.sim.exec.add_timer(self.deadline, cx.waker());
                self.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.sim.exec.remove_timer(key);
        }
    }
}

/// Never completes once the process crashed here (its task is discarded
/// after this poll).
struct CrashPoint {
    crashed: bool,
}

impl Future for CrashPoint {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.crashed { Poll::Pending } else { Poll::Ready(()) }
    }
}

/// Returns `Pending` once after waking itself: every other ready task may
/// run first, and the executor counts it as a yield, not progress.
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
