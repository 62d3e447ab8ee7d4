//! Run hashes: one seed gives one hash, in-process and across runs on the
//! same thread; different seeds give different hashes.

use std::collections::BTreeSet;
use std::path::Path;

use warden_sim::run::{RunOptions, run_scenario};
use warden_sim::scenario;

#[test]
fn a_seed_gives_one_hash_and_seeds_give_distinct_hashes() {
    let sc = scenario::load(Path::new("scenarios/selftest-lost-update.toml")).unwrap_or_else(|e| panic!("{e}"));
    let run = |seed| run_scenario(&sc, &RunOptions { seed, ..RunOptions::default() }).hash;
    assert_eq!(run(42), run(42));
    let hashes: BTreeSet<u64> = (0..1000).map(run).collect();
    println!("{} distinct hashes over 1000 seeds", hashes.len());
    assert!(hashes.len() >= 950, "only {} distinct hashes over 1000 seeds", hashes.len());
}

#[test]
fn recording_and_capturing_do_not_change_the_hash() {
    let sc = scenario::load(Path::new("scenarios/selftest-busy-loop.toml")).unwrap_or_else(|e| panic!("{e}"));
    let plain = run_scenario(&sc, &RunOptions { seed: 9, ..RunOptions::default() });
    let full =
        run_scenario(&sc, &RunOptions { seed: 9, record: true, tail: true, dump: true, ..RunOptions::default() });
    assert_eq!(plain.hash, full.hash);
    assert_eq!(full.dump.len() as u64, full.events);
    let replayed = run_scenario(&sc, &RunOptions { seed: 1234, replay: full.record.clone(), ..RunOptions::default() });
    assert_eq!(replayed.hash, plain.hash);
    assert_eq!(replayed.seed, 9);
}
