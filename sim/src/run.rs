//! One run: a scenario (or a test body), a seed, and what came of it.
//!
//! The run is a pure function of (seed, scenario, mutant, build): every
//! parameter is derived from the seed and printed first, faults are on for
//! `duration` of virtual time, then a fault-free phase of `liveness` lets
//! pending work finish before the final checks.

use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use rand_chacha::rand_core::Rng;

use crate::check::{Checks, Failure, FailureClass};
use crate::exec::{Executor, Stop};
use crate::models::{FinalCheck, World};
use crate::plan::FaultPlan;
use crate::record::Record;
use crate::rng::{self, Decisions, Stream};
use crate::scenario::Scenario;
use crate::sched::{Pct, RandomScheduler, ReplayScheduler, Scheduler, SchedulerKind};
use crate::simulation::Simulation;
use crate::switches::Switches;
use crate::{panic_hook, trace, watchdog};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The seed (ignored when replaying: the record carries its own).
    pub seed: u64,
    /// The mutant switched on.
    pub mutant: Option<&'static str>,
    /// Overrides the scenario's scheduler.
    pub scheduler: Option<SchedulerKind>,
    /// Replays these decisions.
    pub replay: Option<Record>,
    /// Records every decision.
    pub record: bool,
    /// Keeps the last trace lines for a failure report.
    pub tail: bool,
    /// Keeps every hashed event (for `check-determinism`).
    pub dump: bool,
    /// The faults to inject instead of drawing them.
    pub plan: Option<FaultPlan>,
    /// The file `plan` came from (for the replay line).
    pub plan_file: Option<std::path::PathBuf>,
    /// Registers the run with the watchdog.
    pub watchdog: bool,
    /// Switches the run hash off (only to measure what hashing costs).
    pub no_hash: bool,
    /// Exports the run as a Chrome trace (`run --trace`).
    pub chrome_trace: bool,
    /// The most polls plus timer events the run may take (`None`:
    /// [`EVENT_BUDGET`](crate::exec::EVENT_BUDGET)).
    pub event_budget: Option<u64>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed the run derived everything from.
    pub seed: u64,
    /// The run hash.
    pub hash: u64,
    /// The first failure, if any.
    pub failure: Option<Failure>,
    /// Coverage counters: window -> (reached, opportunities).
    pub coverage: crate::check::Coverage,
    /// The seed and every parameter derived from it.
    pub header: Vec<String>,
    /// The one-line command that replays this run.
    pub replay: String,
    /// The last trace lines, if asked for.
    pub tail: Vec<String>,
    /// Every hashed event, if asked for.
    pub dump: Vec<String>,
    /// The run as Chrome trace-event JSON, if asked for.
    pub chrome_trace: Option<String>,
    /// Every decision, if asked for.
    pub record: Option<Record>,
    /// Scheduling steps taken.
    pub steps: u64,
    /// Virtual time at the end.
    pub end: Duration,
    /// Events hashed.
    pub events: u64,
    /// Remarks: unchecked invariants that failed, replay divergence.
    pub notes: Vec<String>,
    /// The faults this run decided on, replayable with `--plan`.
    pub plan: FaultPlan,
}

/// The shape of a run besides its workload.
pub struct RunShape<'a> {
    /// Scenario name (records, reports).
    pub name: &'a str,
    /// What reruns a seed of it (for the replay line).
    pub replayer: crate::replay::Replayer,
    /// Safety phase length.
    pub duration: Duration,
    /// Liveness phase length.
    pub liveness: Duration,
    /// Scheduler unless overridden.
    pub scheduler: SchedulerKind,
    /// Fault rates.
    pub faults: crate::faults::Faults,
    /// Invariants that fail the run.
    pub invariants: Vec<String>,
    /// Extra header lines (model parameters).
    pub extra_header: Vec<String>,
}

/// The one-line command that replays the run `opts` describes.
pub fn replay_command(shape: &RunShape<'_>, opts: &RunOptions) -> String {
    crate::replay::ReplayLine {
        replayer: &shape.replayer,
        seed: opts.replay.as_ref().map_or(opts.seed, |r| r.seed),
        mutant: opts.mutant,
        scheduler: opts.scheduler,
        plan_file: opts.plan_file.as_deref(),
    }
    .to_string()
}

static EPOCH: AtomicU16 = AtomicU16::new(1);

