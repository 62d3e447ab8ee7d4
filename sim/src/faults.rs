//! The fault injector: turns a scenario's fault rates into events drawn
//! from the seed's fault stream (or takes them from a plan), and records
//! what it injected so the run's plan can be saved and replayed.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;

use warden::env::crash::{self, CrashPoint};

use crate::plan::{ClockStep, CrashAt, FaultPlan, HostCrash, Partition};
use crate::rng::{Stream, below};
use crate::simulation::Simulation;

/// Fault rates of a scenario (`[faults]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// `buggify!` sites may fire.
    #[serde(default)]
    pub buggify: bool,
    /// Power losses per host (but the model's own host 0) per virtual second.
    #[serde(default)]
    pub crash: f64,
    /// Partitions started per virtual second (between two random hosts).
    #[serde(default)]
    pub partition: f64,
    /// Probability that a disk operation fails (EIO or ENOSPC).
    #[serde(default)]
    pub disk_error: f64,
    /// Probability that a datagram is lost.
    #[serde(default)]
    pub udp_loss: f64,
    /// Which crash points a run kills a process at (see [`CrashPoints`]).
    #[serde(default)]
    pub crash_points: CrashPoints,
    /// Each host's wall clock is off by up to this much (drawn per host).
    #[serde(default)]
    pub clock_skew_ms: u64,
    /// Each host's wall clock runs fast or slow by up to this many parts
    /// per million (drawn per host).
    #[serde(default)]
    pub clock_drift_ppm: u64,
    /// Wall-clock steps per host (but the model's own host 0) per virtual
    /// second: the clock jumps by up to 30 s either way.
    #[serde(default)]
    pub clock_step: f64,
}

/// `crash_points` in `[faults]`: `true`, `false`, or a name prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CrashPoints {
    /// No crash point kills.
    #[default]
    Off,
    /// Each run kills a process at hit k (1-3) of one declared point,
    /// drawn from the seed.
    All,
    /// Each run kills a process at the first hit of one declared point
    /// whose name starts with this prefix, drawn uniformly from the seed;
    /// the run reports a coverage window `crash:<point>` for every such
    /// point (hit when a process died there).
    Prefix(String),
}

impl CrashPoints {
    /// Whether point `name` can be drawn.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            CrashPoints::Off => false,
            CrashPoints::All => true,
            CrashPoints::Prefix(p) => name.starts_with(p.as_str()),
        }
    }

    /// The coverage windows it adds to a run: `crash:<point>` per matching
    /// point, when a prefix is given.
    pub fn windows(&self) -> Vec<String> {
        match self {
            CrashPoints::Prefix(_) => {
                warden::env::crash::names().filter(|n| self.matches(n)).map(|n| format!("crash:{n}")).collect()
            }
            _ => Vec::new(),
        }
    }
}

impl<'de> Deserialize<'de> for CrashPoints {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Switch(bool),
            Prefix(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Switch(false) => CrashPoints::Off,
            Raw::Switch(true) => CrashPoints::All,
            Raw::Prefix(p) => CrashPoints::Prefix(p),
        })
    }
}

/// How often random faults are drawn.
const TICK_NS: u64 = 100_000_000;

fn chance(sim: &Simulation, p: f64) -> bool {
    let raw = sim.draw(Stream::Faults);
    p > 0.0 && crate::rng::unit(raw) < p
}

fn between(sim: &Simulation, lo: u64, hi: u64) -> u64 {
    lo + below(sim.draw(Stream::Faults), hi - lo + 1)
}

fn crash_host_at(sim: &Rc<Simulation>, at_ns: u64, c: &HostCrash) {
    let (k, host, down) = (Rc::downgrade(sim), c.host, c.restart_after_ms * 1_000_000);
    sim.exec.schedule(
        at_ns,
        Box::new(move || {
            let Some(k) = k.upgrade() else { return };
            crate::world::crash_host(&k, host);
            let k2 = Rc::downgrade(&k);
            k.exec.schedule(
                k.now_ns() + down,
                Box::new(move || {
                    if let Some(k) = k2.upgrade() {
                        crate::world::restart_host(&k, host);
                    }
                }),
            );
        }),
    );
}

fn partition(sim: &Simulation, p: &Partition) {
    let from = p.at_ms * 1_000_000;
    sim.world.borrow_mut().net.partitions.push((p.a, p.b, from, from + p.for_ms * 1_000_000));
    crate::trace::with_export(|t, _, _| {
        let text = format!("partition between hosts {} and {} for {} ms", p.a, p.b, p.for_ms);
        t.instant(Some(p.a), 0, "fault", &text, from);
    });
}

/// Applies the scenario's rates to the world, before the model starts (so
/// a model may still change them).
pub(crate) fn configure(sim: &Simulation, faults: &Faults, seed: u64) {
    let mut w = sim.world.borrow_mut();
    w.disk_error = faults.disk_error;
    w.net.udp_loss = faults.udp_loss;
    if faults.clock_skew_ms > 0 || faults.clock_drift_ppm > 0 {
        w.clocks = crate::world::ClockDraw {
            skew_max_ns: faults.clock_skew_ms.saturating_mul(1_000_000),
            drift_max_ppm: faults.clock_drift_ppm,
            rng: Some(crate::rng::generator(seed, crate::rng::CLOCKS)),
        };
    }
}

/// The largest wall-clock step a clock fault makes, either way.
const CLOCK_STEP_MAX_MS: u64 = 30_000;

