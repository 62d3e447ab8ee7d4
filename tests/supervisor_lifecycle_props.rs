//! Property tests of the lifecycle machine, driven directly: random calls,
//! run ends, stop returns, check results, signals and time steps. Whatever
//! happens, services start in order (each once the one before it was
//! ready), the stop cancels contexts in reverse start order one service at
//! a time, timers never fire in place, and a stop always finishes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use warden::env::{Instant, Signal};
use warden::supervisor::lifecycle::{
    Action, Input, Lifecycle, LifecycleConfig, Phase, RestartPolicy, RunOutcome, ServiceSpec,
};
use warden::supervisor::{BackoffConfig, Intensity, RunError};

const SERVICES: usize = 4;

fn config() -> LifecycleConfig {
    LifecycleConfig {
        restart_reset_interval: Duration::from_secs(30),
        backoff: BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            multiplier_percent: 200,
            jitter_permille: 500,
        },
        intensity: Intensity { max_restarts: 5, period: Duration::from_secs(10) },
        stop_timeout: Duration::from_secs(1),
        check_interval: Duration::from_millis(200),
        ready_timeout: Duration::from_secs(20),
    }
}

fn spec(i: usize) -> ServiceSpec {
    ServiceSpec {
        name: format!("s{i}"),
        policy: if i == 3 { RestartPolicy::Never } else { RestartPolicy::OnFailure },
        has_stop: i != 1,
        has_readiness: i.is_multiple_of(2),
        has_liveness: i == 1,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Stop,
    Signal,
    /// The current run of a service ends: clean, cancelled or failed.
    RunEnds(usize, u8),
    /// A stop in flight returns.
    StopReturns(usize, bool),
    /// A readiness check in flight completes.
    Ready(usize, bool),
    /// Time passes (ms), then the machine's timeout if due.
    Step(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Stop),
        1 => Just(Op::Signal),
        4 => (0..SERVICES, 0..3u8).prop_map(|(s, k)| Op::RunEnds(s, k)),
        3 => (0..SERVICES, any::<bool>()).prop_map(|(s, ok)| Op::StopReturns(s, ok)),
        4 => (0..SERVICES, prop::bool::weighted(0.8)).prop_map(|(s, ok)| Op::Ready(s, ok)),
        4 => (1..3_000u64).prop_map(Op::Step),
    ]
}

/// The driver's side: what is in flight, and the order checks.
struct Harness {
    m: Lifecycle,
    now: Instant,
    runs: BTreeMap<usize, u64>,
    stops: BTreeMap<usize, u64>,
    checks: BTreeSet<usize>,
    /// Services whose last run is up: running, or serving in the background.
    up: BTreeSet<usize>,
    ever_started: Vec<bool>,
    ever_ready: Vec<bool>,
    /// Services whose context the stop cancelled, in order.
    cancelled: Vec<usize>,
    finished: bool,
}

impl Harness {
    fn new() -> Self {
        let mut m = Lifecycle::new(config(), 7);
        for i in 0..SERVICES {
            m.handle(Instant::BOOT, Input::Register(spec(i))).expect("register");
        }
        Harness {
            m,
            now: Instant::BOOT,
            runs: BTreeMap::new(),
            stops: BTreeMap::new(),
            checks: BTreeSet::new(),
            up: BTreeSet::new(),
            ever_started: vec![false; SERVICES],
            ever_ready: vec![false; SERVICES],
            cancelled: Vec::new(),
            finished: false,
        }
    }

