//! `warden-sim list`: models, their invariants, coverage windows and
//! parameters, and every mutant.

use warden::env::{buggify, crash, mutants};

use crate::trace;

/// What to print: everything, or one kind of name per line.
pub(super) enum Only {
    Everything,
    Mutants,
    CrashPoints,
    BuggifySites,
}

impl Only {
    pub(super) fn from_flags(mutants: bool, crash_points: bool, buggify_sites: bool) -> Only {
        match (mutants, crash_points, buggify_sites) {
            (true, _, _) => Only::Mutants,
            (_, true, _) => Only::CrashPoints,
            (_, _, true) => Only::BuggifySites,
            _ => Only::Everything,
        }
    }
}

pub(super) fn cmd_list(only: Only) {
    let names: Vec<&str> = match only {
        Only::Everything => Vec::new(),
        Only::Mutants => mutants::ALL.iter().map(|m| m.name).collect(),
        Only::CrashPoints => crash::names().collect(),
        Only::BuggifySites => buggify::ALL.iter().map(|s| s.name).collect(),
    };
    if !matches!(only, Only::Everything) {
        for n in names {
            println!("{n}");
        }
        return;
    }
    trace::install();
    for m in super::catalog().models() {
        let s = m.spec();
        println!("model {}: {}", s.name, s.about);
        println!("  invariants: {}", s.invariants.join(", "));
        for (c, about) in s.coverage {
            println!("  coverage {c}: {about}");
        }
        for p in s.params {
            println!("  param {} = {} (range {}..={}; {})", p.name, p.default, p.min, p.max, p.about);
        }
    }
    println!(
        "mutants ({}):",
        if mutants::enabled() { "compiled in" } else { "compiled out; build with --features warden/mutants" }
    );
    println!("  historical bugs (fixed or named by a seed) and self-tests of the simulator:");
    for m in mutants::ALL.iter().filter(|m| !mutants::is_regression(m.name)) {
        println!("    {}: {}", m.name, m.bug);
    }
    println!("  warden's own regressions (of guarantees warden adds beyond the seeds):");
    for m in mutants::ALL.iter().filter(|m| mutants::is_regression(m.name)) {
        println!("    {}: {}", m.name, m.bug);
    }
    println!("crash points:");
    for p in crash::all() {
        match p.after_crash_at {
            Some(lead) => println!("  {} (reached after a crash at {lead}*)", p.name),
            None => println!("  {}", p.name),
        }
    }
    println!("buggify sites:");
    for site in buggify::ALL {
        println!("  {}: {}", site.name, site.widens);
    }
}