fn step_clock_at(sim: &Rc<Simulation>, at_ns: u64, s: &ClockStep) {
    let (k, host, by_ns) = (Rc::downgrade(sim), s.host, s.by_ms.saturating_mul(1_000_000));
    sim.exec.schedule(
        at_ns,
        Box::new(move || {
            let Some(k) = k.upgrade() else { return };
            if let Some(h) = k.world.borrow_mut().hosts.get_mut(host as usize) {
                h.clock.stepped_ns = h.clock.stepped_ns.saturating_add(by_ns);
            }
            crate::trace::with_export(|t, now, _| {
                t.instant(Some(host), 0, "fault", &format!("wall clock of host {host} steps by {by_ns} ns"), now)
            });
        }),
    );
}

/// Sets up faults for a run: the plan's events if a plan is given, else
/// events drawn from `faults` until `safety_end_ns`. Returns the plan
/// being injected (filled in as random faults happen).
pub(crate) fn install(
    sim: &Rc<Simulation>,
    faults: &Faults,
    plan: Option<&FaultPlan>,
    safety_end_ns: u64,
) -> Rc<RefCell<FaultPlan>> {
    let injected = Rc::new(RefCell::new(FaultPlan::default()));
    // Random faults are drawn the same way with or without a plan, so a
    // saved plan replays the very run it came from; with a plan, only its
    // events are injected.
    let planned = plan.is_some();
    let drawn = draw_crash_points(sim, &faults.crash_points);
    let crash_points = match plan {
        Some(p) => p.crash_points.clone(),
        None => drawn,
    };
    sim.world.borrow_mut().crashes.set(crash_points.iter().map(|c| (c.name.clone(), c.hit)));
    injected.borrow_mut().crash_points = crash_points;
    if let Some(plan) = plan {
        for c in &plan.host_crashes {
            crash_host_at(sim, c.at_ms * 1_000_000, c);
        }
        for c in &plan.clock_steps {
            step_clock_at(sim, c.at_ms * 1_000_000, c);
        }
        for p in &plan.partitions {
            partition(sim, p);
        }
        let mut i = injected.borrow_mut();
        i.host_crashes = plan.host_crashes.clone();
        i.clock_steps = plan.clock_steps.clone();
        i.partitions = plan.partitions.clone();
    }
    if faults.crash > 0.0 || faults.partition > 0.0 || faults.clock_step > 0.0 {
        schedule_tick(
            sim,
            Tick { faults: faults.clone(), planned, injected: injected.clone() },
            TICK_NS,
            safety_end_ns,
        );
    }
    injected
}

/// The crash points a run kills at: one drawn among the matching declared
/// points; a recovery point is preceded by a crash at one of the points
/// that lead to it.
fn draw_crash_points(sim: &Simulation, which: &CrashPoints) -> Vec<CrashAt> {
    let candidates: Vec<&CrashPoint> = crash::all().filter(|p| which.matches(p.name)).collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let p = candidates[between(sim, 0, candidates.len() as u64 - 1) as usize];
    let hit = match which {
        CrashPoints::All => between(sim, 1, 3),
        _ => 1,
    };
    let mut out = Vec::new();
    if let Some(lead) = p.after_crash_at {
        let leads: Vec<&CrashPoint> =
            crash::all().filter(|q| q.after_crash_at.is_none() && q.name.starts_with(lead)).collect();
        if !leads.is_empty() {
            let q = leads[between(sim, 0, leads.len() as u64 - 1) as usize];
            out.push(CrashAt { name: q.name.to_owned(), hit: 1 });
        }
    }
    out.push(CrashAt { name: p.name.to_owned(), hit });
    out
}

/// What the periodic fault draw needs.
#[derive(Clone)]
struct Tick {
    faults: Faults,
    planned: bool,
    injected: Rc<RefCell<FaultPlan>>,
}

fn schedule_tick(sim: &Rc<Simulation>, t: Tick, at: u64, end: u64) {
    if at >= end {
        return;
    }
    let k = Rc::downgrade(sim);
    sim.exec.schedule(
        at,
        Box::new(move || {
            let Some(k) = k.upgrade() else { return };
            if k.faults_allowed() {
                tick(&k, &t);
            }
            schedule_tick(&k, t, at + TICK_NS, end);
        }),
    );
}

fn tick(sim: &Rc<Simulation>, t: &Tick) {
    let faults = &t.faults;
    let now = sim.now_ns();
    let hosts: Vec<(u32, bool)> = sim.world.borrow().hosts.iter().enumerate().map(|(i, h)| (i as u32, h.up)).collect();
    let per_tick = TICK_NS as f64 / 1e9;
    for &(host, up) in hosts.iter().skip(1) {
        if up && chance(sim, faults.crash * per_tick) {
            let c = HostCrash { at_ms: now / 1_000_000, host, restart_after_ms: between(sim, 500, 5_000) };
            if !t.planned {
                crash_host_at(sim, now, &c);
                t.injected.borrow_mut().host_crashes.push(c);
            }
        }
    }
    if faults.clock_step > 0.0 {
        for &(host, _) in hosts.iter().skip(1) {
            if chance(sim, faults.clock_step * per_tick) {
                let by = between(sim, 0, 2 * CLOCK_STEP_MAX_MS) as i64 - CLOCK_STEP_MAX_MS as i64;
                let c = ClockStep { at_ms: now / 1_000_000, host, by_ms: by };
                if !t.planned {
                    step_clock_at(sim, now, &c);
                    t.injected.borrow_mut().clock_steps.push(c);
                }
            }
        }
    }
    if hosts.len() >= 2 && chance(sim, faults.partition * per_tick) {
        let a = between(sim, 0, hosts.len() as u64 - 1) as u32;
        let b = (a + 1 + between(sim, 0, hosts.len() as u64 - 2) as u32) % hosts.len() as u32;
        let p = Partition { at_ms: now / 1_000_000, a, b, for_ms: between(sim, 100, 5_000) };
        if !t.planned {
            partition(sim, &p);
            t.injected.borrow_mut().partitions.push(p);
        }
    }
}