    fn feed(&mut self, input: Input) {
        let before = self.m.phase();
        let _ = self.m.handle(self.now, input);
        assert!(self.m.phase() >= before, "the phase went back from {before:?} to {:?}", self.m.phase());
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(a) = self.m.poll_action() {
            assert!(!self.finished, "an action after Finish: {a:?}");
            match a {
                Action::StartRun { service, run } => {
                    assert_ne!(self.m.phase(), Phase::Stopping, "a start during the stop");
                    if !self.ever_started[service] {
                        for before in 0..service {
                            assert!(self.ever_started[before], "s{service} started before s{before}");
                            if spec(before).has_readiness && before + 1 == service {
                                assert!(self.ever_ready[before], "s{service} started before s{before} was ready");
                            }
                        }
                    }
                    self.ever_started[service] = true;
                    self.runs.insert(service, run);
                    self.up.insert(service);
                }
                Action::CancelRun { service } => {
                    assert_eq!(self.m.phase(), Phase::Stopping, "a context cancelled outside the stop");
                    if let Some(last) = self.cancelled.last() {
                        assert!(service < *last, "s{service}'s context cancelled after s{last}'s: not in reverse");
                        assert!(
                            !self.runs.contains_key(last) && !self.stops.contains_key(last),
                            "s{last} still stopping"
                        );
                    }
                    self.cancelled.push(service);
                }
                Action::AbortRun { service } => {
                    self.runs.remove(&service);
                    self.up.remove(&service);
                }
                Action::RunStop { service, stop } => {
                    self.stops.insert(service, stop);
                }
                Action::AbortStop { service, .. } => {
                    self.stops.remove(&service);
                }
                Action::CheckReadiness { service } => {
                    self.checks.insert(service);
                }
                Action::ProbeLiveness { service } => {
                    let _ = self.m.handle(self.now, Input::Liveness { service, ok: true });
                }
                Action::Finish => self.finished = true,
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Stop => self.feed(Input::Stop),
            Op::Signal => self.feed(Input::Signal(Signal::Term)),
            Op::RunEnds(service, kind) => {
                if let Some(run) = self.runs.remove(&service) {
                    if kind != 0 {
                        self.up.remove(&service);
                    }
                    let outcome = match kind {
                        0 => RunOutcome::Clean,
                        1 => RunOutcome::Cancelled,
                        _ => RunOutcome::Error(RunError::new("boom")),
                    };
                    self.feed(Input::RunEnded { service, run, outcome });
                }
            }
            Op::StopReturns(service, ok) => {
                if let Some(stop) = self.stops.remove(&service) {
                    let result = if ok { Ok(()) } else { Err(RunError::new("stop failed")) };
                    self.feed(Input::StopEnded { service, stop, result });
                }
            }
            Op::Ready(service, ok) => {
                if self.checks.remove(&service) {
                    if ok && self.up.contains(&service) {
                        self.ever_ready[service] = true;
                    }
                    self.feed(Input::Readiness { service, ok });
                }
            }
            Op::Step(ms) => self.step(Duration::from_millis(ms)),
        }
    }

    fn step(&mut self, d: Duration) {
        let until = self.now + d;
        while let Some(t) = self.m.poll_timeout().filter(|t| *t <= until) {
            self.now = self.now.max(t);
            self.feed(Input::Timeout);
            if let Some(next) = self.m.poll_timeout() {
                assert!(next > self.now, "a timer fired in place: {next:?} at {:?}", self.now);
            }
        }
        self.now = until;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_lifecycle_machine_keeps_its_order(ops in prop::collection::vec(op(), 1..80)) {
        let mut h = Harness::new();
        h.feed(Input::Start);
        for op in &ops {
            h.apply(op);
        }
        // Quiesce: stop, then every run and stop ends, time passes.
        h.feed(Input::Stop);
        for _ in 0..64 {
            if h.finished {
                break;
            }
            for s in 0..SERVICES {
                h.apply(&Op::RunEnds(s, 1));
                h.apply(&Op::StopReturns(s, true));
            }
            h.step(Duration::from_secs(2));
        }
        prop_assert!(h.finished, "the stop never finished: {:?}", h.m.phase());
        prop_assert_eq!(h.m.phase(), Phase::Stopped);
        let r = h.m.report();
        let started: Vec<String> =
            (0..SERVICES).rev().filter(|i| h.ever_started[*i]).map(|i| format!("s{i}")).collect();
        let mut ended: Vec<String> = r.stopped.iter().chain(&r.abandoned).cloned().collect();
        ended.sort();
        let mut want = started.clone();
        want.sort();
        if r.forced_by.is_none() {
            prop_assert_eq!(ended, want, "every started service stopped or was abandoned");
        }
    }
}
