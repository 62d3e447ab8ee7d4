//! What the lifecycle app observed, and the checks that read it after the
//! run: start order, one start per service, stop order by contexts and by
//! stop functions, abandoned stops, failures reported.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use warden::env::{CancellationToken, Instant};
use warden::supervisor::lifecycle::StopReport;

use crate::check::Checks;

/// Registration order of the services that have a start function (the
/// function-less `bare` comes between the worker and the store).
pub(super) const ORDER: [&str; 3] = ["http", "worker", "store"];
/// The services with a readiness check: the next one waits for them.
const WITH_READINESS: [&str; 2] = ["http", "store"];

/// One service's history.
#[derive(Default)]
pub(super) struct Svc {
    /// When each run began.
    pub(super) starts: RefCell<Vec<Instant>>,
    /// Runs begun and not returned yet.
    pub(super) live: Cell<u32>,
    /// Runs that returned an error, with their context at that moment.
    pub(super) errors: RefCell<Vec<CancellationToken>>,
    /// When its first readiness check passed.
    pub(super) ready_at: Cell<Option<Instant>>,
    /// When its (last) run's context was cancelled.
    pub(super) ctx_cancelled: Cell<Option<Instant>>,
    /// When its stop function was called and when it returned.
    pub(super) stop_called: Cell<Option<Instant>>,
    pub(super) stop_returned: Cell<Option<Instant>>,
    /// Its stop function ignores its deadline.
    pub(super) hangs: Cell<bool>,
}

/// What the app observed, shared with the model's checker.
#[derive(Default)]
pub(super) struct Observed {
    pub(super) svcs: BTreeMap<&'static str, Svc>,
    /// Stop functions in the order they were called.
    pub(super) stops: RefCell<Vec<&'static str>>,
    pub(super) report: RefCell<Option<StopReport>>,
    pub(super) stopped_at: Cell<Option<Instant>>,
    /// The first SIGTERM.
    pub(super) first_signal: Cell<Option<Instant>>,
}

impl Observed {
    pub(super) fn new() -> Self {
        Observed { svcs: ORDER.iter().map(|n| (*n, Svc::default())).collect(), ..Observed::default() }
    }

    pub(super) fn svc(&self, name: &str) -> &Svc {
        &self.svcs[name]
    }

    /// A run of `name` begins: a second instance beside a running one is a
    /// service started twice.
    pub(super) fn run_begins(&self, checks: &Checks, name: &str, now: Instant) {
        let s = self.svc(name);
        s.starts.borrow_mut().push(now);
        s.live.set(s.live.get() + 1);
        if s.live.get() > 1 {
            checks.fail("one-start-per-service", format!("{} instances of {name} run at once", s.live.get()));
        }
    }

    pub(super) fn run_returns(&self, name: &str, error: bool, ctx: &CancellationToken) {
        let s = self.svc(name);
        s.live.set(s.live.get().saturating_sub(1));
        if error {
            s.errors.borrow_mut().push(ctx.clone());
        }
    }
}

/// Each service starts only once the one registered before it was ready.
pub(super) fn check_start_order(checks: &Checks, obs: &Observed) {
    for w in ORDER.windows(2).filter(|w| WITH_READINESS.contains(&w[0])) {
        let (before, after) = (obs.svc(w[0]), obs.svc(w[1]));
        let Some(first) = after.starts.borrow().first().copied() else { continue };
        match before.ready_at.get() {
            Some(ready) if ready <= first => {}
            ready => checks.fail("start-order", format!("{} started at {first:?}, {} ready at {ready:?}", w[1], w[0])),
        }
    }
}

/// Stop functions run in reverse start order, one at a time; contexts are
/// cancelled in reverse start order, each only after the service started
/// after it stopped or was abandoned, and none before the stop began.
pub(super) fn check_stops(checks: &Checks, obs: &Observed, stop_timeout: Duration) {
    let report = obs.report.borrow();
    let Some(report) = report.as_ref() else { return };
    let forced = report.forced_by.is_some();
    let started: Vec<&str> = ORDER.iter().copied().filter(|n| !obs.svc(n).starts.borrow().is_empty()).collect();
    let want: Vec<&str> = started.iter().rev().copied().collect();
    let order = obs.stops.borrow().clone();
    if (!forced && order != want) || (forced && !want.starts_with(&order)) {
        checks.fail("stop-order", format!("stops ran in order {order:?}, want {want:?} (reverse start order)"));
    }
    let slack = Duration::from_millis(10);
    // When each stopped service was done: its stop returned, or its
    // deadline (from its context's cancellation) passed.
    let done_at = |n: &str| {
        let s = obs.svc(n);
        match (s.hangs.get(), s.stop_called.get(), s.stop_returned.get()) {
            (true, Some(called), _) => Some(called + stop_timeout - slack),
            (_, _, Some(returned)) => Some(returned),
            _ => s.ctx_cancelled.get(),
        }
    };
    for w in want.windows(2) {
        let (later, earlier) = (w[0], w[1]);
        let Some(cancelled) = obs.svc(earlier).ctx_cancelled.get() else { continue };
        if let Some(done) = done_at(later)
            && cancelled < done
        {
            checks.fail(
                "stop-order",
                format!("{earlier}'s context cancelled at {cancelled:?}, before {later} stopped ({done:?})"),
            );
        }
    }
    if let Some(first) = obs.first_signal.get() {
        for n in &started {
            if let Some(c) = obs.svc(n).ctx_cancelled.get()
                && c < first
            {
                checks.fail("stop-order", format!("{n}'s context cancelled at {c:?}, before the stop at {first:?}"));
            }
        }
    }
    if !forced {
        for n in ["store", "http"] {
            if started.contains(&n) && obs.svc(n).ctx_cancelled.get().is_none() {
                checks.fail("stop-order", format!("{n} stopped but its context was never cancelled"));
            }
        }
    }
    let hung_called: Vec<String> = order.iter().filter(|n| obs.svc(n).hangs.get()).map(|n| (*n).to_owned()).collect();
    if !forced && report.abandoned != hung_called {
        checks.fail("abandoned-reported", format!("abandoned {:?}, hanging stops {hung_called:?}", report.abandoned));
    }
    checks.cover("stop-abandoned", !report.abandoned.is_empty());
}
