//! The fault injector: turns a scenario's fault rates into events drawn
//! from the seed's fault stream (or takes them from a plan), and records
//! what it injected so the run's plan can be saved and replayed.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;

use crate::plan::{CrashAt, FaultPlan, HostCrash, Partition};
use crate::rng::{Stream, below};
use crate::simulation::Simulation;

/// Fault rates of a scenario (`[faults]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
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
    /// Each run kills a process at the k-th hit (k in 1..=3) of one
    /// declared crash point, chosen from the seed.
    #[serde(default)]
    pub crash_points: bool,
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
}

/// Applies the scenario's rates to the world, before the model starts (so
/// a model may still change them).
pub(crate) fn configure(sim: &Simulation, faults: Faults) {
    let mut w = sim.world.borrow_mut();
    w.disk_error = faults.disk_error;
    w.net.udp_loss = faults.udp_loss;
}

/// Sets up faults for a run: the plan's events if a plan is given, else
/// events drawn from `faults` until `safety_end_ns`. Returns the plan
/// being injected (filled in as random faults happen).
pub(crate) fn install(
    sim: &Rc<Simulation>,
    faults: Faults,
    plan: Option<&FaultPlan>,
    safety_end_ns: u64,
) -> Rc<RefCell<FaultPlan>> {
    let injected = Rc::new(RefCell::new(FaultPlan::default()));
    // Random faults are drawn the same way with or without a plan, so a
    // saved plan replays the very run it came from; with a plan, only its
    // events are injected.
    let planned = plan.is_some();
    if faults.crash_points {
        let names: Vec<&str> = warden::env::crash::names().collect();
        if !names.is_empty() {
            let name = names[between(sim, 0, names.len() as u64 - 1) as usize];
            let hit = between(sim, 1, 3);
            if !planned {
                sim.world.borrow_mut().crash_at = Some((name.to_owned(), hit));
                injected.borrow_mut().crash_point = Some(CrashAt { name: name.to_owned(), hit });
            }
        }
    }
    if let Some(plan) = plan {
        for c in &plan.host_crashes {
            crash_host_at(sim, c.at_ms * 1_000_000, c);
        }
        for p in &plan.partitions {
            partition(sim, p);
        }
        sim.world.borrow_mut().crash_at = plan.crash_point.as_ref().map(|c| (c.name.clone(), c.hit));
        let mut i = injected.borrow_mut();
        i.host_crashes = plan.host_crashes.clone();
        i.partitions = plan.partitions.clone();
        i.crash_point = plan.crash_point.clone();
    }
    if faults.crash > 0.0 || faults.partition > 0.0 {
        schedule_tick(sim, Tick { faults, planned, injected: injected.clone() }, TICK_NS, safety_end_ns);
    }
    injected
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
    let faults = t.faults;
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