/// Fails the run if anything still holds its simulation once every task,
/// timer and world object is gone: a cycle that outlives the run, whose
/// memory a long sweep would pile up seed after seed.
fn leak_check(sim: Rc<Simulation>, checks: &Checks) {
    let strong = Rc::strong_count(&sim);
    if strong > 1 {
        checks.fail_class(
            FailureClass::SimError,
            "no-leak",
            format!(
                "{} references to the run's simulation outlived it (a cycle through model state that holds an environment?)",
                strong - 1
            ),
        );
    }
}

/// Runs `scenario` once.
pub fn run_scenario(scenario: &Scenario, opts: &RunOptions) -> RunReport {
    let spec = scenario.model.spec();
    let mut extra = vec![format!("model: {} ({})", spec.name, spec.about)];
    let params: Vec<String> = scenario.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !params.is_empty() {
        extra.push(format!("params: {}", params.join(" ")));
    }
    let shape = RunShape {
        name: &scenario.name,
        replayer: crate::replay::Replayer::cli(&scenario.path),
        duration: scenario.duration,
        liveness: scenario.liveness,
        scheduler: scenario.scheduler,
        faults: scenario.faults.clone(),
        invariants: scenario.invariants.clone(),
        extra_header: extra,
    };
    run(&shape, opts, &|world| scenario.model.start(world, &scenario.params))
}

/// Runs a workload once: `start` spawns its programs and returns the final
/// checks.
///
/// A PCT scheduler without a step estimate k first runs the same seed with
/// no change point (fixed random priorities, nothing hashed or recorded)
/// and takes that run's length as k, as the PCT paper estimates it: a
/// fixed default would put the change points past the end of short runs.
pub fn run(shape: &RunShape<'_>, opts: &RunOptions, start: &dyn Fn(&World) -> FinalCheck) -> RunReport {
    let kind = opts.scheduler.unwrap_or(shape.scheduler);
    let line = replay_command(shape, opts);
    let SchedulerKind::Pct { depth, steps: None } = kind else { return run_once(shape, opts, start, line) };
    if opts.replay.is_some() {
        return run_once(shape, opts, start, line);
    }
    let measure = RunOptions {
        seed: opts.seed,
        mutant: opts.mutant,
        scheduler: Some(SchedulerKind::Pct { depth: 1, steps: Some(1) }),
        plan: opts.plan.clone(),
        watchdog: opts.watchdog,
        no_hash: true,
        ..RunOptions::default()
    };
    let k = run_once(shape, &measure, start, line.clone()).steps.max(1);
    let opts = RunOptions { scheduler: Some(SchedulerKind::Pct { depth, steps: Some(k) }), ..opts.clone() };
    let mut report = run_once(shape, &opts, start, line);
    report.header.push(format!("pct steps: {k}, the length of this seed's run with no change point"));
    report
}

