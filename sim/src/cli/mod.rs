//! The `warden-sim` command line: run, sweep and check scenarios. The
//! command lines and last lines are frozen (DESIGN.md, "Command-line
//! contract").
// The CLI's edge: files, OS processes, wall time.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod determinism;
mod explore;
mod list;
mod progress;
mod run;
mod shrink;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::OnceLock;

use clap::{Parser, Subcommand, ValueEnum};
use warden::env::mutants;

use crate::models::Catalog;
use crate::scenario::{self, Scenario};
use crate::sched::{PCT_DEFAULT_DEPTH, SchedulerKind};
use crate::watchdog;

/// Deterministic simulation of warden's protocols.
///
/// A scenario file names a model, its invariants, coverage minimums and the
/// mutants it must catch. `run` replays one seed bit for bit; `explore`
/// sweeps many; `check-determinism` runs seeds in two OS processes and
/// compares their hashes.
///
/// Exit codes of run and check-determinism: 0 pass, 2 usage error, 10
/// safety, 11 liveness, 12 livelock, 13 nondeterminism, 14 simulator
/// error, 15 crash (an unobserved panic in program code).
#[derive(Parser)]
#[command(version, about, long_about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Seconds one poll may run (wall time) before the watchdog fails the
    /// run as a livelock.
    #[arg(long, global = true, default_value_t = 30)]
    watchdog_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Sched {
    Random,
    Pct,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Switches a mutant (a known bug) on.
    #[arg(long)]
    mutant: Option<String>,
    /// Forces buggify sites from a fault plan file.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Writes every decision of the run to FILE.
    #[arg(long, conflicts_with = "replay")]
    record: Option<PathBuf>,
    /// Writes the faults this run decided on (buggify sites) to FILE,
    /// for `--plan`.
    #[arg(long)]
    save_plan: Option<PathBuf>,
    /// Replays the decisions in FILE (its seed wins over --seed).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Overrides the scenario's scheduler.
    #[arg(long, value_enum)]
    sched: Option<Sched>,
    /// Writes the run as Chrome trace-event JSON to FILE (open it in
    /// Perfetto's UI, ui.perfetto.dev): a track per simulated process,
    /// polls and spans as slices, messages as flows, faults and the
    /// failing invariant as instants.
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Writes every hashed event to FILE (used by check-determinism).
    #[arg(long, hide = true)]
    dump_events: Option<PathBuf>,
    /// Runs N other seeds in this process first (check-determinism's
    /// warmed-up child).
    #[arg(long, hide = true, default_value_t = 0)]
    warm_up: u64,
}

#[derive(clap::Args)]
pub(crate) struct ExploreArgs {
    /// A scenario file or a directory of them.
    path: PathBuf,
    /// Seeds per scenario (default: the scenario's `seeds`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: Option<u64>,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    start_seed: u64,
    /// Sweeps until this mutant is caught (exit 0), or not (exit 1).
    #[arg(long)]
    mutant: Option<String>,
    /// Overrides the scenarios' scheduler.
    #[arg(long, value_enum)]
    sched: Option<Sched>,
    /// Runs only share K of N of the seed range (1 <= K <= N).
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Worker threads (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Starts no new seed after SECS of wall time (benchmarks).
    #[arg(long, value_name = "SECS", value_parser = parse_budget)]
    budget_secs: Option<f64>,
    /// Records every decision of every run, as `run --record` does,
    /// and drops it (benchmarks measure the feature's cost).
    #[arg(long)]
    record_decisions: bool,
    /// Switches the run hash off (benchmarks measure the feature's cost).
    #[arg(long)]
    no_hash: bool,
}

#[derive(clap::Args)]
pub(crate) struct ShrinkArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The failing seed.
    #[arg(long)]
    seed: u64,
    /// The mutant the seed fails with.
    #[arg(long)]
    mutant: Option<String>,
    /// Overrides the scenario's scheduler.
    #[arg(long, value_enum)]
    sched: Option<Sched>,
    /// Where to write the smallest plan (for `run --plan`).
    #[arg(short = 'o', long = "output", value_name = "PLAN")]
    output: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one seed of a scenario; the last line is
    /// `seed=N hash=<hex> result=pass|fail`.
    Run(RunArgs),
    /// Runs many seeds of a scenario, or of every scenario in a directory.
    Explore(ExploreArgs),
    /// Shrinks a failing seed's faults: removes and shortens them while the
    /// run still fails the same way (class and invariant), writes the
    /// smallest plan and prints `shrunk: F faults -> G faults, still fails
    /// <class> <invariant>`.
    Shrink(ShrinkArgs),
    /// Runs each seed in two OS processes and compares the hashes.
    CheckDeterminism {
        /// The scenario file.
        scenario: PathBuf,
        /// How many seeds.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        start_seed: u64,
        /// Switches a mutant on in both processes.
        #[arg(long)]
        mutant: Option<String>,
    },
    /// Lists models with their invariants, coverage windows and parameters,
    /// and every mutant.
    List {
        /// Prints only mutant names, one per line (for scripts).
        #[arg(long, conflicts_with_all = ["crash_points", "buggify_sites"])]
        mutants: bool,
        /// Prints only declared crash point names, one per line.
        #[arg(long, conflicts_with = "buggify_sites")]
        crash_points: bool,
        /// Prints only declared buggify site names, one per line.
        #[arg(long)]
        buggify_sites: bool,
    },
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 2/4")?;
    let (k, n): (u64, u64) = (k.parse().map_err(|_| "K is not a number")?, n.parse().map_err(|_| "N is not a number")?);
    if n == 0 || k == 0 || k > n {
        return Err(format!("need 1 <= K <= N, got {k}/{n}"));
    }
    Ok((k, n))
}

