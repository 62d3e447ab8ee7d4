//! `warden-sim shrink`: the smallest fault plan that still fails a seed
//! the same way, written for `run --plan`.

use std::process::ExitCode;

use super::{ShrinkArgs, load, mutant_arg, sched_arg, usage};
use crate::replay::{ReplayLine, Replayer};
use crate::run::{RunOptions, run_scenario};
use crate::shrink::shrink;

/// Runs tried at most while shrinking.
const MAX_RUNS: u64 = 2_000;

pub(super) fn cmd_shrink(args: ShrinkArgs) -> Result<ExitCode, ExitCode> {
    let ShrinkArgs { scenario, seed, mutant, sched, output } = args;
    let sc = load(&scenario)?;
    let mutant = mutant_arg(mutant)?;
    let scheduler = sched_arg(sched, &sc);
    let opts = RunOptions { seed, mutant, scheduler, watchdog: true, ..RunOptions::default() };
    let found = shrink(&opts, MAX_RUNS, &|o| run_scenario(&sc, o)).map_err(usage)?;
    std::fs::write(&output, found.plan.to_toml()).map_err(|e| usage(format!("{}: {e}", output.display())))?;
    println!("plan: {} ({} runs tried)", output.display(), found.runs);
    let replay = ReplayLine { replayer: &Replayer::cli(&scenario), seed, mutant, scheduler, plan_file: Some(&output) };
    println!("replay: {replay}");
    println!(
        "shrunk: {} faults -> {} faults, still fails {} {}",
        found.original.fault_count(),
        found.plan.fault_count(),
        found.failure.class.name(),
        found.failure.invariant
    );
    Ok(ExitCode::SUCCESS)
}
