//! `warden-sim`: run, sweep and check scenarios. The command lines and last
//! lines are frozen (DESIGN.md, "Command-line contract").
#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // the CLI edge: files, processes, wall time

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use warden::env::mutants;
use warden_sim::check::FailureClass;
use warden_sim::determinism::{SeedCheck, check_seed};
use warden_sim::explore::{ExploreOptions, coverage_words, explore, needs_determinism_check};
use warden_sim::plan::FaultPlan;
use warden_sim::record::Record;
use warden_sim::run::{RunOptions, run_scenario};
use warden_sim::scenario::{self, Scenario};
use warden_sim::sched::{PCT_DEFAULT_STEPS, SchedulerKind};
use warden_sim::{models, trace, watchdog};

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
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Seconds one poll may run (wall time) before the watchdog fails the
    /// run as a livelock.
    #[arg(long, global = true, default_value_t = 30)]
    watchdog_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Sched {
    Random,
    Pct,
}

#[derive(clap::Args)]
struct RunArgs {
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
    /// Writes every hashed event to FILE (used by check-determinism).
    #[arg(long, hide = true)]
    dump_events: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ExploreArgs {
    /// A scenario file or a directory of them.
    path: PathBuf,
    /// Seeds per scenario (default: the scenario's `seeds`).
    #[arg(long)]
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
    #[arg(long, value_name = "SECS")]
    budget_secs: Option<f64>,
    /// Records every decision of every run, as `run --record` does,
    /// and drops it (benchmarks measure the feature's cost).
    #[arg(long)]
    record_decisions: bool,
    /// Switches the run hash off (benchmarks measure the feature's cost).
    #[arg(long)]
    no_hash: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one seed of a scenario; the last line is
    /// `seed=N hash=<hex> result=pass|fail`.
    Run(RunArgs),
    /// Runs many seeds of a scenario, or of every scenario in a directory.
    Explore(ExploreArgs),
    /// Runs each seed in two OS processes and compares the hashes.
    CheckDeterminism {
        /// The scenario file.
        scenario: PathBuf,
        /// How many seeds.
        #[arg(long, default_value_t = 20)]
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
        #[arg(long)]
        mutants: bool,
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

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("warden-sim: {msg}");
    ExitCode::from(2)
}

fn mutant_arg(m: Option<String>) -> Result<Option<&'static str>, ExitCode> {
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

fn sched_arg(s: Option<Sched>, scenario: &Scenario) -> Option<SchedulerKind> {
    s.map(|s| match (s, scenario.scheduler) {
        (Sched::Random, _) => SchedulerKind::Random,
        (Sched::Pct, SchedulerKind::Pct { depth, steps }) => SchedulerKind::Pct { depth, steps },
        (Sched::Pct, SchedulerKind::Random) => SchedulerKind::Pct { depth: 3, steps: PCT_DEFAULT_STEPS },
    })
}

fn load(path: &Path) -> Result<Scenario, ExitCode> {
    scenario::load(path).map_err(usage)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    watchdog::set_limit(cli.watchdog_secs);
    let result = match cli.command {
        Cmd::Run(args) => cmd_run(args),
        Cmd::Explore(args) => cmd_explore(args),
        Cmd::CheckDeterminism { scenario, seeds, start_seed, mutant } => {
            cmd_determinism(&scenario, seeds, start_seed, mutant)
        }
        Cmd::List { mutants } => {
            cmd_list(mutants);
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|code| code)
}

fn cmd_run(args: RunArgs) -> Result<ExitCode, ExitCode> {
    let RunArgs { scenario, seed, mutant, plan, record, save_plan, replay, sched, dump_events: dump } = args;
    let path = scenario.as_path();
    let sc = load(path)?;
    let replay = replay.map(|p| Record::load(&p)).transpose().map_err(usage)?;
    let mutant_name = mutant.or_else(|| replay.as_ref().and_then(|r| r.mutant.clone()));
    let mutant = mutant_arg(mutant_name)?;
    let plan = plan.map(|p| FaultPlan::load(&p)).transpose().map_err(usage)?;
    let opts = RunOptions {
        seed,
        mutant,
        scheduler: sched_arg(sched, &sc),
        replay,
        record: record.is_some(),
        tail: true,
        dump: dump.is_some(),
        plan,
        watchdog: true,
        no_hash: false,
    };
    let report = run_scenario(&sc, &opts);
    for line in &report.header {
        println!("{line}");
    }
    println!("steps: {} events: {} virtual_end_s: {}", report.steps, report.events, report.end.as_secs_f64());
    let cov = coverage_words("", &report.coverage);
    if !cov.is_empty() {
        println!("coverage: {}", cov.join(" "));
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    if let (Some(p), Some(rec)) = (&record, &report.record) {
        rec.save(p).map_err(|e| usage(format!("{}: {e}", p.display())))?;
        println!("record: {}", p.display());
    }
    if let Some(p) = &save_plan {
        std::fs::write(p, report.plan.to_toml()).map_err(|e| usage(format!("{}: {e}", p.display())))?;
        println!("plan: {} ({} buggify sites)", p.display(), report.plan.buggify.len());
    }
    if let Some(p) = &dump {
        std::fs::write(p, report.dump.join("\n")).map_err(|e| usage(format!("{}: {e}", p.display())))?;
    }
    let code = match &report.failure {
        None => ExitCode::SUCCESS,
        Some(f) => {
            println!("{f}");
            println!("trace tail ({} lines):", report.tail.len());
            for l in &report.tail {
                println!("  {l}");
            }
            let m = mutant.map(|m| format!(" --mutant {m}")).unwrap_or_default();
            println!("replay: warden-sim run {} --seed {}{m}", path.display(), report.seed);
            ExitCode::from(f.class.exit_code() as u8)
        }
    };
    println!(
        "seed={} hash={:016x} result={}",
        report.seed,
        report.hash,
        if report.failure.is_some() { "fail" } else { "pass" }
    );
    Ok(code)
}

fn progress(total: u64, label: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} seeds {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar
}

fn cmd_explore(args: ExploreArgs) -> Result<ExitCode, ExitCode> {
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
        if needs_determinism_check(catch) {
            let (r, f, c) = determinism_sweep(sc, n, start_seed, mutant, shard)?;
            ran += r;
            failed += f;
            caught_in += usize::from(c);
            println!(
                "{}: {r} seeds, mutant {} {}",
                sc.name,
                mutant.unwrap_or("-"),
                if c { "caught (two processes diverged)" } else { "not caught" }
            );
            continue;
        }
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
        let bar = progress(warden_sim::explore::seed_list(start_seed, n, shard).len(), &sc.name);
        let sweep = explore(sc, &opts, &|| bar.inc(1));
        bar.finish_and_clear();
        ran += sweep.ran;
        failed += sweep.failed;
        if let Some((s, f)) = &sweep.first_failure {
            first = Some(first.map_or(*s, |x| x.min(*s)));
            let m = mutant.map(|m| format!(" --mutant {m}")).unwrap_or_default();
            println!("{}: seed {s} failed: {f}\n  replay: warden-sim run {} --seed {s}{m}", sc.name, sc.path.display());
        }
        for u in &sweep.unconfirmed {
            println!("{}: seed {u} fails with and without the mutant: not counted as a catch", sc.name);
        }
        for (name, share, min) in &sweep.coverage_short {
            println!("{}: coverage {name}={share:.4} is under its minimum {min}", sc.name);
            ok = false;
        }
        if sweep.ran < warden_sim::explore::COVERAGE_MIN_SEEDS && !sc.coverage.is_empty() && mutant.is_none() {
            println!(
                "{}: coverage not judged ({} seeds < {})",
                sc.name,
                sweep.ran,
                warden_sim::explore::COVERAGE_MIN_SEEDS
            );
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
    let tmp = std::env::temp_dir();
    let (mut ran, mut diverged) = (0, 0);
    for seed in warden_sim::explore::seed_list(start, n, shard).iter() {
        ran += 1;
        match check_seed(&bin, &sc.path, seed, mutant, &tmp) {
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

fn cmd_determinism(path: &Path, seeds: u64, start: u64, mutant: Option<String>) -> Result<ExitCode, ExitCode> {
    let sc = load(path)?;
    let mutant = mutant_arg(mutant)?;
    let bin = std::env::current_exe().map_err(|e| usage(format!("cannot find this binary: {e}")))?;
    let tmp = std::env::temp_dir();
    for seed in start..start + seeds {
        match check_seed(&bin, &sc.path, seed, mutant, &tmp) {
            Ok(SeedCheck::Same(h)) => println!("seed={seed} hash={h} same in two processes"),
            Ok(SeedCheck::Diverged { hashes, first }) => {
                println!("seed={seed} hashes differ: {} vs {}", hashes.0, hashes.1);
                println!("first divergence: event #{}", first.0 + 1);
                println!("  process 1: {}", first.1);
                println!("  process 2: {}", first.2);
                let m = mutant.map(|m| format!(" --mutant {m}")).unwrap_or_default();
                println!("replay: warden-sim check-determinism {} --seeds 1 --start-seed {seed}{m}", path.display());
                return Ok(ExitCode::from(FailureClass::Nondeterminism.exit_code() as u8));
            }
            Err(e) => {
                eprintln!("warden-sim: {e}");
                return Ok(ExitCode::from(FailureClass::SimError.exit_code() as u8));
            }
        }
    }
    println!("{seeds} seeds: every hash the same in two processes");
    Ok(ExitCode::SUCCESS)
}

fn cmd_list(names_only: bool) {
    if names_only {
        for m in mutants::ALL {
            println!("{}", m.name);
        }
        return;
    }
    trace::install();
    for m in models::all() {
        let s = m.spec();
        println!("model {}: {}", s.name, s.about);
        println!("  invariants: {}", s.invariants.join(", "));
        for (c, about) in s.coverage {
            println!("  coverage {c}: {about}");
        }
        for p in s.params {
            println!("  param {} = {} ({})", p.name, p.default, p.about);
        }
    }
    println!(
        "mutants ({}):",
        if mutants::enabled() { "compiled in" } else { "compiled out; build with --features warden/mutants" }
    );
    for m in mutants::ALL {
        println!("  {}: {}", m.name, m.bug);
    }
}
