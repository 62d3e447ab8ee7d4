//! Shrinking a failing run's faults: starting from the fault plan a seed
//! drew, remove faults and shorten them while the run still fails the same
//! way (same failure class, same invariant), and keep the smallest plan
//! found. Plain delta debugging, one fault at a time, in a fixed order:
//! deterministic, and every plan it tries replays with `run --plan`.

use crate::check::Failure;
use crate::plan::FaultPlan;
use crate::run::{RunOptions, RunReport};

/// What shrinking found.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The failure every kept plan reproduces.
    pub failure: Failure,
    /// The plan the seed drew.
    pub original: FaultPlan,
    /// The smallest plan that still fails the same way.
    pub plan: FaultPlan,
    /// Runs tried.
    pub runs: u64,
}

/// Why a seed cannot be shrunk.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The seed passes: there is nothing to keep failing.
    #[error("seed {0} passes: nothing to shrink")]
    Passes(u64),
}

fn same(a: &Failure, b: &Failure) -> bool {
    a.class == b.class && a.invariant == b.invariant
}

/// Every plan one step smaller than `p`: one fault removed, or one fault
/// shortened (a partition or a downtime halved, a crash point's hit
/// lowered), in a fixed order.
fn candidates(p: &FaultPlan) -> Vec<FaultPlan> {
    let mut out = Vec::new();
    for (site, on) in &p.buggify {
        if *on {
            let mut c = p.clone();
            c.buggify.insert(site.clone(), false);
            out.push(c);
        }
    }
    for i in 0..p.host_crashes.len() {
        let mut c = p.clone();
        c.host_crashes.remove(i);
        out.push(c);
    }
    for i in 0..p.partitions.len() {
        let mut c = p.clone();
        c.partitions.remove(i);
        out.push(c);
    }
    for i in 0..p.clock_steps.len() {
        let mut c = p.clone();
        c.clock_steps.remove(i);
        out.push(c);
    }
    for i in 0..p.crash_points.len() {
        let mut c = p.clone();
        c.crash_points.remove(i);
        out.push(c);
    }
    for i in 0..p.partitions.len() {
        if p.partitions[i].for_ms > 1 {
            let mut c = p.clone();
            c.partitions[i].for_ms /= 2;
            out.push(c);
        }
    }
    for i in 0..p.host_crashes.len() {
        if p.host_crashes[i].restart_after_ms > 1 {
            let mut c = p.clone();
            c.host_crashes[i].restart_after_ms /= 2;
            out.push(c);
        }
    }
    for i in 0..p.crash_points.len() {
        if p.crash_points[i].hit > 1 {
            let mut c = p.clone();
            c.crash_points[i].hit -= 1;
            out.push(c);
        }
    }
    out
}

/// Shrinks the faults of the run `opts` describes; `run` runs it with a
/// given plan. Stops after `max_runs` runs with the best plan so far.
pub fn shrink(opts: &RunOptions, max_runs: u64, run: &dyn Fn(&RunOptions) -> RunReport) -> Result<Shrunk, ShrinkError> {
    let first = run(opts);
    let Some(failure) = first.failure.clone() else { return Err(ShrinkError::Passes(first.seed)) };
    let original = first.plan.clone();
    let mut best = original.clone();
    let mut runs = 1;
    'outer: loop {
        for c in candidates(&best) {
            if runs >= max_runs {
                break 'outer;
            }
            runs += 1;
            let r = run(&RunOptions { plan: Some(c.clone()), ..opts.clone() });
            if r.failure.as_ref().is_some_and(|f| same(f, &failure)) {
                best = c;
                continue 'outer;
            }
        }
        break;
    }
    Ok(Shrunk { failure, original, plan: best, runs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HostCrash, Partition};

    #[test]
    fn candidates_remove_each_fault_then_shorten() {
        let p = FaultPlan {
            buggify: [("gate.gone.after_prune".to_owned(), true)].into(),
            host_crashes: vec![HostCrash { at_ms: 1, host: 1, restart_after_ms: 8 }],
            partitions: vec![Partition { at_ms: 1, a: 0, b: 1, for_ms: 4 }],
            clock_steps: Vec::new(),
            crash_points: Vec::new(),
        };
        let c = candidates(&p);
        assert_eq!(c.len(), 5);
        assert!(c.iter().all(|x| x.fault_count() < p.fault_count() || x != &p));
        assert_eq!(c[0].fault_count(), 2, "a site forced off is no fault");
        assert_eq!(c[3].partitions[0].for_ms, 2);
        assert_eq!(c[4].host_crashes[0].restart_after_ms, 4);
    }
}
