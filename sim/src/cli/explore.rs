//! `warden-sim explore`: many seeds of a scenario or a directory of them,
//! with coverage judged and mutants confirmed; progress on long sweeps.

use std::process::ExitCode;
use std::time::Instant;

use super::progress::Progress;
use super::{ExploreArgs, load, mutant_arg, sched_arg, usage};
use crate::determinism::{SeedCheck, check_seed};
use crate::explore::{ExploreOptions, coverage_words, explore, needs_determinism_check};
use crate::scenario::{self, Scenario};

pub(super) fn cmd_explore(args: ExploreArgs) -> Result<ExitCode, ExitCode> {
    let ExploreArgs { path, seeds, start_seed, mutant, sched, shard, jobs, budget_secs, record_decisions, no_hash } =
        args;
    let path = path.as_path();
    let budget = budget_secs.map(std::time::Duration::from_secs_f64);
    let mutant = mutant_arg(mutant)?;
    let files = if path.is_dir() {
        scenario::files_in(path).map_err(|e| usage(format!("{}: {e}", path.display())))?
    } else {
        vec![path.to_path_buf()]
    };
    let scenarios = files.iter().map(|f| load(f)).collect::<Result<Vec<_>, _>>()?;
    if scenarios.is_empty() {
        return Err(usage(format!("no scenario files in {}", path.display())));
    }
    let dir = path.is_dir();
    if let Some(m) = mutant
        && !dir
        && scenarios[0].catch_of(m).is_none()
    {
        return Err(usage(format!("{} does not list mutant {m} in `catches`", scenarios[0].path.display())));
    }
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = Instant::now();
    let (mut ran, mut failed, mut first, mut ok, mut cov_words) = (0u64, 0u64, None::<u64>, true, Vec::new());
    // With a mutant: every scenario that lists it must catch it.
    let (mut listing, mut caught_in) = (0usize, 0usize);
    for sc in &scenarios {
        if mutant.is_some_and(|m| sc.catch_of(m).is_none()) {
            continue;
        }
        let catch = mutant.and_then(|m| sc.catch_of(m));
        listing += usize::from(catch.is_some());
        let n = seeds.unwrap_or(sc.seeds);
        super::seed_range_end(start_seed, n)?;
        let opts = ExploreOptions {
            seeds: Some(n),
            start_seed,
            mutant,
            scheduler: sched_arg(sched, sc),
            shard,
            jobs,
            watchdog: true,
            record: record_decisions,
            no_hash,
            budget,
        };
        let progress = Progress::new(crate::explore::seed_list(start_seed, n, shard).len(), &sc.name);
        let sweep = explore(sc, &opts, &|failed| progress.seed_done(failed));
        progress.finish();
        if sweep.caught_by.is_none() && needs_determinism_check(catch) {
            // Not seen in one process: two processes may still diverge.
            let (r, f, c) = determinism_sweep(sc, n, start_seed, mutant, shard)?;
            ran += sweep.ran + r;
            failed += f;
            caught_in += usize::from(c);
            println!(
                "{}: {} seeds in one process, {r} in two; mutant {} {}",
                sc.name,
                sweep.ran,
                mutant.unwrap_or("-"),
                if c { "caught (two processes diverged)" } else { "not caught" }
            );
            continue;
        }
        ran += sweep.ran;
        failed += sweep.failed;
        if let Some((s, f)) = &sweep.first_failure {
            first = Some(first.map_or(*s, |x| x.min(*s)));
            let replayer = crate::replay::Replayer::cli(&sc.path);
            let line = crate::replay::ReplayLine {
                replayer: &replayer,
                seed: *s,
                mutant,
                scheduler: opts.scheduler,
                plan_file: None,
            };
            println!("{}: seed {s} failed: {f}\n  replay: {line}", sc.name);
        }
        for u in &sweep.unconfirmed {
            println!("{}: seed {u} fails with and without the mutant: not counted as a catch", sc.name);
        }
        for (name, share, min) in &sweep.coverage_short {
            println!("{}: coverage {name}={share:.4} is under its minimum {min}", sc.name);
            ok = false;
        }
        if sweep.ran < crate::explore::COVERAGE_MIN_SEEDS && !sc.coverage.is_empty() && mutant.is_none() {
            println!("{}: coverage not judged ({} seeds < {})", sc.name, sweep.ran, crate::explore::COVERAGE_MIN_SEEDS);
        }
        let prefix = if dir { format!("{}.", sc.name) } else { String::new() };
        cov_words.extend(coverage_words(&prefix, &sweep.coverage));
        if mutant.is_some() {
            caught_in += usize::from(sweep.caught_by.is_some());
            let m = mutant.unwrap_or_default();
            match sweep.caught_by {
                Some(s) => println!("{}: mutant {m} caught by seed {s} ({} seeds run)", sc.name, sweep.ran),
                None => println!("{}: mutant {m} NOT caught in {} seeds", sc.name, sweep.ran),
            }
        } else if sweep.failed > 0 {
            ok = false;
        }
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let mut line = format!("explored {ran} seeds: {failed} failed");
    if let Some(s) = first {
        line.push_str(&format!(", first failing seed {s}"));
    }
    line.push_str(&format!(", {:.1} seeds/s", ran as f64 / secs));
    if !cov_words.is_empty() {
        line.push_str(&format!(", coverage {}", cov_words.join(" ")));
    }
    println!("{line}");
    if let Some(m) = mutant
        && listing == 0
    {
        return Err(usage(format!("no scenario in {} lists mutant {m} in `catches`", path.display())));
    }
    let pass = if mutant.is_some() { caught_in == listing } else { ok };
    Ok(if pass { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn determinism_sweep(
    sc: &Scenario,
    n: u64,
    start: u64,
    mutant: Option<&str>,
    shard: Option<(u64, u64)>,
) -> Result<(u64, u64, bool), ExitCode> {
    let bin = std::env::current_exe().map_err(|e| usage(format!("cannot find this binary: {e}")))?;
    let (mut ran, mut diverged) = (0, 0);
    for seed in crate::explore::seed_list(start, n, shard).iter() {
        ran += 1;
        match check_seed(&bin, &sc.path, seed, mutant) {
            Ok(SeedCheck::Same(_)) => {}
            Ok(SeedCheck::Diverged { .. }) => {
                diverged += 1;
                return Ok((ran, diverged, true));
            }
            Err(e) => return Err(usage(e)),
        }
    }
    Ok((ran, diverged, false))
}
