//! The determinism self-check: the same seed in two OS processes must give
//! the same hash; on a mismatch, the first diverging event of each run.

use std::path::{Path, PathBuf};

#[allow(clippy::disallowed_types)] // check-determinism runs real OS processes by design
use std::process::Command;

/// What comparing one seed across two processes found.
#[derive(Debug, Clone)]
pub enum SeedCheck {
    /// Both processes printed this hash.
    Same(String),
    /// The hashes differ: the first diverging event of each run.
    Diverged {
        /// The two hashes.
        hashes: (String, String),
        /// Index of the first differing event and each run's line for it.
        first: (usize, String, String),
    },
}

/// How many other seeds the second child runs before the checked one, so
/// that state one run leaves in its process (a static, a thread-local)
/// shows up against the first, fresh child.
pub const WARM_UP_RUNS: u64 = 3;

fn child(
    bin: &Path,
    scenario: &Path,
    seed: u64,
    mutant: Option<&str>,
    dump: &Path,
    warm_up: u64,
) -> anyhow::Result<std::process::Child> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    // the point is a second OS process
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg(scenario).arg("--seed").arg(seed.to_string()).arg("--dump-events").arg(dump);
    if warm_up > 0 {
        cmd.arg("--warm-up").arg(warm_up.to_string());
    }
    if let Some(m) = mutant {
        cmd.arg("--mutant").arg(m);
    }
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    Ok(cmd.spawn()?)
}

/// The hash on a child's last line, or an error that shows what it said.
fn hash_of(which: &str, out: &std::process::Output) -> anyhow::Result<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    if let Some(h) = last.split_whitespace().find_map(|w| w.strip_prefix("hash=")) {
        return Ok(h.to_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = err.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
    anyhow::bail!(
        "the {which} child ({}) printed no hash; its last line was {last:?} and its stderr:\n{}",
        out.status,
        tail.join("\n")
    )
}

/// Runs `seed` of `scenario` in two processes of `bin` and compares them:
/// a fresh one, and one that ran [`WARM_UP_RUNS`] other seeds first.
/// Event dumps go to private temporary files, removed afterwards.
pub fn check_seed(bin: &Path, scenario: &Path, seed: u64, mutant: Option<&str>) -> anyhow::Result<SeedCheck> {
    let dir = tempfile::Builder::new().prefix("warden-sim-determinism-").tempdir()?;
    let dumps: [PathBuf; 2] = [dir.path().join("fresh.events"), dir.path().join("warm.events")];
    let a = child(bin, scenario, seed, mutant, &dumps[0], 0)?;
    let b = child(bin, scenario, seed, mutant, &dumps[1], WARM_UP_RUNS)?;
    let (oa, ob) = (a.wait_with_output()?, b.wait_with_output()?);
    let (ha, hb) = (hash_of("fresh", &oa)?, hash_of("warmed-up", &ob)?);
    #[allow(clippy::disallowed_methods)] // the children's dump files
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (da, db) = (read(&dumps[0]), read(&dumps[1]));
    if ha == hb {
        return Ok(SeedCheck::Same(ha));
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (da.lines().collect(), db.lines().collect());
    Ok(SeedCheck::Diverged { hashes: (ha, hb), first: first_divergence(&la, &lb) })
}

/// The first event where two runs' event dumps differ: its index and each
/// run's line (`<run ended>` for the shorter one).
pub fn first_divergence<S: AsRef<str>>(a: &[S], b: &[S]) -> (usize, String, String) {
    let i = a.iter().zip(b).position(|(x, y)| x.as_ref() != y.as_ref()).unwrap_or(a.len().min(b.len()));
    let at = |l: &[S]| l.get(i).map_or_else(|| "<run ended>".to_owned(), |s| s.as_ref().to_owned());
    (i, at(a), at(b))
}
