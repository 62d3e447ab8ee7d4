//! PCT against random scheduling on the depth-3 self-test: a sweep of a
//! fixed size prints n, k, the bound 1/(n·k^(d−1)) and the measured hit
//! rates. PCT must meet the bound and beat random.

use std::path::Path;

use warden_sim::run::{RunOptions, run_scenario};
use warden_sim::scenario;
use warden_sim::sched::SchedulerKind;

const SEEDS: u64 = 4000;

#[test]
fn pct_meets_its_bound_and_beats_random_on_a_depth3_bug() {
    assert!(warden::env::mutants::enabled(), "run the tests with --features mutants (the README's command does)");
    let sc = scenario::load(Path::new("scenarios/selftest-pct-depth3.toml")).unwrap_or_else(|e| panic!("{e}"));
    let SchedulerKind::Pct { depth, steps } = sc.scheduler else { panic!("the scenario uses PCT") };
    let rate = |kind: SchedulerKind| {
        let mut hits = 0u64;
        let mut total_steps = 0u64;
        for seed in 0..SEEDS {
            let r = run_scenario(
                &sc,
                &RunOptions {
                    seed,
                    mutant: Some("selftest-pct-depth3"),
                    scheduler: Some(kind),
                    ..RunOptions::default()
                },
            );
            total_steps += r.steps;
            hits += u64::from(r.failure.as_ref().is_some_and(|f| f.invariant == "no-torn-read"));
        }
        (hits as f64 / SEEDS as f64, total_steps as f64 / SEEDS as f64)
    };
    let (pct, pct_steps) = rate(sc.scheduler);
    let (random, _) = rate(SchedulerKind::Random);
    // Tasks: the model's main program, the writer and the reader.
    let n = 3.0;
    let k = steps.expect("the scenario gives k") as f64;
    let bound = 1.0 / (n * k.powi(depth as i32 - 1));
    println!(
        "depth-3 sweep of {SEEDS} seeds: n={n} k={k} (measured mean steps {pct_steps:.1}) d={depth} bound={bound:.6} pct={pct:.6} random={random:.6}"
    );
    assert!(pct_steps <= k, "k must bound the run's steps for the PCT guarantee");
    assert!(pct >= bound, "PCT hit rate {pct} under its bound {bound}");
    assert!(pct > random, "PCT ({pct}) does not beat random ({random})");
}
