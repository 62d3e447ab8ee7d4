//! `warden-sim run`: one seed, its header, its failure report and the
//! contract's last line.

use std::process::ExitCode;

use super::{RunArgs, load, mutant_arg, sched_arg, usage};
use crate::explore::coverage_words;
use crate::plan::FaultPlan;
use crate::record::Record;
use crate::run::{RunOptions, run_scenario};

pub(super) fn cmd_run(args: RunArgs) -> Result<ExitCode, ExitCode> {
    let RunArgs { scenario, seed, mutant, plan, record, save_plan, replay, sched, dump_events: dump, warm_up, trace } =
        args;
    let path = scenario.as_path();
    let sc = load(path)?;
    let replay = replay.map(|p| Record::load(&p).map(|r| (p, r))).transpose().map_err(usage)?;
    if let Some((p, rec)) = &replay
        && rec.scenario != sc.name
    {
        return Err(usage(format!(
            "{}: a record of scenario {:?}, not of {} ({:?})",
            p.display(),
            rec.scenario,
            path.display(),
            sc.name
        )));
    }
    let replay = replay.map(|(_, r)| r);
    let mutant_name = mutant.or_else(|| replay.as_ref().and_then(|r| r.mutant.clone()));
    let mutant = mutant_arg(mutant_name)?;
    let plan_file = plan;
    let plan = plan_file.as_ref().map(|p| FaultPlan::load(p)).transpose().map_err(usage)?;
    let opts = RunOptions {
        seed,
        mutant,
        scheduler: sched_arg(sched, &sc),
        replay,
        record: record.is_some(),
        tail: true,
        dump: dump.is_some(),
        plan,
        plan_file,
        watchdog: true,
        no_hash: false,
        chrome_trace: trace.is_some(),
        event_budget: None,
    };
    for other in 1..=warm_up {
        let warm =
            RunOptions { seed: seed.wrapping_add(other), mutant, scheduler: opts.scheduler, ..RunOptions::default() };
        let _ = run_scenario(&sc, &warm);
    }
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
    if let (Some(p), Some(json)) = (&trace, &report.chrome_trace) {
        std::fs::write(p, json).map_err(|e| usage(format!("{}: {e}", p.display())))?;
        println!("trace: {} (Chrome trace-event JSON; open it in ui.perfetto.dev)", p.display());
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
            println!("replay: {}", report.replay);
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
