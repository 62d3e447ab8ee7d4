//! `warden-sim check-determinism`: each seed in two OS processes, one
//! fresh and one that ran other seeds first.

use std::path::Path;
use std::process::ExitCode;

use super::{load, mutant_arg, usage};
use crate::check::FailureClass;
use crate::determinism::{SeedCheck, check_seed};

pub(super) fn cmd_determinism(
    path: &Path,
    seeds: u64,
    start: u64,
    mutant: Option<String>,
) -> Result<ExitCode, ExitCode> {
    let sc = load(path)?;
    let mutant = mutant_arg(mutant)?;
    let bin = std::env::current_exe().map_err(|e| usage(format!("cannot find this binary: {e}")))?;
    let end = super::seed_range_end(start, seeds)?;
    for seed in start..end {
        match check_seed(&bin, &sc.path, seed, mutant) {
            Ok(SeedCheck::Same(h)) => println!("seed={seed} hash={h} same in a fresh and a warmed-up process"),
            Ok(SeedCheck::Diverged { hashes, first }) => {
                println!("seed={seed} hashes differ: {} vs {}", hashes.0, hashes.1);
                println!("first divergence: event #{}", first.0 + 1);
                println!("  fresh process:     {}", first.1);
                println!("  warmed-up process: {}", first.2);
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