fn parse_budget(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(format!("{s}: a budget is a finite number of seconds, 0 or more"));
    }
    Ok(v)
}

/// The end of the seed range `start .. start + count`; exit 2 when it
/// does not fit in a u64.
pub(crate) fn seed_range_end(start: u64, count: u64) -> Result<u64, ExitCode> {
    start
        .checked_add(count)
        .ok_or_else(|| usage(format!("seeds {start} .. {start} + {count} run past the largest seed, {}", u64::MAX)))
}

pub(crate) fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("warden-sim: {msg}");
    ExitCode::from(2)
}

pub(crate) fn mutant_arg(m: Option<String>) -> Result<Option<&'static str>, ExitCode> {
    let Some(m) = m else { return Ok(None) };
    match mutants::find(&m) {
        Some(found) if mutants::enabled() => Ok(Some(found.name)),
        Some(_) => Err(usage("mutants are compiled out: build with `--features warden/mutants`")),
        None => {
            let known: Vec<_> = mutants::ALL.iter().map(|m| m.name).collect();
            Err(usage(format!("unknown mutant {m:?} (known: {})", known.join(", "))))
        }
    }
}

pub(crate) fn sched_arg(s: Option<Sched>, scenario: &Scenario) -> Option<SchedulerKind> {
    s.map(|s| match (s, scenario.scheduler) {
        (Sched::Random, _) => SchedulerKind::Random,
        (Sched::Pct, SchedulerKind::Pct { depth, steps }) => SchedulerKind::Pct { depth, steps },
        (Sched::Pct, SchedulerKind::Random) => SchedulerKind::Pct { depth: PCT_DEFAULT_DEPTH, steps: None },
    })
}

/// The models this CLI's scenario files may name, and its program name
/// (for replay lines). Set once by [`main_with`]: the CLI is a process's
/// edge, outside any simulated run.
static CATALOG: OnceLock<Catalog> = OnceLock::new();

pub(crate) fn catalog() -> Catalog {
    CATALOG.get().copied().unwrap_or_else(Catalog::builtin)
}

pub(crate) fn load(path: &Path) -> Result<Scenario, ExitCode> {
    scenario::load_in(path, catalog()).map_err(usage)
}

/// Runs the `warden-sim` command line on warden's own models.
pub fn main() -> ExitCode {
    main_with(Catalog::builtin())
}

/// Runs the whole command line (`run`, `explore`, `check-determinism`,
/// `shrink`, `list`) on a project's own models: a project's small binary
/// is `fn main() -> ExitCode { warden_sim::cli::main_with(Catalog(&[&MyModel])) }`.
pub fn main_with(models: Catalog) -> ExitCode {
    let _ = CATALOG.set(models);
    let program = std::env::args_os()
        .next()
        .and_then(|a| std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "warden-sim".to_owned());
    crate::replay::set_program_name(program);
    let cli = Cli::parse();
    watchdog::set_limit(cli.watchdog_secs);
    let result = match cli.command {
        Cmd::Run(args) => run::cmd_run(args),
        Cmd::Explore(args) => explore::cmd_explore(args),
        Cmd::Shrink(args) => shrink::cmd_shrink(args),
        Cmd::CheckDeterminism { scenario, seeds, start_seed, mutant } => {
            determinism::cmd_determinism(&scenario, seeds, start_seed, mutant)
        }
        Cmd::List { mutants, crash_points, buggify_sites } => {
            list::cmd_list(list::Only::from_flags(mutants, crash_points, buggify_sites));
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|code| code)
}
