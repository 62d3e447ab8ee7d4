//! `shrink`: from a failing seed's fault plan to a smaller one that still
//! fails the same way, deterministically, and replays with `--plan`.

use std::path::Path;

use warden_sim::explore::{ExploreOptions, explore};
use warden_sim::run::{RunOptions, run_scenario};
use warden_sim::scenario;
use warden_sim::shrink::shrink;

#[test]
fn a_shrunk_plan_is_smaller_still_fails_the_same_way_and_is_found_again() {
    let sc = scenario::load(Path::new("../scenarios/stampede-double-register.toml")).expect("scenario");
    let mutant = Some("gate-no-watermark");
    let sweep = explore(&sc, &ExploreOptions { seeds: Some(200), mutant, ..ExploreOptions::default() }, &|_| {});
    let seed = sweep.caught_by.expect("the mutant is caught");
    let opts = RunOptions { seed, mutant, ..RunOptions::default() };
    let a = shrink(&opts, 500, &|o| run_scenario(&sc, o)).expect("the seed fails");
    let b = shrink(&opts, 500, &|o| run_scenario(&sc, o)).expect("the seed fails");
    assert_eq!(a.plan, b.plan, "shrinking is deterministic");
    assert!(a.plan.fault_count() <= a.original.fault_count());
    if a.original.fault_count() > 0 {
        assert!(a.plan.fault_count() < a.original.fault_count(), "{:?} -> {:?}", a.original, a.plan);
    }
    let replayed = run_scenario(&sc, &RunOptions { plan: Some(a.plan.clone()), ..opts });
    let f = replayed.failure.expect("the shrunk plan still fails");
    assert_eq!((f.class, f.invariant), (a.failure.class, a.failure.invariant));
}