/// One run; `replay` is the command line that reproduces it.
fn run_once(
    shape: &RunShape<'_>,
    opts: &RunOptions,
    start: &dyn Fn(&World) -> FinalCheck,
    replay: String,
) -> RunReport {
    let seed = opts.replay.as_ref().map_or(opts.seed, |r| r.seed);
    trace::begin_run(trace::Keep { hash: !opts.no_hash, tail: opts.tail, dump: opts.dump, chrome: opts.chrome_trace });
    panic_hook::begin_quiet();

    // Swarm parameters: derived from the seed, printed first.
    let mut params = rng::generator(seed, rng::PARAMETERS);
    let poll_cost_max_ns = [100, 1_000, 10_000][rng::below(params.next_u64(), 3) as usize];
    let kind = opts.scheduler.unwrap_or(shape.scheduler);
    let internal = rng::generator(seed, rng::SCHEDULER_INTERNAL);
    let scheduler: Box<dyn Scheduler> = match (&opts.replay, kind) {
        (Some(rec), _) => Box::new(ReplayScheduler::new(rec.streams[Stream::Schedule as usize].clone())),
        (None, SchedulerKind::Random) => Box::new(RandomScheduler::new(internal)),
        (None, SchedulerKind::Pct { depth, steps }) => Box::new(Pct::new(internal, depth, steps.unwrap_or(1))),
    };
    let mut decisions = Decisions::new(seed, opts.record);
    if let Some(rec) = &opts.replay {
        let mut streams = rec.streams.clone();
        streams[Stream::Schedule as usize].clear();
        decisions = decisions.replaying(streams);
    }
    let guard = opts.watchdog.then(|| watchdog::watch(seed, replay.clone()));
    let checks = Checks::new(shape.invariants.clone());
    let epoch = EPOCH.fetch_add(1, Ordering::Relaxed);
    let forced = opts.plan.as_ref().map(|p| p.buggify.clone()).unwrap_or_default();
    let sim = Rc::new(Simulation {
        exec: Executor::new(
            epoch,
            scheduler,
            poll_cost_max_ns,
            opts.event_budget.unwrap_or(crate::exec::EVENT_BUDGET),
            guard.as_ref().map(watchdog::WatchGuard::slot),
        ),
        world: Default::default(),
        decisions: std::cell::RefCell::new(decisions),
        switches: Switches::new(opts.mutant, shape.faults.buggify, forced),
        checks: checks.clone(),
    });
    let mut header = vec![
        format!("seed: {seed}{}", if opts.replay.is_some() { " (from the replayed record)" } else { "" }),
        format!("scenario: {}", shape.name),
        format!("mutant: {}", opts.mutant.unwrap_or("none")),
        format!("scheduler: {}", sim.exec.scheduler_description()),
        format!(
            "derived: poll_cost_ns_max={poll_cost_max_ns} buggify={} duration_s={} liveness_s={}",
            if shape.faults.buggify { "on" } else { "off" },
            shape.duration.as_secs_f64(),
            shape.liveness.as_secs_f64()
        ),
    ];
    header.extend(shape.extra_header.iter().cloned());

    crate::faults::configure(&sim, &shape.faults, seed);
    let world = World::new(sim.clone(), checks.clone(), seed);
    let final_check = start(&world);
    let safety_end = u64::try_from(shape.duration.as_nanos()).unwrap_or(u64::MAX);
    let injected = crate::faults::install(&sim, &shape.faults, opts.plan.as_ref(), safety_end);
    for c in &injected.borrow().crash_points {
        header.push(format!("crash point: {} at hit {}", c.name, c.hit));
    }
    let mut stop = sim.run_until(safety_end);
    if stop != Stop::Failed {
        sim.switches.end_fault_phase();
        let end = safety_end.saturating_add(u64::try_from(shape.liveness.as_nanos()).unwrap_or(u64::MAX));
        stop = sim.run_until(end);
    }
    if stop != Stop::Failed {
        final_check(&checks);
    } else {
        drop(final_check);
    }
    let mut notes = checks.notes();
    if let Some(f) = checks.failure()
        && f.class == FailureClass::Liveness
    {
        let live = sim.exec.live_task_names();
        notes.push(format!("{} tasks alive at the end: {}", live.len(), live.join(", ")));
    }
    if let Some(step) = sim.exec.replay_diverged_at() {
        notes.push(format!("the replayed schedule stopped matching its record at step {step} (an edited record?)"));
    }
    let windows = shape.faults.crash_points.windows();
    if !windows.is_empty() {
        // One opportunity per seed and window; a hit only where the seed's
        // own point killed a process.
        let reached = sim.world.borrow().crashes.last_target_reached().filter(|(_, r)| *r).map(|(p, _)| p.to_owned());
        for w in windows {
            let hit = reached.as_deref() == w.strip_prefix("crash:");
            checks.cover(w, hit);
        }
    }
    let steps = sim.exec.steps();
    let end = Duration::from_nanos(sim.now_ns());
    let recorded = sim.decisions.borrow_mut().take_record();
    let mut plan = injected.borrow().clone();
    plan.buggify = sim.switches.decided_sites();
    drop(injected);
    sim.shutdown();
    drop(world);
    leak_check(sim, &checks);
    let t = trace::end_run(checks.failure().map(|f| f.to_string()));
    for p in panic_hook::end_quiet() {
        notes.push(format!("panicked: {p}"));
    }
    drop(guard);
    RunReport {
        replay,
        seed,
        hash: t.hash,
        failure: checks.failure(),
        coverage: checks.coverage(),
        header,
        tail: t.tail,
        dump: t.dump,
        chrome_trace: t.chrome,
        record: recorded.map(|streams| Record {
            seed,
            scenario: shape.name.to_owned(),
            mutant: opts.mutant.map(str::to_owned),
            streams,
        }),
        steps,
        end,
        events: t.events,
        notes,
        plan,
    }
}
